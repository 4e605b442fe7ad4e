/* dashboard/source_redis.c - the Redis source: Pub/Sub feed, stream replay, history.
 *
 * Uses the Redis backend's read side (kaygraph/redis_reader.h), so the
 * dashboard knows nothing of key names.  Two threads, each with its own
 * reader (a reader's connections are not for concurrent use):
 *
 *   feed thread   subscribes to <prefix>all, then replays <prefix>stream,
 *                 then follows Pub/Sub, feeding every event through the same
 *                 ingest path as the webhook, except that Pub/Sub is never
 *                 held back by a run history that is behind (Redis would
 *                 disconnect the subscriber: ingest.h, _live); the replay
 *                 waits for it.  Pub/Sub keeps nothing for an
 *                 absent subscriber, so every (re)connection is followed by a
 *                 replay of the stream (when producers write one).  The
 *                 subscription is made first so that nothing falls between
 *                 the end of the replay and the start of the feed; what both
 *                 deliver is dropped by event_id in the aggregation.
 *   fetch thread  answers history requests for runs evicted from memory
 *                 (kg_redis_reader_workflow_events), so that a slow or dead
 *                 Redis never stalls the service thread.
 *
 * Where a replay ends: at the subscription point, found without clocks:
 * Pub/Sub is drained between replay pages (so its buffer in Redis stays
 * small) and the event_ids it delivers are noted; the first stream entry
 * among them is where the live feed took over.  One more page is read for
 * producers whose commands interleaved around that point.  A replay slower
 * than the producers therefore still ends.
 *
 * Replay bounds.  Fresh start: the newest `redis_replay` entries: the whole
 * stream when it holds no more (XLEN); else, as XREAD only goes forward, a
 * first pass walks the stream keeping the ids of the last N+1 entries in a
 * ring (48 bytes each), and a second pass reads from the oldest of them.
 * Entries are handled as the text in the reply (the same ingest path as a
 * Pub/Sub message), never parsed twice: the replay must outrun producers
 * that keep publishing, and a capped stream drops its oldest entries while a
 * slow replay is still on its way to them.  After a reconnect: every entry after the last
 * one read, but not older than KG__REPLAY_SLACK seconds before the last Pub/Sub
 * message received was made (its timestamp; stream ids are Redis' clock, in
 * ms, so the slack also covers clock skew) and at most KG__REPLAY_MAX_LAG
 * before it arrived, so a dashboard that
 * ran for hours re-reads seconds, not the whole capped stream, and stays
 * inside the aggregation's 64-128 K event_id dedup window.  One replay
 * reads at most KG__REPLAY_MAX entries: a producer outrunning it is followed
 * by the subscription anyway.
 *
 * Replay memory.  XREAD has a count but no byte limit, and a page of 1,000
 * entries of 900 KB is 900 MB inside hiredis before anything sees it.  So
 * the page size follows the entries: the next page asks for as many entries
 * as fit in KG__REPLAY_PAGE_BYTES at the size of the last page's entries
 * (growing at most 4x a page, starting small), and a page that still came
 * back over the reader's reply bound (entries suddenly much larger: the
 * connection fails with KG_EPROTO) is asked for again one entry at a time
 * after the reconnect. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "util/clock.h"
#include "util/iso8601.h"
#include "util/log.h"
#include "kaygraph/redis_reader.h"
#include "source_redis.h"
#include "store.h"

#define KG__REPLAY_PAGE 1000                 /* entries per XREAD, at most */
#define KG__REPLAY_PAGE_BYTES (8u << 20)     /* ...and about this many bytes */
#define KG__REPLAY_MAX 1000000
#define KG__REPLAY_SLACK 3.0   /* s; covers clock skew between Redis and us */
#define KG__REPLAY_MAX_LAG 30.0   /* s; the reconnect replay reaches back at most this far */
#define KG__SID_MAX 48   /* "<ms>-<seq>": 20 + 1 + 20 digits */

