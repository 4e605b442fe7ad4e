/* http.c - the HTTP webhook backend (libcurl): one POST per batch.
 *
 * Body, as docs/webhook.md's format plus an id:
 *     {"events":[<ev>,<ev>,...],"batch_size":N,"timestamp":"2026-11-27T17:36:13.123456Z",
 *      "batch_id":"<uuid>"}
 * built by concatenating the events' pre-serialised JSON texts into a
 * per-worker buffer: the dispatcher already produced valid JSON, so parsing
 * and re-serialising here would only burn the dispatcher's time.  With
 * single_as_bare a batch of one is POSTed as the bare event, straight from
 * the view (no copy).  `timestamp` is the time of sending.
 *
 * Idempotency: the batch id is a v8 UUID hashed from the batch's event_ids
 * (the first and the last, and the count).
 * The dispatcher resends a failed batch whole (the same events), so every
 * resend carries the same id -- in the body and as the Idempotency-Key
 * header -- and a receiver that stored a batch whose answer was lost (a
 * timeout) can drop the copy.  No state is needed to keep it stable.
 *
 * One CURL easy handle per dispatcher worker, created by connect() and used
 * only by that worker's thread, so the send path takes no lock; the handle's
 * connection cache keeps the TCP (and TLS) connection alive between batches,
 * which is the seed's "connection pooling".  The handle is driven through a
 * per-worker multi handle rather than curl_easy_perform, so the transfer
 * can be cut at the monitor's shutdown deadline (set_deadline): the loop
 * polls at most 100 ms at a time and looks at the deadline in between.
 * (A progress callback would also do, but libcurl calls it only about once
 * a second while nothing moves.)
 *
 * Outcome of a POST: a 2xx status is success.  307/308 are followed by hand
 * (libcurl's own following would also follow 301/302/303, turning the POST
 * into a GET that a receiver may well answer 200: events lost), at most
 * KG__HTTP_MAX_HOPS times, with the method and the body, and with the
 * user's headers only to the original scheme://host:port (what libcurl does
 * with its own redirects: an Authorization header must not leak to another
 * host), never from https to http.  301/302/303 fail at once with the
 * Location in the message, and the backend tells the dispatcher not to try
 * again for retry_after_max: resending will not make the receiver accept a
 * POST there (it used to be resent every few ms).  429 and 503 with
 * Retry-After (delta-seconds or an HTTP date) set the same "not before", at
 * most retry_after_max.  Other statuses are KG_EBACKEND, a timeout (connect,
 * total, or the shutdown deadline) KG_ETIMEOUT, a refused / reset /
 * TLS-failed connection KG_ECONNECT.  A failed batch is resent whole by the
 * dispatcher, so delivery is at-least-once.
 *
 * is_connected() is true when no worker's last request failed at the
 * transport level (connection refused, reset, timed out); an HTTP error
 * status means the endpoint is reachable.  No request is made only to probe.
 * kg_http_backend_last_error() tells why the last failed request failed, in
 * libcurl's words ("SSL certificate problem: self-signed certificate") or
 * as the status ("HTTP 500"), so a rejected certificate is not a mystery.
 *
 * TLS: https:// URLs work through libcurl's OpenSSL; verify_tls (default
 * true) checks the certificate chain and the host name against the system's
 * CA store; false accepts any certificate (self-signed test receivers).
 *
 * CURLOPT_NOSIGNAL is set (libcurl must not use SIGALRM in a threaded
 * library), which also stops libcurl from ignoring SIGPIPE for us, so
 * SIGPIPE is blocked on the calling thread around the transfer (see
 * redis.c).  curl_global_init runs once per process through pthread_once;
 * curl_global_cleanup is never called, since another part of the host
 * program may still use libcurl. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "backends/sigpipe.h"
#include "kaygraph/backends.h"
#include "monitor/serialize.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/iso8601.h"

#define KG__HTTP_MAX_HOPS 5          /* 307/308 followed per batch */
#define KG__HTTP_POLL_MS 100         /* longest wait between deadline checks */
#define KG__HTTP_URL_MAX 2048
#define KG__IDEM "Idempotency-Key: "
#define KG__IDEM_LEN (sizeof KG__IDEM - 1)

