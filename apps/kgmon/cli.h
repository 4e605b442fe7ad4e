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

/* Every number on kgmon's command line goes through these two: the whole
 * string, in canonical decimal form, within [min, max].  Refused: leading or
 * trailing spaces, signs other than a leading '-' (where min < 0), leading
 * zeros ("007"), exponents, hex, ".5" / "5.", inf and nan. */
bool cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                    unsigned long long *out);
bool cli_parse_double(const char *s, double min, double max, double *out);

/* "host:port" or "port" or "host" (default_port then). host is malloc'd. */
bool cli_parse_hostport(const char *s, int default_port, char **host, int *port);

/* A comma-separated list: `each` is called per word (spaces around a word
 * are ignored).  False when a word is empty (",,,", "a,", " , b") or `each`
 * returned false. */
bool cli_list_each(const char *list, bool (*each)(const char *word, size_t len, void *ud),
                   void *ud);

/* scheme://[user@]host[:port][/path][?query][#fragment], for every URL option. */
typedef struct cli_url {
    char scheme[8];       /* lower case, one of the schemes asked for */
    char *host;           /* malloc'd; an IPv6 literal without its brackets */
    int port;             /* given, or the scheme's default */
    const char *rest;     /* from the first '/', '?' or '#' after the host ("" if none) */
} cli_url;
/* NULL and *out (free with cli_url_free) when `s` is such a URL with one of
 * `schemes` (NULL-terminated, lower case), a host, a valid port and no space
 * or control character; else what is wrong ("has no host").  user@ is
 * accepted only with `userinfo_ok`. */
const char *cli_parse_url(const char *s, const char *const *schemes, bool userinfo_ok,
                          cli_url *out);
void cli_url_free(cli_url *u);

/* Ctrl-C / SIGTERM: the handler sets this flag; commands poll it. */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_signals(void);
/* Sleep up to `seconds`, returning early (true) when interrupted. */
bool cli_sleep_interruptible(double seconds);

bool cli_is_tty(int fd);

/* The dashboard token from the environment ($KGMON_TOKEN), or NULL when it is
 * unset or empty.  Every command that takes --token falls back to it, so a
 * token need not appear on a command line (which any local user can read in
 * /proc/<pid>/cmdline); --token wins when both are given. */
const char *cli_env_token(void);

int cmd_demo(int argc, char **argv);
int cmd_dashboard(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tail(int argc, char **argv);
int cmd_runs(int argc, char **argv);   /* cmd_runs.c: run history */
int cmd_run(int argc, char **argv);

#endif
