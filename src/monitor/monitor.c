/* monitor.c - the monitor's lifetime, configuration, statistics, and its
 * observer callback: the producer path that runs on node threads.
 *
 * Partitions: each record names the partition of its run's outermost run,
 * one per dispatcher worker, and only that worker takes it.  One worker then
 * delivers a run's events (nested runs included) in the order they
 * happened, so consumers of Redis Pub/Sub, webhooks or files see each run
 * in order even with several workers; different runs proceed in parallel.
 *
 * The producer path is the part of monitoring a workflow pays for, so it does
 * the least possible: check the capture mask, check the run's sampling
 * decision (a hash of the run id, no state), reserve a cell (the one locked
 * instruction), fill its 56 bytes -- a clock reading, ids, a pointer to the
 * node's descriptor whose reference comes from thread-local credits --
 * and publish.  No lock, no syscall (clock_gettime is a vDSO call), no
 * allocation -- except for data snapshots, error details and an action that
 * is none of the node's edges, which are opt-in or rare. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"   /* the node's descriptor slot */
#include "monitor/credits.h"
#include "monitor/monitor_internal.h"

void kg_monitor_config_init(kg_monitor_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_snapshot_size = 1024;
    c->sample_rate = 1.0;
    c->batch_size = 100;
    c->flush_interval = 1.0;
    c->circuit_breaker_threshold = 5;
    c->circuit_breaker_reset = 1.0;
    c->async_workers = 4;
    c->buffer_size = 65536;
    c->capture = KG_CAPTURE_ALL;
    c->metrics_interval = 5.0;
    c->shutdown_timeout = 5.0;
    c->retry_backoff_max = 1.0;
}

