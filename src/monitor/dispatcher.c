/* dispatcher.c - the threads that move events from the queue to the backend.
 *
 * Each worker owns at most one batch at a time: it takes records off the
 * queue until the batch is full or the oldest has waited flush_interval,
 * serialises them once, and sends.  A failed batch is kept (not re-queued,
 * not dropped) and retried with exponential backoff; the circuit breaker
 * stops all workers from calling a failing backend, and while it is open new
 * events simply wait in the queue -- the buffer whose size bounds what an
 * outage can cost.  Producers never wake workers (that would be a syscall on
 * the node's path), so idle workers poll the queue at a short interval.
 *
 * Shutdown: workers keep delivering until the queue is empty or the
 * shutdown deadline passes; whatever is left then is counted as
 * dropped_shutdown, never silently lost. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "monitor/monitor_internal.h"

#define BACKOFF_FIRST_NS 10000000   /* 10 ms, doubled per consecutive failure */
#define KG__METRIC_EVENTS 3         /* queue_depth, throughput_metric, events_dropped */

static void timed_wait(kg_monitor_t *m, int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    ts.tv_sec = (time_t)(t / 1000000000);
    ts.tv_nsec = (long)(t % 1000000000);
    pthread_mutex_lock(&m->lock);
    pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    pthread_mutex_unlock(&m->lock);
}