struct kg__redis_source {
    kg__hub *hub;
    kg_redis_reader_t *reader;   /* feed thread: subscriber + stream */
    kg_redis_reader_t *fetcher;  /* fetch thread */
    pthread_t thread, fetch_thread;
    bool thread_started, fetch_started;
    atomic_bool stop;
    atomic_bool connected;
    atomic_uint_fast64_t messages, replayed, replays, fetches;
    kg_dashboard_log_cb log;
    void *log_ud;
    char where[300];
    size_t replay_n;
    size_t max_run_events;
    /* Feed thread only. */
    char cursor[KG__SID_MAX];    /* last stream id read; "" before any */
    double last_msg_wall;        /* Unix time the last Pub/Sub message was made */
    double last_arrival;         /* ...and when it arrived */
    uint64_t *live;              /* hashes of event_ids received by Pub/Sub
                                  * during a replay (open addressing) */
    size_t live_n;
    bool collecting;
    size_t page;                 /* entries the next replay page asks for */
    /* Fetch queue. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    kg_link pending, done;
    unsigned outstanding;        /* pending + running + done, not collected */
};

#define kg__rs_log(s, lvl, ...) kg_log_to((s)->log, (s)->log_ud, (lvl), __VA_ARGS__)

/* ---- the live feed ---------------------------------------------------------------------- */

#define KG__LIVE_SET_CAP (1u << 16)   /* slots; a replay stops when 3/4 full */

/* A string member of an event's JSON text (`key` is "\"name\":\""), or
 * NULL, without parsing.  Producers write compact JSON; text without this
 * exact key only makes the replay re-read a little more. */
static const char *kg__text_field(const char *json, size_t len, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    const char *p = json ? memmem(json, len, key, klen) : NULL;
    if (!p)
        return NULL;
    p += klen;
    const char *q = memchr(p, '"', len - (size_t)(p - json));
    if (!q)
        return NULL;
    *vlen = (size_t)(q - p);
    return p;
}

static const char *kg__text_event_id(const char *json, size_t len, size_t *idlen)
{
    return kg__text_field(json, len, "\"event_id\":\"", idlen);
}

/* When the event was made (Unix ms), or now when its text does not say: the
 * floor of a reconnect replay.  The producer's clock, not the time the
 * message arrived here: when this dashboard lags behind Pub/Sub, what it
 * loses on a reconnect was published after the last event it received, not
 * after the moment it received it. */
static double kg__text_event_time(const char *json, size_t len)
{
    size_t n;
    const char *ts = kg__text_field(json, len, "\"timestamp\":\"", &n);
    char buf[64];
    double now = kg_clock_real();
    if (!ts || n >= sizeof buf)
        return now;
    memcpy(buf, ts, n);
    buf[n] = '\0';
    int64_t ms = kg_iso8601_parse_ms(buf);
    return ms < 0 || (double)ms / 1000.0 > now ? now : (double)ms / 1000.0;
}

static void kg__live_note(kg__redis_source *s, const char *json, size_t len)
{
    size_t n;
    const char *id = kg__text_event_id(json, len, &n);
    if (!id || s->live_n >= KG__LIVE_SET_CAP / 4 * 3)
        return;
    uint64_t h = kg_hash(id, n) | 1;
    size_t i = h & (KG__LIVE_SET_CAP - 1);
    while (s->live[i] && s->live[i] != h)
        i = (i + 1) & (KG__LIVE_SET_CAP - 1);
    if (!s->live[i]) {
        s->live[i] = h;
        s->live_n++;
    }
}

static bool kg__live_has(const kg__redis_source *s, const char *id, size_t n)
{
    uint64_t h = kg_hash(id, n) | 1;
    size_t i = h & (KG__LIVE_SET_CAP - 1);
    while (s->live[i]) {
        if (s->live[i] == h)
            return true;
        i = (i + 1) & (KG__LIVE_SET_CAP - 1);
    }
    return false;
}

/* Wait up to `timeout` for one Pub/Sub message and ingest it (without waking
 * the service thread: the callers wake it once per group).  Returns the
 * reader's code (0, KG_ETIMEOUT, KG_ECONNECT...). */
