/* dispatcher.c - the threads that move events from the queue to the backend.
 *
 * Each worker owns at most one batch at a time: it reads the queue in order,
 * takes the records of its partition (stepping over the others) until the
 * batch is full or the oldest has waited flush_interval, serialises them
 * once, and sends.  A failed batch is kept (not re-queued,
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

/* Read the queue from this worker's cursor and take its partition's records
 * until the batch is full; at most a few batches' worth of positions per
 * call, so a worker whose partition is quiet still comes back to deliver.
 * Returns true when it stopped because nothing more is committed (it has
 * caught up), false when the batch is full or the scan limit was reached.
 * min_pos announces a lower bound of what this worker may hold *before* the
 * cursor moves, so that kg_monitor_flush never sees a record that is
 * neither queued nor held. */
static bool batch_fill(kg_worker *w)
{
    kg_monitor_t *m = w->mon;
    if (w->count >= m->cfg.batch_size || w->serialized)
        return false;
    /* All seq_cst: this store, the cursor's and flush_done()'s loads sit in
     * one total order, so a flusher that sees the cursor moved also sees
     * this announcement. */
    atomic_store(&w->min_pos, w->n_taken && w->first_pos < w->cursor ? w->first_pos : w->cursor);
    size_t pos = w->cursor, end = pos + 8 * (size_t)m->cfg.batch_size;
    size_t before = w->count;
    unsigned part, count;
    const kg_record *r = NULL;
    while (w->count < m->cfg.batch_size && pos < end &&
           (r = kg_queue_peek(&m->queue, pos, &part, &count))) {
        if (part == w->index) {
            if (w->n_taken == 0 || pos < w->first_pos)
                w->first_pos = pos;
            w->batch[w->n_taken++] = (kg_taken){*r, (uint64_t)pos + 1, count};
            w->count += count;
        }
        pos += count;
    }
    if (pos != w->cursor) {
        w->cursor = pos;
        kg_queue_advance(&m->queue, w->index, pos);
    }
    if (w->count > before) {
        if (before == 0)
            w->batch_since_ns = kg_clock_mono_ns();
        w->taken_total += w->count - before;
        atomic_store_explicit(&w->taken, w->taken_total, memory_order_relaxed);
        atomic_store(&w->held, w->count);
    }
    atomic_store(&w->min_pos, w->n_taken ? w->first_pos : SIZE_MAX);
    return w->count < m->cfg.batch_size && pos < end;
}

static void batch_serialize(kg_worker *w)
{
    kg_buf_reset(&w->buf);
    kg_serializer_clock(&w->ser);
    size_t e = 0;
    for (size_t i = 0; i < w->n_taken; i++) {
        const kg_taken *t = &w->batch[i];
        for (unsigned k = 0; k < t->count; k++, e++) {
            kg_event_name name = k == 0 ? (kg_event_name)t->rec.name
                                        : (kg_event_name)kg_record_follows((kg_event_name)t->rec.name);
            kg_serialize_event(&w->ser, &t->rec, name, t->seq + k, k == 0, &w->buf, &w->views[e],
                               &w->strings[e]);
        }
    }
    /* The buffer has stopped growing: now the views may point into it. */
    for (size_t i = 0; i < e; i++)
        kg_view_fix(&w->views[i], &w->strings[i], &w->buf);
    w->serialized = !w->buf.failed;
}

/* Payloads go one by one; descriptor references in runs of the same
 * descriptor (a node execution's events are consecutive), so the shared
 * count is written once per run, not once per event. */
static void batch_release(kg_worker *w)
{
    kg_node_desc *run = NULL;
    size_t run_len = 0;
    for (size_t i = 0; i < w->n_taken; i++) {
        kg_record *r = &w->batch[i].rec;
        kg_record_release_payload(r);
        if (r->desc != run) {
            kg__desc_unref(run, run_len);
            run = r->desc;
            run_len = 0;
        }
        run_len++;
    }
    kg__desc_unref(run, run_len);
    w->n_taken = 0;
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
    int64_t now = kg_clock_mono_ns();
    if (w->retry && now < *next_try_ns)
        return *next_try_ns - now;
    /* The backend's peer asked for a pause (Retry-After): nobody calls it,
     * not even the breaker's probe, before then. */
    int64_t not_before = kg_backend_not_before(m->backend, w->index);
    if (now < not_before)
        return not_before - now;
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
        kg_batch batch = {.events = w->views, .count = w->count};
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
    kg_breaker_failure(&m->breaker, kg_clock_mono_ns(), probe);
    w->retry++;
    *next_try_ns = kg_clock_mono_ns() + backoff_ns(m, w->retry);
    return *next_try_ns - kg_clock_mono_ns();
}

static bool batch_due(const kg_worker *w, int64_t now, bool stopping)
{
    const kg_monitor_t *m = w->mon;
    return w->count >= m->cfg.batch_size || w->serialized || stopping ||
           atomic_load(&((kg_monitor_t *)m)->flushing) > 0 ||
           now - w->batch_since_ns >= (int64_t)(m->cfg.flush_interval * 1e9);
}

/* A metric event takes its seq from a queue position like any event, but
 * goes straight into worker 0's batch: the cell is committed as a
 * placeholder that every worker steps over.  So the events_dropped report
 * is not queued behind the events it reports on, and it finds a cell in
 * the ones producers leave free while they are being refused. */
