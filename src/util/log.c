/* util/log.c - see log.h. */
#include <stdio.h>

#include "util/log.h"

void kg_log_tov(kg_log_fn fn, void *ud, kg_log_level level, const char *fmt, va_list ap)
{
    if (!fn)
        return;
    char line[KG_LOG_LINE_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    fn(ud, level, line);
}

void kg_log_to(kg_log_fn fn, void *ud, kg_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kg_log_tov(fn, ud, level, fmt, ap);
    va_end(ap);
}