typedef struct kg__http_worker {
    CURL *curl;
    CURLM *multi;
    /* This worker's header lists: the fixed and user headers plus the
     * Idempotency-Key (whose value is rewritten in place per batch), and
     * the same without the user's headers (other origins). */
    struct curl_slist *hdr_all, *hdr_min;
    char *idem_all, *idem_min;    /* the key's text in each list */
    kg_buf body;                  /* the batch body being sent */
    atomic_bool up;
    char errbuf[CURL_ERROR_SIZE];
    char retry_after[64];         /* the Retry-After of the last response */
    char url[KG__HTTP_URL_MAX];   /* where the next hop goes */
    bool hopped;                  /* the handle points at a redirect's target */
} kg__http_worker;

typedef struct kg__http {
    char *url;
    char origin[KG__HTTP_URL_MAX];        /* "scheme://host:port" of url */
    const char **user_headers;            /* copied "Name: value" strings */
    size_t n_user_headers;
    long connect_ms;
    long timeout_ms;
    int64_t retry_after_max_ns;
    bool single_as_bare;
    bool verify_tls;
    kg__http_worker *workers;
    _Atomic unsigned nworkers;
    _Atomic int64_t not_before;   /* CLOCK_MONOTONIC ns; the peer asked for a pause */
    _Atomic int64_t deadline;     /* CLOCK_MONOTONIC ns; 0 = none (set_deadline) */
    /* The last failure's description; the lock is taken only on failures
     * and by kg_http_backend_last_error(). */
    pthread_mutex_t err_mu;
    char last_error[CURL_ERROR_SIZE + KG__HTTP_URL_MAX];
} kg__http;

/* ---- process-wide libcurl initialisation ---------------------------------------- */

static pthread_once_t kg__curl_once = PTHREAD_ONCE_INIT;
static CURLcode kg__curl_init_rc = CURLE_FAILED_INIT;

static void kg__curl_init(void)
{
    kg__curl_init_rc = curl_global_init(CURL_GLOBAL_ALL);
}

/* ---- helpers ------------------------------------------------------------------------ */

/* Responses are not used; reading them keeps the connection reusable. */
static size_t kg__discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* Keeps the Retry-After of the response being received (a new status line
 * starts a new response: intermediate ones do not count). */
static size_t kg__header(char *line, size_t size, size_t nmemb, void *ud)
{
    kg__http_worker *w = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        w->retry_after[0] = '\0';
    } else if (n > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        const char *v = line + sizeof name - 1, *e = line + n;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - v) < sizeof w->retry_after - 1 ? (size_t)(e - v)
                                                                   : sizeof w->retry_after - 1;
        memcpy(w->retry_after, v, len);
        w->retry_after[len] = '\0';
    }
    return n;
}

/* Seconds a Retry-After value asks for: delta-seconds or an HTTP date
 * (RFC 9110 10.2.3); 0 when absent, unparsable or in the past. */
static double kg__retry_after_s(const char *v)
{
    if (!*v)
        return 0;
    bool digits = true;
    for (const char *p = v; *p; p++)
        digits &= isdigit((unsigned char)*p) != 0;
    if (digits)
        return strlen(v) > 9 ? 1e9 : (double)strtol(v, NULL, 10);
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return 0;
    double d = (double)t - kg_clock_real();
    return d > 0 ? d : 0;
}

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t kg__mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t kg__fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return h;
}

/* The batch's id: a v8 UUID hashed from its first and last event_id and its
 * size.  An event is in exactly one batch (the dispatcher keeps a failed
 * batch whole until it is delivered or dropped), so its first event_id
 * alone already tells batches apart; hashing every id cost 15% of the
 * webhook's throughput on loopback. */