static int kg__live_one(kg__redis_source *s, double timeout, kg_error_t *err)
{
    char *json = NULL;
    size_t len = 0;
    int rc = kg_redis_reader_next(s->reader, timeout, &json, &len, NULL, err);
    if (rc == 0) {
        s->last_arrival = kg_clock_real();
        s->last_msg_wall = kg__text_event_time(json, len);
        atomic_fetch_add(&s->messages, 1);
        if (s->collecting)
            kg__live_note(s, json, len);
        kg_error_t ierr;
        kg_error_clear(&ierr);
        /* Pub/Sub cannot be paused: a subscriber that waited for the
         * history would be disconnected by Redis and lose everything
         * published meanwhile (ingest.h). */
        kg__ingest_event_text_live(s->hub, json, len, &ierr);
        free(json);
    }
    return rc;
}

#define KG__DRAIN_MAX 10000   /* messages per drain: a replay page still follows */

/* Take what Pub/Sub has delivered, without waiting (between replay pages, so
 * that its buffer in Redis does not grow and the overlap shows up).  Bounded:
 * producers that publish as fast as this thread ingests must not starve the
 * replay.  0, or the reader's error when the connection was lost. */
static int kg__live_drain(kg__redis_source *s)
{
    for (int i = 0; i < KG__DRAIN_MAX; i++) {
        kg_error_t err;
        kg_error_clear(&err);
        int rc = kg__live_one(s, 0, &err);
        if (rc == KG_ETIMEOUT)
            break;
        if (rc) {
            kg__hub_wake(s->hub);
            return rc;
        }
    }
    kg__hub_wake(s->hub);
    return 0;
}

#define KG__BURST_MAX 1024     /* messages ingested per wake-up of the service thread */
#define KG__BURST_SPAN 0.005   /* s: the most a burst delays the first of its messages */

/* Wait up to `timeout` for a message, then take those that follow it closely
 * (at most KG__BURST_MAX, for at most KG__BURST_SPAN) and wake the service
 * thread once for all of them.  The reader's code for the first wait. */
static int kg__live_burst(kg__redis_source *s, double timeout, kg_error_t *err)
{
    int rc = kg__live_one(s, timeout, err);
    if (rc)
        return rc;
    double until = kg_clock_mono() + KG__BURST_SPAN;
    for (int i = 1; i < KG__BURST_MAX && kg_clock_mono() < until; i++) {
        kg_error_t e2;
        kg_error_clear(&e2);
        if (kg__live_one(s, 0, &e2))
            break;   /* a lost connection shows again on the next wait */
    }
    kg__hub_wake(s->hub);
    return 0;
}

/* ---- stream replay -------------------------------------------------------------------- */

/* Stream id "<ms>-<seq>" as two numbers; false when it is not one. */
static bool kg__sid_parse(const char *id, unsigned long long *ms, unsigned long long *seq)
{
    char *end;
    *ms = strtoull(id, &end, 10);
    if (end == id || *end != '-')
        return false;
    const char *s2 = end + 1;
    *seq = strtoull(s2, &end, 10);
    return end != s2 && *end == '\0';
}

/* One pass over the stream: where it is, and whether it reached the live feed. */
typedef struct kg__walk {
    kg__redis_source *s;
    void (*visit)(kg__redis_source *, const kg_stream_entry *, void *);
    void *ud;
    char from[KG__SID_MAX];   /* id of the last entry seen */
    bool overlap;             /* an entry that Pub/Sub has delivered too was seen */
    size_t bytes;             /* of the entries of the current page */
} kg__walk;

static void kg__walk_entry(void *ud, const kg_stream_entry *e)
{
    kg__walk *w = ud;
    w->bytes += e->event_len + strlen(e->id);
    if (strlen(e->id) < KG__SID_MAX)
        snprintf(w->from, sizeof w->from, "%s", e->id);
    size_t n;
    const char *id = kg__text_event_id(e->event, e->event_len, &n);
    if (id && kg__live_has(w->s, id, n)) {
        /* Pub/Sub delivered it during this replay: the overlap.  Skipped
         * here, not left to the aggregation's duplicate check, because a
         * long replay reaches these entries after more events than that
         * check remembers. */
        w->overlap = true;
        return;
    }
    w->visit(w->s, e, w->ud);
}

