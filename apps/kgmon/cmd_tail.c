/* cmd_tail.c - `kgmon tail`: follow monitoring events live in the terminal.
 *
 * Two sources, one output path:
 *  - Redis: subscribe to <prefix>all with the Redis read side
 *    (kaygraph/redis_reader.h); each message is one event's JSON text.
 *  - A dashboard: its WebSocket /ws (libwebsockets client).  The "initial"
 *    message carries the last events, then "event" (one) and "events" (a
 *    list) messages follow.  After a resync or a reconnect the server sends
 *    "initial" again; only the events after the last one seen are printed.
 *
 * Every event goes through the filters (--type, --name, --node, --workflow)
 * and is printed as JSON Lines (the event's text exactly as received, when
 * stdout is not a terminal or with --json) or as one compact coloured line.
 * Text from the network is untrusted: control characters never reach the
 * terminal.  --count and --timeout make the command scriptable: it exits 0
 * after N matching events, 1 when S seconds pass without one.
 *
 * Memory is bounded: one WebSocket message is reassembled in a buffer of at
 * most TAIL_WS_MSG_MAX bytes (larger ones are skipped with a warning); Redis
 * messages are bounded by the reader. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#include <kaygraph/redis_reader.h>

#include "cli.h"
#include "util/buf.h"
#include "util/clock.h"

#define TAIL_LIST_MAX 16                  /* values per repeatable filter */
#define TAIL_WS_MSG_MAX (32u << 20)       /* largest WebSocket message reassembled */
#define TAIL_TICK_S 0.1                   /* how often Ctrl-C and timers are checked */
#define TAIL_RECONNECT_S 1.0              /* between dashboard reconnection attempts */
#define TAIL_SHORT_ID 8                   /* workflow id characters shown */

/* The event types; bit i of a type filter stands for type_names[i]. */
static const char *const type_names[] = {"lifecycle", "data", "error", "metric", "log"};

/* A repeatable filter: the event matches when its field equals any value.
 * Values point into argv (never freed). */
typedef struct tail_list {
    const char *v[TAIL_LIST_MAX];
    size_t n;
} tail_list;

typedef struct tail_filter {
    unsigned types;            /* bits (see type_names); 0 = every type */
    tail_list names;           /* each entry may be a comma list */
    tail_list nodes;
    tail_list workflows;       /* full id, or the short id shown (its end) */
} tail_filter;

typedef struct tail_args {
    char *redis_host;          /* malloc'd; NULL unless --redis */
    int redis_port;
    const char *prefix;        /* NULL = the backend's default */
    const char *url;           /* NULL unless --url */
    char *url_host;            /* malloc'd, from --url */
    int url_port;
    char url_path[512];        /* "/ws" under the URL's path */
    const char *token;         /* --token, or ?token= in --url (then in url_token) */
    char url_token[256];
    tail_filter filter;
    bool json, no_color;
    unsigned long long count;  /* 0 = no limit */
    double timeout;            /* 0 = none */
} tail_args;

typedef struct tail_state {
    const tail_args *a;
    bool json;                 /* JSON Lines output (else one line per event) */
    bool color;
    unsigned long long matched;
    double last_match;         /* monotonic time of the last match (or of the start) */
    bool done;                 /* --count reached, or stdout is gone */
    int rc;
    char last_id[80];          /* event_id of the last event received */
} tail_state;

/* ---- usage and parsing ------------------------------------------------------------- */

static void tail_usage(FILE *out)
{
    fputs("usage: kgmon tail (--redis HOST[:PORT] | --url http://HOST:PORT) [options]\n"
          "\n"
          "Follow monitoring events live: from Redis Pub/Sub (<prefix>all), or from a\n"
          "dashboard's WebSocket (its recent events first, then live ones).  On a\n"
          "terminal each event is one coloured line; piped, each is one line of JSON\n"
          "(JSON Lines, the event exactly as received).\n"
          "\n"
          "source:\n"
          "  --redis HOST[:PORT]  Redis server (default port 6379)\n"
          "  --redis-prefix P     key/channel prefix (default kaygraph:monitoring:)\n"
          "  --url URL            dashboard, e.g. http://127.0.0.1:8080 (a ?token=T in it is used)\n"
          "  --token T            the dashboard's token (sent as Authorization: Bearer T;\n"
          "                       default $KGMON_TOKEN)\n"
          "filters (all must match; a repeated filter matches any of its values):\n"
          "  --type T             lifecycle, data, error, metric or log (repeatable, or a comma\n"
          "                       list)\n"
          "  --name NAME          event name, e.g. node_failed (repeatable, or a comma list)\n"
          "  --node ID            node id (repeatable)\n"
          "  --workflow ID        workflow run id, or the short id shown on a terminal (its\n"
          "                       last characters) (repeatable)\n"
          "output:\n"
          "  --json               JSON Lines even on a terminal\n"
          "  --no-color           no colours (also when NO_COLOR is set or TERM=dumb)\n"
          "  --count N            exit 0 after N matching events\n"
          "  --timeout S          exit 1 when S seconds pass without a matching event\n"
          "  -h, --help           this help\n"
          "\n"
          "exit status: 0 done (--count reached, or Ctrl-C), 1 source unreachable or\n"
          "--timeout passed, 2 bad command line\n",
          out);
}