static void kg__batch_id(const kg_batch *batch, char out[37])
{
    const char *first = batch->events[0].event_id, *last = batch->events[batch->count - 1].event_id;
    uint64_t a = kg__fnv(kg__fnv(0xcbf29ce484222325u, first), last);
    uint64_t b = kg__fnv(kg__fnv(0x84222325cbf29ce4u, last), first);
    kg_uuid_from_ids(out, kg__mix(a ^ batch->count), kg__mix(b + batch->count));
}

/* "scheme://host:port" of `url` (lower case, default port filled in) into
 * out; false when libcurl cannot parse it or it has no host. */
static bool kg__origin(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        int n = snprintf(out, size, "%s://%s:%s", scheme, host, port);
        ok = n > 0 && (size_t)n < size;
        for (char *p = out; ok && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

static int kg__curl_code(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_ABORTED_BY_CALLBACK:   /* cut at the shutdown deadline */
        return KG_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_PARTIAL_FILE:
        return KG_ECONNECT;
    case CURLE_OUT_OF_MEMORY:
        return KG_ENOMEM;
    default:
        return KG_EBACKEND;
    }
}

/* ---- per-worker handle ------------------------------------------------------------------ */

/* A header list: the fixed headers, the user's (when `user`), then the
 * Idempotency-Key, whose text is returned in *key for in-place rewriting. */
static struct curl_slist *kg__headers_new(const kg__http *h, bool user, char **key)
{
    static const char *const fixed[2] = {"Content-Type: application/json", "Expect:"};
    struct curl_slist *l = NULL, *t;
    for (size_t i = 0; i < 2 + (user ? h->n_user_headers : 0); i++) {
        if ((t = curl_slist_append(l, i < 2 ? fixed[i] : h->user_headers[i - 2])) == NULL) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = t;
    }
    /* A placeholder of the key's final length (36). */
    if ((t = curl_slist_append(l, KG__IDEM "00000000-0000-0000-0000-000000000000")) == NULL) {
        curl_slist_free_all(l);
        return NULL;
    }
    while (t->next)
        t = t->next;
    *key = t->data + KG__IDEM_LEN;
    return l;
}

static int kg__worker_setup(kg__http *h, kg__http_worker *w)
{
    CURL *c = curl_easy_init();
    CURLM *m = curl_multi_init();
    w->hdr_all = kg__headers_new(h, true, &w->idem_all);
    w->hdr_min = kg__headers_new(h, false, &w->idem_min);
    if (!c || !m || !w->hdr_all || !w->hdr_min) {
        curl_easy_cleanup(c);
        curl_multi_cleanup(m);
        curl_slist_free_all(w->hdr_all);
        curl_slist_free_all(w->hdr_min);
        w->hdr_all = w->hdr_min = NULL;
        return KG_ENOMEM;
    }
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, h->url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdr_all) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kg__discard) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kg__header) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, w) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->verify_tls ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->verify_tls ? 2L : 0L) != CURLE_OK;
    /* Only HTTP(S): a webhook URL must not turn into file://.  Redirects are
     * followed here, not by libcurl (see the top of the file). */
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(c);
        curl_multi_cleanup(m);
        curl_slist_free_all(w->hdr_all);
        curl_slist_free_all(w->hdr_min);
        w->hdr_all = w->hdr_min = NULL;
        return KG_EBACKEND;
    }
    w->curl = c;
    w->multi = m;
    atomic_store_explicit(&w->up, true, memory_order_relaxed);
    return 0;
}

static void kg__worker_free(kg__http_worker *w)
{
    if (w->curl)
        curl_easy_cleanup(w->curl);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->hdr_all);
    curl_slist_free_all(w->hdr_min);
    w->hdr_all = w->hdr_min = NULL;
    w->curl = NULL;
    w->multi = NULL;
    kg_buf_free(&w->body);
    atomic_store_explicit(&w->up, false, memory_order_relaxed);
}

