/* util/log.h - one way to write a log line: format it (at most
 * KG_LOG_LINE_MAX bytes, longer lines are cut) and hand it to a callback of
 * the public kg_log_fn type.  The engine's process-wide handler, the
 * dashboard's per-instance callback, its Redis source and its history store
 * all log through this. */
#ifndef KG_UTIL_LOG_H
#define KG_UTIL_LOG_H

#include <stdarg.h>

#include "kaygraph/node.h"

#define KG_LOG_LINE_MAX 512

/* Nothing happens when `fn` is NULL. */
void kg_log_to(kg_log_fn fn, void *ud, kg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kg_log_tov(kg_log_fn fn, void *ud, kg_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