/* The size of the next replay page from the last one: as many entries as
 * fit in KG__REPLAY_PAGE_BYTES at that page's average size, at most 4x more
 * than before, between 1 and KG__REPLAY_PAGE. */
static void kg__page_adapt(kg__redis_source *s, size_t n, size_t bytes)
{
    if (!n)
        return;
    size_t avg = bytes / n + 1;
    size_t fit = KG__REPLAY_PAGE_BYTES / avg;
    size_t next = fit < s->page * 4 ? fit : s->page * 4;
    s->page = next < 1 ? 1 : next > KG__REPLAY_PAGE ? KG__REPLAY_PAGE : next;
}

/* Walk the stream after `after` page by page until caught up with the live
 * feed: the first entry that Pub/Sub has also delivered since this replay
 * began marks the subscription point; one more page covers producers whose
 * commands interleaved around it.  `visit` sees every entry (borrowed text,
 * no parsing); *last gets the id of the last one.  Bounded by
 * KG__REPLAY_MAX.  0 or the reader's code. */
static int kg__stream_walk(kg__redis_source *s, const char *after,
                           void (*visit)(kg__redis_source *, const kg_stream_entry *, void *),
                           void *ud, char last[KG__SID_MAX])
{
    kg__walk w = {.s = s, .visit = visit, .ud = ud};
    snprintf(w.from, sizeof w.from, "%s", after);
    size_t total = 0;
    int pages_after_overlap = -1;
    while (!atomic_load(&s->stop) && total < KG__REPLAY_MAX && pages_after_overlap < 1) {
        /* Pub/Sub first: what it has delivered by now can mark this page. */
        int rc = kg__live_drain(s);
        if (rc)
            return rc;
        size_t n = 0, asked = s->page;
        kg_error_t err;
        kg_error_clear(&err);
        w.bytes = 0;
        rc = kg_redis_reader_stream_scan(s->reader, w.from, asked, kg__walk_entry, &w, &n, &err);
        kg__hub_wake(s->hub);
        if (rc) {
            if (rc == KG_EPROTO)
                s->page = 1;   /* the page was over the reply bound: retry smaller */
            return rc;
        }
        kg__page_adapt(s, n, w.bytes);
        if (pages_after_overlap >= 0)
            pages_after_overlap++;
        else if (w.overlap)
            pages_after_overlap = 0;
        total += n;
        if (n < asked)
            break;
    }
    snprintf(last, KG__SID_MAX, "%s", w.from);
    return 0;
}

static void kg__visit_ingest(kg__redis_source *s, const kg_stream_entry *e, void *ud)
{
    size_t *count = ud;
    (*count)++;
    atomic_fetch_add(&s->replayed, 1);
    kg_error_t err;
    kg_error_clear(&err);
    /* The same path as a Pub/Sub message; an entry that is not JSON is
     * counted as rejected, like such a message. */
    kg__ingest_event_text_wait(s->hub, e->event ? e->event : "", e->event_len, &s->stop, &err);
}

typedef struct kg__id_ring {
    char (*ids)[KG__SID_MAX];
    size_t cap, total;
} kg__id_ring;

static void kg__visit_remember(kg__redis_source *s, const kg_stream_entry *e, void *ud)
{
    (void)s;
    kg__id_ring *r = ud;
    size_t n = strlen(e->id);
    if (n >= KG__SID_MAX)
        return;
    memcpy(r->ids[r->total % r->cap], e->id, n + 1);
    r->total++;
}

/* Fresh start: the id after which the newest `replay_n` entries begin ("0"
 * for the whole stream).  XREAD only goes forward, so when the stream is
 * longer than that, a first pass (ids only) keeps the ids of the newest N+1
 * entries in a ring and the replay starts after the oldest of them. */
