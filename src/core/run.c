/* run.c - executing nodes and graphs: the lifecycle, retries, fallback,
 * error hooks, action routing and the observer points.
 *
 * All per-run state is on the running thread's stack (kg_run_state,
 * kg_ctx_t), so one graph object can run on many threads at once.  Failures
 * travel as values: every function returns 0 or a negative code and the
 * failing step's description sits in ctx->error. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "util/clock.h"

static kg_observer global_observer;
static atomic_bool global_observer_set;

void kg_observer_set_global(const kg_observer *obs)
{
    /* Documented as a setup-time call; the flag's release/acquire pair makes
     * the copied struct visible to runs that start after it. */
    atomic_store_explicit(&global_observer_set, false, memory_order_release);
    if (obs && obs->on_event) {
        global_observer = *obs;
        atomic_store_explicit(&global_observer_set, true, memory_order_release);
    }
}

static const kg_observer *observer_for(const kg_node_t *node)
{
    if (node->observer.on_event)
        return &node->observer;
    return atomic_load_explicit(&global_observer_set, memory_order_acquire) ? &global_observer
                                                                          : NULL;
}

const char *kg_obs_point_name(kg_obs_point p)
{
    static const char *const names[] = {
#define KG__OBS_NAME(name, str) str,
        KG_OBS_POINT_MAP(KG__OBS_NAME)
#undef KG__OBS_NAME
    };
    return (unsigned)p < KG_OBS_POINT_COUNT ? names[p] : "unknown";
}

/* ---- the context API -------------------------------------------------------- */

void *kg_ctx_data(const kg_ctx_t *ctx)
{
    return ctx->node->data;
}

kg_node_t *kg_ctx_node(const kg_ctx_t *ctx)
{
    return ctx->node;
}

json_t *kg_ctx_params(const kg_ctx_t *ctx)
{
    return ctx->run->params;
}

unsigned kg_ctx_attempt(const kg_ctx_t *ctx)
{
    return ctx->attempt;
}

long kg_ctx_item(const kg_ctx_t *ctx)
{
    return ctx->item;
}

uint64_t kg_ctx_run_id(const kg_ctx_t *ctx)
{
    return ctx->run->run_id;
}

uint64_t kg_ctx_exec_id(const kg_ctx_t *ctx)
{
    return ctx->exec_id;
}

int kg_ctx_fail(kg_ctx_t *ctx, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kg_error_setv(&ctx->error, KG_ENODE, type ? type : "Error", fmt, ap);
    va_end(ap);
    return KG_ENODE;
}

/* A step returned `rc` < 0; make sure ctx->error describes it even when the
 * step did not call kg_ctx_fail(). */
static int step_failed(kg_ctx_t *ctx, int rc)
{
    if (rc >= 0)
        rc = KG_ENODE;
    if (ctx->error.code == 0)
        kg_error_set(&ctx->error, rc, NULL, "%s", kg_strerror(rc));
    return ctx->error.code;
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- exec with retries and fallback ----------------------------------------- */

static int exec_once(kg_ctx_t *ctx, json_t *input, json_t **out)
{
    kg_node_t *node = ctx->node;
    if (!node->ops->exec)
        return 0;
    kg__error_reset(&ctx->error);
    int rc = node->ops->exec(ctx, input, out);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
        return step_failed(ctx, rc);
    }
    return 0;
}

static int exec_fallback(kg_ctx_t *ctx, json_t *input, json_t **out)
{
    KG_OBSERVE(ctx, KG_OBS_FALLBACK, .phase = "exec", .error = &ctx->error,
               .time_ns = (uint64_t)kg_clock_mono_ns());
    kg_error_t cause = ctx->error;
    kg__error_reset(&ctx->error);
    int rc = ctx->node->ops->exec_fallback(ctx, input, &cause, out);
    if (rc >= 0)
        return 0;
    json_decref(*out);
    *out = NULL;
    /* A fallback that fails without saying why re-raises the original. */
    if (ctx->error.code == 0)
        ctx->error = cause;
    return ctx->error.code;
}

/* Run exec on one input with the node's retry policy: the unit a batch node
 * applies per item.  On failure ctx->error holds the last error. */
