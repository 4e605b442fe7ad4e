/* dashboard/api_runs.c - the run-history routes: /api/runs..., /api/graphs, /api/nodes/...
 *
 * Like api.c, a pure function from request to response, in two halves:
 * kg__api_runs_handle validates the request on the service thread (bad
 * input is a 4xx at once) and describes a query (kg__squery); the query
 * runs later on the store's query thread against the engine interface
 * (store.h) and formats its answer there, so neither the database nor the
 * JSON building ever stalls the event loop.  The service thread only moves
 * the finished body into the response (kg__api_runs_answer).
 *
 * Wire format and examples: docs/history.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_runs.h"
#include "util/clock.h"
#include "util/iso8601.h"

enum { KG__R_LIST, KG__R_RUN, KG__R_EVENTS, KG__R_EXPORT, KG__R_GRAPHS, KG__R_NODE };

#define KG__RUNS_LIMIT_DEFAULT 50
#define KG__RUNS_LIMIT_MAX 500
#define KG__EVENTS_LIMIT_DEFAULT 1000
#define KG__EVENTS_LIMIT_MAX 10000
#define KG__RUN_EXECS_MAX 10000       /* node executions on a run page */
#define KG__RUN_CHILDREN_MAX 200
#define KG__RUN_ERRORS_MAX 100
#define KG__EXPORT_MAX_BYTES (256u << 20)
#define KG__POINTS_MAX 200000         /* rows behind one statistics answer */
#define KG__BUCKETS_DEFAULT 60
#define KG__BUCKETS_MAX 500
#define KG__WINDOW_DEFAULT_S (7 * 86400.0)

static const char kg__json[] = "application/json";
static const char *const kg__run_status[] = {"running", "success", "failed"};
static const char *const kg__exec_status[] = {"running", "completed", "failed"};

/* ---- request parsing (service thread) -------------------------------------------------- */

/* A time: ISO 8601 UTC, Unix seconds, or an age such as 90s, 15m, 24h, 7d,
 * 2w (that long before now).  Epoch ms, or -1 when it does not parse. */
static int64_t kg__parse_when(const char *s, double now)
{
    int64_t iso = kg_iso8601_parse_ms(s);
    if (iso >= 0)
        return iso;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    static const struct {
        char unit;
        double seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    if (*end == '\0')
        return (int64_t)(v * 1000);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (end[0] == units[i].unit && end[1] == '\0') {
            double t = now - v * units[i].seconds;
            return t > 0 ? (int64_t)(t * 1000) : 0;
        }
    return -1;
}

/* A duration: 90, 90s, 15m, 24h, 7d, 2w.  Seconds, or -1. */
static double kg__parse_span(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v <= 0)
        return -1;
    if (*end == '\0')
        return v;
    const char *units = "smhdw";
    static const double mult[] = {1, 60, 3600, 86400, 7 * 86400};
    const char *u = end[1] == '\0' ? strchr(units, end[0]) : NULL;
    return u && *u ? v * mult[u - units] : -1;
}

static bool kg__parse_size(const char *s, size_t min, size_t max, size_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < (long long)min || v > (long long)max)
        return false;
    *out = (size_t)v;
    return true;
}

/* "<a>.<b>" of two signed integers (the cursors we hand out). */
static bool kg__parse_pair(const char *s, int64_t *a, int64_t *b)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end != '.')
        return false;
    const char *p = end + 1;
    long long y = strtoll(p, &end, 10);
    if (end == p || *end)
        return false;
    *a = x;
    *b = y;
    return true;
}

static bool kg__parse_status(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[KG__ID_MAX + 1];   /* as large as the parameter it copies */
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "running") == 0)
            *mask |= 1u << KG__ST_RUNNING;
        else if (strcmp(t, "success") == 0)
            *mask |= 1u << KG__ST_SUCCESS;
        else if (strcmp(t, "failed") == 0)
            *mask |= 1u << KG__ST_FAILED;
        else if (strcmp(t, "stale") == 0)
            *mask |= 1u << KG__STALE_BIT;
        else
            return false;
    }
    return *mask != 0;
}

/* A query parameter that must parse when present: false after a 400. */
typedef struct kg__params {
    const kg__http_req *req;
    kg__http_resp *resp;
    double now;
    bool bad;
} kg__params;

static bool kg__param(kg__params *p, const char *name, char *out, size_t outlen)
{
    if (p->bad || !kg__query_get(p->req->query, name, out, outlen))
        return false;
    if (!*out)
        return false;   /* ?status= means "any", as a cleared filter in a form does */
    return true;
}

static void kg__param_bad(kg__params *p, const char *msg)
{
    if (!p->bad)
        kg__resp_error(p->resp, 400, msg);
    p->bad = true;
}

