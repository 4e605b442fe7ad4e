/* cmd_dashboard.c - `kgmon dashboard`: the standalone dashboard server.
 *
 * Sources: POST /api/ingest always; a Redis subscription with --redis.  Logs
 * one line per client connect/disconnect (and, under attack, one summary
 * line per 10 s); Ctrl-C shuts down cleanly.  The limits that keep it up
 * under hostile clients have flags (kaygraph/dashboard.h says what each
 * does). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include <kaygraph/dashboard.h>

#include "cli.h"
#include "history_cli.h"

static void dashboard_usage(FILE *out)
{
    fputs("usage: kgmon dashboard [options]\n"
          "\n"
          "Serve the live dashboard: the web UI, a WebSocket feed and a JSON API on one port.\n"
          "Events arrive by POST /api/ingest (the webhook format) and, with --redis, from\n"
          "Redis Pub/Sub.\n"
          "\n"
          "  --port P             port (default 8080; 0 = any free port)\n"
          "  --bind ADDR          address (default 127.0.0.1; 0.0.0.0 exposes it to the network)\n"
          "  --redis HOST[:PORT]  subscribe to monitoring events in Redis\n"
          "  --redis-prefix P     key/channel prefix (default kaygraph:monitoring:)\n"
          "  --redis-replay N     on start, replay up to N of the newest entries of the Redis\n"
          "                       stream (written by producers with --redis-stream; default\n"
          "                       10000, 0 = none, at most 1000000)\n"
          "  --stale-after S      mark a run \"stale\" after S seconds without events (a\n"
          "                       producer that died mid-run; default 300)\n"
          "  --token T            require this token (Authorization: Bearer T, or ?token=T;\n"
          "                       default $KGMON_TOKEN, which keeps it out of ps)\n"
          "  --allow-origin O     also accept WebSocket connections from origin O (repeatable list, comma-separated)\n"
          CLI_HISTORY_USAGE
          "\n"
          "Limits (against clients that misbehave):\n"
          "  --max-connections N  connections open at once, HTTP and WebSocket (default 1024,\n"
          "                       lowered to fit the file-descriptor limit); when full, the\n"
          "                       connection idle or slow the longest is closed for a new one\n"
          "  --max-clients N      WebSocket clients (default 64; below --max-connections)\n"
          "  --max-clients-per-ip N  WebSocket clients from one address (default 16, 0 = no cap)\n"
          "  --body-timeout S     a request body must arrive within S seconds (default 30)\n"
          "  --ws-idle-timeout S  close a WebSocket client that sends nothing, not even a\n"
          "                       pong, for S seconds (default 60)\n"
          "  --max-user-series N  series of the nodes' own metrics on /metrics (default 1000;\n"
          "                       more are dropped and counted)\n"
          "  -h, --help           this help\n",
          out);
}

static void log_line(void *ud, kg_dashboard_log_level level, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"error", "warning", "info"};
    fprintf(stderr, "kgmon dashboard: %s: %s\n", names[level <= KG_DASH_LOG_INFO ? level : 2], msg);
}

/* --allow-origin: "*" or origins (scheme://host[:port], nothing after). */
static bool origin_word(const char *w, size_t n, void *ud)
{
    (void)ud;
    static const char *const schemes[] = {"http", "https", NULL};
    char buf[300];
    if (n == 1 && *w == '*')
        return true;
    if (n >= sizeof buf)
        return false;
    memcpy(buf, w, n);
    buf[n] = '\0';
    cli_url u;
    bool ok = cli_parse_url(buf, schemes, false, &u) == NULL && !*u.rest;
    cli_url_free(&u);
    return ok;
}

enum { OPT_PORT = 256, OPT_BIND, OPT_REDIS, OPT_PREFIX, OPT_REPLAY, OPT_STALE, OPT_TOKEN, OPT_ORIGIN,
       OPT_MAX_CONNS, OPT_MAX_CLIENTS, OPT_PER_IP, OPT_BODY_TIMEOUT, OPT_WS_IDLE,
       OPT_USER_SERIES };

