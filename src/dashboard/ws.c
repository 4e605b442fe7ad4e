/* dashboard/ws.c - one WebSocket client: what it has been sent, what it asked for.
 *
 * A client is a cursor into the hub's broadcast ring plus a small private
 * queue of replies (its "initial" state, workflow_events answers).  Nothing
 * is copied per client until it is writable: then kg__ws_client_fill frames
 * the next messages - many per write, each its own WebSocket text frame -
 * into one buffer that the server writes in a single call, so 10,000
 * events/s cost a few writes per client, not 10,000.
 *
 * A reply is a kg__body: references to the events the stores hold, framed
 * and copied out KG__WS_WRITE_SOFT bytes at a time as the socket drains, so
 * a client that asks for a 5,000-event run and never reads costs a list of
 * references, not a copy.  Reply bytes count against the hub's budget for
 * bytes waiting on slow readers (h->pending, shared with HTTP responses);
 * over it, a large reply is refused with an error message.
 *
 * Every client message gets exactly one answer: a reply, or an error saying
 * why not (malformed, too many at once, busy).  The server stops reading
 * from a client whose reply queue is full (kg__ws_client_can_take), so a
 * client that pipelines requests is slowed down, not dropped.
 *
 * A client more than `client_queue` messages behind (or behind the ring's
 * tail) is not sent the backlog: it gets a "notice" saying how many messages
 * it lost and a fresh "initial" snapshot, i.e. its missed events are
 * coalesced into the current state.  A client that never becomes writable
 * costs nothing but its cursor.
 *
 * No libwebsockets here: the server calls these from its callbacks, tests
 * and the fuzz target call them directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"
#include "ws.h"
#include "wsproto.h"

static const char kg__ev_prefix[] = "{\"type\":\"event\",\"data\":";
static const char kg__evs_prefix[] = "{\"type\":\"events\",\"data\":[";
#define KG__WS_BATCH_BYTES (60 * 1024)   /* one "events" frame, about */
#define KG__WS_BATCH_MAX 512
/* Replies up to this size are always queued (if the queue has room): the
 * budget of bytes waiting for slow readers only refuses large ones. */
#define KG__WS_SMALL_REPLY (16 * 1024)

