/* hello_workflow.c - a first KayGraph workflow in C, monitored.
 *
 *   greet --shout--> shout
 *        \--default--> whisper
 *
 * Build: cmake --build build --target hello_workflow
 * Run:   build/examples/hello_workflow            (events as JSON Lines on stdout)
 *
 * Read it top to bottom: nodes are plain functions in a kg_node_ops table,
 * values are jansson JSON, a graph wires nodes by action names, and one call
 * attaches monitoring to every node of the graph without touching them. */
#include <stdio.h>
#include <string.h>

#include <kaygraph/kaygraph.h>

/* prep reads the shared store; its result goes to exec. */
static int greet_prep(kg_ctx_t *ctx, json_t *shared, json_t **prep_res)
{
    *prep_res = json_incref(json_object_get(shared, "name"));
    return 0;
}

/* exec does the work on prep's result only (it never sees the shared
 * store), so it can be retried safely.  Failing is returning an error. */
static int greet_exec(kg_ctx_t *ctx, json_t *name, json_t **exec_res)
{
    if (!json_is_string(name))
        return kg_ctx_fail(ctx, "ValueError", "shared[\"name\"] must be a string");
    char text[128];
    snprintf(text, sizeof text, "hello, %s", json_string_value(name));
    *exec_res = json_string(text);
    return 0;
}

/* post writes results back and picks the edge to follow. */
static int greet_post(kg_ctx_t *ctx, json_t *shared, json_t *prep_res, json_t *exec_res,
                      const char **action)
{
    json_object_set(shared, "greeting", exec_res);
    *action = json_is_true(json_object_get(shared, "loud")) ? "shout" : NULL;   /* NULL: "default" */
    return 0;
}

static int print_post(kg_ctx_t *ctx, json_t *shared, json_t *prep_res, json_t *exec_res,
                      const char **action)
{
    const char *how = kg_ctx_data(ctx);
    fprintf(stderr, "%s: %s\n", how, json_string_value(json_object_get(shared, "greeting")));
    return 0;
}

static const kg_node_ops greet_ops = {
    .type_name = "GreetNode", .prep = greet_prep, .exec = greet_exec, .post = greet_post};
static const kg_node_ops print_ops = {.type_name = "PrintNode", .post = print_post};

int main(void)
{
    /* 1. Build the graph.  The graph owns the nodes added to it. */
    kg_node_t *graph = kg_graph_new("hello", NULL, NULL);
    kg_node_t *greet = kg_graph_add(graph, kg_node_new("greet", &greet_ops, NULL));
    kg_node_t *shout = kg_graph_add(graph, kg_node_new("shout", &print_ops, "SHOUT"));
    kg_node_t *whisper = kg_graph_add(graph, kg_node_new("whisper", &print_ops, "whisper"));
    kg_node_connect(greet, "shout", shout);
    kg_node_connect(greet, NULL, whisper);
    kg_node_set_retries(greet, 3, 0.1);   /* 3 attempts, 100 ms apart */

    /* 2. Monitor it: events as JSON Lines on stdout.  Swap the backend for
     *    kg_redis_backend_new() or kg_http_backend_new() in production. */
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_file_backend_new("-", NULL);
    kg_monitor_t *mon;
    kg_error_t err;
    if (kg_monitor_new(&cfg, &mon, &err) != 0) {
        fprintf(stderr, "monitoring: %s\n", err.message);
        return 1;
    }
    kg_monitor_attach(mon, graph);

    /* 3. Run it.  Errors come back as values, never as a crash. */
    json_t *shared = json_pack("{s:s, s:b}", "name", "world", "loud", 1);
    kg_result_t res;
    int rc = kg_run(graph, shared, &res);
    if (rc != 0)
        fprintf(stderr, "workflow failed: %s: %s\n", res.error.type, res.error.message);

    /* 4. Shut down: every queued event is delivered first. */
    kg_monitor_free(mon);
    json_decref(shared);
    kg_node_free(graph);
    return rc == 0 ? 0 : 1;
}
