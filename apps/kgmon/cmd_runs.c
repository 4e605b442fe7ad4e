/* cmd_runs.c - `kgmon runs` and `kgmon run <id>`: run history from a terminal.
 *
 * Both read the dashboard's HTTP API (docs/history.md), the same one the web
 * UI uses, so a terminal sees exactly what the browser sees:
 *   kgmon runs            GET /api/runs (filters, a page; --json: JSON Lines)
 *   kgmon run ID          GET /api/runs/ID: summary, node executions, errors
 *   kgmon run ID --events GET /api/runs/ID/export: every event, JSON Lines
 * HTTP is libcurl's (plain HTTP or HTTPS to a dashboard behind a proxy). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"

#define RUNS_BODY_MAX (64u << 20)   /* largest JSON answer read (export streams) */

typedef struct runs_args {
    const char *cmd;              /* "runs" or "run" */
    char base[1024];              /* http://host:port[/prefix], no trailing slash */
    char token[512];
    const char *status, *graph, *since, *until, *search, *cursor, *id;
    unsigned long long limit;
    bool json, events, nested;
    double timeout;
} runs_args;

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct body {
    char *buf;
    size_t len;
    bool too_big;
    FILE *stream;                 /* a 200 answer goes there instead of being kept */
    CURL *curl;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t len = size * n;
    long status = 0;
    if (b->stream && curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200)
        return fwrite(p, 1, len, b->stream) == len ? len : 0;
    if (b->len + len > RUNS_BODY_MAX) {
        b->too_big = true;
        return 0;
    }
    char *nb = realloc(b->buf, b->len + len + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, len);
    b->buf = nb;
    b->len += len;
    b->buf[b->len] = '\0';
    return len;
}

/* GET base + path.  Returns the HTTP status, or -1 after printing why the
 * dashboard could not be reached. */
