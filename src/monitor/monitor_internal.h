/* monitor/monitor_internal.h - the monitor's state, shared by monitor.c (the
 * producer side: the observer callback) and dispatcher.c (the threads). */
#ifndef KG_MONITOR_INTERNAL_H
#define KG_MONITOR_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "kaygraph/monitor.h"
#include "kaygraph/observer.h"
#include "monitor/breaker.h"
#include "monitor/queue.h"
#include "monitor/serialize.h"
#include "util/clock.h"

#define KG__METRIC_EVENTS 3   /* queue_depth, throughput_metric, events_dropped */

/* A record a worker took off the queue, with the seq of its first event. */
typedef struct kg_taken {
    kg_record rec;
    uint64_t seq;
    unsigned count;            /* events it carries */
} kg_taken;

typedef struct kg_worker {
    struct kg_monitor *mon;
    unsigned index;            /* also its partition and its queue cursor */
    pthread_t thread;
    bool started;
    size_t cursor;             /* next queue position to read */
    kg_taken *batch;           /* records taken, not yet delivered */
    size_t n_taken;
    size_t count;              /* events in them */
    size_t first_pos;          /* lowest queue position in the batch */
    bool serialized;           /* buf/views describe the batch */
    int64_t batch_since_ns;    /* when the first record was taken */
    unsigned retry;            /* consecutive failures of this batch */
    uint64_t taken_total;      /* events ever taken (this thread's copy) */
    atomic_uint_fast64_t taken;   /* == taken_total, readable by stats */
    atomic_size_t held;        /* == count, readable by stats */
    atomic_size_t min_pos;     /* lowest queue position held; SIZE_MAX none */
    kg_serializer ser;
    kg_buf buf;
    kg_event_view *views;
    kg_view_strings *strings;
} kg_worker;

struct kg_monitor {
    kg_monitor_config cfg;
    kg_backend_t *backend;
    kg_queue queue;
    unsigned n_parts;          /* partitions == workers */
    kg_observer observer;
    uint64_t sample_threshold; /* run sampled when hash(root) <= this */
    uint32_t always_kept;      /* names exempt from sampling (errors) */
    bool global;               /* installed process-wide */

    /* Written by the workers (sent: every batch): on a line of their own,
     * away from what node threads read on every event above. */
    alignas(64) atomic_uint_fast64_t dropped_full, sent, failed_batches, dropped_shutdown;
    kg_breaker breaker;

    pthread_mutex_t lock;      /* only for the condition below */
    pthread_cond_t cond;       /* stop, flush and "a batch went out" */
    atomic_bool stopping;
    atomic_int flushing;       /* flush callers waiting */
    int64_t stop_deadline_ns;

    kg_worker *workers;
    unsigned n_workers;
    uint64_t instance;
    char source_json[160];
};

size_t kg__monitor_queued(kg_monitor_t *m);   /* events not yet taken */

/* dispatcher.c */
int kg__dispatcher_start(kg_monitor_t *m, kg_error_t *err);
void kg__dispatcher_stop(kg_monitor_t *m);
void kg__dispatcher_wake(kg_monitor_t *m);

/* monitor.c: fill a dispatcher metric event (false when not captured). */
bool kg__monitor_metric_record(kg_monitor_t *m, kg_record *r, kg_event_name name, double value);

#endif
