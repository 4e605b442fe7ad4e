/* history_cli.c - see history_cli.h.
 *
 * The default database lives where the XDG base directory spec puts state
 * that should survive restarts but is not worth backing up:
 * $XDG_STATE_HOME/kaygraph/history.db, else ~/.local/state/kaygraph/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "history_cli.h"

void cli_history_init(cli_history *h)
{
    memset(h, 0, sizeof *h);
    h->retain_days = 30;
    h->retain_mb = 1024;
}

int cli_history_option(cli_history *h, const char *cmd, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_DB:
        h->db = arg;
        return 0;
    case CLI_OPT_RETAIN_DAYS:
        if (!cli_parse_double(arg, 0, 36500, &h->retain_days))
            return cli_usage_error(cmd, "--retain-days must be 0..36500 days (got '%s')", arg);
        return 0;
    default:
        if (!cli_parse_uint(arg, 0, 1ull << 30, &h->retain_mb))
            return cli_usage_error(cmd, "--retain-mb must be 0..1073741824 MiB (got '%s')", arg);
        return 0;
    }
}

/* mkdir -p for the directories of `path` (mode 0700: history may hold data
 * snapshots). */
static int make_parents(char *path)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = mkdir(path, 0700);
        int e = errno;
        *p = '/';
        if (rc != 0 && e != EEXIST)
            return e;
    }
    return 0;
}

static char *default_path(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (state && *state == '/')
        snprintf(buf, sizeof buf, "%s/kaygraph/history.db", state);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.local/state/kaygraph/history.db", home);
    else
        return NULL;
    return strdup(buf);
}

int cli_history_resolve(cli_history *h, const char *cmd)
{
    if (h->db || h->db_default)
        return 0;
    h->db_default = default_path();
    if (!h->db_default) {
        fprintf(stderr, "kgmon %s: no HOME or XDG_STATE_HOME for the history database; "
                        "keeping history in memory only (give --db PATH to keep it)\n", cmd);
        h->db = "none";
        return 0;
    }
    int e = make_parents(h->db_default);
    if (e) {
        fprintf(stderr, "kgmon %s: cannot create the directory of %s: %s (give --db PATH or "
                        "--db none)\n", cmd, h->db_default, strerror(e));
        return KGMON_FAILED;
    }
    return 0;
}

void cli_history_fill(const cli_history *h, kg_dashboard_options *o)
{
    o->retain_days = h->retain_days;
    o->retain_mb = (size_t)h->retain_mb;
    o->db = h->db ? h->db : h->db_default ? h->db_default : "none";
}

void cli_history_describe(const kg_dashboard_options *o, char *out, size_t outlen)
{
    if (!o->db || strcmp(o->db, "none") == 0) {
        snprintf(out, outlen, "History: memory only (--db none)");
        return;
    }
    const char *scheme = strstr(o->db, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    char where[1024];
    if (colon)
        snprintf(where, sizeof where, "%.*s:***%s", (int)(colon - o->db), o->db, at);
    else
        snprintf(where, sizeof where, "%s", o->db);
    char days[32] = "no age limit", mb[32] = "no size limit";
    if (o->retain_days > 0)
        snprintf(days, sizeof days, "%g days", o->retain_days);
    if (o->retain_mb)
        snprintf(mb, sizeof mb, "%zu MiB", o->retain_mb);
    snprintf(out, outlen, "History: %s (keeps %s, %s)", where, days, mb);
}

void cli_history_free(cli_history *h)
{
    free(h->db_default);
    h->db_default = NULL;
}
