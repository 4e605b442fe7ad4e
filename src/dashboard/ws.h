/* dashboard/ws.h - one WebSocket client, socket-free: its cursor in the broadcast
 * ring, its private reply queue, client messages, frame building (ws.c). */
#ifndef KG_DASH_WS_H
#define KG_DASH_WS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "body.h"
#include "hub.h"
#include "util/list.h"

#define KG__WS_PRIVATE_MAX 16            /* queued replies per client */
#define KG__WS_PRIV_BYTES_MAX (16u << 20) /* reply bytes queued per client */
#define KG__WS_RX_MAX (64 * 1024)        /* largest client message */
#define KG__WS_WRITE_SOFT (64 * 1024)    /* bytes per write before yielding */

typedef struct kg__wsclient {
    kg_link link;            /* in the server's client list */
    void *conn;               /* the server's connection, NULL when not on a socket */
    uint64_t cursor;          /* next broadcast entry to send */
    kg__body priv[KG__WS_PRIVATE_MAX];  /* replies, sent before broadcasts */
    unsigned priv_head, priv_len;
    size_t priv_bytes;        /* queued and half-written reply bytes */
    kg__body cur;             /* the reply being written (its header is out) */
    bool cur_active;
    /* Answers owed to requests that found the queue full or the budget
     * spent: framed as short errors, one per request. */
    unsigned owed_full, owed_busy;
    uint64_t dropped;         /* dropped for this client, not yet noticed */
    uint64_t dropped_total;
    bool resync;              /* send notice + initial before anything else */
    double last_progress;     /* last time a write went out (or connect) */
    uint64_t sent;
    char *rx;                 /* fragments of the message being received */
    size_t rx_len;
    bool rx_overflow;
    char peer[64];
    bool batch;               /* asked for {"type":"events","data":[...]} frames */
    /* get_workflow_events for a run not in memory, with h->history: ws.c
     * sets fetch_wanted and fetch_id instead of answering; the server starts
     * the fetch (fetch_busy while it runs) and answers through
     * kg__ws_client_history. */
    bool fetch_wanted, fetch_busy;
    char fetch_id[KG__ID_MAX + 1];
} kg__wsclient;

/* Start a client: its cursor and an "initial" message, consistent with each
 * other (one lock).  0 or KG_ENOMEM. */
int kg__ws_client_start(kg__hub *h, kg__wsclient *c);
/* Release what the client holds (its replies leave h->pending). */
void kg__ws_client_end(kg__hub *h, kg__wsclient *c);
/* A received fragment; on the final one the message is handled and replies
 * are queued.  Returns 0, KG_EPROTO (over KG__WS_RX_MAX: close 1009) or
 * KG_EPARSE (not UTF-8: close 1007) when the client must be closed. */
int kg__ws_client_rx(kg__hub *h, kg__wsclient *c, const void *p, size_t n, bool final);
/* False when the reply queue is (nearly) full: stop reading this client's
 * messages until kg__ws_client_fill has made room. */
bool kg__ws_client_can_take(const kg__wsclient *c);
/* Handle one whole client message (fuzzable). */
void kg__ws_client_message(kg__hub *h, kg__wsclient *c, const char *msg, size_t len);
/* True when something waits for this client. */
bool kg__ws_client_pending(kg__hub *h, const kg__wsclient *c);
/* Queue the workflow_events reply for a run fetched from Redis: `events`
 * (borrowed array) or NULL when not found (`why` then says why, or NULL). */
void kg__ws_client_history(kg__hub *h, kg__wsclient *c, const char *workflow_id, json_t *events,
                           const char *why);
/* Append the next WebSocket frames (server frames: unmasked text) to `out`,
 * about KG__WS_WRITE_SOFT bytes (at least one whole message if any).
 * Returns the number of messages framed. */
size_t kg__ws_client_fill(kg__hub *h, kg__wsclient *c, kg_buf *out, double now);
/* Frame header for an unmasked FIN text frame of `len` bytes; returns its size. */
size_t kg__ws_frame_header(uint8_t hdr[10], uint64_t len);

#endif
