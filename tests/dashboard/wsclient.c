/* wsclient.c - see wsclient.h. */
#include "wsclient.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double kg__tnow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int kg__tconnect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static bool kg__tsend_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read more into the buffer, waiting at most until `deadline`. 1 read,
 * 0 timeout, -1 closed/error. */
static int kg__tfill(kg_tclient *c, double deadline)
{
    double left = deadline - kg__tnow();
    if (left < 0)
        left = 0;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int r = poll(&pfd, 1, (int)(left * 1000) + 1);
    if (r == 0)
        return 0;
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *b = realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
    if (n <= 0) {
        c->closed = true;
        return -1;
    }
    c->len += (size_t)n;
    return 1;
}

static void kg__tconsume(kg_tclient *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Parse status + headers; returns header block length or 0 if incomplete. */
static size_t kg__thead_end(const kg_tclient *c)
{
    for (size_t i = 3; i < c->len; i++)
        if (c->buf[i - 3] == '\r' && c->buf[i - 2] == '\n' && c->buf[i - 1] == '\r' &&
            c->buf[i] == '\n')
            return i + 1;
    return 0;
}

static bool kg__thdr(const char *hdrs, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = hdrs;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r");
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

bool kg_thttp_header(const kg_thttp_resp *r, const char *name, char *out, size_t outlen)
{
    return r->headers && kg__thdr(r->headers, name, out, outlen);
}

static char *kg__trequest(int port, const char *method, const char *path, const char *headers,
                          size_t body_len, bool ws)
{
    size_t n = strlen(path) + (headers ? strlen(headers) : 0) + 512;
    char *req = malloc(n);
    if (!req)
        return NULL;
    bool has_host = headers && strcasestr(headers, "host:") != NULL;
    char host[64] = "";
    if (!has_host)
        snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", port);
    if (ws)
        snprintf(req, n,
                 "GET %s HTTP/1.1\r\n%sUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "%s\r\n",
                 path, host, headers ? headers : "");
    else
        snprintf(req, n, "%s %s HTTP/1.1\r\n%sContent-Length: %zu\r\n%s\r\n", method, path, host,
                 body_len, headers ? headers : "");
    return req;
}

int kg_thttp(int port, const char *method, const char *path, const char *headers,
             const char *body, size_t body_len, kg_thttp_resp *r)
{
    memset(r, 0, sizeof *r);
    r->status = -1;
    kg_tclient c = {.fd = kg__tconnect(port)};
    if (c.fd < 0)
        return -1;
    char *req = kg__trequest(port, method, path, headers, body_len, false);
    bool ok = req && kg__tsend_all(c.fd, req, strlen(req));
    free(req);
    /* The server may answer (413) before reading the body and close: a
     * failed send of the body is then fine. */
    if (ok && body_len)
        kg__tsend_all(c.fd, body, body_len);
    double deadline = kg__tnow() + 10;
    size_t he = 0;
    while (ok && !(he = kg__thead_end(&c)) && kg__tfill(&c, deadline) > 0) {
    }
    if (he) {
        r->headers = strndup(c.buf, he);
        sscanf(c.buf, "HTTP/1.%*d %d", &r->status);
        char cl[32];
        size_t want = 0;
        bool has_cl = kg__thdr(r->headers, "content-length", cl, sizeof cl);
        if (has_cl)
            want = strtoull(cl, NULL, 10);
        kg__tconsume(&c, he);
        if (strcmp(method, "HEAD") == 0)
            want = 0;
        while (has_cl && c.len < want && kg__tfill(&c, deadline) > 0) {
        }
        if (!has_cl)
            while (kg__tfill(&c, deadline) > 0) {
            }
        size_t n = has_cl && c.len > want ? want : c.len;
        r->body = malloc(n + 1);
        if (r->body) {
            memcpy(r->body, c.buf, n);
            r->body[n] = '\0';
            r->body_len = n;
        }
    }
    close(c.fd);
    free(c.buf);
    return r->status;
}

long long kg_thttp_json_int(int port, const char *path, const char *key, const char *subkey)
{
    kg_thttp_resp r;
    long long v = -1;
    if (kg_thttp(port, "GET", path, NULL, NULL, 0, &r) == 200) {
        json_t *root = json_loads(r.body, 0, NULL);
        json_t *x = json_object_get(root, key);
        if (subkey)
            x = json_object_get(x, subkey);
        if (json_is_integer(x))
            v = (long long)json_integer_value(x);
        json_decref(root);
    }
    kg_thttp_resp_free(&r);
    return v;
}

void kg_thttp_resp_free(kg_thttp_resp *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int kg_tws_connect(kg_tclient *c, int port, const char *path, const char *headers)
{
    memset(c, 0, sizeof *c);
    c->fd = kg__tconnect(port);
    if (c->fd < 0)
        return -1;
    char *req = kg__trequest(port, "GET", path, headers, 0, true);
    bool ok = req && kg__tsend_all(c->fd, req, strlen(req));
    free(req);
    double deadline = kg__tnow() + 10;
    size_t he = 0;
    while (ok && !(he = kg__thead_end(c)) && kg__tfill(c, deadline) > 0) {
    }
    int status = -1;
    if (he) {
        sscanf(c->buf, "HTTP/1.%*d %d", &status);
        kg__tconsume(c, he);
    }
    if (status != 101) {
        kg_tws_close(c);
        c->fd = -1;
    }
    return status;
}

static int kg__tsend_frame(kg_tclient *c, int opcode, const char *p, size_t n)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        hdr[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(hdr + h, mask, 4);
    h += 4;
    char *m = malloc(h + n);
    if (!m)
        return -1;
    memcpy(m, hdr, h);
    for (size_t i = 0; i < n; i++)
        m[h + i] = (char)(p[i] ^ mask[i & 3]);
    bool ok = kg__tsend_all(c->fd, m, h + n);
    free(m);
    return ok ? 0 : -1;
}

int kg_tws_send(kg_tclient *c, const char *text, size_t len)
{
    return kg__tsend_frame(c, 1, text, len);
}

int kg_tws_recv(kg_tclient *c, double timeout, char **msg, size_t *len)
{
    double deadline = kg__tnow() + timeout;
    char *acc = NULL;
    size_t acc_len = 0;
    for (;;) {
        /* A whole frame in the buffer? */
        if (c->len >= 2) {
            uint8_t b0 = (uint8_t)c->buf[0], b1 = (uint8_t)c->buf[1];
            size_t h = 2;
            uint64_t n = b1 & 0x7f;
            if (n == 126 && c->len >= 4) {
                n = ((uint64_t)(uint8_t)c->buf[2] << 8) | (uint8_t)c->buf[3];
                h = 4;
            } else if (n == 127 && c->len >= 10) {
                n = 0;
                for (int i = 0; i < 8; i++)
                    n = (n << 8) | (uint8_t)c->buf[2 + i];
                h = 10;
            } else if (n >= 126) {
                goto more;
            }
            if (b1 & 0x80)
                h += 4;   /* servers do not mask, but be lenient */
            if (c->len >= h + n) {
                int op = b0 & 0x0f;
                if (op == 8) {
                    free(acc);
                    c->closed = true;
                    return -2;
                }
                if (op == 9)
                    kg__tsend_frame(c, 10, c->buf + h, (size_t)n);
                if (op == 1 || op == 0) {
                    char *na = realloc(acc, acc_len + n + 1);
                    if (!na) {
                        free(acc);
                        return -2;
                    }
                    acc = na;
                    memcpy(acc + acc_len, c->buf + h, (size_t)n);
                    acc_len += (size_t)n;
                    acc[acc_len] = '\0';
                }
                kg__tconsume(c, h + (size_t)n);
                if ((op == 1 || op == 0) && (b0 & 0x80)) {
                    *msg = acc;
                    if (len)
                        *len = acc_len;
                    return 0;
                }
                continue;
            }
        }
    more:
        if (c->closed) {
            free(acc);
            return -2;
        }
        int r = kg__tfill(c, deadline);
        if (r < 0) {
            free(acc);
            return -2;
        }
        if (r == 0 && kg__tnow() >= deadline) {
            free(acc);
            return -1;
        }
    }
}

char *kg_tws_wait_for(kg_tclient *c, const char *needle, double timeout)
{
    double deadline = kg__tnow() + timeout;
    while (kg__tnow() < deadline) {
        char *m = NULL;
        int r = kg_tws_recv(c, deadline - kg__tnow(), &m, NULL);
        if (r != 0)
            return NULL;
        if (strstr(m, needle))
            return m;
        free(m);
    }
    return NULL;
}

void kg_tws_close(kg_tclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

char *kg_tevent(const char *event_id, const char *name, const char *type, const char *node,
                const char *workflow, unsigned long long seq, const char *extra_data)
{
    size_t n = 1024 + strlen(event_id) + strlen(node) + strlen(workflow) +
               (extra_data ? strlen(extra_data) : 0);
    char *s = malloc(n);
    if (!s)
        return NULL;
    snprintf(s, n,
             "{\"event_id\":\"%s\",\"timestamp\":\"2026-11-27T17:36:13.%06lluZ\",\"node_id\":\"%s\","
             "\"node_type\":\"TestNode\",\"event_type\":\"%s\",\"event_name\":\"%s\","
             "\"data\":{\"state\":\"x\"%s%s},\"correlation_id\":\"c-%s\",\"workflow_id\":\"%s\","
             "\"seq\":%llu,\"source\":{\"host\":\"test\",\"pid\":1}}",
             event_id, seq % 1000000, node, type, name, extra_data ? "," : "",
             extra_data ? extra_data : "", node, workflow, seq);
    return s;
}

int kg_traw_connect(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (from) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool kg_traw_send(int fd, const void *p, size_t n)
{
    return kg__tsend_all(fd, p, n);
}

char *kg_traw_read(int fd, double timeout, bool *closed, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    double deadline = kg__tnow() + timeout;
    *closed = false;
    while (buf) {
        double left = deadline - kg__tnow();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            continue;
        if (n + 2048 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)r;
    }
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int kg_traw_status(const char *resp)
{
    int st = -1;
    if (!resp || sscanf(resp, "HTTP/1.%*d %d", &st) != 1)
        return -1;
    return st;
}

int kg_traw_ws(int port, const char *from, const char *headers)
{
    int fd = kg_traw_connect(port, from);
    if (fd < 0)
        return -1;
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     port, headers ? headers : "");
    if (n <= 0 || (size_t)n >= sizeof req || !kg__tsend_all(fd, req, (size_t)n)) {
        close(fd);
        return -1;
    }
    /* Byte by byte up to the blank line, so nothing after it is consumed. */
    char head[2048];
    size_t got = 0;
    double deadline = kg__tnow() + 5;
    while (got + 1 < sizeof head && kg__tnow() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        if (recv(fd, head + got, 1, 0) != 1)
            break;
        got++;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[got] = '\0';
    int st = kg_traw_status(head);
    if (st != 101) {
        close(fd);
        return st > 0 ? -st : -1;
    }
    return fd;
}
