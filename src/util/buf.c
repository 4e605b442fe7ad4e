/* util/buf.c - see buf.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define KG__BUF_MIN 256
#define KG__BUF_KEEP (1u << 20)

void kg_buf_init(kg_buf *b)
{
    memset(b, 0, sizeof *b);
}

bool kg_buf_reserve(kg_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : KG__BUF_MIN;
    while (cap < need)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void kg_buf_reset(kg_buf *b)
{
    if (b->cap > KG__BUF_KEEP) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

void kg_buf_free(kg_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void kg_buf_append(kg_buf *b, const void *p, size_t n)
{
    if (!kg_buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void kg_buf_puts(kg_buf *b, const char *s)
{
    kg_buf_append(b, s, strlen(s));
}

void kg_buf_printf(kg_buf *b, const char *fmt, ...)
{
    /* Most formatted pieces are short: format once into the stack and copy,
     * and format twice (measure, then write) only when they are not. */
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        kg_buf_append(b, tmp, (size_t)n);
        return;
    }
    if (!kg_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char kg_digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
                                 "25262728293031323334353637383940414243444546474849"
                                 "50515253545556575859606162636465666768697071727374"
                                 "75767778798081828384858687888990919293949596979899";

static const uint64_t pow10s[20] = {1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u,
                                     100000000u, 1000000000u, 10000000000u, 100000000000u,
                                     1000000000000u, 10000000000000u, 100000000000000u,
                                     1000000000000000u, 10000000000000000u,
                                     100000000000000000u, 1000000000000000000u,
                                     10000000000000000000u};

/* Decimal digits of v: from its bit length (log10(2) ~ 1233/4096), then
 * one comparison.  (v | 1 has as many digits as v, and 0 has one.) */
static unsigned digits_of(uint64_t v)
{
    v |= 1;
    unsigned bits = 64 - (unsigned)__builtin_clzll(v);
    unsigned n = (bits * 1233) >> 12;
    return n + (v >= pow10s[n]);
}

/* Digits written from the end, two at a time, straight into the output. */
char *kg_write_u64(char *o, uint64_t v)
{
    unsigned n = digits_of(v);
    char *p = o + n;
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        p -= 2;
        memcpy(p, kg_digit_pairs + k, 2);
    }
    if (v >= 10)
        memcpy(p - 2, kg_digit_pairs + v * 2, 2);
    else
        p[-1] = (char)('0' + v);
    return o + n;
}

void kg_buf_u64(kg_buf *b, uint64_t v)
{
    if (kg_buf_reserve(b, KG_U64_MAX_DIGITS)) {
        b->len = (size_t)(kg_write_u64(b->data + b->len, v) - b->data);
        b->data[b->len] = '\0';
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Most strings (ids, names) need no escaping: copied in one go.  What
 * needs it: control characters, quote, backslash, and every non-ASCII byte
 * (checked as UTF-8 by the slow path).  Branch-free, so it vectorises. */
static bool json_plain(const unsigned char *s, size_t n)
{
    unsigned any = 0;
    for (size_t i = 0; i < n; i++)
        any |= (unsigned)(s[i] < 0x20) | (unsigned)(s[i] >= 0x80) | (unsigned)(s[i] == '"') |
               (unsigned)(s[i] == '\\');
    return !any;
}

/* One byte that needs escaping, or one UTF-8 sequence, at s; *used gets
 * how many input bytes it took. */
static char *json_escape_one(char *o, const unsigned char *s, size_t avail, size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    *used = 1;
    if (c == '"' || c == '\\') {
        *o++ = '\\';
        *o++ = (char)c;
    } else if (c < 0x20) {
        const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
        if (esc) {
            memcpy(o, esc, 2);
            return o + 2;
        }
        memcpy(o, "\\u00", 4);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        o += 6;
    } else if (c < 0x80) {
        *o++ = (char)c;
    } else {
        size_t len = utf8_seq_len(s, avail);
        if (len) {
            memcpy(o, s, len);
            *used = len;
            o += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);   /* U+FFFD for a byte that is not UTF-8 */
            o += 3;
        }
    }
    return o;
}

char *kg_write_json_string(char *o, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    *o++ = '"';
    if (json_plain(s, n)) {
        memcpy(o, s, n);
        o += n;
    } else {
        for (size_t i = 0, used; i < n; i += used)
            o = json_escape_one(o, s + i, n - i, &used);
    }
    *o++ = '"';
    return o;
}

void kg_buf_json_string(kg_buf *b, const char *s, size_t n)
{
    if (!kg_buf_reserve(b, KG_JSON_STRING_MAX(n)))
        return;
    char *o = kg_write_json_string(b->data + b->len, s, n);
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void kg_buf_json_cstr(kg_buf *b, const char *s)
{
    kg_buf_json_string(b, s, strlen(s));
}

static int dump_cb(const char *p, size_t size, void *data)
{
    kg_buf *b = data;
    kg_buf_append(b, p, size);
    return b->failed ? -1 : 0;
}

void kg_buf_json(kg_buf *b, const json_t *j)
{
    if (!j) {
        kg_buf_puts(b, "null");
        return;
    }
    if (json_dump_callback(j, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        b->failed = true;
}

char *kg_buf_steal(kg_buf *b, size_t *len)
{
    if (b->failed || !kg_buf_reserve(b, 0)) {
        kg_buf_free(b);
        return NULL;
    }
    char *p = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}