size_t kg__ws_frame_header(uint8_t hdr[10], uint64_t len)
{
    hdr[0] = 0x81;   /* FIN + text */
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

static void kg__frame(kg_buf *out, const char *pre, size_t pre_len, const char *p, size_t n,
                      const char *post, size_t post_len)
{
    uint8_t hdr[10];
    size_t h = kg__ws_frame_header(hdr, pre_len + n + post_len);
    if (!kg_buf_reserve(out, h + pre_len + n + post_len))
        return;
    kg_buf_append(out, hdr, h);
    kg_buf_append(out, pre, pre_len);
    kg_buf_append(out, p, n);
    kg_buf_append(out, post, post_len);
}

/* Clients that connect with /ws?batch=1 (the web UI) get runs of consecutive
 * events as one {"type":"events","data":[...]} frame: a browser pays per
 * message, and at 10,000 events/s one message per event costs it more than a
 * core.  Other clients get docs/protocol.md's one "event" message per event.
 * Returns how many entries from `from` were framed (at least one). */
static unsigned kg__frame_events(const kg__hub *h, uint64_t from, kg_buf *out)
{
    size_t total = sizeof kg__evs_prefix - 1 + 2;   /* prefix ... "]}" */
    unsigned n = 0;
    for (uint64_t i = from; i < h->head && n < KG__WS_BATCH_MAX; i++, n++) {
        const kg__bentry *e = &h->ring[i & h->mask];
        if (e->kind != KG__B_EVENT || (n && total + e->msg->len + 1 > KG__WS_BATCH_BYTES))
            break;
        total += e->msg->len + (n ? 1 : 0);
    }
    uint8_t hdr[10];
    size_t hl = kg__ws_frame_header(hdr, total);
    if (!kg_buf_reserve(out, hl + total))
        return n;   /* out->oom is set: the caller stops */
    kg_buf_append(out, hdr, hl);
    kg_buf_append(out, kg__evs_prefix, sizeof kg__evs_prefix - 1);
    for (unsigned k = 0; k < n; k++) {
        const kg_text *m = h->ring[(from + k) & h->mask].msg;
        if (k)
            kg_buf_append(out, ",", 1);
        kg_buf_append(out, m->data, m->len);
    }
    kg_buf_append(out, "]}", 2);
    return n;
}

/* ---- the reply queue ------------------------------------------------------------ */

bool kg__ws_client_can_take(const kg__wsclient *c)
{
    /* Two slots spare: a request that arrives anyway still gets its answer. */
    return c->priv_len + 2 <= KG__WS_PRIVATE_MAX && c->priv_bytes < KG__WS_PRIV_BYTES_MAX;
}

/* Queue `b` (taken, even on failure).  False when the queue is full, the
 * client's bytes are over KG__WS_PRIV_BYTES_MAX, or a large reply finds the
 * hub's budget spent (unless `force`); *busy tells the last case apart. */
static bool kg__priv_push(kg__hub *h, kg__wsclient *c, kg__body *b, bool force, bool *busy)
{
    *busy = false;
    bool ok = !b->oom && c->priv_len < KG__WS_PRIVATE_MAX &&
              c->priv_bytes + b->len <= KG__WS_PRIV_BYTES_MAX;
    if (ok && !force && b->len > KG__WS_SMALL_REPLY && h->pending >= h->pending_max)
        ok = false, *busy = true;
    if (!ok) {
        kg__body_free(b);
        return false;
    }
    c->priv[(c->priv_head + c->priv_len) % KG__WS_PRIVATE_MAX] = *b;
    c->priv_len++;
    c->priv_bytes += b->len;
    h->pending += b->len;
    kg__body_init(b);
    return true;
}

static bool kg__priv_push_sb(kg__hub *h, kg__wsclient *c, kg_buf *sb, bool force, bool *busy)
{
    kg__body b;
    kg__body_init(&b);
    if (sb->failed)
        b.oom = true;
    else
        kg__body_text(&b, sb->data ? sb->data : "", sb->len);
    return kg__priv_push(h, c, &b, force, busy);
}

/* Bytes of a reply that will not be written after all (or were). */
static void kg__pending_done(kg__hub *h, kg__wsclient *c, size_t n)
{
    c->priv_bytes -= n;
    h->pending -= n;
}

int kg__ws_client_start(kg__hub *h, kg__wsclient *c)
{
    kg_buf sb;
    kg_buf_init(&sb);
    double now = kg_clock_mono();
    pthread_mutex_lock(&h->lock);
    /* The snapshot and the cursor are taken under one lock: every event is
     * either in "initial" or sent after it, never both, never neither. */
    c->cursor = h->head;
    kg__agg_initial_json(h->agg, now, &sb);
    pthread_mutex_unlock(&h->lock);
    c->last_progress = now;
    /* The initial state is what a client connects for: it is queued even
     * when the budget is spent (its size is bounded, see aggregate.c). */
    bool busy;
    bool ok = kg__priv_push_sb(h, c, &sb, true, &busy);
    kg_buf_free(&sb);
    return ok ? 0 : KG_ENOMEM;
}

void kg__ws_client_end(kg__hub *h, kg__wsclient *c)
{
    if (c->cur_active) {
        kg__pending_done(h, c, kg__body_left(&c->cur));
        kg__body_free(&c->cur);
        c->cur_active = false;
    }
    while (c->priv_len) {
        kg__body *b = &c->priv[c->priv_head];
        kg__pending_done(h, c, b->len);
        kg__body_free(b);
        c->priv_head = (c->priv_head + 1) % KG__WS_PRIVATE_MAX;
        c->priv_len--;
    }
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}

/* An answer that could not be queued is still owed: counted, and framed by
 * kg__ws_client_fill as a short error (it needs no queue slot). */
static void kg__owe_error(kg__wsclient *c, bool busy)
{
    if (busy)
        c->owed_busy++;
    else
        c->owed_full++;
}

static void kg__reply_error(kg__hub *h, kg__wsclient *c, const char *message)
{
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "{\"type\":\"error\",\"message\":");
    kg_buf_json_cstr(&sb, message);
    kg_buf_puts(&sb, "}");
    bool busy;
    if (!kg__priv_push_sb(h, c, &sb, false, &busy))
        kg__owe_error(c, busy);
    kg_buf_free(&sb);
}

