/* dashboard/user_metrics.c - custom metrics of nodes as Prometheus families;
 * see user_metrics.h.
 *
 * Metric names and node names are user data, so this is where the number
 * of series is bounded, and where names are made into valid, distinct
 * Prometheus names: a family whose sample names would collide with another
 * family's (a gauge "x_count" beside a histogram "x", a counter "x" beside a
 * gauge "x_total") is refused rather than written twice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "user_metrics.h"
#include "util/buf.h"
#include "util/map.h"

/* From a millisecond (as seconds) to ten thousand (rows, tokens, bytes). */
const double kg__user_bucket_bounds[KG__USER_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,  1,    2.5,  5,
    10,    25,    50,   100,   250,  500,  1000, 2500, 5000, 10000};

struct kg__umetrics {
    size_t max_series;
    size_t n_series;
    uint64_t dropped;
    kg__user_family **families;
    size_t n_families, cap_families;
    kg_map by_name;            /* family name -> family (NULL in a copy) */
    kg_map by_key;             /* "family\x1fgraph\x1fnode" -> series (NULL in a copy) */
};

kg__umetrics *kg__umetrics_new(size_t max_series)
{
    kg__umetrics *u = calloc(1, sizeof *u);
    if (u)
        u->max_series = max_series;
    return u;
}

static void series_free(kg__user_series *s)
{
    if (s) {
        free(s->graph);
        free(s->node);
        free(s);
    }
}

static void family_free(kg__user_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_series; i++)
        series_free(f->series[i]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void kg__umetrics_free(kg__umetrics *u)
{
    if (!u)
        return;
    for (size_t i = 0; i < u->n_families; i++)
        family_free(u->families[i]);
    free(u->families);
    kg_map_free(&u->by_name);
    kg_map_free(&u->by_key);
    free(u);
}

const kg__user_family *const *kg__umetrics_families(const kg__umetrics *u, size_t *n)
{
    *n = u->n_families;
    return (const kg__user_family *const *)u->families;
}

size_t kg__umetrics_series(const kg__umetrics *u)
{
    return u->n_series;
}

uint64_t kg__umetrics_dropped(const kg__umetrics *u)
{
    return u->dropped;
}

/* ---- names -------------------------------------------------------------------- */

#define FAMILY_NAME_MAX (sizeof "kaygraph_user_" + KG_REPORT_NAME_MAX)

/* "kaygraph_user_" + `name` with every byte outside [A-Za-z0-9_] made '_';
 * a counter's "_total" is left to the rendering, so "x" and "x_total" are
 * one counter. */
static bool family_name(const char *name, kg_metric_kind kind, char out[FAMILY_NAME_MAX])
{
    size_t n = strlen(name);
    if (n == 0 || n > KG_REPORT_NAME_MAX)
        return false;
    memcpy(out, "kaygraph_user_", 14);
    char *o = out + 14;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_';
        *o++ = ok ? (char)*p : '_';
    }
    *o = '\0';
    size_t len = (size_t)(o - out);
    if (kind == KG_METRIC_COUNTER && len > 14 + 6 && strcmp(o - 6, "_total") == 0)
        o[-6] = '\0';
    return true;
}

/* The sample names a family writes: suffixes after its name. */
static const char *const *family_suffixes(kg_metric_kind kind)
{
    static const char *const counter[] = {"_total", NULL};
    static const char *const gauge[] = {"", NULL};
    static const char *const histogram[] = {"_bucket", "_sum", "_count", NULL};
    return kind == KG_METRIC_COUNTER ? counter : kind == KG_METRIC_HISTOGRAM ? histogram : gauge;
}

/* Would a family `name` of `kind` write a sample name another family writes? */
static bool family_clashes(const kg__umetrics *u, const char *name, kg_metric_kind kind)
{
    char mine[FAMILY_NAME_MAX + 8], theirs[FAMILY_NAME_MAX + 8];
    for (const char *const *a = family_suffixes(kind); *a; a++) {
        snprintf(mine, sizeof mine, "%s%s", name, *a);
        for (size_t f = 0; f < u->n_families; f++)
            for (const char *const *b = family_suffixes(u->families[f]->kind); *b; b++) {
                snprintf(theirs, sizeof theirs, "%s%s", u->families[f]->name, *b);
                if (strcmp(mine, theirs) == 0)
                    return true;
            }
    }
    return false;
}

/* ---- updates ------------------------------------------------------------------- */

static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 8;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = c;
    return true;
}

