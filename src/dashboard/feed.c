/* dashboard/feed.c - the in-process source: a monitoring backend that is the dashboard.
 *
 * When the dashboard runs inside the monitored program, the monitor's
 * dispatcher threads call this backend's send_batch; each event's JSON text
 * goes straight into the hub - no Redis, no HTTP, nothing to install.  The
 * dashboard never makes a send fail for lack of clients (that is the point
 * of the broadcast ring), so the monitor's breaker never opens on account of
 * a browser.  An event the dashboard rejects (bad schema) is counted there
 * and not retried: retrying would not make it valid. */
#include <stdlib.h>

#include "ingest.h"
#include "kaygraph/backend.h"

struct kg_dashboard;
kg__hub *kg__server_hub(struct kg_dashboard *d);

typedef struct kg__feed {
    struct kg_dashboard *dash;
} kg__feed;

static int kg__feed_connect(void *data, unsigned workers)
{
    return 0;
}

static int kg__feed_send(void *data, unsigned worker, const kg_batch *batch)
{
    kg__feed *f = data;
    kg__hub *h = kg__server_hub(f->dash);
    int rc = 0;
    for (size_t i = 0; i < batch->count && rc == 0; i++)
        if (kg__ingest_event_text(h, batch->events[i].json, batch->events[i].json_len, NULL) ==
            KG_EFULL)
            rc = KG_EFULL;   /* history is behind: the dispatcher retries the batch */
    kg__hub_wake(h);
    return rc;
}

static void kg__feed_disconnect(void *data)
{
}

static bool kg__feed_is_connected(void *data)
{
    return true;
}

static void kg__feed_destroy(void *data)
{
    free(data);
}

static const kg_backend_ops kg__feed_ops = {
    .name = "dashboard",
    .connect = kg__feed_connect,
    .send_batch = kg__feed_send,
    .disconnect = kg__feed_disconnect,
    .is_connected = kg__feed_is_connected,
    .destroy = kg__feed_destroy,
};

kg_backend_t *kg_dashboard_backend_new(kg_dashboard_t *d)
{
    if (!d)
        return NULL;
    kg__feed *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    f->dash = d;
    return kg_backend_new(&kg__feed_ops, f);
}
