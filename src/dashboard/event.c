/* dashboard/event.c - what an acceptable event is: the schema checks and
 * the tables of event names and types.
 *
 * The required fields (docs/events.md) with the right JSON types, bounded
 * string lengths, a known event_type.  Unknown event names are accepted
 * (counted as "other") so newer producers still show up. */
#include <string.h>

#include "event.h"
#include "kaygraph/monitor.h"
#include "util/iso8601.h"

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
    ev->ts_ms = kg_iso8601_parse_ms(ev->timestamp);
    return 0;
}