static void kg__reply_workflow_events(kg__hub *h, kg__wsclient *c, const char *id)
{
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "{\"type\":\"workflow_events\",\"workflow_id\":");
    kg_buf_json_cstr(&sb, id);
    kg_buf_puts(&sb, ",\"events\":[");
    kg__body b;
    kg__body_init(&b);
    kg__body_text(&b, sb.data ? sb.data : "", sb.len);
    json_t *summary = NULL;
    pthread_mutex_lock(&h->lock);
    int rc = kg__agg_run_events_refs(h->agg, id, &b, &summary);
    pthread_mutex_unlock(&h->lock);
    kg_buf_reset(&sb);
    if (rc != 0 && h->history && !c->fetch_busy) {
        /* Not in memory: the server asks Redis and answers later. */
        json_decref(summary);
        kg_buf_free(&sb);
        kg__body_free(&b);
        c->fetch_wanted = true;
        snprintf(c->fetch_id, sizeof c->fetch_id, "%s", id);
        return;
    }
    if (rc != 0) {
        kg_buf_puts(&sb, "],\"found\":false,\"status\":null,\"graph\":null,\"truncated\":0}");
    } else {
        kg_buf_puts(&sb, "],\"found\":true,\"status\":");
        kg_buf_json(&sb, json_object_get(summary, "status"));
        kg_buf_puts(&sb, ",\"graph\":");
        kg_buf_json(&sb, json_object_get(summary, "graph"));
        kg_buf_puts(&sb, ",\"truncated\":");
        kg_buf_json(&sb, json_object_get(summary, "truncated"));
        kg_buf_puts(&sb, "}");
    }
    json_decref(summary);
    if (sb.failed)
        b.oom = true;
    kg__body_text(&b, sb.data ? sb.data : "", sb.len);
    kg_buf_free(&sb);
    bool busy;
    if (!kg__priv_push(h, c, &b, false, &busy))
        kg__owe_error(c, busy);
}

void kg__ws_client_history(kg__hub *h, kg__wsclient *c, const char *workflow_id, json_t *events,
                           const char *why)
{
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_puts(&sb, "{\"type\":\"workflow_events\",\"workflow_id\":");
    kg_buf_json_cstr(&sb, workflow_id);
    json_t *summary = events && json_array_size(events)
                          ? kg__run_summary_of_events(workflow_id, events)
                          : NULL;
    if (!summary) {
        kg_buf_puts(&sb, ",\"events\":[],\"found\":false,\"status\":null,\"graph\":null,"
                         "\"truncated\":0");
        if (why) {
            kg_buf_puts(&sb, ",\"error\":");
            kg_buf_json_cstr(&sb, why);
        }
        kg_buf_puts(&sb, "}");
    } else {
        kg_buf_puts(&sb, ",\"events\":");
        kg_buf_json(&sb, events);
        kg_buf_puts(&sb, ",\"found\":true,\"source\":\"redis\",\"status\":");
        kg_buf_json(&sb, json_object_get(summary, "status"));
        kg_buf_puts(&sb, ",\"graph\":");
        kg_buf_json(&sb, json_object_get(summary, "graph"));
        kg_buf_puts(&sb, ",\"truncated\":0}");
    }
    json_decref(summary);
    bool busy;
    if (!kg__priv_push_sb(h, c, &sb, false, &busy))
        kg__owe_error(c, busy);
    kg_buf_free(&sb);
}

