/* dashboard/aggregate.c - the aggregated state the dashboard shows.
 *
 * From the event stream it keeps: the union of every workflow topology seen
 * in workflow_started events; per node its live status, counts, timings
 * (average over all, p95 over a sliding window) and errors; recent runs with
 * their events; the last N events; counters and a per-second throughput
 * history.  Everything is bounded: nodes and runs by count (least recently
 * active evicted), events by count per run and by total bytes, duplicate
 * detection by a two-generation id set.
 *
 * Nodes are keyed by their path (node_path, "outer/inner/validator") when the
 * producer sends one, else by node_id, so the same id in two sub-graphs is
 * two nodes.  A key's part before its last "/" is the graph the node sits
 * in: network_graph nests a node inside that graph's entry when the graph is
 * itself a known node (a sub-graph), and puts it at the top otherwise.
 *
 * Out-of-order delivery (several dispatcher threads, retries, two sources)
 * is expected: a run's events are kept sorted by `seq`, and a node's status
 * only moves forward - within one run by `seq`, across runs by timestamp.
 *
 * Not thread-safe: the hub holds its lock around every call.  Time is passed
 * in (`now`, monotonic seconds) so tests control it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "util/clock.h"
#include "util/iso8601.h"
#include "util/list.h"
#include "util/map.h"
#include "kaygraph/monitor.h"

enum { KG__NS_IDLE, KG__NS_RUNNING, KG__NS_COMPLETED, KG__NS_FAILED, KG__NS_RETRYING };
static const char *const kg__node_status_str[] = {"idle", "running", "completed", "failed",
                                                   "retrying"};

enum { KG__RS_RUNNING, KG__RS_SUCCESS, KG__RS_FAILED, KG__RS_STALE };
static const char *const kg__run_status_str[] = {"running", "success", "failed", "stale"};

#define KG__P95_WINDOW 256
#define KG__RATE_SLOTS 64      /* per-second buckets kept (>= 60 shown) */
#define KG__DEDUP_GEN 65536    /* ids per generation of the duplicate set */
#define KG__ENDED_GEN 8192     /* ended runs remembered after eviction: 8-16 K */
#define KG__SOURCES_MAX 64     /* producers whose drop counters we track */
/* An event over this size is shown in "initial" messages as a brief: its
 * schema fields with "data":{"truncated":true,"original_size":N}.  With the
 * 100 events an initial message carries, that keeps it under ~7 MiB however
 * large the events are (each may be up to max_body), so a new client always
 * gets a usable state.  /api/events and the run stores keep the full text. */
#define KG__BRIEF_OVER (64 * 1024)
#define KG__INITIAL_EVENTS 100

typedef struct kg__node {
    kg_link lru;
    char *key;               /* node_path, or node_id when the producer sends no path */
    char *id;
    char *type;
    size_t parent_len;       /* key[0..parent_len) is the enclosing graph's key; 0: none */
    bool is_graph, batch;    /* from a topology: a sub-graph (a batch graph) */
    char *start;             /* a sub-graph's start node id */
    int status;
    uint64_t status_run;     /* hash of the workflow_id that set the status */
    uint64_t status_seq;
    int64_t status_ts;
    uint64_t started, completed, failed, retries, errors;
    double time_sum;
    uint64_t time_n;
    double times[KG__P95_WINDOW];
    unsigned times_pos, times_len;
    double last_seen;
    bool in_topology;
} kg__node;

typedef struct kg__run {
    kg_link lru;            /* least recently active first */
    char *id;
    uint64_t id_hash;
    uint64_t ordinal;        /* order of first sight */
    int status;
    char started_at[40], ended_at[40];
    double duration;         /* -1 unknown */
    char *final_action;
    char *parent;            /* parent_workflow_id of a nested run, or NULL */
    json_t *graph;
    struct kg__stored {
        kg_text *m;
        uint64_t seq;
    } *ev;                   /* ring sorted by seq */
    size_t ev_cap, ev_head, ev_len;
    size_t bytes;
    uint64_t truncated, event_count, error_count;
    double last_activity;
} kg__run;

typedef struct kg__edge {
    char *from, *to, *action;     /* ids, as in the topology */
    char *from_key, *to_key;      /* node keys (paths) */
    size_t parent_len;            /* from_key[0..parent_len) is its graph's key; 0: none */
    uint64_t count;
} kg__edge;

typedef struct kg__hashset {
    uint64_t *slots;   /* open addressing, 0 = empty */
    size_t cap, n;
} kg__hashset;

/* The ids (as 64-bit hashes) added lately: the last `gen` to `2 * gen`.
 * Two generations: when the current one is full the previous one is
 * forgotten all at once, which keeps lookups and memory O(1) with no
 * deletion logic. */
typedef struct kg__idset {
    kg__hashset g[2];   /* current, previous */
    size_t gen;
} kg__idset;

typedef struct kg__source {
    double dropped;
    double queue_depth;
} kg__source;

struct kg__agg {
    kg__agg_limits lim;
    double started;

    uint64_t total, rejected, duplicates, errors;
    uint64_t by_type[KG_EVENT_TYPE_COUNT];
    uint64_t by_name[KG_EVENT_NAME_COUNT + 1];   /* last: other names */
    uint64_t node_completed, node_failed;
    uint64_t runs_total, runs_success, runs_failed, runs_stale;
    uint64_t ws_sent, ws_dropped;
    unsigned clients;

    /* Per-second counts: slot s % SLOTS holds second s when rate_sec[] == s. */
    uint64_t rate_cnt[KG__RATE_SLOTS];
    int64_t rate_sec[KG__RATE_SLOTS];

    /* Ring of the last lim.recent_events, in arrival order. */
    struct kg__recent {
        kg_text *m;
        kg_text *brief;       /* NULL unless m is over KG__BRIEF_OVER */
        uint64_t seq, src;    /* src: hash of the producer (source host/pid) */
        bool has_seq;
    } *recent;
    size_t recent_head, recent_len;
    size_t recent_bytes;

    kg_map nodes;            /* id -> kg__node */
    kg_link node_lru;
    kg_map runs;             /* workflow_id -> kg__run */
    kg_link run_lru;
    uint64_t next_ordinal;
    size_t store_bytes;       /* event text held by runs */
    char *latest_run;
    char *latest_start;

    kg_map edges;            /* "from\x1fto\x1faction" -> kg__edge */
    uint64_t edges_dropped;

    kg_map sources;          /* "host/pid" -> kg__source */

    kg__idset dedup;          /* event_ids seen lately */
    kg__idset ended;          /* runs evicted after they ended (workflow_id hashes) */
};

/* ---- small helpers ------------------------------------------------------------- */

static char *kg__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void kg__set_str(char **dst, const char *s)
{
    if (*dst && strcmp(*dst, s) == 0)
        return;
    char *n = kg__strdup(s);
    if (!n)
        return;   /* keep the old value: a label, not worth failing for */
    free(*dst);
    *dst = n;
}

