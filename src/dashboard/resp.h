/* dashboard/resp.h - an HTTP request as the routes see it, and the response
 * they fill (resp.c).  Socket-free: server.c fills the request from
 * libwebsockets and writes the response; api.c and api_runs.c route. */
#ifndef KG_DASH_RESP_H
#define KG_DASH_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "body.h"
#include "event.h"
#include "util/buf.h"

struct kg__squery;

typedef struct kg__http_req {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* without the query */
    const char *query;        /* the raw query string, "" when none */
    const char *content_type; /* NULL when absent */
    const char *accept_encoding;
    const char *body;
    size_t body_len;
    bool body_too_large;
} kg__http_req;

typedef struct kg__http_resp {
    int status;
    const char *content_type;     /* static */
    const char *content_encoding; /* static or NULL */
    const char *cache_control;    /* static or NULL */
    int retry_after;              /* seconds for a Retry-After header, 0 = none */
    const unsigned char *static_body;  /* embedded asset, when not NULL */
    size_t static_len;
    kg_buf body;                  /* otherwise, unless `stream` has parts */
    kg__body stream;              /* references to the stores' events */
    /* 404 for a run not in memory while a Redis history is configured: the
     * server may fetch it (kg__api_history) instead of sending this. */
    bool history_id_set;
    char history_id[KG__ID_MAX + 1];
    /* Run history (api_runs.c): a query the server hands to the store's
     * query thread, answering when it comes back (kg__api_runs_answer). */
    struct kg__squery *deferred;
    char disposition[KG__ID_MAX + 64];   /* Content-Disposition, "" when none */
} kg__http_resp;

/* Make `resp` the error {"error": message} with `status`. */
void kg__resp_error(kg__http_resp *resp, int status, const char *message);
/* Bytes of the response body (static, text or stream). */
size_t kg__resp_body_len(const kg__http_resp *resp);
/* Release the text and the stream. */
void kg__resp_free(kg__http_resp *resp);

#endif
