/* test_nested.c - nested graphs as the engine shows them: node paths (with
 * escaping), the recursive topology and its cache, the observer's node_path
 * and batch-graph item, and graphs that would contain themselves. */
#include <string.h>

#include "kaygraph/kaygraph.h"
#include "testutil.h"

static int items_prep(kg_ctx_t *ctx, json_t *shared, json_t **out)
{
    *out = json_pack("[{s:i},{s:i}]", "k", 1, "k", 2);
    return 0;
}

static const kg_node_ops leaf_ops = {.type_name = "Leaf"};
static const kg_node_ops batch_graph_ops = {.type_name = "PerItem", .prep = items_prep};

/* outer: a -> inner(x -> y) -> inner2(x) -> per_item[batch](z) */
static kg_node_t *outer_new(void)
{
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    kg_node_t *a = kg_graph_add(outer, kg_node_new("a", &leaf_ops, NULL));
    kg_node_t *inner = kg_graph_add(outer, kg_graph_new("inner", NULL, NULL));
    kg_node_t *x = kg_graph_add(inner, kg_node_new("x", &leaf_ops, NULL));
    kg_node_connect(x, NULL, kg_graph_add(inner, kg_node_new("y", &leaf_ops, NULL)));
    kg_node_t *inner2 = kg_graph_add(outer, kg_graph_new("inner2", NULL, NULL));
    kg_graph_add(inner2, kg_node_new("x", &leaf_ops, NULL));
    kg_node_t *per = kg_graph_add(outer, kg_batch_graph_new("per_item", &batch_graph_ops, NULL));
    kg_graph_add(per, kg_node_new("z", &leaf_ops, NULL));
    kg_node_connect(a, NULL, inner);
    kg_node_connect(inner, NULL, inner2);
    kg_node_connect(inner2, NULL, per);
    return outer;
}

static void test_paths_follow_the_owner_chain(void **state)
{
    kg_node_t *outer = outer_new();
    kg_node_t *inner = kg_graph_find(outer, "inner"), *inner2 = kg_graph_find(outer, "inner2");
    assert_string_equal(kg_node_path(outer), "outer");
    assert_string_equal(kg_node_path(inner), "outer/inner");
    assert_string_equal(kg_node_path(kg_graph_find(inner, "x")), "outer/inner/x");
    assert_string_equal(kg_node_path(kg_graph_find(inner2, "x")), "outer/inner2/x");
    assert_string_equal(kg_node_path(kg_graph_find(kg_graph_find(outer, "per_item"), "z")),
                        "outer/per_item/z");
    kg_node_free(outer);
}

static void test_path_components_are_escaped(void **state)
{
    kg_node_t *g = kg_graph_new("a/b", NULL, NULL);
    kg_node_t *n = kg_graph_add(g, kg_node_new("50%/x", NULL, NULL));
    assert_string_equal(kg_node_path(n), "a%2Fb/50%25%2Fx");
    kg_node_free(g);
}

/* A path cached before the graph joined another graph must not survive. */
static void test_path_follows_later_nesting(void **state)
{
    kg_node_t *inner = kg_graph_new("inner", NULL, NULL);
    kg_node_t *x = kg_graph_add(inner, kg_node_new("x", NULL, NULL));
    assert_string_equal(kg_node_path(x), "inner/x");
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    assert_non_null(kg_graph_add(outer, inner));
    assert_string_equal(kg_node_path(x), "outer/inner/x");
    assert_string_equal(kg_node_path(inner), "outer/inner");
    kg_node_free(outer);
}

static void test_graph_cannot_contain_itself(void **state)
{
    kg_node_t *outer = kg_graph_new("outer", NULL, NULL);
    kg_node_t *inner = kg_graph_add(outer, kg_graph_new("inner", NULL, NULL));
    kg_node_t *deep = kg_graph_add(inner, kg_graph_new("deep", NULL, NULL));
    /* Refused, and nothing freed: both graphs stay usable. */
    assert_null(kg_graph_add(deep, outer));
    assert_null(kg_graph_add(inner, inner));
    assert_null(kg_graph_add(outer, outer));
    assert_string_equal(kg_node_path(deep), "outer/inner/deep");
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    kg_node_free(outer);
}

