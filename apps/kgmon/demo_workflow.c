/* demo_workflow.c - the nodes of the demo workflow (see demo_workflow.h).
 *
 * Each node keeps its steps small, in the KayGraph manner: prep reads the
 * shared store, exec works only on what prep gave it, post writes back and
 * picks the next action.  The nodes also tell what they do (kg_ctx_log,
 * kg_ctx_metric, kg_ctx_progress): the validator logs each invalid record,
 * the processor reports progress over its chunks and counts the records it
 * processed, the aggregator reports the mean value, the storage node logs
 * where it stored the result. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo_workflow.h"

uint64_t demo_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

double demo_chance(uint64_t a, uint64_t b, uint64_t c)
{
    return (double)(demo_mix(a ^ demo_mix(b ^ demo_mix(c))) >> 11) / 9007199254740992.0;
}

const demo_options *demo_opts(kg_ctx_t *ctx)
{
    return kg_ctx_data(ctx);
}

uint64_t demo_u64(json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

void demo_simulate_work(const demo_options *o, double fraction)
{
    double s = o->node_delay * fraction;
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- data_source ---------------------------------------------------------------- */

static int source_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:I, s:I}", "seed", json_integer_value(json_object_get(shared, "seed")),
                     "iteration", json_integer_value(json_object_get(shared, "iteration")));
    return 0;
}

static int source_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    static const char *const categories[] = {"sensor", "order", "click", "payment"};
    const demo_options *o = demo_opts(ctx);
    uint64_t seed = demo_u64(in, "seed"), it = demo_u64(in, "iteration");
    demo_simulate_work(o, 1.0);
    json_t *records = json_array();
    for (unsigned i = 0; i < o->batch_size; i++) {
        double r = demo_chance(seed, it, i);
        json_t *rec = json_pack("{s:i, s:s}", "id", (int)i, "category", categories[i % 4]);
        if (r < 0.04)
            json_object_set_new(rec, "value", json_null());          /* invalid: missing */
        else if (r < 0.08)
            json_object_set_new(rec, "value", json_real(-r * 100));  /* invalid: negative */
        else
            json_object_set_new(rec, "value", json_real(r * 100));
        json_array_append_new(records, rec);
    }
    *out = records;
    return 0;
}

static int source_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                       const char **action)
{
    json_object_set(shared, "raw_data", exec);
    json_object_set_new(shared, "generated", json_integer((json_int_t)json_array_size(exec)));
    return 0;
}

static const kg_node_ops source_ops = {
    .type_name = "DataSourceNode", .prep = source_prep, .exec = source_exec, .post = source_post};

/* ---- validator ------------------------------------------------------------------- */

static int validator_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "raw_data"));
    return 0;
}

static int validator_exec(kg_ctx_t *ctx, json_t *records, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    json_t *valid = json_array();
    size_t invalid = 0, i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        json_t *v = json_object_get(rec, "value");
        if (json_is_number(v) && json_number_value(v) >= 0) {
            json_array_append(valid, rec);
            continue;
        }
        const char *reason = json_is_number(v) ? "negative value" : "missing value";
        json_int_t id = json_integer_value(json_object_get(rec, "id"));
        kg_ctx_log_fields_new(ctx, KG_LOG_WARN,
                              json_pack("{s:I, s:s, s:O}", "record", id, "reason", reason,
                                        "category", json_object_get(rec, "category")),
                              "invalid record %lld: %s", (long long)id, reason);
        invalid++;
    }
    kg_ctx_log(ctx, KG_LOG_INFO, "validated %zu records: %zu valid, %zu invalid",
               json_array_size(records), json_array_size(valid), invalid);
    *out = json_pack("{s:o, s:I}", "valid", valid, "invalid", (json_int_t)invalid);
    return 0;
}

static int validator_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                          const char **action)
{
    json_t *valid = json_object_get(exec, "valid");
    json_object_set(shared, "valid_data", valid);
    json_object_set(shared, "invalid", json_object_get(exec, "invalid"));
    json_object_set_new(shared, "valid", json_integer((json_int_t)json_array_size(valid)));
    *action = json_array_size(valid) ? "process" : "no_valid_data";
    return 0;
}

static const kg_node_ops validator_ops = {.type_name = "DataValidationNode",
                                          .prep = validator_prep,
                                          .exec = validator_exec,
                                          .post = validator_post};

/* ---- processor -------------------------------------------------------------------- */