enum {
    OPT_REDIS = 256, OPT_PREFIX, OPT_URL, OPT_TOKEN, OPT_TYPE, OPT_NAME, OPT_NODE,
    OPT_WORKFLOW, OPT_JSON, OPT_NO_COLOR, OPT_COUNT, OPT_TIMEOUT,
};

static const struct option tail_options_table[] = {
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-prefix", required_argument, NULL, OPT_PREFIX},
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"type", required_argument, NULL, OPT_TYPE},
    {"name", required_argument, NULL, OPT_NAME},
    {"node", required_argument, NULL, OPT_NODE},
    {"workflow", required_argument, NULL, OPT_WORKFLOW},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"count", required_argument, NULL, OPT_COUNT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int type_bit(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strlen(type_names[i]) == n && strncmp(type_names[i], s, n) == 0)
            return 1 << i;
    return 0;
}

static bool type_word(const char *w, size_t n, void *ud)
{
    int bit = type_bit(w, n);
    *(unsigned *)ud |= (unsigned)bit;
    return bit != 0;
}

/* "error,metric" -> bits added to *types. */
static int parse_types(const char *arg, unsigned *types)
{
    if (!cli_list_each(arg, type_word, types))
        return cli_usage_error("tail", "--type must be lifecycle, data, error, metric or log "
                                       "(or a comma list of them) (got '%s')", arg);
    return 0;
}

/* A filter value; a comma list (--name) must not have empty words. */
static int list_add(tail_list *l, const char *flag, const char *arg, bool comma_list)
{
    if (!*arg || (comma_list && !cli_list_each(arg, NULL, NULL)))
        return cli_usage_error("tail", "%s needs a non-empty value without empty list words "
                                       "(got '%s')", flag, arg);
    if (l->n == TAIL_LIST_MAX)
        return cli_usage_error("tail", "%s given more than %d times", flag, TAIL_LIST_MAX);
    l->v[l->n++] = arg;
    return 0;
}

/* The value of a ?token= query parameter (up to '&' or '#'), taken as it is
 * (not percent-decoded): the dashboard prints its URL that way. */
static bool url_take_token(tail_args *a, const char *query)
{
    const char *t = strstr(query, "token=");
    while (t && t != query && t[-1] != '?' && t[-1] != '&')
        t = strstr(t + 1, "token=");
    if (!t)
        return true;
    t += 6;
    size_t n = strcspn(t, "&#");
    if (n == 0 || n >= sizeof a->url_token)
        return false;
    memcpy(a->url_token, t, n);
    a->url_token[n] = '\0';
    return true;
}

/* http://HOST[:PORT][/path][?token=T] (ws:// too) -> host, port, "/path/ws". */
static int parse_url(tail_args *a, const char *url)
{
    static const char *const schemes[] = {"http", "ws", NULL};
    cli_url u;
    const char *why = cli_parse_url(url, schemes, false, &u);
    if (why && (strncasecmp(url, "https:", 6) == 0 || strncasecmp(url, "wss:", 4) == 0))
        return cli_usage_error("tail", "--url must be http://HOST[:PORT] (got '%s'; TLS is not "
                                       "supported)", url);
    if (why)
        return cli_usage_error("tail", "--url %s: must be http://HOST[:PORT] (got '%s')", why, url);
    free(a->url_host);
    a->url_host = u.host;
    a->url_port = u.port;
    const char *rest = u.rest;
    size_t path_len = strcspn(rest, "?#");
    while (path_len && rest[path_len - 1] == '/')
        path_len--;
    if (path_len + 4 >= sizeof a->url_path)
        return cli_usage_error("tail", "--url path is too long");
    snprintf(a->url_path, sizeof a->url_path, "%.*s/ws", (int)path_len, rest);
    if (rest[path_len + strspn(rest + path_len, "/")] == '?' && !url_take_token(a, strchr(rest, '?')))
        return cli_usage_error("tail", "--url has a bad token= parameter (got '%s')", url);
    a->url = url;
    return 0;
}

