/* monitor.c - the monitor's lifetime, configuration, statistics, and its
 * observer callback: the producer path that runs on node threads.
 *
 * Partitions: the queue is split into one partition per dispatcher worker and
 * a workflow run's events (nested runs included) all go to the partition of
 * its outermost run.  One worker then delivers a run's events in the order
 * they happened, so consumers of Redis Pub/Sub, webhooks or files see each
 * run in order even with several workers; different runs proceed in
 * parallel.  The cost: buffer_size is shared out evenly, so one run alone
 * can fill only its own partition.
 *
 * The producer path is the part of monitoring a workflow pays for, so it does
 * the least possible: check the capture mask, check the run's sampling
 * decision (a hash of the run id, no state), reserve a queue cell, copy ids and
 * a clock reading into it, publish.  No lock, no syscall (clock_gettime is a
 * vDSO call), no allocation -- except for data snapshots and the details of
 * error events, which are opt-in or rare. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monitor/monitor_internal.h"

int64_t kg__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kg__real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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

static void copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, KG_ID_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static uint8_t phase_code(const char *phase)
{
    if (!phase)
        return KG_PHASE_NONE;
    return phase[0] == 'p' ? (phase[1] == 'r' ? KG_PHASE_PREP : KG_PHASE_POST) : KG_PHASE_EXEC;
}

static void record_set_payload(kg_record *r, uint8_t kind, void *payload)
{
    r->payload_kind = kind;
    if (kind == KG_PAYLOAD_SNAPSHOT)
        r->payload.text = payload;
    else if (kind == KG_PAYLOAD_GRAPH)
        r->payload.shared = payload;
    else
        r->payload.json = payload;
}

/* A reference to the node's cached path text, which the record keeps alive
 * (a graph may be freed while its events are queued), and in *off where
 * this event's path starts in it.  ev->node_path points into that text when
 * the engine made the event; anything else (an event built by hand) has
 * none: NULL. */
static kg_shared_text *path_ref(const kg_obs_event *ev, uint32_t *off)
{
    kg_shared_text *t = ev->node_path ? kg__node_path_text(ev->node) : NULL;
    uintptr_t p = (uintptr_t)ev->node_path, base = t ? (uintptr_t)t->text : 0;
    if (!t || p < base || p - base >= t->len || p - base > UINT32_MAX)
        return NULL;
    *off = (uint32_t)(p - base);
    return kg_shared_text_ref(t);
}

static unsigned partition_of(const kg_monitor_t *m, uint64_t root_run_id)
{
    return m->n_queues == 1 ? 0
                            : (unsigned)(((root_run_id * 0x9E3779B97F4A7C15u) >> 32) % m->n_queues);
}

/* Reserve a cell and fill what every event carries.  NULL when the queue is
 * full (counted).  `payload` is consumed either way.  The sequence number is
 * derived from the partition and the position in it: unique in the process,
 * increasing within a run, and free of a shared counter. */
static kg_record *record_begin(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev,
                               size_t *pos, uint8_t kind, void *payload)
{
    /* The reference is taken before the cell is written: a locked increment
     * after the writes would wait for all of them to reach the cache (perf
     * put it at ~14% of a monitored run's node-thread time that way). */
    uint32_t path_off = 0;
    kg_shared_text *path = path_ref(ev, &path_off);
    unsigned part = partition_of(m, ev->root_run_id);
    kg_record *r = kg_queue_reserve(&m->queues[part], pos);
    if (!r) {
        atomic_fetch_add_explicit(&m->dropped_full, 1, memory_order_relaxed);
        kg_record tmp = {.payload_kind = kind, .path = path};
        record_set_payload(&tmp, kind, payload);
        kg_record_release(&tmp);
        return NULL;
    }
    r->seq = (uint64_t)*pos * (m->n_queues + 1) + part + 1;
    r->ts_ns = kg__real_ns();
    r->name = (uint8_t)name;
    r->run_id = ev->run_id;
    r->parent_run_id = ev->parent_run_id;
    r->exec_id = ev->exec_id;
    r->value = ev->elapsed;
    record_set_payload(r, kind, payload);
    r->flags = 0;
    r->phase = phase_code(ev->phase);
    r->attempt = (uint16_t)(ev->attempt + 1);   /* 1-based in events */
    r->max_retries = (uint16_t)ev->max_retries;
    r->item = (int32_t)ev->item;
    copy_id(r->node_id, ev->node_id);
    copy_id(r->node_type, ev->node_type);
    r->path = path;
    r->path_off = path_off;
    if (ev->action) {
        copy_id(r->action, ev->action);
        r->flags |= KG_REC_HAS_ACTION;
    }
    return r;
}

