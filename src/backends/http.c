/* http.c - the HTTP webhook backend (libcurl): one POST per batch.
 *
 * Body, as DESIGN.md's webhook format:
 *     {"events":[<ev>,<ev>,...],"batch_size":N,"timestamp":"2026-11-27T17:36:13.123456Z"}
 * built by concatenating the events' pre-serialised JSON texts into a
 * per-worker buffer: the dispatcher already produced valid JSON, so parsing
 * and re-serialising here would only burn the dispatcher's time.  With
 * single_as_bare a batch of one is POSTed as the bare event, straight from
 * the view (no copy).  `timestamp` is the time of sending.
 *
 * One CURL easy handle per dispatcher worker, created by connect() and used
 * only by that worker's thread, so the send path takes no lock; the handle's
 * connection cache keeps the TCP (and TLS) connection alive between batches,
 * which is the seed's "connection pooling".  libcurl itself notices a cached
 * connection the server has closed and opens a new one.
 *
 * Outcome of a POST: a 2xx status is success.  Any other status is
 * KG_EBACKEND (the contract says >= 400; a 3xx is not followed, so the batch
 * was not accepted either), a timeout (connect or total) KG_ETIMEOUT, a
 * refused / reset / TLS-failed connection KG_ECONNECT.  A failed batch is
 * resent whole by the dispatcher, so delivery is at-least-once: a receiver
 * that stored the batch but whose answer was lost (timeout) gets it again;
 * events carry event_id for de-duplication.
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
 * SIGPIPE is blocked on the calling thread around curl_easy_perform (see
 * redis.c).  curl_global_init runs once per process through pthread_once;
 * curl_global_cleanup is never called, since another part of the host
 * program may still use libcurl. */
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

/* A worker's body buffer above this is freed after the send, so one huge
 * batch does not pin its memory for the life of the process. */
#define KG__HTTP_KEEP_BODY (8u << 20)

typedef struct kg__http_worker {
    CURL *curl;
    char *body;
    size_t cap;
    atomic_bool up;
    char errbuf[CURL_ERROR_SIZE];
} kg__http_worker;

typedef struct kg__http {
    char *url;
    struct curl_slist *headers;   /* immutable once built; shared by the handles */
    long connect_ms;
    long timeout_ms;
    bool single_as_bare;
    bool verify_tls;
    kg__http_worker *workers;
    _Atomic unsigned nworkers;
    /* The last failure's description; the lock is taken only on failures
     * and by kg_http_backend_last_error(). */
    pthread_mutex_t err_mu;
    char last_error[CURL_ERROR_SIZE + 64];
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

/* "2026-11-27T17:36:13.123456Z" into buf[28]; returns its length. */
static size_t kg__iso_now(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
    return n + (m > 0 ? (size_t)m : 0);
}

static int kg__curl_code(CURLcode c)
{
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
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

static int kg__worker_setup(kg__http *h, kg__http_worker *w)
{
    CURL *c = curl_easy_init();
    if (!c)
        return KG_ENOMEM;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, h->url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, kg__discard) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, w->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->verify_tls ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->verify_tls ? 2L : 0L) != CURLE_OK;
    /* Only HTTP(S): a webhook URL must not turn into file:// or a redirect. */
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    if (bad) {
        curl_easy_cleanup(c);
        return KG_EBACKEND;
    }
    w->curl = c;
    atomic_store_explicit(&w->up, true, memory_order_relaxed);
    return 0;
}

static void kg__worker_free(kg__http_worker *w)
{
    if (w->curl)
        curl_easy_cleanup(w->curl);
    w->curl = NULL;
    free(w->body);
    w->body = NULL;
    w->cap = 0;
    atomic_store_explicit(&w->up, false, memory_order_relaxed);
}

/* Build the batch body in the worker's buffer; returns its length, or 0
 * when out of memory. */
