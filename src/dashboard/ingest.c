/* dashboard/ingest.c - events in: schema checks and webhook-body parsing.
 *
 * Every source (POST /api/ingest, the Redis subscription, the in-process
 * feed) comes through here, so one set of rules decides what an acceptable
 * event is: DESIGN.md's nine required fields with the right JSON types,
 * bounded string lengths, a known event_type.  Unknown event names are
 * accepted (counted as "other") so newer producers still show up.
 *
 * Parsing happens before the hub lock is taken; a batch then takes the lock
 * once. */
#include <string.h>

#include "dash_internal.h"
#include "kaygraph/monitor.h"
#include "store.h"

/* ---- name tables (from monitor.h's X-macros, no link dependency) ------------- */

static const char *const kg__type_names[] = {
#define KG__T(name, str) str,
    KG_EVENT_TYPE_MAP(KG__T)
#undef KG__T
};

static const char *const kg__event_names[] = {
#define KG__N(name, str, type) str,
    KG_EVENT_NAME_MAP(KG__N)
#undef KG__N
};

int kg__event_type_index(const char *s)
{
    for (int i = 0; i < KG_EVENT_TYPE_COUNT; i++)
        if (strcmp(s, kg__type_names[i]) == 0)
            return i;
    return -1;
}

int kg__event_name_index(const char *s)
{
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        if (strcmp(s, kg__event_names[i]) == 0)
            return i;
    return -1;
}

const char *kg__event_name_at(int i)
{
    return i >= 0 && i < KG_EVENT_NAME_COUNT ? kg__event_names[i] : "other";
}

const char *kg__event_type_at(int i)
{
    return i >= 0 && i < KG_EVENT_TYPE_COUNT ? kg__type_names[i] : "other";
}

int kg__event_name_count(void)
{
    return KG_EVENT_NAME_COUNT;
}

/* ---- schema ---------------------------------------------------------------------- */

static int kg__field(json_t *root, const char *key, size_t max, bool nonempty, const char **out,
                     kg_error_t *err)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return kg_error_set(err, KG_EPARSE, "SchemaError", "missing field \"%s\"", key);
    /* Events that belong to no run (the dispatcher's own metrics) may carry
     * null ids; they read as empty. */
    if (!nonempty && json_is_null(v)) {
        *out = "";
        return 0;
    }
    if (!json_is_string(v))
        return kg_error_set(err, KG_EPARSE, "SchemaError", "field \"%s\" must be a string", key);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n > max)
        return kg_error_set(err, KG_EPARSE, "SchemaError", "field \"%s\" is longer than %zu",
                            key, max);
    if (nonempty && n == 0)
        return kg_error_set(err, KG_EPARSE, "SchemaError", "field \"%s\" is empty", key);
    if (strlen(s) != n)   /* an embedded \u0000 */
        return kg_error_set(err, KG_EPARSE, "SchemaError", "field \"%s\" contains NUL", key);
    *out = s;
    return 0;
}

int kg__event_check(json_t *root, kg__event *ev, kg_error_t *err)
{
    memset(ev, 0, sizeof *ev);
    if (!json_is_object(root))
        return kg_error_set(err, KG_EPARSE, "SchemaError", "an event must be a JSON object");
    ev->root = root;
    int rc;
    if ((rc = kg__field(root, "event_id", 128, true, &ev->event_id, err)) ||
        (rc = kg__field(root, "timestamp", 64, true, &ev->timestamp, err)) ||
        (rc = kg__field(root, "node_id", KG__ID_MAX, false, &ev->node_id, err)) ||
        (rc = kg__field(root, "node_type", KG__ID_MAX, false, &ev->node_type, err)) ||
        (rc = kg__field(root, "event_type", 32, true, &ev->event_type, err)) ||
        (rc = kg__field(root, "event_name", 64, true, &ev->event_name, err)) ||
        (rc = kg__field(root, "correlation_id", KG__ID_MAX, false, &ev->correlation_id, err)) ||
        (rc = kg__field(root, "workflow_id", KG__ID_MAX, false, &ev->workflow_id, err)))
        return rc;
    /* node_path is optional (producers before it, other producers). */
    ev->node_path = "";
    if (json_object_get(root, "node_path") &&
        (rc = kg__field(root, "node_path", KG__PATH_MAX, false, &ev->node_path, err)))
        return rc;
    ev->data = json_object_get(root, "data");
    if (!json_is_object(ev->data))
        return kg_error_set(err, KG_EPARSE, "SchemaError", "field \"data\" must be an object");
    ev->type = kg__event_type_index(ev->event_type);
    if (ev->type < 0)
        return kg_error_set(err, KG_EPARSE, "SchemaError",
                            "unknown event_type \"%.32s\" (lifecycle, data, error, metric)",
                            ev->event_type);
    ev->name = kg__event_name_index(ev->event_name);
    json_t *seq = json_object_get(root, "seq");
    if (json_is_integer(seq) && json_integer_value(seq) >= 0) {
        ev->seq = (uint64_t)json_integer_value(seq);
        ev->has_seq = true;
    }
    ev->ts_ms = kg__parse_iso_ms(ev->timestamp);
    return 0;
}

/* ---- bodies --------------------------------------------------------------------------- */

/* The text we keep and send for an event: its own text when we were given
 * exactly one event (no re-serialisation), otherwise a compact dump. */
static kg__msg *kg__event_msg(json_t *ev, const char *text, size_t len)
{
    if (text) {
        while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == '\t'))
            len--;
        while (len && (*text == ' ' || *text == '\n' || *text == '\r' || *text == '\t')) {
            text++;
            len--;
        }
        return kg__msg_new(text, len);
    }
    kg__sb sb;
    kg__sb_init(&sb);
    kg__sb_json(&sb, ev);
    kg__msg *m = sb.oom ? NULL : kg__msg_new(sb.buf, sb.len);
    kg__sb_free(&sb);
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
    kg__msg **msgs = calloc(n, sizeof *msgs);
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
    double now = kg__mono_now();
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
        kg__msg_unref(msgs[i]);
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

int kg__ingest_event_text(kg__hub *h, const char *text, size_t len, kg_error_t *err)
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
        kg__msg *m = kg__event_msg(root, text, len);
        rc = m ? kg__hub_add(h, &ev, m) : kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        kg__msg_unref(m);
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