static void emit(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev, uint8_t flags,
                 uint8_t kind, void *payload)
{
    size_t pos;
    kg_record *r = record_begin(m, name, ev, &pos, kind, payload);
    if (r) {
        r->flags |= flags;
        kg_queue_commit(r, pos);
    }
}

/* The error details of an error event, as members of its "data". */
static json_t *error_fields(const kg_obs_event *ev)
{
    if (!ev->error)
        return NULL;
    return json_pack("{s:s, s:s, s:i}", "error", ev->error->message, "error_type",
                     ev->error->type, "error_code", ev->error->code);
}

/* The JSON of a prep/exec value, cut to max_snapshot_size.  malloc'd text
 * (this is the one opt-in allocation on the producer path). */
static char *snapshot_text(const kg_monitor_t *m, json_t *data, uint8_t *flags,
                           uint32_t *size)
{
    char *text = json_dumps(data ? data : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return NULL;
    size_t len = strlen(text);
    *size = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len);
    if (len > m->cfg.max_snapshot_size) {
        text[m->cfg.max_snapshot_size] = '\0';   /* the serialiser mends a cut UTF-8 tail */
        *flags |= KG_REC_TRUNCATED;
    }
    return text;
}

static void emit_data(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev)
{
    if (!wanted(m, name, ev->root_run_id))
        return;
    uint8_t flags = ev->data && !json_is_null(ev->data) ? KG_REC_HAS_DATA : 0;
    if (!m->cfg.enable_data_snapshots) {
        emit(m, name, ev, flags, KG_PAYLOAD_NONE, NULL);
        return;
    }
    uint32_t size = 0;
    char *text = snapshot_text(m, ev->data, &flags, &size);
    size_t pos;
    kg_record *r = record_begin(m, name, ev, &pos, text ? KG_PAYLOAD_SNAPSHOT : KG_PAYLOAD_NONE,
                                text);
    if (r) {
        r->flags |= flags;
        r->snapshot_size = size;
        kg_queue_commit(r, pos);
    }
}

static void emit_simple(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev,
                        uint8_t flags)
{
    if (wanted(m, name, ev->root_run_id))
        emit(m, name, ev, flags, KG_PAYLOAD_NONE, NULL);
}

static void emit_error(kg_monitor_t *m, kg_event_name name, const kg_obs_event *ev,
                       uint8_t flags)
{
    if (wanted(m, name, ev->root_run_id)) {
        json_t *fields = error_fields(ev);
        emit(m, name, ev, flags, fields ? KG_PAYLOAD_FIELDS : KG_PAYLOAD_NONE, fields);
    }
}

static void on_run_start(kg_monitor_t *m, const kg_obs_event *ev)
{
    if (!wanted(m, KG_EV_WORKFLOW_STARTED, ev->root_run_id))
        return;
    /* The topology text is cached by the graph: taking a reference is all
     * the producer does. */
    kg_shared_text *topo = kg__graph_topology_text(ev->node);
    emit(m, KG_EV_WORKFLOW_STARTED, ev, 0, topo ? KG_PAYLOAD_GRAPH : KG_PAYLOAD_NONE, topo);
}