static double kg__json_num(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *kg__json_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- id sets: duplicate events, ended runs ------------------------------------------ */

static bool kg__hashset_has(const kg__hashset *d, uint64_t h)
{
    for (size_t i = h & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        if (d->slots[i] == h)
            return true;
        if (d->slots[i] == 0)
            return false;
    }
}

static void kg__hashset_add(kg__hashset *d, uint64_t h)
{
    for (size_t i = h & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
        if (d->slots[i] == h)
            return;
        if (d->slots[i] == 0) {
            d->slots[i] = h;
            d->n++;
            return;
        }
    }
}

static int kg__idset_init(kg__idset *s, size_t gen)
{
    s->gen = gen;
    for (int g = 0; g < 2; g++) {
        s->g[g].cap = 2 * gen;   /* at most half full */
        s->g[g].n = 0;
        s->g[g].slots = calloc(s->g[g].cap, sizeof(uint64_t));
    }
    return s->g[0].slots && s->g[1].slots ? 0 : KG_ENOMEM;
}

static void kg__idset_free(kg__idset *s)
{
    free(s->g[0].slots);
    free(s->g[1].slots);
}

/* 0 marks an empty slot. */
static uint64_t kg__id_hash(const char *id)
{
    return kg_hash(id, strlen(id)) | 1;
}

static bool kg__idset_has(const kg__idset *s, uint64_t h)
{
    return kg__hashset_has(&s->g[0], h) || kg__hashset_has(&s->g[1], h);
}

static void kg__idset_add(kg__idset *s, uint64_t h)
{
    if (s->g[0].n >= s->gen) {
        kg__hashset t = s->g[1];
        s->g[1] = s->g[0];
        memset(t.slots, 0, t.cap * sizeof *t.slots);
        t.n = 0;
        s->g[0] = t;
    }
    kg__hashset_add(&s->g[0], h);
}

/* True when `id` was seen among the last 64-128 K ids; records it. */
static bool kg__agg_seen(kg__agg *a, const char *id)
{
    uint64_t h = kg__id_hash(id);
    if (kg__idset_has(&a->dedup, h))
        return true;
    kg__idset_add(&a->dedup, h);
    return false;
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void kg__run_free(kg__agg *a, kg__run *r)
{
    for (size_t i = 0; i < r->ev_len; i++)
        kg_text_unref(r->ev[(r->ev_head + i) % r->ev_cap].m);
    a->store_bytes -= r->bytes;
    free(r->ev);
    json_decref(r->graph);
    free(r->final_action);
    free(r->parent);
    free(r->id);
    free(r);
}

static void kg__node_free(kg__node *n)
{
    free(n->key);
    free(n->start);
    free(n->id);
    free(n->type);
    free(n);
}

static void kg__edge_free(kg__edge *e)
{
    free(e->from);
    free(e->to);
    free(e->from_key);
    free(e->to_key);
    free(e->action);
    free(e);
}

static void kg__recent_drop_oldest(kg__agg *a)
{
    struct kg__recent *e = &a->recent[a->recent_head];
    a->recent_bytes -= e->m->len;
    kg_text_unref(e->m);
    kg_text_unref(e->brief);
    memset(e, 0, sizeof *e);
    a->recent_head = (a->recent_head + 1) % a->lim.recent_events;
    a->recent_len--;
}

static struct kg__recent *kg__recent_at(kg__agg *a, size_t i)
{
    return &a->recent[(a->recent_head + i) % a->lim.recent_events];
}

kg__agg *kg__agg_new(const kg__agg_limits *lim, double now)
{
    kg__agg *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->lim = *lim;
    if (!a->lim.recent_events)
        a->lim.recent_events = 1000;
    if (!a->lim.max_runs)
        a->lim.max_runs = 200;
    if (!a->lim.max_run_events)
        a->lim.max_run_events = 5000;
    if (!a->lim.max_nodes)
        a->lim.max_nodes = 1024;
    if (!a->lim.max_store_bytes)
        a->lim.max_store_bytes = 64u << 20;
    if (!a->lim.max_edges)
        a->lim.max_edges = 4096;
    a->started = now;
    kg_list_init(&a->node_lru);
    kg_list_init(&a->run_lru);
    a->recent = calloc(a->lim.recent_events, sizeof *a->recent);
    int rc_dedup = kg__idset_init(&a->dedup, KG__DEDUP_GEN);
    int rc_ended = kg__idset_init(&a->ended, KG__ENDED_GEN);
    if (!a->recent || rc_dedup || rc_ended) {
        kg__agg_free(a);
        return NULL;
    }
    for (int i = 0; i < KG__RATE_SLOTS; i++)
        a->rate_sec[i] = -1;
    return a;
}

void kg__agg_free(kg__agg *a)
{
    if (!a)
        return;
    while (!kg_list_empty(&a->run_lru)) {
        kg__run *r = KG_CONTAINER_OF(a->run_lru.next, kg__run, lru);
        kg_list_remove(&r->lru);
        kg__run_free(a, r);
    }
    while (!kg_list_empty(&a->node_lru)) {
        kg__node *n = KG_CONTAINER_OF(a->node_lru.next, kg__node, lru);
        kg_list_remove(&n->lru);
        kg__node_free(n);
    }
    for (size_t i = 0; i < a->edges.nb; i++)
        for (kg_map_entry *e = a->edges.b[i]; e; e = e->next)
            kg__edge_free(e->val);
    for (size_t i = 0; i < a->sources.nb; i++)
        for (kg_map_entry *e = a->sources.b[i]; e; e = e->next)
            free(e->val);
    kg_map_free(&a->edges);
    kg_map_free(&a->sources);
    kg_map_free(&a->nodes);
    kg_map_free(&a->runs);
    while (a->recent && a->recent_len)
        kg__recent_drop_oldest(a);
    free(a->recent);
    kg__idset_free(&a->dedup);
    kg__idset_free(&a->ended);
    free(a->latest_run);
    free(a->latest_start);
    free(a);
}

/* ---- nodes -------------------------------------------------------------------------- */

/* The length of the enclosing graph's part of a path key ("a/b/c" -> 3),
 * 0 for a key without one.  Ids are escaped in paths, so the last "/" is
 * the separator. */
static size_t kg__parent_len(const char *key, bool is_path)
{
    const char *slash = is_path ? strrchr(key, '/') : NULL;
    return slash ? (size_t)(slash - key) : 0;
}

/* The node with `key` (a path when `is_path`, else a bare node id),
 * created when new.  `id`/`type` update its labels when given. */
static kg__node *kg__node_get(kg__agg *a, const char *key, bool is_path, const char *id,
                              const char *type, double now)
{
    kg__node *n = kg_map_get(&a->nodes, key);
    if (n) {
        kg_list_remove(&n->lru);
        kg_list_push_back(&a->node_lru, &n->lru);
        n->last_seen = now;
        if (type && *type && (!n->type || strcmp(n->type, type) != 0))
            kg__set_str(&n->type, type);
        return n;
    }
    if (a->nodes.n >= a->lim.max_nodes) {
        /* Full: forget the node seen least recently. */
        kg__node *old = KG_CONTAINER_OF(a->node_lru.next, kg__node, lru);
        kg_map_del(&a->nodes, old->key);
        kg_list_remove(&old->lru);
        kg__node_free(old);
    }
    n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->key = kg__strdup(key);
    n->id = kg__strdup(id && *id ? id : key);
    n->type = kg__strdup(type ? type : "");
    if (!n->key || !n->id || !n->type || kg_map_put(&a->nodes, key, n) != 0) {
        kg__node_free(n);
        return NULL;
    }
    n->parent_len = kg__parent_len(key, is_path);
    kg_list_init(&n->lru);
    kg_list_push_back(&a->node_lru, &n->lru);
    n->last_seen = now;
    return n;
}

/* Does this event's view of the node win over the one that set its status?
 * Same run: later seq wins.  Different runs: the later timestamp wins (an
 * unparsable timestamp never overrides another run). */
static bool kg__node_status_newer(const kg__node *n, uint64_t run, const kg__event *ev)
{
    if (n->status_run == 0)
        return true;
    if (run == n->status_run)
        return !ev->has_seq || ev->seq >= n->status_seq;
    return ev->ts_ms >= 0 && ev->ts_ms >= n->status_ts;
}

static void kg__node_time(kg__node *n, double t)
{
    if (!isfinite(t) || t < 0)
        return;
    n->time_sum += t;
    n->time_n++;
    n->times[n->times_pos] = t;
    n->times_pos = (n->times_pos + 1) % KG__P95_WINDOW;
    if (n->times_len < KG__P95_WINDOW)
        n->times_len++;
}

static int kg__dbl_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double kg__node_p95(const kg__node *n)
{
    if (!n->times_len)
        return 0;
    double tmp[KG__P95_WINDOW];
    memcpy(tmp, n->times, n->times_len * sizeof *tmp);
    qsort(tmp, n->times_len, sizeof *tmp, kg__dbl_cmp);
    size_t k = (size_t)ceil(0.95 * (double)n->times_len);
    return tmp[k ? k - 1 : 0];
}

/* ---- edges / topology ------------------------------------------------------------------- */

/* The edge from_key --action--> to_key, created (with its topology ids
 * `from`/`to`) when `create`. */
static kg__edge *kg__edge_get(kg__agg *a, const char *from_key, const char *to_key,
                              const char *action, const char *from, const char *to,
                              bool is_path, bool create)
{
    kg_buf key;
    kg_buf_init(&key);
    kg_buf_puts(&key, from_key);
    kg_buf_append(&key, "\x1f", 1);
    kg_buf_puts(&key, to_key);
    kg_buf_append(&key, "\x1f", 1);
    kg_buf_puts(&key, action);
    if (key.failed) {
        kg_buf_free(&key);
        return NULL;
    }
    kg__edge *e = kg_map_get(&a->edges, key.data);
    if (!e && create) {
        if (a->edges.n >= a->lim.max_edges) {
            a->edges_dropped++;
        } else if ((e = calloc(1, sizeof *e)) != NULL) {
            e->from = kg__strdup(from);
            e->to = kg__strdup(to);
            e->from_key = kg__strdup(from_key);
            e->to_key = kg__strdup(to_key);
            e->action = kg__strdup(action);
            e->parent_len = kg__parent_len(from_key, is_path);
            if (!e->from || !e->to || !e->from_key || !e->to_key || !e->action ||
                kg_map_put(&a->edges, key.data, e) != 0) {
                kg__edge_free(e);
                e = NULL;
            }
        }
    }
    kg_buf_free(&key);
    return e;
}

/* Count the transition `from_key --action-->` on every known edge it matches. */
static void kg__edge_taken(kg__agg *a, const char *from_key, const char *action)
{
    for (size_t i = 0; i < a->edges.nb; i++)
        for (kg_map_entry *m = a->edges.b[i]; m; m = m->next) {
            kg__edge *e = m->val;
            if (strcmp(e->from_key, from_key) == 0 && strcmp(e->action, action) == 0)
                e->count++;
        }
}

#define KG__TOPO_DEPTH_MAX 32   /* sub-graph levels followed in a topology */

/* The key of child `id` of the graph whose key is `prefix`: the path with
 * the id escaped as node paths escape it ("%" -> "%25", "/" -> "%2F"), or
 * the bare id when the producer sends no paths (prefix NULL).  False when
 * over KG__PATH_MAX. */
static bool kg__child_key(kg_buf *sb, const char *prefix, const char *id)
{
    kg_buf_reset(sb);
    if (!prefix) {
        kg_buf_puts(sb, id);
    } else {
        kg_buf_puts(sb, prefix);
        kg_buf_append(sb, "/", 1);
        for (const char *p = id; *p; p++) {
            if (*p == '%')
                kg_buf_append(sb, "%25", 3);
            else if (*p == '/')
                kg_buf_append(sb, "%2F", 3);
            else
                kg_buf_append(sb, p, 1);
        }
    }
    kg_buf_append(sb, "", 1);   /* NUL-terminated in place */
    return !sb->failed && sb->len - 1 <= KG__PATH_MAX;
}

/* Register the nodes and edges of one level of a topology object, the
 * nodes being children of the graph keyed `prefix` (NULL: no paths, the
 * nodes are keyed by id), and the levels below it. */
static void kg__topology_level(kg__agg *a, json_t *graph, const char *prefix, int depth,
                               double now)
{
    kg_buf key, to_key;
    kg_buf_init(&key);
    kg_buf_init(&to_key);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(graph, "nodes"), i, v) {
        const char *id = kg__json_str(v, "id");
        if (!id || !*id || strlen(id) > KG__ID_MAX || !kg__child_key(&key, prefix, id))
            continue;
        kg__node *n = kg__node_get(a, key.data, prefix != NULL, id, kg__json_str(v, "type"), now);
        if (!n)
            continue;
        n->in_topology = true;
        json_t *sub = json_object_get(v, "nodes");
        if (!json_is_array(sub))
            continue;
        n->is_graph = true;
        n->batch = json_is_true(json_object_get(v, "batch"));
        const char *start = kg__json_str(v, "start");
        if (start && strlen(start) <= KG__ID_MAX)
            kg__set_str(&n->start, start);
        /* Below the top, nodes can only be told apart by path. */
        if (prefix && depth < KG__TOPO_DEPTH_MAX)
            kg__topology_level(a, v, key.data, depth + 1, now);
    }
    json_array_foreach(json_object_get(graph, "edges"), i, v) {
        const char *from = kg__json_str(v, "from"), *to = kg__json_str(v, "to");
        const char *action = kg__json_str(v, "action");
        if (from && to && strlen(from) <= KG__ID_MAX && strlen(to) <= KG__ID_MAX &&
            kg__child_key(&key, prefix, from) && kg__child_key(&to_key, prefix, to))
            kg__edge_get(a, key.data, to_key.data, action ? action : "default", from, to,
                         prefix != NULL, true);
    }
    kg_buf_free(&key);
    kg_buf_free(&to_key);
}

/* A workflow_started's topology.  Its nodes' paths start with the run's own
 * node_path; a nested run (one with a parent) also makes its graph a node,
 * so its sub-graph nests under it even when the enclosing run's topology
 * was never seen. */
static void kg__agg_topology(kg__agg *a, kg__run *r, const kg__event *ev, double now)
{
    json_t *graph = json_object_get(ev->data, "graph");
    if (!json_is_object(graph))
        return;
    json_decref(r->graph);
    r->graph = json_incref(graph);
    const char *prefix = *ev->node_path ? ev->node_path : NULL;
    const char *parent = kg__json_str(ev->data, "parent_workflow_id");
    bool nested = parent != NULL;
    if (parent && strlen(parent) <= KG__ID_MAX)
        kg__set_str(&r->parent, parent);
    if (prefix && nested) {
        kg__node *n = kg__node_get(a, prefix, true, ev->node_id, ev->node_type, now);
        if (n) {
            n->is_graph = n->in_topology = true;
            n->batch = json_is_true(json_object_get(graph, "batch"));
            const char *start = kg__json_str(graph, "start");
            if (start && strlen(start) <= KG__ID_MAX)
                kg__set_str(&n->start, start);
        }
    }
    kg__topology_level(a, graph, prefix, 0, now);
    if (nested)
        return;   /* the network's start is the top-level graph's */
    const char *start = kg__json_str(graph, "start");
    if (start)
        kg__set_str(&a->latest_start, start);
}

/* ---- runs -------------------------------------------------------------------------------- */

/* Forget a run.  One that had ended is remembered as ended (kg__run_get),
 * so that a late event of it (a replay running behind the live feed, a
 * slow producer) does not bring it back as a new run left "running". */
static void kg__run_evict(kg__agg *a, kg__run *r)
{
    if (r->status != KG__RS_RUNNING)
        kg__idset_add(&a->ended, r->id_hash);
    kg_map_del(&a->runs, r->id);
    kg_list_remove(&r->lru);
    kg__run_free(a, r);
}

/* How many of the least recently active runs are looked at for one that has
 * ended: bounds the cost of making room whatever max_runs is. */
#define KG__EVICT_SCAN 64

/* The run that makes room for a new one: the least recently active run that
 * completed (success or failed) among the KG__EVICT_SCAN least recently
 * active, else the least recently active.  Runs in progress are what a user
 * watches, and stale ones (their process died) are what a user must notice:
 * a burst of short runs must not push them out of view. */
static kg__run *kg__run_victim(kg__agg *a)
{
    unsigned k = 0;
    for (kg_link *l = a->run_lru.next; l != &a->run_lru && k < KG__EVICT_SCAN; l = l->next, k++) {
        kg__run *r = KG_CONTAINER_OF(l, kg__run, lru);
        if (r->status == KG__RS_SUCCESS || r->status == KG__RS_FAILED)
            return r;
    }
    return KG_CONTAINER_OF(a->run_lru.next, kg__run, lru);
}

static kg__run *kg__run_get(kg__agg *a, const char *id, double now)
{
    kg__run *r = kg_map_get(&a->runs, id);
    if (r) {
        kg_list_remove(&r->lru);
        kg_list_push_back(&a->run_lru, &r->lru);
        r->last_activity = now;
        return r;
    }
    if (kg__idset_has(&a->ended, kg__id_hash(id)))
        return NULL;   /* ended and evicted: see kg__run_evict */
    if (a->runs.n >= a->lim.max_runs)
        kg__run_evict(a, kg__run_victim(a));
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->id = kg__strdup(id);
    r->ev_cap = 16;
    r->ev = calloc(r->ev_cap, sizeof *r->ev);
    if (!r->id || !r->ev || kg_map_put(&a->runs, id, r) != 0) {
        free(r->ev);
        free(r->id);
        free(r);
        return NULL;
    }
    r->id_hash = kg__id_hash(id);
    r->ordinal = a->next_ordinal++;
    r->duration = -1;
    r->last_activity = now;
    kg_list_init(&r->lru);
    kg_list_push_back(&a->run_lru, &r->lru);
    a->runs_total++;
    kg__set_str(&a->latest_run, id);
    return r;
}

static void kg__run_drop_oldest(kg__agg *a, kg__run *r)
{
    kg_text *m = r->ev[r->ev_head].m;
    r->ev[r->ev_head].m = NULL;
    r->ev_head = (r->ev_head + 1) % r->ev_cap;
    r->ev_len--;
    r->bytes -= m->len;
    a->store_bytes -= m->len;
    r->truncated++;
    kg_text_unref(m);
}

/* Insert in seq order: almost always an append; a late event walks back. */
static void kg__run_store(kg__agg *a, kg__run *r, kg_text *msg, uint64_t seq)
{
    if (r->ev_len == r->ev_cap) {
        if (r->ev_cap >= a->lim.max_run_events) {
            kg__run_drop_oldest(a, r);
        } else {
            size_t cap = r->ev_cap * 2;
            if (cap > a->lim.max_run_events)
                cap = a->lim.max_run_events;
            struct kg__stored *ev = malloc(cap * sizeof *ev);
            if (!ev) {
                kg__run_drop_oldest(a, r);
            } else {
                for (size_t i = 0; i < r->ev_len; i++)
                    ev[i] = r->ev[(r->ev_head + i) % r->ev_cap];
                free(r->ev);
                r->ev = ev;
                r->ev_cap = cap;
                r->ev_head = 0;
            }
        }
    }
    size_t pos = r->ev_len;
    while (pos > 0 && r->ev[(r->ev_head + pos - 1) % r->ev_cap].seq > seq) {
        r->ev[(r->ev_head + pos) % r->ev_cap] = r->ev[(r->ev_head + pos - 1) % r->ev_cap];
        pos--;
    }
    r->ev[(r->ev_head + pos) % r->ev_cap].m = kg_text_ref(msg);
    r->ev[(r->ev_head + pos) % r->ev_cap].seq = seq;
    r->ev_len++;
    r->bytes += msg->len;
    a->store_bytes += msg->len;
}

/* Keep the stored event text under budget: evict the least recently active
 * runs (never `keep`), then trim `keep` itself. */
static void kg__agg_enforce_budget(kg__agg *a, kg__run *keep)
{
    while (a->store_bytes + a->recent_bytes > a->lim.max_store_bytes) {
        kg_link *l = a->run_lru.next;
        while (l != &a->run_lru && KG_CONTAINER_OF(l, kg__run, lru) == keep)
            l = l->next;
        if (l != &a->run_lru) {
            kg__run_evict(a, KG_CONTAINER_OF(l, kg__run, lru));
        } else if (keep && keep->ev_len > 1) {
            kg__run_drop_oldest(a, keep);
        } else if (a->recent_len > 1) {
            kg__recent_drop_oldest(a);
        } else {
            break;
        }
    }
}

/* ---- the event -------------------------------------------------------------------------- */

static void kg__rate_count(kg__agg *a, double now)
{
    int64_t sec = (int64_t)floor(now);
    size_t slot = (size_t)(sec % KG__RATE_SLOTS);
    if (a->rate_sec[slot] != sec) {
        a->rate_sec[slot] = sec;
        a->rate_cnt[slot] = 0;
    }
    a->rate_cnt[slot]++;
}

static void kg__run_nodes_idle(kg__agg *a, uint64_t run_hash)
{
    for (kg_link *l = a->node_lru.next; l != &a->node_lru; l = l->next) {
        kg__node *n = KG_CONTAINER_OF(l, kg__node, lru);
        if (n->status_run == run_hash &&
            (n->status == KG__NS_RUNNING || n->status == KG__NS_RETRYING))
            n->status = KG__NS_IDLE;
    }
}

/* `run_over`: the event belongs to a run that has ended (late). */
static void kg__agg_node_event(kg__agg *a, const kg__event *ev, kg__run *r, bool run_over,
                               double now)
{
    if (!*ev->node_id || (ev->type == KG_TYPE_METRIC && ev->name != KG_EV_EXECUTION_TIME))
        return;
    if (ev->name == KG_EV_WORKFLOW_STARTED || ev->name == KG_EV_WORKFLOW_COMPLETED)
        return;   /* about the graph, not one of its nodes */
    bool is_path = *ev->node_path != '\0';
    kg__node *n = kg__node_get(a, is_path ? ev->node_path : ev->node_id, is_path, ev->node_id,
                               ev->node_type, now);
    if (!n)
        return;
    int status = -1;
    switch (ev->name) {
    case KG_EV_NODE_STARTED:
        n->started++;
        status = KG__NS_RUNNING;
        break;
    case KG_EV_NODE_PREPARING:
    case KG_EV_NODE_EXECUTING:
    case KG_EV_DATA_INPUT:
    case KG_EV_FALLBACK_TRIGGERED:
        status = KG__NS_RUNNING;
        break;
    case KG_EV_RETRY_ATTEMPTED:
        n->retries++;
        status = KG__NS_RETRYING;
        break;
    case KG_EV_NODE_COMPLETED: {
        n->completed++;
        a->node_completed++;
        status = KG__NS_COMPLETED;
        kg__node_time(n, kg__json_num(ev->data, "total_execution_time", NAN));
        const char *next = kg__json_str(ev->data, "next_action");
        if (next)
            kg__edge_taken(a, n->key, next);
        break;
    }
    case KG_EV_NODE_FAILED:
        n->failed++;
        a->node_failed++;
        status = KG__NS_FAILED;
        if (json_object_get(ev->data, "total_execution_time"))
            kg__node_time(n, kg__json_num(ev->data, "total_execution_time", NAN));
        break;
    default:
        break;
    }
    if (ev->type == KG_TYPE_ERROR)
        n->errors++;
    uint64_t run = r ? r->id_hash : 1;
    if (status >= 0 && kg__node_status_newer(n, run, ev)) {
        /* A late event of a run that already ended must not bring the node
         * back to life. */
        if (!(run_over && (status == KG__NS_RUNNING || status == KG__NS_RETRYING))) {
            n->status = status;
            n->status_run = run;
            n->status_seq = ev->seq;
            if (ev->ts_ms >= 0)
                n->status_ts = ev->ts_ms;
        }
    }
}

static void kg__agg_sources(kg__agg *a, const kg__event *ev)
{
    if (ev->name != KG_EV_EVENTS_DROPPED && ev->name != KG_EV_QUEUE_DEPTH)
        return;
    const json_t *src = json_object_get(ev->root, "source");
    char key[KG__ID_MAX + 32];
    const char *host = kg__json_str(src, "host");
    snprintf(key, sizeof key, "%.*s/%lld", KG__ID_MAX, host ? host : ev->node_id,
             (long long)kg__json_num(src, "pid", 0));
    kg__source *s = kg_map_get(&a->sources, key);
    if (!s) {
        if (a->sources.n >= KG__SOURCES_MAX || !(s = calloc(1, sizeof *s)))
            return;
        if (kg_map_put(&a->sources, key, s) != 0) {
            free(s);
            return;
        }
    }
    double v = kg__json_num(ev->data, "value", 0);
    if (!isfinite(v) || v < 0)
        v = 0;
    if (ev->name == KG_EV_EVENTS_DROPPED)
        s->dropped = v;   /* a producer reports its running total */
    else
        s->queue_depth = v;
}

/* The brief of an oversized event (see KG__BRIEF_OVER): the schema fields
 * that are short, and a marker for the data.  NULL on oom. */
static kg_text *kg__event_brief(const kg__event *ev, size_t len)
{
    static const char *const keep[] = {"event_id", "timestamp", "node_id", "node_type",
                                       "event_type", "event_name", "correlation_id",
                                       "workflow_id", "node_path", "seq", "source"};
    json_t *b = json_object();
    for (size_t i = 0; b && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(ev->root, keep[i]);
        if (v && json_dumpb(v, NULL, 0, JSON_COMPACT) <= 1024)
            json_object_set(b, keep[i], v);
    }
    size_t data_size = ev->data ? json_dumpb(ev->data, NULL, 0, JSON_COMPACT) : 0;
    json_object_set_new(b, "data", json_pack("{s:b,s:I,s:I}", "truncated", 1, "original_size",
                                             (json_int_t)data_size, "event_size",
                                             (json_int_t)len));
    kg_buf sb;
    kg_buf_init(&sb);
    kg_buf_json(&sb, b);
    json_decref(b);
    kg_text *m = b && !sb.failed ? kg_text_new(sb.data, sb.len) : NULL;
    kg_buf_free(&sb);
    return m;
}

static void kg__recent_push(kg__agg *a, const kg__event *ev, kg_text *msg)
{
    if (a->recent_len == a->lim.recent_events)
        kg__recent_drop_oldest(a);
    struct kg__recent *e = kg__recent_at(a, a->recent_len);
    e->m = kg_text_ref(msg);
    e->brief = msg->len > KG__BRIEF_OVER ? kg__event_brief(ev, msg->len) : NULL;
    e->seq = ev->seq;
    e->has_seq = ev->has_seq;
    const json_t *src = json_object_get(ev->root, "source");
    char key[KG__ID_MAX + 32];
    const char *host = kg__json_str(src, "host");
    int n = snprintf(key, sizeof key, "%.*s/%lld", KG__ID_MAX, host ? host : "",
                     (long long)kg__json_num(src, "pid", 0));
    e->src = kg_hash(key, (size_t)n < sizeof key ? (size_t)n : sizeof key - 1);
    a->recent_len++;
    a->recent_bytes += msg->len;
}

int kg__agg_add(kg__agg *a, const kg__event *ev, kg_text *msg, double now)
{
    if (kg__agg_seen(a, ev->event_id)) {
        a->duplicates++;
        return KG_EEXISTS;
    }
    a->total++;
    if (ev->type >= 0)
        a->by_type[ev->type]++;
    a->by_name[ev->name >= 0 ? ev->name : KG_EVENT_NAME_COUNT]++;
    if (ev->type == KG_TYPE_ERROR)
        a->errors++;
    kg__rate_count(a, now);

    kg__recent_push(a, ev, msg);

    kg__run *r = NULL;
    if (*ev->workflow_id && (r = kg__run_get(a, ev->workflow_id, now)) != NULL) {
        kg__run_store(a, r, msg, ev->seq);
        r->event_count++;
        if (ev->type == KG_TYPE_ERROR)
            r->error_count++;
        if (ev->name == KG_EV_WORKFLOW_STARTED) {
            snprintf(r->started_at, sizeof r->started_at, "%s", ev->timestamp);
            kg__agg_topology(a, r, ev, now);
        } else if (ev->name == KG_EV_WORKFLOW_COMPLETED && r->status == KG__RS_RUNNING) {
            const char *st = kg__json_str(ev->data, "status");
            bool ok = st && strcmp(st, "success") == 0;
            r->status = ok ? KG__RS_SUCCESS : KG__RS_FAILED;
            if (ok)
                a->runs_success++;
            else
                a->runs_failed++;
            snprintf(r->ended_at, sizeof r->ended_at, "%s", ev->timestamp);
            r->duration = kg__json_num(ev->data, "duration", -1);
            const char *fa = kg__json_str(ev->data, "final_action");
            if (fa)
                kg__set_str(&r->final_action, fa);
            kg__run_nodes_idle(a, r->id_hash);
        }
    }
    bool run_over = r ? r->status != KG__RS_RUNNING
                      : *ev->workflow_id && kg__idset_has(&a->ended, kg__id_hash(ev->workflow_id));
    kg__agg_node_event(a, ev, r, run_over, now);
    kg__agg_sources(a, ev);
    kg__agg_enforce_budget(a, r);
    return 0;
}

void kg__agg_tick(kg__agg *a, double now)
{
    if (a->lim.stale_after <= 0)
        return;
    for (kg_link *l = a->run_lru.next; l != &a->run_lru; l = l->next) {
        kg__run *r = KG_CONTAINER_OF(l, kg__run, lru);
        /* LRU order: the first recently active run ends the scan. */
        if (now - r->last_activity < a->lim.stale_after)
            break;
        if (r->status == KG__RS_RUNNING) {
            r->status = KG__RS_STALE;
            a->runs_stale++;
            kg__run_nodes_idle(a, r->id_hash);
        }
    }
    for (kg_link *l = a->node_lru.next; l != &a->node_lru; l = l->next) {
        kg__node *n = KG_CONTAINER_OF(l, kg__node, lru);
        if (now - n->last_seen < a->lim.stale_after)
            break;
        if (n->status == KG__NS_RUNNING || n->status == KG__NS_RETRYING)
            n->status = KG__NS_IDLE;
    }
}

void kg__agg_note_rejected(kg__agg *a, uint64_t n)
{
    a->rejected += n;
}

void kg__agg_note_ws(kg__agg *a, uint64_t sent, uint64_t dropped)
{
    a->ws_sent += sent;
    a->ws_dropped += dropped;
}

void kg__agg_set_clients(kg__agg *a, unsigned clients)
{
    a->clients = clients;
}

/* ---- snapshots ------------------------------------------------------------------------- */

static json_t *kg__rate_or_null(uint64_t ok, uint64_t bad)
{
    return ok + bad ? json_real((double)ok / (double)(ok + bad)) : json_null();
}

static uint64_t kg__rate_at(const kg__agg *a, int64_t sec)
{
    size_t slot = (size_t)(sec % KG__RATE_SLOTS);
    return sec >= 0 && a->rate_sec[slot] == sec ? a->rate_cnt[slot] : 0;
}

static size_t kg__active_runs(kg__agg *a)
{
    size_t n = 0;
    for (kg_link *l = a->run_lru.next; l != &a->run_lru; l = l->next)
        n += KG_CONTAINER_OF(l, kg__run, lru)->status == KG__RS_RUNNING;
    return n;
}

json_t *kg__agg_metrics(kg__agg *a, double now)
{
    json_t *m = json_object();
    json_t *bt = json_object(), *bn = json_object(), *nodes = json_object();
    json_t *thr = json_array(), *wf = json_object();
    if (!m || !bt || !bn || !nodes || !thr || !wf) {
        json_decref(m);
        json_decref(bt);
        json_decref(bn);
        json_decref(nodes);
        json_decref(thr);
        json_decref(wf);
        return NULL;
    }
    json_object_set_new(m, "total_events", json_integer((json_int_t)a->total));
    for (int i = 0; i < KG_EVENT_TYPE_COUNT; i++)
        json_object_set_new(bt, kg__event_type_at(i), json_integer((json_int_t)a->by_type[i]));
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        if (a->by_name[i])
            json_object_set_new(bn, kg__event_name_at(i), json_integer((json_int_t)a->by_name[i]));
    if (a->by_name[KG_EVENT_NAME_COUNT])
        json_object_set_new(bn, "other", json_integer((json_int_t)a->by_name[KG_EVENT_NAME_COUNT]));
    json_object_set_new(m, "events_by_type", bt);
    json_object_set_new(m, "events_by_name", bn);

    size_t active_nodes = 0;
    for (kg_link *l = a->node_lru.next; l != &a->node_lru; l = l->next) {
        kg__node *n = KG_CONTAINER_OF(l, kg__node, lru);
        active_nodes += n->status == KG__NS_RUNNING || n->status == KG__NS_RETRYING;
        json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "type", n->type, "status",
                              kg__node_status_str[n->status], "count", (json_int_t)n->started,
                              "completed", (json_int_t)n->completed, "failed",
                              (json_int_t)n->failed, "retries", (json_int_t)n->retries,
                              "errors", (json_int_t)n->errors, "avg",
                              n->time_n ? n->time_sum / (double)n->time_n : 0.0, "p95",
                              kg__node_p95(n));
        if (o) {
            json_object_set_new(o, "id", json_string(n->id));
            json_object_set_new(nodes, n->key, o);
        }
    }
    json_object_set_new(m, "active_nodes", json_integer((json_int_t)active_nodes));
    json_object_set_new(m, "active_workflows", json_integer((json_int_t)kg__active_runs(a)));
    json_object_set_new(m, "success_rate", kg__rate_or_null(a->node_completed, a->node_failed));
    json_object_set_new(m, "workflow_success_rate",
                        kg__rate_or_null(a->runs_success, a->runs_failed));
    json_object_set_new(m, "errors", json_integer((json_int_t)a->errors));

    /* Events per second: the last 5 whole seconds (fewer right after start),
     * so the figure is steady and does not dip at each second boundary. */
    int64_t sec = (int64_t)floor(now);
    double span = now - a->started;
    int window = span >= 5 ? 5 : (span >= 1 ? (int)span : 1);
    uint64_t sum = 0;
    for (int i = 1; i <= window; i++)
        sum += kg__rate_at(a, sec - i);
    if (span < 1)
        sum = kg__rate_at(a, sec);
    json_object_set_new(m, "events_per_second", json_real((double)sum / window));
    for (int i = 60; i >= 1; i--)
        json_array_append_new(thr, json_integer((json_int_t)kg__rate_at(a, sec - i)));
    json_object_set_new(m, "throughput", thr);

    double dropped = 0, qdepth = 0;
    for (size_t i = 0; i < a->sources.nb; i++)
        for (kg_map_entry *e = a->sources.b[i]; e; e = e->next) {
            dropped += ((kg__source *)e->val)->dropped;
            qdepth += ((kg__source *)e->val)->queue_depth;
        }
    json_object_set_new(m, "dropped", json_integer((json_int_t)dropped));
    json_object_set_new(m, "queue_depth", json_integer((json_int_t)qdepth));
    json_object_set_new(m, "ws_dropped", json_integer((json_int_t)a->ws_dropped));
    json_object_set_new(m, "duplicates", json_integer((json_int_t)a->duplicates));
    json_object_set_new(m, "rejected", json_integer((json_int_t)a->rejected));
    json_object_set_new(wf, "total", json_integer((json_int_t)a->runs_total));
    json_object_set_new(wf, "running", json_integer((json_int_t)kg__active_runs(a)));
    json_object_set_new(wf, "success", json_integer((json_int_t)a->runs_success));
    json_object_set_new(wf, "failed", json_integer((json_int_t)a->runs_failed));
    json_object_set_new(wf, "stale", json_integer((json_int_t)a->runs_stale));
    json_object_set_new(m, "workflows", wf);
    json_object_set_new(m, "nodes", nodes);
    json_object_set_new(m, "clients", json_integer(a->clients));
    json_object_set_new(m, "uptime", json_real(now - a->started));
    char ts[32];
    kg_iso8601_format(ts, (int64_t)((kg_clock_real()) * 1e9));
    json_object_set_new(m, "timestamp", json_string(ts));
    return m;
}