static void metric_append(kg_worker *w, kg_event_name name, double value)
{
    kg_monitor_t *m = w->mon;
    kg_record rec;
    size_t pos = 0;
    if (!kg__monitor_metric_record(m, &rec, name, value))
        return;
    kg_record *cell = kg_queue_reserve(&m->queue, 1, true, &pos);
    if (!cell)
        return;   /* the last reports are still queued: the next ones follow */
    memset(cell, 0, sizeof *cell);
    if (w->n_taken == 0)
        w->batch_since_ns = kg_clock_mono_ns();
    if (w->n_taken == 0 || pos < w->first_pos)
        w->first_pos = pos;
    w->batch[w->n_taken++] = (kg_taken){rec, (uint64_t)pos + 1, 1};
    w->count++;
    w->taken_total++;
    atomic_store_explicit(&w->taken, w->taken_total, memory_order_relaxed);
    atomic_store(&w->held, w->count);
    /* Announced before the placeholder lets the cursors pass `pos`, so a
     * flush that sees them past it also sees this worker holding it. */
    atomic_store(&w->min_pos, w->first_pos);
    kg_queue_commit(cell, pos, KG_QUEUE_NO_PART, 1);
}

/* Worker 0 reports the dispatcher's own health as metric events (room for
 * them is kept beyond batch_size; while the batch waits for a retry the
 * report waits for the next loop). */
static void metrics_tick(kg_worker *w, int64_t now, int64_t *next_ns, uint64_t *last_sent)
{
    kg_monitor_t *m = w->mon;
    if (m->cfg.metrics_interval <= 0 || now < *next_ns || w->serialized ||
        w->count > m->cfg.batch_size)
        return;
    double interval = m->cfg.metrics_interval;
    uint64_t sent = atomic_load(&m->sent);
    metric_append(w, KG_EV_QUEUE_DEPTH, (double)kg__monitor_queued(m));
    metric_append(w, KG_EV_THROUGHPUT_METRIC, (double)(sent - *last_sent) / interval);
    metric_append(w, KG_EV_EVENTS_DROPPED,
                  (double)(atomic_load(&m->dropped_full) + atomic_load(&m->dropped_shutdown)));
    *last_sent = sent;
    *next_ns = now + (int64_t)(interval * 1e9);
}

static bool queue_drained(const kg_worker *w)
{
    return w->cursor >= kg_queue_reserved(&w->mon->queue);
}

static void *worker_main(void *arg)
{
    kg_worker *w = arg;
    kg_monitor_t *m = w->mon;
    int64_t next_try_ns = 0, next_metrics_ns = kg_clock_mono_ns() + (int64_t)(m->cfg.metrics_interval * 1e9);
    uint64_t last_sent = 0;
    for (;;) {
        bool stopping = atomic_load(&m->stopping);
        int64_t now = kg_clock_mono_ns();
        if (stopping && now >= m->stop_deadline_ns)
            break;
        if (w->index == 0 && !stopping)
            metrics_tick(w, now, &next_metrics_ns, &last_sent);
        /* Not caught up: more is committed than one call reads, so go on
         * reading instead of waiting for the batch to fill by time. */
        bool caught_up = batch_fill(w);
        if (w->count == 0) {
            if (stopping && queue_drained(w))
                break;
            if (caught_up)
                timed_wait(m, idle_poll_ns(m));
            continue;
        }
        if (!batch_due(w, now, stopping)) {
            if (caught_up)
                timed_wait(m, idle_poll_ns(m));
            continue;
        }
        int64_t wait = batch_deliver(w, &next_try_ns, stopping);
        /* A pause the backend asked for may outlast the shutdown deadline;
         * the stop's wake-up has already been spent by then. */
        if (stopping && wait > m->stop_deadline_ns - kg_clock_mono_ns())
            wait = m->stop_deadline_ns - kg_clock_mono_ns();
        timed_wait(m, wait);
    }
    atomic_fetch_add(&m->dropped_shutdown, w->count);
    batch_release(w);
    return NULL;
}

static int worker_init(kg_monitor_t *m, kg_worker *w, unsigned index)
{
    w->mon = m;
    w->index = index;
    atomic_init(&w->held, 0);
    atomic_init(&w->taken, 0);
    atomic_init(&w->min_pos, SIZE_MAX);
    /* The last record taken may carry more events than are left to fill;
     * metric events ride along beyond batch_size. */
    size_t cap = m->cfg.batch_size + KG_QUEUE_MAX_EVENTS - 1 + KG__METRIC_EVENTS;
    w->batch = calloc(cap, sizeof *w->batch);
    w->views = calloc(cap, sizeof *w->views);
    w->strings = calloc(cap, sizeof *w->strings);
    kg_serializer_init(&w->ser, m->instance, m->source_json, kg_queue_capacity(&m->queue));
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
    m->stop_deadline_ns = kg_clock_mono_ns() + (int64_t)(m->cfg.shutdown_timeout * 1e9);
    atomic_store(&m->stopping, true);
    /* A send in progress may last the backend's own timeout: tell it the
     * deadline, so shutdown keeps its bound. */
    kg_backend_set_deadline(m->backend, m->stop_deadline_ns);
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

/* Every worker has read past `target` and holds no record below it. */
static bool flush_done(kg_monitor_t *m, size_t target)
{
    for (unsigned i = 0; i < m->n_workers; i++) {
        if (kg_queue_cursor_of(&m->queue, i) < target ||
            atomic_load(&m->workers[i].min_pos) < target)
            return false;
    }
    return true;
}

int kg_monitor_flush(kg_monitor_t *m, double timeout)
{
    size_t target = kg_queue_reserved(&m->queue);
    int64_t deadline = kg_clock_mono_ns() + (int64_t)(timeout * 1e9);
    atomic_fetch_add(&m->flushing, 1);
    kg__dispatcher_wake(m);
    int rc = 0;
    while (!flush_done(m, target)) {
        if (kg_clock_mono_ns() >= deadline) {
            rc = KG_ETIMEOUT;
            break;
        }
        timed_wait(m, 1000000);
    }
    atomic_fetch_sub(&m->flushing, 1);
    return rc;
}