const char *kg_circuit_state_str(kg_circuit_state s)
{
    switch (s) {
    case KG_CIRCUIT_OPEN:
        return "open";
    case KG_CIRCUIT_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}

/* ---- the producer path ---------------------------------------------------------- */

/* splitmix64's finaliser: spreads consecutive run ids uniformly. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* Is this event captured?  Sampling is per workflow run (its outermost run),
 * so a sampled run is complete and an unsampled one sends only errors. */
static bool wanted(const kg_monitor_t *m, kg_event_name name, uint64_t root_run_id)
{
    uint32_t bit = KG_CAPTURE(name);
    if (!(m->cfg.capture & bit))
        return false;
    return m->sample_threshold == UINT64_MAX || (m->always_kept & bit) ||
           mix64(root_run_id) <= m->sample_threshold;
}

static uint8_t phase_code(const char *phase)
{
    if (!phase)
        return KG_PHASE_NONE;
    return phase[0] == 'p' ? (phase[1] == 'r' ? KG_PHASE_PREP : KG_PHASE_POST) : KG_PHASE_EXEC;
}

/* A run's partition (its worker) from its outermost run, so that one worker
 * delivers a whole run, nested runs included, in order.  Multiply-shift
 * instead of a modulo: no division on the node's path. */
static unsigned partition_of(const kg_monitor_t *m, uint64_t root_run_id)
{
    uint64_t h = (root_run_id * 0x9E3779B97F4A7C15u) >> 32;
    return (unsigned)((h * m->n_parts) >> 32);
}

/* What a record owns beyond the descriptor, so it can be given back when
 * the queue refuses the record. */
typedef struct payload {
    uint8_t kind;
    void *ptr;
} payload;

static void payload_drop(payload p)
{
    kg_record tmp = {.bits = kg_rec_bits(0, 0, p.kind), .payload.text = p.ptr};
    kg_record_release_payload(&tmp);
}

/* The node's descriptor with one reference for the record: the node's own
 * (through the thread's credits), or, for an event built by hand without a
 * node, a new one. */
static kg_node_desc *record_desc(const kg_obs_event *ev)
{
    if (ev->node) {
        kg_node_desc *d = kg__node_desc(ev->node);
        if (d)
            kg_credit_take(d);
        return d;
    }
    return kg__desc_new(ev->node_id, ev->node_type, ev->node_path);
}

/* Where the event's node_path starts in the descriptor's path: the engine's
 * ev->node_path points into the node's path text (a run started at an
 * inner graph skips the graphs above); a hand-built event's descriptor holds
 * a copy of its path. */
static uint16_t path_offset(const kg_node_desc *d, const kg_obs_event *ev)
{
    if (!d || !d->path || !ev->node_path)
        return KG_REC_NO_PATH;
    if (!ev->node)
        return 0;
    uintptr_t p = (uintptr_t)ev->node_path, base = (uintptr_t)d->path->data;
    if (p < base || p - base >= d->path->len || p - base >= KG_REC_NO_PATH)
        return KG_REC_NO_PATH;
    return (uint16_t)(p - base);
}

/* Queue one record of `count` events starting with `name`.  Counted as
 * dropped when the queue is full; `pl` is consumed either way. */
static void emit(kg_monitor_t *m, kg_event_name name, unsigned count, const kg_obs_event *ev,
                 uint8_t flags, payload pl)
{
    size_t pos = 0;
    kg_record *r = kg_queue_reserve(&m->queue, count, false, &pos);
    if (!r) {
        atomic_fetch_add_explicit(&m->dropped_full, count, memory_order_relaxed);
        payload_drop(pl);
        return;
    }
    /* The engine's own clock reading; an event built by hand has none. */
    r->ts_ns = ev->time_ns ? (int64_t)ev->time_ns : kg_clock_mono_ns();
    r->run_id = ev->run_id;
    r->exec_id = ev->exec_id;
    if (name == KG_EV_RETRY_ATTEMPTED || name == KG_EV_FALLBACK_TRIGGERED) {
        r->v.retry.attempt = (uint16_t)(ev->attempt + 1);   /* 1-based in events */
        r->v.retry.max_retries = (uint16_t)ev->max_retries;
    } else {
        r->v.value = ev->elapsed;
    }
    r->desc = record_desc(ev);
    r->path_off = path_offset(r->desc, ev);
    r->payload.text = pl.ptr;
    r->item = (int32_t)ev->item;
    r->name = (uint8_t)name;
    r->bits = kg_rec_bits(flags, phase_code(ev->phase), pl.kind);
    kg_queue_commit(r, pos, partition_of(m, ev->root_run_id), count);
}

/* The error details of an error event, as members of its "data". */
static json_t *error_fields(const kg_obs_event *ev)
{
    if (!ev->error)
        return NULL;
    return json_pack("{s:s, s:s, s:i}", "error", ev->error->message, "error_type",
                     ev->error->type, "error_code", ev->error->code);
}

static payload fields_payload(const kg_obs_event *ev)
{
    json_t *f = error_fields(ev);
    return (payload){f ? KG_PAYLOAD_FIELDS : KG_PAYLOAD_NONE, f};
}

/* The JSON of a prep/exec value, cut to max_snapshot_size (this is the one
 * opt-in allocation on the producer path). */
static payload snapshot_payload(const kg_monitor_t *m, json_t *data)
{
    char *text = json_dumps(data ? data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return (payload){0};
    size_t len = strlen(text);
    size_t keep = len > m->cfg.max_snapshot_size ? m->cfg.max_snapshot_size : len;
    kg_snapshot *s = malloc(sizeof *s + keep + 1);
    if (s) {
        s->original_size = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
        s->truncated = keep < len;   /* the serialiser mends a cut UTF-8 tail */
        memcpy(s->text, text, keep);
        s->text[keep] = '\0';
    }
    free(text);
    return (payload){s ? KG_PAYLOAD_SNAPSHOT : KG_PAYLOAD_NONE, s};
}

static uint8_t data_flags(const kg_obs_event *ev)
{
    return ev->data && !json_is_null(ev->data) ? KG_REC_HAS_DATA : 0;
}

/* data_input, and node_executing with it when `then_exec` (the engine
 * reported both points in one call) and both are captured. */
static void emit_data_input(kg_monitor_t *m, const kg_obs_event *ev, bool then_exec)
{
    bool exec = then_exec && wanted(m, KG_EV_NODE_EXECUTING, ev->root_run_id);
    if (!wanted(m, KG_EV_DATA_INPUT, ev->root_run_id)) {
        if (exec)
            emit(m, KG_EV_NODE_EXECUTING, 1, ev, 0, (payload){0});
        return;
    }
    payload pl = m->cfg.enable_data_snapshots ? snapshot_payload(m, ev->data) : (payload){0};
    emit(m, KG_EV_DATA_INPUT, exec ? 2 : 1, ev, data_flags(ev), pl);
}

/* node_started, and node_preparing with it when `then_prep`. */
static void emit_node_started(kg_monitor_t *m, const kg_obs_event *ev, bool then_prep)
{
    bool prep = then_prep && wanted(m, KG_EV_NODE_PREPARING, ev->root_run_id);
    if (wanted(m, KG_EV_NODE_STARTED, ev->root_run_id))
        emit(m, KG_EV_NODE_STARTED, prep ? 2 : 1, ev, 0, (payload){0});
    else if (prep)
        emit(m, KG_EV_NODE_PREPARING, 1, ev, 0, (payload){0});
}

/* After exec: data_output and execution_time, in one record when both are
 * captured. */
static void emit_after_exec(kg_monitor_t *m, const kg_obs_event *ev)
{
    bool out = wanted(m, KG_EV_DATA_OUTPUT, ev->root_run_id);
    bool time = wanted(m, KG_EV_EXECUTION_TIME, ev->root_run_id);
    if (!out) {
        if (time)
            emit(m, KG_EV_EXECUTION_TIME, 1, ev, 0, (payload){0});
        return;
    }
    payload pl = m->cfg.enable_data_snapshots ? snapshot_payload(m, ev->data) : (payload){0};
    emit(m, KG_EV_DATA_OUTPUT, time ? 2 : 1, ev, data_flags(ev), pl);
}

static void emit_simple(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev)
{
    if (wanted(m, name, ev->root_run_id))
        emit(m, name, 1, ev, 0, (payload){0});
}

static void emit_error(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev)
{
    if (wanted(m, name, ev->root_run_id))
        emit(m, name, 1, ev, 0, fields_payload(ev));
}

/* An action the node's descriptor knows (its edges' names) is referenced;
 * any other is copied -- once per run at most in practice (a graph's last
 * node). */
static payload action_payload(const kg_obs_event *ev)
{
    if (!ev->action)
        return (payload){0};
    kg_node_desc *d = ev->node ? kg__node_desc(ev->node) : NULL;
    int i = d ? kg__desc_action(d, ev->action) : -1;
    if (i >= 0)
        return (payload){KG_PAYLOAD_ACTION, (void *)d->actions[i]};
    char *copy = strdup(ev->action);
    return (payload){copy ? KG_PAYLOAD_TEXT : KG_PAYLOAD_NONE, copy};
}

static void on_node_completed(kg_monitor_t *m, const kg_obs_event *ev)
{
    if (wanted(m, KG_EV_NODE_COMPLETED, ev->root_run_id))
        emit(m, KG_EV_NODE_COMPLETED, 1, ev, 0, action_payload(ev));
}

/* on_error suppressed the failure: error_suppressed, then node_completed
 * (no action: the graph follows "default"), in one record when both are
 * captured. */
static void on_suppressed(kg_monitor_t *m, const kg_obs_event *ev)
{
    bool err = wanted(m, KG_EV_ERROR_SUPPRESSED, ev->root_run_id);
    bool done = wanted(m, KG_EV_NODE_COMPLETED, ev->root_run_id);
    if (err)
        emit(m, KG_EV_ERROR_SUPPRESSED, done ? 2 : 1, ev, KG_REC_SUPPRESSED, fields_payload(ev));
    else if (done)
        emit(m, KG_EV_NODE_COMPLETED, 1, ev, KG_REC_SUPPRESSED, (payload){0});
}

static void on_run_start(kg_monitor_t *m, const kg_obs_event *ev)
{
    if (!wanted(m, KG_EV_WORKFLOW_STARTED, ev->root_run_id))
        return;
    /* The topology text is cached by the graph: taking a reference is all
     * the producer does.  A run's own events carry its parent run in
     * exec_id (their correlation id is the run's). */
    kg_text *topo = ev->node ? kg__graph_topology_text(ev->node) : NULL;
    kg_obs_event e = *ev;
    e.exec_id = ev->parent_run_id;
    emit(m, KG_EV_WORKFLOW_STARTED, 1, &e, 0,
         (payload){topo ? KG_PAYLOAD_GRAPH : KG_PAYLOAD_NONE, topo});
}

static void on_run_end(kg_monitor_t *m, const kg_obs_event *ev)
{
    if (!wanted(m, KG_EV_WORKFLOW_COMPLETED, ev->root_run_id))
        return;
    kg_obs_event e = *ev;
    e.exec_id = 0;
    uint8_t flags = ev->error ? KG_REC_FAILED : 0;
    if (!ev->error) {
        emit(m, KG_EV_WORKFLOW_COMPLETED, 1, &e, flags, action_payload(ev));
        return;
    }
    size_t n = ev->action ? strlen(ev->action) + 1 : 0;
    kg_run_end *end = malloc(sizeof *end + n);
    if (end) {
        end->fields = error_fields(ev);
        end->action = n ? memcpy((char *)(end + 1), ev->action, n) : NULL;
    }
    emit(m, KG_EV_WORKFLOW_COMPLETED, 1, &e, flags,
         (payload){end ? KG_PAYLOAD_RUN_END : KG_PAYLOAD_NONE, end});
}

static void on_event(void *ud, const kg_obs_event *ev)
{
    kg_monitor_t *m = ud;
    switch (ev->point) {
    case KG_OBS_RUN_START:
        on_run_start(m, ev);
        break;
    case KG_OBS_RUN_END:
        on_run_end(m, ev);
        break;
    case KG_OBS_NODE_START:
        emit_node_started(m, ev, false);
        break;
    case KG_OBS_BEFORE_PREP:
        emit_simple(m, KG_EV_NODE_PREPARING, ev);
        break;
    case KG_OBS_AFTER_PREP:
        emit_data_input(m, ev, false);
        break;
    case KG_OBS_BEFORE_EXEC:
        emit_simple(m, KG_EV_NODE_EXECUTING, ev);
        break;
    case KG_OBS_RETRY:
        emit_error(m, KG_EV_RETRY_ATTEMPTED, ev);
        break;
    case KG_OBS_FALLBACK:
        emit_error(m, KG_EV_FALLBACK_TRIGGERED, ev);
        break;
    case KG_OBS_AFTER_EXEC:
        emit_after_exec(m, ev);
        break;
    case KG_OBS_AFTER_POST:
        on_node_completed(m, ev);
        break;
    case KG_OBS_NODE_FAILED:
        emit_error(m, KG_EV_NODE_FAILED, ev);
        break;
    case KG_OBS_SUPPRESSED:
        on_suppressed(m, ev);
        break;
    default:
        break;
    }
}

/* Two points at the same moment (kaygraph/observer.h): one queue record for
 * both events. */
static void on_pair(void *ud, const kg_obs_event *ev, kg_obs_point then)
{
    kg_monitor_t *m = ud;
    if (ev->point == KG_OBS_NODE_START && then == KG_OBS_BEFORE_PREP) {
        emit_node_started(m, ev, true);
    } else if (ev->point == KG_OBS_AFTER_PREP && then == KG_OBS_BEFORE_EXEC) {
        emit_data_input(m, ev, true);
    } else {
        on_event(ud, ev);
        kg_obs_event second = *ev;
        second.point = then;
        second.data = NULL;
        on_event(ud, &second);
    }
}

bool kg__monitor_metric_record(kg_monitor_t *m, kg_record *r, kg_event_name name, double value)
{
    if (!(m->cfg.capture & KG_CAPTURE(name)))
        return false;
    memset(r, 0, sizeof *r);
    r->ts_ns = kg_clock_mono_ns();
    r->v.value = value;
    r->item = -1;
    r->name = (uint8_t)name;
    r->path_off = KG_REC_NO_PATH;
    return true;
}

/* ---- lifetime -------------------------------------------------------------------- */

static int config_check(const kg_monitor_config *c, kg_error_t *err)
{
#define KG__REQUIRE(cond, ...) \
    if (!(cond))               \
        return kg_error_set(err, KG_EINVAL, "ConfigError", __VA_ARGS__);
    KG__REQUIRE(c->backend, "backend is required");
    KG__REQUIRE(c->sample_rate >= 0 && c->sample_rate <= 1, "sample_rate must be within 0..1 (got %g)", c->sample_rate);
    KG__REQUIRE(c->batch_size >= 1 && c->batch_size <= 100000, "batch_size must be 1..100000 (got %u)", c->batch_size);
    KG__REQUIRE(c->flush_interval > 0 && c->flush_interval <= 3600, "flush_interval must be > 0 s (got %g)", c->flush_interval);
    KG__REQUIRE(c->circuit_breaker_threshold >= 1, "circuit_breaker_threshold must be >= 1");
    KG__REQUIRE(c->circuit_breaker_reset >= 0 && isfinite(c->circuit_breaker_reset), "circuit_breaker_reset must be >= 0 s");
    KG__REQUIRE(c->async_workers >= 1 && c->async_workers <= 64, "async_workers must be 1..64 (got %u)", c->async_workers);
    KG__REQUIRE(c->buffer_size >= 2 && c->buffer_size <= (1u << 26), "buffer_size must be 2..67108864 (got %zu)", c->buffer_size);
    KG__REQUIRE(c->metrics_interval >= 0 && isfinite(c->metrics_interval), "metrics_interval must be >= 0 s");
    KG__REQUIRE(c->shutdown_timeout >= 0 && isfinite(c->shutdown_timeout), "shutdown_timeout must be >= 0 s");
    KG__REQUIRE(c->retry_backoff_max > 0 && isfinite(c->retry_backoff_max), "retry_backoff_max must be > 0 s");
#undef KG__REQUIRE
    return 0;
}

static void source_render(kg_monitor_t *m)
{
    char host[128] = "";
    const char *h = m->cfg.source_host;
    if (!h) {
        gethostname(host, sizeof host - 1);
        h = host;
    }
    kg_buf b = {0};
    kg_buf_puts(&b, "{\"host\":");
    kg_buf_json_string(&b, h, strnlen(h, 100));
    kg_buf_printf(&b, ",\"pid\":%ld}", (long)getpid());
    snprintf(m->source_json, sizeof m->source_json, "%s", b.failed ? "{}" : b.data);
    kg_buf_free(&b);
}

/* One queue for all workers; the cells kept for the dispatcher's metric
 * events exist only in a queue large enough to spare them. */
static int queue_init(kg_monitor_t *m, const kg_monitor_config *cfg)
{
    size_t reserve = cfg->buffer_size >= 16 ? KG__METRIC_EVENTS : 0;
    m->n_parts = cfg->async_workers;
    return kg_queue_init(&m->queue, cfg->buffer_size, cfg->async_workers, reserve);
}

/* Events queued and not yet taken by their worker. */
size_t kg__monitor_queued(kg_monitor_t *m)
{
    uint64_t taken = 0;
    for (unsigned i = 0; i < m->n_workers; i++)
        taken += atomic_load_explicit(&m->workers[i].taken, memory_order_relaxed);
    size_t head = kg_queue_reserved(&m->queue);
    return head > taken ? head - (size_t)taken : 0;
}

int kg_monitor_new(const kg_monitor_config *cfg, kg_monitor_t **out, kg_error_t *err)
{
    *out = NULL;
    int rc = cfg ? config_check(cfg, err) : kg_error_set(err, KG_EINVAL, NULL, "config is NULL");
    kg_monitor_t *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
    if (rc == 0 && !m)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "monitor");
    if (rc == 0 && queue_init(m, cfg) < 0)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "queue of %zu events", cfg->buffer_size);
    if (rc < 0) {
        free(m);
        if (cfg)
            kg_backend_free(cfg->backend);
        return rc;
    }
    m->cfg = *cfg;
    m->cfg.source_host = NULL;   /* borrowed only for source_render */
    m->backend = cfg->backend;
    m->observer = (kg_observer){.on_event = on_event, .ud = m, .on_pair = on_pair};
    m->sample_threshold = cfg->sample_rate >= 1.0 ? UINT64_MAX
                                                  : (uint64_t)(cfg->sample_rate * 18446744073709549568.0);
    m->always_kept = kg_capture_type(KG_TYPE_ERROR);
    kg_breaker_init(&m->breaker, cfg->circuit_breaker_threshold, cfg->circuit_breaker_reset);
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* waits use monotonic deadlines */
    pthread_cond_init(&m->cond, &attr);
    pthread_condattr_destroy(&attr);
    kg_rng rng;
    kg_rng_seed(&rng);
    m->instance = kg_rng_next(&rng);
    m->cfg.source_host = cfg->source_host;
    source_render(m);
    m->cfg.source_host = NULL;

    if ((rc = kg__dispatcher_start(m, err)) < 0) {
        kg__dispatcher_stop(m);
        kg_backend_free(m->backend);
        kg_queue_destroy(&m->queue);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cond);
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void kg_monitor_attach(kg_monitor_t *m, kg_node_t *graph)
{
    if (graph) {
        kg_node_set_observer(graph, &m->observer);
    } else {
        kg_observer_set_global(&m->observer);
        m->global = true;
    }
}

void kg_monitor_detach(kg_monitor_t *m, kg_node_t *graph)
{
    if (graph) {
        kg_node_set_observer(graph, NULL);
    } else if (m->global) {
        kg_observer_set_global(NULL);
        m->global = false;
    }
}

const kg_observer *kg_monitor_observer(kg_monitor_t *m)
{
    return &m->observer;
}

int kg_monitor_free(kg_monitor_t *m)
{
    if (!m)
        return 0;
    kg_monitor_detach(m, NULL);
    kg__dispatcher_stop(m);
    /* Anything the workers could not take before the deadline. */
    atomic_fetch_add(&m->dropped_shutdown, kg_queue_drop_untaken(&m->queue));
    int rc = atomic_load(&m->dropped_shutdown) ? KG_ETIMEOUT : 0;
    kg_backend_disconnect(m->backend);
    kg_backend_free(m->backend);
    kg_queue_destroy(&m->queue);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
    return rc;
}

/* ---- statistics ------------------------------------------------------------------ */

void kg_monitor_stats_get(kg_monitor_t *m, kg_monitor_stats *s)
{
    memset(s, 0, sizeof *s);
    s->dropped_full = atomic_load(&m->dropped_full);
    s->enqueued = kg_queue_reserved(&m->queue);   /* a position per event */
    s->queue_size = m->workers ? kg__monitor_queued(m) : 0;
    s->queue_capacity = kg_queue_capacity(&m->queue);
    s->emitted = s->enqueued + s->dropped_full;
    s->sent = atomic_load(&m->sent);
    s->dropped_shutdown = atomic_load(&m->dropped_shutdown);
    s->failed_batches = atomic_load(&m->failed_batches);
    for (unsigned i = 0; i < m->n_workers; i++)
        s->batch_buffer += atomic_load(&m->workers[i].held);
    s->circuit = (kg_circuit_state)atomic_load(&m->breaker.state);
    s->consecutive_failures = atomic_load(&m->breaker.failures);
    s->circuit_opens = atomic_load(&m->breaker.opens);
    s->backend_connected = kg_backend_is_connected(m->backend);
    s->backend_name = kg_backend_name(m->backend);
}

json_t *kg_monitor_stats_json(kg_monitor_t *m)
{
    kg_monitor_stats s;
    kg_monitor_stats_get(m, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:I, s:b, s:s}",
                     "emitted", (json_int_t)s.emitted, "enqueued", (json_int_t)s.enqueued,
                     "dropped", (json_int_t)(s.dropped_full + s.dropped_shutdown),
                     "sent", (json_int_t)s.sent, "failed_batches", (json_int_t)s.failed_batches,
                     "queue_size", (json_int_t)s.queue_size,
                     "queue_capacity", (json_int_t)s.queue_capacity,
                     "batch_buffer", (json_int_t)s.batch_buffer,
                     "consecutive_failures", (json_int_t)s.consecutive_failures,
                     "circuit_state", kg_circuit_state_str(s.circuit),
                     "circuit_opens", (json_int_t)s.circuit_opens,
                     "dropped_shutdown", (json_int_t)s.dropped_shutdown,
                     "backend_connected", s.backend_connected, "backend", s.backend_name);
}
