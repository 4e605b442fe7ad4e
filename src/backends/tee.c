/* tee.c - one stream of events to several backends (e.g. Redis and the
 * embedded dashboard).
 *
 * A batch succeeds when every backend accepted it.  When some failed, the
 * dispatcher retries the same batch later; the tee remembers per worker which
 * backends already took that batch (identified by its first seq and size) and
 * sends it only to the others, so a healthy backend never gets duplicates
 * because a sibling is down. */
#include <stdlib.h>
#include <string.h>

#include "kaygraph/backends.h"

#define TEE_MAX 16

typedef struct tee_progress {
    uint64_t first_seq;
    size_t count;
    uint32_t accepted;   /* bit i: backend i took this batch */
} tee_progress;

typedef struct tee {
    kg_backend_t *to[TEE_MAX];
    size_t n;
    tee_progress *progress;   /* one per worker */
    unsigned workers;
} tee;

static int tee_connect(void *data, unsigned workers)
{
    tee *t = data;
    free(t->progress);
    t->progress = calloc(workers ? workers : 1, sizeof *t->progress);
    t->workers = t->progress ? workers : 0;
    int rc = t->progress ? 0 : KG_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        int r = kg_backend_connect(t->to[i], workers);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

static int tee_send(void *data, unsigned worker, const kg_batch *batch)
{
    tee *t = data;
    if (worker >= t->workers)
        return KG_EINVAL;
    tee_progress *p = &t->progress[worker];
    uint64_t first = batch->count ? batch->events[0].seq : 0;
    if (p->first_seq != first || p->count != batch->count)
        *p = (tee_progress){first, batch->count, 0};
    int rc = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (p->accepted & (1u << i))
            continue;
        int r = kg_backend_send_batch(t->to[i], worker, batch);
        if (r == 0)
            p->accepted |= 1u << i;
        else if (rc == 0)
            rc = r;
    }
    if (rc == 0)
        p->accepted = 0, p->count = 0, p->first_seq = 0;
    return rc;
}

static void tee_disconnect(void *data)
{
    tee *t = data;
    for (size_t i = 0; i < t->n; i++)
        kg_backend_disconnect(t->to[i]);
}

static bool tee_is_connected(void *data)
{
    tee *t = data;
    for (size_t i = 0; i < t->n; i++)
        if (!kg_backend_is_connected(t->to[i]))
            return false;
    return true;
}

/* The latest pause any target asked for: a batch goes to all of them. */
static int64_t tee_not_before(void *data, unsigned worker)
{
    tee *t = data;
    int64_t nb = 0;
    for (size_t i = 0; i < t->n; i++) {
        int64_t v = kg_backend_not_before(t->to[i], worker);
        if (v > nb)
            nb = v;
    }
    return nb;
}

static void tee_set_deadline(void *data, int64_t deadline_ns)
{
    tee *t = data;
    for (size_t i = 0; i < t->n; i++)
        kg_backend_set_deadline(t->to[i], deadline_ns);
}

static void tee_destroy(void *data)
{
    tee *t = data;
    for (size_t i = 0; i < t->n; i++)
        kg_backend_free(t->to[i]);
    free(t->progress);
    free(t);
}

static const kg_backend_ops tee_ops = {
    .name = "tee",
    .connect = tee_connect,
    .send_batch = tee_send,
    .disconnect = tee_disconnect,
    .is_connected = tee_is_connected,
    .destroy = tee_destroy,
    .not_before = tee_not_before,
    .set_deadline = tee_set_deadline,
};

kg_backend_t *kg_tee_backend_new(kg_backend_t **backends, size_t n, kg_error_t *err)
{
    tee *t = n >= 1 && n <= TEE_MAX ? calloc(1, sizeof *t) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (t && backends[i])
            t->to[t->n++] = backends[i];
        else
            kg_backend_free(backends[i]);
    }
    if (!t || t->n != n) {
        kg_error_set(err, t ? KG_EINVAL : KG_ENOMEM, NULL, "tee needs 1..%d backends", TEE_MAX);
        if (t)
            tee_destroy(t);
        return NULL;
    }
    kg_backend_t *b = kg_backend_new(&tee_ops, t);
    if (!b)
        kg_error_set(err, KG_ENOMEM, NULL, "tee backend");
    return b;
}
