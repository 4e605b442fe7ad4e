/* mock.c - the in-memory backend: counts and keeps what it receives, and can
 * be told to fail, to be slow or to look disconnected.
 *
 * It is a product feature (dry runs, `kgmon demo`'s default, a breakdown of
 * what a workflow emits) and the tool tests use to inject faults into the
 * dispatcher.  It never stands in for Redis or HTTP in their own tests. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kaygraph/backends.h"
#include "kaygraph/monitor.h"

typedef struct mock {
    pthread_mutex_t lock;          /* guards the kept ring and counters */
    char **kept;                   /* ring of JSON texts, `cap` slots */
    size_t cap, next, n_kept;
    bool keep_json;
    uint64_t by_name[KG_EVENT_NAME_COUNT + 1];   /* last slot: unknown names */
    const char *names[KG_EVENT_NAME_COUNT];      /* kg_event_name_str() of each */
    kg_mock_stats stats;
    atomic_long fail_remaining;    /* < 0: fail until told otherwise */
    atomic_llong delay_ns;
    atomic_bool connected;
} mock;

static void sleep_ns(long long ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Should this call fail?  Consumes one of a finite failure count. */
static bool take_failure(mock *mk)
{
    long n = atomic_load(&mk->fail_remaining);
    while (n > 0 && !atomic_compare_exchange_weak(&mk->fail_remaining, &n, n - 1)) {
    }
    return n != 0;
}

static void keep(mock *mk, const kg_event_view *v)
{
    char *copy = malloc(v->json_len + 1);
    if (!copy)
        return;
    memcpy(copy, v->json, v->json_len);
    copy[v->json_len] = '\0';
    free(mk->kept[mk->next]);
    mk->kept[mk->next] = copy;
    mk->next = (mk->next + 1) % mk->cap;
    if (mk->n_kept < mk->cap)
        mk->n_kept++;
}

/* The monitor passes kg_event_name_str()'s own strings, so comparing
 * pointers finds the name without a strcmp per event; anything else (a
 * batch built by hand) is parsed. */
static int name_index(const mock *mk, const char *name)
{
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        if (mk->names[i] == name)
            return i;
    return kg_event_name_parse(name);
}

static int mock_send(void *data, unsigned worker, const kg_batch *batch)
{
    mock *mk = data;
    (void)worker;
    long long delay = atomic_load(&mk->delay_ns);
    if (delay > 0)
        sleep_ns(delay);
    pthread_mutex_lock(&mk->lock);
    if (take_failure(mk) || !atomic_load(&mk->connected)) {
        mk->stats.failed_batches++;
        pthread_mutex_unlock(&mk->lock);
        return KG_EBACKEND;
    }
    for (size_t i = 0; i < batch->count; i++) {
        const kg_event_view *v = &batch->events[i];
        int n = name_index(mk, v->event_name);
        mk->by_name[n >= 0 ? n : KG_EVENT_NAME_COUNT]++;
        if (mk->keep_json)
            keep(mk, v);
    }
    mk->stats.batches++;
    mk->stats.events += batch->count;
    pthread_mutex_unlock(&mk->lock);
    return 0;
}

static bool mock_is_connected(void *data)
{
    return atomic_load(&((mock *)data)->connected);
}

static void mock_clear_locked(mock *mk)
{
    for (size_t i = 0; i < mk->cap; i++) {
        free(mk->kept[i]);
        mk->kept[i] = NULL;
    }
    mk->next = mk->n_kept = 0;
    memset(mk->by_name, 0, sizeof mk->by_name);
    memset(&mk->stats, 0, sizeof mk->stats);
}

static void mock_destroy(void *data)
{
    mock *mk = data;
    mock_clear_locked(mk);
    free(mk->kept);
    pthread_mutex_destroy(&mk->lock);
    free(mk);
}

static const kg_backend_ops mock_ops = {
    .name = "mock",
    .send_batch = mock_send,
    .is_connected = mock_is_connected,
    .destroy = mock_destroy,
};

kg_backend_t *kg_mock_backend_new(const kg_mock_options *opts, kg_error_t *err)
{
    kg_mock_options o = {.delay = 0, .max_events = 10000, .keep_json = true};
    if (opts)
        o = *opts;
    if (!o.max_events)
        o.max_events = 10000;
    if (!(o.delay >= 0)) {
        kg_error_set(err, KG_EINVAL, "ConfigError", "mock delay must be >= 0");
        return NULL;
    }
    mock *mk = calloc(1, sizeof *mk);
    if (mk)
        mk->kept = calloc(o.max_events, sizeof *mk->kept);
    if (!mk || !mk->kept) {
        free(mk);
        kg_error_set(err, KG_ENOMEM, NULL, "mock backend");
        return NULL;
    }
    pthread_mutex_init(&mk->lock, NULL);
    mk->cap = o.max_events;
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        mk->names[i] = kg_event_name_str((kg_event_name)i);
    mk->keep_json = o.keep_json;
    atomic_init(&mk->delay_ns, (long long)(o.delay * 1e9));
    atomic_init(&mk->connected, true);
    kg_backend_t *b = kg_backend_new(&mock_ops, mk);
    if (!b)
        kg_error_set(err, KG_ENOMEM, NULL, "mock backend");
    return b;
}

static mock *mock_of(kg_backend_t *b)
{
    return (mock *)kg_backend_data(b);
}

void kg_mock_backend_fail(kg_backend_t *b, long n)
{
    atomic_store(&mock_of(b)->fail_remaining, n);
}

void kg_mock_backend_set_delay(kg_backend_t *b, double delay)
{
    atomic_store(&mock_of(b)->delay_ns, (long long)(delay > 0 ? delay * 1e9 : 0));
}

void kg_mock_backend_set_connected(kg_backend_t *b, bool connected)
{
    atomic_store(&mock_of(b)->connected, connected);
}

void kg_mock_backend_stats(kg_backend_t *b, kg_mock_stats *out)
{
    mock *mk = mock_of(b);
    pthread_mutex_lock(&mk->lock);
    *out = mk->stats;
    pthread_mutex_unlock(&mk->lock);
}

json_t *kg_mock_backend_breakdown(kg_backend_t *b)
{
    mock *mk = mock_of(b);
    json_t *o = json_object();
    pthread_mutex_lock(&mk->lock);
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        if (mk->by_name[i])
            json_object_set_new(o, kg_event_name_str((kg_event_name)i),
                                json_integer((json_int_t)mk->by_name[i]));
    if (mk->by_name[KG_EVENT_NAME_COUNT])
        json_object_set_new(o, "unknown", json_integer((json_int_t)mk->by_name[KG_EVENT_NAME_COUNT]));
    pthread_mutex_unlock(&mk->lock);
    return o;
}

json_t *kg_mock_backend_events(kg_backend_t *b, size_t max)
{
    mock *mk = mock_of(b);
    json_t *arr = json_array();
    pthread_mutex_lock(&mk->lock);
    size_t n = max && max < mk->n_kept ? max : mk->n_kept;
    size_t start = (mk->next + mk->cap - n) % mk->cap;
    for (size_t i = 0; i < n; i++) {
        const char *text = mk->kept[(start + i) % mk->cap];
        json_t *ev = text ? json_loads(text, 0, NULL) : NULL;
        json_array_append_new(arr, ev ? ev : json_null());
    }
    pthread_mutex_unlock(&mk->lock);
    return arr;
}

void kg_mock_backend_clear(kg_backend_t *b)
{
    mock *mk = mock_of(b);
    pthread_mutex_lock(&mk->lock);
    mock_clear_locked(mk);
    pthread_mutex_unlock(&mk->lock);
}
