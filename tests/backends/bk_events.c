/* bk_events.c - see bk_events.h. */
#include "bk_events.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *kg__type_of(const char *name)
{
    static const char *const data[] = {"data_input", "data_output"};
    static const char *const error[] = {"node_failed", "retry_attempted", "fallback_triggered",
                                        "error_suppressed"};
    static const char *const metric[] = {"execution_time", "queue_depth", "throughput_metric",
                                         "events_dropped"};
    for (size_t i = 0; i < sizeof data / sizeof *data; i++)
        if (strcmp(name, data[i]) == 0)
            return "data";
    for (size_t i = 0; i < sizeof error / sizeof *error; i++)
        if (strcmp(name, error[i]) == 0)
            return "error";
    for (size_t i = 0; i < sizeof metric / sizeof *metric; i++)
        if (strcmp(name, metric[i]) == 0)
            return "metric";
    return "lifecycle";
}

int64_t kg_test_epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kg_test_event_fill(kg_test_event *e, const char *name, const char *node_id,
                        const char *workflow_id, uint64_t seq, int64_t ts_ms)
{
    static atomic_ullong counter;
    unsigned long long n = atomic_fetch_add(&counter, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* UUIDv7-shaped: time first, then pid and a counter for uniqueness. */
    snprintf(e->id, sizeof e->id, "%08llx-%04llx-7%03x-8%03x-%012llx",
             (unsigned long long)(ts_ms >> 16) & 0xffffffffULL,
             (unsigned long long)ts_ms & 0xffffULL, (unsigned)getpid() & 0xfff,
             (unsigned)(now.tv_nsec & 0xfff), n & 0xffffffffffffULL);
    snprintf(e->type, sizeof e->type, "%s", kg__type_of(name));
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->node, sizeof e->node, "%s", node_id);
    snprintf(e->wf, sizeof e->wf, "%s", workflow_id);
    e->ts_ms = ts_ms;
    e->seq = seq;
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char iso[32];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(e->json, sizeof e->json,
             "{\"event_id\":\"%s\",\"timestamp\":\"%s.%03dZ\",\"node_id\":\"%s\","
             "\"node_type\":\"TestNode\",\"event_type\":\"%s\",\"event_name\":\"%s\","
             "\"data\":{\"state\":\"%s\"},\"correlation_id\":\"c-%s-%s\","
             "\"workflow_id\":\"%s\",\"seq\":%llu,\"source\":{\"host\":\"test\",\"pid\":%d}}",
             e->id, iso, (int)(ts_ms % 1000), e->node, e->type, e->name, e->name, e->wf,
             e->node, e->wf, (unsigned long long)seq, (int)getpid());
}

kg_event_view kg_test_event_view(const kg_test_event *e)
{
    kg_event_view v = {
        .json = e->json,
        .json_len = strlen(e->json),
        .event_id = e->id,
        .event_type = e->type,
        .event_name = e->name,
        .node_id = e->node,
        .workflow_id = e->wf,
        .timestamp_ms = e->ts_ms,
        .seq = e->seq,
    };
    return v;
}

kg_batch kg_test_batch(const kg_test_event *ev, size_t n, kg_event_view *views)
{
    for (size_t i = 0; i < n; i++)
        views[i] = kg_test_event_view(&ev[i]);
    kg_batch b = {.events = views, .count = n};
    return b;
}

size_t kg_test_demo_run(kg_test_event *out, const char *workflow_id, uint64_t seq0, int64_t ts0)
{
    static const char *const nodes[KG_TEST_DEMO_NODES] = {"data_source", "validator", "processor",
                                                          "aggregator", "storage"};
    static const char *const steps[7] = {"node_started", "node_preparing", "data_input",
                                         "node_executing", "data_output", "execution_time",
                                         "node_completed"};
    size_t n = 0;
    kg_test_event_fill(&out[n], "workflow_started", "demo_graph", workflow_id, seq0 + n,
                       ts0 + (int64_t)n);
    n++;
    for (int i = 0; i < KG_TEST_DEMO_NODES; i++)
        for (int s = 0; s < 7; s++, n++)
            kg_test_event_fill(&out[n], steps[s], nodes[i], workflow_id, seq0 + n,
                               ts0 + (int64_t)n);
    kg_test_event_fill(&out[n], "workflow_completed", "demo_graph", workflow_id, seq0 + n,
                       ts0 + (int64_t)n);
    n++;
    return n;
}
