/* kaygraph/error.h - error codes and the error value every failing call fills.
 *
 * Errors are values (libuv style): functions return 0 on success or a negative
 * KG_E* code.  The codes come from one X-macro list, so the enum, kg_strerror()
 * and kg_err_name() can never disagree.  Where a plain code is not enough (a
 * node step failed, a parser rejected input) the caller passes a kg_error_t
 * that the callee fills with a type name and a human-readable message.
 * There is no global errno-like state anywhere in the library. */
#ifndef KAYGRAPH_ERROR_H
#define KAYGRAPH_ERROR_H

#include <stdarg.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define KG_ERRNO_MAP(X)                                                     \
    X(NOMEM, -1, "out of memory")                                           \
    X(INVAL, -2, "invalid argument")                                        \
    X(NODE, -3, "a node step failed")                                       \
    X(NOTFOUND, -4, "not found")                                            \
    X(FULL, -5, "queue or buffer full")                                     \
    X(CLOSED, -6, "closed or stopped")                                      \
    X(TIMEOUT, -7, "timed out")                                             \
    X(IO, -8, "input/output error")                                         \
    X(PROTO, -9, "protocol error")                                          \
    X(BACKEND, -10, "monitoring backend failed")                            \
    X(CANCELED, -11, "operation canceled")                                  \
    X(RANGE, -12, "value out of range")                                     \
    X(EXISTS, -13, "already exists")                                        \
    X(BUSY, -14, "resource busy")                                           \
    X(PARSE, -15, "malformed input")                                        \
    X(CONNECT, -16, "connection failed")                                    \
    X(UNSUPPORTED, -17, "operation not supported")

typedef enum kg_errno {
    KG_OK = 0,
#define KG__ERR_ENUM(name, value, desc) KG_E##name = (value),
    KG_ERRNO_MAP(KG__ERR_ENUM)
#undef KG__ERR_ENUM
} kg_errno;

/* Text for a code: "out of memory".  Never NULL; unknown codes give
 * "unknown error".  Returns a static string. */
KG_API const char *kg_strerror(int code);

/* Symbolic name for a code: "KG_ENOMEM".  Never NULL. Static string. */
KG_API const char *kg_err_name(int code);

#define KG_ERROR_TYPE_MAX 48
#define KG_ERROR_MESSAGE_MAX 240

/* A failure, as a value.  `code` is a KG_E* code (KG_ENODE for failures a
 * node reported itself), `type` a short class name chosen by whoever failed
 * ("ValueError", "TimeoutError", "ParseError"), `message` the detail.
 * Both strings are always NUL-terminated; longer text is truncated. */
typedef struct kg_error {
    int code;
    char type[KG_ERROR_TYPE_MAX];
    char message[KG_ERROR_MESSAGE_MAX];
} kg_error_t;

/* Fill `err` (may be NULL: then nothing happens) and return `code`, so a
 * failing function can `return kg_error_set(err, KG_EINVAL, "ArgumentError",
 * "batch_size must be > 0");`.  `type` NULL means the code's name. */
KG_API int kg_error_set(kg_error_t *err, int code, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
KG_API int kg_error_setv(kg_error_t *err, int code, const char *type, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

/* Reset to "no error" (code 0, empty strings). */
KG_API void kg_error_clear(kg_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
