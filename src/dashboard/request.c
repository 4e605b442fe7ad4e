/* dashboard/request.c - what the socket side reads of a request through
 * libwebsockets: headers, the query string, the token.  Shared by the HTTP
 * side (server.c) and the WebSocket upgrade (server_ws.c). */
#include <string.h>

#include "auth.h"
#include "query.h"
#include "request.h"

const char *kg__hdr(struct lws *wsi, enum lws_token_indexes t, char *buf, int len)
{
    buf[0] = '\0';
    if (lws_hdr_total_length(wsi, t) <= 0 || lws_hdr_copy(wsi, buf, len, t) < 0)
        buf[0] = '\0';
    return buf;
}

void kg__server_query(struct lws *wsi, char *out, size_t outlen)
{
    /* lws splits the query into '&'-separated fragments; join them back. */
    size_t o = 0;
    out[0] = '\0';
    char frag[512];
    for (int i = 0; i < 32; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n <= 0)
            break;
        if (o + (size_t)n + 2 >= outlen)
            break;
        if (o)
            out[o++] = '&';
        memcpy(out + o, frag, (size_t)n);
        o += (size_t)n;
        out[o] = '\0';
    }
}

bool kg__server_authorized(const kg_dashboard_options *o, struct lws *wsi, const char *query,
                           bool *via_query)
{
    *via_query = false;
    if (!o->token)
        return true;
    char buf[1024];
    if (kg__auth_bearer_ok(o->token, kg__hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf,
                                                  sizeof buf)))
        return true;
    if (kg__auth_cookie_ok(o->token, kg__hdr(wsi, WSI_TOKEN_HTTP_COOKIE, buf, sizeof buf)))
        return true;
    if (kg__query_get(query, "token", buf, sizeof buf) &&
        kg__token_equal(o->token, buf, strlen(buf))) {
        *via_query = true;
        return true;
    }
    return false;
}