static void on_event(void *ud, const kg_obs_event *ev)
{
    kg_monitor_t *m = ud;
    switch (ev->point) {
    case KG_OBS_RUN_START:
        on_run_start(m, ev);
        break;
    case KG_OBS_RUN_END:
        emit_error(m, KG_EV_WORKFLOW_COMPLETED, ev, ev->error ? KG_REC_FAILED : 0);
        break;
    case KG_OBS_NODE_START:
        emit_simple(m, KG_EV_NODE_STARTED, ev, 0);
        break;
    case KG_OBS_BEFORE_PREP:
        emit_simple(m, KG_EV_NODE_PREPARING, ev, 0);
        break;
    case KG_OBS_AFTER_PREP:
        emit_data(m, KG_EV_DATA_INPUT, ev);
        break;
    case KG_OBS_BEFORE_EXEC:
        emit_simple(m, KG_EV_NODE_EXECUTING, ev, 0);
        break;
    case KG_OBS_RETRY:
        emit_error(m, KG_EV_RETRY_ATTEMPTED, ev, 0);
        break;
    case KG_OBS_FALLBACK:
        emit_error(m, KG_EV_FALLBACK_TRIGGERED, ev, 0);
        break;
    case KG_OBS_AFTER_EXEC:
        emit_data(m, KG_EV_DATA_OUTPUT, ev);
        emit_simple(m, KG_EV_EXECUTION_TIME, ev, 0);
        break;
    case KG_OBS_AFTER_POST:
        emit_simple(m, KG_EV_NODE_COMPLETED, ev, 0);
        break;
    case KG_OBS_NODE_FAILED:
        emit_error(m, KG_EV_NODE_FAILED, ev, 0);
        break;
    case KG_OBS_SUPPRESSED:
        emit_error(m, KG_EV_ERROR_SUPPRESSED, ev, 0);
        emit_simple(m, KG_EV_NODE_COMPLETED, ev, KG_REC_SUPPRESSED);
        break;
    default:
        break;
    }
}

bool kg__monitor_metric_record(kg_monitor_t *m, kg_record *r, kg_event_name name, double value,
                               uint32_t extra)
{
    if (!(m->cfg.capture & KG_CAPTURE(name)))
        return false;
    /* Sequence numbers of partition `n_queues`, which no queue uses. */
    uint64_t k = atomic_fetch_add(&m->metrics_emitted, 1);
    memset(r, 0, sizeof *r);
    r->seq = k * (m->n_queues + 1) + m->n_queues + 1;
    r->ts_ns = kg__real_ns();
    r->name = (uint8_t)name;
    r->value = value;
    r->item = -1;
    r->snapshot_size = extra;
    copy_id(r->node_id, "dispatcher");
    copy_id(r->node_type, "EventDispatcher");
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

static void queues_destroy(kg_monitor_t *m)
{
    for (unsigned i = 0; i < m->n_queues; i++)
        kg_queue_destroy(&m->queues[i]);
    free(m->queues);
    m->queues = NULL;
    m->n_queues = 0;
}

static int queues_init(kg_monitor_t *m, const kg_monitor_config *cfg)
{
    unsigned n = cfg->async_workers;
    m->queues = calloc(n, sizeof *m->queues);
    if (!m->queues)
        return KG_ENOMEM;
    size_t each = (cfg->buffer_size + n - 1) / n;
    for (; m->n_queues < n; m->n_queues++) {
        if (kg_queue_init(&m->queues[m->n_queues], each) < 0) {
            queues_destroy(m);
            return KG_ENOMEM;
        }
    }
    return 0;
}

size_t kg__monitor_queued(kg_monitor_t *m)
{
    size_t n = 0;
    for (unsigned i = 0; i < m->n_queues; i++)
        n += kg_queue_size(&m->queues[i]);
    return n;
}

int kg_monitor_new(const kg_monitor_config *cfg, kg_monitor_t **out, kg_error_t *err)
{
    *out = NULL;
    int rc = cfg ? config_check(cfg, err) : kg_error_set(err, KG_EINVAL, NULL, "config is NULL");
    kg_monitor_t *m = rc == 0 ? calloc(1, sizeof *m) : NULL;
    if (rc == 0 && !m)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "monitor");
    if (rc == 0 && queues_init(m, cfg) < 0)
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
    m->observer = (kg_observer){on_event, m};
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
        queues_destroy(m);
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
    /* Anything the workers could not deliver before the deadline. */
    kg_record r;
    for (unsigned i = 0; i < m->n_queues; i++) {
        while (kg_queue_take(&m->queues[i], &r, 1) == 1) {
            kg_record_release(&r);
            atomic_fetch_add(&m->dropped_shutdown, 1);
        }
    }
    int rc = atomic_load(&m->dropped_shutdown) ? KG_ETIMEOUT : 0;
    kg_backend_disconnect(m->backend);
    kg_backend_free(m->backend);
    queues_destroy(m);
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
    s->enqueued = atomic_load(&m->metrics_emitted);   /* straight into a batch */
    for (unsigned i = 0; i < m->n_queues; i++) {
        s->enqueued += kg_queue_reserved(&m->queues[i]);
        s->queue_size += kg_queue_size(&m->queues[i]);
        s->queue_capacity += kg_queue_capacity(&m->queues[i]);
    }
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