/* Build the batch body in the worker's buffer; returns its length, or 0
 * when out of memory. */
static size_t kg__build_body(kg__http_worker *w, const kg_batch *batch, const char *id)
{
    char ts[32];
    kg_iso8601_format(ts, kg_clock_real_ns());
    kg_buf *b = &w->body;
    kg_buf_reset(b);   /* gives back a buffer a huge batch grew past 1 MiB */
    size_t need = 160;
    for (size_t i = 0; i < batch->count; i++)
        need += batch->events[i].json_len + 1;
    kg_buf_reserve(b, need);   /* one allocation, not one per event */
    kg_buf_puts(b, "{\"events\":[");
    for (size_t i = 0; i < batch->count; i++) {
        if (i)
            kg_buf_append(b, ",", 1);
        kg_buf_append(b, batch->events[i].json, batch->events[i].json_len);
    }
    kg_buf_printf(b, "],\"batch_size\":%zu,\"timestamp\":\"%s\",\"batch_id\":\"%s\"}",
                  batch->count, ts, id);
    return b->failed ? 0 : b->len;
}

/* One transfer on the worker's handle, cut when the shutdown deadline
 * passes (*cut then set, CURLE_ABORTED_BY_CALLBACK returned). */
static CURLcode kg__perform(kg__http *h, kg__http_worker *w, bool *cut)
{
    *cut = false;
    if (curl_multi_add_handle(w->multi, w->curl) != CURLM_OK)
        return CURLE_FAILED_INIT;
    CURLcode res = CURLE_FAILED_INIT;
    int running = 1;
    while (running) {
        if (curl_multi_perform(w->multi, &running) != CURLM_OK)
            break;
        if (!running)
            break;
        int64_t dl = atomic_load_explicit(&h->deadline, memory_order_acquire);
        int64_t now = kg_clock_mono_ns();
        if (dl && now >= dl) {
            *cut = true;
            break;
        }
        int64_t ms = KG__HTTP_POLL_MS;
        if (dl && (dl - now) / 1000000 + 1 < ms)
            ms = (dl - now) / 1000000 + 1;
        if (curl_multi_poll(w->multi, NULL, 0, (int)ms, NULL) != CURLM_OK)
            break;
    }
    if (!running) {
        int left;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(w->multi, &left)) != NULL)
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == w->curl)
                res = msg->data.result;
    }
    curl_multi_remove_handle(w->multi, w->curl);
    if (*cut) {
        snprintf(w->errbuf, sizeof w->errbuf,
                 "request cut at the monitor's shutdown deadline (shutdown_timeout)");
        return CURLE_ABORTED_BY_CALLBACK;
    }
    return res;
}

/* The outcome of one POST (with its redirects), for the error message. */
typedef struct kg__post {
    CURLcode cc;
    long status;
    int rc;
    char location[KG__HTTP_URL_MAX];   /* a redirect not followed */
    const char *why;                   /* why it was not */
    double pause;                      /* Retry-After honoured, s */
} kg__post;

/* May a 307/308 to `to` be followed, and with which headers?  NULL when
 * allowed (*same_origin set), else why not. */
static const char *kg__hop_check(const kg__http *h, const char *to, bool *same_origin)
{
    char origin[KG__HTTP_URL_MAX];
    if (strncasecmp(to, "http://", 7) != 0 && strncasecmp(to, "https://", 8) != 0)
        return "only http:// and https:// are followed";
    if (strncasecmp(h->url, "https://", 8) == 0 && strncasecmp(to, "http://", 7) == 0)
        return "it would send the batch unencrypted (https to http)";
    if (strlen(to) >= KG__HTTP_URL_MAX || !kg__origin(to, origin, sizeof origin))
        return "the Location is not a usable URL";
    *same_origin = strcmp(origin, h->origin) == 0;
    return NULL;
}