static void kg__param_time(kg__params *p, const char *name, int64_t *out)
{
    char v[64];
    if (!kg__param(p, name, v, sizeof v))
        return;
    *out = kg__parse_when(v, p->now);
    if (*out < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s must be an ISO 8601 time, Unix seconds or an age like 24h",
                 name);
        kg__param_bad(p, msg);
    }
}

static void kg__param_limit(kg__params *p, size_t dflt, size_t max, size_t *out)
{
    char v[32], msg[96];
    *out = dflt;
    if (kg__param(p, "limit", v, sizeof v) && !kg__parse_size(v, 1, max, out)) {
        snprintf(msg, sizeof msg, "limit must be an integer 1..%zu", max);
        kg__param_bad(p, msg);
    }
}

static void kg__run_query_fn(kg__squery *q, const kg__store_ops *ops, void *conn);

static bool kg__parse_list(kg__params *p, kg__squery *q)
{
    char v[KG__ID_MAX + 1];
    kg__runs_query *rq = &q->rq;
    rq->since_ms = rq->until_ms = -1;
    kg__param_limit(p, KG__RUNS_LIMIT_DEFAULT, KG__RUNS_LIMIT_MAX, &rq->limit);
    if (kg__param(p, "status", v, sizeof v) && !kg__parse_status(v, &rq->status_mask))
        kg__param_bad(p, "status must be a comma list of running, success, failed, stale");
    if (kg__param(p, "graph", v, sizeof v)) {
        snprintf(q->node, sizeof q->node, "%s", v);
        rq->graph = q->node;
    }
    if (kg__param(p, "q", v, sizeof v)) {
        snprintf(q->id, sizeof q->id, "%s", v);
        rq->prefix = q->id;
    }
    kg__param_time(p, "since", &rq->since_ms);
    kg__param_time(p, "until", &rq->until_ms);
    if (kg__param(p, "cursor", v, sizeof v)) {
        rq->cursor = kg__parse_pair(v, &rq->cursor_ms, &rq->cursor_rid);
        if (!rq->cursor)
            kg__param_bad(p, "bad cursor (use next_cursor from the previous page)");
    }
    if (kg__param(p, "nested", v, sizeof v))
        rq->nested = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    return !p->bad;
}

static bool kg__parse_events(kg__params *p, kg__squery *q)
{
    char v[64];
    q->after_seq = INT64_MIN;
    q->after_id = INT64_MIN;
    kg__param_limit(p, KG__EVENTS_LIMIT_DEFAULT, KG__EVENTS_LIMIT_MAX, &q->limit);
    if (kg__param(p, "cursor", v, sizeof v) && !kg__parse_pair(v, &q->after_seq, &q->after_id))
        kg__param_bad(p, "bad cursor (use next_cursor from the previous page)");
    if (kg__param(p, "type", v, sizeof v)) {
        if (strcmp(v, "error") != 0)
            kg__param_bad(p, "type can only be \"error\"");
        q->errors_only = true;
    }
    return !p->bad;
}

static bool kg__parse_graphs(kg__params *p, kg__squery *q)
{
    char v[64];
    double window = KG__WINDOW_DEFAULT_S;
    if (kg__param(p, "window", v, sizeof v) && (window = kg__parse_span(v)) < 0)
        kg__param_bad(p, "window must be a duration like 3600, 90m, 24h, 7d");
    q->since_ms = (int64_t)((p->now - window) * 1000);
    kg__param_time(p, "since", &q->since_ms);
    return !p->bad;
}

static bool kg__parse_node(kg__params *p, kg__squery *q)
{
    char v[32];
    q->until_ms = -1;
    q->since_ms = (int64_t)((p->now - KG__WINDOW_DEFAULT_S) * 1000);
    kg__param_time(p, "since", &q->since_ms);
    kg__param_time(p, "until", &q->until_ms);
    q->buckets = KG__BUCKETS_DEFAULT;
    if (kg__param(p, "buckets", v, sizeof v) &&
        !kg__parse_size(v, 1, KG__BUCKETS_MAX, &q->buckets))
        kg__param_bad(p, "buckets must be an integer 1..500");
    if (!p->bad && q->until_ms >= 0 && q->until_ms <= q->since_ms)
        kg__param_bad(p, "until must be after since");
    return !p->bad;
}

/* "/api/runs/<id>[/events|/export]" -> id and route; false on a bad id. */
static bool kg__split_run_path(const char *rest, kg__squery *q)
{
    size_t n = strlen(rest);
    q->route = KG__R_RUN;
    if (n > 7 && strcmp(rest + n - 7, "/events") == 0) {
        q->route = KG__R_EVENTS;
        n -= 7;
    } else if (n > 7 && strcmp(rest + n - 7, "/export") == 0) {
        q->route = KG__R_EXPORT;
        n -= 7;
    }
    return n > 0 && kg__url_decode(rest, n, q->id, sizeof q->id, false);
}

