/* redis.c - the Redis backend: DESIGN.md's key layout, one pipeline per batch.
 *
 * For every event of a batch this backend appends, to one hiredis pipeline:
 *
 *   PUBLISH <prefix>all <json>            PUBLISH <prefix><event_type> <json>
 *   SETEX   <prefix>event:<id> <ttl> <json>
 *   ZADD    <prefix>workflow:<workflow_id> <ts_ms> <id>   (not for workflow_id "")
 *   ZADD    <prefix>node:<node_id> <ts_ms> <id>           (not for node_id "")
 *   SADD/SREM <prefix>active:nodes <node_id>       on node_started / node_completed, node_failed
 *   SADD/SREM <prefix>active:workflows <wid>       on workflow_started / workflow_completed
 *   XADD    <prefix>stream MAXLEN ~ N * event <json>      (only when stream_maxlen > 0)
 *
 * The active-set updates go through a small Lua script (EVALSHA, loaded with
 * SCRIPT LOAD on every new connection) because they are the one part of the
 * layout that depends on order: the dispatcher's workers send batches
 * concurrently, so a run's workflow_completed can reach Redis before its
 * workflow_started, and a plain SREM-then-SADD would leave the run "active"
 * forever.  The script keeps, per member, the (ts_ms, seq) of the last
 * applied event in <prefix>active:clock:nodes:<id> / ...:workflows:<id>
 * (string "ts:seq", TTL ttl) and ignores older events, so the sets end in the
 * state of the newest event whatever the arrival order.
 * and, once per distinct key of the batch, EXPIRE <key> <ttl> for the sorted
 * sets and INCRBY <prefix>metrics:events:<type> <n> for the counters.  Doing
 * those once per batch instead of once per event gives the same keys, TTLs and
 * counter values (what readers see) for a fraction of the commands: a batch of
 * one workflow's events touches a handful of sorted sets and types.  The whole
 * pipeline is written in one go and every reply is read before returning, so
 * the connection is always in sync when send_batch() returns.
 *
 * Delivery is AT-LEAST-ONCE.  A pipeline is not a transaction: if the
 * connection breaks or times out after Redis executed part of a batch, the
 * batch is reported failed and the dispatcher sends all of it again.  Replaying
 * is harmless for SETEX, ZADD (same member, same score), EXPIRE and the active
 * sets (a replayed event is not newer than itself), but subscribers may receive some messages twice (they de-duplicate on
 * event_id), the counters may count those events twice, and the stream may
 * hold duplicate entries.  A Redis error reply (WRONGTYPE, OOM, ...) to any
 * command also fails the batch, after all replies have been read.
 *
 * Connections: one blocking redisContext per dispatcher worker, created by
 * connect() and owned by that worker's thread from then on, so the send path
 * takes no lock.  A context that failed is freed at once; the next send on
 * that worker reconnects (AUTH, SELECT included).  Before each batch the
 * socket is polled without waiting: an idle connection the server has closed
 * (restart, timeout, CLIENT KILL) is readable, and is replaced before the
 * batch is written rather than failing it.  is_connected() reports what the
 * workers last saw: false from the moment any worker failed to connect or to
 * send, true again once it reconnected.
 *
 * hiredis writes with write(2), which raises SIGPIPE when the server has gone.
 * Library code must not kill its host process nor change its signal handlers,
 * so SIGPIPE is blocked on the calling thread around the I/O and a SIGPIPE
 * raised by it is consumed before unblocking (the technique libpq uses). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "kaygraph/backends.h"

/* Distinct sorted sets (and types) per batch for which EXPIRE (INCRBY) is
 * coalesced.  A batch touching more than this just sends more commands. */
#define KG__REDIS_COALESCE 16

/* Apply SADD/SREM to an active set only if the event is newer than the last
 * one applied to that member: KEYS[1] the set, KEYS[2] the member's clock
 * key; ARGV member, "1" add / "0" remove, ts_ms, seq, ttl.  Newer means a
 * later ts_ms, or the same ts_ms and a higher seq (seq orders the events of
 * one process within a millisecond).  A replayed event is not newer, so
 * replays change nothing. */