/* POST the body, following 307/308; fills `p`. */
static void kg__post_run(kg__http *h, kg__http_worker *w, kg__post *p)
{
    memset(p, 0, sizeof *p);
    /* Setting the URL makes libcurl parse it again: only after a redirect. */
    if (w->hopped) {
        curl_easy_setopt(w->curl, CURLOPT_URL, h->url);
        curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->hdr_all);
        w->hopped = false;
    }
    for (int hops = 0;; hops++) {
        bool cut;
        w->errbuf[0] = '\0';
        w->retry_after[0] = '\0';
        p->cc = kg__perform(h, w, &cut);
        p->rc = kg__curl_code(p->cc);
        p->status = 0;
        if (p->cc != CURLE_OK)
            return;
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &p->status);
        if (p->status >= 200 && p->status < 300) {
            p->rc = 0;
            return;
        }
        p->rc = KG_EBACKEND;
        if (p->status < 300 || p->status >= 400)
            return;
        char *loc = NULL;
        curl_easy_getinfo(w->curl, CURLINFO_REDIRECT_URL, &loc);
        snprintf(p->location, sizeof p->location, "%s", loc ? loc : "");
        bool same = false;
        if (p->status != 307 && p->status != 308)
            p->why = "only 307 and 308 keep the POST; point the webhook URL at the new location";
        else if (!loc)
            p->why = "no Location";
        else if (hops == KG__HTTP_MAX_HOPS)
            p->why = "too many redirects (at most 5 are followed)";
        else
            p->why = kg__hop_check(h, loc, &same);
        if (p->why)
            return;
        memcpy(w->url, p->location, strlen(p->location) + 1);
        w->hopped = true;
        curl_easy_setopt(w->curl, CURLOPT_URL, w->url);
        curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, same ? w->hdr_all : w->hdr_min);
    }
}

/* A failed POST: the message, is_connected, and the pause the dispatcher
 * must keep (Retry-After on 429/503; a redirect that is not followed). */
static void kg__post_failed(kg__http *h, kg__http_worker *w, kg__post *p)
{
    int64_t pause_ns = 0;
    if (p->status == 429 || p->status == 503) {
        double s = kg__retry_after_s(w->retry_after);
        double max = (double)h->retry_after_max_ns / 1e9;
        p->pause = s < max ? s : max;
        pause_ns = (int64_t)(p->pause * 1e9);
    } else if (p->why) {
        p->pause = (double)h->retry_after_max_ns / 1e9;
        pause_ns = h->retry_after_max_ns;
    }
    if (pause_ns > 0) {
        int64_t until = kg_clock_mono_ns() + pause_ns;
        int64_t cur = atomic_load(&h->not_before);
        while (cur < until && !atomic_compare_exchange_weak(&h->not_before, &cur, until)) {
        }
    }
    pthread_mutex_lock(&h->err_mu);
    if (p->cc != CURLE_OK)
        snprintf(h->last_error, sizeof h->last_error, "%s (curl error %d)",
                 w->errbuf[0] ? w->errbuf : curl_easy_strerror(p->cc), (int)p->cc);
    else if (p->why)
        snprintf(h->last_error, sizeof h->last_error,
                 "HTTP %ld redirect to %s not followed: %s (not retried for %.0f s)", p->status,
                 p->location[0] ? p->location : "(no Location)", p->why, p->pause);
    else if (p->pause > 0)
        snprintf(h->last_error, sizeof h->last_error, "HTTP %ld, Retry-After: %s (waiting %.1f s)",
                 p->status, w->retry_after, p->pause);
    else
        snprintf(h->last_error, sizeof h->last_error, "HTTP %ld", p->status);
    pthread_mutex_unlock(&h->err_mu);
}

/* ---- the ops table ------------------------------------------------------------------------ */

