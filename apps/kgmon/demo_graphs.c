/* demo_graphs.c - the demo's other example graphs (see demo_workflow.h):
 * `nested`, sub-graphs inside sub-graphs with a batch graph, and `wide`, a
 * graph of 124 nodes that fans out and back in twice.  They exist so that
 * nested and large workflows can be watched on the dashboard and tested
 * end to end; the work each node does is small but real (it reads what the
 * step before wrote and writes what the next one reads), and everything
 * random derives from the seed and the iteration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo_workflow.h"

static const char *const regions[] = {"eu", "us", "apac"};
#define N_REGIONS 3

/* What the run reports (cmd_demo.c reads these keys after every run). */
static void report_done(json_t *shared, const char *prefix)
{
    char id[48];
    snprintf(id, sizeof id, "%s-%04llu-%06llx", prefix,
             (unsigned long long)demo_u64(shared, "iteration"),
             (unsigned long long)(demo_mix(demo_u64(shared, "seed") ^ demo_u64(shared, "iteration")) &
                                  0xFFFFFF));
    json_object_set_new(shared, "storage_id", json_string(id));
    json_object_set_new(shared, "status", json_string("success"));
}

static void free_opts(void *data)
{
    free(data);
}

/* Steps whose only job here is to take simulated time and pass the shared
 * store's `key` on; prep reads it, post counts the step. */
static int pass_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:I}", "steps", (json_int_t)demo_u64(shared, "steps"));
    return 0;
}

static int pass_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    *out = json_pack("{s:I}", "steps", (json_int_t)demo_u64(in, "steps") + 1);
    return 0;
}

static int pass_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                     const char **action)
{
    json_object_set(shared, "steps", json_object_get(exec, "steps"));
    return 0;
}

/* ==== nested ======================================================================
 *
 * orders: intake -> ingest -ok-> enrich -scored-> per_region -> report
 *                        \-empty-> report
 *   ingest:      fetch -> validator                          (a sub-graph)
 *   enrich:      lookup -> scoring                           (a sub-graph)
 *     scoring:   features -> model -> validator              (inside enrich)
 *   per_region:  aggregate -> store, once per region         (a batch graph)
 *
 * "validator" is the id of a node in ingest and of another in scoring. */

static int intake_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    const demo_options *o = demo_opts(ctx);
    uint64_t seed = demo_u64(in, "seed"), it = demo_u64(in, "iteration");
    demo_simulate_work(o, 1.0);
    json_t *orders = json_array();
    for (unsigned i = 0; i < o->batch_size; i++) {
        double r = demo_chance(seed, it, i);
        json_array_append_new(orders, json_pack("{s:i, s:s, s:f}", "id", (int)i, "region",
                                                regions[i % N_REGIONS], "amount",
                                                r < 0.06 ? -1.0 : r * 500));
    }
    *out = orders;
    return 0;
}

static int seed_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:O, s:O}", "seed", json_object_get(shared, "seed"), "iteration",
                     json_object_get(shared, "iteration"));
    return 0;
}

static int intake_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                       const char **action)
{
    json_object_set(shared, "orders", exec);
    json_object_set_new(shared, "generated", json_integer((json_int_t)json_array_size(exec)));
    return 0;
}

static int orders_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "orders"));
    return 0;
}

static int fetch_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    *out = json_deep_copy(orders);
    size_t i;
    json_t *o;
    json_array_foreach(*out, i, o) json_object_set_new(o, "fetched", json_true());
    return 0;
}

static int orders_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                       const char **action)
{
    json_object_set(shared, "orders", exec);
    return 0;
}

static int order_validator_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    json_t *valid = json_array();
    size_t i, invalid = 0;
    json_t *o;
    json_array_foreach(orders, i, o) {
        if (json_number_value(json_object_get(o, "amount")) >= 0)
            json_array_append(valid, o);
        else
            invalid++;
    }
    *out = json_pack("{s:o, s:I}", "valid", valid, "invalid", (json_int_t)invalid);
    return 0;
}