#define CHUNK_RECORDS 10

/* The processor's data: the options, and how many chunks the current
 * execution has finished (its parallel items run on several threads).  The
 * demo runs one workflow at a time; a workflow run concurrently would need
 * one counter per execution (kg_ctx_exec_id). */
typedef struct processor_data {
    const demo_options *opts;
    atomic_uint chunks_done;
} processor_data;

static processor_data *processor_of(kg_ctx_t *ctx)
{
    return kg_ctx_data(ctx);
}

static void free_data(void *data)
{
    free(data);
}

/* prep: the valid records, with what exec needs to decide its luck. */
static int processor_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:O, s:O, s:O, s:i}", "records", json_object_get(shared, "valid_data"),
                     "seed", json_object_get(shared, "seed"), "iteration",
                     json_object_get(shared, "iteration"), "chunk", 0);
    return 0;
}

/* Chunks of 10 records for the parallel variant, each a processor input
 * that knows how many chunks there are. */
static int processor_chunks_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    json_t *records = json_object_get(shared, "valid_data"), *chunks = json_array();
    size_t n = json_array_size(records);
    json_int_t total = (json_int_t)((n + CHUNK_RECORDS - 1) / CHUNK_RECORDS);
    for (size_t start = 0, c = 0; start < n; start += CHUNK_RECORDS, c++) {
        json_t *part = json_array();
        for (size_t i = start; i < n && i < start + CHUNK_RECORDS; i++)
            json_array_append(part, json_array_get(records, i));
        json_array_append_new(chunks, json_pack("{s:o, s:O, s:O, s:I, s:I}", "records", part,
                                                "seed", json_object_get(shared, "seed"),
                                                "iteration", json_object_get(shared, "iteration"),
                                                "chunk", (json_int_t)c, "chunks", total));
    }
    atomic_store(&processor_of(ctx)->chunks_done, 0);
    kg_ctx_progress(ctx, 0, (double)total);
    *out = chunks;
    return 0;
}

static json_t *process_records(json_t *records, const char *how)
{
    json_t *out = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        json_t *copy = json_copy(rec);
        double v = json_number_value(json_object_get(rec, "value"));
        json_object_set_new(copy, "value", json_real(how[0] == 'p' ? v * 1.1 : v));
        json_object_set_new(copy, "processing", json_string(how));
        json_array_append_new(out, copy);
    }
    return out;
}

/* Process `in`'s records and report it.  The parallel variant's input is
 * one chunk (it has "chunks"): count it done among the execution's chunks.
 * The sequential variant's is every record: go through them in chunks,
 * reporting progress after each. */
static json_t *process_reported(kg_ctx_t *ctx, json_t *in, const char *how)
{
    processor_data *pd = processor_of(ctx);
    json_t *records = json_object_get(in, "records");
    size_t n = json_array_size(records);
    if (json_object_get(in, "chunks")) {
        json_t *out = process_records(records, how);
        kg_ctx_metric(ctx, "records_processed", (double)n, "records", KG_METRIC_COUNTER);
        unsigned done = atomic_fetch_add(&pd->chunks_done, 1) + 1;
        kg_ctx_progress(ctx, done, (double)json_integer_value(json_object_get(in, "chunks")));
        return out;
    }
    size_t chunks = (n + CHUNK_RECORDS - 1) / CHUNK_RECORDS;
    json_t *out = json_array();
    for (size_t c = 0; c < chunks; c++) {
        json_t *part = json_array();
        for (size_t i = c * CHUNK_RECORDS; i < n && i < (c + 1) * CHUNK_RECORDS; i++)
            json_array_append(part, json_array_get(records, i));
        demo_simulate_work(pd->opts, 1.0 / (double)chunks);
        json_t *done = process_records(part, how);
        json_array_extend(out, done);
        json_decref(done);
        kg_ctx_metric(ctx, "records_processed", (double)json_array_size(part), "records",
                      KG_METRIC_COUNTER);
        kg_ctx_progress(ctx, (double)(c + 1), (double)chunks);
        json_decref(part);
    }
    return out;
}

