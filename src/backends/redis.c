/* redis.c - the Redis backend: the key layout of docs/redis.md, one pipeline per batch.
 *
 * For a batch of events this backend writes one pipeline, in this order:
 *
 *   SETEX   <prefix>event:<id> <ttl> <json>                 per event
 *   ZADD    <prefix>workflow:<wid> <ts_ms> <id> [<ts_ms> <id> ...]
 *           then EXPIRE <key> <ttl>                          per workflow of the batch
 *   ZADD    <prefix>node:<node_id> <ts_ms> <id> [...]; EXPIRE   per node of the batch
 *   INCRBY  <prefix>metrics:events:<type> <n>                per event type of the batch
 *   EVALSHA <active-node script>                             once, if the batch has any
 *                                                            node_started / node_completed /
 *                                                            node_failed
 *   SADD / SREM <prefix>active:workflows <wid> [...]         once each, if the batch has
 *                                                            workflow_started / _completed
 *   XADD    <prefix>stream MAXLEN ~ N * event <json>         per event, when stream_maxlen > 0
 *   PUBLISH <prefix>all <json>; PUBLISH <prefix><type> <json>   per event
 *
 * Readers see exactly docs/redis.md's layout (an event's key, its place in the
 * workflow and node sorted sets with score = epoch ms, the TTLs, the counters,
 * the active sets, the two channels); only the number of commands differs
 * from a literal reading of it: the sorted-set insertions, EXPIREs and
 * counter increments of a batch are grouped per key (one variadic ZADD per
 * workflow / node of the batch instead of one per event), which is the same
 * data for a fraction of the server's per-command cost.  Events with no
 * workflow_id (dispatcher metrics) are not indexed under "workflow:".
 *
 * Stored before published: every PUBLISH comes after the SETEX/ZADD of the
 * batch, so a subscriber that reacts to a message by reading the event's key
 * or its run's index finds it there.
 *
 * Active sets.  They are the one part of the layout that depends on order.
 *
 * Nodes: node ids are shared by every run and every process, so two runs on
 * two workers (or two hosts) can have "validator" start in one and complete
 * in the other in any order of arrival, and a plain SADD/SREM would leave the
 * set in the state of the last *arrival* rather than of the last *event*.
 * A Lua script applies them: it keeps per node the (ts_ms, seq) of the last
 * applied event in the hash <prefix>active:clock:nodes (TTL ttl) and ignores
 * older events, so the set ends in the state of the newest event whatever
 * the arrival order, and a replayed batch changes nothing.  Within a batch
 * only the newest event per node matters, so the backend keeps just that one
 * and sends all of the batch's node decisions in ONE script call (a demo
 * batch of 100 events holds about 30 such events for 5 distinct nodes).
 *
 * Workflows: a workflow_id names one run of one process, and the monitor
 * sends all of a run's events through one worker, in order, each batch
 * acknowledged before the next is taken (src/monitor/monitor.c,
 * dispatcher.c); a failed batch is retried whole before anything later.  So
 * a run's workflow_started can never arrive after its workflow_completed:
 * the newest decision per run within the batch goes out as a plain variadic
 * SADD / SREM, with no per-run clock key (which would have cost a key per
 * run for ttl seconds: millions per hour at full rate).  A caller that
 * drives this backend directly must keep that per-run order itself.
 *
 * Delivery is AT-LEAST-ONCE.  A pipeline is not a transaction: if the
 * connection breaks or times out after Redis executed part of a batch, the
 * batch is reported failed and the dispatcher sends all of it again.
 * Replaying is harmless for SETEX, ZADD (same member, same score), EXPIRE and
 * the active sets, but subscribers may receive some messages twice (they
 * de-duplicate on event_id), the counters may count those events twice, and
 * the stream may hold duplicate entries.  A Redis error reply (WRONGTYPE,
 * OOM, ...) to any command also fails the batch, after all replies have
 * been read.
 *
 * The lean layout (kg_redis_options.layout, docs/redis.md) keeps what the
 * live views and a run's history need and drops what costs the server most
 * per event (a SETEX of 2.4 us, a ZADD of 2.7 us, a second PUBLISH): per
 * batch it writes
 *
 *   HSET    <prefix>run:<wid> <seq> <json> [<seq> <json> ...]; EXPIRE   per run of the batch
 *   INCRBY, the active-set script, SADD / SREM                    as above
 *   XADD    <prefix>stream MAXLEN ~ N * events <json>\n<json>...   one entry per batch, when on
 *   PUBLISH <prefix>all <json>\n<json>...                          one message per batch
 *
 * (a batch over 1 MiB of JSON goes out as several such messages / entries)
 *
 * and, on connecting, SET <prefix>layout lean (the seed layout deletes that
 * key), which is how kg_redis_reader knows what to read.
 *
 * Speed.  The pipeline is encoded in RESP by this file into one per-worker
 * buffer and handed to hiredis in one append (no per-command allocation),
 * and replies are parsed with reply functions that only note errors (no
 * reply objects).  The JSON of an event is copied into the buffer three
 * times (SETEX, two PUBLISH) and once more with the stream.
 *
 * Connections: one blocking redisContext per dispatcher worker, created by
 * connect() and owned by that worker's thread from then on, so the send path
 * takes no lock.  A context that failed is freed at once; the next send on
 * that worker reconnects (AUTH, SELECT, SCRIPT LOAD included).  Before each
 * batch the socket is polled without waiting: an idle connection the server
 * has closed (restart, timeout, CLIENT KILL) is readable, and is replaced
 * before the batch is written rather than failing it.  is_connected()
 * reports what the workers last saw: false from the moment any worker failed
 * to connect or to send, true again once it reconnected.
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

#include "backends/redis_keys.h"
#include "backends/sigpipe.h"
#include "kaygraph/backends.h"

/* The active-node script: every SADD/SREM decision of a batch about nodes in
 * one call.  KEYS[1] <prefix>active:nodes, KEYS[2] <prefix>active:clock:nodes
 * (a hash: node id -> "ts_ms:seq" of the last decision applied, TTL ttl).
 * ARGV[1] ttl, then per decision: member, "1" add / "0" remove, ts_ms, seq.
 * A decision is applied only if its event is newer than the last one applied
 * to that member: a later ts_ms, or the same ts_ms and a higher seq (seq
 * orders the events of one process within a millisecond).  A replayed event
 * is not newer than itself, so replays change nothing.  A member has at most
 * one decision per call, so its adds and removes never meet.  Returns how
 * many decisions were applied. */
