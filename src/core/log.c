/* log.c - where the engine's warnings go.
 *
 * The engine warns (it never fails) on things KayGraph warns about: an action
 * with no successor, an edge replaced.  Applications route the messages with
 * kg_log_set_handler(); the default prints to stderr like Python's warnings. */
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>

#include "core/internal.h"
#include "util/log.h"

static void log_to_stderr(void *ud, kg_log_level level, const char *msg)
{
    (void)ud;
    static const char *const names[] = {"error", "warning", "info"};
    fprintf(stderr, "kaygraph: %s: %s\n", names[level <= KG_LOG_INFO ? level : KG_LOG_INFO], msg);
}

/* Warnings are rare, so a mutex is the simplest way to swap the function and
 * its user data as one pair; the handler itself is called outside the lock. */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static kg_log_fn handler_fn = log_to_stderr;
static void *handler_ud;

void kg_log_set_handler(kg_log_fn fn, void *ud)
{
    pthread_mutex_lock(&handler_lock);
    handler_fn = fn ? fn : log_to_stderr;
    handler_ud = fn ? ud : NULL;
    pthread_mutex_unlock(&handler_lock);
}

void kg__log(kg_log_level level, const char *fmt, ...)
{
    pthread_mutex_lock(&handler_lock);
    kg_log_fn fn = handler_fn;
    void *ud = handler_ud;
    pthread_mutex_unlock(&handler_lock);
    va_list ap;
    va_start(ap, fmt);
    kg_log_tov(fn, ud, level, fmt, ap);
    va_end(ap);
}