static json_t *kg__graph_node_json(const kg__node *n)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b}", "id", n->id, "path", n->key, "type", n->type,
                          "status", kg__node_status_str[n->status], "in_topology",
                          n->in_topology);
    if (o && n->is_graph) {
        json_object_set_new(o, "nodes", json_array());
        json_object_set_new(o, "edges", json_array());
        json_object_set_new(o, "start", n->start ? json_string(n->start) : json_null());
        if (n->batch)
            json_object_set_new(o, "batch", json_true());
    }
    return o;
}

/* The entry of the sub-graph that holds what is keyed `key` (its first
 * `parent_len` bytes), or NULL: it belongs at the top. */
static json_t *kg__graph_parent(const kg_map *entries, const char *key, size_t parent_len)
{
    if (!parent_len || parent_len > KG__PATH_MAX)
        return NULL;
    char parent[KG__PATH_MAX + 1];
    memcpy(parent, key, parent_len);
    parent[parent_len] = '\0';
    json_t *o = kg_map_get(entries, parent);
    return o && json_object_get(o, "nodes") ? o : NULL;
}

json_t *kg__agg_network_graph(kg__agg *a)
{
    json_t *g = json_object(), *nodes = json_array(), *edges = json_array();
    kg_map entries = {0};   /* node key -> its entry (borrowed) */
    if (!g || !nodes || !edges) {
        json_decref(g);
        json_decref(nodes);
        json_decref(edges);
        return NULL;
    }
    /* Topology nodes first, in the order they were first seen. */
    kg__node **order = malloc((a->nodes.n ? a->nodes.n : 1) * sizeof *order);
    json_t **made = malloc((a->nodes.n ? a->nodes.n : 1) * sizeof *made);
    size_t count = 0;
    for (int pass = 0; order && made && pass < 2; pass++)
        for (kg_link *l = a->node_lru.next; l != &a->node_lru; l = l->next) {
            kg__node *n = KG_CONTAINER_OF(l, kg__node, lru);
            if (n->in_topology != (pass == 0))
                continue;
            json_t *o = kg__graph_node_json(n);
            if (!o || kg_map_put(&entries, n->key, o) != 0) {
                json_decref(o);
                continue;
            }
            order[count] = n;
            made[count++] = o;
        }
    /* Each node into its sub-graph's entry when that is known, else the top. */
    for (size_t i = 0; i < count; i++) {
        json_t *parent = kg__graph_parent(&entries, order[i]->key, order[i]->parent_len);
        json_array_append_new(parent ? json_object_get(parent, "nodes") : nodes, made[i]);
    }
    for (size_t i = 0; i < a->edges.nb; i++)
        for (kg_map_entry *m = a->edges.b[i]; m; m = m->next) {
            kg__edge *e = m->val;
            json_t *parent = kg__graph_parent(&entries, e->from_key, e->parent_len);
            json_array_append_new(parent ? json_object_get(parent, "edges") : edges,
                                  json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "from", e->from, "to",
                                            e->to, "from_path", e->from_key, "to_path",
                                            e->to_key, "action", e->action, "count",
                                            (json_int_t)e->count));
        }
    free(order);
    free(made);
    kg_map_free(&entries);
    json_object_set_new(g, "nodes", nodes);
    json_object_set_new(g, "edges", edges);
    json_object_set_new(g, "start", a->latest_start ? json_string(a->latest_start) : json_null());
    json_object_set_new(g, "workflow_id", a->latest_run ? json_string(a->latest_run) : json_null());
    return g;
}