static size_t kg__build_body(kg__http_worker *w, const kg_batch *batch)
{
    static const char head[] = "{\"events\":[";
    char tail[96];
    char ts[40];
    kg__iso_now(ts, sizeof ts);
    size_t tail_len = (size_t)snprintf(tail, sizeof tail, "],\"batch_size\":%zu,\"timestamp\":\"%s\"}",
                                       batch->count, ts);
    size_t need = sizeof head - 1 + tail_len + 1;
    for (size_t i = 0; i < batch->count; i++)
        need += batch->events[i].json_len + 1;
    if (need > w->cap) {
        char *b = realloc(w->body, need);
        if (!b)
            return 0;
        w->body = b;
        w->cap = need;
    }
    char *p = w->body;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    for (size_t i = 0; i < batch->count; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, batch->events[i].json, batch->events[i].json_len);
        p += batch->events[i].json_len;
    }
    memcpy(p, tail, tail_len);
    p += tail_len;
    *p = '\0';
    return (size_t)(p - w->body);
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
    const char *body;
    size_t len;
    if (batch->count == 1 && h->single_as_bare) {
        body = batch->events[0].json;
        len = batch->events[0].json_len;
    } else {
        len = kg__build_body(w, batch);
        if (len == 0)
            return KG_ENOMEM;
        body = w->body;
    }
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    w->errbuf[0] = '\0';

    kg__sigpipe_guard g;
    kg__sigpipe_block(&g);
    CURLcode cc = curl_easy_perform(w->curl);
    kg__sigpipe_restore(&g);

    int rc = kg__curl_code(cc);
    long status = 0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status >= 300)
            rc = KG_EBACKEND;
    }
    if (rc) {
        pthread_mutex_lock(&h->err_mu);
        if (cc != CURLE_OK)
            snprintf(h->last_error, sizeof h->last_error, "%s (curl error %d)",
                     w->errbuf[0] ? w->errbuf : curl_easy_strerror(cc), (int)cc);
        else
            snprintf(h->last_error, sizeof h->last_error, "HTTP %ld", status);
        pthread_mutex_unlock(&h->err_mu);
    }
    atomic_store_explicit(&w->up, rc != KG_ECONNECT && rc != KG_ETIMEOUT, memory_order_relaxed);
    /* The handle keeps a pointer to the body until the next send; point it
     * away before the buffer can be freed. */
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, "");
    if (w->cap > KG__HTTP_KEEP_BODY) {
        free(w->body);
        w->body = NULL;
        w->cap = 0;
    }
    return rc;
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
    curl_slist_free_all(h->headers);
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
};

void kg_http_options_init(kg_http_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout = 2.0;
    o->timeout = 5.0;
    o->verify_tls = true;
}

static long kg__ms(double seconds, double dflt)
{
    if (seconds <= 0)
        seconds = dflt;
    long ms = (long)(seconds * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

kg_backend_t *kg_http_backend_new(const kg_http_options *o, kg_error_t *err)
{
    if (!o || !o->url) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "http backend needs a url");
        return NULL;
    }
    if (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0) {
        kg_error_set(err, KG_EINVAL, "ArgumentError", "url must be http:// or https://: %s",
                     o->url);
        return NULL;
    }
    pthread_once(&kg__curl_once, kg__curl_init);
    if (kg__curl_init_rc != CURLE_OK) {
        kg_error_set(err, KG_EBACKEND, "CurlError", "curl_global_init: %s",
                     curl_easy_strerror(kg__curl_init_rc));
        return NULL;
    }
    kg__http *h = calloc(1, sizeof *h);
    if (!h) {
        kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    atomic_init(&h->nworkers, 0);
    pthread_mutex_init(&h->err_mu, NULL);
    h->url = strdup(o->url);
    h->connect_ms = kg__ms(o->connect_timeout, 2.0);
    h->timeout_ms = kg__ms(o->timeout, 5.0);
    h->single_as_bare = o->single_as_bare;
    h->verify_tls = o->verify_tls;
    /* "Expect:" disables libcurl's "Expect: 100-continue" on large bodies,
     * which would cost a round trip (or a 1 s wait) per batch. */
    bool ok = h->url != NULL;
    struct curl_slist *l = NULL, *t;
    const char *fixed[2] = {"Content-Type: application/json", "Expect:"};
    for (int i = 0; ok && i < 2; i++) {
        if ((t = curl_slist_append(l, fixed[i])) == NULL)
            ok = false;
        else
            l = t;
    }
    for (size_t i = 0; ok && o->headers && o->headers[i]; i++) {
        if (!strchr(o->headers[i], ':')) {
            curl_slist_free_all(l);
            free(h->url);
            pthread_mutex_destroy(&h->err_mu);
            free(h);
            kg_error_set(err, KG_EINVAL, "ArgumentError", "header without ':': %s",
                         o->headers[i]);
            return NULL;
        }
        if ((t = curl_slist_append(l, o->headers[i])) == NULL)
            ok = false;
        else
            l = t;
    }
    h->headers = l;
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

/* Declared here until include/kaygraph/backends.h carries it (the lead's
 * header): the description of the last failed request of an HTTP backend,
 * copied into buf (NUL-terminated, truncated to size).  False when `b` is
 * not an HTTP backend or no request has failed yet.  Any thread. */

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