static int order_validator_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                                const char **action)
{
    json_t *valid = json_object_get(exec, "valid");
    json_object_set(shared, "orders", valid);
    json_object_set_new(shared, "valid", json_integer((json_int_t)json_array_size(valid)));
    json_object_set(shared, "invalid", json_object_get(exec, "invalid"));
    *action = json_array_size(valid) ? "ok" : "empty";
    return 0;
}

static int lookup_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    static const char *const tiers[] = {"bronze", "silver", "gold"};
    demo_simulate_work(demo_opts(ctx), 1.0);
    *out = json_deep_copy(orders);
    size_t i;
    json_t *o;
    json_array_foreach(*out, i, o) json_object_set_new(o, "tier", json_string(tiers[demo_mix(i) % 3]));
    return 0;
}

static int features_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    *out = json_deep_copy(orders);
    size_t i;
    json_t *o;
    json_array_foreach(*out, i, o) {
        double amount = json_number_value(json_object_get(o, "amount"));
        json_object_set_new(o, "size", json_real(amount / 500));
    }
    return 0;
}

/* The model's prep carries what exec needs to decide its luck. */
static int model_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:O, s:O, s:O}", "orders", json_object_get(shared, "orders"), "seed",
                     json_object_get(shared, "seed"), "iteration",
                     json_object_get(shared, "iteration"));
    return 0;
}

static int model_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    if (kg_ctx_attempt(ctx) == 0 &&
        demo_chance(demo_u64(in, "seed"), demo_u64(in, "iteration"), 3000) < 0.3)
        return kg_ctx_fail(ctx, "TimeoutError", "risk model did not answer (attempt 1)");
    *out = json_deep_copy(json_object_get(in, "orders"));
    size_t i;
    json_t *o;
    json_array_foreach(*out, i, o) {
        double size = json_number_value(json_object_get(o, "size"));
        json_object_set_new(o, "risk", json_real(size * size));
    }
    return 0;
}

static int score_validator_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    size_t i, flagged = 0;
    json_t *o;
    json_array_foreach(orders, i, o) flagged += json_number_value(json_object_get(o, "risk")) > 0.8;
    *out = json_integer((json_int_t)flagged);
    return 0;
}

static int score_validator_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                                const char **action)
{
    json_object_set(shared, "flagged", exec);
    *action = "scored";
    return 0;
}

/* per_region: its prep gives one params object per region; the sub-graph's
 * nodes read their region from kg_ctx_params(). */
static int regions_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_array();
    for (int i = 0; i < N_REGIONS; i++)
        json_array_append_new(*out, json_pack("{s:s}", "region", regions[i]));
    return 0;
}

static int aggregate_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    const char *region = json_string_value(json_object_get(kg_ctx_params(ctx), "region"));
    json_t *mine = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(shared, "orders"), i, o)
        if (region && strcmp(json_string_value(json_object_get(o, "region")), region) == 0)
            json_array_append(mine, o);
    *out = mine;
    return 0;
}

static int aggregate_exec(kg_ctx_t *ctx, json_t *orders, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    double sum = 0;
    size_t i;
    json_t *o;
    json_array_foreach(orders, i, o) sum += json_number_value(json_object_get(o, "amount"));
    *out = json_pack("{s:I, s:f}", "count", (json_int_t)json_array_size(orders), "sum", sum);
    return 0;
}

static int aggregate_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                          const char **action)
{
    json_object_set(shared, "region_total", exec);
    return 0;
}

static int store_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_incref(json_object_get(shared, "region_total"));
    return 0;
}

static int store_exec(kg_ctx_t *ctx, json_t *total, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    *out = json_incref(total);
    return 0;
}

static int store_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                      const char **action)
{
    const char *region = json_string_value(json_object_get(kg_ctx_params(ctx), "region"));
    json_t *by_region = json_object_get(shared, "regions");
    if (!by_region) {
        by_region = json_object();
        json_object_set_new(shared, "regions", by_region);
    }
    json_object_set(by_region, region ? region : "?", exec);
    json_t *agg = json_object_get(shared, "aggregates");
    json_int_t count = json_integer_value(json_object_get(agg, "count")) +
                       json_integer_value(json_object_get(exec, "count"));
    json_object_set_new(shared, "aggregates",
                        json_pack("{s:I, s:i}", "count", count, "fallback_records", 0));
    return 0;
}