static int http_connect(void *data, unsigned workers)
{
    kg__http *h = data;
    if (workers == 0)
        return KG_EINVAL;
    unsigned have = atomic_load_explicit(&h->nworkers, memory_order_acquire);
    if (have != workers) {
        /* Only reached on a first connect, or again with another worker
         * count while nothing sends. */
        for (unsigned i = 0; i < have; i++)
            kg__worker_free(&h->workers[i]);
        atomic_store_explicit(&h->nworkers, 0, memory_order_release);
        free(h->workers);
        h->workers = calloc(workers, sizeof *h->workers);
        if (!h->workers)
            return KG_ENOMEM;
        for (unsigned i = 0; i < workers; i++)
            atomic_init(&h->workers[i].up, false);
        atomic_store_explicit(&h->nworkers, workers, memory_order_release);
    }
    /* No request is made here: a webhook has no side-effect-free probe.  A
     * handle that cannot be set up now is retried by its first send. */
    int first = 0;
    for (unsigned i = 0; i < workers; i++) {
        int rc = h->workers[i].curl ? 0 : kg__worker_setup(h, &h->workers[i]);
        if (rc && !first)
            first = rc;
    }
    return first;
}

static int http_send_batch(void *data, unsigned worker, const kg_batch *batch)
{
    kg__http *h = data;
    if (worker >= atomic_load_explicit(&h->nworkers, memory_order_acquire))
        return KG_EINVAL;
    if (!batch || batch->count == 0)
        return 0;
    kg__http_worker *w = &h->workers[worker];
    if (!w->curl) {
        int rc = kg__worker_setup(h, w);
        if (rc)
            return rc;
    }
    char id[37];
    kg__batch_id(batch, id);
    memcpy(w->idem_all, id, 36);
    memcpy(w->idem_min, id, 36);
    const char *body;
    size_t len;
    if (batch->count == 1 && h->single_as_bare) {
        body = batch->events[0].json;
        len = batch->events[0].json_len;
    } else {
        len = kg__build_body(w, batch, id);
        if (len == 0)
            return KG_ENOMEM;
        body = w->body.data;
    }
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);

    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    kg__post p;
    kg__post_run(h, w, &p);
    kg__sigpipe_restore(&g);

    if (p.rc)
        kg__post_failed(h, w, &p);
    atomic_store_explicit(&w->up, p.rc != KG_ECONNECT && p.rc != KG_ETIMEOUT,
                          memory_order_relaxed);
    /* The handle keeps a pointer to the body until the next send; point it
     * away before the buffer can be freed. */
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, "");
    return p.rc;
}

static int64_t http_not_before(void *data, unsigned worker)
{
    kg__http *h = data;
    (void)worker;   /* one receiver: a pause it asks for holds for every worker */
    return atomic_load_explicit(&h->not_before, memory_order_relaxed);
}

static void http_set_deadline(void *data, int64_t deadline_ns)
{
    kg__http *h = data;
    atomic_store_explicit(&h->deadline, deadline_ns, memory_order_release);
}

static void http_disconnect(void *data)
{
    kg__http *h = data;
    unsigned n = atomic_load_explicit(&h->nworkers, memory_order_acquire);
    /* Dropping a handle closes its cached connections; the array stays, so
     * is_connected() may still look at it, and a later send sets up a new
     * handle. */
    for (unsigned i = 0; i < n; i++)
        kg__worker_free(&h->workers[i]);
}
static bool http_is_connected(void *data)
{
    kg__http *h = data;
    unsigned n = atomic_load_explicit(&h->nworkers, memory_order_acquire);
    if (n == 0)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (!atomic_load_explicit(&h->workers[i].up, memory_order_relaxed))
            return false;
    return true;
}

static void http_destroy(void *data)
{
    kg__http *h = data;
    if (!h)
        return;
    http_disconnect(h);
    free(h->workers);
    for (size_t i = 0; i < h->n_user_headers; i++)
        free((char *)h->user_headers[i]);
    free(h->user_headers);
    free(h->url);
    pthread_mutex_destroy(&h->err_mu);
    free(h);
}

