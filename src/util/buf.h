/* util/buf.h - the one growable byte buffer of the project, and the writers
 * that fill it.
 *
 * Events, Redis pipelines, webhook bodies, WebSocket frames and every JSON
 * text the libraries write go through it.  It never aborts: an allocation
 * failure sets `failed`, later appends do nothing, and the caller checks
 * once at the end.  The contents are NUL-terminated whenever `data` is not
 * NULL.  A zero-initialised kg_buf is an empty buffer.
 *
 * JSON strings have one behaviour everywhere: control characters, quote and
 * backslash are escaped, valid UTF-8 is copied, and every byte that is not
 * part of valid UTF-8 becomes U+FFFD, so the output is valid JSON whatever
 * the input (an event's ids come from users' code).
 *
 * The writers (kg_write_*) write at a cursor into space the caller reserved
 * with kg_buf_reserve: the serialiser reserves an event's worst case once
 * and writes through them, which is what keeps it at a few hundred
 * instructions per event. */
#ifndef KG_UTIL_BUF_H
#define KG_UTIL_BUF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kg_buf {
    char *data;
    size_t len, cap;
    bool failed;   /* an allocation failed: the contents are incomplete */
} kg_buf;

void kg_buf_init(kg_buf *b);   /* the same as zeroing it */
/* Empty the buffer for reuse; a buffer that grew past 1 MiB is given back,
 * so one huge message does not pin its memory for the life of a thread. */
void kg_buf_reset(kg_buf *b);
void kg_buf_free(kg_buf *b);
/* Room for `extra` more bytes and the NUL; false when that failed. */
bool kg_buf_reserve(kg_buf *b, size_t extra);
void kg_buf_append(kg_buf *b, const void *p, size_t n);
void kg_buf_puts(kg_buf *b, const char *s);
void kg_buf_printf(kg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kg_buf_u64(kg_buf *b, uint64_t v);
/* `s[0..n)` as a JSON string literal, quotes included (see above). */
void kg_buf_json_string(kg_buf *b, const char *s, size_t n);
void kg_buf_json_cstr(kg_buf *b, const char *s);   /* the same for a C string */
/* A jansson value as compact JSON; NULL writes null. */
void kg_buf_json(kg_buf *b, const json_t *j);
/* Take the contents (malloc'd, NUL-terminated; *len when not NULL) and leave
 * the buffer empty.  NULL when an allocation failed. */
char *kg_buf_steal(kg_buf *b, size_t *len);

/* ---- writers at a cursor: each returns the new end ---------------------- */

/* "00" "01" ... "99": two decimal digits at a time. */
extern const char kg_digit_pairs[201];
#define KG_U64_MAX_DIGITS 20
char *kg_write_u64(char *o, uint64_t v);
/* The caller reserved KG_JSON_STRING_MAX(n) bytes. */
#define KG_JSON_STRING_MAX(n) ((n) * 6 + 2)
char *kg_write_json_string(char *o, const char *s, size_t n);

#endif