/* "/api/nodes/<graph>/<node...>/stats": the node is everything between the
 * graph and "/stats" (a path such as inner/validator). */
static bool kg__split_node_path(const char *rest, kg__squery *q)
{
    size_t n = strlen(rest);
    const char *slash = strchr(rest, '/');
    if (n <= 6 || strcmp(rest + n - 6, "/stats") != 0 || !slash || slash >= rest + n - 6)
        return false;
    const char *node = slash + 1;
    size_t node_len = (size_t)(rest + n - 6 - node);
    return slash > rest && node_len > 0 &&
           kg__url_decode(rest, (size_t)(slash - rest), q->id, sizeof q->id, false) &&
           kg__url_decode(node, node_len, q->node, sizeof q->node, false);
}

bool kg__api_runs_handle(kg__hub *h, const kg__http_req *req, kg__http_resp *resp)
{
    const char *path = req->path;
    int route;
    const char *rest = NULL;
    if (strcmp(path, "/api/runs") == 0 || strcmp(path, "/api/runs/") == 0)
        route = KG__R_LIST;
    else if (strncmp(path, "/api/runs/", 10) == 0)
        route = KG__R_RUN, rest = path + 10;
    else if (strcmp(path, "/api/graphs") == 0 || strcmp(path, "/api/graphs/") == 0)
        route = KG__R_GRAPHS;
    else if (strncmp(path, "/api/nodes/", 11) == 0)
        route = KG__R_NODE, rest = path + 11;
    else
        return false;
    if (!h->store) {
        kg__resp_error(resp, 404, "run history is off (the dashboard was started with --db none)");
        return true;
    }
    kg__squery *q = kg__squery_new();
    if (!q) {
        kg__resp_error(resp, 503, "out of memory");
        return true;
    }
    q->route = route;
    q->run = kg__run_query_fn;
    q->stale_after = kg__store_stale_after(h->store);
    kg__params p = {.req = req, .resp = resp, .now = kg_clock_real()};
    q->rq.stale_before_ms = (int64_t)((p.now - q->stale_after) * 1000);
    bool ok;
    switch (route) {
    case KG__R_LIST:
        ok = kg__parse_list(&p, q);
        break;
    case KG__R_RUN:
        ok = kg__split_run_path(rest, q);
        if (!ok)
            kg__resp_error(resp, 400, "bad run id");
        else if (q->route == KG__R_EVENTS)
            ok = kg__parse_events(&p, q);
        break;
    case KG__R_GRAPHS:
        ok = kg__parse_graphs(&p, q);
        break;
    default:
        ok = kg__split_node_path(rest, q);
        if (!ok)
            kg__resp_error(resp, 404, "no such route (use /api/nodes/<graph>/<node>/stats)");
        else
            ok = kg__parse_node(&p, q);
        break;
    }
    if (!ok) {
        kg__squery_free(q);
        return true;
    }
    resp->deferred = q;
    return true;
}

void kg__api_runs_answer(kg__http_resp *resp, kg__squery *q)
{
    resp->status = q->status;
    resp->content_type = q->content_type ? q->content_type : kg__json;
    resp->cache_control = "no-store";
    resp->static_body = NULL;
    snprintf(resp->disposition, sizeof resp->disposition, "%s", q->disposition);
    kg_buf_free(&resp->body);
    resp->body = q->body;
    kg_buf_init(&q->body);
    if (resp->body.failed)
        kg__resp_error(resp, 503, "out of memory");
}

/* ---- formatting (query thread) -------------------------------------------------------------- */

static void kg__put_key(kg_buf *sb, bool *first, const char *key)
{
    kg_buf_puts(sb, *first ? "{" : ",");
    *first = false;
    kg_buf_json_cstr(sb, key);
    kg_buf_puts(sb, ":");
}

static void kg__put_str(kg_buf *sb, bool *first, const char *key, const char *v)
{
    kg__put_key(sb, first, key);
    if (v)
        kg_buf_json_cstr(sb, v);
    else
        kg_buf_puts(sb, "null");
}

static void kg__put_int(kg_buf *sb, bool *first, const char *key, int64_t v)
{
    kg__put_key(sb, first, key);
    kg_buf_printf(sb, "%lld", (long long)v);
}

static void kg__put_num(kg_buf *sb, bool *first, const char *key, double v)
{
    kg__put_key(sb, first, key);
    if (isnan(v))
        kg_buf_puts(sb, "null");
    else
        kg_buf_printf(sb, "%.9g", v);
}

