/* http_receiver.c - a loopback HTTP/1.1 webhook sink for tests (see
 * http_receiver.h).
 *
 * Deliberately simple: requests need a Content-Length (what libcurl sends
 * for a POST body), chunked bodies get 411.  Connection threads poll with a
 * short timeout so stop() is noticed promptly without signalling them.
 *
 * TLS (OpenSSL) wraps the same loop: the handshake runs first on the
 * connection thread, then reads and writes go through SSL_read/SSL_write.
 * Bytes OpenSSL already decrypted are not visible to poll(), so
 * SSL_pending() is checked before waiting on the socket; a receive timeout
 * on the socket keeps a partial TLS record from blocking past stop(). */
#include "http_receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef KG_TEST_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define KG__RECV_MAX_REQUEST (256u << 20)

struct kg_http_receiver {
    int listen_fd;
    int wake[2];
    int port;
    char url[64];
    pthread_t accept_thread;
    atomic_bool stopping;

    pthread_mutex_t mu;          /* guards everything below */
    pthread_cond_t idle;         /* signalled when a connection thread ends */
    unsigned active;             /* connection threads running */
    unsigned connections;
    kg_http_receiver_mode mode;
    kg_http_receiver_mode misbehave_mode;
    unsigned misbehave_n;
    double stall;
    size_t keep_max;
    bool parse;
    void (*cb)(void *ud, const kg_http_request *req);
    void *cb_ud;
    kg_http_request **reqs;
    size_t nreqs, cap;
    kg_http_request **log;       /* every request, when logging */
    size_t nlog, log_cap, log_max;
    int respond_status;          /* kg_http_receiver_respond */
    char respond_headers[512];
    unsigned respond_n;
    size_t accepted, events, rejected;
    size_t tls_failures;
    void *tls;                   /* SSL_CTX *, NULL for plain HTTP */
    char *cert_pem;
};

typedef struct kg__conn {
    kg_http_receiver_t *r;
    int fd;
    unsigned number;
    void *ssl;                   /* SSL *, NULL for plain HTTP */
} kg__conn;

static double kg__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kg__sleep_short(void)
{
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
}

static void kg__request_free(kg_http_request *q)
{
    if (q) {
        free(q->headers);
        free(q->body);
        free(q);
    }
}

/* recv()/send() on the connection, through TLS when it has it.  recv:
 * >0 bytes, 0 on EOF, -1 on error, -2 when nothing came within the socket's
 * receive timeout (TLS only). */