void kg__ws_client_message(kg__hub *h, kg__wsclient *c, const char *msg, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(msg, len, 0, &je);
    if (!json_is_object(root)) {
        kg__reply_error(h, c, root ? "message must be a JSON object" : "malformed JSON");
        json_decref(root);
        return;
    }
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!type) {
        kg__reply_error(h, c, "missing \"type\"");
    } else if (strcmp(type, "get_workflow_events") == 0) {
        json_t *id = json_object_get(root, "workflow_id");
        if (!json_is_string(id) || json_string_length(id) == 0 ||
            json_string_length(id) > KG__ID_MAX ||
            strlen(json_string_value(id)) != json_string_length(id))
            kg__reply_error(h, c, "get_workflow_events needs a \"workflow_id\" string");
        else
            kg__reply_workflow_events(h, c, json_string_value(id));
    } else if (strcmp(type, "ping") == 0) {
        kg_buf sb;
        kg_buf_init(&sb);
        kg_buf_puts(&sb, "{\"type\":\"pong\"}");
        bool busy;
        if (!kg__priv_push_sb(h, c, &sb, false, &busy))
            kg__owe_error(c, busy);
        kg_buf_free(&sb);
    } else {
        kg_buf sb;
        kg_buf_init(&sb);
        kg_buf_puts(&sb, "unknown message type ");
        kg_buf_json_cstr(&sb, strlen(type) > 64 ? "(long)" : type);
        kg__reply_error(h, c, sb.failed ? "unknown message type" : sb.data);
        kg_buf_free(&sb);
    }
    json_decref(root);
}

int kg__ws_client_rx(kg__hub *h, kg__wsclient *c, const void *p, size_t n, bool final)
{
    if (c->rx_len + n > KG__WS_RX_MAX)
        return KG_EPROTO;
    if (final && c->rx_len == 0) {
        if (!kg__utf8_valid(p, n))
            return KG_EPARSE;
        kg__ws_client_message(h, c, p, n);
        return 0;
    }
    if (!c->rx) {
        c->rx = malloc(KG__WS_RX_MAX);
        if (!c->rx)
            return KG_ENOMEM;
    }
    if (n)
        memcpy(c->rx + c->rx_len, p, n);
    c->rx_len += n;
    if (final) {
        int rc = 0;
        if (kg__utf8_valid(c->rx, c->rx_len))
            kg__ws_client_message(h, c, c->rx, c->rx_len);
        else
            rc = KG_EPARSE;
        free(c->rx);
        c->rx = NULL;
        c->rx_len = 0;
        return rc;
    }
    return 0;
}

bool kg__ws_client_pending(kg__hub *h, const kg__wsclient *c)
{
    return c->cur_active || c->priv_len || c->resync || c->owed_busy || c->owed_full ||
           atomic_load_explicit(&h->head_pub, memory_order_acquire) != c->cursor;
}

/* ---- framing -------------------------------------------------------------------------- */

/* Owed answers (see kg__owe_error), one short frame each. */
static size_t kg__fill_owed(kg__wsclient *c, kg_buf *out)
{
    static const char full[] = "{\"type\":\"error\",\"message\":\"too many requests at once: "
                               "this one was not answered; send it again\"}";
    static const char busy[] = "{\"type\":\"error\",\"message\":\"server busy: too many bytes "
                               "wait for slow clients; send the request again later\"}";
    size_t count = 0;
    while ((c->owed_busy || c->owed_full) && out->len < KG__WS_WRITE_SOFT && !out->failed) {
        bool b = c->owed_busy > 0;
        kg__frame(out, "", 0, b ? busy : full, b ? sizeof busy - 1 : sizeof full - 1, "", 0);
        if (b)
            c->owed_busy--;
        else
            c->owed_full--;
        count++;
    }
    return count;
}