static const char kg__active_lua[] =
    "local ttl = ARGV[1]\n"
    "local n = (#ARGV - 1) / 4\n"
    "local applied = 0\n"
    "local sets, adds, rems = {}, {}, {}\n"
    /* In chunks: unpack() is bounded by the Lua stack. */
    "for c = 1, n, 256 do\n"
    "  local last = math.min(c + 255, n)\n"
    "  local fields = {}\n"
    "  for i = c, last do fields[#fields + 1] = ARGV[2 + (i - 1) * 4] end\n"
    "  local clocks = redis.call('HMGET', KEYS[2], unpack(fields))\n"
    "  for i = c, last do\n"
    "    local a = 2 + (i - 1) * 4\n"
    "    local t = tonumber(ARGV[a + 2])\n"
    "    local s = tonumber(ARGV[a + 3])\n"
    "    local newer = true\n"
    "    local prev = clocks[i - c + 1]\n"
    "    if prev then\n"
    "      local sep = string.find(prev, ':', 1, true)\n"
    "      if sep then\n"
    "        local lt = tonumber(string.sub(prev, 1, sep - 1))\n"
    "        local ls = tonumber(string.sub(prev, sep + 1))\n"
    "        if t < lt or (t == lt and s <= ls) then newer = false end\n"
    "      end\n"
    "    end\n"
    "    if newer then\n"
    "      sets[#sets + 1] = ARGV[a]\n"
    "      sets[#sets + 1] = ARGV[a + 2] .. ':' .. ARGV[a + 3]\n"
    "      if ARGV[a + 1] == '1' then adds[#adds + 1] = ARGV[a]\n"
    "      else rems[#rems + 1] = ARGV[a] end\n"
    "      applied = applied + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for c = 1, #sets, 512 do\n"
    "  redis.call('HSET', KEYS[2], unpack(sets, c, math.min(c + 511, #sets)))\n"
    "end\n"
    "if n > 0 then redis.call('EXPIRE', KEYS[2], ttl) end\n"
    "for c = 1, #adds, 512 do\n"
    "  redis.call('SADD', KEYS[1], unpack(adds, c, math.min(c + 511, #adds)))\n"
    "end\n"
    "for c = 1, #rems, 512 do\n"
    "  redis.call('SREM', KEYS[1], unpack(rems, c, math.min(c + 511, #rems)))\n"
    "end\n"
    "return applied\n";