/* One option; returns 0, KGMON_USAGE, or -1 for --help. */
static int tail_option(tail_args *a, int opt, const char *arg)
{
    unsigned long long u;
    switch (opt) {
    case OPT_REDIS:
        free(a->redis_host);
        a->redis_host = NULL;
        if (!cli_parse_hostport(arg, 6379, &a->redis_host, &a->redis_port))
            return cli_usage_error("tail", "--redis needs HOST[:PORT] (got '%s')", arg);
        return 0;
    case OPT_PREFIX:
        if (!*arg)
            return cli_usage_error("tail", "--redis-prefix needs a non-empty value");
        a->prefix = arg;
        return 0;
    case OPT_URL:
        return parse_url(a, arg);
    case OPT_TOKEN:
        if (!*arg)
            return cli_usage_error("tail", "--token needs a non-empty value");
        a->token = arg;
        return 0;
    case OPT_TYPE:
        return parse_types(arg, &a->filter.types);
    case OPT_NAME:
        return list_add(&a->filter.names, "--name", arg, true);
    case OPT_NODE:
        return list_add(&a->filter.nodes, "--node", arg, false);
    case OPT_WORKFLOW:
        return list_add(&a->filter.workflows, "--workflow", arg, false);
    case OPT_JSON:
        a->json = true;
        return 0;
    case OPT_NO_COLOR:
        a->no_color = true;
        return 0;
    case OPT_COUNT:
        if (!cli_parse_uint(arg, 1, UINT64_MAX, &u))
            return cli_usage_error("tail", "--count must be a whole number >= 1 (got '%s')", arg);
        a->count = u;
        return 0;
    case OPT_TIMEOUT:
        if (!cli_parse_double(arg, 0.001, 31536000, &a->timeout))
            return cli_usage_error("tail", "--timeout must be a number of seconds > 0 (got '%s')", arg);
        return 0;
    case 'h':
        return -1;
    default:
        return cli_usage_error("tail", "unknown option");
    }
}

/* The source flags must name exactly one source, and go with it. */
static int tail_check(tail_args *a)
{
    if (!a->redis_host && !a->url)
        return cli_usage_error("tail", "give a source: --redis HOST[:PORT] or --url http://HOST:PORT");
    if (a->redis_host && a->url)
        return cli_usage_error("tail", "--redis and --url are exclusive: give one source");
    if (a->prefix && !a->redis_host)
        return cli_usage_error("tail", "--redis-prefix needs --redis");
    if (a->token && !a->url)
        return cli_usage_error("tail", "--token needs --url");
    if (!a->token && a->url_token[0])
        a->token = a->url_token;
    if (!a->token && a->url)
        a->token = cli_env_token();
    return 0;
}

static int tail_parse(tail_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", tail_options_table, NULL)) != -1) {
        if (opt == '?')
            return cli_usage_error("tail", "unknown or incomplete option '%s'", argv[optind - 1]);
        int rc = tail_option(a, opt, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error("tail", "unexpected argument '%s'", argv[optind]);
    return tail_check(a);
}

/* ---- filtering ------------------------------------------------------------------------ */

static const char *str_field(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Is `value` one of the comma-separated items of `list`? */
static bool comma_list_has(const char *list, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = list;; p++) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, value, n) == 0)
            return true;
        p += m;
        if (!*p)
            return false;
    }
}

static bool list_match(const tail_list *l, const char *value, bool comma, bool suffix)
{
    if (l->n == 0)
        return true;
    size_t vn = strlen(value);
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        if (comma ? comma_list_has(l->v[i], value) : strcmp(l->v[i], value) == 0)
            return true;
        if (suffix && n < vn && strcmp(value + vn - n, l->v[i]) == 0)
            return true;
    }
    return false;
}

static bool filter_match(const tail_filter *f, json_t *ev)
{
    const char *type = str_field(ev, "event_type");
    if (f->types && !(f->types & (unsigned)type_bit(type, strlen(type))))
        return false;
    return list_match(&f->names, str_field(ev, "event_name"), true, false) &&
           list_match(&f->nodes, str_field(ev, "node_id"), false, false) &&
           list_match(&f->workflows, str_field(ev, "workflow_id"), false, true);
}

/* ---- output ------------------------------------------------------------------------- */

/* A line being built; appends truncate silently at the end of the buffer. */
typedef struct line_buf {
    char b[1024];
    size_t n;
} line_buf;

