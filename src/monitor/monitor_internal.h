/* monitor/monitor_internal.h - the monitor's state, shared by monitor.c (the
 * producer side: the observer callback) and dispatcher.c (the threads). */
#ifndef KG_MONITOR_INTERNAL_H
#define KG_MONITOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "kaygraph/monitor.h"
#include "kaygraph/observer.h"
#include "monitor/breaker.h"
#include "monitor/queue.h"
#include "monitor/serialize.h"

typedef struct kg_worker {
    struct kg_monitor *mon;
    unsigned index;
    kg_queue *queue;              /* the partition this worker drains */
    pthread_t thread;
    bool started;
    kg_record *batch;             /* records taken, not yet delivered */
    size_t count;
    bool serialized;              /* buf/views describe batch[0..count) */
    int64_t batch_since_ns;       /* when the first record was taken */
    unsigned retry;               /* consecutive failures of this batch */
    atomic_size_t held;           /* == count, readable by stats */
    size_t queued_held;           /* records of `queue` in batch (not metrics) */
    size_t first_pos;             /* position of the first of them */
    atomic_size_t min_pos;        /* lowest position of `queue` held; SIZE_MAX none */
    kg_serializer ser;
    kg_buf buf;
    kg_event_view *views;
    kg_view_strings *strings;
} kg_worker;

struct kg_monitor {
    kg_monitor_config cfg;
    kg_backend_t *backend;
    kg_queue *queues;             /* one partition per dispatcher worker */
    unsigned n_queues;
    kg_observer observer;
    uint64_t sample_threshold;    /* run sampled when hash(root) <= this */
    uint32_t always_kept;         /* names exempt from sampling (errors) */
    bool global;                  /* installed process-wide */

    atomic_uint_fast64_t dropped_full, sent, failed_batches, dropped_shutdown;
    atomic_uint_fast64_t metrics_emitted;   /* dispatcher metric events */
    kg_breaker breaker;

    pthread_mutex_t lock;         /* only for the condition below */
    pthread_cond_t cond;          /* stop, flush and "a batch went out" */
    atomic_bool stopping;
    atomic_int flushing;          /* flush callers waiting */
    int64_t stop_deadline_ns;

    kg_worker *workers;
    unsigned n_workers;
    uint64_t instance;
    char source_json[160];
};

int64_t kg__mono_ns(void);

size_t kg__monitor_queued(kg_monitor_t *m);   /* events in all partitions */
int64_t kg__real_ns(void);

/* dispatcher.c */
int kg__dispatcher_start(kg_monitor_t *m, kg_error_t *err);
void kg__dispatcher_stop(kg_monitor_t *m);
void kg__dispatcher_wake(kg_monitor_t *m);

/* monitor.c: fill a dispatcher metric event (false when not captured).  It
 * goes straight into worker 0's batch, not through a queue: when the queue
 * overflows, the events_dropped report is exactly what must not be dropped. */
bool kg__monitor_metric_record(kg_monitor_t *m, kg_record *r, kg_event_name name, double value,
                               uint32_t extra);

#endif