/* "…_at": ISO 8601, and "…_ms": epoch ms, both null when unknown. */
static void kg__put_time(kg_buf *sb, bool *first, const char *key, int64_t ms)
{
    char name[32], iso[32];
    snprintf(name, sizeof name, "%s_at", key);
    if (ms >= 0)
        kg_iso8601_format(iso, (int64_t)((((double)ms + 0.5) / 1000.0) * 1e9));   /* +0.5: no ms lost to rounding */
    kg__put_str(sb, first, name, ms >= 0 ? iso : NULL);
    snprintf(name, sizeof name, "%s_ms", key);
    kg__put_key(sb, first, name);
    if (ms >= 0)
        kg_buf_printf(sb, "%lld", (long long)ms);
    else
        kg_buf_puts(sb, "null");
}

static const char *kg__status_name(const kg__run_row *r, int64_t stale_before_ms)
{
    if (r->status == KG__ST_RUNNING && r->last_ms >= 0 && r->last_ms < stale_before_ms)
        return "stale";
    return r->status >= 0 && r->status <= 2 ? kg__run_status[r->status] : "running";
}

static void kg__run_json(kg_buf *sb, const kg__run_row *r, int64_t stale_before_ms)
{
    bool first = true;
    /* workflow_id and parent_workflow_id as in the live view's run
     * summaries (/api/workflows), so one piece of UI can show both. */
    kg__put_str(sb, &first, "run_id", r->run_id);
    kg__put_str(sb, &first, "workflow_id", r->run_id);
    kg__put_str(sb, &first, "graph", r->graph);
    kg__put_str(sb, &first, "graph_type", r->graph_type);
    kg__put_str(sb, &first, "parent_workflow_id", r->parent_id);
    kg__put_str(sb, &first, "status", kg__status_name(r, stale_before_ms));
    kg__put_time(sb, &first, "started", r->started_ms);
    kg__put_time(sb, &first, "ended", r->ended_ms);
    kg__put_time(sb, &first, "last_event", r->last_ms);
    double d = r->duration;
    if (isnan(d) && r->ended_ms >= 0 && r->started_ms >= 0)
        d = (double)(r->ended_ms - r->started_ms) / 1000.0;
    kg__put_num(sb, &first, "duration", d);
    kg__put_str(sb, &first, "final_action", r->final_action);
    kg__put_str(sb, &first, "error", r->error);
    kg__put_int(sb, &first, "event_count", r->events);
    kg__put_int(sb, &first, "error_count", r->errors);
    kg__put_int(sb, &first, "node_executions", r->executions);
    kg__put_key(sb, &first, "source");
    bool f2 = true;
    kg__put_str(sb, &f2, "host", r->host);
    kg__put_key(sb, &f2, "pid");
    if (r->pid >= 0)
        kg_buf_printf(sb, "%lld", (long long)r->pid);
    else
        kg_buf_puts(sb, "null");
    kg_buf_puts(sb, "}}");
}

static void kg__exec_json(kg_buf *sb, const kg__exec_row *x)
{
    bool first = true;
    kg__put_str(sb, &first, "run_id", x->run_id);
    kg__put_str(sb, &first, "execution_id", x->corr);
    kg__put_key(sb, &first, "item");
    if (x->item >= 0)
        kg_buf_printf(sb, "%d", x->item);
    else
        kg_buf_puts(sb, "null");
    kg__put_str(sb, &first, "node", x->node);
    kg__put_str(sb, &first, "node_id", x->node_id);
    kg__put_str(sb, &first, "node_type", x->node_type);
    kg__put_str(sb, &first, "status",
                x->status >= 0 && x->status <= 2 ? kg__exec_status[x->status] : "running");
    kg__put_time(sb, &first, "started", x->started_ms);
    kg__put_time(sb, &first, "ended", x->ended_ms);
    kg__put_num(sb, &first, "duration", x->duration);
    kg__put_int(sb, &first, "attempts", x->retries + 1);
    kg__put_int(sb, &first, "retries", x->retries);
    kg__put_int(sb, &first, "events", x->events);
    kg__put_int(sb, &first, "errors", x->errors);
    kg__put_str(sb, &first, "action", x->action);
    kg__put_str(sb, &first, "error", x->error);
    kg__put_str(sb, &first, "error_type", x->error_type);
    kg__put_str(sb, &first, "phase", x->phase);
    kg_buf_puts(sb, "}");
}

static void kg__q_error(kg__squery *q, int status, const char *msg)
{
    kg__http_resp r = {0};
    kg_buf_init(&r.body);
    kg__resp_error(&r, status, msg);
    kg_buf_free(&q->body);
    q->body = r.body;
    q->status = status;
    q->content_type = kg__json;
    q->disposition[0] = '\0';
}

/* An engine failure: 404 for an unknown run, 503 otherwise (with why). */
static void kg__q_failed(kg__squery *q, int rc, const kg_error_t *err)
{
    if (rc == KG_ENOTFOUND) {
        kg__q_error(q, 404, "unknown run (never stored, or removed by retention)");
        return;
    }
    char msg[KG_ERROR_MESSAGE_MAX + 32];
    snprintf(msg, sizeof msg, "history query failed: %s",
             err->message[0] ? err->message : kg_strerror(rc));
    kg__q_error(q, 503, msg);
}