/* Group kinds of a batch (see kg__pipe). */
enum { KG__G_WF, KG__G_NODE, KG__G_ACT_NODE, KG__G_ACT_WF, KG__G_TYPE };

/* A distinct (kind, id) of a batch: a workflow or node sorted set with its
 * events (a chain through kg__scratch.next[kind]), an active-set member with
 * its newest event, or an event type with its count. */
typedef struct kg__group {
    const char *id;
    size_t id_len;
    uint32_t kind;
    uint32_t n;          /* events in the group */
    uint32_t head, tail; /* chain of event indexes (sorted sets) */
    uint32_t best;       /* newest event (active sets) */
    bool add;            /* its decision: SADD (true) or SREM */
} kg__group;

/* Per-worker scratch, grown to the largest batch seen. */
typedef struct kg__scratch {
    size_t events_cap;        /* capacity of next[], in events */
    uint32_t *next[2];        /* chains of KG__G_WF / KG__G_NODE groups */
    kg__group *groups;
    size_t ngroups, groups_cap;
    uint32_t *table;          /* open addressing: group index + 1, 0 = empty */
    size_t table_cap;         /* power of two */
    char *out;                /* the pipeline, in RESP */
    size_t out_len, out_cap;
    bool failed;              /* out of memory while building */
} kg__scratch;