static int orders_report_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                              const char **action)
{
    if (json_integer_value(json_object_get(shared, "valid")) == 0) {
        json_object_set_new(shared, "error", json_string("no valid orders"));
        json_object_set_new(shared, "status", json_string("handled_error"));
    } else {
        report_done(shared, "orders");
    }
    *action = "done";
    return 0;
}

static const kg_node_ops intake_ops = {.type_name = "OrderIntakeNode", .prep = seed_prep,
                                       .exec = intake_exec, .post = intake_post};
static const kg_node_ops fetch_ops = {.type_name = "FetchNode", .prep = orders_prep,
                                      .exec = fetch_exec, .post = orders_post};
static const kg_node_ops order_validator_ops = {.type_name = "OrderValidationNode",
                                                .prep = orders_prep,
                                                .exec = order_validator_exec,
                                                .post = order_validator_post};
static const kg_node_ops lookup_ops = {.type_name = "CustomerLookupNode", .prep = orders_prep,
                                       .exec = lookup_exec, .post = orders_post};
static const kg_node_ops features_ops = {.type_name = "FeatureNode", .prep = orders_prep,
                                         .exec = features_exec, .post = orders_post};
static const kg_node_ops model_ops = {.type_name = "RiskModelNode", .prep = model_prep,
                                      .exec = model_exec, .post = orders_post};
static const kg_node_ops score_validator_ops = {.type_name = "ScoreValidationNode",
                                                .prep = orders_prep,
                                                .exec = score_validator_exec,
                                                .post = score_validator_post};
static const kg_node_ops aggregate_ops = {.type_name = "RegionAggregateNode",
                                          .prep = aggregate_prep, .exec = aggregate_exec,
                                          .post = aggregate_post};
static const kg_node_ops store_ops = {.type_name = "RegionStoreNode", .prep = store_prep,
                                      .exec = store_exec, .post = store_post};
static const kg_node_ops orders_report_ops = {.type_name = "ReportNode",
                                              .post = orders_report_post};
static const kg_node_ops orders_graph_ops = {.type_name = "OrderSystem", .destroy = free_opts};
static const kg_node_ops ingest_ops = {.type_name = "IngestStage"};
static const kg_node_ops enrich_ops = {.type_name = "EnrichStage"};
static const kg_node_ops scoring_ops = {.type_name = "ScoringStage"};
static const kg_node_ops per_region_ops = {.type_name = "RegionBatch", .prep = regions_prep};

/* `graph` with the chain `nodes` in it, each connected to the next by the
 * default action; graph and nodes are stolen, and all freed on failure
 * (NULL graph or node included). */
static kg_node_t *chain_graph(kg_node_t *graph, kg_node_t *const *nodes, size_t n)
{
    bool ok = graph != NULL;
    for (size_t i = 0; i < n; i++) {
        if (!ok) {
            kg_node_free(nodes[i]);
            continue;
        }
        /* kg_graph_add frees a node it refuses. */
        ok = kg_graph_add(graph, nodes[i]) != NULL &&
             (i == 0 || kg_node_connect(nodes[i - 1], NULL, nodes[i]) >= 0);
    }
    if (!ok) {
        kg_node_free(graph);
        return NULL;
    }
    return graph;
}