/* ---- the routes (query thread) ------------------------------------------------------------- */

typedef struct kg__list_ctx {
    kg__squery *q;
    size_t n;
    int64_t last_ms, last_rid;
} kg__list_ctx;

static int kg__list_row(void *ud, const kg__run_row *r)
{
    kg__list_ctx *c = ud;
    if (c->n == c->q->rq.limit)
        return 1;   /* the extra row: there is a next page */
    kg_buf_puts(&c->q->body, c->n ? "," : "");
    kg__run_json(&c->q->body, r, c->q->rq.stale_before_ms);
    c->n++;
    c->last_ms = r->started_ms;
    c->last_rid = r->rid;
    return 0;
}

static void kg__route_list(kg__squery *q, const kg__store_ops *ops, void *conn)
{
    kg__list_ctx c = {.q = q};
    kg_error_t err;
    kg_error_clear(&err);
    kg__runs_query rq = q->rq;
    rq.limit = q->rq.limit + 1;
    kg_buf_puts(&q->body, "{\"runs\":[");
    int rc = ops->runs(conn, &rq, kg__list_row, &c, &err);
    if (rc < 0) {
        kg__q_failed(q, rc, &err);
        return;
    }
    kg_buf_puts(&q->body, "],\"next_cursor\":");
    if (rc == 1)
        kg_buf_printf(&q->body, "\"%lld.%lld\"", (long long)c.last_ms, (long long)c.last_rid);
    else
        kg_buf_puts(&q->body, "null");
    kg_buf_printf(&q->body, ",\"limit\":%zu}", q->rq.limit);
    q->status = 200;
}

typedef struct kg__text_ctx {
    kg_buf *sb;
    size_t n;
    int64_t seq, id;
    bool lines;                   /* JSON Lines instead of array items */
    size_t max_bytes;
} kg__text_ctx;

static int kg__text_row(void *ud, int64_t seq, int64_t id, const char *text, size_t len)
{
    kg__text_ctx *c = ud;
    if (c->max_bytes && c->sb->len + len > c->max_bytes)
        return KG_ERANGE;
    if (!c->lines && c->n)
        kg_buf_puts(c->sb, ",");
    kg_buf_append(c->sb, text, len);
    if (c->lines)
        kg_buf_puts(c->sb, "\n");
    c->n++;
    c->seq = seq;
    c->id = id;
    return c->sb->failed ? KG_ENOMEM : 0;
}

static int kg__exec_row_cb(void *ud, const kg__exec_row *x)
{
    kg__text_ctx *c = ud;
    if (c->n)
        kg_buf_puts(c->sb, ",");
    kg__exec_json(c->sb, x);
    c->n++;
    return 0;
}

static int kg__child_row(void *ud, const kg__run_row *r)
{
    kg__list_ctx *c = ud;
    kg_buf_puts(&c->q->body, c->n ? "," : "");
    kg__run_json(&c->q->body, r, c->q->rq.stale_before_ms);
    c->n++;
    return 0;
}

static void kg__route_run(kg__squery *q, const kg__store_ops *ops, void *conn)
{
    kg__run_row run = {0};
    kg_error_t err;
    kg_error_clear(&err);
    int rc = ops->run_get(conn, q->id, &run, &err);
    if (rc) {
        kg__q_failed(q, rc, &err);
        return;
    }
    kg_buf *sb = &q->body;
    kg_buf_puts(sb, "{\"run\":");
    kg__run_json(sb, &run, q->rq.stale_before_ms);
    sb->len--;   /* reopen the object for the topology */
    kg_buf_puts(sb, ",\"topology\":");
    kg_buf_puts(sb, run.topology ? run.topology : "null");
    kg_buf_puts(sb, "},\"nodes\":[");
    kg__text_ctx t = {.sb = sb};
    rc = ops->execs(conn, run.rid, KG__RUN_EXECS_MAX + 1, kg__exec_row_cb, &t, &err);
    kg_buf_printf(sb, "],\"nodes_truncated\":%s,\"children\":[",
                  t.n > KG__RUN_EXECS_MAX ? "true" : "false");
    kg__list_ctx c = {.q = q};
    if (rc == 0)
        rc = ops->children(conn, run.run_id, KG__RUN_CHILDREN_MAX, kg__child_row, &c, &err);
    kg_buf_puts(sb, "],\"errors\":[");
    kg__text_ctx e = {.sb = sb};
    if (rc == 0)
        rc = ops->events(conn, run.rid, INT64_MIN, INT64_MIN, KG__RUN_ERRORS_MAX, true,
                         kg__text_row, &e, &err);
    kg_buf_puts(sb, "]}");
    kg__run_row_clear(&run);
    if (rc < 0) {
        kg__q_failed(q, rc, &err);
        return;
    }
    q->status = 200;
}

