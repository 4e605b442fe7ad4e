/* error.c - error codes to text, and filling kg_error_t values.
 *
 * Everything here derives from KG_ERRNO_MAP in kaygraph/error.h so that adding
 * a code is a one-line change. */
#include <stdio.h>
#include <string.h>

#include "kaygraph/error.h"

const char *kg_strerror(int code)
{
    switch (code) {
    case KG_OK:
        return "success";
#define KG__ERR_TEXT(name, value, desc) \
    case KG_E##name:                    \
        return desc;
        KG_ERRNO_MAP(KG__ERR_TEXT)
#undef KG__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *kg_err_name(int code)
{
    switch (code) {
    case KG_OK:
        return "KG_OK";
#define KG__ERR_NAME(name, value, desc) \
    case KG_E##name:                    \
        return "KG_E" #name;
        KG_ERRNO_MAP(KG__ERR_NAME)
#undef KG__ERR_NAME
    default:
        return "KG_EUNKNOWN";
    }
}

int kg_error_setv(kg_error_t *err, int code, const char *type, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->type, sizeof err->type, "%s", type ? type : kg_err_name(code));
    if (fmt)
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    else
        snprintf(err->message, sizeof err->message, "%s", kg_strerror(code));
    return code;
}

int kg_error_set(kg_error_t *err, int code, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kg_error_setv(err, code, type, fmt, ap);
    va_end(ap);
    return code;
}

void kg_error_clear(kg_error_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}
