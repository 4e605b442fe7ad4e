/* cmd_bench.c - `kgmon bench`: the benchmarks of BENCHMARKS.md as JSON, so
 * anyone can reproduce the figures with one command. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "benchmarks.h"
#include "cli.h"

static void bench_usage(FILE *out)
{
    fputs("usage: kgmon bench [options]\n"
          "\n"
          "Measure the engine's overhead per node execution, monitoring's cost per event\n"
          "and per workflow run, and end-to-end events/s into the mock backend.  Prints\n"
          "one JSON document on stdout.  Run it on an otherwise idle machine.\n"
          "\n"
          "monitor: per node-work size, what monitoring costs the workflow thread (CPU\n"
          "time: overhead_percent, overhead_ns_per_node, workflow_ns_per_event) and the\n"
          "whole process, every thread included (process_cpu_ns_per_event).\n"
          "\n"
          "reports: ns per call of a node's own log line / metric / progress with no\n"
          "monitor, filtered out by the monitor, and captured.\n"
          "\n"
          "  --only NAME   engine, monitor, throughput, memory or reports (default: all)\n"
          "  --seconds S   time budget per measurement (default 2)\n"
          "  --quick       a tiny run that checks the benchmarks work (figures meaningless)\n"
          "  -h, --help    this help\n",
          out);
}

int cmd_bench(int argc, char **argv)
{
    static const struct option table[] = {
        {"only", required_argument, NULL, 'o'}, {"seconds", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bench_options o = {.seconds = 2.0};
    const char *only = NULL;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        switch (opt) {
        case 'o':
            if (strcmp(optarg, "engine") && strcmp(optarg, "monitor") &&
                strcmp(optarg, "throughput") && strcmp(optarg, "memory") &&
                strcmp(optarg, "reports"))
                return cli_usage_error("bench", "--only must be engine, monitor, throughput, memory "
                                                "or reports (got '%s')", optarg);
            only = optarg;
            break;
        case 's':
            if (!cli_parse_double(optarg, 0.1, 600, &o.seconds))
                return cli_usage_error("bench", "--seconds must be 0.1..600 (got '%s')", optarg);
            break;
        case 'q':
            o.quick = true;
            break;
        case 'h':
            bench_usage(stdout);
            return KGMON_OK;
        default:
            return cli_usage_error("bench", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);
    json_t *all = json_object();
    if (!only || strcmp(only, "engine") == 0)
        json_object_set_new(all, "engine", bench_engine(&o));
    if (!only || strcmp(only, "monitor") == 0)
        json_object_set_new(all, "monitor", bench_monitor_overhead(&o));
    if (!only || strcmp(only, "throughput") == 0)
        json_object_set_new(all, "throughput", bench_throughput(&o));
    if (!only || strcmp(only, "memory") == 0)
        json_object_set_new(all, "memory", bench_memory(&o));
    if (!only || strcmp(only, "reports") == 0)
        json_object_set_new(all, "reports", bench_reports(&o));
    json_dumpf(all, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(all);
    return KGMON_OK;
}