static kg_node_t *nested_new(demo_options *o)
{
    kg_node_t *g = kg_graph_new("orders", &orders_graph_ops, o);
    if (!g) {
        free(o);
        return NULL;
    }
    kg_node_t *model = kg_node_new("model", &model_ops, o);
    kg_node_set_retries(model, 3, 0.001);
    kg_node_t *scoring = chain_graph(
        kg_graph_new("scoring", &scoring_ops, o),
        (kg_node_t *[]){kg_node_new("features", &features_ops, o), model,
                        kg_node_new("validator", &score_validator_ops, o)}, 3);
    kg_node_t *enrich = chain_graph(kg_graph_new("enrich", &enrich_ops, o),
                                    (kg_node_t *[]){kg_node_new("lookup", &lookup_ops, o), scoring}, 2);
    kg_node_t *ingest = chain_graph(
        kg_graph_new("ingest", &ingest_ops, o),
        (kg_node_t *[]){kg_node_new("fetch", &fetch_ops, o),
                        kg_node_new("validator", &order_validator_ops, o)}, 2);
    kg_node_t *per_region = chain_graph(
        kg_batch_graph_new("per_region", &per_region_ops, o),
        (kg_node_t *[]){kg_node_new("aggregate", &aggregate_ops, o),
                        kg_node_new("store", &store_ops, o)}, 2);
    /* Each add steals its node, so every one is tried before checking. */
    kg_node_t *intake = kg_graph_add(g, kg_node_new("intake", &intake_ops, o));
    ingest = kg_graph_add(g, ingest);
    enrich = kg_graph_add(g, enrich);
    per_region = kg_graph_add(g, per_region);
    kg_node_t *report = kg_graph_add(g, kg_node_new("report", &orders_report_ops, o));
    if (!intake || !ingest || !enrich || !per_region || !report ||
        kg_node_connect(intake, NULL, ingest) < 0 || kg_node_connect(ingest, "ok", enrich) < 0 ||
        kg_node_connect(ingest, "empty", report) < 0 ||
        kg_node_connect(enrich, "scored", per_region) < 0 ||
        kg_node_connect(per_region, NULL, report) < 0) {
        kg_node_free(g);
        return NULL;
    }
    return g;
}

/* ==== wide =========================================================================
 *
 * fanout: dispatch -lane_NN-> laneNN_parse -> _check -> _transform -> _enrich -> _emit
 *           -> collect -> route -shard_NN-> shardNN_load -> _split -> _score -> _merge
 *           -> _write -> finalize
 * with 12 lanes and 12 shards: 124 nodes.  Each run takes one lane and one
 * shard, picked from the seed and the iteration. */

#define WIDE_LANES 12
#define WIDE_STEPS 5

static int pick_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("{s:O, s:O}", "seed", json_object_get(shared, "seed"), "iteration",
                     json_object_get(shared, "iteration"));
    return 0;
}

/* The lane (dispatch) or shard (route) this run takes.  The node's id
 * salts the pick so that lane and shard differ. */
static int pick_exec(kg_ctx_t *ctx, json_t *in, json_t **out)
{
    demo_simulate_work(demo_opts(ctx), 1.0);
    uint64_t salt = 0;
    for (const char *p = kg_node_id(kg_ctx_node(ctx)); *p; p++)
        salt = salt * 31 + (unsigned char)*p;
    double r = demo_chance(demo_u64(in, "seed"), demo_u64(in, "iteration"), salt);
    *out = json_integer((json_int_t)(r * WIDE_LANES));
    return 0;
}

#define WIDE_ACTIONS(p) \
    {p "_00", p "_01", p "_02", p "_03", p "_04", p "_05", p "_06", p "_07", p "_08", p "_09", p "_10", p "_11"}

static int dispatch_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                         const char **action)
{
    static const char *const lanes[WIDE_LANES] = WIDE_ACTIONS("lane");
    *action = lanes[json_integer_value(exec) % WIDE_LANES];
    json_object_set_new(shared, "generated", json_integer((json_int_t)demo_opts(ctx)->batch_size));
    json_object_set_new(shared, "valid", json_integer((json_int_t)demo_opts(ctx)->batch_size));
    json_object_set_new(shared, "invalid", json_integer(0));
    return 0;
}

static int route_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                      const char **action)
{
    static const char *const shards[WIDE_LANES] = WIDE_ACTIONS("shard");
    *action = shards[json_integer_value(exec) % WIDE_LANES];
    return 0;
}

static int finalize_post(kg_ctx_t *ctx, json_t *shared, json_t *prep, json_t *exec,
                         const char **action)
{
    json_object_set_new(shared, "aggregates",
                        json_pack("{s:I, s:i}", "count",
                                  (json_int_t)json_integer_value(json_object_get(shared, "generated")),
                                  "fallback_records", 0));
    report_done(shared, "fanout");
    return 0;
}

