/* dashboard/api.h - the HTTP routes as a pure function of a request (api.c). */
#ifndef KG_DASH_API_H
#define KG_DASH_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "body.h"
#include "resp.h"
#include "event.h"
#include "hub.h"
#include "query.h"
#include "util/buf.h"


/* Route one request (auth already checked).  Fills `resp` (resp->body must
 * have been kg_buf_init'ed).  `stats` (may be NULL) is the server's
 * snapshot that /api/metrics shows under "server". */
void kg__api_handle(kg__hub *h, const kg_dashboard_stats *stats, const kg__http_req *req,
                    kg__http_resp *resp);
/* 401 with the embedded page that explains how to pass the token. */
void kg__api_auth_page(kg__http_resp *resp, const char *accept_encoding);
/* The response to GET /api/workflows/<id>/events from a run fetched from
 * Redis: `events` (borrowed array) or NULL (404, `why` or a default). */
void kg__api_history(kg__http_resp *resp, const char *workflow_id, json_t *events,
                     const char *why);

#endif
