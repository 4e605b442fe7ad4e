/* report.c - what a node reports about itself from inside a step: log
 * lines, custom metrics, progress and custom events (node.h, kg_ctx_log &
 * co.).
 *
 * Each call first asks where the report goes, from what the run's observer
 * said it wants (kg_observer.user_mask: a bit per kind of report and per log
 * level, so one AND covers both the name and the minimum level), and only
 * then formats anything.  A report nobody takes therefore costs a few loads
 * and a branch; so does one with no observer at all, apart from log lines,
 * which then go to the log handler (log.c) when their level is wanted
 * there.  Reports never fail the node: bad arguments drop the report. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "util/buf.h"
#include "util/clock.h"

typedef enum report_route {
    ROUTE_DROP,       /* filtered out */
    ROUTE_HANDLER,    /* nobody is in charge of reports: log lines go to the handler */
    ROUTE_OBSERVER,   /* the run's observer takes it */
} report_route;

static inline report_route route_of(const kg_ctx_t *ctx, uint32_t bit)
{
    const kg_observer *obs = ctx->run->obs;
    if (!obs || !obs->user_mask || ctx->unobserved)
        return ROUTE_HANDLER;
    if (!(obs->user_mask & bit))
        return ROUTE_DROP;
    if (obs->user_accept && !obs->user_accept(obs->ud, ctx->run->root_run_id))
        return ROUTE_DROP;
    return ROUTE_OBSERVER;
}

/* Levels outside the enum count as debug (the least severe). */
static kg_log_level level_clamp(kg_log_level level)
{
    return (unsigned)level > KG_LOG_DEBUG ? KG_LOG_DEBUG : level;
}

/* `s` cut to `max` bytes into `buf` (max + 1 bytes) when longer; returns the
 * text to use (s itself when it fits). */
static const char *text_capped(const char *s, size_t max, char *buf, bool *cut)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return s;
    n = kg_utf8_prefix(s, n, max);
    memcpy(buf, s, n);
    buf[n] = '\0';
    *cut = true;
    return buf;
}

static void report_send(const kg_ctx_t *ctx, kg_obs_point point, const kg_obs_user *u)
{
    const kg_observer *obs = ctx->run->obs;
    kg_obs_event ev = {.point = point, .time_ns = (uint64_t)kg_clock_mono_ns(), .user = u};
    kg__obs_fill(&ev, ctx);
    obs->on_event(obs->ud, &ev);
}

/* ---- log lines ------------------------------------------------------------------ */

/* No observer takes the line: "<node path>: <message> <fields as JSON>" to
 * the log handler. */