static const kg_node_ops dispatch_ops = {.type_name = "DispatchNode", .prep = pick_prep,
                                         .exec = pick_exec, .post = dispatch_post};
static const kg_node_ops route_ops = {.type_name = "ShardRouteNode", .prep = pick_prep,
                                      .exec = pick_exec, .post = route_post};
static const kg_node_ops step_ops = {.type_name = "LaneStepNode", .prep = pass_prep,
                                     .exec = pass_exec, .post = pass_post};
static const kg_node_ops shard_ops = {.type_name = "ShardStepNode", .prep = pass_prep,
                                      .exec = pass_exec, .post = pass_post};
static const kg_node_ops collect_ops = {.type_name = "CollectNode", .prep = pass_prep,
                                        .exec = pass_exec, .post = pass_post};
static const kg_node_ops finalize_ops = {.type_name = "FinalizeNode", .post = finalize_post};
static const kg_node_ops fanout_graph_ops = {.type_name = "FanOutFanIn", .destroy = free_opts};

/* WIDE_LANES chains of WIDE_STEPS nodes from `from` (which takes action
 * "<prefix>_NN" into chain NN) to `to`.  False on failure. */
static bool add_lanes(kg_node_t *g, kg_node_t *from, kg_node_t *to, const char *prefix,
                      const char *const *steps, const kg_node_ops *ops, demo_options *o)
{
    for (int k = 0; k < WIDE_LANES; k++) {
        kg_node_t *prev = NULL;
        for (int s = 0; s < WIDE_STEPS; s++) {
            char id[KG_ID_MAX], action[KG_ACTION_MAX];
            snprintf(id, sizeof id, "%s%02d_%s", prefix, k, steps[s]);
            kg_node_t *n = kg_graph_add(g, kg_node_new(id, ops, o));
            if (!n)
                return false;
            snprintf(action, sizeof action, "%s_%02d", prefix, k);
            if (kg_node_connect(prev ? prev : from, prev ? NULL : action, n) < 0)
                return false;
            prev = n;
        }
        if (kg_node_connect(prev, NULL, to) < 0)
            return false;
    }
    return true;
}

static kg_node_t *wide_new(demo_options *o)
{
    static const char *const lane_steps[WIDE_STEPS] = {"parse", "check", "transform", "enrich",
                                                       "emit"};
    static const char *const shard_steps[WIDE_STEPS] = {"load", "split", "score", "merge",
                                                        "write"};
    kg_node_t *g = kg_graph_new("fanout", &fanout_graph_ops, o);
    if (!g) {
        free(o);
        return NULL;
    }
    kg_node_t *dispatch = kg_graph_add(g, kg_node_new("dispatch", &dispatch_ops, o));
    kg_node_t *collect = kg_graph_add(g, kg_node_new("collect", &collect_ops, o));
    kg_node_t *route = kg_graph_add(g, kg_node_new("route", &route_ops, o));
    kg_node_t *finalize = kg_graph_add(g, kg_node_new("finalize", &finalize_ops, o));
    if (!dispatch || !collect || !route || !finalize || kg_node_connect(collect, NULL, route) < 0 ||
        !add_lanes(g, dispatch, collect, "lane", lane_steps, &step_ops, o) ||
        !add_lanes(g, route, finalize, "shard", shard_steps, &shard_ops, o)) {
        kg_node_free(g);
        return NULL;
    }
    return g;
}

kg_node_t *demo_graph_new(const demo_options *opts)
{
    if (opts->graph == DEMO_GRAPH_PIPELINE)
        return demo_workflow_new(opts);
    demo_options *o = malloc(sizeof *o);
    if (!o)
        return NULL;
    *o = *opts;
    /* The top graph owns the options (its destroy frees them, also when
     * building fails); every node borrows them as its data. */
    return opts->graph == DEMO_GRAPH_NESTED ? nested_new(o) : wide_new(o);
}

const char *demo_graph_name(demo_graph graph)
{
    return graph == DEMO_GRAPH_NESTED ? "nested" : graph == DEMO_GRAPH_WIDE ? "wide" : "pipeline";
}