json_t *kg__agg_active_nodes(kg__agg *a)
{
    json_t *arr = json_array();
    for (kg_link *l = a->node_lru.next; arr && l != &a->node_lru; l = l->next) {
        kg__node *n = KG_CONTAINER_OF(l, kg__node, lru);
        if (n->status == KG__NS_RUNNING || n->status == KG__NS_RETRYING)
            json_array_append_new(arr, json_string(n->key));
    }
    return arr;
}

json_t *kg__agg_active_workflows(kg__agg *a)
{
    json_t *arr = json_array();
    for (kg_link *l = a->run_lru.next; arr && l != &a->run_lru; l = l->next) {
        kg__run *r = KG_CONTAINER_OF(l, kg__run, lru);
        if (r->status == KG__RS_RUNNING)
            json_array_append_new(arr, json_string(r->id));
    }
    return arr;
}

static json_t *kg__run_summary(const kg__run *r, bool with_graph)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "workflow_id", r->id, "status",
                          kg__run_status_str[r->status], "event_count",
                          (json_int_t)r->event_count, "stored_events", (json_int_t)r->ev_len,
                          "error_count", (json_int_t)r->error_count, "truncated",
                          (json_int_t)r->truncated);
    if (!o)
        return NULL;
    json_object_set_new(o, "started_at", r->started_at[0] ? json_string(r->started_at) : json_null());
    json_object_set_new(o, "ended_at", r->ended_at[0] ? json_string(r->ended_at) : json_null());
    json_object_set_new(o, "duration", r->duration >= 0 ? json_real(r->duration) : json_null());
    json_object_set_new(o, "final_action",
                        r->final_action ? json_string(r->final_action) : json_null());
    /* A nested run (a sub-graph's, a batch item's) names the run it belongs
     * to, so a client can fold it into the outermost run. */
    json_object_set_new(o, "parent_workflow_id", r->parent ? json_string(r->parent) : json_null());
    json_object_set_new(o, "nodes", json_integer(r->graph ? (json_int_t)json_array_size(
                                                                json_object_get(r->graph, "nodes"))
                                                          : 0));
    if (with_graph)
        json_object_set(o, "graph", r->graph ? r->graph : json_null());
    return o;
}