static int processor_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    uint64_t seed = demo_u64(in, "seed"), it = demo_u64(in, "iteration"),
             chunk = demo_u64(in, "chunk");
    double luck = demo_chance(seed, it * 7919 + chunk, 1000);
    unsigned attempt = kg_ctx_attempt(ctx);
    bool fails = luck < 0.05 || (luck < 0.30 && attempt == 0);
    /* A parallel chunk always takes the full delay; the sequential node
     * spreads it over its chunks when it succeeds. */
    if (fails || json_object_get(in, "chunks"))
        demo_simulate_work(processor_of(ctx)->opts, 1.0);
    if (luck < 0.05)   /* a bad chunk: every attempt fails, the fallback takes over */
        return kg_ctx_fail(ctx, "ProcessingError", "chunk %llu of iteration %llu is corrupt",
                           (unsigned long long)chunk, (unsigned long long)it);
    if (luck < 0.30 && attempt == 0)   /* transient: the retry succeeds */
        return kg_ctx_fail(ctx, "TimeoutError", "upstream service timed out (attempt %u)",
                           attempt + 1);
    *out = process_reported(ctx, in, "processed");
    return 0;
}

static int processor_fallback(kg_ctx_t *ctx, json_t *in, const kg_error_t *error, json_t **out)
{
    kg_ctx_log_fields_new(ctx, KG_LOG_WARN, json_pack("{s:s, s:s}", "error", error->message,
                                                      "error_type", error->type),
                          "passing %zu records through unprocessed",
                          json_array_size(json_object_get(in, "records")));
    *out = process_reported(ctx, in, "fallback");
    return 0;
}

static int processor_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                          const char **action)
{
    json_object_set(shared, "processed_data", exec);
    return 0;
}

/* The parallel variant's exec_res is an array of per-chunk arrays. */
static int processor_chunks_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                                 const char **action)
{
    json_t *flat = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(exec, i, part) json_array_extend(flat, part);
    json_object_set_new(shared, "processed_data", flat);
    return 0;
}

static const kg_node_ops processor_ops = {.type_name = "DataProcessingNode",
                                          .prep = processor_prep,
                                          .exec = processor_exec,
                                          .exec_fallback = processor_fallback,
                                          .post = processor_post,
                                          .destroy = free_data};
static const kg_node_ops parallel_processor_ops = {.type_name = "ParallelProcessingNode",
                                                   .prep = processor_chunks_prep,
                                                   .exec = processor_exec,
                                                   .exec_fallback = processor_fallback,
                                                   .post = processor_chunks_post,
                                                   .destroy = free_data};

/* ---- aggregator ------------------------------------------------------------------- */

static int aggregator_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "processed_data"));
    return 0;
}

static int aggregator_exec(kg_ctx_t *ctx, json_t *records, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    json_t *by_category = json_object();
    double sum = 0;
    size_t i, fallback = 0;
    json_t *rec;
    json_array_foreach(records, i, rec) {
        double v = json_number_value(json_object_get(rec, "value"));
        const char *cat = json_string_value(json_object_get(rec, "category"));
        json_t *c = json_object_get(by_category, cat);
        json_object_set_new(by_category, cat, json_integer(c ? json_integer_value(c) + 1 : 1));
        sum += v;
        fallback += strcmp(json_string_value(json_object_get(rec, "processing")), "fallback") == 0;
    }
    size_t n = json_array_size(records);
    double mean = n ? sum / (double)n : 0.0;
    kg_ctx_metric(ctx, "mean_value", mean, "", KG_METRIC_GAUGE);
    *out = json_pack("{s:I, s:f, s:f, s:I, s:o}", "count", (json_int_t)n, "sum", sum, "mean",
                     mean, "fallback_records", (json_int_t)fallback, "by_category", by_category);
    return 0;
}

static int aggregator_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                           const char **action)
{
    json_object_set(shared, "aggregates", exec);
    return 0;
}

static const kg_node_ops aggregator_ops = {.type_name = "AggregationNode",
                                           .prep = aggregator_prep,
                                           .exec = aggregator_exec,
                                           .post = aggregator_post};

/* ---- storage ----------------------------------------------------------------------- */

static int storage_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:O, s:O, s:O}", "aggregates", json_object_get(shared, "aggregates"),
                     "seed", json_object_get(shared, "seed"), "iteration",
                     json_object_get(shared, "iteration"));
    return 0;
}

