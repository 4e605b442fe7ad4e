/* history_cli.h - the run-history options shared by `kgmon dashboard` and
 * `kgmon demo --dashboard`: --db, --retain-days, --retain-mb. */
#ifndef KGMON_HISTORY_CLI_H
#define KGMON_HISTORY_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <kaygraph/dashboard.h>

/* getopt values, above every command's own. */
enum { CLI_OPT_DB = 900, CLI_OPT_RETAIN_DAYS, CLI_OPT_RETAIN_MB };

#define CLI_HISTORY_OPTIONS                                              \
    {"db", required_argument, NULL, CLI_OPT_DB},                         \
    {"retain-days", required_argument, NULL, CLI_OPT_RETAIN_DAYS},       \
    {"retain-mb", required_argument, NULL, CLI_OPT_RETAIN_MB}

#define CLI_HISTORY_USAGE                                                                    \
    "  --db PATH            run history database (SQLite file; default\n"                   \
    "                       $XDG_STATE_HOME/kaygraph/history.db or\n"                       \
    "                       ~/.local/state/kaygraph/history.db), postgres://... for\n"      \
    "                       PostgreSQL, or none (memory only)\n"                            \
    "  --retain-days N      delete runs with no event for N days (default 30; 0 = keep)\n"  \
    "  --retain-mb N        keep the database under N MiB, oldest runs first (default\n"   \
    "                       1024; 0 = no limit)\n"

typedef struct cli_history {
    const char *db;        /* as given, or NULL for the default */
    char *db_default;      /* the default path, malloc'd */
    double retain_days;
    unsigned long long retain_mb;
} cli_history;

void cli_history_init(cli_history *h);
/* One of the options above; 0 or KGMON_USAGE (message printed for `cmd`). */
int cli_history_option(cli_history *h, const char *cmd, int opt, const char *arg);
/* Settle the database: the default path (and its directory) when no --db
 * was given.  0, or KGMON_FAILED with a message on stderr. */
int cli_history_resolve(cli_history *h, const char *cmd);
/* Fill the dashboard options (after cli_history_resolve). */
void cli_history_fill(const cli_history *h, kg_dashboard_options *o);
/* "History: ..." line for the start-up banner (a password in a URL is hidden). */
void cli_history_describe(const kg_dashboard_options *o, char *out, size_t outlen);
void cli_history_free(cli_history *h);

#endif