static ssize_t kg__conn_recv(kg__conn *c, char *p, size_t n)
{
#ifdef KG_TEST_HAVE_OPENSSL
    if (c->ssl) {
        int got = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (got > 0)
            return got;
        int e = SSL_get_error(c->ssl, got);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return -2;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
#endif
    ssize_t got;
    while ((got = recv(c->fd, p, n, 0)) < 0 && errno == EINTR) {
    }
    return got;
}

static bool kg__conn_pending(kg__conn *c)
{
#ifdef KG_TEST_HAVE_OPENSSL
    if (c->ssl)
        return SSL_pending(c->ssl) > 0;
#endif
    (void)c;
    return false;
}

static bool kg__send_all(kg__conn *c, const char *p, size_t n)
{
    while (n > 0) {
#ifdef KG_TEST_HAVE_OPENSSL
        if (c->ssl) {
            int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (w <= 0)
                return false;
            p += w;
            n -= (size_t)w;
            continue;
        }
#endif
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read more into *buf; >0 bytes read, 0 on EOF, -1 on error or stop. */
static ssize_t kg__read_more(kg__conn *c, char **buf, size_t *len, size_t *cap)
{
    if (*cap - *len < 65536) {
        size_t ncap = *cap ? *cap * 2 : 131072;
        if (ncap > KG__RECV_MAX_REQUEST + 65536)
            return -1;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    for (;;) {
        if (atomic_load(&c->r->stopping))
            return -1;
        if (!kg__conn_pending(c)) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int n = poll(&p, 1, 50);
            if (n < 0 && errno != EINTR)
                return -1;
            if (n <= 0)
                continue;
        }
        ssize_t got = kg__conn_recv(c, *buf + *len, *cap - *len - 1);
        if (got == -2)
            continue;
        if (got > 0)
            *len += (size_t)got;
        return got < 0 ? -1 : got;
    }
}

static size_t kg__count_events(const char *body, size_t len, bool parse)
{
    if (!parse) {
        const char *p = memmem(body, len, "\"batch_size\":", 13);
        return p ? strtoul(p + 13, NULL, 10) : 1;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    size_t n = 0;
    if (json_is_object(j)) {
        json_t *ev = json_object_get(j, "events");
        n = json_is_array(ev) ? json_array_size(ev) : 1;
    }
    json_decref(j);
    return n;
}

static kg_http_receiver_mode kg__next_mode(kg_http_receiver_t *r)
{
    pthread_mutex_lock(&r->mu);
    kg_http_receiver_mode m = r->mode;
    if (r->misbehave_n > 0) {
        r->misbehave_n--;
        m = r->misbehave_mode;
    }
    pthread_mutex_unlock(&r->mu);
    return m;
}

/* Hold the request without answering until the stall time passes, the
 * client hangs up or the receiver stops. */
static void kg__stall(kg__conn *c)
{
    pthread_mutex_lock(&c->r->mu);
    double deadline = kg__now() + c->r->stall;
    pthread_mutex_unlock(&c->r->mu);
    char sink[4096];
    while (kg__now() < deadline && !atomic_load(&c->r->stopping)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, 50);
        if (n > 0 && recv(c->fd, sink, sizeof sink, 0) <= 0)
            return;
    }
}

/* One request (line, headers, body) as a record; NULL when out of memory. */
static kg_http_request *kg__request_new(kg__conn *c, const char *buf, size_t line_end,
                                        size_t hdr_end, size_t body_len, double at, int status)
{
    kg_http_request *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    sscanf(buf, "%15s %255s", q->method, q->path);
    size_t hlen = hdr_end + 2 - (line_end + 2);
    q->headers = malloc(hlen + 1);
    q->body = malloc(body_len + 1);
    if (!q->headers || !q->body) {
        kg__request_free(q);
        return NULL;
    }
    memcpy(q->headers, buf + line_end + 2, hlen);
    q->headers[hlen] = '\0';
    memcpy(q->body, buf + hdr_end + 4, body_len);
    q->body[body_len] = '\0';
    q->body_len = body_len;
    q->connection = c->number;
    q->at = at;
    q->status = status;
    return q;
}

/* Append `q` (owned) to a bounded list; frees it when the list is full. */
static void kg__list_keep(kg_http_request ***list, size_t *n, size_t *cap, size_t max,
                          kg_http_request *q)
{
    if (*n < max && *n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        kg_http_request **nl = realloc(*list, ncap * sizeof *nl);
        if (nl) {
            *list = nl;
            *cap = ncap;
        }
    }
    if (*n < max && *n < *cap)
        (*list)[(*n)++] = q;
    else
        kg__request_free(q);
}

/* Log the request (when logging) with the status it is answered. */
static void kg__log_request(kg__conn *c, const char *buf, size_t line_end, size_t hdr_end,
                            size_t body_len, double at, int status)
{
    kg_http_receiver_t *r = c->r;
    pthread_mutex_lock(&r->mu);
    bool on = r->nlog < r->log_max;
    pthread_mutex_unlock(&r->mu);
    kg_http_request *q = on ? kg__request_new(c, buf, line_end, hdr_end, body_len, at, status) : NULL;
    if (!q)
        return;
    pthread_mutex_lock(&r->mu);
    kg__list_keep(&r->log, &r->nlog, &r->log_cap, r->log_max, q);
    pthread_mutex_unlock(&r->mu);
}

/* SLOW: hold the answer for the stall time.  False when the client hung up
 * (or the receiver stops) meanwhile: there is nobody to answer. */
static bool kg__wait_late(kg__conn *c)
{
    pthread_mutex_lock(&c->r->mu);
    double deadline = kg__now() + c->r->stall;
    pthread_mutex_unlock(&c->r->mu);
    while (kg__now() < deadline && !atomic_load(&c->r->stopping)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, 20);
        if (n > 0) {
            char peek;
            if (recv(c->fd, &peek, 1, MSG_PEEK) <= 0)
                return false;
            kg__sleep_short();   /* a pipelined request: leave it for later */
        }
    }
    return !atomic_load(&c->r->stopping);
}

static bool kg__accept_request(kg__conn *c, const char *buf, size_t line_end, size_t hdr_end,
                               size_t body_len, double at, int status)
{
    kg_http_receiver_t *r = c->r;
    kg_http_request *q = kg__request_new(c, buf, line_end, hdr_end, body_len, at, status);
    if (!q)
        return false;
    pthread_mutex_lock(&r->mu);
    bool parse = r->parse;
    void (*cb)(void *, const kg_http_request *) = r->cb;
    void *ud = r->cb_ud;
    pthread_mutex_unlock(&r->mu);
    q->events = kg__count_events(q->body, body_len, parse);
    if (cb)
        cb(ud, q);
    pthread_mutex_lock(&r->mu);
    r->accepted++;
    r->events += q->events;
    kg__list_keep(&r->reqs, &r->nreqs, &r->cap, r->keep_max, q);
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* A kg_http_receiver_respond answer is due: its status (0: none) and
 * headers, copied into hdr. */
static int kg__next_respond(kg_http_receiver_t *r, char *hdr, size_t size)
{
    pthread_mutex_lock(&r->mu);
    int status = 0;
    if (r->respond_n > 0) {
        r->respond_n--;
        status = r->respond_status;
        snprintf(hdr, size, "%s", r->respond_headers);
    }
    pthread_mutex_unlock(&r->mu);
    return status;
}

/* The server side of the TLS handshake; false when it failed. */
static bool kg__tls_accept(kg__conn *c)
{
#ifdef KG_TEST_HAVE_OPENSSL
    kg_http_receiver_t *r = c->r;
    if (!r->tls)
        return true;
    /* A bounded wait per read, so a client that never finishes the
     * handshake (or a record) cannot hold the thread past stop(). */
    struct timeval tv = {0, 100000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct timeval stv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
    SSL *ssl = SSL_new(r->tls);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        return false;
    }
    c->ssl = ssl;
    for (;;) {
        int rc = SSL_accept(ssl);
        if (rc == 1)
            return true;
        int e = SSL_get_error(ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            !atomic_load(&r->stopping))
            continue;
        ERR_clear_error();
        pthread_mutex_lock(&r->mu);
        r->tls_failures++;
        pthread_mutex_unlock(&r->mu);
        return false;
    }
#else
    (void)c;
    return true;
#endif
}

static void kg__tls_close(kg__conn *c)
{
#ifdef KG_TEST_HAVE_OPENSSL
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    /* This (detached) thread's OpenSSL state, its error queue above all, is
     * otherwise freed by a thread-exit destructor that may run after stop()
     * has returned and the test has ended: LeakSanitizer then reports it. */
    OPENSSL_thread_stop();
#else
    (void)c;
#endif
}

static void *kg__conn_main(void *arg)
{
    kg__conn *c = arg;
    kg_http_receiver_t *r = c->r;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (!kg__tls_accept(c))
        goto done;
    for (;;) {
        char *hdr;
        while (!(hdr = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL))
            if (kg__read_more(c, &buf, &len, &cap) <= 0)
                goto done;
        buf[len] = '\0';
        size_t hdr_end = (size_t)(hdr - buf);
        char *eol = memmem(buf, hdr_end + 2, "\r\n", 2);
        size_t line_end = (size_t)(eol - buf);
        size_t body_len = 0;
        bool chunked = false;
        for (char *h = eol + 2; h < hdr; ) {
            char *e = memmem(h, (size_t)(hdr + 2 - h), "\r\n", 2);
            if (!e)
                break;
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                body_len = strtoul(h + 15, NULL, 10);
            else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0)
                chunked = true;
            h = e + 2;
        }
        if (chunked || body_len > KG__RECV_MAX_REQUEST) {
            static const char nope[] = "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            kg__send_all(c, nope, sizeof nope - 1);
            goto done;
        }
        size_t total = hdr_end + 4 + body_len;
        while (len < total)
            if (kg__read_more(c, &buf, &len, &cap) <= 0)
                goto done;
        double at = kg__now();
        char extra[512];
        int custom = kg__next_respond(r, extra, sizeof extra);
        if (custom) {
            char resp[768];
            int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d Custom\r\n%sContent-Length: 0\r\n\r\n",
                             custom, extra);
            kg__log_request(c, buf, line_end, hdr_end, body_len, at, custom);
            bool ok2xx = custom >= 200 && custom < 300;
            if (ok2xx)
                kg__accept_request(c, buf, line_end, hdr_end, body_len, at, custom);
            else {
                pthread_mutex_lock(&r->mu);
                r->rejected++;
                pthread_mutex_unlock(&r->mu);
            }
            if (!kg__send_all(c, resp, (size_t)n))
                goto done;
            memmove(buf, buf + total, len - total);
            len -= total;
            continue;
        }
        kg_http_receiver_mode m = kg__next_mode(r);
        if (m != KG_HTTP_RECEIVER_OK && m != KG_HTTP_RECEIVER_SLOW) {
            pthread_mutex_lock(&r->mu);
            r->rejected++;
            pthread_mutex_unlock(&r->mu);
        }
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 11\r\n\r\n{\"ok\":true}";
        static const char oom[] = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
        if (m == KG_HTTP_RECEIVER_OK || m == KG_HTTP_RECEIVER_SLOW) {
            kg__log_request(c, buf, line_end, hdr_end, body_len, at, 200);
            bool stored = kg__accept_request(c, buf, line_end, hdr_end, body_len, at, 200);
            if (m == KG_HTTP_RECEIVER_SLOW && stored && !kg__wait_late(c))
                goto done;
            if (!(stored ? kg__send_all(c, ok, sizeof ok - 1)
                         : kg__send_all(c, oom, sizeof oom - 1)))
                goto done;
        } else if (m == KG_HTTP_RECEIVER_FAIL) {
            static const char fail[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                       "Content-Type: application/json\r\nContent-Length: 18\r\n"
                                       "\r\n{\"error\":\"nope\"}\r\n";
            kg__log_request(c, buf, line_end, hdr_end, body_len, at, 500);
            if (!kg__send_all(c, fail, sizeof fail - 1))
                goto done;
        } else if (m == KG_HTTP_RECEIVER_STALL) {
            kg__log_request(c, buf, line_end, hdr_end, body_len, at, 0);
            kg__stall(c);
            goto done;
        } else {
            kg__log_request(c, buf, line_end, hdr_end, body_len, at, 0);
            goto done;
        }
        memmove(buf, buf + total, len - total);
        len -= total;
    }
done:
    kg__tls_close(c);
    close(c->fd);
    free(buf);
    pthread_mutex_lock(&r->mu);
    r->active--;
    pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);
    free(c);
    return NULL;
}

static void *kg__accept_main(void *arg)
{
    kg_http_receiver_t *r = arg;
    while (!atomic_load(&r->stopping)) {
        struct pollfd p[2] = {{.fd = r->listen_fd, .events = POLLIN},
                              {.fd = r->wake[0], .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & POLLIN))
            break;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        kg__conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->r = r;
        c->fd = fd;
        pthread_mutex_lock(&r->mu);
        c->number = ++r->connections;
        r->active++;
        pthread_mutex_unlock(&r->mu);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, kg__conn_main, c) != 0) {
            close(fd);
            free(c);
            pthread_mutex_lock(&r->mu);
            r->active--;
            pthread_mutex_unlock(&r->mu);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

#ifdef KG_TEST_HAVE_OPENSSL
/* A fresh self-signed certificate for localhost / 127.0.0.1 and its key, in
 * a server SSL_CTX; its PEM text in *pem (malloc'd).  NULL on failure. */
static SSL_CTX *kg__tls_ctx_new(char **pem)
{
    SSL_CTX *ctx = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    bool ok = key && x && bio;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
                                   -1, -1, 0);
        X509_set_issuer_name(x, name);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                                  "DNS:localhost,IP:127.0.0.1");
        ok = san && X509_add_ext(x, san, -1) == 1;
        X509_EXTENSION_free(san);
        ok = ok && X509_sign(x, key, EVP_sha256()) > 0 && PEM_write_bio_X509(bio, x) == 1;
    }
    if (ok) {
        char *data = NULL;
        long n = BIO_get_mem_data(bio, &data);
        *pem = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (*pem) {
            memcpy(*pem, data, (size_t)n);
            (*pem)[n] = '\0';
        }
        ok = *pem != NULL;
    }
    if (ok) {
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx || SSL_CTX_use_certificate(ctx, x) != 1 ||
            SSL_CTX_use_PrivateKey(ctx, key) != 1) {
            SSL_CTX_free(ctx);
            ctx = NULL;
        }
    }
    if (!ctx) {
        free(*pem);
        *pem = NULL;
    }
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ctx;
}
#endif

