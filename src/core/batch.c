/* batch.c - the exec step of batch nodes: once per item, in input order,
 * sequentially or on a bounded set of threads (parallel batch node).
 *
 * Each item gets its own copy of the execution context (item index, attempt
 * counter, error), so retries and fallback apply per item and items running
 * on different threads never share mutable state.  Threads are started per
 * node execution and bounded by max_workers: a parallel batch node's items
 * are usually slow (I/O, model calls), so thread start-up (~20 µs) does not
 * matter, and there is no idle pool to size or shut down. */
#include <pthread.h>
#include <string.h>

#include "core/internal.h"

typedef struct batch_job {
    kg_ctx_t *parent;
    json_t *items;              /* borrowed array */
    json_t **results;           /* one slot per item */
    atomic_size_t next;         /* next item to take */
    atomic_bool failed;         /* stop taking items */
    pthread_mutex_t fail_lock;  /* guards first_failure/error */
    size_t first_failure;
    kg_error_t error;
} batch_job;

static void job_record_failure(batch_job *job, size_t index, const kg_error_t *error)
{
    pthread_mutex_lock(&job->fail_lock);
    if (index < job->first_failure) {
        job->first_failure = index;
        job->error = *error;
    }
    pthread_mutex_unlock(&job->fail_lock);
    atomic_store(&job->failed, true);
}

static void *batch_worker(void *arg)
{
    batch_job *job = arg;
    size_t n = json_array_size(job->items);
    for (;;) {
        if (atomic_load(&job->failed))
            break;
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= n)
            break;
        kg_ctx_t item_ctx = *job->parent;
        item_ctx.item = (long)i;
        kg__error_reset(&item_ctx.error);
        if (kg__exec_item(&item_ctx, json_array_get(job->items, i), &job->results[i]) < 0)
            job_record_failure(job, i, &item_ctx.error);
    }
    return NULL;
}

static unsigned start_workers(batch_job *job, pthread_t *threads, unsigned wanted)
{
    unsigned started = 0;
    for (; started < wanted; started++)
        if (pthread_create(&threads[started], NULL, batch_worker, job) != 0)
            break;   /* run with fewer threads rather than fail the node */
    return started;
}

int kg__batch_exec(kg_ctx_t *ctx, json_t *prep_res, json_t **exec_res)
{
    /* A prep result that is not an array is a batch of one. */
    json_t *items = json_is_array(prep_res) ? json_incref(prep_res) : json_pack("[O]", prep_res ? prep_res : json_null());
    size_t n = json_array_size(items);
    batch_job job = {.parent = ctx, .items = items, .first_failure = SIZE_MAX};
    job.results = calloc(n ? n : 1, sizeof *job.results);
    json_t *out = json_array();
    if (!items || !job.results || !out) {
        free(job.results);
        json_decref(items);
        json_decref(out);
        return kg_error_set(&ctx->error, KG_ENOMEM, NULL, "batch of %zu items", n);
    }
    pthread_mutex_init(&job.fail_lock, NULL);

    unsigned workers = ctx->node->kind == KG_KIND_PARALLEL_BATCH ? ctx->node->max_workers : 1;
    if (workers > n)
        workers = (unsigned)n;
    pthread_t threads[256];
    /* The calling thread is one of the workers. */
    unsigned extra = workers > 1 ? start_workers(&job, threads, workers - 1) : 0;
    batch_worker(&job);
    for (unsigned i = 0; i < extra; i++)
        pthread_join(threads[i], NULL);

    int rc = 0;
    if (atomic_load(&job.failed)) {
        ctx->error = job.error;
        rc = job.error.code;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            json_array_append_new(out, job.results[i] ? job.results[i] : json_null());
        else
            json_decref(job.results[i]);
    }
    pthread_mutex_destroy(&job.fail_lock);
    free(job.results);
    json_decref(items);
    if (rc == 0)
        *exec_res = out;
    else
        json_decref(out);
    return rc;
}
