/* dashboard/ingest.c - events in: webhook bodies and event texts, parsed,
 * checked (event.c) and added to the hub.
 *
 * Every source (POST /api/ingest, the Redis subscription, the in-process
 * feed) comes through here, so one set of rules decides what an acceptable
 * event is.  Parsing happens before the hub lock is taken; a batch then
 * takes the lock once. */
#include <string.h>

#include "ingest.h"
#include "store.h"
#include "util/clock.h"

/* ---- bodies --------------------------------------------------------------------------- */

/* The text we keep and send for an event: its own text when we were given
 * exactly one event (no re-serialisation), otherwise a compact dump. */
static kg_text *kg__event_msg(json_t *ev, const char *text, size_t len)
{
    if (text) {
        while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == '\t'))
            len--;
        while (len && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t')) {
            text++;
            len--;
        }
        return kg_text_new(text, len);
    }
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_json(&sb, ev);
    kg_text *m = sb.failed ? NULL : kg_text_new(sb.data, sb.len);
    kg_buf_free(&sb);
    return m;
}

static void kg__note_error(kg__ingest_result *res, const kg_error_t *e, size_t index, bool batch)
{
    if (res->first_error[0])
        return;
    if (batch)
        snprintf(res->first_error, sizeof res->first_error, "events[%zu]: %.200s", index, e->message);
    else
        snprintf(res->first_error, sizeof res->first_error, "%.200s", e->message);
}

int kg__ingest_body(kg__hub *h, const char *body, size_t len, kg__ingest_result *res,
                    kg_error_t *err)
{
    kg__ingest_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    if (len > h->max_body)
        return kg_error_set(err, KG_ERANGE, "PayloadTooLarge", "body of %zu bytes is over %zu",
                            len, h->max_body);
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root)
        return kg_error_set(err, KG_EPARSE, "ParseError", "malformed JSON at line %d column %d: %s",
                            je.line, je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return kg_error_set(err, KG_EPARSE, "SchemaError",
                            "body must be an event object or {\"events\":[...]}");
    }
    json_t *events = json_object_get(root, "events");
    bool batch = events != NULL;
    if (batch && !json_is_array(events)) {
        json_decref(root);
        return kg_error_set(err, KG_EPARSE, "SchemaError", "\"events\" must be an array");
    }
    size_t n = batch ? json_array_size(events) : 1;
    if (n == 0) {
        json_decref(root);
        return 0;   /* an empty batch is a valid (if pointless) webhook call */
    }
    kg__event *evs = calloc(n, sizeof *evs);
    kg_text **msgs = calloc(n, sizeof *msgs);
    if (!evs || !msgs) {
        free(evs);
        free(msgs);
        json_decref(root);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        kg_error_t e;
        kg_error_clear(&e);
        json_t *ev = batch ? json_array_get(events, i) : root;
        if (kg__event_check(ev, &evs[ok], &e) != 0) {
            res->rejected++;
            kg__note_error(res, &e, i, batch);
            continue;
        }
        msgs[ok] = kg__event_msg(ev, batch ? NULL : body, len);
        if (!msgs[ok]) {
            res->rejected++;
            continue;
        }
        ok++;
    }
    /* history (store.h): its copies are made before the lock. */
    kg__sev **sevs = h->store && ok ? calloc(ok, sizeof *sevs) : NULL;
    for (size_t i = 0; sevs && i < ok; i++)
        sevs[i] = kg__store_prepare(h->store, &evs[i], msgs[i]);
    /* One lock for the whole batch. */
    double now = kg_clock_mono();
    pthread_mutex_lock(&h->lock);
    size_t refused = 0;   /* history (store.h): the store is behind */
    for (size_t i = 0; i < ok; i++) {
        if (!kg__store_room(h->store, msgs[i]->len)) {
            refused = ok - i;
            break;
        }
        int rc = kg__agg_add(h->agg, &evs[i], msgs[i], now);
        if (rc == 0) {
            kg__hub_push_locked(h, msgs[i], KG__B_EVENT);
            kg__store_put(h->store, sevs ? &sevs[i] : NULL);   /* history */
            res->accepted++;
        } else if (rc == KG_EEXISTS) {
            res->duplicates++;
        }
    }
    if (res->rejected)
        kg__agg_note_rejected(h->agg, res->rejected);
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add(&h->events, res->accepted);
    atomic_fetch_add(&h->rejected, res->rejected);
    atomic_fetch_add(&h->duplicates, res->duplicates);
    for (size_t i = 0; i < ok; i++) {
        kg_text_unref(msgs[i]);
        kg__store_discard(sevs ? sevs[i] : NULL);   /* history: not queued */
    }
    free(sevs);
    free(msgs);
    free(evs);
    json_decref(root);
    if (res->accepted)
        kg__hub_wake(h);
    if (refused)   /* history: the sender retries the batch; what was accepted is a duplicate then */
        return kg_error_set(err, KG_EFULL, "Busy",
                            "the history store is behind: %zu of %zu events accepted; retry",
                            res->accepted + res->duplicates, n);
    if (res->rejected == n)
        return kg_error_set(err, KG_EPARSE, "SchemaError", "%s", res->first_error);
    return 0;
}

static int ingest_one(kg__hub *h, const char *text, size_t len, bool may_refuse, kg_error_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) {
        atomic_fetch_add(&h->rejected, 1);
        return kg_error_set(err, KG_EPARSE, "ParseError", "malformed JSON: %s", je.text);
    }
    kg__event ev;
    int rc = kg__event_check(root, &ev, err);
    if (rc == 0) {
        kg_text *m = kg__event_msg(root, text, len);
        rc = m ? kg__hub_add(h, &ev, m, may_refuse)
               : kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        kg_text_unref(m);
        if (rc == KG_EEXISTS)
            rc = 0;   /* at-least-once delivery: a duplicate is not a failure */
        if (rc == KG_EFULL)   /* history: retry later */
            kg_error_set(err, KG_EFULL, "Busy", "the history store is behind; retry");
    } else {
        atomic_fetch_add(&h->rejected, 1);
        pthread_mutex_lock(&h->lock);
        kg__agg_note_rejected(h->agg, 1);
        pthread_mutex_unlock(&h->lock);
    }
    json_decref(root);
    return rc;
}

int kg__ingest_event_text(kg__hub *h, const char *text, size_t len, kg_error_t *err)
{
    return ingest_one(h, text, len, true, err);
}

int kg__ingest_event_text_live(kg__hub *h, const char *text, size_t len, kg_error_t *err)
{
    return ingest_one(h, text, len, false, err);
}

int kg__ingest_event_text_wait(kg__hub *h, const char *text, size_t len, atomic_bool *stop,
                               kg_error_t *err)
{
    int rc;
    while ((rc = kg__ingest_event_text(h, text, len, err)) == KG_EFULL &&
           !atomic_load(stop)) {
        /* What was added before waits for clients too. */
        kg__hub_wake(h);
        kg_clock_sleep(0.005);
    }
    return rc;
}
