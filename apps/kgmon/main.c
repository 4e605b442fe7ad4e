/* main.c - kgmon: the demo, the dashboard, the benchmarks and a live tail of
 * KayGraph monitoring events.  One binary, one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kaygraph/version.h"

#ifndef KGMON_HAVE_BENCH
/* Built with KG_BUILD_BENCH=OFF: say so instead of "unknown command". */
int cmd_bench(int argc, char **argv)
{
    fputs("kgmon bench: this kgmon was built without the benchmarks "
          "(configure with -DKG_BUILD_BENCH=ON)\n", stderr);
    return KGMON_USAGE;
}
#endif

static void usage(FILE *out)
{
    fputs("usage: kgmon <command> [options]\n"
          "\n"
          "Real-time monitoring for KayGraph workflows.\n"
          "\n"
          "commands:\n"
          "  demo        run the example workflow with monitoring (optionally with the\n"
          "              live dashboard: kgmon demo --dashboard)\n"
          "  dashboard   serve the live dashboard (HTTP + WebSocket, web UI built in)\n"
          "  bench       run the overhead and throughput benchmarks, print JSON\n"
          "  tail        follow monitoring events live from Redis or a dashboard\n"
          "  runs        list the runs a dashboard stored (run history)\n"
          "  run ID      one stored run: summary, node executions, errors\n"
          "\n"
          "Run `kgmon <command> --help` for a command's options;\n"
          "`kgmon --version` prints the version.\n"
          "\n"
          "exit status: 0 success, 1 the work failed, 2 bad command line,\n"
          "             3 the workflow ran but monitoring events were not delivered\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return KGMON_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return KGMON_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        /* The library actually loaded, which is what a user reporting a bug
         * needs to know; it differs from the headers' only in a broken install. */
        printf("kgmon %s (libkaygraph %s)\n", KG_VERSION_STRING, kg_version());
        return KGMON_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {{"demo", cmd_demo}, {"dashboard", cmd_dashboard}, {"bench", cmd_bench},
                    {"tail", cmd_tail},
                    {"runs", cmd_runs},   /* history */
                    {"run", cmd_run}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "kgmon: unknown command '%s' (commands: demo, dashboard, bench, tail, runs, run)\n", cmd);
    return KGMON_USAGE;
}
