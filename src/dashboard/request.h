/* dashboard/request.h - reading a request through libwebsockets (request.c). */
#ifndef KG_DASH_REQUEST_H
#define KG_DASH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

#include "kaygraph/dashboard.h"

/* Copy a header into buf; "" when absent or too long.  Returns buf. */
const char *kg__hdr(struct lws *wsi, enum lws_token_indexes t, char *buf, int len);
/* The query string (lws splits it at '&'; joined back). */
void kg__server_query(struct lws *wsi, char *out, size_t outlen);
/* The token from the Authorization header, our cookie or ?token=;
 * *via_query tells whether it came from the query (then the caller hands
 * out the cookie).  True when no token is configured. */
bool kg__server_authorized(const kg_dashboard_options *o, struct lws *wsi, const char *query,
                           bool *via_query);

#endif