static int kg__run_ord_cmp(const void *x, const void *y)
{
    const kg__run *a = *(kg__run *const *)x, *b = *(kg__run *const *)y;
    return (a->ordinal > b->ordinal) - (a->ordinal < b->ordinal);
}

json_t *kg__run_summary_of_events(const char *workflow_id, json_t *events)
{
    size_t n = json_array_size(events), errors = 0;
    json_t *graph = NULL;
    const char *status = "unknown", *started = NULL, *ended = NULL, *final_action = NULL;
    json_t *duration = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(events, i);
        const char *name = json_string_value(json_object_get(e, "event_name"));
        const char *type = json_string_value(json_object_get(e, "event_type"));
        json_t *data = json_object_get(e, "data");
        if (type && strcmp(type, "error") == 0)
            errors++;
        if (!name)
            continue;
        if (strcmp(name, "workflow_started") == 0) {
            if (!graph && json_is_object(json_object_get(data, "graph")))
                graph = json_object_get(data, "graph");
            started = json_string_value(json_object_get(e, "timestamp"));
            if (strcmp(status, "unknown") == 0)
                status = "running";
        } else if (strcmp(name, "workflow_completed") == 0) {
            const char *st = json_string_value(json_object_get(data, "status"));
            status = st && strcmp(st, "success") == 0 ? "success" : "failed";
            ended = json_string_value(json_object_get(e, "timestamp"));
            final_action = json_string_value(json_object_get(data, "final_action"));
            duration = json_is_number(json_object_get(data, "duration"))
                           ? json_object_get(data, "duration")
                           : NULL;
        }
    }
    /* Evicted from memory and never completed: no one can say it still runs. */
    if (strcmp(status, "running") == 0)
        status = "unknown";
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s}", "workflow_id", workflow_id, "status",
                          status, "event_count", (json_int_t)n, "stored_events", (json_int_t)n,
                          "error_count", (json_int_t)errors, "truncated", (json_int_t)0,
                          "source", "redis");
    if (!o)
        return NULL;
    json_object_set_new(o, "started_at", started ? json_string(started) : json_null());
    json_object_set_new(o, "ended_at", ended ? json_string(ended) : json_null());
    json_object_set(o, "duration", duration ? duration : json_null());
    json_object_set_new(o, "final_action", final_action ? json_string(final_action) : json_null());
    json_object_set_new(o, "nodes", json_integer(graph ? (json_int_t)json_array_size(
                                                             json_object_get(graph, "nodes"))
                                                       : 0));
    json_object_set(o, "graph", graph ? graph : json_null());
    return o;
}