static const kg_backend_ops kg__http_ops = {
    .name = "http",
    .connect = http_connect,
    .send_batch = http_send_batch,
    .disconnect = http_disconnect,
    .is_connected = http_is_connected,
    .destroy = http_destroy,
    .not_before = http_not_before,
    .set_deadline = http_set_deadline,
};

void kg_http_options_init(kg_http_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout = 2.0;
    o->timeout = 5.0;
    o->verify_tls = true;
    o->retry_after_max = 60.0;
}

static long kg__ms(double seconds, double dflt)
{
    if (seconds <= 0)
        seconds = dflt;
    long ms = (long)(seconds * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

/* Why `url` cannot be a webhook URL, or NULL. */
static const char *kg__url_problem(const char *url, char *origin, size_t size)
{
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return "must be http:// or https://";
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "contains a space or a control character";
    if (strlen(url) >= KG__HTTP_URL_MAX)
        return "is too long";
    /* libcurl reads "http:///x" as host "x"; an empty authority is no host. */
    const char *auth = strstr(url, "://") + 3;
    if (!*auth || strchr("/?#@:", *auth))
        return "has no host, or is malformed";
    if (!kg__origin(url, origin, size))
        return "has no host, or is malformed";
    return NULL;
}

kg_backend_t *kg_http_backend_new(const kg_http_options *o, kg_error_t *err)
{
    if (!o || !o->url) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "http backend needs a url");
        return NULL;
    }
    pthread_once(&kg__curl_once, kg__curl_init);
    if (kg__curl_init_rc != CURLE_OK) {
        kg_error_set(err, KG_EBACKEND, "CurlError", "curl_global_init: %s",
                     curl_easy_strerror(kg__curl_init_rc));
        return NULL;
    }
    char origin[KG__HTTP_URL_MAX];
    const char *why = kg__url_problem(o->url, origin, sizeof origin);
    if (why) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "url %s: '%s'", why, o->url);
        return NULL;
    }
    if (o->timeout < 0 || o->connect_timeout < 0 || o->retry_after_max < 0) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "timeouts must be >= 0 s");
        return NULL;
    }
    size_t nh = 0;
    for (; o->headers && o->headers[nh]; nh++)
        if (!strchr(o->headers[nh], ':')) {
            kg_error_set(err, KG_EINVAL, "ArgumentError", "header without ':': %s", o->headers[nh]);
            return NULL;
        }
    kg__http *h = calloc(1, sizeof *h);
    if (!h) {
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    atomic_init(&h->nworkers, 0);
    atomic_init(&h->not_before, 0);
    atomic_init(&h->deadline, 0);
    pthread_mutex_init(&h->err_mu, NULL);
    memcpy(h->origin, origin, sizeof origin);
    h->url = strdup(o->url);
    h->connect_ms = kg__ms(o->connect_timeout, 2.0);
    h->timeout_ms = kg__ms(o->timeout, 5.0);
    h->retry_after_max_ns = (int64_t)((o->retry_after_max > 0 ? o->retry_after_max : 60.0) * 1e9);
    h->single_as_bare = o->single_as_bare;
    h->verify_tls = o->verify_tls;
    h->user_headers = calloc(nh ? nh : 1, sizeof *h->user_headers);
    bool ok = h->url && h->user_headers;
    for (size_t i = 0; ok && i < nh; i++, h->n_user_headers++)
        ok = (h->user_headers[i] = strdup(o->headers[i])) != NULL;
    if (!ok) {
        http_destroy(h);
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    kg_backend_t *b = kg_backend_new(&kg__http_ops, h);
    if (!b)
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    return b;
}

bool kg_http_backend_last_error(kg_backend_t *b, char *buf, size_t size)
{
    if (!b || !buf || size == 0 || strcmp(kg_backend_name(b), "http") != 0)
        return false;
    kg__http *h = kg_backend_data(b);
    pthread_mutex_lock(&h->err_mu);
    bool have = h->last_error[0] != '\0';
    snprintf(buf, size, "%s", h->last_error);
    pthread_mutex_unlock(&h->err_mu);
    return have;
}
