/* redis_reader.c - reading back what the Redis backend wrote (see
 * kaygraph/redis_reader.h for the contract).
 *
 * Two blocking hiredis connections per reader, both driven by hand
 * (redisAppendCommandArgv, then poll + redisBufferRead +
 * redisGetReplyFromReader) rather than by redisCommand/redisGetReply:
 *  - in blocking hiredis a read timeout marks the context as failed for
 *    good, so waiting "at most N seconds for a message" would cost a
 *    reconnect every time nothing arrived;
 *  - hiredis buffers a bulk string until all the bytes its header declared
 *    have arrived, so the only place to bound what a peer makes us buffer is
 *    between two reads (kg__reply_wait, redis_reply.h).
 * The command connection is checked for a server-side close before each use
 * so a restarted server costs no failed call.
 *
 * Each connection has a health record (kg__health_fail): failed attempts
 * (refused, timed out, protocol errors, or a connection lost before it
 * delivered anything) are retried after 0.1 s doubling to 5 s; a connection
 * that had proved itself is re-made at once (a few times in a row, then once
 * a second).  Without it a peer that accepts and then answers garbage (an
 * HTTP server on the Redis port) was reconnected to thousands of times a
 * second by a caller looping on kg_redis_reader_next.
 *
 * Key names are built here from the same prefix and suffixes as redis.c; the
 * two files are the only places that know the layout. */
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
#include "backends/redis_reply.h"
#include "backends/sigpipe.h"
#include "kaygraph/redis_reader.h"
#include "util/clock.h"

#define KG__READER_MAX_SUBS 16
/* MGET this many event keys per round trip: big workflows stay bounded in
 * reply size. */
#define KG__READER_MGET_CHUNK 1000
#define KG__READER_MAX_REPLY (16u << 20)   /* default max_reply */
#define KG__REPLY_TOTAL_FACTOR 16          /* one reply: at most 16 x max_reply */
#define KG__BACKOFF_FIRST_S 0.1
#define KG__BACKOFF_MAX_S 5.0
#define KG__HEALTHY_S 2.0   /* a connection up this long was not a failed attempt */
#define KG__QUICK_BURST 3.0 /* immediate reconnections in a row (then 1/s) */

/* One connection's recent history: when it may be tried again and why the
 * last attempt failed. */
typedef struct kg__health {
    unsigned failures;      /* consecutive failed attempts */
    double retry_at;        /* monotonic s: no attempt before */
    double up_since;        /* monotonic s the current connection was made; 0 none */
    bool proven;            /* the current connection did its job (a message, a reply) */
    double tokens;          /* immediate retries left (see kg__health_fail) */
    double tokens_at;
    int code;
    char error[KG_ERROR_MESSAGE_MAX];
} kg__health;

struct kg_redis_reader {
    char *host;
    int port;
    char *unix_socket;
    char *password;
    int db;
    char *prefix;
    char where[300];           /* "host:port" or the socket path, for messages */
    struct timeval connect_tv;
    double command_s;
    redisContext *cmd;
    redisContext *sub;
    kg__reply_bounds cmd_bounds, sub_bounds;
    kg__health cmd_health, sub_health;
    bool sub_had_connection;   /* a later connect is a re-connect */
    _Atomic uint64_t reconnects;
    struct {
        char *name;            /* full channel name or pattern */
        bool pattern;
    } subs[KG__READER_MAX_SUBS];
    size_t nsubs;
    /* A lean-layout message carries a batch, one event per line: the lines
     * not handed out yet (docs/redis.md). */
    char *pending, *pending_chan;
    size_t pending_len, pending_at;
};

/* ---- helpers ------------------------------------------------------------------ */