json_t *kg__agg_runs(kg__agg *a, size_t max)
{
    json_t *arr = json_array();
    if (!arr || !a->runs.n)
        return arr;
    kg__run **v = malloc(a->runs.n * sizeof *v);
    if (!v)
        return arr;
    size_t n = 0;
    for (kg_link *l = a->run_lru.next; l != &a->run_lru; l = l->next)
        v[n++] = KG_CONTAINER_OF(l, kg__run, lru);
    qsort(v, n, sizeof *v, kg__run_ord_cmp);
    size_t from = max && n > max ? n - max : 0;
    for (size_t i = from; i < n; i++)
        json_array_append_new(arr, kg__run_summary(v[i], false));
    free(v);
    return arr;
}

void kg__agg_recent_refs(kg__agg *a, size_t limit, kg__body *b)
{
    size_t n = a->recent_len < limit ? a->recent_len : limit;
    for (size_t i = a->recent_len - n; i < a->recent_len; i++)
        kg__body_add(b, kg__recent_at(a, i)->m, i != a->recent_len - n);
}

int kg__agg_run_events_refs(kg__agg *a, const char *workflow_id, kg__body *b, json_t **summary)
{
    kg__run *r = kg_map_get(&a->runs, workflow_id);
    if (!r)
        return KG_ENOTFOUND;
    for (size_t i = 0; i < r->ev_len; i++)
        kg__body_add(b, r->ev[(r->ev_head + i) % r->ev_cap].m, i > 0);
    if (summary)
        *summary = kg__run_summary(r, true);
    return 0;
}

