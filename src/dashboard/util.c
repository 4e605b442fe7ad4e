/* dashboard/util.c - small containers the dashboard is built from.
 *
 * A string builder that records allocation failure instead of aborting, an
 * immutable refcounted text (one copy of an event's JSON shared by every
 * store and client), a chained string map, an intrusive list, and clocks.
 * Kept here so the concern files stay about their concern. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash_internal.h"

/* ---- string builder -------------------------------------------------------- */

void kg__sb_init(kg__sb *sb)
{
    memset(sb, 0, sizeof *sb);
}

void kg__sb_free(kg__sb *sb)
{
    free(sb->buf);
    kg__sb_init(sb);
}

void kg__sb_reset(kg__sb *sb)
{
    /* A builder reused by the service thread must not keep a one-off huge
     * buffer forever: give back anything over 1 MiB. */
    if (sb->cap > (1u << 20)) {
        free(sb->buf);
        sb->buf = NULL;
        sb->cap = 0;
    }
    sb->len = 0;
    sb->oom = false;
    if (sb->buf)
        sb->buf[0] = '\0';
}

bool kg__sb_reserve(kg__sb *sb, size_t extra)
{
    if (sb->oom)
        return false;
    if (extra > SIZE_MAX / 2 - sb->len) {
        sb->oom = true;
        return false;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(sb->buf, cap);
    if (!p) {
        sb->oom = true;
        return false;
    }
    sb->buf = p;
    sb->cap = cap;
    return true;
}

void kg__sb_add(kg__sb *sb, const void *p, size_t n)
{
    if (!kg__sb_reserve(sb, n))
        return;
    if (n)
        memcpy(sb->buf + sb->len, p, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void kg__sb_puts(kg__sb *sb, const char *s)
{
    kg__sb_add(sb, s, strlen(s));
}

void kg__sb_printf(kg__sb *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        kg__sb_add(sb, tmp, (size_t)n);
        return;
    }
    if (!kg__sb_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void kg__sb_json_str(kg__sb *sb, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    kg__sb_add(sb, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\' && *p != 0x7f)
            p++;
        kg__sb_add(sb, run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
        switch (*p) {
        case '"': kg__sb_add(sb, "\\\"", 2); break;
        case '\\': kg__sb_add(sb, "\\\\", 2); break;
        case '\n': kg__sb_add(sb, "\\n", 2); break;
        case '\r': kg__sb_add(sb, "\\r", 2); break;
        case '\t': kg__sb_add(sb, "\\t", 2); break;
        default: kg__sb_add(sb, esc, 6); break;
        }
        p++;
    }
    kg__sb_add(sb, "\"", 1);
}

static int kg__sb_dump_cb(const char *buf, size_t size, void *data)
{
    kg__sb *sb = data;
    kg__sb_add(sb, buf, size);
    return sb->oom ? -1 : 0;
}

void kg__sb_json(kg__sb *sb, const json_t *j)
{
    if (!j) {
        kg__sb_puts(sb, "null");
        return;
    }
    if (json_dump_callback(j, kg__sb_dump_cb, sb, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        sb->oom = true;
}

char *kg__sb_steal(kg__sb *sb, size_t *len)
{
    if (sb->oom || !kg__sb_reserve(sb, 0)) {
        kg__sb_free(sb);
        return NULL;
    }
    char *p = sb->buf;
    if (len)
        *len = sb->len;
    kg__sb_init(sb);
    return p;
}

/* ---- refcounted messages ------------------------------------------------------ */

kg__msg *kg__msg_new(const char *p, size_t len)
{
    if (len > SIZE_MAX - sizeof(kg__msg) - 1)
        return NULL;
    kg__msg *m = malloc(sizeof *m + len + 1);
    if (!m)
        return NULL;
    atomic_init(&m->refs, 1);
    m->len = len;
    memcpy(m->data, p, len);
    m->data[len] = '\0';
    return m;
}

kg__msg *kg__msg_ref(kg__msg *m)
{
    /* Relaxed is enough to take a reference: whoever hands us the pointer
     * already holds one, so the object cannot go away meanwhile. */
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void kg__msg_unref(kg__msg *m)
{
    if (!m)
        return;
    /* acq_rel: the last owner must see every other owner's reads finished
     * before it frees the text. */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* ---- bodies: a long text as a list of shared texts ----------------------------- */

void kg__body_init(kg__body *b)
{
    memset(b, 0, sizeof *b);
}

void kg__body_free(kg__body *b)
{
    for (size_t i = 0; i < b->n; i++)
        kg__msg_unref(b->v[i].m);
    free(b->v);
    kg__body_init(b);
}

void kg__body_add(kg__body *b, kg__msg *m, bool comma)
{
    if (b->oom || !m)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        kg__part *v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].m = kg__msg_ref(m);
    b->v[b->n].comma = comma;
    b->n++;
    b->len += m->len + (comma ? 1 : 0);
}

void kg__body_text(kg__body *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    kg__msg *m = kg__msg_new(p, n);
    if (!m) {
        b->oom = true;
        return;
    }
    kg__body_add(b, m, false);
    kg__msg_unref(m);
}

size_t kg__body_copy(kg__body *b, kg__sb *out, size_t max)
{
    size_t copied = 0;
    while (b->i < b->n && copied < max && !out->oom) {
        const kg__part *pt = &b->v[b->i];
        /* Byte 0 of a part that follows a comma is the comma. */
        size_t plen = pt->m->len + (pt->comma ? 1 : 0);
        if (b->off == 0 && pt->comma) {
            kg__sb_add(out, ",", 1);
            b->off = 1;
            copied++;
            continue;
        }
        size_t from = b->off - (pt->comma ? 1 : 0);
        size_t n = plen - b->off;
        if (n > max - copied)
            n = max - copied;
        kg__sb_add(out, pt->m->data + from, n);
        b->off += n;
        copied += n;
        if (b->off == plen) {
            /* Written out: let the text go now rather than with the body. */
            kg__msg_unref(b->v[b->i].m);
            b->v[b->i].m = NULL;
            b->i++;
            b->off = 0;
        }
    }
    b->sent += copied;
    return copied;
}

/* ---- string map --------------------------------------------------------------- */

uint64_t kg__hash(const char *s, size_t n)
{
    /* FNV-1a, then a final mix so that the low bits used for buckets depend on
     * every input byte. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

void kg__map_free(kg__map *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        kg__mapent *e = m->b[i];
        while (e) {
            kg__mapent *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

static kg__mapent **kg__map_slot(const kg__map *m, const char *key, uint64_t h)
{
    if (!m->nb)
        return NULL;
    kg__mapent **pp = &m->b[h & (m->nb - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *kg__map_get(const kg__map *m, const char *key)
{
    kg__mapent **pp = kg__map_slot(m, key, kg__hash(key, strlen(key)));
    return pp && *pp ? (*pp)->val : NULL;
}

static int kg__map_grow(kg__map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    kg__mapent **b = calloc(nb, sizeof *b);
    if (!b)
        return KG_ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        kg__mapent *e = m->b[i];
        while (e) {
            kg__mapent *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int kg__map_put(kg__map *m, const char *key, void *val)
{
    size_t klen = strlen(key);
    uint64_t h = kg__hash(key, klen);
    kg__mapent **pp = kg__map_slot(m, key, h);
    if (pp && *pp) {
        (*pp)->val = val;
        return 0;
    }
    if (m->n + 1 > m->nb) {
        if (kg__map_grow(m) != 0)
            return KG_ENOMEM;
    }
    kg__mapent *e = malloc(sizeof *e + klen + 1);
    if (!e)
        return KG_ENOMEM;
    e->hash = h;
    e->val = val;
    memcpy(e->key, key, klen + 1);
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    m->n++;
    return 0;
}

void *kg__map_del(kg__map *m, const char *key)
{
    kg__mapent **pp = kg__map_slot(m, key, kg__hash(key, strlen(key)));
    if (!pp || !*pp)
        return NULL;
    kg__mapent *e = *pp;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->n--;
    return v;
}

/* ---- list ----------------------------------------------------------------------- */

void kg__list_init(kg__link *head)
{
    head->prev = head->next = head;
}

void kg__list_push_back(kg__link *head, kg__link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

void kg__list_remove(kg__link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = l;
}

bool kg__list_empty(const kg__link *head)
{
    return head->next == head;
}

/* ---- clocks ------------------------------------------------------------------------ */

double kg__mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double kg__wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kg__iso_time(double unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    int ms = (int)((unix_s - (double)t) * 1000.0);
    if (ms < 0)
        ms = 0;
    if (ms > 999)
        ms = 999;
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%03dZ", date, ms);
}

static bool kg__digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int64_t kg__parse_iso_ms(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM) */
    int Y, M, D, h, m, sec;
    if (strlen(s) < 19 || !kg__digits(s, 4, &Y) || s[4] != '-' || !kg__digits(s + 5, 2, &M) ||
        s[7] != '-' || !kg__digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') ||
        !kg__digits(s + 11, 2, &h) || s[13] != ':' || !kg__digits(s + 14, 2, &m) ||
        s[16] != ':' || !kg__digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (!digits)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!kg__digits(p + 1, 2, &oh) || p[3] != ':' || !kg__digits(p + 4, 2, &om))
            return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p)
        return -1;
    /* Days from civil (Howard Hinnant's algorithm): timegm without the TZ
     * environment games. */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    int64_t t = days * 86400 + h * 3600 + m * 60 + sec - off;
    return t * 1000 + ms;
}