static char *kg__dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *kg__dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *kg__join(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *d = malloc(na + nb + nc + 1);
    if (d) {
        memcpy(d, a, na);
        memcpy(d + na, b, nb);
        memcpy(d + na + nb, c, nc + 1);
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

/* ---- connection health ---------------------------------------------------------- */

static void kg__health_up(kg__health *h)
{
    h->up_since = kg_clock_mono();
    h->proven = false;
}

/* The connection did its job (delivered a message, answered a command). */
static void kg__health_ok(kg__health *h)
{
    h->proven = true;
}

/* An attempt failed, or a connection was lost.  Losing a connection that
 * proved itself (it delivered something, or stayed up KG__HEALTHY_S) is not
 * a failed attempt: Redis restarted, or CLIENT KILL, and the reconnection is
 * tried at once -- at most KG__QUICK_BURST times in a row, then once a
 * second, so that a peer that sends one good message and then hangs up (or
 * sends garbage) cannot drive a reconnect storm either.  Otherwise the next
 * attempt waits 0.1 s x 2^(failures-1), at most 5 s; only a connection that
 * stayed up KG__HEALTHY_S starts the count again. */
static int kg__health_fail(kg__health *h, const kg_error_t *err)
{
    double now = kg_clock_mono();
    bool stable = h->up_since > 0 && now - h->up_since >= KG__HEALTHY_S;
    bool proven = h->proven || stable;
    h->up_since = 0;
    h->proven = false;
    h->tokens += now - h->tokens_at;
    if (h->tokens > KG__QUICK_BURST)
        h->tokens = KG__QUICK_BURST;
    h->tokens_at = now;
    if (stable)
        h->failures = 0;
    if (proven && h->tokens >= 1) {
        h->tokens -= 1;
        h->retry_at = now;
    } else {
        h->failures++;
        double delay = KG__BACKOFF_FIRST_S;
        for (unsigned i = 1; i < h->failures && delay < KG__BACKOFF_MAX_S; i++)
            delay *= 2;
        h->retry_at = now + (delay < KG__BACKOFF_MAX_S ? delay : KG__BACKOFF_MAX_S);
    }
    h->code = err->code;
    snprintf(h->error, sizeof h->error, "%s", err->message);
    return err->code;
}

/* Seconds before the next attempt is allowed (<= 0: now). */
static double kg__health_wait(const kg__health *h)
{
    return h->retry_at - kg_clock_mono();
}

/* The last failure again, for a call made while the next attempt is not due. */
static int kg__health_error(const kg__health *h, kg_error_t *err)
{
    double wait = kg__health_wait(h);
    return kg_error_set(err, h->code ? h->code : KG_ECONNECT, "RedisError",
                        "%s; next attempt in %.1f s", h->error, wait > 0 ? wait : 0);
}

/* ---- replies ------------------------------------------------------------------- */

static int kg__ctx_fail(kg_redis_reader_t *r, redisContext *c, const kg__reply_bounds *b,
                        int saved_errno, kg_error_t *err, const char *what)
{
    int code = KG_ECONNECT;
    if (b && b->over)
        return kg_error_set(err, KG_EPROTO, "RedisError",
                            "%s: a reply from %s over the reader's limit (more than %zu bytes "
                            "of strings, or more than %u elements)",
                            what, r->where, b->total_max, KG__REPLY_MAX_ELEMENTS);
    if (c->err == REDIS_ERR_IO &&
        (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT))
        code = KG_ETIMEOUT;
    else if (c->err == REDIS_ERR_OOM)
        code = KG_ENOMEM;
    else if (c->err == REDIS_ERR_PROTOCOL)
        return kg_error_set(err, KG_EPROTO, "RedisError",
                            "%s: protocol error from %s (not a Redis server?): %s", what,
                            r->where, c->errstr);
    return kg_error_set(err, code, "RedisError", "%s: %s", what,
                        c->errstr[0] ? c->errstr : kg_strerror(code));
}

/* Wait until `c` holds one whole reply, at most until `deadline` (monotonic
 * s); after the deadline the socket is still read once without waiting.
 * Every read of either connection goes through here, so the reply bounds
 * hold everywhere.  0 and *out (freeReplyObject it), KG_ETIMEOUT when
 * nothing whole arrived in time (the connection is still usable), or the
 * connection's failure (it must be dropped). */
static int kg__reply_wait(kg_redis_reader_t *r, redisContext *c, kg__reply_bounds *b,
                          double deadline, void **out, kg_error_t *err, const char *what)
{
    bool looked_late = false;
    *out = NULL;
    for (;;) {
        void *v = NULL;
        if (redisGetReplyFromReader(c, &v) != REDIS_OK)
            return kg__ctx_fail(r, c, b, errno, err, what);
        if (v) {
            b->used = 0;
            *out = v;
            return 0;
        }
        if (kg__reply_buffer_over(c->reader, b))
            return kg_error_set(err, KG_EPROTO, "RedisError",
                                "%s: %s sent a string longer than the %zu-byte limit "
                                "(max_reply); connection closed",
                                what, r->where, b->bulk_max);
        double left = deadline - kg_clock_mono();
        if (left <= 0 && looked_late)
            return kg_error_set(err, KG_ETIMEOUT, "RedisError", "%s: no reply within the timeout",
                                what);
        looked_late = left <= 0;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, left > 0 ? (int)(left * 1000.0) + 1 : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            continue;
        if (n < 0 || redisBufferRead(c) != REDIS_OK)
            return kg__ctx_fail(r, c, b, errno, err, what);
    }
}

/* Write whatever hiredis has buffered (bounded by the socket's send
 * timeout). */
static int kg__flush(redisContext *c)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return REDIS_ERR;
    return REDIS_OK;
}

/* One command and its reply, at most the command timeout. */
static int kg__ctx_command(kg_redis_reader_t *r, redisContext *c, kg__reply_bounds *b, int argc,
                           const char **argv, const size_t *lens, redisReply **out,
                           kg_error_t *err)
{
    *out = NULL;
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    if (kg__flush(c) != REDIS_OK)
        return kg__ctx_fail(r, c, b, errno, err, argv[0]);
    void *v = NULL;
    int rc = kg__reply_wait(r, c, b, kg_clock_mono() + r->command_s, &v, err, argv[0]);
    *out = v;
    return rc;
}

/* ---- connections ----------------------------------------------------------------- */

/* A blocking connection with AUTH and (when `select_db`) SELECT done. */
static int kg__connect(kg_redis_reader_t *r, bool select_db, kg__reply_bounds *b,
                       redisContext **out, kg_error_t *err)
{
    redisContext *c = r->unix_socket ? redisConnectUnixWithTimeout(r->unix_socket, r->connect_tv)
                                     : redisConnectWithTimeout(r->host, r->port, r->connect_tv);
    *out = NULL;
    if (!c)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    if (c->err) {
        int rc = kg_error_set(err, KG_ECONNECT, "RedisError", "connect to %s: %s", r->where,
                              c->errstr);
        redisFree(c);
        return rc;
    }
    /* The socket timeouts bound writes; reads wait in poll (kg__reply_wait). */
    if (redisSetTimeout(c, kg__tv(r->command_s)) != REDIS_OK) {
        redisFree(c);
        return kg_error_set(err, KG_ECONNECT, "RedisError", "cannot set socket timeout");
    }
    b->used = 0;
    b->over = false;
    kg__reply_bound(c->reader, b);
    if (!r->unix_socket)
        redisEnableKeepAlive(c);
    for (int step = 0; step < 2; step++) {
        char db[16];
        const char *argv[2];
        if (step == 0 && r->password) {
            argv[0] = "AUTH";
            argv[1] = r->password;
        } else if (step == 1 && select_db && r->db > 0) {
            snprintf(db, sizeof db, "%d", r->db);
            argv[0] = "SELECT";
            argv[1] = db;
        } else {
            continue;
        }
        size_t lens[2] = {strlen(argv[0]), strlen(argv[1])};
        redisReply *reply;
        int rc = kg__ctx_command(r, c, b, 2, argv, lens, &reply, err);
        if (rc == 0 && reply->type == REDIS_REPLY_ERROR)
            rc = kg_error_set(err, KG_EBACKEND, "RedisError", "%s: %s", argv[0], reply->str);
        if (reply)
            freeReplyObject(reply);
        if (rc) {
            redisFree(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

/* An idle connection must have nothing to read; if it has, the server
 * closed it. */
static bool kg__idle_alive(redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR) {
    }
    return n == 0;
}

/* ---- lifetime ------------------------------------------------------------------ */

int kg_redis_reader_new(const kg_redis_options *o, kg_redis_reader_t **out, kg_error_t *err)
{
    kg_redis_options defaults;
    if (!out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "out is NULL");
    *out = NULL;
    if (!o) {
        kg_redis_options_init(&defaults);
        o = &defaults;
    }
    if (!o->unix_socket && (o->port <= 0 || o->port > 65535))
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "redis port %d out of range",
                            o->port);
    kg_redis_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    atomic_init(&r->reconnects, 0);
    r->host = kg__dup(o->host && *o->host ? o->host : "127.0.0.1");
    r->port = o->port;
    r->unix_socket = o->unix_socket && *o->unix_socket ? kg__dup(o->unix_socket) : NULL;
    r->password = o->password && *o->password ? kg__dup(o->password) : NULL;
    r->db = o->db;
    r->prefix = kg__dup(o->prefix ? o->prefix : KG_REDIS_PREFIX_DEFAULT);
    r->connect_tv = kg__tv(o->connect_timeout > 0 ? o->connect_timeout : 1.0);
    r->command_s = o->command_timeout > 0 ? o->command_timeout : 2.0;
    size_t bulk = o->max_reply ? o->max_reply : KG__READER_MAX_REPLY;
    size_t total = bulk <= SIZE_MAX / KG__REPLY_TOTAL_FACTOR ? bulk * KG__REPLY_TOTAL_FACTOR
                                                             : SIZE_MAX;
    r->cmd_bounds = r->sub_bounds = (kg__reply_bounds){.bulk_max = bulk, .total_max = total};
    r->cmd_health.tokens = r->sub_health.tokens = KG__QUICK_BURST;
    r->cmd_health.tokens_at = r->sub_health.tokens_at = kg_clock_mono();
    if (!r->host || !r->prefix || (o->unix_socket && *o->unix_socket && !r->unix_socket) ||
        (o->password && *o->password && !r->password)) {
        kg_redis_reader_free(r);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    if (r->unix_socket)
        snprintf(r->where, sizeof r->where, "%s", r->unix_socket);
    else
        snprintf(r->where, sizeof r->where, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host,
                 r->port);
    *out = r;
    return 0;
}

void kg_redis_reader_free(kg_redis_reader_t *r)
{
    if (!r)
        return;
    free(r->pending);
    free(r->pending_chan);
    if (r->cmd)
        redisFree(r->cmd);
    if (r->sub)
        redisFree(r->sub);
    for (size_t i = 0; i < r->nsubs; i++)
        free(r->subs[i].name);
    free(r->host);
    free(r->unix_socket);
    free(r->password);
    free(r->prefix);
    free(r);
}

/* ---- subscriber ---------------------------------------------------------------- */

static int kg__append_sub(redisContext *c, const char *name, bool pattern)
{
    const char *argv[2] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name};
    size_t lens[2] = {strlen(argv[0]), strlen(name)};
    return redisAppendCommandArgv(c, 2, argv, lens);
}

static void kg__sub_drop(kg_redis_reader_t *r)
{
    if (r->sub) {
        redisFree(r->sub);
        r->sub = NULL;
    }
}

/* The subscriber connection failed (`err` says how): drop it and schedule
 * the next attempt.  The subscriber reports only "down" (KG_ECONNECT) or
 * "not Redis" (KG_EPROTO); KG_ETIMEOUT is kept for a quiet, healthy feed. */
static int kg__sub_fail(kg_redis_reader_t *r, kg_error_t *err)
{
    if (err && err->code != KG_EPROTO && err->code != KG_ENOMEM && err->code != KG_EBACKEND)
        err->code = KG_ECONNECT;
    kg__sub_drop(r);
    return kg__health_fail(&r->sub_health, err);
}

/* The first reply on a new subscriber connection must confirm the first
 * subscription; only then is the connection up. */
static int kg__sub_handshake(kg_redis_reader_t *r, redisContext *c, kg_error_t *err)
{
    void *v = NULL;
    int rc = kg__reply_wait(r, c, &r->sub_bounds, kg_clock_mono() + r->command_s, &v, err,
                            r->subs[0].pattern ? "PSUBSCRIBE" : "SUBSCRIBE");
    if (rc == KG_ETIMEOUT)
        return kg_error_set(err, KG_ECONNECT, "RedisError",
                            "%s did not answer SUBSCRIBE within %.1f s (not a Redis server?)",
                            r->where, r->command_s);
    if (rc)
        return rc;
    redisReply *reply = v;
    if (reply->type == REDIS_REPLY_ERROR)
        rc = kg_error_set(err, KG_EBACKEND, "RedisError", "SUBSCRIBE: %s", reply->str);
    else if (!kg__is_sub_confirmation(reply))
        rc = kg_error_set(err, KG_EPROTO, "RedisError",
                          "protocol error from %s (not a Redis server?): it answered "
                          "SUBSCRIBE with a reply of type %d, not a confirmation",
                          r->where, reply->type);
    freeReplyObject(reply);
    return rc;
}

/* Connect, subscribe to everything remembered and wait for the
 * confirmation.  Records the outcome in the subscriber's health. */
static int kg__sub_connect(kg_redis_reader_t *r, kg_error_t *err)
{
    kg_error_t local;
    if (!err)
        err = &local;
    redisContext *c;
    /* Pub/Sub channels are global to the server: no SELECT needed. */
    int rc = kg__connect(r, false, &r->sub_bounds, &c, err);
    if (rc)
        return kg__sub_fail(r, err);
    kg__health_up(&r->sub_health);
    r->sub = c;
    for (size_t i = 0; i < r->nsubs; i++)
        if (kg__append_sub(c, r->subs[i].name, r->subs[i].pattern) != REDIS_OK) {
            kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
            return kg__sub_fail(r, err);
        }
    if (kg__flush(c) != REDIS_OK) {
        kg__ctx_fail(r, c, &r->sub_bounds, errno, err, "SUBSCRIBE");
        return kg__sub_fail(r, err);
    }
    if (kg__sub_handshake(r, c, err) != 0)
        return kg__sub_fail(r, err);
    if (r->sub_had_connection)
        atomic_fetch_add_explicit(&r->reconnects, 1, memory_order_relaxed);
    r->sub_had_connection = true;
    return 0;
}

/* Make sure the subscriber is up: attempt a connection when the backoff
 * allows, waiting for that at most until `deadline`.  0, or the failure. */
static int kg__sub_ensure(kg_redis_reader_t *r, double deadline, kg_error_t *err)
{
    for (;;) {
        double wait = kg__health_wait(&r->sub_health);
        if (wait <= 0) {
            /* Only (re)subscribing writes to the socket; reading cannot
             * raise SIGPIPE, so only this part needs the guard. */
            kg__sigpipe_guard g;
            kg__sigpipe_block(&g);
            int rc = kg__sub_connect(r, err);
            kg__sigpipe_restore(&g);
            if (rc == 0)
                return 0;
            wait = kg__health_wait(&r->sub_health);
        }
        double left = deadline - kg_clock_mono();
        if (left <= 0 || wait > left) {
            if (left > 0)
                kg_clock_sleep(left);
            return kg__health_error(&r->sub_health, err);
        }
        kg_clock_sleep(wait);
    }
}

int kg_redis_reader_subscribe(kg_redis_reader_t *r, const char *channel, bool pattern,
                              kg_error_t *err)
{
    if (!r)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "reader is NULL");
    if (r->nsubs == KG__READER_MAX_SUBS)
        return kg_error_set(err, KG_EFULL, NULL, "at most %d subscriptions",
                            KG__READER_MAX_SUBS);
    char *name = kg__join(r->prefix, channel ? channel : KG_REDIS_CHANNEL_ALL, "");
    if (!name)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    r->subs[r->nsubs].name = name;
    r->subs[r->nsubs].pattern = pattern;
    r->nsubs++;

    if (!r->sub)
        return kg__sub_ensure(r, 0, err);
    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    int rc = 0;
    /* The confirmation is read (and skipped) by kg_redis_reader_next. */
    if (kg__append_sub(r->sub, name, pattern) != REDIS_OK) {
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        rc = kg__sub_fail(r, err);
    } else if (kg__flush(r->sub) != REDIS_OK) {
        kg__ctx_fail(r, r->sub, &r->sub_bounds, errno, err, "SUBSCRIBE");
        rc = kg__sub_fail(r, err);
    }
    kg__sigpipe_restore(&g);
    return rc;
}

int kg__take_message(const redisReply *reply, char **json, size_t *len, char **channel)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    const char *kind = reply->element[0]->str;
    const redisReply *chan, *payload;
    if (strcmp(kind, "message") == 0 && reply->elements == 3) {
        chan = reply->element[1];
        payload = reply->element[2];
    } else if (strcmp(kind, "pmessage") == 0 && reply->elements == 4) {
        chan = reply->element[2];
        payload = reply->element[3];
    } else {
        return 0;
    }
    if (payload->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
        return 0;
    char *j = kg__dupn(payload->str, payload->len);
    char *c = channel ? kg__dupn(chan->str, chan->len) : NULL;
    if (!j || (channel && !c)) {
        free(j);
        free(c);
        return KG_ENOMEM;
    }
    *json = j;
    if (len)
        *len = payload->len;
    if (channel)
        *channel = c;
    return 1;
}

/* The next line of the pending batch message as an event of its own, or 0
 * when none is left; negative on allocation failure. */
static int kg__pending_next(kg_redis_reader_t *r, char **json, size_t *len, char **channel)
{
    while (r->pending && r->pending_at < r->pending_len) {
        const char *line = r->pending + r->pending_at;
        const char *nl = memchr(line, '\n', r->pending_len - r->pending_at);
        size_t n = nl ? (size_t)(nl - line) : r->pending_len - r->pending_at;
        r->pending_at += n + 1;
        if (n == 0)
            continue;
        char *j = kg__dupn(line, n);
        char *c = channel ? kg__dup(r->pending_chan ? r->pending_chan : "") : NULL;
        if (!j || (channel && !c)) {
            free(j);
            free(c);
            return KG_ENOMEM;
        }
        *json = j;
        if (len)
            *len = n;
        if (channel)
            *channel = c;
        return 1;
    }
    free(r->pending);
    free(r->pending_chan);
    r->pending = r->pending_chan = NULL;
    return 0;
}

int kg_redis_reader_next(kg_redis_reader_t *r, double timeout, char **json, size_t *len,
                         char **channel, kg_error_t *err)
{
    if (!r || !json)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "reader or json is NULL");
    *json = NULL;
    if (channel)
        *channel = NULL;
    if (r->nsubs == 0)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "nothing subscribed");
    kg_error_t local;
    if (!err)
        err = &local;
    int got = kg__pending_next(r, json, len, channel);
    if (got)
        return got < 0 ? kg_error_set(err, KG_ENOMEM, NULL, "out of memory") : 0;
    double deadline = kg_clock_mono() + (timeout > 0 ? timeout : 0);
    for (;;) {
        if (!r->sub) {
            int rc = kg__sub_ensure(r, deadline, err);
            if (rc)
                return rc;
        }
        void *v = NULL;
        int rc = kg__reply_wait(r, r->sub, &r->sub_bounds, deadline, &v, err, "subscriber");
        if (rc == KG_ETIMEOUT)
            return kg_error_set(err, KG_ETIMEOUT, NULL, "no message within %.3f s", timeout);
        if (rc) {
            kg__sub_fail(r, err);
            continue;   /* kg__sub_ensure waits for the backoff, within the deadline */
        }
        size_t n = 0;
        char *chan = NULL;
        got = kg__take_message(v, json, &n, &chan);
        freeReplyObject(v);
        if (got < 0)
            return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        if (got == 1 && memchr(*json, '\n', n)) {
            /* A batch (lean layout): hand its events out one by one. */
            r->pending = *json;
            r->pending_chan = chan;
            r->pending_len = n;
            r->pending_at = 0;
            *json = NULL;
            got = kg__pending_next(r, json, len, channel);
            if (got < 0)
                return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        } else if (got == 1) {
            if (len)
                *len = n;
            if (channel)
                *channel = chan;
            else
                free(chan);
        }
        if (got == 1) {
            kg__health_ok(&r->sub_health);
            return 0;
        }
    }
}

