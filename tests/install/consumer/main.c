/* A program of someone who adopted kaygraph-c: built out of tree against an
 * installed copy (CMake package or pkg-config, tests/install/check_install.sh),
 * through the public headers only.  It runs a monitored two-node workflow
 * into the mock backend, feeds the events to a dashboard on an ephemeral
 * port and checks both saw all of them.  Exit 0 when everything held. */
#include <stdio.h>
#include <string.h>

#include <kaygraph/dashboard.h>
#include <kaygraph/kaygraph.h>

static int say_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    *exec_res = json_string(kg_node_id(kg_ctx_node(ctx)));
    return 0;
}

static const kg_node_ops say_ops = {.type_name = "SayNode", .exec = say_exec};

static int fail(const char *what, const kg_error_t *err)
{
    fprintf(stderr, "consumer: %s: %s\n", what, err ? err->message : "failed");
    return 1;
}

int main(void)
{
    if (strcmp(kg_version(), KG_VERSION_STRING) != 0)
        return fail("header and library versions differ", NULL);
    kg_error_t err;
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.port = 0;
    kg_dashboard_t *dash;
    if (kg_dashboard_new(&o, &dash, &err) < 0)
        return fail("kg_dashboard_new", &err);

    kg_node_t *graph = kg_graph_new("consumer_graph", NULL, NULL);
    kg_node_t *a = kg_graph_add(graph, kg_node_new("a", &say_ops, NULL));
    kg_node_t *b = kg_graph_add(graph, kg_node_new("b", &say_ops, NULL));
    kg_node_connect(a, NULL, b);

    kg_backend_t *sinks[2] = {kg_mock_backend_new(NULL, &err), kg_dashboard_backend_new(dash)};
    kg_backend_t *mock = sinks[0];
    kg_monitor_config cfg;
    kg_monitor_config_init(&cfg);
    cfg.backend = kg_tee_backend_new(sinks, 2, &err);
    kg_monitor_t *mon;
    if (kg_monitor_new(&cfg, &mon, &err) < 0)
        return fail("kg_monitor_new", &err);
    kg_monitor_attach(mon, graph);
    kg_result_t res;
    int rc = kg_run(graph, NULL, &res);
    kg_monitor_flush(mon, 5.0);

    kg_monitor_stats ms;
    kg_monitor_stats_get(mon, &ms);
    kg_mock_stats mk;
    kg_mock_backend_stats(mock, &mk);
    kg_dashboard_stats ds;
    kg_dashboard_stats_get(dash, &ds);
    printf("kaygraph %s: run rc=%d action=%s, %llu events emitted, %llu in the mock, "
           "%llu in the dashboard (port %d)\n",
           kg_version(), rc, res.action, (unsigned long long)ms.emitted,
           (unsigned long long)mk.events, (unsigned long long)ds.events,
           kg_dashboard_port(dash));
    int ok = rc == 0 && ms.emitted > 0 && mk.events == ms.sent && ms.sent == ms.emitted &&
             ds.events == ms.emitted;
    kg_monitor_detach(mon, graph);
    kg_monitor_free(mon);
    kg_dashboard_free(dash);
    kg_node_free(graph);
    return ok ? 0 : fail("event counts differ", NULL);
}