static const char kg__active_lua[] =
    "local last = redis.call('GET', KEYS[2])\n"
    "if last then\n"
    "  local sep = string.find(last, ':', 1, true)\n"
    "  if sep then\n"
    "    local lt = tonumber(string.sub(last, 1, sep - 1))\n"
    "    local ls = tonumber(string.sub(last, sep + 1))\n"
    "    local t = tonumber(ARGV[3])\n"
    "    local s = tonumber(ARGV[4])\n"
    "    if t < lt or (t == lt and s <= ls) then return 0 end\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[2], ARGV[3] .. ':' .. ARGV[4], 'EX', ARGV[5])\n"
    "if ARGV[2] == '1' then redis.call('SADD', KEYS[1], ARGV[1])\n"
    "else redis.call('SREM', KEYS[1], ARGV[1]) end\n"
    "return 1\n";

typedef struct kg__redis_worker {
    redisContext *ctx;       /* NULL while disconnected; only its worker touches it */
    atomic_bool up;          /* read by is_connected() from any thread */
    char *key;               /* scratch for key names, grown as needed */
    size_t key_cap;
    char sha[48];            /* the active-set script, loaded on this connection */
} kg__redis_worker;

typedef struct kg__redis {
    char *host;
    int port;
    char *unix_socket;
    char *password;
    int db;
    char *prefix;
    size_t prefix_len;
    char *chan_all;          /* <prefix>all */
    char *stream_key;        /* <prefix>stream */
    char *set_nodes;         /* <prefix>active:nodes */
    char *set_workflows;     /* <prefix>active:workflows */
    char ttl_text[24];
    char maxlen_text[24];
    long stream_maxlen;
    struct timeval connect_tv;
    struct timeval command_tv;
    kg__redis_worker *workers;
    _Atomic unsigned nworkers;   /* published after `workers` is ready */
} kg__redis;

/* ---- small helpers ---------------------------------------------------------- */

static char *kg__strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *kg__concat(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *d = malloc(na + nb + 1);
    if (d) {
        memcpy(d, a, na);
        memcpy(d + na, b, nb + 1);
    }
    return d;
}