int kg__exec_item(kg_ctx_t *ctx, json_t *input, json_t **out)
{
    kg_node_t *node = ctx->node;
    *out = NULL;
    for (unsigned attempt = 0;; attempt++) {
        ctx->attempt = attempt;
        if (exec_once(ctx, input, out) == 0)
            return 0;
        if (attempt + 1 >= node->max_retries)
            break;
        atomic_fetch_add_explicit(&node->retries, 1, memory_order_relaxed);
        KG_OBSERVE(ctx, KG_OBS_RETRY, .attempt = attempt, .phase = "exec", .error = &ctx->error,
                   .time_ns = (uint64_t)kg_clock_mono_ns());
        if (node->wait > 0)
            sleep_seconds(node->wait);
    }
    if (node->ops->exec_fallback)
        return exec_fallback(ctx, input, out);
    return ctx->error.code;
}

/* ---- graphs ---------------------------------------------------------------- */

static int node_execute(kg_node_t *node, const kg_run_state *run, json_t *shared, bool quiet,
                        char *action, kg_error_t *err);

/* Copy an action, cut to KG_ACTION_MAX - 1 bytes (was an snprintf: half of
 * the engine's instructions per node execution). */
static void copy_action(char *dst, const char *src)
{
    size_t n = src ? strnlen(src, KG_ACTION_MAX - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static void warn_unknown_action(const kg_node_t *node, const char *action)
{
    char avail[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < node->n_edges && len < sizeof avail; i++)
        len += (size_t)snprintf(avail + len, sizeof avail - len, "%s'%s'", i ? ", " : "",
                                node->edges[i].action);
    kg__log(KG_LOG_WARN, "graph ends: action '%s' of node '%s' has no successor (available: %s)",
            *action ? action : KG_DEFAULT_ACTION, node->id, avail);
}

/* Follow the graph from its start node.  One call is one workflow run with
 * its own run id; `ctx` is the graph's own execution (its run is the
 * enclosing run, or a pseudo-run for a top-level graph).  `item` is the
 * batch graph's item this run is for (-1: not a batch graph). */
static int graph_orchestrate(kg_ctx_t *ctx, json_t *shared, json_t *params, bool nested,
                             long item, char *last_action)
{
    kg_node_t *graph = ctx->node;
    uint64_t run_id = kg__next_id();
    kg_run_state run = {
        .run_id = run_id,
        .parent_run_id = nested ? ctx->run->run_id : 0,
        .root_run_id = nested ? ctx->run->root_run_id : run_id,
        .obs = ctx->run->obs,
        .params = params,
        .path_skip = ctx->run->path_skip,
    };
    kg_ctx_t run_ctx = {.node = graph, .run = &run, .item = item};
    uint64_t t0 = (uint64_t)kg_clock_mono_ns();
    KG_OBSERVE(&run_ctx, KG_OBS_RUN_START, .time_ns = t0);

    int rc = 0;
    last_action[0] = '\0';
    for (kg_node_t *cur = graph->start; cur;) {
        rc = node_execute(cur, &run, shared, false, last_action, &ctx->error);
        if (rc < 0)
            break;
        kg_node_t *next = kg_node_successor(cur, last_action);
        if (!next && cur->n_edges > 0)
            warn_unknown_action(cur, last_action);
        cur = next;
    }
    if (run.obs) {
        uint64_t t1 = (uint64_t)kg_clock_mono_ns();
        KG_OBSERVE(&run_ctx, KG_OBS_RUN_END, .action = last_action[0] ? last_action : NULL,
                   .error = rc < 0 ? &ctx->error : NULL, .elapsed = (double)(t1 - t0) / 1e9,
                   .time_ns = t1);
    }
    return rc;
}

/* Params for one batch-graph iteration: the run's params with the item's
 * keys over them.  New reference. */
static json_t *merge_params(json_t *base, json_t *item)
{
    json_t *merged = json_copy(base);
    if (merged && json_is_object(item))
        json_object_update(merged, item);
    return merged;
}

static int graph_exec(kg_ctx_t *ctx, json_t *shared, json_t *prep_res, bool nested,
                      json_t **exec_res)
{
    char last[KG_ACTION_MAX];
    if (ctx->node->kind == KG_KIND_GRAPH) {
        int rc = graph_orchestrate(ctx, shared, ctx->run->params, nested, -1, last);
        if (rc == 0)
            *exec_res = last[0] ? json_string(last) : json_null();
        return rc;
    }
    /* Batch graph: one run of the sub-graph per params object. */
    size_t n = json_is_array(prep_res) ? json_array_size(prep_res) : 0;
    for (size_t i = 0; i < n; i++) {
        json_t *params = merge_params(ctx->run->params, json_array_get(prep_res, i));
        if (!params)
            return kg_error_set(&ctx->error, KG_ENOMEM, NULL, "batch graph params");
        int rc = graph_orchestrate(ctx, shared, params, nested, (long)i, last);
        json_decref(params);
        if (rc < 0)
            return rc;
    }
    *exec_res = json_null();
    return 0;
}

/* ---- one node execution ------------------------------------------------------ */

static int exec_step(kg_ctx_t *ctx, json_t *shared, json_t *prep_res, bool nested,
                     json_t **exec_res)
{
    switch (ctx->node->kind) {
    case KG_KIND_GRAPH:
    case KG_KIND_BATCH_GRAPH:
        return graph_exec(ctx, shared, prep_res, nested, exec_res);
    case KG_KIND_BATCH:
    case KG_KIND_PARALLEL_BATCH:
        return kg__batch_exec(ctx, prep_res, exec_res);
    default:
        return kg__exec_item(ctx, prep_res, exec_res);
    }
}

/* The node failed in `phase`: ask on_error whether to suppress, report it,
 * and return 0 (suppressed, no action) or the error code. */
static int node_failed(kg_ctx_t *ctx, json_t *shared, const char *phase, bool quiet,
                       uint64_t t0, char *action, kg_error_t *err)
{
    kg_node_t *node = ctx->node;
    uint64_t t1 = (uint64_t)kg_clock_mono_ns();
    double elapsed = (double)(t1 - t0) / 1e9;
    if (node->ops->on_error && node->ops->on_error(ctx, shared, &ctx->error)) {
        if (!quiet)
            KG_OBSERVE(ctx, KG_OBS_SUPPRESSED, .phase = phase, .error = &ctx->error,
                       .elapsed = elapsed, .time_ns = t1);
        kg__metrics_record(node, (uint64_t)kg_clock_mono_ns() - t0, true);
        action[0] = '\0';
        return 0;
    }
    if (!quiet)
        KG_OBSERVE(ctx, KG_OBS_NODE_FAILED, .phase = phase, .error = &ctx->error,
                   .elapsed = elapsed, .time_ns = t1);
    kg__metrics_record(node, (uint64_t)kg_clock_mono_ns() - t0, false);
    if (err)
        *err = ctx->error;
    return ctx->error.code;
}

/* ev->point, then `then` at the same moment: one call when the observer
 * takes pairs.  The second point carries no data. */
static void obs_pair(const kg_observer *obs, kg_obs_event *ev, kg_obs_point then)
{
    if (obs->on_pair) {
        obs->on_pair(obs->ud, ev, then);
    } else {
        obs->on_event(obs->ud, ev);
        ev->point = then;
        ev->data = NULL;
        obs->on_event(obs->ud, ev);
    }
    ev->point = then;
    ev->data = NULL;
}

/* prep -> exec -> post for one node, with hooks, metrics and observer points.
 * `quiet` skips the node-level points (a top-level graph is the run itself,
 * not a node inside one).  Writes the action to `action` (KG_ACTION_MAX). */
static int node_execute(kg_node_t *node, const kg_run_state *run, json_t *shared, bool quiet,
                        char *action, kg_error_t *err)
{
    kg_ctx_t ctx = {.node = node, .run = run, .exec_id = kg__next_id(), .item = -1,
                 .unobserved = quiet};
    const kg_node_ops *ops = node->ops;
    json_t *prep_res = NULL, *exec_res = NULL;
    const char *post_action = NULL;
    const char *phase = "prep";
    uint64_t t0 = (uint64_t)kg_clock_mono_ns();
    int rc;

    atomic_fetch_add_explicit(&node->executions, 1, memory_order_relaxed);
    /* The clock is read where the engine needs it (t0, the end) and, when
     * someone is watching, around exec; observer points share the nearest
     * reading, and a reading is not taken again where no user code ran since
     * the last one (no before_prep/prep: exec starts at t0; no
     * after_exec/post: the node ends when exec did).  So execution_time
     * includes the observer calls between prep and exec (tens of ns), an
     * unobserved node reads the clock twice and a watched one 2 to 4 times
     * (each read costs 25-30 ns on the machine of BENCHMARKS.md).
     * A watched execution builds its observer event once and changes only
     * what differs from point to point. */
    const kg_observer *obs = quiet ? NULL : run->obs;
    kg_obs_event ev;
    if (obs) {
        ev = (kg_obs_event){.point = KG_OBS_NODE_START, .item = -1, .time_ns = t0};
        kg__obs_fill(&ev, &ctx);
        obs_pair(obs, &ev, KG_OBS_BEFORE_PREP);
    }
    if (ops->before_prep)
        ops->before_prep(&ctx, shared);
    if (ops->prep && (rc = ops->prep(&ctx, shared, &prep_res)) < 0) {
        step_failed(&ctx, rc);
        goto fail;
    }
    phase = "exec";
    bool user_before_exec = ops->before_prep || ops->prep;
    uint64_t t_exec = !obs ? 0 : user_before_exec ? (uint64_t)kg_clock_mono_ns() : t0;
    if (obs) {
        ev.point = KG_OBS_AFTER_PREP;
        ev.data = prep_res;
        ev.time_ns = t_exec;
        obs_pair(obs, &ev, KG_OBS_BEFORE_EXEC);
    }
    if (exec_step(&ctx, shared, prep_res, !quiet, &exec_res) < 0)
        goto fail;
    uint64_t t_after_exec = 0;
    if (obs) {
        ev.point = KG_OBS_AFTER_EXEC;
        ev.data = exec_res;
        ev.time_ns = t_after_exec = (uint64_t)kg_clock_mono_ns();
        ev.elapsed = (double)(ev.time_ns - t_exec) / 1e9;
        ev.attempt = ctx.attempt;
        obs->on_event(obs->ud, &ev);
    }
    if (ops->after_exec)
        ops->after_exec(&ctx, shared, prep_res, exec_res);

    phase = "post";
    kg__error_reset(&ctx.error);
    if (ops->post) {
        if ((rc = ops->post(&ctx, shared, prep_res, exec_res, &post_action)) < 0) {
            step_failed(&ctx, rc);
            goto fail;
        }
    } else if (kg_node_is_graph(node) && json_is_string(exec_res)) {
        post_action = json_string_value(exec_res);   /* a graph returns its last action */
    }
    copy_action(action, post_action);
    bool user_after_exec = ops->after_exec || ops->post;
    uint64_t t_end = obs && !user_after_exec ? t_after_exec : (uint64_t)kg_clock_mono_ns();
    kg__metrics_record(node, t_end - t0, true);
    if (obs) {
        ev.point = KG_OBS_AFTER_POST;
        ev.data = NULL;
        ev.action = action[0] ? action : NULL;
        ev.elapsed = (double)(t_end - t0) / 1e9;
        ev.time_ns = t_end;
        obs->on_event(obs->ud, &ev);
    }
    json_decref(prep_res);
    json_decref(exec_res);
    return 0;

fail:
    rc = node_failed(&ctx, shared, phase, quiet, t0, action, err);
    json_decref(prep_res);
    json_decref(exec_res);
    return rc;
}

int kg_run(kg_node_t *node, json_t *shared, kg_result_t *result)
{
    kg_result_t scratch;
    if (!result)
        result = &scratch;
    memset(result, 0, sizeof *result);
    if (!node)
        return kg_error_set(&result->error, KG_EINVAL, NULL, "kg_run: node is NULL");
    json_t *own_shared = NULL;
    if (!shared && !(shared = own_shared = json_object()))
        return kg_error_set(&result->error, KG_ENOMEM, NULL, "kg_run: shared store");

    /* A graph run opens its own workflow run inside (graph_orchestrate); a
     * lone node gets a pseudo-run so its events still carry a run id. */
    uint64_t id = kg__next_id();
    kg_run_state top = {.run_id = id, .root_run_id = id, .obs = observer_for(node),
                        .params = node->params};
    /* Paths start at the node being run (docs/events.md), whatever graph it
     * sits in; only observed runs need to know where. */
    top.path_skip = top.obs ? kg__path_skip(node) : SIZE_MAX;
    int rc = node_execute(node, &top, shared, kg_node_is_graph(node), result->action,
                          &result->error);
    json_decref(own_shared);
    return rc;
}
