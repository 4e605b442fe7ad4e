/* struct_sizes.c - prints the size of every public struct that a program
 * allocates and the library reads or fills.  Within a major version these
 * sizes must not change (docs/abi.md): a new member is carved out of the
 * struct's reserved space.  The ctest abi_struct_sizes compares the output
 * with struct_sizes.txt; a difference fails it.  Structs only the library
 * allocates (kg_obs_event, kg_stream_entry) may grow and are not listed.
 * The figures are those of x86-64 Linux (LP64), where CI runs. */
#include <stdio.h>

#include "kaygraph/dashboard.h"
#include "kaygraph/kaygraph.h"

#define SIZE(type) printf("%s %zu\n", #type, sizeof(type))

int main(void)
{
    SIZE(kg_error_t);
    SIZE(kg_node_ops);
    SIZE(kg_result_t);
    SIZE(kg_node_metrics);
    SIZE(kg_observer);
    SIZE(kg_event_view);
    SIZE(kg_batch);
    SIZE(kg_backend_ops);
    SIZE(kg_mock_options);
    SIZE(kg_mock_stats);
    SIZE(kg_redis_options);
    SIZE(kg_http_options);
    SIZE(kg_monitor_config);
    SIZE(kg_monitor_stats);
    SIZE(kg_dashboard_options);
    SIZE(kg_dashboard_stats);
    return 0;
}