static int kg__replay_start(kg__redis_source *s, char start[KG__SID_MAX])
{
    snprintf(start, KG__SID_MAX, "0");
    unsigned long long len = 0;
    kg_error_t err;
    kg_error_clear(&err);
    int rc = kg_redis_reader_stream_length(s->reader, &len, &err);
    if (rc || len <= s->replay_n)
        return rc;
    kg__id_ring ring = {.cap = s->replay_n + 1};
    ring.ids = malloc(ring.cap * sizeof *ring.ids);
    if (!ring.ids)
        return KG_ENOMEM;
    char last[KG__SID_MAX];
    rc = kg__stream_walk(s, "0", kg__visit_remember, &ring, last);
    if (rc == 0 && ring.total > s->replay_n)
        snprintf(start, KG__SID_MAX, "%s", ring.ids[(ring.total - ring.cap) % ring.cap]);
    free(ring.ids);
    return rc;
}

/* True when the producers write no stream (or it is empty). */
static bool kg__stream_missing(kg__redis_source *s)
{
    unsigned long long len = 0;
    kg_error_t err;
    kg_error_clear(&err);
    return kg_redis_reader_stream_length(s->reader, &len, &err) == 0 && len == 0;
}

/* Replay what Pub/Sub may have missed.  Returns 0 when done (also when there
 * is no stream), or an error: the caller retries after reconnecting. */
static int kg__replay(kg__redis_source *s)
{
    char start[KG__SID_MAX];
    int rc = 0;
    memset(s->live, 0, KG__LIVE_SET_CAP * sizeof *s->live);
    s->live_n = 0;
    s->collecting = true;
    if (!s->cursor[0]) {
        rc = kg__replay_start(s, start);
    } else {
        /* Reconnect: after the last entry read, but not older than the
         * Pub/Sub floor. */
        snprintf(start, sizeof start, "%s", s->cursor);
        unsigned long long ms, seq;
        if (s->last_msg_wall > 0 && kg__sid_parse(s->cursor, &ms, &seq)) {
            /* From shortly before the last event received was made, but
             * not further back than KG__REPLAY_MAX_LAG before it arrived:
             * an event published late (after an outage of its producer)
             * carries an old timestamp, and re-reading minutes of stream
             * would reach past the aggregation's duplicate window. */
            double floor_s = s->last_msg_wall - KG__REPLAY_SLACK;
            if (floor_s < s->last_arrival - KG__REPLAY_MAX_LAG)
                floor_s = s->last_arrival - KG__REPLAY_MAX_LAG;
            unsigned long long floor_ms = floor_s > 0 ? (unsigned long long)(floor_s * 1000) : 0;
            if (floor_ms > ms)
                snprintf(start, sizeof start, "%llu-0", floor_ms);
        }
    }
    size_t n = 0;
    char last[KG__SID_MAX] = "";
    if (rc == 0)
        rc = kg__stream_walk(s, start, kg__visit_ingest, &n, last);
    s->collecting = false;
    if (rc)
        return rc;
    /* No stream (or an empty one) gives no id: later replays are reconnect
     * replays from its beginning, bounded by the Pub/Sub floor. */
    snprintf(s->cursor, sizeof s->cursor, "%s", strcmp(last, "0") && last[0] ? last : "0-1");
    atomic_fetch_add(&s->replays, 1);
    if (n)
        kg__rs_log(s, KG_DASH_LOG_INFO, "redis: replayed %zu stream entries from %s", n,
                   s->where);
    return 0;
}

/* A failure is logged when it is the first, and then after 2, 4, 8...
 * consecutive ones (or when the error changes kind): the reader retries at
 * 0.1 s doubling to 5 s, so this is about one line per backoff step, never
 * one per attempt. */
static bool kg__rs_worth_logging(const kg_redis_reader_status *st, unsigned *logged, int *code)
{
    unsigned f = st->failures;
    bool step = f != *logged && (f & (f - 1)) == 0;
    bool changed = f != *logged && st->last_code != *code;
    if (!step && !changed)
        return false;
    *logged = f;
    *code = st->last_code;
    return true;
}