static long http_get(const runs_args *a, const char *path, body *b)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "kgmon %s: out of memory\n", a->cmd);
        return -1;
    }
    char url[4096], auth[600];
    snprintf(url, sizeof url, "%s%s", a->base, path);
    struct curl_slist *hdrs = NULL;
    if (a->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", a->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    b->curl = c;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(a->timeout * 1000));
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    CURLcode rc = curl_easy_perform(c);
    long status = -1;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else if (b->too_big) {
        fprintf(stderr, "kgmon %s: the answer from %s is over %u MiB\n", a->cmd, a->base,
                RUNS_BODY_MAX >> 20);
    } else {
        fprintf(stderr, "kgmon %s: cannot reach the dashboard at %s: %s\n", a->cmd, a->base,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

/* Report a non-2xx answer ({"error": ...} from the dashboard). */
static int http_failed(const runs_args *a, long status, const body *b, const char *what)
{
    json_t *j = b->buf ? json_loads(b->buf, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (status == 401)
        fprintf(stderr, "kgmon %s: the dashboard wants a token (--token T): %s\n", a->cmd,
                msg ? msg : "unauthorized");
    else
        fprintf(stderr, "kgmon %s: %s: HTTP %ld: %s\n", a->cmd, what, status,
                msg ? msg : "no message");
    json_decref(j);
    return KGMON_FAILED;
}

static void query_add(char *q, size_t qlen, CURL *c, const char *name, const char *value)
{
    if (!value)
        return;
    char *enc = curl_easy_escape(c, value, 0);
    size_t n = strlen(q);
    snprintf(q + n, qlen - n, "%s%s=%s", n ? "&" : "?", name, enc ? enc : "");
    curl_free(enc);
}

/* ---- formatting ---------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* "2026-11-27T17:36:13.123Z" -> "2026-11-27 17:36:13". */
static void short_time(const char *iso, char out[24])
{
    if (!iso || strlen(iso) < 19) {
        snprintf(out, 24, "-");
        return;
    }
    snprintf(out, 24, "%.10s %.8s", iso, iso + 11);
}

static void fmt_duration(const json_t *v, char *out, size_t outlen)
{
    if (!json_is_number(v)) {
        snprintf(out, outlen, "-");
        return;
    }
    double d = json_number_value(v);
    if (d < 1)
        snprintf(out, outlen, "%.1f ms", d * 1000);
    else if (d < 120)
        snprintf(out, outlen, "%.3f s", d);
    else
        snprintf(out, outlen, "%.0fm%02.0fs", floor(d / 60), fmod(d, 60));
}

static void print_run_line(const json_t *r)
{
    char started[24], dur[32];
    short_time(jstr(r, "started_at", NULL), started);
    fmt_duration(json_object_get(r, "duration"), dur, sizeof dur);
    printf("%-19s  %-36s  %-7s  %-16s %11s %7lld %6lld\n", started, jstr(r, "run_id", "?"),
           jstr(r, "status", "?"), jstr(r, "graph", "-"), dur,
           (long long)json_integer_value(json_object_get(r, "event_count")),
           (long long)json_integer_value(json_object_get(r, "error_count")));
}

/* ---- kgmon runs ------------------------------------------------------------------------------ */

static int runs_list(const runs_args *a)
{
    CURL *c = curl_easy_init();
    char q[2048] = "", limit[32];
    snprintf(limit, sizeof limit, "%llu", a->limit);
    query_add(q, sizeof q, c, "limit", limit);
    query_add(q, sizeof q, c, "status", a->status);
    query_add(q, sizeof q, c, "graph", a->graph);
    query_add(q, sizeof q, c, "since", a->since);
    query_add(q, sizeof q, c, "until", a->until);
    query_add(q, sizeof q, c, "q", a->search);
    query_add(q, sizeof q, c, "cursor", a->cursor);
    query_add(q, sizeof q, c, "nested", a->nested ? "1" : NULL);
    curl_easy_cleanup(c);
    char path[2200];
    snprintf(path, sizeof path, "/api/runs%s", q);
    body b = {0};
    long status = http_get(a, path, &b);
    int rc = KGMON_OK;
    json_t *j = NULL;
    if (status < 0)
        rc = KGMON_FAILED;
    else if (status != 200)
        rc = http_failed(a, status, &b, "listing runs");
    else if (!(j = json_loads(b.buf ? b.buf : "", 0, NULL)) ||
             !json_is_array(json_object_get(j, "runs"))) {
        fprintf(stderr, "kgmon runs: the dashboard sent something that is not a runs list\n");
        rc = KGMON_FAILED;
    }
    if (rc == KGMON_OK) {
        json_t *runs = json_object_get(j, "runs"), *r;
        size_t i;
        const char *next = jstr(j, "next_cursor", NULL);
        if (a->json) {
            json_array_foreach(runs, i, r)
            {
                char *line = json_dumps(r, JSON_COMPACT);
                if (line)
                    puts(line);
                free(line);
            }
        } else if (!json_array_size(runs)) {
            printf("No runs%s.\n", a->status || a->graph || a->since || a->until || a->search
                                       ? " match"
                                       : " stored yet");
        } else {
            printf("%-19s  %-36s  %-7s  %-16s %11s %7s %6s\n", "STARTED (UTC)", "RUN", "STATUS",
                   "GRAPH", "DURATION", "EVENTS", "ERRORS");
            json_array_foreach(runs, i, r) print_run_line(r);
            if (next)
                printf("(more: kgmon runs --cursor %s ...)\n", next);
        }
    }
    json_decref(j);
    free(b.buf);
    return rc;
}

/* ---- kgmon run ID ------------------------------------------------------------------------------ */

static void print_summary(const json_t *r)
{
    char dur[32];
    fmt_duration(json_object_get(r, "duration"), dur, sizeof dur);
    printf("Run       %s\n", jstr(r, "run_id", "?"));
    printf("Graph     %s%s%s%s\n", jstr(r, "graph", "-"), json_is_string(json_object_get(r, "graph_type")) ? " (" : "",
           jstr(r, "graph_type", ""), json_is_string(json_object_get(r, "graph_type")) ? ")" : "");
    if (json_is_string(json_object_get(r, "parent_workflow_id")))
        printf("Parent    %s\n", jstr(r, "parent_workflow_id", ""));
    printf("Status    %s\n", jstr(r, "status", "?"));
    printf("Started   %s\n", jstr(r, "started_at", "-"));
    printf("Ended     %s\n", jstr(r, "ended_at", "-"));
    printf("Duration  %s\n", dur);
    printf("Events    %lld (%lld errors)\n",
           (long long)json_integer_value(json_object_get(r, "event_count")),
           (long long)json_integer_value(json_object_get(r, "error_count")));
    const json_t *src = json_object_get(r, "source");
    if (json_is_string(json_object_get(src, "host")))
        printf("Source    %s, pid %lld\n", jstr(src, "host", "?"),
               (long long)json_integer_value(json_object_get(src, "pid")));
    if (json_is_string(json_object_get(r, "final_action")))
        printf("Action    %s\n", jstr(r, "final_action", ""));
    if (json_is_string(json_object_get(r, "error")))
        printf("Error     %s\n", jstr(r, "error", ""));
}

static void print_nodes(const json_t *doc, int64_t t0)
{
    const json_t *nodes = json_object_get(doc, "nodes"), *x;
    size_t i;
    printf("\nNode executions (%zu%s):\n", json_array_size(nodes),
           json_is_true(json_object_get(doc, "nodes_truncated")) ? ", truncated" : "");
    if (!json_array_size(nodes))
        return;
    printf("  %9s  %10s  %-9s %4s  %-28s %s\n", "START", "DURATION", "STATUS", "TRY", "NODE",
           "ACTION / ERROR");
    json_array_foreach(nodes, i, x)
    {
        char start[32] = "-", dur[32], name[300];
        const json_t *ms = json_object_get(x, "started_ms");
        if (json_is_integer(ms) && t0 >= 0)
            snprintf(start, sizeof start, "+%.3f s",
                     (double)(json_integer_value(ms) - t0) / 1000.0);
        fmt_duration(json_object_get(x, "duration"), dur, sizeof dur);
        const json_t *item = json_object_get(x, "item");
        if (json_is_integer(item))
            snprintf(name, sizeof name, "%s[%lld]", jstr(x, "node", "?"),
                     (long long)json_integer_value(item));
        else
            snprintf(name, sizeof name, "%s", jstr(x, "node", "?"));
        /* A failed execution shows its error; a completed one its action, and
         * the error it recovered from when it retried. */
        const char *err = jstr(x, "error", NULL), *status = jstr(x, "status", "?");
        bool failed = strcmp(status, "failed") == 0;
        char what[600];
        if (failed || (err && !json_is_string(json_object_get(x, "action"))))
            snprintf(what, sizeof what, "%s: %s", jstr(x, "error_type", "Error"),
                     err ? err : "(no message)");
        else if (err)
            snprintf(what, sizeof what, "%s (after %s: %s)", jstr(x, "action", ""),
                     jstr(x, "error_type", "Error"), err);
        else
            snprintf(what, sizeof what, "%s", jstr(x, "action", ""));
        printf("  %9s  %10s  %-9s %4lld  %-28s %s\n", start, dur, status,
               (long long)json_integer_value(json_object_get(x, "attempts")), name, what);
    }
}

static void print_errors(const json_t *doc)
{
    const json_t *errs = json_object_get(doc, "errors"), *e;
    size_t i;
    if (!json_array_size(errs))
        return;
    printf("\nErrors (%zu):\n", json_array_size(errs));
    json_array_foreach(errs, i, e)
    {
        const json_t *d = json_object_get(e, "data");
        const char *ts = jstr(e, "timestamp", "");
        printf("  %s  %-20s %-18s %s%s%s\n", strlen(ts) >= 23 ? ts + 11 : ts,
               jstr(e, "node_id", "-"), jstr(e, "event_name", "?"), jstr(d, "error_type", ""),
               json_is_string(json_object_get(d, "error_type")) ? ": " : "",
               jstr(d, "error", ""));
    }
}

static int run_show(const runs_args *a)
{
    CURL *c = curl_easy_init();
    char *enc = c ? curl_easy_escape(c, a->id, 0) : NULL;
    char path[1024];
    snprintf(path, sizeof path, "/api/runs/%s%s", enc ? enc : "", a->events ? "/export" : "");
    curl_free(enc);
    curl_easy_cleanup(c);
    body b = {0};
    if (a->events) {
        /* JSON Lines straight to stdout; an error answer is small and kept. */
        b.stream = stdout;
        long status = http_get(a, path, &b);
        int rc = status == 200 ? KGMON_OK
                 : status < 0  ? KGMON_FAILED
                               : http_failed(a, status, &b,
                                             status == 404 ? a->id : "exporting the run");
        free(b.buf);
        fflush(stdout);
        return rc;
    }
    long status = http_get(a, path, &b);
    int rc = KGMON_OK;
    json_t *j = NULL;
    if (status < 0)
        rc = KGMON_FAILED;
    else if (status == 404)
        rc = http_failed(a, status, &b, a->id);
    else if (status != 200)
        rc = http_failed(a, status, &b, "reading the run");
    else if (a->json)
        printf("%s\n", b.buf ? b.buf : "");
    else if (!(j = json_loads(b.buf ? b.buf : "", 0, NULL)) ||
             !json_is_object(json_object_get(j, "run"))) {
        fprintf(stderr, "kgmon run: the dashboard sent something that is not a run\n");
        rc = KGMON_FAILED;
    } else {
        const json_t *r = json_object_get(j, "run");
        print_summary(r);
        const json_t *t0 = json_object_get(r, "started_ms");
        print_nodes(j, json_is_integer(t0) ? json_integer_value(t0) : -1);
        const json_t *kids = json_object_get(j, "children");
        if (json_array_size(kids))
            printf("\nNested runs: %zu (kgmon runs --nested, or kgmon run <id>)\n",
                   json_array_size(kids));
        print_errors(j);
    }
    json_decref(j);
    free(b.buf);
    return rc;
}

/* ---- arguments ---------------------------------------------------------------------------------- */

static void runs_usage(FILE *out, bool one)
{
    if (one)
        fputs("usage: kgmon run <run-id> [options]\n"
              "\n"
              "Show one stored run: its summary, node executions (start offset, duration,\n"
              "status, attempts, action or error) and error events.\n"
              "\n"
              "  --url URL            dashboard (default http://127.0.0.1:8080; ?token=T in it is used)\n"
              "  --token T            the dashboard's token (default $KGMON_TOKEN)\n"
              "  --json               print the API answer (GET /api/runs/<id>) as JSON\n"
              "  --events             print every event of the run as JSON Lines (the export)\n"
              "  --timeout S          give up after S seconds (default 30)\n"
              "  -h, --help           this help\n",
              out);
    else
        fputs("usage: kgmon runs [options]\n"
              "\n"
              "List the runs the dashboard stored (run history), newest first.\n"
              "\n"
              "  --url URL            dashboard (default http://127.0.0.1:8080; ?token=T in it is used)\n"
              "  --token T            the dashboard's token (default $KGMON_TOKEN)\n"
              "  --status S           running, success, failed or stale (comma list)\n"
              "  --graph G            only runs of graph G\n"
              "  --since T            started at or after T: ISO 8601, Unix seconds, or an\n"
              "                       age such as 90m, 24h, 7d\n"
              "  --until T            started before T (same forms)\n"
              "  --search PREFIX      run ids starting with PREFIX\n"
              "  --nested             include runs nested in other runs (sub-graphs)\n"
              "  --limit N            at most N runs (default 20, at most 500)\n"
              "  --cursor C           the next page (printed after a full page)\n"
              "  --json               one JSON object per run (JSON Lines)\n"
              "  --timeout S          give up after S seconds (default 30)\n"
              "  -h, --help           this help\n",
              out);
}

enum {
    OPT_URL = 256, OPT_TOKEN, OPT_STATUS, OPT_GRAPH, OPT_SINCE, OPT_UNTIL, OPT_SEARCH,
    OPT_LIMIT, OPT_CURSOR, OPT_JSON, OPT_EVENTS, OPT_NESTED, OPT_TIMEOUT
};

/* http(s)://HOST[:PORT][/prefix][?token=T] -> base URL and token, checked
 * by the one URL parser every kgmon command uses (cli.h). */
static int parse_url(runs_args *a, const char *url)
{
    static const char *const schemes[] = {"http", "https", NULL};
    cli_url u;
    const char *why = cli_parse_url(url, schemes, false, &u);
    if (why)
        return cli_usage_error(a->cmd, "--url %s: must be http://HOST[:PORT] (got '%s')", why,
                               url);
    size_t path_len = strcspn(u.rest, "?#");
    while (path_len && u.rest[path_len - 1] == '/')
        path_len--;
    bool v6 = strchr(u.host, ':') != NULL;
    int n = snprintf(a->base, sizeof a->base, "%s://%s%s%s:%d%.*s", u.scheme, v6 ? "[" : "",
                     u.host, v6 ? "]" : "", u.port, (int)path_len, u.rest);
    const char *q = strchr(u.rest, '?');
    const char *t = q ? strstr(q, "token=") : NULL;
    bool bad_token = false;
    if (t && (t == q + 1 || t[-1] == '&')) {
        size_t tl = strcspn(t + 6, "&#");
        if (tl == 0 || tl >= sizeof a->token)
            bad_token = true;
        else
            snprintf(a->token, sizeof a->token, "%.*s", (int)tl, t + 6);
    }
    cli_url_free(&u);
    if (n < 0 || (size_t)n >= sizeof a->base)
        return cli_usage_error(a->cmd, "--url is too long");
    if (bad_token)
        return cli_usage_error(a->cmd, "--url has a bad token= parameter");
    return 0;
}

static int runs_option(runs_args *a, int opt, const char *arg)
{
    if (opt >= OPT_URL && arg && !*arg)
        return cli_usage_error(a->cmd, "an empty value is not allowed here");
    switch (opt) {
    case OPT_URL:
        return parse_url(a, arg);
    case OPT_TOKEN:
        if (strlen(arg) >= sizeof a->token)
            return cli_usage_error(a->cmd, "--token is too long");
        snprintf(a->token, sizeof a->token, "%s", arg);
        return 0;
    case OPT_STATUS:
        a->status = arg;
        return 0;
    case OPT_GRAPH:
        a->graph = arg;
        return 0;
    case OPT_SINCE:
        a->since = arg;
        return 0;
    case OPT_UNTIL:
        a->until = arg;
        return 0;
    case OPT_SEARCH:
        a->search = arg;
        return 0;
    case OPT_CURSOR:
        a->cursor = arg;
        return 0;
    case OPT_LIMIT:
        if (!cli_parse_uint(arg, 1, 500, &a->limit))
            return cli_usage_error(a->cmd, "--limit must be 1..500 (got '%s')", arg);
        return 0;
    case OPT_TIMEOUT:
        if (!cli_parse_double(arg, 0.1, 3600, &a->timeout))
            return cli_usage_error(a->cmd, "--timeout must be 0.1..3600 seconds (got '%s')", arg);
        return 0;
    case OPT_JSON:
        a->json = true;
        return 0;
    case OPT_EVENTS:
        a->events = true;
        return 0;
    case OPT_NESTED:
        a->nested = true;
        return 0;
    case 'h':
        return -1;
    default:
        return cli_usage_error(a->cmd, "unknown or incomplete option");
    }
}

static int runs_main(int argc, char **argv, bool one)
{
    static const struct option list_table[] = {
        {"url", required_argument, NULL, OPT_URL},       {"token", required_argument, NULL, OPT_TOKEN},
        {"status", required_argument, NULL, OPT_STATUS}, {"graph", required_argument, NULL, OPT_GRAPH},
        {"since", required_argument, NULL, OPT_SINCE},   {"until", required_argument, NULL, OPT_UNTIL},
        {"search", required_argument, NULL, OPT_SEARCH}, {"limit", required_argument, NULL, OPT_LIMIT},
        {"cursor", required_argument, NULL, OPT_CURSOR}, {"json", no_argument, NULL, OPT_JSON},
        {"nested", no_argument, NULL, OPT_NESTED},       {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0},
    };
    static const struct option run_table[] = {
        {"url", required_argument, NULL, OPT_URL},   {"token", required_argument, NULL, OPT_TOKEN},
        {"json", no_argument, NULL, OPT_JSON},       {"events", no_argument, NULL, OPT_EVENTS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    runs_args a = {.cmd = one ? "run" : "runs", .base = "http://127.0.0.1:8080", .limit = 20,
                   .timeout = 30};
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", one ? run_table : list_table, NULL)) != -1) {
        if (opt == '?')
            return cli_usage_error(a.cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        int rc = runs_option(&a, opt, optarg);
        if (rc == -1) {
            runs_usage(stdout, one);
            return KGMON_OK;
        }
        if (rc)
            return rc;
    }
    if (one) {
        if (optind >= argc)
            return cli_usage_error(a.cmd, "which run? (kgmon run <run-id>; kgmon runs lists them)");
        a.id = argv[optind++];
        if (!*a.id || strlen(a.id) > 256)
            return cli_usage_error(a.cmd, "a run id is 1-256 characters");
        if (a.json && a.events)
            return cli_usage_error(a.cmd, "--json and --events do not go together");
    }
    if (optind < argc)
        return cli_usage_error(a.cmd, "unexpected argument '%s'", argv[optind]);
    const char *env_token = cli_env_token();
    if (!a.token[0] && env_token) {
        if (strlen(env_token) >= sizeof a.token)
            return cli_usage_error(a.cmd, "$KGMON_TOKEN is too long");
        snprintf(a.token, sizeof a.token, "%s", env_token);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "kgmon %s: cannot initialise libcurl\n", a.cmd);
        return KGMON_FAILED;
    }
    int rc = one ? run_show(&a) : runs_list(&a);
    curl_global_cleanup();
    return rc;
}

int cmd_runs(int argc, char **argv)
{
    return runs_main(argc, argv, false);
}

int cmd_run(int argc, char **argv)
{
    return runs_main(argc, argv, true);
}
