/* dashboard/source_redis.c - the Redis source: a thread reading the Pub/Sub feed.
 *
 * Uses the Redis backend's read side (kaygraph/redis_reader.h), so the
 * dashboard knows nothing of key names.  The thread subscribes to
 * <prefix>all and feeds each message through the same ingest path as the
 * webhook.  It waits on the subscriber with a short timeout so that stopping
 * is prompt; a lost connection is reconnected by the reader itself, and a
 * reconnect is logged because Pub/Sub does not replay what was missed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash_internal.h"
#include "kaygraph/redis_reader.h"
#include "source_redis.h"

struct kg__redis_source {
    kg__hub *hub;
    kg_redis_reader_t *reader;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool connected;
    atomic_uint_fast64_t messages;
    kg_dashboard_log_cb log;
    void *log_ud;
    char where[300];
};

static void kg__rs_log(kg__redis_source *s, kg_dashboard_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void kg__rs_log(kg__redis_source *s, kg_dashboard_log_level lvl, const char *fmt, ...)
{
    if (!s->log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->log(s->log_ud, lvl, buf);
}

static void *kg__rs_main(void *arg)
{
    kg__redis_source *s = arg;
    kg_error_t err;
    kg_error_clear(&err);
    if (kg_redis_reader_subscribe(s->reader, "all", false, &err) == 0) {
        atomic_store(&s->connected, true);
        kg__rs_log(s, KG_DASH_LOG_INFO, "redis: subscribed at %s", s->where);
    } else {
        kg__rs_log(s, KG_DASH_LOG_WARN, "redis: %s unreachable (%s); retrying", s->where,
                   err.message);
    }
    uint64_t reconnects = kg_redis_reader_reconnects(s->reader);
    bool was_up = atomic_load(&s->connected);
    while (!atomic_load(&s->stop)) {
        char *json = NULL;
        size_t len = 0;
        kg_error_clear(&err);
        int rc = kg_redis_reader_next(s->reader, 0.2, &json, &len, NULL, &err);
        if (rc == 0) {
            if (!was_up)
                kg__rs_log(s, KG_DASH_LOG_INFO, "redis: connected to %s", s->where);
            was_up = true;
            atomic_store(&s->connected, true);
            atomic_fetch_add(&s->messages, 1);
            kg_error_t ierr;
            kg_error_clear(&ierr);
            kg__ingest_event_text(s->hub, json, len, &ierr);
            free(json);
        } else if (rc == KG_ETIMEOUT) {
            /* Nothing published: the reader is connected (or reconnected). */
            if (!was_up && kg_redis_reader_reconnects(s->reader) != reconnects) {
                was_up = true;
                atomic_store(&s->connected, true);
            }
        } else {
            if (was_up)
                kg__rs_log(s, KG_DASH_LOG_WARN, "redis: connection to %s lost (%s)", s->where,
                           err.message);
            was_up = false;
            atomic_store(&s->connected, false);
        }
        uint64_t rn = kg_redis_reader_reconnects(s->reader);
        if (rn != reconnects) {
            reconnects = rn;
            was_up = true;
            atomic_store(&s->connected, true);
            kg__rs_log(s, KG_DASH_LOG_WARN,
                       "redis: resubscribed to %s; events published meanwhile were missed",
                       s->where);
        }
    }
    return NULL;
}

int kg__redis_source_start(kg__hub *h, const kg_dashboard_options *o, kg__redis_source **out,
                           kg_error_t *err)
{
    kg__redis_source *s = calloc(1, sizeof *s);
    if (!s)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    s->hub = h;
    s->log = o->log;
    s->log_ud = o->log_ud;
    atomic_init(&s->stop, false);
    atomic_init(&s->connected, false);
    atomic_init(&s->messages, 0);
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.host = o->redis_host;
    ro.port = o->redis_port;
    if (o->redis_prefix)
        ro.prefix = o->redis_prefix;
    if (o->redis_password)
        ro.password = o->redis_password;
    snprintf(s->where, sizeof s->where, "%s:%d", o->redis_host, o->redis_port);
    int rc = kg_redis_reader_new(&ro, &s->reader, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    if (pthread_create(&s->thread, NULL, kg__rs_main, s) != 0) {
        kg_redis_reader_free(s->reader);
        free(s);
        return kg_error_set(err, KG_ENOMEM, NULL, "cannot start the Redis thread");
    }
    *out = s;
    return 0;
}

void kg__redis_source_stop(kg__redis_source *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    kg_redis_reader_free(s->reader);
    free(s);
}

void kg__redis_source_stats(kg__redis_source *s, uint64_t *messages, bool *connected)
{
    *messages = s ? atomic_load(&s->messages) : 0;
    *connected = s ? atomic_load(&s->connected) : false;
}
