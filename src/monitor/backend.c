/* backend.c - the backend handle: an ops table plus its data.
 *
 * The handle exists so the dispatcher can call any backend the same way and so
 * ownership has one place to live: the handle owns `data` and frees it through
 * ops->destroy. */
#include <stdlib.h>

#include "kaygraph/backend.h"

struct kg_backend {
    const kg_backend_ops *ops;
    void *data;
};

kg_backend_t *kg_backend_new(const kg_backend_ops *ops, void *data)
{
    kg_backend_t *b = ops ? calloc(1, sizeof *b) : NULL;
    if (!b) {
        if (ops && ops->destroy && data)
            ops->destroy(data);
        return NULL;
    }
    b->ops = ops;
    b->data = data;
    return b;
}

void kg_backend_free(kg_backend_t *b)
{
    if (!b)
        return;
    if (b->ops->destroy)
        b->ops->destroy(b->data);
    free(b);
}

const char *kg_backend_name(const kg_backend_t *b)
{
    return b->ops->name ? b->ops->name : "backend";
}

void *kg_backend_data(const kg_backend_t *b)
{
    return b->data;
}

int kg_backend_connect(kg_backend_t *b, unsigned workers)
{
    return b->ops->connect ? b->ops->connect(b->data, workers) : 0;
}

int kg_backend_send_batch(kg_backend_t *b, unsigned worker, const kg_batch *batch)
{
    return b->ops->send_batch ? b->ops->send_batch(b->data, worker, batch) : 0;
}

void kg_backend_disconnect(kg_backend_t *b)
{
    if (b->ops->disconnect)
        b->ops->disconnect(b->data);
}

bool kg_backend_is_connected(kg_backend_t *b)
{
    return b->ops->is_connected ? b->ops->is_connected(b->data) : true;
}

int64_t kg_backend_not_before(kg_backend_t *b, unsigned worker)
{
    return b->ops->not_before ? b->ops->not_before(b->data, worker) : 0;
}

void kg_backend_set_deadline(kg_backend_t *b, int64_t deadline_ns)
{
    if (b->ops->set_deadline)
        b->ops->set_deadline(b->data, deadline_ns);
}