int cmd_dashboard(int argc, char **argv)
{
    static const struct option table[] = {
        {"port", required_argument, NULL, OPT_PORT},   {"bind", required_argument, NULL, OPT_BIND},
        {"redis", required_argument, NULL, OPT_REDIS}, {"redis-prefix", required_argument, NULL, OPT_PREFIX},
        {"redis-replay", required_argument, NULL, OPT_REPLAY},
        {"stale-after", required_argument, NULL, OPT_STALE},
        {"token", required_argument, NULL, OPT_TOKEN}, {"allow-origin", required_argument, NULL, OPT_ORIGIN},
        CLI_HISTORY_OPTIONS,   /* history */
        {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
        {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
        {"max-clients-per-ip", required_argument, NULL, OPT_PER_IP},
        {"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
        {"ws-idle-timeout", required_argument, NULL, OPT_WS_IDLE},
        {"max-user-series", required_argument, NULL, OPT_USER_SERIES},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    cli_history hist;
    cli_history_init(&hist);
    kg_dashboard_options o;
    kg_dashboard_options_init(&o);
    o.token = cli_env_token();
    o.log = log_line;
    char *redis_host = NULL;
    unsigned long long u;
    int opt, rc = KGMON_OK;
    optind = 1;
    opterr = 0;
    while (rc == KGMON_OK && (opt = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        if (opt >= OPT_PORT && optarg && !*optarg) {
            const struct option *t = table;
            while (t->name && t->val != opt)
                t++;
            rc = cli_usage_error("dashboard", "an empty value is not allowed for --%s", t->name);
            break;
        }
        switch (opt) {
        case OPT_PORT:
            if (!cli_parse_uint(optarg, 0, 65535, &u))
                rc = cli_usage_error("dashboard", "--port must be 0..65535 (got '%s')", optarg);
            o.port = (int)u;
            break;
        case OPT_BIND:
            o.bind = optarg;
            break;
        case OPT_REDIS:
            free(redis_host);
            redis_host = NULL;
            if (!cli_parse_hostport(optarg, 6379, &redis_host, &o.redis_port))
                rc = cli_usage_error("dashboard", "--redis needs HOST[:PORT] (got '%s')", optarg);
            o.redis_host = redis_host;
            break;
        case OPT_PREFIX:
            o.redis_prefix = optarg;
            break;
        case OPT_REPLAY:
            if (!cli_parse_uint(optarg, 0, 1000000, &u))
                rc = cli_usage_error("dashboard", "--redis-replay must be 0..1000000 entries (got '%s')", optarg);
            o.redis_replay = (size_t)u;
            break;
        case OPT_STALE:
            if (!cli_parse_double(optarg, 0.1, 86400.0 * 365, &o.stale_after))
                rc = cli_usage_error("dashboard", "--stale-after must be 0.1..31536000 seconds (got '%s')", optarg);
            break;
        case OPT_TOKEN:
            o.token = optarg;
            break;
        case OPT_ORIGIN:
            if (!cli_list_each(optarg, origin_word, NULL))
                rc = cli_usage_error("dashboard", "--allow-origin needs a comma list of origins "
                                     "such as http://host:8080 (or *), without empty words "
                                     "(got '%s')", optarg);
            o.allowed_origins = optarg;
            break;
        case CLI_OPT_DB:
        case CLI_OPT_RETAIN_DAYS:
        case CLI_OPT_RETAIN_MB:
            rc = cli_history_option(&hist, "dashboard", opt, optarg);
            break;
        case OPT_MAX_CONNS:
            if (!cli_parse_uint(optarg, 2, 1000000, &u))
                rc = cli_usage_error("dashboard", "--max-connections must be 2..1000000 (got '%s')", optarg);
            o.max_connections = (size_t)u;
            break;
        case OPT_MAX_CLIENTS:
            if (!cli_parse_uint(optarg, 1, 999999, &u))
                rc = cli_usage_error("dashboard", "--max-clients must be 1..999999 (got '%s')", optarg);
            o.max_clients = (unsigned)u;
            break;
        case OPT_PER_IP:
            if (!cli_parse_uint(optarg, 0, 999999, &u))
                rc = cli_usage_error("dashboard", "--max-clients-per-ip must be 0..999999 (got '%s')", optarg);
            o.max_clients_per_ip = (unsigned)u;
            break;
        case OPT_BODY_TIMEOUT:
            if (!cli_parse_double(optarg, 0.1, 3600, &o.body_timeout))
                rc = cli_usage_error("dashboard", "--body-timeout must be 0.1..3600 seconds (got '%s')", optarg);
            break;
        case OPT_USER_SERIES:
            if (!cli_parse_uint(optarg, 1, 10000000, &u))
                rc = cli_usage_error("dashboard", "--max-user-series must be 1..10000000 (got '%s')", optarg);
            o.max_user_series = (size_t)u;
            break;
        case OPT_WS_IDLE:
            if (!cli_parse_double(optarg, 1, 86400, &o.ws_idle_timeout))
                rc = cli_usage_error("dashboard", "--ws-idle-timeout must be 1..86400 seconds (got '%s')", optarg);
            break;
        case 'h':
            dashboard_usage(stdout);
            free(redis_host);
            cli_history_free(&hist);
            return KGMON_OK;
        default:
            rc = cli_usage_error("dashboard", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (rc == KGMON_OK && optind < argc)
        rc = cli_usage_error("dashboard", "unexpected argument '%s'", argv[optind]);
    if (rc == KGMON_OK && (rc = cli_history_resolve(&hist, "dashboard")) == KGMON_OK)
        cli_history_fill(&hist, &o);
    if (rc == KGMON_OK && o.max_clients >= o.max_connections)
        rc = cli_usage_error("dashboard", "--max-clients (%u) must be below --max-connections (%zu)",
                             o.max_clients, o.max_connections);
    if (rc != KGMON_OK) {
        free(redis_host);
        cli_history_free(&hist);
        return rc;
    }
    cli_catch_signals();
    /* A server uses what its hard file-descriptor limit allows (up to 64 Ki):
     * the usual soft limit of 1024 would cap --max-connections below its
     * default (the library lowers it to fit, with an info line). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 65536) {
        rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    kg_dashboard_t *dash;
    kg_error_t err = {0};
    if (kg_dashboard_new(&o, &dash, &err) != 0) {
        fprintf(stderr, "kgmon dashboard: cannot start: %s\n", err.message);
        free(redis_host);
        cli_history_free(&hist);
        return KGMON_FAILED;
    }
    printf("Dashboard: http://%s:%d/%s%s\n", strcmp(o.bind, "0.0.0.0") == 0 ? "127.0.0.1" : o.bind,
           kg_dashboard_port(dash), o.token ? "?token=" : "", o.token ? o.token : "");
    if (redis_host)
        printf("Subscribed to Redis at %s:%d\n", redis_host, o.redis_port);
    char line[1200];
    cli_history_describe(&o, line, sizeof line);
    printf("%s\n", line);
    printf("Press Ctrl-C to stop.\n");
    fflush(stdout);
    while (!cli_sleep_interruptible(3600)) {
    }
    fprintf(stderr, "kgmon dashboard: shutting down\n");
    kg_dashboard_free(dash);
    free(redis_host);
    cli_history_free(&hist);
    return KGMON_OK;
}