static void lb_printf(line_buf *lb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_printf(line_buf *lb, const char *fmt, ...)
{
    if (lb->n >= sizeof lb->b - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(lb->b + lb->n, sizeof lb->b - lb->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        lb->n = lb->n + (size_t)k < sizeof lb->b ? lb->n + (size_t)k : sizeof lb->b - 1;
}

/* Untrusted text for the terminal: at most `max` bytes, control characters
 * (escape sequences included) replaced, so an event cannot drive the
 * terminal. */
static void lb_text(line_buf *lb, const char *s, size_t max)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n && i < max && lb->n < sizeof lb->b - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        lb->b[lb->n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (n > max)
        lb_printf(lb, "...");
    lb->b[lb->n] = '\0';
}

static void lb_color(line_buf *lb, const tail_state *s, const char *sgr)
{
    if (s->color)
        lb_printf(lb, "\033[%sm", sgr);
}

static const char *type_color(const char *type)
{
    if (strcmp(type, "error") == 0)
        return "31";   /* red */
    if (strcmp(type, "lifecycle") == 0)
        return "36";   /* cyan */
    if (strcmp(type, "metric") == 0)
        return "35";   /* magenta */
    if (strcmp(type, "log") == 0)
        return "32";   /* green */
    return "34";       /* data: blue */
}

/* A node log line's level: errors red, warnings yellow, debug dim. */
static const char *level_color(const char *level)
{
    if (strcmp(level, "error") == 0)
        return "1;31";
    if (strcmp(level, "warning") == 0)
        return "1;33";
    if (strcmp(level, "debug") == 0)
        return "2";
    return "1;32";
}

/* Untrusted JSON (fields, custom data) as compact text, cut. */
static void lb_json(line_buf *lb, json_t *v, size_t max)
{
    /* 15 digits: 0.82 reads as 0.82, not 0.81999999999999995. */
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (text)
        lb_text(lb, text, max);
    free(text);
}

/* A batch item's report says which item. */
static void lb_item(line_buf *lb, json_t *d)
{
    json_t *item = json_object_get(d, "item");
    if (json_is_integer(item))
        lb_printf(lb, " [item %lld]", (long long)json_integer_value(item));
}

/* node_log: LEVEL message {fields} */
static void details_log(line_buf *lb, const tail_state *s, json_t *d)
{
    const char *level = str_field(d, "level");
    lb_printf(lb, " ");
    lb_color(lb, s, level_color(level));
    char upper[16];
    size_t n = 0;
    for (; level[n] && n < sizeof upper - 1; n++)
        upper[n] = (char)(level[n] >= 'a' && level[n] <= 'z' ? level[n] - 32 : level[n]);
    upper[n] = '\0';
    lb_text(lb, upper, 8);
    lb_color(lb, s, "0");
    lb_printf(lb, " ");
    lb_text(lb, str_field(d, "message"), 400);
    json_t *fields = json_object_get(d, "fields");
    if (json_object_size(fields)) {
        lb_color(lb, s, "2");
        lb_printf(lb, " ");
        lb_json(lb, fields, 300);
        lb_color(lb, s, "0");
    }
    if (json_is_true(json_object_get(d, "truncated")))
        lb_printf(lb, " (truncated)");
    lb_item(lb, d);
}

/* The numbers of node reports: integers without decimals. */
static void lb_number(line_buf *lb, json_t *v)
{
    if (json_is_integer(v))
        lb_printf(lb, "%lld", (long long)json_integer_value(v));
    else
        lb_printf(lb, "%g", json_number_value(v));
}

/* custom_metric, node_progress, custom_event. */
static bool details_report(line_buf *lb, const char *name, json_t *d)
{
    if (strcmp(name, "custom_metric") == 0) {
        lb_printf(lb, " ");
        lb_text(lb, str_field(d, "name"), 64);
        lb_printf(lb, " = ");
        lb_number(lb, json_object_get(d, "value"));
        if (*str_field(d, "unit")) {
            lb_printf(lb, " ");
            lb_text(lb, str_field(d, "unit"), 32);
        }
        lb_printf(lb, " (");
        lb_text(lb, str_field(d, "kind"), 16);
        lb_printf(lb, ")");
    } else if (strcmp(name, "node_progress") == 0) {
        json_t *total = json_object_get(d, "total");
        lb_printf(lb, " ");
        lb_number(lb, json_object_get(d, "done"));
        if (json_number_value(total) > 0) {
            lb_printf(lb, "/");
            lb_number(lb, total);
        }
    } else if (strcmp(name, "custom_event") == 0) {
        lb_printf(lb, " ");
        lb_text(lb, str_field(d, "name"), 64);
        lb_printf(lb, " ");
        lb_json(lb, json_object_get(d, "data"), 300);
    } else {
        return false;
    }
    lb_item(lb, d);
    return true;
}

static void details_lifecycle(line_buf *lb, const char *name, json_t *d)
{
    json_t *v;
    if (strcmp(name, "node_completed") == 0) {
        v = json_object_get(d, "next_action");
        lb_printf(lb, " -> ");
        lb_text(lb, json_is_string(v) ? json_string_value(v) : "default", 64);
    }
    if (strcmp(name, "workflow_started") == 0 && (v = json_object_get(d, "graph"))) {
        lb_printf(lb, " %zu nodes, %zu edges, start ", json_array_size(json_object_get(v, "nodes")),
                  json_array_size(json_object_get(v, "edges")));
        lb_text(lb, str_field(v, "start"), 64);
    }
    if ((v = json_object_get(d, "status"))) {
        lb_printf(lb, " ");
        lb_text(lb, json_is_string(v) ? json_string_value(v) : "?", 32);
    }
    if ((v = json_object_get(d, "final_action")) && json_is_string(v)) {
        lb_printf(lb, " final_action ");
        lb_text(lb, json_string_value(v), 64);
    }
    if ((v = json_object_get(d, "total_execution_time")) || (v = json_object_get(d, "duration")))
        lb_printf(lb, "  %.3f ms", json_number_value(v) * 1000);
}

static void details_error(line_buf *lb, json_t *d)
{
    const char *etype = str_field(d, "error_type");
    lb_printf(lb, " ");
    if (*etype) {
        lb_text(lb, etype, 64);
        lb_printf(lb, ": ");
    }
    lb_text(lb, str_field(d, "error"), 200);
    json_t *phase = json_object_get(d, "phase"), *attempt = json_object_get(d, "attempt");
    if (json_is_string(phase)) {
        lb_printf(lb, " (");
        lb_text(lb, json_string_value(phase), 16);
        lb_printf(lb, ")");
    }
    if (json_is_integer(attempt))
        lb_printf(lb, " attempt %lld/%lld", (long long)json_integer_value(attempt),
                  (long long)json_integer_value(json_object_get(d, "max_retries")));
}

static void details_metric(line_buf *lb, json_t *d)
{
    json_t *v = json_object_get(d, "value");
    const char *unit = str_field(d, "unit");
    if (json_is_number(v) && strcmp(unit, "seconds") == 0)
        lb_printf(lb, " %.3f ms", json_number_value(v) * 1000);
    else if (json_is_number(v)) {
        lb_printf(lb, " %g ", json_number_value(v));
        lb_text(lb, unit, 32);
    }
}

static void details_data(line_buf *lb, json_t *d)
{
    json_t *snap = json_object_get(d, "snapshot");
    if (!snap)
        return;
    if (json_is_true(json_object_get(snap, "truncated")))
        lb_printf(lb, " snapshot truncated (%lld bytes)",
                  (long long)json_integer_value(json_object_get(snap, "original_size")));
    else
        lb_printf(lb, " snapshot");
}

/* Untrusted text in a column at least `width` wide. */
static void lb_col(line_buf *lb, const char *text, size_t width, size_t max)
{
    size_t at = lb->n;
    lb_text(lb, text, max);
    if (lb->n - at < width)
        lb_printf(lb, "%*s", (int)(width - (lb->n - at)), "");
}

/* "2026-11-27T17:36:13.123456Z" -> "17:36:13.123". */
static void lb_time(line_buf *lb, const char *ts)
{
    const char *t = strchr(ts, 'T');
    char hms[13];
    snprintf(hms, sizeof hms, "%s", t ? t + 1 : ts);
    lb_text(lb, hms, sizeof hms);
}

static void lb_details(line_buf *lb, const tail_state *s, const char *type, const char *name,
                       json_t *d)
{
    if (strcmp(type, "log") == 0)
        details_log(lb, s, d);
    else if (details_report(lb, name, d))
        ;
    else if (strcmp(type, "lifecycle") == 0)
        details_lifecycle(lb, name, d);
    else if (strcmp(type, "error") == 0)
        details_error(lb, d);
    else if (strcmp(type, "metric") == 0)
        details_metric(lb, d);
    else if (strcmp(type, "data") == 0)
        details_data(lb, d);
}

/* time type name node wf <short id> details */
static void print_pretty(const tail_state *s, json_t *ev)
{
    line_buf lb = {.n = 0};
    const char *type = str_field(ev, "event_type"), *name = str_field(ev, "event_name");
    const char *wf = str_field(ev, "workflow_id");
    size_t wn = strlen(wf);
    bool error = strcmp(type, "error") == 0;
    lb_color(&lb, s, "2");
    lb_time(&lb, str_field(ev, "timestamp"));
    lb_color(&lb, s, error ? "0;1;31" : "0;1");
    lb_printf(&lb, " ");
    lb_col(&lb, type, 9, 16);
    lb_color(&lb, s, error ? "0;1;31" : type_color(type));
    lb_printf(&lb, " ");
    lb_col(&lb, name, 18, 40);
    lb_color(&lb, s, "0");
    lb_printf(&lb, " ");
    lb_col(&lb, str_field(ev, "node_id"), 16, 40);
    lb_color(&lb, s, "2");
    lb_printf(&lb, " wf ");
    lb_text(&lb, wn > TAIL_SHORT_ID ? wf + wn - TAIL_SHORT_ID : wf, TAIL_SHORT_ID);
    lb_color(&lb, s, "0");
    lb_details(&lb, s, type, name, json_object_get(ev, "data"));
    printf("%s\n", lb.b);
}

/* One event from either source: its raw text and its parsed form. */
static void tail_event(tail_state *s, const char *raw, size_t n, json_t *ev)
{
    if (!json_is_object(ev))
        return;
    snprintf(s->last_id, sizeof s->last_id, "%s", str_field(ev, "event_id"));
    if (s->done || !filter_match(&s->a->filter, ev))
        return;
    if (s->json) {
        fwrite(raw, 1, n, stdout);
        putchar('\n');
    } else {
        print_pretty(s, ev);
    }
    /* A reader that went away (`kgmon tail | head`) ends the tail quietly. */
    if (fflush(stdout) != 0 || ferror(stdout))
        s->done = true;
    s->matched++;
    s->last_match = kg_clock_mono();
    if (s->a->count && s->matched >= s->a->count)
        s->done = true;
}

/* Stop for --count, a closed stdout, Ctrl-C or --timeout (exit 1). */
static bool tail_should_stop(tail_state *s)
{
    if (s->done || cli_interrupted)
        return true;
    if (s->a->timeout > 0 && kg_clock_mono() - s->last_match >= s->a->timeout) {
        fprintf(stderr, "kgmon tail: no matching event in %g s\n", s->a->timeout);
        s->rc = KGMON_FAILED;
        s->done = true;
    }
    return s->done;
}

/* Seconds to wait at most before the next check of tail_should_stop. */
static double tail_step(const tail_state *s)
{
    double step = TAIL_TICK_S;
    if (s->a->timeout > 0) {
        double left = s->last_match + s->a->timeout - kg_clock_mono();
        if (left < step)
            step = left > 0.001 ? left : 0.001;
    }
    return step;
}

/* ---- Redis source --------------------------------------------------------------------- */

static void redis_message(tail_state *s, const char *text, size_t len)
{
    json_error_t je;
    json_t *ev = json_loadb(text, len, 0, &je);
    tail_event(s, text, len, ev);
    json_decref(ev);
}

/* While Redis is lost the reader retries at 0.1 s doubling to 5 s (and
 * every call in between fails with the same error): report the first
 * failure, then after 2, 4, 8... of them or when the error changes kind,
 * about one line per backoff step. */
static bool redis_worth_reporting(const kg_redis_reader_status *st, unsigned *reported, int *code)
{
    unsigned f = st->failures;
    if (f == *reported || ((f & (f - 1)) != 0 && st->last_code == *code))
        return false;
    *reported = f;
    *code = st->last_code;
    return true;
}

static int tail_redis(tail_state *s)
{
    const tail_args *a = s->a;
    kg_redis_options o;
    kg_redis_options_init(&o);
    o.host = a->redis_host;
    o.port = a->redis_port;
    if (a->prefix)
        o.prefix = a->prefix;
    kg_redis_reader_t *r = NULL;
    kg_error_t err = {0};
    if (kg_redis_reader_new(&o, &r, &err) != 0 || kg_redis_reader_subscribe(r, "all", false, &err) != 0) {
        fprintf(stderr, "kgmon tail: cannot reach Redis at %s:%d: %s\n", a->redis_host, a->redis_port,
                err.message);
        kg_redis_reader_free(r);
        return KGMON_FAILED;
    }
    if (!s->json)
        fprintf(stderr, "kgmon tail: following %sall on Redis %s:%d (Ctrl-C to stop)\n",
                a->prefix ? a->prefix : "kaygraph:monitoring:", a->redis_host, a->redis_port);
    bool lost = false;
    unsigned reported = 0;
    int code = 0;
    while (!tail_should_stop(s)) {
        char *text = NULL;
        size_t len = 0;
        uint64_t reconnects = kg_redis_reader_reconnects(r);
        int rc = kg_redis_reader_next(r, tail_step(s), &text, &len, NULL, &err);
        if (lost && (rc == 0 || kg_redis_reader_reconnects(r) != reconnects)) {
            fprintf(stderr, "kgmon tail: reconnected to Redis (events published meanwhile were missed)\n");
            lost = false;
        }
        if (rc == 0) {
            redis_message(s, text, len);
        } else if (rc != KG_ETIMEOUT) {
            kg_redis_reader_status st;
            kg_redis_reader_status_get(r, &st);
            if (!lost)
                fprintf(stderr, "kgmon tail: lost Redis at %s:%d (%s); reconnecting (every 0.1 s "
                        "doubling to 5 s)\n", a->redis_host, a->redis_port, err.message);
            else if (redis_worth_reporting(&st, &reported, &code))
                fprintf(stderr, "kgmon tail: Redis at %s:%d: %s (%u failed attempt%s)\n",
                        a->redis_host, a->redis_port, st.last_error, st.failures,
                        st.failures == 1 ? "" : "s");
            if (!lost) {
                reported = st.failures;
                code = st.last_code;
            }
            lost = true;
        }
        free(text);
    }
    kg_redis_reader_free(r);
    return s->rc;
}

/* ---- dashboard messages --------------------------------------------------------------- *
 * The server frames an event as {"type":"event","data":<the event's text>}, so
 * the event's exact text is a span of the message.  These helpers find spans
 * in text jansson has already validated. */

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Past the value starting at p (validated JSON). */
static const char *js_skip(const char *p, const char *e)
{
    int depth = 0;
    bool in_str = false;
    for (; p < e; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = false;
            if (!in_str && depth == 0)
                return p + 1;
            continue;
        }
        if (*p == '"')
            in_str = true;
        else if (*p == '{' || *p == '[')
            depth++;
        else if (*p == '}' || *p == ']') {
            if (--depth <= 0)
                return depth < 0 ? p : p + 1;
        } else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            return p;
    }
    return e;
}

/* The span of member `key` of the object starting at p. */
static bool js_member(const char *p, const char *e, const char *key, const char **vb, const char **ve)
{
    p = js_ws(p, e);
    if (p >= e || *p != '{')
        return false;
    size_t kn = strlen(key);
    for (p = js_ws(p + 1, e); p < e && *p == '"'; p = js_ws(p, e)) {
        const char *k = p + 1, *kend = js_skip(p, e);
        p = js_ws(kend, e);
        if (p >= e || *p != ':')
            return false;
        const char *v = js_ws(p + 1, e), *vend = js_skip(v, e);
        if ((size_t)(kend - 1 - k) == kn && memcmp(k, key, kn) == 0) {
            *vb = v;
            *ve = vend;
            return true;
        }
        p = js_ws(vend, e);
        if (p < e && *p == ',')
            p = js_ws(p + 1, e);
    }
    return false;
}

/* The events of an array (parsed `arr`, text [b, e)), from index `from`. */
static void array_events(tail_state *s, json_t *arr, const char *b, const char *e, size_t from)
{
    const char *p = js_ws(b, e);
    if (p >= e || *p != '[')
        return;
    p = js_ws(p + 1, e);
    for (size_t i = 0; i < json_array_size(arr) && p < e && *p != ']'; i++) {
        const char *end = js_skip(p, e);
        if (i >= from)
            tail_event(s, p, (size_t)(end - p), json_array_get(arr, i));
        p = js_ws(end, e);
        if (p < e && *p == ',')
            p = js_ws(p + 1, e);
    }
}

/* After a resync or a reconnect, "initial" repeats events already printed:
 * start after the last one received, when it is still in the list. */
static size_t initial_start(const tail_state *s, json_t *events)
{
    if (!s->last_id[0])
        return 0;
    for (size_t i = json_array_size(events); i-- > 0;)
        if (strcmp(str_field(json_array_get(events, i), "event_id"), s->last_id) == 0)
            return i + 1;
    return 0;
}

static void ws_message(tail_state *s, const char *p, size_t n)
{
    json_error_t je;
    json_t *m = json_loadb(p, n, 0, &je);
    if (!m)
        return;   /* the span helpers below trust the text to be valid JSON */
    const char *type = str_field(m, "type"), *db, *de, *eb, *ee;
    json_t *data = json_object_get(m, "data");
    bool has_data = js_member(p, p + n, "data", &db, &de);
    if (strcmp(type, "event") == 0 && has_data) {
        tail_event(s, db, (size_t)(de - db), data);
    } else if (strcmp(type, "events") == 0 && has_data) {
        array_events(s, data, db, de, 0);
    } else if (strcmp(type, "initial") == 0 && has_data && js_member(db, de, "events", &eb, &ee)) {
        json_t *events = json_object_get(data, "events");
        array_events(s, events, eb, ee, initial_start(s, events));
    } else if (strcmp(type, "notice") == 0) {
        fprintf(stderr, "kgmon tail: dashboard: %s\n", str_field(data, "message"));
    }
    json_decref(m);
}

/* ---- dashboard source (libwebsockets client) ---------------------------------------- */

typedef struct ws_conn {
    tail_state *s;
    struct lws_context *ctx;
    struct lws *wsi;              /* NULL while not connected */
    lws_sorted_usec_list_t tick;  /* wakes lws_service so Ctrl-C and timers are seen */
    kg_buf msg;                   /* the message being reassembled */
    bool overflow;                /* the current message is too big: skip it */
    bool ever_connected, lost, refused;
    double retry_at;
    char host_hdr[320];
    char error[256];
} ws_conn;

static void ws_rx(ws_conn *c, const void *in, size_t len, bool final)
{
    if (!c->overflow && c->msg.len + len > TAIL_WS_MSG_MAX)
        c->overflow = true;
    if (!c->overflow) {
        kg_buf_append(&c->msg, in, len);
        c->overflow = c->msg.failed;
    }
    if (!final)
        return;
    if (c->overflow)
        fprintf(stderr, "kgmon tail: skipped a dashboard message over %u MiB\n", TAIL_WS_MSG_MAX >> 20);
    else
        ws_message(c->s, c->msg.data, c->msg.len);
    kg_buf_reset(&c->msg);
    c->overflow = false;
}

static int ws_append_auth(ws_conn *c, struct lws *wsi, void *in, size_t len)
{
    const char *token = c->s->a->token;
    if (!token)
        return 0;
    unsigned char **p = (unsigned char **)in, *end = *p + len;
    char value[300];
    int n = snprintf(value, sizeof value, "Bearer %s", token);
    if (n < 0 || (size_t)n >= sizeof value)
        return -1;
    return lws_add_http_header_by_name(wsi, (const unsigned char *)"authorization:",
                                       (const unsigned char *)value, n, p, end) ? -1 : 0;
}

static void ws_closed(ws_conn *c, const char *why, size_t len)
{
    if (why && len)
        snprintf(c->error, sizeof c->error, "%.*s", (int)len, why);
    else if (why)
        snprintf(c->error, sizeof c->error, "%s", why);
    if (c->wsi && c->ever_connected && !c->lost && !cli_interrupted && !c->s->done)
        fprintf(stderr, "kgmon tail: lost the dashboard (%s); reconnecting\n", c->error);
    if (c->ever_connected)
        c->lost = true;
    c->wsi = NULL;
    kg_buf_reset(&c->msg);
    c->overflow = false;
    c->retry_at = kg_clock_mono() + TAIL_RECONNECT_S;
}

static void ws_established(ws_conn *c)
{
    if (c->lost)
        fprintf(stderr, "kgmon tail: reconnected to the dashboard\n");
    else if (!c->s->json)
        fprintf(stderr, "kgmon tail: following %s (Ctrl-C to stop)\n", c->s->a->url);
    c->ever_connected = true;
    c->lost = false;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    ws_conn *c = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return ws_append_auth(c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ws_established(c);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (wsi == c->wsi)
            ws_rx(c, in, len, lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (wsi == c->wsi || !c->wsi) {
            int status = (int)lws_http_client_http_response(wsi);
            c->refused = status == 401 || status == 403;
            ws_closed(c, in ? (const char *)in : "connection failed", in ? len : 0);
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == c->wsi)
            ws_closed(c, "connection closed", 0);
        break;
    default:
        break;
    }
    return 0;
}

static void ws_tick(lws_sorted_usec_list_t *sul)
{
    ws_conn *c = lws_container_of(sul, ws_conn, tick);
    lws_sul_schedule(c->ctx, 0, &c->tick, ws_tick, (lws_usec_t)(TAIL_TICK_S * LWS_US_PER_SEC));
}

static void ws_connect(ws_conn *c)
{
    const tail_args *a = c->s->a;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = a->url_host;
    ci.port = a->url_port;
    ci.path = a->url_path;
    ci.host = c->host_hdr;
    ci.protocol = NULL;           /* the server's default protocol */
    ci.local_protocol_name = "kgmon-tail";
    ci.pwsi = &c->wsi;
    c->error[0] = '\0';
    c->refused = false;
    /* No Origin header: a non-browser client, admitted by the token alone. */
    if (!lws_client_connect_via_info(&ci)) {
        if (!c->error[0])
            snprintf(c->error, sizeof c->error, "cannot connect to %s:%d", a->url_host, a->url_port);
        c->wsi = NULL;
        c->retry_at = kg_clock_mono() + TAIL_RECONNECT_S;
    }
}

static struct lws_context *ws_context(ws_conn *c)
{
    static const struct lws_protocols protocols[] = {
        {.name = "kgmon-tail", .callback = ws_callback, .rx_buffer_size = 65536},
        {.name = NULL},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.gid = -1;
    info.uid = -1;
    info.timeout_secs = 10;
    info.connect_timeout_secs = 5;
    if (!strchr(c->s->a->url_host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* lws logs to stderr by default; this command reports failures itself. */
    lws_set_log_level(0, NULL);
    return lws_create_context(&info);
}

/* Before the first connection, failing to connect ends the command. */
static int ws_first_failure(ws_conn *c)
{
    const tail_args *a = c->s->a;
    fprintf(stderr, "kgmon tail: cannot reach the dashboard at %s: %s%s\n", a->url,
            c->error[0] ? c->error : "connection failed",
            c->refused ? (a->token ? " (wrong --token?)" : " (it needs --token?)") : "");
    return KGMON_FAILED;
}

static int ws_loop(ws_conn *c)
{
    ws_connect(c);
    lws_sul_schedule(c->ctx, 0, &c->tick, ws_tick, (lws_usec_t)(TAIL_TICK_S * LWS_US_PER_SEC));
    while (!tail_should_stop(c->s)) {
        if (!c->wsi && !c->ever_connected && (c->error[0] || c->retry_at > 0))
            return ws_first_failure(c);
        if (!c->wsi && kg_clock_mono() >= c->retry_at)
            ws_connect(c);
        if (lws_service(c->ctx, 0) < 0)
            break;
    }
    return c->s->rc;
}

static int tail_ws(tail_state *s)
{
    ws_conn c = {.s = s};
    const tail_args *a = s->a;
    bool v6 = strchr(a->url_host, ':') != NULL;
    snprintf(c.host_hdr, sizeof c.host_hdr, v6 ? "[%s]:%d" : "%s:%d", a->url_host, a->url_port);
    c.ctx = ws_context(&c);
    if (!c.ctx) {
        fprintf(stderr, "kgmon tail: cannot start the WebSocket client\n");
        return KGMON_FAILED;
    }
    int rc = ws_loop(&c);
    lws_sul_cancel(&c.tick);
    lws_context_destroy(c.ctx);
    kg_buf_free(&c.msg);
    return rc;
}

/* ---- the command -------------------------------------------------------------------- */

static bool want_color(const tail_args *a)
{
    const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
    return !a->no_color && !(no_color && *no_color) && !(term && strcmp(term, "dumb") == 0);
}

int cmd_tail(int argc, char **argv)
{
    tail_args a;
    int rc = tail_parse(&a, argc, argv);
    if (rc == -1) {
        tail_usage(stdout);
        rc = KGMON_OK;
    } else if (rc == 0) {
        cli_catch_signals();
        tail_state s = {.a = &a, .rc = KGMON_OK, .last_match = kg_clock_mono()};
        s.json = a.json || !cli_is_tty(STDOUT_FILENO);
        s.color = !s.json && want_color(&a);
        rc = a.redis_host ? tail_redis(&s) : tail_ws(&s);
    }
    free(a.redis_host);
    free(a.url_host);
    return rc;
}