/* Replies: one frame header, then the body as the budget allows.  Returns
 * replies completed; c->cur_active stays set while one is half-written. */
static size_t kg__fill_replies(kg__hub *h, kg__wsclient *c, kg_buf *out)
{
    size_t count = 0;
    while (out->len < KG__WS_WRITE_SOFT && !out->failed) {
        if (c->cur_active) {
            size_t n = kg__body_copy(&c->cur, out, KG__WS_WRITE_SOFT - out->len);
            kg__pending_done(h, c, n);
            if (kg__body_left(&c->cur))
                break;
            kg__body_free(&c->cur);
            c->cur_active = false;
            count++;
            continue;
        }
        if (!c->priv_len)
            break;
        c->cur = c->priv[c->priv_head];
        kg__body_init(&c->priv[c->priv_head]);
        c->priv_head = (c->priv_head + 1) % KG__WS_PRIVATE_MAX;
        c->priv_len--;
        c->cur_active = true;
        uint8_t hdr[10];
        kg_buf_append(out, hdr, kg__ws_frame_header(hdr, c->cur.len));
    }
    return count;
}

size_t kg__ws_client_fill(kg__hub *h, kg__wsclient *c, kg_buf *out, double now)
{
    size_t count = kg__fill_replies(h, c, out);
    /* A frame is half-written, or the buffer is full: broadcasts wait. */
    if (c->cur_active || out->len >= KG__WS_WRITE_SOFT) {
        c->sent += count;
        if (count)
            c->last_progress = now;
        return count;
    }
    count += kg__fill_owed(c, out);
    uint64_t newly_dropped = 0;
    pthread_mutex_lock(&h->lock);
    uint64_t lag = h->head - c->cursor;
    if (c->cursor < h->tail || lag > h->client_queue) {
        /* Too far behind: skip to now and resynchronise with a snapshot. */
        newly_dropped = lag;
        c->dropped += lag;
        c->dropped_total += lag;
        c->cursor = h->head;
        c->resync = true;
    }
    if (c->resync) {
        kg_buf_puts(out, "");   /* keep `out` valid even if nothing else is added */
        kg_buf note;
        kg_buf_init(&note);
        kg_buf_printf(&note,
                      "{\"type\":\"notice\",\"data\":{\"level\":\"warning\",\"dropped\":%llu,"
                      "\"message\":\"this client fell behind: %llu messages were dropped; "
                      "the state is resent\"}}",
                      (unsigned long long)c->dropped, (unsigned long long)c->dropped);
        kg__frame(out, "", 0, note.data ? note.data : "", note.len, "", 0);
        kg_buf_reset(&note);
        c->cursor = h->head;
        kg__agg_initial_json(h->agg, now, &note);
        kg__frame(out, "", 0, note.data ? note.data : "", note.len, "", 0);
        kg_buf_free(&note);
        count += 2;
        c->dropped = 0;
        c->resync = false;
    }
    while (c->cursor < h->head && out->len < KG__WS_WRITE_SOFT && !out->failed) {
        const kg__bentry *e = &h->ring[c->cursor & h->mask];
        if (e->kind == KG__B_EVENT && c->batch) {
            unsigned n = kg__frame_events(h, c->cursor, out);
            c->cursor += n;
            count += n;
            continue;
        }
        if (e->kind == KG__B_EVENT)
            kg__frame(out, kg__ev_prefix, sizeof kg__ev_prefix - 1, e->msg->data, e->msg->len,
                      "}", 1);
        else
            kg__frame(out, "", 0, e->msg->data, e->msg->len, "", 0);
        c->cursor++;
        count++;
    }
    kg__agg_note_ws(h->agg, count, newly_dropped);
    pthread_mutex_unlock(&h->lock);
    c->sent += count;
    if (count)
        c->last_progress = now;
    return count;
}