static void kg__tls_free(kg_http_receiver_t *r)
{
#ifdef KG_TEST_HAVE_OPENSSL
    SSL_CTX_free(r->tls);
#endif
    r->tls = NULL;
    free(r->cert_pem);
    r->cert_pem = NULL;
}

static kg_http_receiver_t *kg__start(bool tls)
{
    kg_http_receiver_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (tls) {
#ifdef KG_TEST_HAVE_OPENSSL
        r->tls = kg__tls_ctx_new(&r->cert_pem);
#endif
        if (!r->tls) {
            free(r);
            return NULL;
        }
    }
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r->wake[0] = r->wake[1] = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int one = 1;
    if (r->listen_fd < 0 ||
        setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(r->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(r->listen_fd, 128) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
        pipe2(r->wake, O_CLOEXEC) != 0) {
        if (r->listen_fd >= 0)
            close(r->listen_fd);
        kg__tls_free(r);
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    snprintf(r->url, sizeof r->url, "%s://127.0.0.1:%d/ingest", tls ? "https" : "http",
             r->port);
    atomic_init(&r->stopping, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->idle, NULL);
    r->stall = 30.0;
    r->keep_max = 100000;
    r->parse = true;
    if (pthread_create(&r->accept_thread, NULL, kg__accept_main, r) != 0) {
        close(r->listen_fd);
        close(r->wake[0]);
        close(r->wake[1]);
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->idle);
        kg__tls_free(r);
        free(r);
        return NULL;
    }
    return r;
}

kg_http_receiver_t *kg_http_receiver_start(void)
{
    return kg__start(false);
}

kg_http_receiver_t *kg_http_receiver_start_tls(void)
{
    return kg__start(true);
}

const char *kg_http_receiver_cert_pem(const kg_http_receiver_t *r)
{
    return r->cert_pem;
}

void kg_http_receiver_stop(kg_http_receiver_t *r)
{
    if (!r)
        return;
    atomic_store(&r->stopping, true);
    char b = 1;
    while (write(r->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(r->accept_thread, NULL);
    pthread_mutex_lock(&r->mu);
    while (r->active > 0)
        pthread_cond_wait(&r->idle, &r->mu);
    pthread_mutex_unlock(&r->mu);
    close(r->listen_fd);
    close(r->wake[0]);
    close(r->wake[1]);
    for (size_t i = 0; i < r->nreqs; i++)
        kg__request_free(r->reqs[i]);
    free(r->reqs);
    for (size_t i = 0; i < r->nlog; i++)
        kg__request_free(r->log[i]);
    free(r->log);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->idle);
    kg__tls_free(r);
    free(r);
}

int kg_http_receiver_port(const kg_http_receiver_t *r)
{
    return r->port;
}

const char *kg_http_receiver_url(const kg_http_receiver_t *r)
{
    return r->url;
}

void kg_http_receiver_set_mode(kg_http_receiver_t *r, kg_http_receiver_mode mode)
{
    pthread_mutex_lock(&r->mu);
    r->mode = mode;
    r->misbehave_n = 0;
    pthread_mutex_unlock(&r->mu);
}

void kg_http_receiver_misbehave(kg_http_receiver_t *r, kg_http_receiver_mode mode, unsigned n)
{
    pthread_mutex_lock(&r->mu);
    r->misbehave_mode = mode;
    r->misbehave_n = n;
    pthread_mutex_unlock(&r->mu);
}

void kg_http_receiver_respond(kg_http_receiver_t *r, int status, const char *headers, unsigned n)
{
    pthread_mutex_lock(&r->mu);
    r->respond_status = status;
    snprintf(r->respond_headers, sizeof r->respond_headers, "%s", headers ? headers : "");
    r->respond_n = n;
    pthread_mutex_unlock(&r->mu);
}

void kg_http_receiver_set_log(kg_http_receiver_t *r, size_t max)
{
    pthread_mutex_lock(&r->mu);
    r->log_max = max;
    pthread_mutex_unlock(&r->mu);
}

const kg_http_request *kg_http_receiver_log(kg_http_receiver_t *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    const kg_http_request *q = i < r->nlog ? r->log[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return q;
}

void kg_http_receiver_set_stall(kg_http_receiver_t *r, double seconds)
{
    pthread_mutex_lock(&r->mu);
    r->stall = seconds;
    pthread_mutex_unlock(&r->mu);
}

void kg_http_receiver_set_keep(kg_http_receiver_t *r, size_t n, bool parse)
{
    pthread_mutex_lock(&r->mu);
    r->keep_max = n;
    r->parse = parse;
    pthread_mutex_unlock(&r->mu);
}

void kg_http_receiver_set_callback(kg_http_receiver_t *r,
                                   void (*cb)(void *ud, const kg_http_request *req), void *ud)
{
    pthread_mutex_lock(&r->mu);
    r->cb = cb;
    r->cb_ud = ud;
    pthread_mutex_unlock(&r->mu);
}

#define KG__GETTER(fn, field)                 \
    size_t fn(kg_http_receiver_t *r)          \
    {                                         \
        pthread_mutex_lock(&r->mu);           \
        size_t v = r->field;                  \
        pthread_mutex_unlock(&r->mu);         \
        return v;                             \
    }
KG__GETTER(kg_http_receiver_accepted, accepted)
KG__GETTER(kg_http_receiver_events, events)
KG__GETTER(kg_http_receiver_rejected, rejected)
KG__GETTER(kg_http_receiver_connections, connections)
KG__GETTER(kg_http_receiver_kept, nreqs)
KG__GETTER(kg_http_receiver_tls_failures, tls_failures)
KG__GETTER(kg_http_receiver_logged, nlog)

const kg_http_request *kg_http_receiver_request(kg_http_receiver_t *r, size_t i)
{
    pthread_mutex_lock(&r->mu);
    const kg_http_request *q = i < r->nreqs ? r->reqs[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return q;
}

bool kg_http_request_header(const kg_http_request *req, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    for (const char *h = req->headers; h && *h; ) {
        const char *e = strstr(h, "\r\n");
        size_t l = e ? (size_t)(e - h) : strlen(h);
        if (l > n && h[n] == ':' && strncasecmp(h, name, n) == 0) {
            const char *v = h + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(buf, size, "%.*s", (int)(h + l - v), v);
            return true;
        }
        h = e ? e + 2 : h + l;
    }
    return false;
}

void kg_http_receiver_clear(kg_http_receiver_t *r)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nreqs; i++)
        kg__request_free(r->reqs[i]);
    r->nreqs = 0;
    for (size_t i = 0; i < r->nlog; i++)
        kg__request_free(r->log[i]);
    r->nlog = 0;
    r->accepted = r->events = r->rejected = 0;
    pthread_mutex_unlock(&r->mu);
}
