/* bench_main.c - kg_bench: the engine and monitoring benchmarks as one JSON
 * document on stdout (the same as `kgmon bench`, without the CLI). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks.h"

int main(int argc, char **argv)
{
    bench_options o = {.seconds = 2.0, .quick = argc > 1 && strcmp(argv[1], "--quick") == 0};
    json_t *all = json_pack("{s:o, s:o, s:o, s:o, s:o}", "engine", bench_engine(&o), "monitor",
                            bench_monitor_overhead(&o), "throughput", bench_throughput(&o),
                            "memory", bench_memory(&o), "reports", bench_reports(&o));
    json_dumpf(all, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(all);
    return 0;
}