uint64_t kg_redis_reader_reconnects(const kg_redis_reader_t *r)
{
    return r ? atomic_load_explicit(&((kg_redis_reader_t *)r)->reconnects,
                                    memory_order_relaxed)
             : 0;
}

void kg_redis_reader_status_get(const kg_redis_reader_t *r, kg_redis_reader_status *out)
{
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    out->subscribed = r->sub != NULL;
    out->failures = r->sub ? 0 : r->sub_health.failures;
    double wait = r->sub ? 0 : kg__health_wait(&r->sub_health);
    out->retry_in = wait > 0 ? wait : 0;
    out->last_code = r->sub_health.code;
    snprintf(out->last_error, sizeof out->last_error, "%s", r->sub_health.error);
}

/* ---- command connection --------------------------------------------------------- */

/* Run one command; NULL with *rc and `err` set on failure (an error reply is
 * KG_EBACKEND and keeps the connection).  While a failed connection's retry
 * is not due, fails at once with the last error. */
static redisReply *kg__command(kg_redis_reader_t *r, int argc, const char **argv,
                               const size_t *lens, int *rc, kg_error_t *err)
{
    kg_error_t local;
    if (!err)
        err = &local;
    *rc = 0;
    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    /* A server-side close of an idle connection is not a failed attempt. */
    if (r->cmd && !kg__idle_alive(r->cmd)) {
        redisFree(r->cmd);
        r->cmd = NULL;
    }
    redisReply *reply = NULL;
    if (!r->cmd) {
        if (kg__health_wait(&r->cmd_health) > 0) {
            *rc = kg__health_error(&r->cmd_health, err);
        } else if ((*rc = kg__connect(r, true, &r->cmd_bounds, &r->cmd, err)) != 0) {
            kg__health_fail(&r->cmd_health, err);
        } else {
            kg__health_up(&r->cmd_health);
        }
    }
    if (*rc == 0) {
        *rc = kg__ctx_command(r, r->cmd, &r->cmd_bounds, argc, argv, lens, &reply, err);
        if (*rc) {
            if (reply)
                freeReplyObject(reply);
            reply = NULL;
            redisFree(r->cmd);
            r->cmd = NULL;
            kg__health_fail(&r->cmd_health, err);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            *rc = kg_error_set(err, KG_EBACKEND, "RedisError", "%s: %s", argv[0], reply->str);
            freeReplyObject(reply);
            reply = NULL;
        } else {
            kg__health_ok(&r->cmd_health);
        }
    }
    kg__sigpipe_restore(&g);
    return reply;
}