/* The feed thread's view of the connection after one wait: connected (a
 * message or a quiet, confirmed subscription) or not. */
static void kg__rs_track(kg__redis_source *s, int rc, const kg_error_t *err, bool *up,
                         unsigned *logged, int *code)
{
    if (rc == 0 || rc == KG_ETIMEOUT) {
        if (!*up)
            kg__rs_log(s, KG_DASH_LOG_INFO, "redis: subscribed at %s", s->where);
        *up = true;
        *logged = 0;
        *code = 0;
        atomic_store(&s->connected, true);
        return;
    }
    kg_redis_reader_status st;
    kg_redis_reader_status_get(s->reader, &st);
    if (*up) {
        kg__rs_log(s, KG_DASH_LOG_WARN, "redis: connection to %s lost (%s)", s->where,
                   err->message);
        *logged = st.failures;
        *code = st.last_code;
    } else if (kg__rs_worth_logging(&st, logged, code))
        kg__rs_log(s, KG_DASH_LOG_WARN, "redis: %s (%u failed attempt%s; retrying every "
                   "0.1 s doubling to 5 s)", st.last_error, st.failures,
                   st.failures == 1 ? "" : "s");
    *up = false;
    atomic_store(&s->connected, false);
}

static void *kg__rs_main(void *arg)
{
    kg__redis_source *s = arg;
    kg_error_t err;
    kg_error_clear(&err);
    bool up = false;
    unsigned logged = 0;
    int code = 0;
    int rc = kg_redis_reader_subscribe(s->reader, "all", false, &err);
    kg__rs_track(s, rc, &err, &up, &logged, &code);
    bool need_replay = s->replay_n > 0;
    uint64_t reconnects = kg_redis_reader_reconnects(s->reader);
    while (!atomic_load(&s->stop)) {
        /* Replay once subscribed, so that the feed covers what follows it. */
        if (need_replay && up && kg__replay(s) == 0)
            need_replay = false;
        kg_error_clear(&err);
        rc = kg__live_burst(s, 0.2, &err);
        uint64_t rn = kg_redis_reader_reconnects(s->reader);
        if (rn != reconnects) {
            reconnects = rn;
            const char *what = !s->replay_n ? "; events published meanwhile were missed"
                               : kg__stream_missing(s)
                                   ? "; no stream to replay (producers write one with "
                                     "--redis-stream): events published meanwhile are missing"
                                   : "; replaying the stream";
            kg__rs_log(s, KG_DASH_LOG_WARN, "redis: resubscribed to %s%s", s->where, what);
            need_replay = s->replay_n > 0;
        }
        bool was_up = up;
        kg__rs_track(s, rc, &err, &up, &logged, &code);
        if (was_up && !up)
            need_replay = s->replay_n > 0;
    }
    return NULL;
}

/* ---- history fetches ---------------------------------------------------------------- */