static struct timeval kg__tv(double seconds)
{
    struct timeval tv;
    if (seconds <= 0)
        seconds = 0.001;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

typedef struct kg__sigpipe_guard {
    sigset_t old;
    bool pending_before;
} kg__sigpipe_guard;

static void kg__sigpipe_block(kg__sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    /* A SIGPIPE already pending was not ours: leave it for its owner. */
    sigemptyset(&pending);
    sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void kg__sigpipe_restore(kg__sigpipe_guard *g)
{
    if (!g->pending_before) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            /* Raised by our write to a dead socket: consume it so that
             * unblocking does not deliver it (default action: terminate). */
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- connection ------------------------------------------------------------- */

static void kg__worker_drop(kg__redis_worker *w)
{
    if (w->ctx) {
        redisFree(w->ctx);
        w->ctx = NULL;
    }
    atomic_store_explicit(&w->up, false, memory_order_relaxed);
}

/* Map a failed context to a code: a socket timeout (SO_RCVTIMEO/SO_SNDTIMEO
 * expiring) shows as an I/O error with errno EAGAIN in blocking hiredis. */
static int kg__ctx_code(const redisContext *c, int saved_errno)
{
    if (c && c->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT))
        return KG_ETIMEOUT;
    if (c && c->err == REDIS_ERR_OOM)
        return KG_ENOMEM;
    if (c && c->err == REDIS_ERR_PROTOCOL)
        return KG_EPROTO;
    return KG_ECONNECT;
}

/* Run one command on a fresh context during the handshake; 0 when the reply
 * is not an error. */
static int kg__handshake_cmd(redisContext *c, int argc, const char **argv)
{
    size_t lens[3];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *reply = redisCommandArgv(c, argc, argv, lens);
    if (!reply)
        return kg__ctx_code(c, errno);
    int rc = reply->type == REDIS_REPLY_ERROR ? KG_EBACKEND : 0;
    freeReplyObject(reply);
    return rc;
}

static int kg__worker_connect(kg__redis *r, kg__redis_worker *w)
{
    redisContext *c;
    kg__worker_drop(w);
    if (r->unix_socket)
        c = redisConnectUnixWithTimeout(r->unix_socket, r->connect_tv);
    else
        c = redisConnectWithTimeout(r->host, r->port, r->connect_tv);
    if (!c)
        return KG_ENOMEM;
    if (c->err) {
        int rc = c->err == REDIS_ERR_OOM ? KG_ENOMEM : KG_ECONNECT;
        redisFree(c);
        return rc;
    }
    /* The connect timeout also became the socket timeout; commands get their
     * own bound.  TCP keepalive lets an idle connection to a vanished host
     * die instead of hanging the next send until the command timeout. */
    if (redisSetTimeout(c, r->command_tv) != REDIS_OK) {
        redisFree(c);
        return KG_ECONNECT;
    }
    if (!r->unix_socket)
        redisEnableKeepAlive(c);
    int rc = 0;
    if (r->password) {
        const char *argv[2] = {"AUTH", r->password};
        rc = kg__handshake_cmd(c, 2, argv);
    }
    if (rc == 0 && r->db > 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = {"SELECT", db};
        rc = kg__handshake_cmd(c, 2, argv);
    }
    if (rc == 0) {
        const char *argv[3] = {"SCRIPT", "LOAD", kg__active_lua};
        size_t lens[3] = {6, 4, sizeof kg__active_lua - 1};
        redisReply *reply = redisCommandArgv(c, 3, argv, lens);
        if (!reply)
            rc = kg__ctx_code(c, errno);
        else if (reply->type != REDIS_REPLY_STRING || reply->len >= sizeof w->sha)
            rc = KG_EBACKEND;
        else
            memcpy(w->sha, reply->str, reply->len + 1);
        if (reply)
            freeReplyObject(reply);
    }
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    w->ctx = c;
    atomic_store_explicit(&w->up, true, memory_order_relaxed);
    return 0;
}

/* An idle blocking connection has nothing to read: if its socket is readable,
 * the server closed it (or sent an error and closed it). */
static bool kg__worker_alive(const kg__redis_worker *w)
{
    struct pollfd p = {.fd = w->ctx->fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    return n == 0;
}

/* ---- pipeline --------------------------------------------------------------- */

typedef struct kg__pipe {
    kg__redis *r;
    kg__redis_worker *w;
    size_t commands;        /* appended, replies to read */
    int rc;                 /* first failure while appending */
    /* Sorted sets whose EXPIRE is deferred to the end of the batch. */
    struct { const char *kind; const char *id; } expire[KG__REDIS_COALESCE];
    size_t nexpire;
    /* Counters per event type, sent as INCRBY at the end of the batch. */
    struct { const char *type; long long n; } incr[KG__REDIS_COALESCE];
    size_t nincr;
} kg__pipe;

/* <prefix><mid><id> in the worker's scratch buffer; NULL when out of memory. */
static const char *kg__key(kg__pipe *p, const char *mid, const char *id, size_t *len)
{
    size_t nm = strlen(mid), ni = strlen(id);
    size_t need = p->r->prefix_len + nm + ni + 1;
    kg__redis_worker *w = p->w;
    if (need > w->key_cap) {
        size_t cap = need < 256 ? 256 : need;
        char *k = realloc(w->key, cap);
        if (!k)
            return NULL;
        w->key = k;
        w->key_cap = cap;
    }
    memcpy(w->key, p->r->prefix, p->r->prefix_len);
    memcpy(w->key + p->r->prefix_len, mid, nm);
    memcpy(w->key + p->r->prefix_len + nm, id, ni + 1);
    *len = need - 1;
    return w->key;
}

static void kg__append(kg__pipe *p, int argc, const char **argv, const size_t *lens)
{
    if (p->rc)
        return;
    /* hiredis formats the command into its output buffer at once, so argv
     * (and the scratch key) may be reused right after. */
    if (redisAppendCommandArgv(p->w->ctx, argc, argv, lens) != REDIS_OK) {
        p->rc = KG_ENOMEM;
        return;
    }
    p->commands++;
}

/* CMD <prefix><mid><id> [arg...] */
static void kg__append_keyed(kg__pipe *p, const char *cmd, const char *mid, const char *id,
                             int nargs, const char **args, const size_t *arglens)
{
    const char *argv[6];
    size_t lens[6];
    size_t klen = 0;
    const char *key = kg__key(p, mid, id, &klen);
    if (!key) {
        p->rc = KG_ENOMEM;
        return;
    }
    argv[0] = cmd;
    lens[0] = strlen(cmd);
    argv[1] = key;
    lens[1] = klen;
    for (int i = 0; i < nargs; i++) {
        argv[2 + i] = args[i];
        lens[2 + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    kg__append(p, 2 + nargs, argv, lens);
}

static void kg__expire_later(kg__pipe *p, const char *kind, const char *id)
{
    for (size_t i = 0; i < p->nexpire; i++)
        if (p->expire[i].kind == kind && strcmp(p->expire[i].id, id) == 0)
            return;
    if (p->nexpire < KG__REDIS_COALESCE) {
        p->expire[p->nexpire].kind = kind;
        p->expire[p->nexpire].id = id;
        p->nexpire++;
        return;
    }
    const char *args[1] = {p->r->ttl_text};
    kg__append_keyed(p, "EXPIRE", kind, id, 1, args, NULL);
}

static void kg__incr_later(kg__pipe *p, const char *type)
{
    for (size_t i = 0; i < p->nincr; i++)
        if (strcmp(p->incr[i].type, type) == 0) {
            p->incr[i].n++;
            return;
        }
    if (p->nincr < KG__REDIS_COALESCE) {
        p->incr[p->nincr].type = type;
        p->incr[p->nincr].n = 1;
        p->nincr++;
        return;
    }
    kg__append_keyed(p, "INCR", "metrics:events:", type, 0, NULL, NULL);
}

static const char *kg__s(const char *s)
{
    return s ? s : "";
}

static void kg__append_event(kg__pipe *p, const kg_event_view *e)
{
    kg__redis *r = p->r;
    const char *type = kg__s(e->event_type);
    const char *name = kg__s(e->event_name);
    const char *id = kg__s(e->event_id);
    const char *node = kg__s(e->node_id);
    const char *wf = kg__s(e->workflow_id);
    size_t idlen = strlen(id);
    char ts[24];
    size_t tslen = (size_t)snprintf(ts, sizeof ts, "%lld", (long long)e->timestamp_ms);

    {
        const char *argv[3] = {"PUBLISH", r->chan_all, e->json};
        size_t lens[3] = {7, r->prefix_len + 3, e->json_len};
        kg__append(p, 3, argv, lens);
    }
    {
        const char *args[1] = {e->json};
        size_t lens[1] = {e->json_len};
        kg__append_keyed(p, "PUBLISH", "", type, 1, args, lens);
    }
    if (*id) {
        const char *args[2] = {r->ttl_text, e->json};
        size_t lens[2] = {strlen(r->ttl_text), e->json_len};
        kg__append_keyed(p, "SETEX", "event:", id, 2, args, lens);
        const char *zargs[2] = {ts, id};
        size_t zlens[2] = {tslen, idlen};
        /* Dispatcher metrics belong to no workflow run. */
        if (*wf) {
            kg__append_keyed(p, "ZADD", "workflow:", wf, 2, zargs, zlens);
            kg__expire_later(p, "workflow:", wf);
        }
        if (*node) {
            kg__append_keyed(p, "ZADD", "node:", node, 2, zargs, zlens);
            kg__expire_later(p, "node:", node);
        }
    }
    kg__incr_later(p, type);

    /* Active sets: through the ordering script (see the header comment). */
    const char *member = NULL, *add = NULL;
    bool nodes = true;
    if (strcmp(name, "node_started") == 0) {
        add = "1", member = node;
    } else if (strcmp(name, "node_completed") == 0 || strcmp(name, "node_failed") == 0) {
        add = "0", member = node;
    } else if (strcmp(name, "workflow_started") == 0) {
        add = "1", member = wf, nodes = false;
    } else if (strcmp(name, "workflow_completed") == 0) {
        add = "0", member = wf, nodes = false;
    }
    if (add && *member) {
        size_t clen = 0;
        const char *clock =
            kg__key(p, nodes ? "active:clock:nodes:" : "active:clock:workflows:", member, &clen);
        if (!clock) {
            p->rc = KG_ENOMEM;
            return;
        }
        char seq[24];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)e->seq);
        const char *argv[10] = {"EVALSHA", p->w->sha, "2",
                                nodes ? r->set_nodes : r->set_workflows, clock, member, add,
                                ts, seq, r->ttl_text};
        size_t lens[10];
        for (int i = 0; i < 10; i++)
            lens[i] = i == 4 ? clen : strlen(argv[i]);
        kg__append(p, 10, argv, lens);
    }

    if (r->stream_maxlen > 0) {
        const char *argv[7] = {"XADD", r->stream_key, "MAXLEN", "~", r->maxlen_text, "*", "event"};
        const char *full[8];
        size_t lens[8];
        for (int i = 0; i < 7; i++) {
            full[i] = argv[i];
            lens[i] = strlen(argv[i]);
        }
        full[7] = e->json;
        lens[7] = e->json_len;
        kg__append(p, 8, full, lens);
    }
}

static void kg__append_deferred(kg__pipe *p)
{
    for (size_t i = 0; i < p->nexpire; i++) {
        const char *args[1] = {p->r->ttl_text};
        kg__append_keyed(p, "EXPIRE", p->expire[i].kind, p->expire[i].id, 1, args, NULL);
    }
    for (size_t i = 0; i < p->nincr; i++) {
        char n[24];
        snprintf(n, sizeof n, "%lld", p->incr[i].n);
        const char *args[1] = {n};
        kg__append_keyed(p, "INCRBY", "metrics:events:", p->incr[i].type, 1, args, NULL);
    }
}

/* Write the pipeline and read every reply.  Any I/O failure leaves the
 * context unusable (replies still in flight), so it is dropped. */
static int kg__pipe_run(kg__pipe *p)
{
    redisContext *c = p->w->ctx;
    int rc = 0;
    bool noscript = false;
    for (size_t i = 0; i < p->commands; i++) {
        void *v = NULL;
        if (redisGetReply(c, &v) != REDIS_OK || !v) {
            int saved = errno;
            rc = kg__ctx_code(c, saved);
            kg__worker_drop(p->w);
            return rc;
        }
        redisReply *reply = v;
        if (reply->type == REDIS_REPLY_ERROR) {
            rc = KG_EBACKEND;
            noscript |= strncmp(reply->str, "NOSCRIPT", 8) == 0;
        }
        freeReplyObject(reply);
    }
    /* The script cache was flushed (SCRIPT FLUSH, failover): reconnecting
     * loads it again, so the retry of this batch can succeed. */
    if (noscript)
        kg__worker_drop(p->w);
    return rc;
}

/* ---- the ops table ------------------------------------------------------------ */

static int redis_connect(void *data, unsigned workers)
{
    kg__redis *r = data;
    if (workers == 0)
        return KG_EINVAL;
    unsigned have = atomic_load_explicit(&r->nworkers, memory_order_acquire);
    if (have != workers) {
        /* Only reached when connect() is called again with another worker
         * count, which the dispatcher never does while sending. */
        for (unsigned i = 0; i < have; i++) {
            kg__worker_drop(&r->workers[i]);
            free(r->workers[i].key);
        }
        atomic_store_explicit(&r->nworkers, 0, memory_order_release);
        free(r->workers);
        r->workers = calloc(workers, sizeof *r->workers);
        if (!r->workers)
            return KG_ENOMEM;
        for (unsigned i = 0; i < workers; i++)
            atomic_init(&r->workers[i].up, false);
        atomic_store_explicit(&r->nworkers, workers, memory_order_release);
    }
    int first = 0;
    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    for (unsigned i = 0; i < workers; i++) {
        int rc = kg__worker_connect(r, &r->workers[i]);
        if (rc && !first)
            first = rc;
        /* The server is down or refuses us: the other workers would fail the
         * same way, each after a connect timeout.  They connect on first use. */
        if (rc)
            break;
    }
    kg__sigpipe_restore(&g);
    return first;
}

static int redis_send_batch(void *data, unsigned worker, const kg_batch *batch)
{
    kg__redis *r = data;
    if (worker >= atomic_load_explicit(&r->nworkers, memory_order_acquire))
        return KG_EINVAL;
    if (!batch || batch->count == 0)
        return 0;
    kg__redis_worker *w = &r->workers[worker];
    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    int rc = 0;
    if (w->ctx && !kg__worker_alive(w))
        kg__worker_drop(w);
    if (!w->ctx)
        rc = kg__worker_connect(r, w);
    if (rc == 0) {
        kg__pipe p;
        memset(&p, 0, sizeof p);
        p.r = r;
        p.w = w;
        for (size_t i = 0; i < batch->count && p.rc == 0; i++)
            kg__append_event(&p, &batch->events[i]);
        kg__append_deferred(&p);
        if (p.rc) {
            /* Half a pipeline sits in the output buffer: start afresh. */
            kg__worker_drop(w);
            rc = p.rc;
        } else {
            rc = kg__pipe_run(&p);
        }
    }
    kg__sigpipe_restore(&g);
    return rc;
}

static void redis_disconnect(void *data)
{
    kg__redis *r = data;
    unsigned n = atomic_load_explicit(&r->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        kg__worker_drop(&r->workers[i]);
}

static bool redis_is_connected(void *data)
{
    kg__redis *r = data;
    unsigned n = atomic_load_explicit(&r->nworkers, memory_order_acquire);
    if (n == 0)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (!atomic_load_explicit(&r->workers[i].up, memory_order_relaxed))
            return false;
    return true;
}

static void redis_destroy(void *data)
{
    kg__redis *r = data;
    if (!r)
        return;
    unsigned n = atomic_load_explicit(&r->nworkers, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        kg__worker_drop(&r->workers[i]);
        free(r->workers[i].key);
    }
    free(r->workers);
    free(r->host);
    free(r->unix_socket);
    free(r->password);
    free(r->prefix);
    free(r->chan_all);
    free(r->stream_key);
    free(r->set_nodes);
    free(r->set_workflows);
    free(r);
}

static const kg_backend_ops kg__redis_ops = {
    .name = "redis",
    .connect = redis_connect,
    .send_batch = redis_send_batch,
    .disconnect = redis_disconnect,
    .is_connected = redis_is_connected,
    .destroy = redis_destroy,
};

void kg_redis_options_init(kg_redis_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 6379;
    o->prefix = "kaygraph:monitoring:";
    o->ttl = 3600;
    o->connect_timeout = 1.0;
    o->command_timeout = 2.0;
}

kg_backend_t *kg_redis_backend_new(const kg_redis_options *o, kg_error_t *err)
{
    kg_redis_options defaults;
    if (!o) {
        kg_redis_options_init(&defaults);
        o = &defaults;
    }
    if (!o->unix_socket && (o->port <= 0 || o->port > 65535)) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "redis port %d out of range", o->port);
        return NULL;
    }
    if (o->ttl <= 0 || o->db < 0 || o->connect_timeout < 0 || o->command_timeout < 0) {
        kg_error_set(err, KG_EINVAL, "ArgumentError",
                     "redis ttl must be > 0, db >= 0 and timeouts >= 0");
        return NULL;
    }
    kg__redis *r = calloc(1, sizeof *r);
    if (!r) {
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    atomic_init(&r->nworkers, 0);
    const char *prefix = o->prefix ? o->prefix : "kaygraph:monitoring:";
    r->host = kg__strdup(o->host && *o->host ? o->host : "127.0.0.1");
    r->port = o->port;
    r->unix_socket = o->unix_socket && *o->unix_socket ? kg__strdup(o->unix_socket) : NULL;
    r->password = o->password && *o->password ? kg__strdup(o->password) : NULL;
    r->db = o->db;
    r->prefix = kg__strdup(prefix);
    r->prefix_len = strlen(prefix);
    r->chan_all = kg__concat(prefix, "all");
    r->stream_key = kg__concat(prefix, "stream");
    r->set_nodes = kg__concat(prefix, "active:nodes");
    r->set_workflows = kg__concat(prefix, "active:workflows");
    r->stream_maxlen = o->stream_maxlen;
    snprintf(r->ttl_text, sizeof r->ttl_text, "%d", o->ttl);
    snprintf(r->maxlen_text, sizeof r->maxlen_text, "%ld", o->stream_maxlen);
    r->connect_tv = kg__tv(o->connect_timeout > 0 ? o->connect_timeout : 1.0);
    r->command_tv = kg__tv(o->command_timeout > 0 ? o->command_timeout : 2.0);
    if (!r->host || !r->prefix || !r->chan_all || !r->stream_key || !r->set_nodes ||
        !r->set_workflows ||
        (o->unix_socket && *o->unix_socket && !r->unix_socket) ||
        (o->password && *o->password && !r->password)) {
        redis_destroy(r);
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    kg_backend_t *b = kg_backend_new(&kg__redis_ops, r);
    if (!b)
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    return b;
}
