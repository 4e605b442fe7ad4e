/* cli.h - what kgmon's commands share: argument parsing that says what was
 * wrong, exit codes, and the Ctrl-C flag. */
#ifndef KGMON_CLI_H
#define KGMON_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes, documented in `kgmon --help`. */
enum {
    KGMON_OK = 0,
    KGMON_FAILED = 1,        /* the work failed (workflow error, cannot listen, ...) */
    KGMON_USAGE = 2,         /* bad command line */
    KGMON_UNDELIVERED = 3,   /* the workflow ran, but monitoring events were lost */
};

/* Print "kgmon <cmd>: <message>" to stderr and return KGMON_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string, within [min, max]. */
bool cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                    unsigned long long *out);
bool cli_parse_double(const char *s, double min, double max, double *out);

/* "host:port" or "port" or "host" (default_port then). host is malloc'd. */
bool cli_parse_hostport(const char *s, int default_port, char **host, int *port);

/* Ctrl-C / SIGTERM: the handler sets this flag; commands poll it. */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_signals(void);
/* Sleep up to `seconds`, returning early (true) when interrupted. */
bool cli_sleep_interruptible(double seconds);

bool cli_is_tty(int fd);

int cmd_demo(int argc, char **argv);
int cmd_dashboard(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_runs(int argc, char **argv);   /* cmd_runs.c: run history */
int cmd_run(int argc, char **argv);

#endif