void kg__dispatcher_wake(kg_monitor_t *m)
{
    pthread_mutex_lock(&m->lock);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* How long an idle worker sleeps before looking at the queue again: short
 * enough not to add latency next to flush_interval, long enough to cost
 * nothing measurable. */
static int64_t idle_poll_ns(const kg_monitor_t *m)
{
    double s = m->cfg.flush_interval / 20;
    if (s < 0.0005)
        s = 0.0005;
    if (s > 0.005)
        s = 0.005;
    return (int64_t)(s * 1e9);
}

/* The lowest queue position among the records held (metric events, which
 * come from no queue, do not count), or SIZE_MAX. */
static size_t held_min_pos(const kg_worker *w)
{
    unsigned n = w->mon->n_queues;
    for (size_t i = 0; i < w->count; i++)
        if (!kg__record_is_metric(&w->batch[i], n))
            return kg__record_pos(&w->batch[i], n);
    return SIZE_MAX;
}

/* Take records until the batch is full.  min_pos announces a lower bound of
 * what this worker may hold *before* the take moves the queue's tail, so that
 * kg_monitor_flush never sees a record that is neither queued nor held. */
static void batch_fill(kg_worker *w)
{
    kg_monitor_t *m = w->mon;
    size_t room = w->count < m->cfg.batch_size ? m->cfg.batch_size - w->count : 0;
    if (room == 0 || w->serialized)
        return;
    /* All seq_cst: this store, the queue's take and flush_done()'s loads sit
     * in one total order, so a flusher that sees the tail moved also sees
     * this announcement. */
    if (atomic_load(&w->min_pos) == SIZE_MAX)
        atomic_store(&w->min_pos, kg_queue_taken(w->queue));
    size_t got = kg_queue_take(w->queue, w->batch + w->count, room);
    if (got && w->count == 0)
        w->batch_since_ns = kg__mono_ns();
    w->count += got;
    atomic_store(&w->held, w->count);
    atomic_store(&w->min_pos, held_min_pos(w));
}

static void batch_serialize(kg_worker *w)
{
    kg_buf_reset(&w->buf);
    for (size_t i = 0; i < w->count; i++)
        kg_serialize_record(&w->ser, &w->batch[i], &w->buf, &w->views[i], &w->strings[i]);
    /* The buffer has stopped growing: now the views may point into it. */
    for (size_t i = 0; i < w->count; i++)
        kg_view_fix(&w->views[i], &w->strings[i], &w->buf);
    w->serialized = !w->buf.failed;
}

static void batch_release(kg_worker *w)
{
    kg_records_release(w->batch, w->count);
    w->count = 0;
    w->serialized = false;
    w->retry = 0;
    atomic_store(&w->held, 0);
    atomic_store(&w->min_pos, SIZE_MAX);
}

static int64_t backoff_ns(const kg_monitor_t *m, unsigned retry)
{
    double ns = (double)BACKOFF_FIRST_NS * pow(2.0, retry > 30 ? 30 : retry - 1);
    double cap = m->cfg.retry_backoff_max * 1e9;
    return (int64_t)(ns < cap ? ns : cap);
}

/* Try to deliver the held batch.  Returns how long to wait before the next
 * attempt (0: go on at once). */
static int64_t batch_deliver(kg_worker *w, int64_t *next_try_ns, bool stopping)
{
    kg_monitor_t *m = w->mon;
    int64_t now = kg__mono_ns();
    if (w->retry && now < *next_try_ns)
        return *next_try_ns - now;
    bool probe;
    /* At shutdown, waiting out the breaker's reset could outlast the
     * deadline, so the probe is tried at the retry backoff instead. */
    if (!kg_breaker_allow(&m->breaker, now, stopping, &probe)) {
        int64_t wait = kg_breaker_wait_ns(&m->breaker, now);
        return wait > 0 && wait < 50000000 ? wait : 5000000;
    }
    if (!w->serialized)
        batch_serialize(w);
    int rc = KG_ENOMEM;
    if (w->serialized) {
        kg_batch batch = {w->views, w->count};
        rc = kg_backend_send_batch(m->backend, w->index, &batch);
    }
    if (rc == 0) {
        atomic_fetch_add(&m->sent, w->count);
        kg_breaker_success(&m->breaker);
        batch_release(w);
        kg__dispatcher_wake(m);   /* flush waiters look again */
        return 0;
    }
    atomic_fetch_add(&m->failed_batches, 1);
    kg_breaker_failure(&m->breaker, kg__mono_ns(), probe);
    w->retry++;
    *next_try_ns = kg__mono_ns() + backoff_ns(m, w->retry);
    return *next_try_ns - kg__mono_ns();
}

static bool batch_due(const kg_worker *w, int64_t now, bool stopping)
{
    const kg_monitor_t *m = w->mon;
    return w->count >= m->cfg.batch_size || w->serialized || stopping ||
           atomic_load(&((kg_monitor_t *)m)->flushing) > 0 ||
           now - w->batch_since_ns >= (int64_t)(m->cfg.flush_interval * 1e9);
}

/* Worker 0 reports the dispatcher's own health as metric events. */
static void metric_append(kg_worker *w, kg_event_name name, double value, uint32_t extra)
{
    if (kg__monitor_metric_record(w->mon, &w->batch[w->count], name, value, extra)) {
        if (w->count++ == 0)
            w->batch_since_ns = kg__mono_ns();
        atomic_store(&w->held, w->count);
    }
}

/* Worker 0 reports the dispatcher's own health as metric events, appended
 * to its own batch (which has room for them beyond batch_size).  While the
 * batch is held for a retry the report waits for the next loop. */
static void metrics_tick(kg_worker *w, int64_t now, int64_t *next_ns, uint64_t *last_sent)
{
    kg_monitor_t *m = w->mon;
    if (m->cfg.metrics_interval <= 0 || now < *next_ns || w->serialized ||
        w->count > m->cfg.batch_size)
        return;
    double interval = m->cfg.metrics_interval;
    uint64_t sent = atomic_load(&m->sent);
    metric_append(w, KG_EV_QUEUE_DEPTH, (double)kg__monitor_queued(m), (uint32_t)m->cfg.buffer_size);
    metric_append(w, KG_EV_THROUGHPUT_METRIC, (double)(sent - *last_sent) / interval, 0);
    metric_append(w, KG_EV_EVENTS_DROPPED,
                  (double)(atomic_load(&m->dropped_full) + atomic_load(&m->dropped_shutdown)), 0);
    *last_sent = sent;
    *next_ns = now + (int64_t)(interval * 1e9);
}

static bool queue_drained(const kg_worker *w)
{
    return kg_queue_taken(w->queue) >= kg_queue_reserved(w->queue);
}

static void *worker_main(void *arg)
{
    kg_worker *w = arg;
    kg_monitor_t *m = w->mon;
    int64_t next_try_ns = 0, next_metrics_ns = kg__mono_ns() + (int64_t)(m->cfg.metrics_interval * 1e9);
    uint64_t last_sent = 0;
    for (;;) {
        bool stopping = atomic_load(&m->stopping);
        int64_t now = kg__mono_ns();
        if (stopping && now >= m->stop_deadline_ns)
            break;
        if (w->index == 0 && !stopping)
            metrics_tick(w, now, &next_metrics_ns, &last_sent);
        batch_fill(w);
        if (w->count == 0) {
            if (stopping && queue_drained(w))
                break;
            timed_wait(m, idle_poll_ns(m));
            continue;
        }
        if (!batch_due(w, now, stopping)) {
            timed_wait(m, idle_poll_ns(m));
            continue;
        }
        timed_wait(m, batch_deliver(w, &next_try_ns, stopping));
    }
    atomic_fetch_add(&m->dropped_shutdown, w->count);
    batch_release(w);
    return NULL;
}

static int worker_init(kg_monitor_t *m, kg_worker *w, unsigned index)
{
    w->mon = m;
    w->index = index;
    w->queue = &m->queues[index];
    atomic_init(&w->held, 0);
    atomic_init(&w->min_pos, SIZE_MAX);
    size_t cap = m->cfg.batch_size + KG__METRIC_EVENTS;   /* metrics ride along */
    w->batch = calloc(cap, sizeof *w->batch);
    w->views = calloc(cap, sizeof *w->views);
    w->strings = calloc(cap, sizeof *w->strings);
    w->ser.instance = m->instance;
    w->ser.source_json = m->source_json;
    kg_rng_seed(&w->ser.rng);
    return w->batch && w->views && w->strings ? 0 : KG_ENOMEM;
}

int kg__dispatcher_start(kg_monitor_t *m, kg_error_t *err)
{
    m->n_workers = m->cfg.async_workers;
    m->workers = calloc(m->n_workers, sizeof *m->workers);
    if (!m->workers)
        return kg_error_set(err, KG_ENOMEM, NULL, "dispatcher workers");
    for (unsigned i = 0; i < m->n_workers; i++)
        if (worker_init(m, &m->workers[i], i) < 0)
            return kg_error_set(err, KG_ENOMEM, NULL, "dispatcher batch buffers");
    /* A backend that cannot connect now is not an error: monitoring must
     * not stop the workflow, and send_batch() reconnects. */
    kg_backend_connect(m->backend, m->n_workers);
    for (unsigned i = 0; i < m->n_workers; i++) {
        if (pthread_create(&m->workers[i].thread, NULL, worker_main, &m->workers[i]) != 0)
            return kg_error_set(err, KG_EIO, "ThreadError", "cannot start dispatcher thread %u", i);
        m->workers[i].started = true;
    }
    return 0;
}

void kg__dispatcher_stop(kg_monitor_t *m)
{
    if (!m->workers)
        return;
    m->stop_deadline_ns = kg__mono_ns() + (int64_t)(m->cfg.shutdown_timeout * 1e9);
    atomic_store(&m->stopping, true);
    kg__dispatcher_wake(m);
    for (unsigned i = 0; i < m->n_workers; i++) {
        kg_worker *w = &m->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        free(w->batch);
        free(w->views);
        free(w->strings);
        kg_buf_free(&w->buf);
    }
    free(m->workers);
    m->workers = NULL;
    m->n_workers = 0;
}

/* In every partition, everything queued before its target has left the
 * queue and its worker holds no record below it. */
static bool flush_done(kg_monitor_t *m, const size_t *targets)
{
    for (unsigned i = 0; i < m->n_workers; i++) {
        if (kg_queue_taken(m->workers[i].queue) < targets[i] ||
            atomic_load(&m->workers[i].min_pos) < targets[i])
            return false;
    }
    return true;
}

int kg_monitor_flush(kg_monitor_t *m, double timeout)
{
    size_t targets[64];   /* async_workers <= 64 (config_check) */
    for (unsigned i = 0; i < m->n_workers; i++)
        targets[i] = kg_queue_reserved(m->workers[i].queue);
    int64_t deadline = kg__mono_ns() + (int64_t)(timeout * 1e9);
    atomic_fetch_add(&m->flushing, 1);
    kg__dispatcher_wake(m);
    int rc = 0;
    while (!flush_done(m, targets)) {
        if (kg__mono_ns() >= deadline) {
            rc = KG_ETIMEOUT;
            break;
        }
        timed_wait(m, 1000000);
    }
    atomic_fetch_sub(&m->flushing, 1);
    return rc;
}