typedef struct kg__redis_worker {
    redisContext *ctx;       /* NULL while disconnected; only its worker touches it */
    atomic_bool up;          /* read by is_connected() from any thread */
    char sha[48];            /* the active-set script, loaded on this connection */
    kg__scratch s;
    /* Reply accounting of the pipeline being read (kg__reply_fns). */
    size_t reply_errors;
    bool reply_noscript;
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
    kg_redis_layout layout;
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

/* ---- replies ---------------------------------------------------------------- */

/* hiredis reply functions that build no objects: the pipeline only needs to
 * know whether some reply was an error (and whether that was NOSCRIPT).
 * hiredis needs a non-NULL object back (NULL means out of memory), so each
 * returns the worker itself as a marker; freeObject does nothing. */
static void *kg__reply_string(const redisReadTask *t, char *s, size_t n)
{
    kg__redis_worker *w = t->privdata;
    if (t->type == REDIS_REPLY_ERROR) {
        w->reply_errors++;
        if (n >= 8 && memcmp(s, "NOSCRIPT", 8) == 0)
            w->reply_noscript = true;
    }
    return w;
}

static void *kg__reply_array(const redisReadTask *t, int n)
{
    (void)n;
    return t->privdata;
}

static void *kg__reply_integer(const redisReadTask *t, long long v)
{
    (void)v;
    return t->privdata;
}

static void *kg__reply_nil(const redisReadTask *t)
{
    return t->privdata;
}

static void kg__reply_free(void *obj)
{
    (void)obj;
}

static redisReplyObjectFunctions kg__reply_fns = {
    kg__reply_string, kg__reply_array, kg__reply_integer, kg__reply_nil, kg__reply_free};

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
        /* Readers look here to know which layout they read: "lean", or no
         * key at all for the seed layout (which so keeps its exact key set;
         * a marker a lean writer left under the same prefix goes). */
        char *key = kg__concat(r->prefix, KG_REDIS_KEY_LAYOUT);
        bool lean = r->layout == KG_REDIS_LAYOUT_LEAN;
        const char *argv[3] = {lean ? "SET" : "DEL", key, KG_REDIS_LAYOUT_LEAN_MARK};
        rc = key ? kg__handshake_cmd(c, lean ? 3 : 2, argv) : KG_ENOMEM;
        free(key);
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
    /* From now on replies are only checked for errors (kg__reply_fns). */
    c->reader->fn = &kg__reply_fns;
    c->reader->privdata = w;
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

/* ---- the pipeline, in RESP ---------------------------------------------------- */

static bool kg__out_reserve(kg__scratch *s, size_t more)
{
    if (s->failed)
        return false;
    if (s->out_cap - s->out_len >= more)
        return true;
    size_t cap = s->out_cap ? s->out_cap : 65536;
    while (cap - s->out_len < more)
        cap *= 2;
    char *p = realloc(s->out, cap);
    if (!p) {
        s->failed = true;
        return false;
    }
    s->out = p;
    s->out_cap = cap;
    return true;
}

/* Decimal text of v into buf (at least 21 bytes); returns its length. */
static size_t kg__utoa(char *buf, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static size_t kg__itoa(char *buf, long long v)
{
    if (v < 0) {
        buf[0] = '-';
        return 1 + kg__utoa(buf + 1, 0ULL - (unsigned long long)v);
    }
    return kg__utoa(buf, (unsigned long long)v);
}

/* "*<argc>\r\n": the start of a command. */
static void kg__out_cmd(kg__scratch *s, size_t argc)
{
    if (!kg__out_reserve(s, 32))
        return;
    char *p = s->out + s->out_len;
    *p++ = '*';
    p += kg__utoa(p, argc);
    *p++ = '\r';
    *p++ = '\n';
    s->out_len = (size_t)(p - s->out);
}

/* One argument made of up to three pieces (prefix, middle, id): key names
 * are written straight into the pipeline without being built elsewhere. */
static void kg__out_arg3(kg__scratch *s, const char *a, size_t na, const char *b, size_t nb,
                         const char *c, size_t nc)
{
    size_t n = na + nb + nc;
    if (!kg__out_reserve(s, n + 32))
        return;
    char *p = s->out + s->out_len;
    *p++ = '$';
    p += kg__utoa(p, n);
    *p++ = '\r';
    *p++ = '\n';
    if (na)
        memcpy(p, a, na);
    p += na;
    if (nb)
        memcpy(p, b, nb);
    p += nb;
    if (nc)
        memcpy(p, c, nc);
    p += nc;
    *p++ = '\r';
    *p++ = '\n';
    s->out_len = (size_t)(p - s->out);
}

static void kg__out_arg(kg__scratch *s, const char *a, size_t n)
{
    kg__out_arg3(s, a, n, NULL, 0, NULL, 0);
}

static void kg__out_str(kg__scratch *s, const char *a)
{
    kg__out_arg3(s, a, strlen(a), NULL, 0, NULL, 0);
}

static void kg__out_int(kg__scratch *s, long long v)
{
    char buf[24];
    kg__out_arg(s, buf, kg__itoa(buf, v));
}

/* ---- grouping a batch by key ---------------------------------------------------- */

/* Make room for a batch of n events: chains, groups (at most 4 per event:
 * workflow, node, an active-set member, a type -- fewer in practice) and a
 * hash table at most half full. */
static bool kg__scratch_fit(kg__scratch *s, size_t n)
{
    if (n > s->events_cap) {
        for (int k = 0; k < 2; k++) {
            uint32_t *p = realloc(s->next[k], n * sizeof *p);
            if (!p)
                return false;
            s->next[k] = p;
        }
        kg__group *g = realloc(s->groups, 4 * n * sizeof *g);
        if (!g)
            return false;
        s->groups = g;
        s->groups_cap = 4 * n;
        size_t cap = 16;
        while (cap < 2 * s->groups_cap)
            cap *= 2;
        uint32_t *t = realloc(s->table, cap * sizeof *t);
        if (!t)
            return false;
        s->table = t;
        s->table_cap = cap;
        s->events_cap = n;
    }
    memset(s->table, 0, s->table_cap * sizeof *s->table);
    s->ngroups = 0;
    s->out_len = 0;
    s->failed = false;
    return true;
}

/* The group (kind, id), created empty when new. */
static kg__group *kg__group_get(kg__scratch *s, uint32_t kind, const char *id)
{
    size_t len = strlen(id);
    uint64_t h = 1469598103934665603ULL ^ kind;   /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211ULL;
    }
    size_t mask = s->table_cap - 1;
    for (size_t at = (size_t)h & mask;; at = (at + 1) & mask) {
        uint32_t gi = s->table[at];
        if (gi == 0) {
            kg__group *g = &s->groups[s->ngroups];
            memset(g, 0, sizeof *g);
            g->id = id;
            g->id_len = len;
            g->kind = kind;
            s->table[at] = (uint32_t)++s->ngroups;
            return g;
        }
        kg__group *g = &s->groups[gi - 1];
        if (g->kind == kind && g->id_len == len && memcmp(g->id, id, len) == 0)
            return g;
    }
}

static void kg__group_chain(kg__scratch *s, kg__group *g, uint32_t ev)
{
    uint32_t *next = s->next[g->kind];
    next[ev] = UINT32_MAX;
    if (g->n++ == 0)
        g->head = ev;
    else
        next[g->tail] = ev;
    g->tail = ev;
}

static const char *kg__s(const char *s)
{
    return s ? s : "";
}

/* Is e newer than f, in the order the active-set script uses? */
static bool kg__newer(const kg_event_view *e, const kg_event_view *f)
{
    return e->timestamp_ms > f->timestamp_ms ||
           (e->timestamp_ms == f->timestamp_ms && e->seq > f->seq);
}

/* The active-set decision an event carries: 1 add, 0 remove, -1 none. */
static int kg__active_of(const kg_event_view *e, bool *nodes)
{
    const char *name = kg__s(e->event_name);
    *nodes = true;
    if (strcmp(name, "node_started") == 0)
        return 1;
    if (strcmp(name, "node_completed") == 0 || strcmp(name, "node_failed") == 0)
        return 0;
    *nodes = false;
    if (strcmp(name, "workflow_started") == 0)
        return 1;
    if (strcmp(name, "workflow_completed") == 0)
        return 0;
    return -1;
}

/* Lean layout: a run's events of the batch into its hash, field = seq, and
 * the hash's expiry renewed (one key per run instead of a key per event and
 * two sorted-set entries). */
static void kg__lean_run(kg__redis *r, kg__scratch *s, const kg__group *g,
                         const kg_event_view *ev)
{
    kg__out_cmd(s, 2 + 2 * (size_t)g->n);
    kg__out_arg(s, "HSET", 4);
    kg__out_arg3(s, r->prefix, r->prefix_len, KG_REDIS_KEY_RUN, KG_REDIS_LEN(KG_REDIS_KEY_RUN), g->id, g->id_len);
    for (uint32_t i = g->head; i != UINT32_MAX; i = s->next[KG__G_WF][i]) {
        char seq[24];
        kg__out_arg(s, seq, kg__utoa(seq, ev[i].seq));
        kg__out_arg(s, ev[i].json, ev[i].json_len);
    }
    kg__out_cmd(s, 3);
    kg__out_arg(s, "EXPIRE", 6);
    kg__out_arg3(s, r->prefix, r->prefix_len, KG_REDIS_KEY_RUN, KG_REDIS_LEN(KG_REDIS_KEY_RUN), g->id, g->id_len);
    kg__out_str(s, r->ttl_text);
}

/* Lean messages and stream entries hold several events, one per line, but
 * no more than about this many bytes (a reader bounds what one reply element
 * may carry: kg_redis_options.max_reply, 16 MiB by default). */
#define KG__LEAN_CHUNK (1u << 20)

/* Where the chunk of events starting at `from` ends: as many as fit in
 * KG__LEAN_CHUNK bytes, at least one. */
static size_t kg__lean_chunk_end(const kg_batch *batch, size_t from)
{
    size_t to = from, bytes = 0;
    while (to < batch->count && (to == from || bytes + batch->events[to].json_len < KG__LEAN_CHUNK))
        bytes += batch->events[to++].json_len + 1;
    return to;
}

/* One argument: events [from, to)'s JSON, one per line (JSON text has no raw
 * newline, so a reader splits on "\n"). */
static void kg__out_events(kg__scratch *s, const kg_batch *batch, size_t from, size_t to)
{
    size_t total = 0;
    for (size_t i = from; i < to; i++)
        total += batch->events[i].json_len + 1;
    if (!kg__out_reserve(s, total + 32))
        return;
    char *p = s->out + s->out_len;
    *p++ = '$';
    p += kg__utoa(p, total ? total - 1 : 0);
    *p++ = '\r';
    *p++ = '\n';
    for (size_t i = from; i < to; i++) {
        if (i > from)
            *p++ = '\n';
        memcpy(p, batch->events[i].json, batch->events[i].json_len);
        p += batch->events[i].json_len;
    }
    *p++ = '\r';
    *p++ = '\n';
    s->out_len = (size_t)(p - s->out);
}

/* Lean layout: the batch as stream entries, field "events", one per chunk.
 * Returns the number of commands. */
static size_t kg__lean_stream(kg__redis *r, kg__scratch *s, const kg_batch *batch)
{
    size_t commands = 0;
    for (size_t from = 0, to; from < batch->count; from = to, commands++) {
        to = kg__lean_chunk_end(batch, from);
        kg__out_cmd(s, 8);
        kg__out_arg(s, "XADD", 4);
        kg__out_str(s, r->stream_key);
        kg__out_arg(s, "MAXLEN", 6);
        kg__out_arg(s, "~", 1);
        kg__out_str(s, r->maxlen_text);
        kg__out_arg(s, "*", 1);
        kg__out_arg(s, "events", 6);
        kg__out_events(s, batch, from, to);
    }
    return commands;
}

/* Lean layout: the batch as messages on the "all" channel, one per chunk.
 * Per event, a PUBLISH costs the server more than the data it carries, and a
 * subscriber reading one message per event falls behind (and is cut off by
 * Redis's output-buffer limit) long before one reading batches.  Returns the
 * number of commands. */
static size_t kg__lean_publish(kg__redis *r, kg__scratch *s, const kg_batch *batch)
{
    size_t commands = 0;
    for (size_t from = 0, to; from < batch->count; from = to, commands++) {
        to = kg__lean_chunk_end(batch, from);
        kg__out_cmd(s, 3);
        kg__out_arg(s, "PUBLISH", 7);
        kg__out_str(s, r->chan_all);
        kg__out_events(s, batch, from, to);
    }
    return commands;
}

/* Encode the whole batch into w->s.out; returns the number of commands, or 0
 * when out of memory. */
static size_t kg__pipe_build(kg__redis *r, kg__redis_worker *w, const kg_batch *batch)
{
    kg__scratch *s = &w->s;
    size_t n = batch->count;
    if (n >= UINT32_MAX / 8 || !kg__scratch_fit(s, n))
        return 0;
    const kg_event_view *ev = batch->events;
    const char *pfx = r->prefix;
    size_t pl = r->prefix_len, ttl_len = strlen(r->ttl_text);
    size_t commands = 0;

    bool lean = r->layout == KG_REDIS_LAYOUT_LEAN;
    /* Stores first (see the header comment), grouping as we go. */
    for (uint32_t i = 0; i < n; i++) {
        const kg_event_view *e = &ev[i];
        const char *id = kg__s(e->event_id);
        if (lean) {
            if (*kg__s(e->workflow_id))
                kg__group_chain(s, kg__group_get(s, KG__G_WF, e->workflow_id), i);
        } else if (*id) {
            kg__out_cmd(s, 4);
            kg__out_arg(s, "SETEX", 5);
            kg__out_arg3(s, pfx, pl, KG_REDIS_KEY_EVENT, KG_REDIS_LEN(KG_REDIS_KEY_EVENT), id, strlen(id));
            kg__out_arg(s, r->ttl_text, ttl_len);
            kg__out_arg(s, e->json, e->json_len);
            commands++;
            if (*kg__s(e->workflow_id))
                kg__group_chain(s, kg__group_get(s, KG__G_WF, e->workflow_id), i);
            if (*kg__s(e->node_id))
                kg__group_chain(s, kg__group_get(s, KG__G_NODE, e->node_id), i);
        }
        kg__group_get(s, KG__G_TYPE, kg__s(e->event_type))->n++;
        bool nodes;
        int add = kg__active_of(e, &nodes);
        const char *member = nodes ? kg__s(e->node_id) : kg__s(e->workflow_id);
        if (add >= 0 && *member) {
            kg__group *g = kg__group_get(s, nodes ? KG__G_ACT_NODE : KG__G_ACT_WF, member);
            if (g->n++ == 0 || kg__newer(e, &ev[g->best])) {
                g->best = i;
                g->add = add == 1;
            }
        }
    }

    /* One ZADD and one EXPIRE per sorted set; one INCRBY per type. */
    size_t nact = 0;   /* active-node decisions */
    for (size_t gi = 0; gi < s->ngroups; gi++) {
        kg__group *g = &s->groups[gi];
        if (lean && g->kind == KG__G_WF) {
            kg__lean_run(r, s, g, ev);
            commands += 2;
        } else if (g->kind == KG__G_WF || g->kind == KG__G_NODE) {
            const char *mid = g->kind == KG__G_WF ? KG_REDIS_KEY_WORKFLOW : KG_REDIS_KEY_NODE;
            size_t ml = g->kind == KG__G_WF ? 9 : 5;
            kg__out_cmd(s, 2 + 2 * (size_t)g->n);
            kg__out_arg(s, "ZADD", 4);
            kg__out_arg3(s, pfx, pl, mid, ml, g->id, g->id_len);
            for (uint32_t i = g->head; i != UINT32_MAX; i = s->next[g->kind][i]) {
                kg__out_int(s, ev[i].timestamp_ms);
                kg__out_str(s, ev[i].event_id);
            }
            kg__out_cmd(s, 3);
            kg__out_arg(s, "EXPIRE", 6);
            kg__out_arg3(s, pfx, pl, mid, ml, g->id, g->id_len);
            kg__out_arg(s, r->ttl_text, ttl_len);
            commands += 2;
        } else if (g->kind == KG__G_TYPE) {
            kg__out_cmd(s, 3);
            kg__out_arg(s, "INCRBY", 6);
            kg__out_arg3(s, pfx, pl, KG_REDIS_KEY_COUNTER, KG_REDIS_LEN(KG_REDIS_KEY_COUNTER), g->id, g->id_len);
            kg__out_int(s, g->n);
            commands++;
        } else if (g->kind == KG__G_ACT_NODE) {
            nact++;
        }
    }

    /* Active nodes: every decision of the batch in one script call. */
    if (nact) {
        kg__out_cmd(s, 3 + 2 + 1 + 4 * nact);
        kg__out_arg(s, "EVALSHA", 7);
        kg__out_str(s, w->sha);
        kg__out_arg(s, "2", 1);
        kg__out_str(s, r->set_nodes);
        kg__out_arg3(s, pfx, pl, KG_REDIS_KEY_ACTIVE_CLOCK, KG_REDIS_LEN(KG_REDIS_KEY_ACTIVE_CLOCK), NULL, 0);
        kg__out_arg(s, r->ttl_text, ttl_len);
        for (size_t gi = 0; gi < s->ngroups; gi++) {
            kg__group *g = &s->groups[gi];
            if (g->kind != KG__G_ACT_NODE)
                continue;
            kg__out_arg(s, g->id, g->id_len);
            kg__out_arg(s, g->add ? "1" : "0", 1);
            kg__out_int(s, ev[g->best].timestamp_ms);
            char seq[24];
            kg__out_arg(s, seq, kg__utoa(seq, ev[g->best].seq));
        }
        commands++;
    }
    /* Active workflows: the newest decision per run, as plain SADD / SREM
     * (see the header comment for why no clock is needed). */
    size_t nwf[2] = {0, 0};   /* removes, adds */
    for (size_t gi = 0; gi < s->ngroups; gi++)
        if (s->groups[gi].kind == KG__G_ACT_WF)
            nwf[s->groups[gi].add]++;
    for (int add = 1; add >= 0; add--) {
        if (!nwf[add])
            continue;
        kg__out_cmd(s, 2 + nwf[add]);
        kg__out_arg(s, add ? "SADD" : "SREM", 4);
        kg__out_str(s, r->set_workflows);
        for (size_t gi = 0; gi < s->ngroups; gi++) {
            kg__group *g = &s->groups[gi];
            if (g->kind == KG__G_ACT_WF && g->add == (add == 1))
                kg__out_arg(s, g->id, g->id_len);
        }
        commands++;
    }

    /* Then the stream and the live feed. */
    if (lean && r->stream_maxlen > 0)
        commands += kg__lean_stream(r, s, batch);
    for (size_t i = 0; i < n && r->stream_maxlen > 0 && !lean; i++) {
        kg__out_cmd(s, 8);
        kg__out_arg(s, "XADD", 4);
        kg__out_str(s, r->stream_key);
        kg__out_arg(s, "MAXLEN", 6);
        kg__out_arg(s, "~", 1);
        kg__out_str(s, r->maxlen_text);
        kg__out_arg(s, "*", 1);
        kg__out_arg(s, KG_REDIS_STREAM_FIELD, KG_REDIS_LEN(KG_REDIS_STREAM_FIELD));
        kg__out_arg(s, ev[i].json, ev[i].json_len);
        commands++;
    }
    size_t chan_all_len = pl + 3;
    if (lean) {
        commands += kg__lean_publish(r, s, batch);
        return s->failed ? 0 : commands;
    }
    for (size_t i = 0; i < n; i++) {
        const char *type = kg__s(ev[i].event_type);
        kg__out_cmd(s, 3);
        kg__out_arg(s, "PUBLISH", 7);
        kg__out_arg(s, r->chan_all, chan_all_len);
        kg__out_arg(s, ev[i].json, ev[i].json_len);
        commands++;
        kg__out_cmd(s, 3);
        kg__out_arg(s, "PUBLISH", 7);
        kg__out_arg3(s, pfx, pl, type, strlen(type), NULL, 0);
        kg__out_arg(s, ev[i].json, ev[i].json_len);
        commands++;
    }
    return s->failed ? 0 : commands;
}

/* Write the pipeline and read every reply.  Any I/O failure leaves the
 * context unusable (replies still in flight), so it is dropped. */
static int kg__pipe_run(kg__redis_worker *w, size_t commands)
{
    redisContext *c = w->ctx;
    if (redisAppendFormattedCommand(c, w->s.out, w->s.out_len) != REDIS_OK) {
        kg__worker_drop(w);
        return KG_ENOMEM;
    }
    w->reply_errors = 0;
    w->reply_noscript = false;
    for (size_t i = 0; i < commands; i++) {
        void *v = NULL;
        if (redisGetReply(c, &v) != REDIS_OK || !v) {
            int rc = kg__ctx_code(c, errno);
            kg__worker_drop(w);
            return rc;
        }
    }
    /* The script cache was flushed (SCRIPT FLUSH, failover): reconnecting
     * loads it again, so the retry of this batch can succeed. */
    if (w->reply_noscript)
        kg__worker_drop(w);
    return w->reply_errors ? KG_EBACKEND : 0;
}

static void kg__scratch_free(kg__scratch *s)
{
    free(s->next[0]);
    free(s->next[1]);
    free(s->groups);
    free(s->table);
    free(s->out);
    memset(s, 0, sizeof *s);
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
            kg__scratch_free(&r->workers[i].s);
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
        size_t commands = kg__pipe_build(r, w, batch);
        rc = commands ? kg__pipe_run(w, commands) : KG_ENOMEM;
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
        kg__scratch_free(&r->workers[i].s);
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
    o->prefix = KG_REDIS_PREFIX_DEFAULT;
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
    if (o->layout != KG_REDIS_LAYOUT_SEED && o->layout != KG_REDIS_LAYOUT_LEAN) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "unknown redis layout %d", (int)o->layout);
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
    const char *prefix = o->prefix ? o->prefix : KG_REDIS_PREFIX_DEFAULT;
    r->host = kg__strdup(o->host && *o->host ? o->host : "127.0.0.1");
    r->port = o->port;
    r->unix_socket = o->unix_socket && *o->unix_socket ? kg__strdup(o->unix_socket) : NULL;
    r->password = o->password && *o->password ? kg__strdup(o->password) : NULL;
    r->db = o->db;
    r->prefix = kg__strdup(prefix);
    r->prefix_len = strlen(prefix);
    r->chan_all = kg__concat(prefix, KG_REDIS_CHANNEL_ALL);
    r->stream_key = kg__concat(prefix, KG_REDIS_KEY_STREAM);
    r->set_nodes = kg__concat(prefix, KG_REDIS_KEY_ACTIVE_NODES);
    r->set_workflows = kg__concat(prefix, KG_REDIS_KEY_ACTIVE_WORKFLOWS);
    r->stream_maxlen = o->stream_maxlen;
    r->layout = o->layout;
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
