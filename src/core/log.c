/* log.c - where the engine's warnings and unmonitored node log lines go.
 *
 * The engine warns (it never fails) on things KayGraph warns about: an action
 * with no successor, an edge replaced.  A node's own log lines (kg_ctx_log)
 * come here too when no monitor takes them.  Applications route the
 * messages with kg_log_set_handler(); the default prints to stderr like
 * Python's warnings. */
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "util/log.h"

static const char *const level_names[] = {"error", "warning", "info", "debug"};

const char *kg_log_level_name(kg_log_level level)
{
    return (unsigned)level <= KG_LOG_DEBUG ? level_names[level] : "unknown";
}

int kg_log_level_parse(const char *s)
{
    for (int i = 0; s && i <= KG_LOG_DEBUG; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return s && strcmp(s, "warn") == 0 ? KG_LOG_WARN : -1;
}

static void log_to_stderr(void *ud, kg_log_level level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "kaygraph: %s: %s\n", kg_log_level_name(level), msg);
}

/* Warnings are rare, so a mutex is the simplest way to swap the function and
 * its user data as one pair; the handler itself is called outside the lock. */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static kg_log_fn handler_fn = log_to_stderr;
static void *handler_ud;
/* Read on every unmonitored kg_ctx_log call: relaxed, a plain load. */
_Atomic int kg__log_max_level = KG_LOG_INFO;

void kg_log_set_handler(kg_log_fn fn, void *ud)
{
    pthread_mutex_lock(&handler_lock);
    handler_fn = fn ? fn : log_to_stderr;
    handler_ud = fn ? ud : NULL;
    pthread_mutex_unlock(&handler_lock);
}

void kg_log_set_level(kg_log_level level)
{
    atomic_store_explicit(&kg__log_max_level, (int)level, memory_order_relaxed);
}

static kg_log_fn handler_get(void **ud)
{
    pthread_mutex_lock(&handler_lock);
    kg_log_fn fn = handler_fn;
    *ud = handler_ud;
    pthread_mutex_unlock(&handler_lock);
    return fn;
}

void kg__log_emit(kg_log_level level, const char *msg)
{
    void *ud;
    kg_log_fn fn = handler_get(&ud);
    fn(ud, level, msg);
}

void kg__log(kg_log_level level, const char *fmt, ...)
{
    void *ud;
    kg_log_fn fn = handler_get(&ud);
    va_list ap;
    va_start(ap, fmt);
    kg_log_tov(fn, ud, level, fmt, ap);
    va_end(ap);
}
