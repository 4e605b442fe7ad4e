/* http_receiver.c - a loopback HTTP/1.1 webhook sink for tests (see
 * http_receiver.h).
 *
 * Deliberately simple: requests need a Content-Length (what libcurl sends
 * for a POST body), chunked bodies get 411.  Connection threads poll with a
 * short timeout so stop() is noticed promptly without signalling them. */
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
    size_t accepted, events, rejected;
};

typedef struct kg__conn {
    kg_http_receiver_t *r;
    int fd;
    unsigned number;
} kg__conn;

static double kg__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kg__request_free(kg_http_request *q)
{
    if (q) {
        free(q->headers);
        free(q->body);
        free(q);
    }
}

static bool kg__send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
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
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, 50);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        ssize_t got = recv(c->fd, *buf + *len, *cap - *len - 1, 0);
        if (got < 0 && errno == EINTR)
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

static bool kg__accept_request(kg__conn *c, const char *buf, size_t line_end, size_t hdr_end,
                               size_t body_len)
{
    kg_http_receiver_t *r = c->r;
    kg_http_request *q = calloc(1, sizeof *q);
    if (!q)
        return false;
    sscanf(buf, "%15s %255s", q->method, q->path);
    size_t hlen = hdr_end + 2 - (line_end + 2);
    q->headers = malloc(hlen + 1);
    q->body = malloc(body_len + 1);
    if (!q->headers || !q->body) {
        kg__request_free(q);
        return false;
    }
    memcpy(q->headers, buf + line_end + 2, hlen);
    q->headers[hlen] = '\0';
    memcpy(q->body, buf + hdr_end + 4, body_len);
    q->body[body_len] = '\0';
    q->body_len = body_len;
    q->connection = c->number;
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
    if (r->nreqs < r->keep_max) {
        if (r->nreqs == r->cap) {
            size_t ncap = r->cap ? r->cap * 2 : 64;
            kg_http_request **n = realloc(r->reqs, ncap * sizeof *n);
            if (n) {
                r->reqs = n;
                r->cap = ncap;
            }
        }
        if (r->nreqs < r->cap) {
            r->reqs[r->nreqs++] = q;
            q = NULL;
        }
    }
    pthread_mutex_unlock(&r->mu);
    kg__request_free(q);
    return true;
}

static void *kg__conn_main(void *arg)
{
    kg__conn *c = arg;
    kg_http_receiver_t *r = c->r;
    char *buf = NULL;
    size_t len = 0, cap = 0;
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
            kg__send_all(c->fd, nope, sizeof nope - 1);
            goto done;
        }
        size_t total = hdr_end + 4 + body_len;
        while (len < total)
            if (kg__read_more(c, &buf, &len, &cap) <= 0)
                goto done;
        kg_http_receiver_mode m = kg__next_mode(r);
        if (m != KG_HTTP_RECEIVER_OK) {
            pthread_mutex_lock(&r->mu);
            r->rejected++;
            pthread_mutex_unlock(&r->mu);
        }
        if (m == KG_HTTP_RECEIVER_OK) {
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 11\r\n\r\n{\"ok\":true}";
            static const char oom[] = "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
            bool stored = kg__accept_request(c, buf, line_end, hdr_end, body_len);
            if (!(stored ? kg__send_all(c->fd, ok, sizeof ok - 1)
                         : kg__send_all(c->fd, oom, sizeof oom - 1)))
                goto done;
        } else if (m == KG_HTTP_RECEIVER_FAIL) {
            static const char fail[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                       "Content-Type: application/json\r\nContent-Length: 18\r\n"
                                       "\r\n{\"error\":\"nope\"}\r\n";
            if (!kg__send_all(c->fd, fail, sizeof fail - 1))
                goto done;
        } else if (m == KG_HTTP_RECEIVER_STALL) {
            kg__stall(c);
            goto done;
        } else {
            goto done;
        }
        memmove(buf, buf + total, len - total);
        len -= total;
    }
done:
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

kg_http_receiver_t *kg_http_receiver_start(void)
{
    kg_http_receiver_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
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
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/ingest", r->port);
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
        free(r);
        return NULL;
    }
    return r;
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
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->idle);
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
    r->accepted = r->events = r->rejected = 0;
    pthread_mutex_unlock(&r->mu);
}