static int storage_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    uint64_t seed = demo_u64(in, "seed"), it = demo_u64(in, "iteration");
    demo_simulate_work(demo_opts(ctx), 1.0);
    if (demo_chance(seed, it, 2000) < 0.08) {
        kg_ctx_log(ctx, KG_LOG_ERROR, "not stored: storage quota exceeded");
        *out = json_pack("{s:b, s:s}", "stored", 0, "reason", "storage quota exceeded");
        return 0;
    }
    char id[48];
    snprintf(id, sizeof id, "st-%04llu-%06llx", (unsigned long long)it,
             (unsigned long long)(demo_mix(seed ^ it) & 0xFFFFFF));
    kg_ctx_log_fields_new(ctx, KG_LOG_INFO, json_pack("{s:s}", "storage_id", id),
                          "stored the aggregates as %s", id);
    *out = json_pack("{s:b, s:s}", "stored", 1, "storage_id", id);
    return 0;
}

static int storage_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                        const char **action)
{
    if (!json_is_true(json_object_get(exec, "stored"))) {
        json_object_set(shared, "error", json_object_get(exec, "reason"));
        *action = "error";
        return 0;
    }
    json_object_set(shared, "storage_id", json_object_get(exec, "storage_id"));
    *action = "stored";
    return 0;
}

static const kg_node_ops storage_ops = {
    .type_name = "StorageNode", .prep = storage_prep, .exec = storage_exec, .post = storage_post};

/* ---- reporter and error_handler ------------------------------------------------------ */

static int reporter_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                         const char **action)
{
    json_object_set_new(shared, "status", json_string("success"));
    *action = "done";
    return 0;
}

static const kg_node_ops reporter_ops = {.type_name = "ReportNode", .post = reporter_post};

static int error_handler_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                              const char **action)
{
    if (!json_object_get(shared, "error"))
        json_object_set_new(shared, "error", json_string("no valid records"));
    json_object_set_new(shared, "status", json_string("handled_error"));
    *action = "handled";
    return 0;
}

static const kg_node_ops error_handler_ops = {.type_name = "ErrorHandlerNode",
                                              .post = error_handler_post};

/* ---- the graph ------------------------------------------------------------------------- */

static void free_opts(void *data)
{
    free(data);
}

static const kg_node_ops graph_ops = {.type_name = "DataPipeline", .destroy = free_opts};

kg_node_t *demo_workflow_new(const demo_options *opts)
{
    demo_options *o = malloc(sizeof *o);
    if (!o)
        return NULL;
    *o = *opts;
    /* The graph owns the options; every node borrows them as its data. */
    kg_node_t *g = kg_graph_new("data_pipeline", &graph_ops, o);
    if (!g) {
        free(o);
        return NULL;
    }
    kg_node_t *source = kg_graph_add(g, kg_node_new("data_source", &source_ops, o));
    kg_node_t *validator = kg_graph_add(g, kg_node_new("validator", &validator_ops, o));
    /* The processor owns its data (freed with it) once it exists. */
    processor_data *pd = calloc(1, sizeof *pd);
    kg_node_t *processor = NULL;
    if (pd) {
        pd->opts = o;
        processor = o->parallel ? kg_parallel_batch_node_new("processor", &parallel_processor_ops,
                                                             pd, o->workers ? o->workers : 4)
                                : kg_node_new("processor", &processor_ops, pd);
        if (!processor)
            free(pd);
        processor = kg_graph_add(g, processor);
    }
    kg_node_t *aggregator = kg_graph_add(g, kg_node_new("aggregator", &aggregator_ops, o));
    kg_node_t *storage = kg_graph_add(g, kg_node_new("storage", &storage_ops, o));
    kg_node_t *reporter = kg_graph_add(g, kg_node_new("reporter", &reporter_ops, o));
    kg_node_t *handler = kg_graph_add(g, kg_node_new("error_handler", &error_handler_ops, o));
    if (!source || !validator || !processor || !aggregator || !storage || !reporter || !handler) {
        kg_node_free(g);
        return NULL;
    }
    kg_node_set_retries(processor, 3, 0.001);
    kg_node_connect(source, NULL, validator);
    kg_node_connect(validator, "process", processor);
    kg_node_connect(validator, "no_valid_data", handler);
    kg_node_connect(processor, NULL, aggregator);
    kg_node_connect(aggregator, NULL, storage);
    kg_node_connect(storage, "stored", reporter);
    kg_node_connect(storage, "error", handler);
    return g;
}

json_t *demo_shared_new(uint64_t seed, unsigned iteration)
{
    return json_pack("{s:I, s:I}", "seed", (json_int_t)(seed & 0x7FFFFFFFFFFFFFFF), "iteration",
                     (json_int_t)iteration);
}