static void kg__route_events(kg__squery *q, const kg__store_ops *ops, void *conn, bool export)
{
    kg__run_row run = {0};
    kg_error_t err;
    kg_error_clear(&err);
    int rc = ops->run_get(conn, q->id, &run, &err);
    if (rc) {
        kg__q_failed(q, rc, &err);
        return;
    }
    kg_buf *sb = &q->body;
    kg__text_ctx t = {.sb = sb, .lines = export, .max_bytes = export ? KG__EXPORT_MAX_BYTES : 0};
    if (!export) {
        kg_buf_puts(sb, "{\"run_id\":");
        kg_buf_json_cstr(sb, q->id);
        kg_buf_puts(sb, ",\"events\":[");
        rc = ops->events(conn, run.rid, q->after_seq, q->after_id, q->limit, q->errors_only,
                         kg__text_row, &t, &err);
    } else {
        /* The whole run, page by page (a page is one short statement). */
        t.seq = t.id = INT64_MIN;
        size_t before;
        do {
            before = t.n;
            rc = ops->events(conn, run.rid, t.seq, t.id, 5000, false, kg__text_row, &t, &err);
        } while (rc == 0 && t.n - before == 5000);
    }
    kg__run_row_clear(&run);
    if (rc == KG_ERANGE) {
        kg__q_error(q, 413, "run too large to export in one response; page through "
                            "/api/runs/<id>/events instead");
        return;
    }
    if (rc < 0) {
        kg__q_failed(q, rc, &err);
        return;
    }
    if (export) {
        q->content_type = "application/x-ndjson";
        /* A file name from the id, with anything unusual replaced. */
        char name[KG__ID_MAX + 1];
        size_t i = 0;
        for (const char *p = q->id; *p && i < sizeof name - 1; p++)
            name[i++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'
                            ? *p
                            : '_';
        name[i] = '\0';
        snprintf(q->disposition, sizeof q->disposition,
                 "attachment; filename=\"run-%s.jsonl\"", name);
    } else {
        /* A full page may have a next one; the cursor is the last event's
         * place.  A page that is not full is the end. */
        kg_buf_puts(sb, "],\"next_cursor\":");
        if (t.n == q->limit)
            kg_buf_printf(sb, "\"%lld.%lld\"", (long long)t.seq, (long long)t.id);
        else
            kg_buf_puts(sb, "null");
        kg_buf_puts(sb, "}");
    }
    q->status = 200;
}

/* ---- statistics -------------------------------------------------------------------------------- */

typedef struct kg__point {
    int64_t ms;
    double d;
    int status;
} kg__point;

typedef struct kg__points {
    kg__point *v;
    size_t n, cap;
} kg__points;

static int kg__point_add(void *ud, const char *graph, int64_t ms, double d, int status)
{
    (void)graph;
    kg__points *p = ud;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        kg__point *v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return KG_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = (kg__point){ms, d, status};
    return 0;
}

/* The k-th smallest of v[0..n) moved to v[k], smaller ones before it
 * (Hoare's selection: O(n) on average, no full sort). */
static void kg__select(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

/* Nearest-rank p50 and p95 of v[0..n) (reordered). */
static void kg__p50_p95(double *v, size_t n, double *p50, double *p95)
{
    *p50 = *p95 = NAN;
    if (!n)
        return;
    size_t k95 = (size_t)ceil(0.95 * (double)n), k50 = (size_t)ceil(0.50 * (double)n);
    k95 = k95 ? k95 - 1 : 0;
    k50 = k50 ? k50 - 1 : 0;
    kg__select(v, n, k95);
    *p95 = v[k95];
    if (k50 < k95)
        kg__select(v, k95, k50);
    *p50 = v[k50];
}

typedef struct kg__agg_stats {
    int64_t count, success, failed, running;
    double sum, max;
    double *d;                    /* durations of ended ones (into a shared buffer) */
    size_t nd;
} kg__agg_stats;

static void kg__stats_json(kg_buf *sb, bool *first, kg__agg_stats *s)
{
    double p50, p95;
    kg__p50_p95(s->d, s->nd, &p50, &p95);
    kg__put_int(sb, first, "count", s->count);
    kg__put_int(sb, first, "failed", s->failed);
    kg__put_num(sb, first, "avg", s->nd ? s->sum / (double)s->nd : NAN);
    kg__put_num(sb, first, "p50", p50);
    kg__put_num(sb, first, "p95", p95);
    kg__put_num(sb, first, "max", s->nd ? s->max : NAN);
}

static void kg__stats_add(kg__agg_stats *s, const kg__point *p, double *slot)
{
    s->count++;
    if (p->status == KG__ST_SUCCESS)
        s->success++;
    else if (p->status == KG__ST_FAILED)
        s->failed++;
    else
        s->running++;
    if (!isnan(p->d) && p->status != KG__ST_RUNNING) {
        if (!s->d)
            s->d = slot;
        s->d[s->nd++] = p->d;
        s->sum += p->d;
        if (p->d > s->max)
            s->max = p->d;
    }
}

/* Per graph, as the rows stream by: no copy of the rows is kept. */
typedef struct kg__graph_acc {
    char *name;
    kg__agg_stats s;
    double *d;
    size_t cap;
    int64_t last;
} kg__graph_acc;

typedef struct kg__graphs {
    kg_map index;                /* name -> position + 1 */
    kg__graph_acc *g;
    size_t n, cap, rows;
} kg__graphs;

static int kg__graph_row(void *ud, const char *graph, int64_t ms, double d, int status)
{
    kg__graphs *gs = ud;
    if (++gs->rows > KG__POINTS_MAX)
        return 1;   /* enough: the answer says "truncated" */
    uintptr_t at = (uintptr_t)kg_map_get(&gs->index, graph);
    if (!at) {
        if (gs->n == gs->cap) {
            size_t cap = gs->cap ? gs->cap * 2 : 8;
            kg__graph_acc *g = realloc(gs->g, cap * sizeof *g);
            if (!g)
                return KG_ENOMEM;
            gs->g = g;
            gs->cap = cap;
        }
        kg__graph_acc *g = &gs->g[gs->n];
        memset(g, 0, sizeof *g);
        g->last = -1;
        if (!(g->name = strdup(graph)) ||
            kg_map_put(&gs->index, graph, (void *)(uintptr_t)(gs->n + 1)) != 0) {
            free(g->name);
            return KG_ENOMEM;
        }
        at = ++gs->n;
    }
    kg__graph_acc *g = &gs->g[at - 1];
    if (g->s.nd == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        double *v = realloc(g->d, cap * sizeof *v);
        if (!v)
            return KG_ENOMEM;
        g->d = v;
        g->cap = cap;
    }
    g->s.d = g->d;
    kg__point pt = {ms, d, status};
    kg__stats_add(&g->s, &pt, g->d);
    if (ms > g->last)
        g->last = ms;
    return 0;
}

static int kg__graph_cmp(const void *x, const void *y)
{
    return strcmp(((const kg__graph_acc *)x)->name, ((const kg__graph_acc *)y)->name);
}

static void kg__route_graphs(kg__squery *q, const kg__store_ops *ops, void *conn)
{
    kg__graphs gs = {0};
    kg_error_t err;
    kg_error_clear(&err);
    int rc = ops->graph_points(conn, q->since_ms, KG__POINTS_MAX + 1, kg__graph_row, &gs, &err);
    if (rc < 0) {
        if (rc == KG_ENOMEM)
            kg_error_set(&err, rc, NULL, "out of memory");
        kg__q_failed(q, rc, &err);
    } else {
        if (gs.n)
            qsort(gs.g, gs.n, sizeof *gs.g, kg__graph_cmp);
        kg_buf *sb = &q->body;
        char iso[32];
        kg_iso8601_format(iso, (int64_t)((((double)q->since_ms + 0.5) / 1000.0) * 1e9));
        kg_buf_printf(sb, "{\"since\":\"%s\",\"truncated\":%s,\"graphs\":[", iso,
                      rc == 1 ? "true" : "false");
        for (size_t i = 0; i < gs.n; i++) {
            kg__graph_acc *g = &gs.g[i];
            kg__agg_stats *s = &g->s;
            double p50, p95;
            kg__p50_p95(g->d, s->nd, &p50, &p95);
            kg_buf_puts(sb, i ? "," : "");
            bool first = true;
            kg__put_str(sb, &first, "graph", *g->name ? g->name : NULL);
            kg__put_int(sb, &first, "runs", s->count);
            kg__put_int(sb, &first, "success", s->success);
            kg__put_int(sb, &first, "failed", s->failed);
            kg__put_int(sb, &first, "running", s->running);
            kg__put_num(sb, &first, "success_rate",
                        s->success + s->failed
                            ? (double)s->success / (double)(s->success + s->failed)
                            : NAN);
            kg__put_num(sb, &first, "p50_duration", p50);
            kg__put_num(sb, &first, "p95_duration", p95);
            kg__put_num(sb, &first, "avg_duration", s->nd ? s->sum / (double)s->nd : NAN);
            kg__put_time(sb, &first, "last_started", g->last);
            kg_buf_puts(sb, "}");
        }
        kg_buf_puts(sb, "]}");
        q->status = 200;
    }
    for (size_t i = 0; i < gs.n; i++) {
        free(gs.g[i].name);
        free(gs.g[i].d);
    }
    free(gs.g);
    kg_map_free(&gs.index);
}

/* The window node stats cover, and how it is cut. */
typedef struct kg__window {
    int64_t since, until;
    double width;                 /* ms per bucket */
    size_t buckets;
    bool truncated;
} kg__window;

static size_t kg__bucket_of(const kg__window *w, int64_t ms)
{
    double k = floor((double)(ms - w->since) / w->width);
    return k < 0 ? 0 : k >= (double)w->buckets ? w->buckets - 1 : (size_t)k;
}

/* Statistics per bucket (b[0..buckets)) and over all (*all) of the points.
 * The durations go in `mem` (2 * n doubles): each bucket's in one stretch
 * of the first half (a counting sort by bucket), all of them in the second.
 * 0 or KG_ENOMEM. */
static int kg__bucketize(const kg__points *pts, const kg__window *w, kg__agg_stats *b,
                         kg__agg_stats *all, double *mem)
{
    size_t *start = calloc(w->buckets + 1, sizeof *start);
    if (!start)
        return KG_ENOMEM;
    for (size_t i = 0; i < pts->n; i++)
        start[kg__bucket_of(w, pts->v[i].ms) + 1]++;
    for (size_t k = 1; k <= w->buckets; k++)
        start[k] += start[k - 1];
    for (size_t i = 0; i < pts->n; i++) {
        size_t k = kg__bucket_of(w, pts->v[i].ms);
        kg__stats_add(&b[k], &pts->v[i], mem + start[k]);
        kg__stats_add(all, &pts->v[i], mem + pts->n);
    }
    free(start);
    return 0;
}

static void kg__node_json(kg__squery *q, const kg__window *w, kg__agg_stats *b,
                          kg__agg_stats *all)
{
    kg_buf *sb = &q->body;
    bool first = true;
    kg__put_str(sb, &first, "graph", q->id);
    kg__put_str(sb, &first, "node", q->node);
    kg__put_time(sb, &first, "since", w->since);
    kg__put_time(sb, &first, "until", w->until);
    kg__put_num(sb, &first, "bucket_s", w->width / 1000.0);
    kg_buf_printf(sb, ",\"truncated\":%s", w->truncated ? "true" : "false");
    kg__stats_json(sb, &first, all);
    kg_buf_puts(sb, ",\"buckets\":[");
    for (size_t k = 0; k < w->buckets; k++) {
        bool f = true;
        kg_buf_puts(sb, k ? "," : "");
        kg__put_time(sb, &f, "start", w->since + (int64_t)((double)k * w->width));
        kg__stats_json(sb, &f, &b[k]);
        kg_buf_puts(sb, "}");
    }
    kg_buf_puts(sb, "]}");
}

static void kg__route_node(kg__squery *q, const kg__store_ops *ops, void *conn)
{
    kg__points pts = {0};
    kg_error_t err;
    kg_error_clear(&err);
    int rc = ops->node_points(conn, q->id, q->node, q->since_ms, q->until_ms, KG__POINTS_MAX + 1,
                              kg__point_add, &pts, &err);
    kg__window w = {.since = q->since_ms, .buckets = q->buckets};
    w.until = q->until_ms >= 0 ? q->until_ms : (int64_t)(kg_clock_real() * 1000) + 1;
    if (pts.n > KG__POINTS_MAX) {
        /* Newest first: the window actually covered starts at the oldest kept. */
        w.truncated = true;
        pts.n = KG__POINTS_MAX;
        w.since = pts.v[pts.n - 1].ms;
    }
    w.width = (double)(w.until - w.since) / (double)w.buckets;
    kg__agg_stats *b = calloc(w.buckets, sizeof *b), all = {0};
    double *mem = malloc((2 * pts.n + 1) * sizeof *mem);
    if (rc == 0 && (!b || !mem || kg__bucketize(&pts, &w, b, &all, mem) != 0))
        rc = KG_ENOMEM;
    if (rc == KG_ENOMEM)
        kg_error_set(&err, rc, NULL, "out of memory");
    if (rc) {
        kg__q_failed(q, rc, &err);
    } else {
        kg__node_json(q, &w, b, &all);
        q->status = 200;
    }
    free(b);
    free(mem);
    free(pts.v);
}

static void kg__run_query_fn(kg__squery *q, const kg__store_ops *ops, void *conn)
{
    q->content_type = kg__json;
    switch (q->route) {
    case KG__R_LIST:
        kg__route_list(q, ops, conn);
        break;
    case KG__R_RUN:
        kg__route_run(q, ops, conn);
        break;
    case KG__R_EVENTS:
        kg__route_events(q, ops, conn, false);
        break;
    case KG__R_EXPORT:
        kg__route_events(q, ops, conn, true);
        break;
    case KG__R_GRAPHS:
        kg__route_graphs(q, ops, conn);
        break;
    default:
        kg__route_node(q, ops, conn);
        break;
    }
    if (q->body.failed)
        kg__q_error(q, 503, "out of memory");
}