static void kg__body_to_sb(kg__body *b, kg_buf *sb)
{
    kg_buf_append(sb, "[", 1);
    kg__body_copy(b, sb, SIZE_MAX);
    kg_buf_append(sb, "]", 1);
    if (b->oom)
        sb->failed = true;
    kg__body_free(b);
}

void kg__agg_recent_json(kg__agg *a, size_t limit, kg_buf *sb)
{
    kg__body b;
    kg__body_init(&b);
    kg__agg_recent_refs(a, limit, &b);
    kg__body_to_sb(&b, sb);
}

int kg__agg_run_events_json(kg__agg *a, const char *workflow_id, kg_buf *sb, json_t **summary)
{
    kg__body b;
    kg__body_init(&b);
    int rc = kg__agg_run_events_refs(a, workflow_id, &b, summary);
    if (rc == 0)
        kg__body_to_sb(&b, sb);
    return rc;
}

/* Order of the initial message's events: each producer's events by seq,
 * producers interleaved as they arrived (seqs of different processes do not
 * compare).  Sort key: group (the producer; an event without seq is a group
 * of its own), then seq, then arrival. */
struct kg__ord {
    uint64_t grp, seq;
    size_t pos;
    bool solo;
};

static int kg__ord_by_arrival(const void *x, const void *y)
{
    const struct kg__ord *p = x, *q = y;
    if (p->solo != q->solo)
        return p->solo ? 1 : -1;
    if (p->grp != q->grp)
        return p->grp < q->grp ? -1 : 1;
    return (p->pos > q->pos) - (p->pos < q->pos);
}

