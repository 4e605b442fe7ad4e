/* store_events.c - see store_events.h. */
#include "store_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kg_tiso(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%03dZ", date, (int)(ms % 1000));
}

int64_t kg_tnow_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct gen {
    const kg_trun *r;
    char **ev;
    size_t n, cap;
} gen;

static void emit(gen *g, const char *name, const char *type, const char *node, const char *corr,
                 const char *data)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 32;
        g->ev = realloc(g->ev, g->cap * sizeof *g->ev);
    }
    char ts[40], path[256] = "";
    kg_tiso(g->r->start_ms + (int64_t)g->n * 10, ts);
    if (g->r->node_path)
        snprintf(path, sizeof path, ",\"node_path\":\"%s%s%s\"", g->r->node_path,
                 strcmp(node, g->r->graph ? g->r->graph : "pipeline") ? "/" : "",
                 strcmp(node, g->r->graph ? g->r->graph : "pipeline") ? node : "");
    size_t len = 1024 + strlen(data);
    char *s = malloc(len);
    snprintf(s, len,
             "{\"event_id\":\"%s-%zu\",\"timestamp\":\"%s\",\"node_id\":\"%s\","
             "\"node_type\":\"%sType\",\"event_type\":\"%s\",\"event_name\":\"%s\","
             "\"data\":%s,\"correlation_id\":\"%s\",\"workflow_id\":\"%s\",\"seq\":%zu,"
             "\"source\":{\"host\":\"testhost\",\"pid\":4242}%s}",
             g->r->run_id, g->n, ts, node, node, type, name, data, corr, g->r->run_id, g->n + 1,
             path);
    g->ev[g->n++] = s;
}

char **kg_trun_events(const kg_trun *r, size_t *n)
{
    gen g = {.r = r};
    const char *graph = r->graph ? r->graph : "pipeline";
    int nodes = r->nodes ? r->nodes : 3;
    char data[4096], corr[160];
    /* workflow_started with the topology n0 -> n1 -> ... */
    int o = snprintf(data, sizeof data, "{\"state\":\"running\"%s%s%s,\"graph\":{\"nodes\":[",
                     r->parent ? ",\"parent_workflow_id\":\"" : "", r->parent ? r->parent : "",
                     r->parent ? "\"" : "");
    for (int i = 0; i < nodes; i++)
        o += snprintf(data + o, sizeof data - (size_t)o, "%s{\"id\":\"n%d\",\"type\":\"n%dType\"}",
                      i ? "," : "", i, i);
    o += snprintf(data + o, sizeof data - (size_t)o, "],\"edges\":[");
    for (int i = 0; i + 1 < nodes; i++)
        o += snprintf(data + o, sizeof data - (size_t)o,
                      "%s{\"from\":\"n%d\",\"to\":\"n%d\",\"action\":\"default\"}", i ? "," : "",
                      i, i + 1);
    snprintf(data + o, sizeof data - (size_t)o, "],\"start\":\"n0\"}}");
    emit(&g, "workflow_started", "lifecycle", graph, r->run_id, data);
    bool failed = false;
    for (int i = 0; i < nodes && !failed; i++) {
        char node[16];
        snprintf(node, sizeof node, "n%d", i);
        snprintf(corr, sizeof corr, "%s-x%d", r->run_id, i);
        emit(&g, "node_started", "lifecycle", node, corr, "{\"state\":\"started\"}");
        emit(&g, "node_executing", "lifecycle", node, corr, "{\"state\":\"executing\"}");
        for (int k = 0; i == 0 && k < r->retries; k++) {
            snprintf(data, sizeof data,
                     "{\"attempt\":%d,\"max_retries\":%d,\"phase\":\"exec\",\"error\":\"flaky "
                     "%d\",\"error_type\":\"FlakyError\"}",
                     k, r->retries + 1, k);
            emit(&g, "retry_attempted", "error", node, corr, data);
        }
        if (r->fail && i == nodes - 1) {
            emit(&g, "node_failed", "error", node, corr,
                 "{\"state\":\"failed\",\"total_execution_time\":0.02,\"phase\":\"exec\","
                 "\"error\":\"it broke\",\"error_type\":\"BrokenError\"}");
            failed = true;
        } else {
            emit(&g, "node_completed", "lifecycle", node, corr,
                 "{\"state\":\"completed\",\"next_action\":\"default\","
                 "\"total_execution_time\":0.02}");
        }
    }
    if (!r->running) {
        snprintf(data, sizeof data,
                 "{\"status\":\"%s\",\"final_action\":\"%s\",\"duration\":%.3f%s}",
                 failed ? "failed" : "success", failed ? "error" : "done",
                 (double)g.n * 0.01, failed ? ",\"error\":\"it broke\",\"error_type\":\"BrokenError\"" : "");
        emit(&g, "workflow_completed", "lifecycle", graph, r->run_id, data);
    }
    *n = g.n;
    return g.ev;
}

void kg_tevents_free(char **ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

char *kg_tbatch(char *const *ev, size_t from, size_t n)
{
    size_t len = 32;
    for (size_t i = 0; i < n; i++)
        len += strlen(ev[from + i]) + 1;
    char *s = malloc(len);
    size_t o = (size_t)snprintf(s, len, "{\"events\":[");
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ev[from + i]);
        if (i)
            s[o++] = ',';
        memcpy(s + o, ev[from + i], l);
        o += l;
    }
    snprintf(s + o, len - o, "]}");
    return s;
}