static void *kg__rs_fetch_main(void *arg)
{
    kg__redis_source *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!atomic_load(&s->stop) && kg_list_empty(&s->pending))
            pthread_cond_wait(&s->cond, &s->lock);
        if (atomic_load(&s->stop))
            break;
        kg_link *l = s->pending.next;
        kg_list_remove(l);
        pthread_mutex_unlock(&s->lock);

        kg__fetch *f = KG_CONTAINER_OF(l, kg__fetch, link);
        kg_error_t err;
        kg_error_clear(&err);
        f->events = NULL;
        f->rc = kg_redis_reader_workflow_events(s->fetcher, f->workflow_id, s->max_run_events,
                                                &f->events, &err);
        if (f->rc)
            snprintf(f->error, sizeof f->error, "%s", err.message);
        atomic_fetch_add(&s->fetches, 1);

        pthread_mutex_lock(&s->lock);
        kg_list_push_back(&s->done, l);
        pthread_mutex_unlock(&s->lock);
        kg__hub_wake(s->hub);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int kg__redis_fetch_submit(kg__redis_source *s, kg__fetch *f)
{
    if (!s)
        return KG_EINVAL;
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (s->outstanding >= KG__FETCH_PENDING_MAX) {
        rc = KG_EFULL;
    } else {
        s->outstanding++;
        kg_list_push_back(&s->pending, &f->link);
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

kg__fetch *kg__redis_fetch_done(kg__redis_source *s)
{
    if (!s)
        return NULL;
    kg__fetch *f = NULL;
    pthread_mutex_lock(&s->lock);
    if (!kg_list_empty(&s->done)) {
        kg_link *l = s->done.next;
        kg_list_remove(l);
        s->outstanding--;
        f = KG_CONTAINER_OF(l, kg__fetch, link);
    }
    pthread_mutex_unlock(&s->lock);
    return f;
}

void kg__fetch_free(kg__fetch *f)
{
    if (!f)
        return;
    json_decref(f->events);
    free(f);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int kg__redis_source_start(kg__hub *h, const kg_dashboard_options *o, kg__redis_source **out,
                           kg_error_t *err)
{
    kg__redis_source *s = calloc(1, sizeof *s);
    if (!s)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    s->hub = h;
    s->log = o->log;
    s->log_ud = o->log_ud;
    s->replay_n = o->redis_replay > KG__REPLAY_MAX ? KG__REPLAY_MAX : o->redis_replay;
    s->page = 8;   /* the first replay page: small until the entries' size is known */
    s->max_run_events = o->max_run_events;
    atomic_init(&s->stop, false);
    atomic_init(&s->connected, false);
    atomic_init(&s->messages, 0);
    atomic_init(&s->replayed, 0);
    atomic_init(&s->replays, 0);
    atomic_init(&s->fetches, 0);
    kg_list_init(&s->pending);
    kg_list_init(&s->done);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    kg_redis_options ro;
    kg_redis_options_init(&ro);
    ro.host = o->redis_host;
    ro.port = o->redis_port;
    if (o->redis_prefix)
        ro.prefix = o->redis_prefix;
    if (o->redis_password)
        ro.password = o->redis_password;
    /* An event the webhook route accepts is accepted from Redis too: the
     * reader's string bound follows max_body when it is raised past the
     * reader's default. */
    if (o->max_body > (16u << 20) - 65536)
        ro.max_reply = o->max_body + 65536;
    snprintf(s->where, sizeof s->where, "%s:%d", o->redis_host, o->redis_port);
    int rc = 0;
    if (s->replay_n && !(s->live = calloc(KG__LIVE_SET_CAP, sizeof *s->live)))
        rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    if (rc == 0)
        rc = kg_redis_reader_new(&ro, &s->reader, err);
    if (rc == 0)
        rc = kg_redis_reader_new(&ro, &s->fetcher, err);
    if (rc == 0 && pthread_create(&s->thread, NULL, kg__rs_main, s) != 0)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "cannot start the Redis thread");
    s->thread_started = rc == 0;
    if (rc == 0 && pthread_create(&s->fetch_thread, NULL, kg__rs_fetch_main, s) != 0)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "cannot start the Redis fetch thread");
    s->fetch_started = rc == 0;
    if (rc) {
        kg__redis_source_stop(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kg__redis_source_stop(kg__redis_source *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    if (s->fetch_started)
        pthread_join(s->fetch_thread, NULL);
    kg_link *lists[2] = {&s->pending, &s->done};
    for (int i = 0; i < 2; i++)
        while (!kg_list_empty(lists[i])) {
            kg_link *l = lists[i]->next;
            kg_list_remove(l);
            kg__fetch_free(KG_CONTAINER_OF(l, kg__fetch, link));
        }
    kg_redis_reader_free(s->reader);
    kg_redis_reader_free(s->fetcher);
    free(s->live);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void kg__redis_source_stats_get(kg__redis_source *s, kg__redis_source_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    out->messages = atomic_load(&s->messages);
    out->replayed = atomic_load(&s->replayed);
    out->replays = atomic_load(&s->replays);
    out->fetches = atomic_load(&s->fetches);
    out->connected = atomic_load(&s->connected);
}