static redisReply *kg__command2(kg_redis_reader_t *r, const char *cmd, const char *mid,
                                const char *id, int nargs, const char **args, int *rc,
                                kg_error_t *err)
{
    const char *argv[8];
    size_t lens[8];
    char *key = kg__join(r->prefix, mid, id);
    if (!key) {
        *rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    argv[0] = cmd;
    argv[1] = key;
    for (int i = 0; i < nargs && i < 6; i++)
        argv[2 + i] = args[i];
    int argc = 2 + (nargs < 6 ? nargs : 6);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *reply = kg__command(r, argc, argv, lens, rc, err);
    free(key);
    return reply;
}

static int kg__nomem(json_t *o, kg_error_t *err)
{
    json_decref(o);
    return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
}

/* MGET <prefix>event:<id> for every member of a ZRANGE reply; parsed events
 * appended to `out` in order. */
static int kg__events_by_ids(kg_redis_reader_t *r, const redisReply *ids, json_t *out,
                             kg_error_t *err)
{
    size_t n = ids->elements;
    size_t chunk = n < KG__READER_MGET_CHUNK ? n : KG__READER_MGET_CHUNK;
    const char **argv = malloc((chunk + 1) * sizeof *argv);
    size_t *lens = malloc((chunk + 1) * sizeof *lens);
    char **keys = calloc(chunk ? chunk : 1, sizeof *keys);
    int rc = 0;
    if (!argv || !lens || !keys)
        rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    for (size_t at = 0; rc == 0 && at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        argv[0] = "MGET";
        lens[0] = 4;
        for (size_t i = 0; i < m; i++) {
            const redisReply *id = ids->element[at + i];
            keys[i] = kg__join(r->prefix, KG_REDIS_KEY_EVENT, id->type == REDIS_REPLY_STRING ? id->str : "");
            if (!keys[i]) {
                rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
                m = i;
                break;
            }
            argv[1 + i] = keys[i];
            lens[1 + i] = strlen(keys[i]);
        }
        redisReply *vals = rc ? NULL : kg__command(r, (int)m + 1, argv, lens, &rc, err);
        for (size_t i = 0; i < m; i++) {
            free(keys[i]);
            keys[i] = NULL;
        }
        if (!vals)
            break;
        for (size_t i = 0; rc == 0 && vals->type == REDIS_REPLY_ARRAY && i < vals->elements; i++) {
            const redisReply *v = vals->element[i];
            if (v->type != REDIS_REPLY_STRING)
                continue;   /* expired since ZRANGE */
            json_t *ev = json_loadb(v->str, v->len, 0, NULL);
            if (ev && json_array_append_new(out, ev) != 0)
                rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        }
        freeReplyObject(vals);
    }
    free(argv);
    free(lens);
    free(keys);
    return rc;
}

static int kg__indexed_events(kg_redis_reader_t *r, const char *mid, const char *id, size_t max,
                              json_t **out, kg_error_t *err)
{
    if (!r || !id || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    char start[32];
    if (max > 0)
        snprintf(start, sizeof start, "-%zu", max);
    else
        snprintf(start, sizeof start, "0");
    const char *args[2] = {start, "-1"};
    int rc;
    redisReply *ids = kg__command2(r, "ZRANGE", mid, id, 2, args, &rc, err);
    if (!ids)
        return rc;
    json_t *arr = json_array();
    if (!arr) {
        freeReplyObject(ids);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    rc = ids->type == REDIS_REPLY_ARRAY && ids->elements ? kg__events_by_ids(r, ids, arr, err) : 0;
    freeReplyObject(ids);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Which layout the producers write: <prefix>layout says "lean" for the
 * lean one and does not exist for the seed one (docs/redis.md).  1 lean,
 * 0 seed, negative on failure. */
static int kg__is_lean(kg_redis_reader_t *r, kg_error_t *err)
{
    int rc;
    redisReply *v = kg__command2(r, "GET", KG_REDIS_KEY_LAYOUT, "", 0, NULL, &rc, err);
    if (!v)
        return rc;
    int lean = v->type == REDIS_REPLY_STRING && strcmp(v->str, KG_REDIS_LAYOUT_LEAN_MARK) == 0;
    freeReplyObject(v);
    return lean;
}

typedef struct kg__seq_event {
    unsigned long long seq;
    const redisReply *json;
} kg__seq_event;

static int kg__cmp_seq(const void *a, const void *b)
{
    unsigned long long x = ((const kg__seq_event *)a)->seq, y = ((const kg__seq_event *)b)->seq;
    return (x > y) - (x < y);
}

/* Lean layout: a run's events are the values of its hash, the fields their
 * seq; oldest first by seq, the newest `max` when max > 0. */
static int kg__run_hash_events(kg_redis_reader_t *r, const char *workflow_id, size_t max,
                               json_t **out, kg_error_t *err)
{
    int rc;
    redisReply *v = kg__command2(r, "HGETALL", KG_REDIS_KEY_RUN, workflow_id, 0, NULL, &rc, err);
    if (!v)
        return rc;
    size_t n = v->type == REDIS_REPLY_ARRAY ? v->elements / 2 : 0;
    kg__seq_event *evs = malloc((n ? n : 1) * sizeof *evs);
    json_t *arr = json_array();
    if (!evs || !arr) {
        free(evs);
        freeReplyObject(v);
        return kg__nomem(arr, err);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = v->element[2 * i], *j = v->element[2 * i + 1];
        if (f->type == REDIS_REPLY_STRING && j->type == REDIS_REPLY_STRING)
            evs[k++] = (kg__seq_event){strtoull(f->str, NULL, 10), j};
    }
    qsort(evs, k, sizeof *evs, kg__cmp_seq);
    rc = 0;
    for (size_t i = max > 0 && k > max ? k - max : 0; rc == 0 && i < k; i++) {
        json_t *ev = json_loadb(evs[i].json->str, evs[i].json->len, 0, NULL);
        if (ev && json_array_append_new(arr, ev) != 0)
            rc = kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    free(evs);
    freeReplyObject(v);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int kg_redis_reader_workflow_events(kg_redis_reader_t *r, const char *workflow_id, size_t max,
                                    json_t **out, kg_error_t *err)
{
    if (!r || !workflow_id || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    int lean = kg__is_lean(r, err);
    if (lean < 0)
        return lean;
    return lean ? kg__run_hash_events(r, workflow_id, max, out, err)
                : kg__indexed_events(r, KG_REDIS_KEY_WORKFLOW, workflow_id, max, out, err);
}

int kg_redis_reader_node_events(kg_redis_reader_t *r, const char *node_id, size_t max,
                                json_t **out, kg_error_t *err)
{
    if (!r || !node_id || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    int lean = kg__is_lean(r, err);
    if (lean < 0)
        return lean;
    if (lean)
        return kg_error_set(err, KG_EINVAL, "ArgumentError",
                            "the lean Redis layout keeps no per-node index (docs/redis.md)");
    return kg__indexed_events(r, KG_REDIS_KEY_NODE, node_id, max, out, err);
}

int kg_redis_reader_event(kg_redis_reader_t *r, const char *event_id, json_t **out,
                          kg_error_t *err)
{
    if (!r || !event_id || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    int rc;
    redisReply *v = kg__command2(r, "GET", KG_REDIS_KEY_EVENT, event_id, 0, NULL, &rc, err);
    if (!v)
        return rc;
    if (v->type != REDIS_REPLY_STRING) {
        freeReplyObject(v);
        /* (The lean layout stores events per run only: none is found here.) */
        return kg_error_set(err, KG_ENOTFOUND, NULL, "event %s not stored", event_id);
    }
    json_error_t jerr;
    json_t *ev = json_loadb(v->str, v->len, 0, &jerr);
    freeReplyObject(v);
    if (!ev)
        return kg_error_set(err, KG_EPARSE, "ParseError", "event %s: %s", event_id, jerr.text);
    *out = ev;
    return 0;
}

static int kg__cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int kg__members(kg_redis_reader_t *r, const char *set, json_t **out, kg_error_t *err)
{
    if (!r || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    int rc;
    redisReply *v = kg__command2(r, "SMEMBERS", set, "", 0, NULL, &rc, err);
    if (!v)
        return rc;
    size_t n = v->type == REDIS_REPLY_ARRAY ? v->elements : 0;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    json_t *arr = json_array();
    if (!names || !arr) {
        free(names);
        freeReplyObject(v);
        return kg__nomem(arr, err);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v->element[i]->type == REDIS_REPLY_STRING)
            names[m++] = v->element[i]->str;
    qsort(names, m, sizeof *names, kg__cmp_str);
    for (size_t i = 0; i < m && rc == 0; i++)
        if (json_array_append_new(arr, json_string(names[i])) != 0)
            rc = KG_ENOMEM;
    free(names);
    freeReplyObject(v);
    if (rc)
        return kg__nomem(arr, err);
    *out = arr;
    return 0;
}

int kg_redis_reader_active_nodes(kg_redis_reader_t *r, json_t **out, kg_error_t *err)
{
    return kg__members(r, KG_REDIS_KEY_ACTIVE_NODES, out, err);
}

int kg_redis_reader_active_workflows(kg_redis_reader_t *r, json_t **out, kg_error_t *err)
{
    return kg__members(r, KG_REDIS_KEY_ACTIVE_WORKFLOWS, out, err);
}

int kg_redis_reader_counters(kg_redis_reader_t *r, json_t **out, kg_error_t *err)
{
    static const char *const types[4] = {"lifecycle", "data", "error", "metric"};
    if (!r || !out)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *out = NULL;
    char *keys[4] = {NULL, NULL, NULL, NULL};
    const char *argv[5] = {"MGET"};
    size_t lens[5] = {4};
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        keys[i] = kg__join(r->prefix, KG_REDIS_KEY_COUNTER, types[i]);
        if (!keys[i])
            rc = KG_ENOMEM;
        argv[1 + i] = keys[i];
        lens[1 + i] = keys[i] ? strlen(keys[i]) : 0;
    }
    redisReply *v = rc ? NULL : kg__command(r, 5, argv, lens, &rc, err);
    for (int i = 0; i < 4; i++)
        free(keys[i]);
    if (rc == KG_ENOMEM && !v)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    if (!v)
        return rc;
    json_t *obj = json_object();
    for (int i = 0; obj && i < 4; i++) {
        long long n = 0;
        if (v->type == REDIS_REPLY_ARRAY && (size_t)i < v->elements &&
            v->element[i]->type == REDIS_REPLY_STRING)
            n = strtoll(v->element[i]->str, NULL, 10);
        if (json_object_set_new(obj, types[i], json_integer(n)) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    freeReplyObject(v);
    if (!obj)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    *out = obj;
    return 0;
}

size_t kg__stream_each(const redisReply *v, kg_stream_visit_cb visit, void *ud)
{
    /* [[key, [[id, [field, value, ...]], ...]]] or nil when nothing new. */
    if (v->type != REDIS_REPLY_ARRAY || v->elements < 1 ||
        v->element[0]->type != REDIS_REPLY_ARRAY || v->element[0]->elements != 2 ||
        v->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    const redisReply *entries = v->element[0]->element[1];
    size_t n = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        kg_stream_entry entry = {.id = e->element[0]->str};
        const redisReply *fields = e->element[1];
        const redisReply *batch = NULL;
        for (size_t f = 0; fields->type == REDIS_REPLY_ARRAY && f + 1 < fields->elements; f += 2) {
            if (fields->element[f]->type != REDIS_REPLY_STRING ||
                fields->element[f + 1]->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(fields->element[f]->str, KG_REDIS_STREAM_FIELD) == 0) {
                entry.event = fields->element[f + 1]->str;
                entry.event_len = fields->element[f + 1]->len;
                break;
            }
            if (strcmp(fields->element[f]->str, "events") == 0) {
                batch = fields->element[f + 1];
                break;
            }
        }
        if (!batch) {
            visit(ud, &entry);
            n++;
            continue;
        }
        /* A lean-layout entry: a batch, one event per line, each visited as
         * an entry of its own with the batch's id. */
        for (size_t at = 0; at < batch->len;) {
            const char *line = batch->str + at;
            const char *nl = memchr(line, '\n', batch->len - at);
            size_t len = nl ? (size_t)(nl - line) : batch->len - at;
            at += len + 1;
            if (len == 0)
                continue;
            entry.event = line;
            entry.event_len = len;
            visit(ud, &entry);
            n++;
        }
    }
    return n;
}

int kg_redis_reader_stream_scan(kg_redis_reader_t *r, const char *after, size_t count,
                                kg_stream_visit_cb visit, void *ud, size_t *n, kg_error_t *err)
{
    if (n)
        *n = 0;
    if (!r || !visit)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    char num[32];
    snprintf(num, sizeof num, "%zu", count ? count : 1000);
    char *key = kg__join(r->prefix, KG_REDIS_KEY_STREAM, "");
    if (!key)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    /* XREAD's id is exclusive, which is what "go on after the last entry"
     * needs, and works on Redis 5 (XRANGE's "(id" needs 6.2). */
    const char *argv[6] = {"XREAD", "COUNT", num, "STREAMS", key, after && *after ? after : "0"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    int rc;
    redisReply *v = kg__command(r, 6, argv, lens, &rc, err);
    free(key);
    if (!v)
        return rc;
    size_t visited = kg__stream_each(v, visit, ud);
    freeReplyObject(v);
    if (n)
        *n = visited;
    return 0;
}

int kg_redis_reader_stream_length(kg_redis_reader_t *r, unsigned long long *len, kg_error_t *err)
{
    if (!r || !len)
        return kg_error_set(err, KG_EINVAL, "ArgumentError", "NULL argument");
    *len = 0;
    int rc;
    redisReply *v = kg__command2(r, "XLEN", KG_REDIS_KEY_STREAM, "", 0, NULL, &rc, err);
    if (!v)
        return rc;
    if (v->type == REDIS_REPLY_INTEGER && v->integer > 0)
        *len = (unsigned long long)v->integer;
    freeReplyObject(v);
    return 0;
}