static int kg__ord_by_seq(const void *x, const void *y)
{
    const struct kg__ord *p = x, *q = y;
    if (p->solo != q->solo)
        return p->solo ? 1 : -1;
    if (p->grp != q->grp)
        return p->grp < q->grp ? -1 : 1;
    if (p->seq != q->seq)
        return p->seq < q->seq ? -1 : 1;
    return (p->pos > q->pos) - (p->pos < q->pos);
}

/* The last `n` recent events (n <= KG__INITIAL_EVENTS), briefs for the
 * oversized, in the order above. */
static void kg__initial_events(kg__agg *a, size_t n, kg_buf *sb)
{
    struct kg__ord by_arrival[KG__INITIAL_EVENTS], by_seq[KG__INITIAL_EVENTS];
    size_t first = a->recent_len - n;
    for (size_t k = 0; k < n; k++) {
        const struct kg__recent *e = kg__recent_at(a, first + k);
        by_arrival[k] = (struct kg__ord){.grp = e->has_seq ? e->src : k,
                                         .seq = e->seq, .pos = k, .solo = !e->has_seq};
    }
    memcpy(by_seq, by_arrival, n * sizeof *by_seq);
    qsort(by_arrival, n, sizeof *by_arrival, kg__ord_by_arrival);
    qsort(by_seq, n, sizeof *by_seq, kg__ord_by_seq);
    /* Same groups of the same sizes in both orders: the k-th slot a group
     * occupies in arrival order gets its k-th event by seq. */
    size_t order[KG__INITIAL_EVENTS];
    for (size_t k = 0; k < n; k++)
        order[by_arrival[k].pos] = by_seq[k].pos;
    kg_buf_append(sb, "[", 1);
    for (size_t k = 0; k < n; k++) {
        const struct kg__recent *e = kg__recent_at(a, first + order[k]);
        const kg_text *m = e->brief ? e->brief : e->m;
        if (k)
            kg_buf_append(sb, ",", 1);
        kg_buf_append(sb, m->data, m->len);
    }
    kg_buf_append(sb, "]", 1);
}

void kg__agg_initial_json(kg__agg *a, double now, kg_buf *sb)
{
    kg_buf_puts(sb, "{\"type\":\"initial\",\"data\":{\"events\":");
    kg__initial_events(a, a->recent_len < KG__INITIAL_EVENTS ? a->recent_len : KG__INITIAL_EVENTS,
                       sb);
    json_t *parts[5] = {kg__agg_metrics(a, now), kg__agg_active_nodes(a),
                        kg__agg_active_workflows(a), kg__agg_network_graph(a),
                        kg__agg_runs(a, 50)};
    static const char *const keys[5] = {"metrics", "active_nodes", "active_workflows",
                                        "network_graph", "workflows"};
    for (int i = 0; i < 5; i++) {
        kg_buf_printf(sb, ",\"%s\":", keys[i]);
        kg_buf_json(sb, parts[i]);
        json_decref(parts[i]);
    }
    kg_buf_puts(sb, "}}");
}

void kg__agg_counts_get(kg__agg *a, kg__agg_counts *out)
{
    memset(out, 0, sizeof *out);
    out->total = a->total;
    out->rejected = a->rejected;
    out->duplicates = a->duplicates;
    out->errors = a->errors;
    for (int i = 0; i < KG_EVENT_TYPE_COUNT; i++)
        out->by_type[i] = a->by_type[i];
    out->runs = a->runs.n;
    out->nodes = a->nodes.n;
    out->store_bytes = a->store_bytes + a->recent_bytes;
    out->recent = a->recent_len;
    out->ws_dropped = a->ws_dropped;
    out->clients = a->clients;
    out->active_runs = kg__active_runs(a);
    out->runs_success = a->runs_success;
    out->runs_failed = a->runs_failed;
    out->runs_stale = a->runs_stale;
    for (size_t i = 0; i < a->sources.nb; i++)
        for (kg_map_entry *e = a->sources.b[i]; e; e = e->next)
            out->producer_dropped += ((kg__source *)e->val)->dropped;
    out->started = a->started;
}

void kg__agg_nodes_free(kg__node_view *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

kg__node_view *kg__agg_nodes(kg__agg *a, size_t *n)
{
    *n = 0;
    kg__node_view *v = a->nodes.n ? calloc(a->nodes.n, sizeof *v) : NULL;
    if (!v)
        return NULL;
    for (kg_link *l = a->node_lru.next; l != &a->node_lru && *n < a->nodes.n; l = l->next) {
        const kg__node *nd = KG_CONTAINER_OF(l, kg__node, lru);
        kg__node_view *o = &v[*n];
        if (!(o->key = strdup(nd->key))) {
            kg__agg_nodes_free(v, *n);
            *n = 0;
            return NULL;
        }
        o->started = nd->started;
        o->failed = nd->failed;
        o->retries = nd->retries;
        o->running = nd->status == KG__NS_RUNNING || nd->status == KG__NS_RETRYING;
        o->p95 = nd->times_len ? kg__node_p95(nd) : NAN;
        o->time_sum = nd->time_sum;
        o->time_n = nd->time_n;
        (*n)++;
    }
    return v;
}