static kg__user_family *family_get(kg__umetrics *u, const kg__user_update *m)
{
    char name[FAMILY_NAME_MAX];
    if (!family_name(m->name, m->kind, name))
        return NULL;
    kg__user_family *f = kg_map_get(&u->by_name, name);
    if (f)
        return f->kind == m->kind ? f : NULL;
    if (u->n_series >= u->max_series || family_clashes(u, name, m->kind) ||
        !grow((void **)&u->families, &u->cap_families, u->n_families, sizeof *u->families))
        return NULL;
    const char *unit = m->unit ? m->unit : "";
    size_t hn = strlen(m->name) + strlen(unit) + 4;
    f = calloc(1, sizeof *f);
    if (f && (f->name = strdup(name)) && (f->help = malloc(hn)) &&
        kg_map_put(&u->by_name, name, f) == 0) {
        snprintf(f->help, hn, *unit ? "%s (%s)" : "%s", m->name, unit);
        f->kind = m->kind;
        u->families[u->n_families++] = f;
        return f;
    }
    family_free(f);
    return NULL;
}

static kg__user_series *series_get(kg__umetrics *u, kg__user_family *f, const char *graph,
                                   const char *node)
{
    kg_buf key = {0};
    kg_buf_printf(&key, "%s\x1f%s\x1f%s", f->name, graph, node);
    kg__user_series *s = key.failed ? NULL : kg_map_get(&u->by_key, key.data);
    if (!s && !key.failed && u->n_series < u->max_series &&
        grow((void **)&f->series, &f->cap_series, f->n_series, sizeof *f->series)) {
        s = calloc(1, sizeof *s);
        if (s && (s->graph = strdup(graph)) && (s->node = strdup(node)) &&
            kg_map_put(&u->by_key, key.data, s) == 0) {
            s->ts_ms = INT64_MIN;
            f->series[f->n_series++] = s;
            u->n_series++;
        } else {
            series_free(s);
            s = NULL;
        }
    }
    kg_buf_free(&key);
    return s;
}

int kg__umetrics_add(kg__umetrics *u, const kg__user_update *m)
{
    kg__user_family *f = (unsigned)m->kind <= KG_METRIC_HISTOGRAM && isfinite(m->value)
                             ? family_get(u, m)
                             : NULL;
    kg__user_series *s = f ? series_get(u, f, m->graph, m->node) : NULL;
    if (!s) {
        u->dropped++;
        return KG_EFULL;
    }
    switch (m->kind) {
    case KG_METRIC_COUNTER:
        if (m->value > 0)   /* an increment; a negative one would make it go down */
            s->value += m->value;
        break;
    case KG_METRIC_GAUGE:
        /* The newest value by the producer's clock, then seq: delivery
         * order is not production order. */
        if (m->ts_ms > s->ts_ms || (m->ts_ms == s->ts_ms && m->seq >= s->seq)) {
            s->value = m->value;
            s->ts_ms = m->ts_ms;
            s->seq = m->seq;
        }
        break;
    default:
        s->value += m->value;
        s->count++;
        for (size_t b = 0; b < KG__USER_BUCKETS; b++)
            if (m->value <= kg__user_bucket_bounds[b])
                s->buckets[b]++;
        break;
    }
    return 0;
}

/* ---- copies for the rendering --------------------------------------------------------- */

static kg__user_series *series_copy(const kg__user_series *s)
{
    kg__user_series *c = malloc(sizeof *c);
    if (!c)
        return NULL;
    *c = *s;
    c->graph = strdup(s->graph);
    c->node = strdup(s->node);
    if (!c->graph || !c->node) {
        series_free(c);
        return NULL;
    }
    return c;
}

static kg__user_family *family_copy(const kg__user_family *f)
{
    kg__user_family *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(f->name)) || !(c->help = strdup(f->help)) ||
        (f->n_series && !(c->series = calloc(f->n_series, sizeof *c->series)))) {
        family_free(c);
        return NULL;
    }
    c->kind = f->kind;
    c->cap_series = f->n_series;
    for (; c->n_series < f->n_series; c->n_series++)
        if (!(c->series[c->n_series] = series_copy(f->series[c->n_series]))) {
            family_free(c);
            return NULL;
        }
    return c;
}

kg__umetrics *kg__umetrics_copy(const kg__umetrics *u)
{
    kg__umetrics *c = kg__umetrics_new(u->max_series);
    if (!c || (u->n_families && !(c->families = calloc(u->n_families, sizeof *c->families)))) {
        kg__umetrics_free(c);
        return NULL;
    }
    c->cap_families = u->n_families;
    c->n_series = u->n_series;
    c->dropped = u->dropped;
    for (; c->n_families < u->n_families; c->n_families++)
        if (!(c->families[c->n_families] = family_copy(u->families[c->n_families]))) {
            kg__umetrics_free(c);
            return NULL;
        }
    return c;
}