static void test_topology_is_recursive(void **state)
{
    kg_node_t *outer = outer_new();
    char *s = json_dumps(kg_graph_topology(outer), JSON_COMPACT);
    assert_string_equal(
        s, "{\"id\":\"outer\",\"type\":\"Graph\",\"nodes\":["
           "{\"id\":\"a\",\"type\":\"Leaf\"},"
           "{\"id\":\"inner\",\"type\":\"Graph\",\"nodes\":[{\"id\":\"x\",\"type\":\"Leaf\"},"
           "{\"id\":\"y\",\"type\":\"Leaf\"}],"
           "\"edges\":[{\"from\":\"x\",\"to\":\"y\",\"action\":\"default\"}],\"start\":\"x\"},"
           "{\"id\":\"inner2\",\"type\":\"Graph\",\"nodes\":[{\"id\":\"x\",\"type\":\"Leaf\"}],"
           "\"edges\":[],\"start\":\"x\"},"
           "{\"id\":\"per_item\",\"type\":\"PerItem\",\"nodes\":[{\"id\":\"z\",\"type\":\"Leaf\"}],"
           "\"edges\":[],\"start\":\"z\",\"batch\":true}],"
           "\"edges\":[{\"from\":\"a\",\"to\":\"inner\",\"action\":\"default\"},"
           "{\"from\":\"inner\",\"to\":\"inner2\",\"action\":\"default\"},"
           "{\"from\":\"inner2\",\"to\":\"per_item\",\"action\":\"default\"}],"
           "\"start\":\"a\"}");
    free(s);
    kg_node_free(outer);
}

/* The outer graph's cached topology includes the inner graph's: a change
 * deep inside must reach every graph above it. */
static void test_topology_cache_drops_up_the_chain(void **state)
{
    kg_node_t *outer = outer_new();
    kg_node_t *inner = kg_graph_find(outer, "inner");
    kg_node_t *y = kg_graph_find(inner, "y");
    kg_node_t *deep = kg_graph_add(inner, kg_graph_new("deep", NULL, NULL));
    assert_non_null(kg_graph_topology(outer));
    /* Two levels below `outer`, after its topology was cached. */
    kg_graph_add(deep, kg_node_new("w", &leaf_ops, NULL));
    assert_non_null(kg_graph_topology(outer));
    kg_node_connect(y, "more", deep);
    json_t *topo = kg_graph_topology(outer);
    json_t *inner_topo = json_array_get(json_object_get(topo, "nodes"), 1);
    assert_string_equal(json_string_value(json_object_get(inner_topo, "id")), "inner");
    assert_int_equal(json_array_size(json_object_get(inner_topo, "nodes")), 3);
    assert_int_equal(json_array_size(json_object_get(inner_topo, "edges")), 2);
    json_t *deep_topo = json_array_get(json_object_get(inner_topo, "nodes"), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(deep_topo, "nodes"), 0), "id")),
                        "w");
    kg_node_free(outer);
}

/* ---- what the observer sees ---------------------------------------------------- */

static char seen[8192];

static void record_path(void *ud, const kg_obs_event *ev)
{
    (void)ud;
    if (ev->point != KG_OBS_RUN_START && ev->point != KG_OBS_NODE_START)
        return;
    char line[160];
    snprintf(line, sizeof line, "%s%s:%s", seen[0] ? " " : "",
             ev->point == KG_OBS_RUN_START ? "run" : "node",
             ev->node_path ? ev->node_path : "(null)");
    if (ev->item >= 0)
        snprintf(line + strlen(line), sizeof line - strlen(line), "#%ld", ev->item);
    strncat(seen, line, sizeof seen - strlen(seen) - 1);
}

static void test_observer_gets_paths_and_batch_items(void **state)
{
    kg_node_t *outer = outer_new();
    kg_observer obs = {.on_event = record_path};
    kg_node_set_observer(outer, &obs);
    seen[0] = '\0';
    assert_int_equal(kg_run(outer, NULL, NULL), 0);
    assert_string_equal(seen, "run:outer node:outer/a node:outer/inner run:outer/inner "
                              "node:outer/inner/x node:outer/inner/y node:outer/inner2 "
                              "run:outer/inner2 node:outer/inner2/x node:outer/per_item "
                              "run:outer/per_item#0 node:outer/per_item/z "
                              "run:outer/per_item#1 node:outer/per_item/z");
    kg_node_free(outer);
}

/* A run started at an inner graph names nodes from that graph down. */
static void test_run_of_inner_graph_starts_paths_there(void **state)
{
    kg_node_t *outer = outer_new();
    kg_node_t *inner = kg_graph_find(outer, "inner");
    kg_observer obs = {.on_event = record_path};
    kg_node_set_observer(inner, &obs);
    seen[0] = '\0';
    assert_int_equal(kg_run(inner, NULL, NULL), 0);
    assert_string_equal(seen, "run:inner node:inner/x node:inner/y");
    seen[0] = '\0';
    kg_node_set_observer(kg_graph_find(inner, "x"), &obs);
    assert_int_equal(kg_run(kg_graph_find(inner, "x"), NULL, NULL), 0);
    assert_string_equal(seen, "node:x");
    kg_node_free(outer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_follow_the_owner_chain),
        cmocka_unit_test(test_path_components_are_escaped),
        cmocka_unit_test(test_path_follows_later_nesting),
        cmocka_unit_test(test_graph_cannot_contain_itself),
        cmocka_unit_test(test_topology_is_recursive),
        cmocka_unit_test(test_topology_cache_drops_up_the_chain),
        cmocka_unit_test(test_observer_gets_paths_and_batch_items),
        cmocka_unit_test(test_run_of_inner_graph_starts_paths_there),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