static void log_to_handler(const kg_ctx_t *ctx, kg_log_level level, const char *msg,
                           json_t *fields)
{
    const char *path = kg_node_path(ctx->node);
    char *text = fields ? json_dumps(fields, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t tn = text ? strnlen(text, KG_LOG_FIELDS_MAX) : 0;
    char *line = NULL;
    if (asprintf(&line, "%s: %s%s%.*s", path ? path : ctx->node->id, msg, tn ? " " : "",
                 (int)tn, text ? text : "") >= 0)
        kg__log_emit(level, line);
    free(line);
    free(text);
}

/* Where a line at `level` goes, ROUTE_DROP when nowhere: asked before
 * va_start, so that a filtered call is a few loads and a return. */
static inline report_route log_route(const kg_ctx_t *ctx, kg_log_level level)
{
    report_route route = route_of(ctx, KG_USER_LOG(level));
    return route == ROUTE_HANDLER && !kg__log_wanted(level) ? ROUTE_DROP : route;
}

static void log_line(kg_ctx_t *ctx, report_route route, kg_log_level level, json_t *fields,
                     const char *fmt, va_list ap)
{
    /* One byte beyond the limit, so a cut can see whether it splits a
     * UTF-8 sequence. */
    char msg[KG_LOG_MESSAGE_MAX + 2];
    int n = vsnprintf(msg, sizeof msg, fmt ? fmt : "", ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    bool cut = len > KG_LOG_MESSAGE_MAX;
    if (cut)   /* msg holds one byte beyond the limit: enough to see a cut sequence */
        len = kg_utf8_prefix(msg, KG_LOG_MESSAGE_MAX + 1, KG_LOG_MESSAGE_MAX);
    msg[len] = '\0';
    /* Fields must be an object; anything else is kept under "value". */
    json_t *wrapped = fields && !json_is_object(fields) ? json_pack("{s:O}", "value", fields) : NULL;
    json_t *f = wrapped ? wrapped : json_is_object(fields) ? fields : NULL;
    if (route == ROUTE_HANDLER) {
        log_to_handler(ctx, level, msg, f);
    } else {
        kg_obs_user u = {.level = level, .message = msg, .message_len = len, .truncated = cut,
                         .fields = f};
        report_send(ctx, KG_OBS_LOG, &u);
    }
    json_decref(wrapped);
}

void kg_ctx_log(kg_ctx_t *ctx, kg_log_level level, const char *fmt, ...)
{
    level = level_clamp(level);
    report_route route = log_route(ctx, level);
    if (route == ROUTE_DROP)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(ctx, route, level, NULL, fmt, ap);
    va_end(ap);
}

void kg_ctx_log_fields(kg_ctx_t *ctx, kg_log_level level, json_t *fields, const char *fmt, ...)
{
    level = level_clamp(level);
    report_route route = log_route(ctx, level);
    if (route == ROUTE_DROP)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line(ctx, route, level, fields, fmt, ap);
    va_end(ap);
}

void kg_ctx_log_fields_new(kg_ctx_t *ctx, kg_log_level level, json_t *fields, const char *fmt,
                           ...)
{
    level = level_clamp(level);
    report_route route = log_route(ctx, level);
    if (route != ROUTE_DROP) {
        va_list ap;
        va_start(ap, fmt);
        log_line(ctx, route, level, fields, fmt, ap);
        va_end(ap);
    }
    json_decref(fields);
}

bool kg_ctx_log_enabled(const kg_ctx_t *ctx, kg_log_level level)
{
    return log_route(ctx, level_clamp(level)) != ROUTE_DROP;
}

/* ---- metrics, progress, custom events ---------------------------------------------- */

const char *kg_metric_kind_name(kg_metric_kind kind)
{
    static const char *const names[] = {"counter", "gauge", "histogram"};
    return (unsigned)kind <= KG_METRIC_HISTOGRAM ? names[kind] : "unknown";
}

void kg_ctx_metric(kg_ctx_t *ctx, const char *name, double value, const char *unit,
                   kg_metric_kind kind)
{
    if (route_of(ctx, KG_USER_METRIC) != ROUTE_OBSERVER)
        return;
    if (!name || !*name || !isfinite(value) || (unsigned)kind > KG_METRIC_HISTOGRAM ||
        (kind == KG_METRIC_COUNTER && value < 0))
        return;
    char name_buf[KG_REPORT_NAME_MAX + 1], unit_buf[KG_REPORT_UNIT_MAX + 1];
    kg_obs_user u = {.value = value, .kind = kind};
    u.name = text_capped(name, KG_REPORT_NAME_MAX, name_buf, &u.truncated);
    u.unit = text_capped(unit ? unit : "", KG_REPORT_UNIT_MAX, unit_buf, &u.truncated);
    report_send(ctx, KG_OBS_METRIC, &u);
}

void kg_ctx_progress(kg_ctx_t *ctx, double done, double total)
{
    if (route_of(ctx, KG_USER_PROGRESS) != ROUTE_OBSERVER)
        return;
    if (!isfinite(done) || !isfinite(total) || done < 0 || total < 0)
        return;
    kg_obs_user u = {.value = done, .total = total};
    report_send(ctx, KG_OBS_PROGRESS, &u);
}

static void custom_event(kg_ctx_t *ctx, const char *name, json_t *data)
{
    if (route_of(ctx, KG_USER_CUSTOM) != ROUTE_OBSERVER || !name || !*name)
        return;
    char name_buf[KG_REPORT_NAME_MAX + 1];
    kg_obs_user u = {.data = data ? data : json_null()};
    u.name = text_capped(name, KG_REPORT_NAME_MAX, name_buf, &u.truncated);
    report_send(ctx, KG_OBS_CUSTOM, &u);
}

void kg_ctx_event(kg_ctx_t *ctx, const char *name, json_t *data)
{
    custom_event(ctx, name, data);
}

void kg_ctx_event_new(kg_ctx_t *ctx, const char *name, json_t *data)
{
    custom_event(ctx, name, data);
    json_decref(data);
}
