/* fake_peer.c - a misbehaving "Redis" on loopback for tests (see fake_peer.h).
 *
 * Connection threads poll with a short timeout so that stop() is seen
 * promptly; writes use MSG_NOSIGNAL and a poll for writability, so a client
 * that stops reading holds a streaming thread only until stop(). */
#include "fake_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#define KG__FAKE_STREAM_MAX (256ull << 20)   /* a reader without a bound fails, not the machine */

struct kg_fake_peer {
    int listen_fd;
    int wake[2];
    int port;
    kg_fake_script first, rest;
    char *message;
    pthread_t accept_thread;
    atomic_bool stopping;
    atomic_uint connections, closed, active;
    atomic_uint_fast64_t bytes_sent;
};

typedef struct kg__fconn {
    kg_fake_peer *p;
    int fd;
    kg_fake_script script;
    char in[4096];
    size_t in_len;
} kg__fconn;

/* Wait until the fd is ready for `events`; false on stop or error. */
static bool kg__fwait(kg__fconn *c, short events)
{
    while (!atomic_load(&c->p->stopping)) {
        struct pollfd pf = {.fd = c->fd, .events = events};
        int n = poll(&pf, 1, 50);
        if (n < 0 && errno != EINTR)
            return false;
        if (n > 0)
            return !(pf.revents & (POLLERR | POLLNVAL)) || (pf.revents & events);
    }
    return false;
}

static bool kg__fsend(kg__fconn *c, const char *b, size_t n)
{
    while (n > 0) {
        if (!kg__fwait(c, POLLOUT))
            return false;
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w <= 0)
            return false;
        atomic_fetch_add(&c->p->bytes_sent, (uint64_t)w);
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* One whole RESP command (an array of bulk strings) at the start of c->in:
 * its argument count, with copies of the arguments in `store` (each
 * NUL-terminated) pointed to by args; -1 while incomplete; 0 for bytes that
 * are not RESP (an inline command, an HTTP request). */
static int kg__fparse(const kg__fconn *c, char **args, int max, char *store, size_t cap)
{
    const char *p = c->in, *end = c->in + c->in_len;
    if (p == end)
        return -1;
    if (*p != '*')
        return 0;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return -1;
    int n = atoi(p + 1), got = 0;
    size_t used = 0;
    for (p = nl + 1; got < n; got++) {
        if (p >= end)
            return -1;
        if (*p != '$' || got >= max)
            return 0;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return -1;
        size_t len = strtoul(p + 1, NULL, 10);
        if ((size_t)(end - (nl + 1)) < len + 2)
            return -1;
        if (used + len + 1 > cap)
            return 0;
        memcpy(store + used, nl + 1, len);
        store[used + len] = '\0';
        args[got] = store + used;
        used += len + 1;
        p = nl + 1 + len + 2;
    }
    return n;
}

/* Read until one whole command has arrived (see kg__fparse); -1 when the
 * client hung up first. */
static int kg__fcommand(kg__fconn *c, char **args, int max, char *store, size_t cap)
{
    for (;;) {
        int argc = kg__fparse(c, args, max, store, cap);
        if (argc >= 0)
            return argc;
        if (c->in_len >= sizeof c->in || !kg__fwait(c, POLLIN))
            return -1;
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (r <= 0)
            return -1;
        c->in_len += (size_t)r;
    }
}

/* Wait for the client to hang up (reading and discarding what it sends). */
static void kg__fdrain(kg__fconn *c)
{
    char sink[4096];
    while (kg__fwait(c, POLLIN))
        if (recv(c->fd, sink, sizeof sink, 0) <= 0)
            return;
}

static void kg__fstream(kg__fconn *c)
{
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    for (uint64_t sent = 0; sent < KG__FAKE_STREAM_MAX; sent += sizeof chunk)
        if (!kg__fsend(c, chunk, sizeof chunk))
            return;
}

static bool kg__fconfirm(kg__fconn *c, const char *channel)
{
    char buf[512];
    int n = snprintf(buf, sizeof buf, "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:1\r\n",
                     strlen(channel), channel);
    return kg__fsend(c, buf, (size_t)n);
}

static void kg__fplay(kg__fconn *c)
{
    static const char garbage[] = "!garbage from a peer that is not Redis\r\n";
    static const char http[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
                               "Content-Length: 11\r\nConnection: close\r\n\r\nBad Request";
    char *args[8], store[4096];
    int argc = kg__fcommand(c, args, 8, store, sizeof store);
    if (argc < 0)
        return;
    bool sub = argc >= 2 && (strcasecmp(args[0], "SUBSCRIBE") == 0);
    const char *channel = sub ? args[1] : "none";
    switch (c->script) {
    case KG_FAKE_GARBAGE:
        if (kg__fsend(c, garbage, sizeof garbage - 1))
            kg__fdrain(c);
        return;
    case KG_FAKE_HTTP:
        kg__fsend(c, http, sizeof http - 1);
        return;
    case KG_FAKE_HUGE_BULK:
        if (kg__fsend(c, "$999999999999\r\n", 15))
            kg__fstream(c);
        return;
    case KG_FAKE_SUB_HUGE_MESSAGE: {
        char head[512];
        int n = snprintf(head, sizeof head, "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$999999999999\r\n",
                         strlen(channel), channel);
        if (kg__fconfirm(c, channel) && kg__fsend(c, head, (size_t)n))
            kg__fstream(c);
        return;
    }
    case KG_FAKE_SUB_MESSAGE_CLOSE: {
        const char *m = c->p->message ? c->p->message : "{}";
        size_t need = strlen(m) + strlen(channel) + 64;
        char *buf = malloc(need);
        if (!buf)
            return;
        int n = snprintf(buf, need, "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n",
                         strlen(channel), channel, strlen(m), m);
        if (kg__fconfirm(c, channel))
            kg__fsend(c, buf, (size_t)n);
        free(buf);
        return;
    }
    case KG_FAKE_SUB_THEN_GARBAGE:
        if (kg__fconfirm(c, channel) && kg__fsend(c, garbage, sizeof garbage - 1))
            kg__fdrain(c);
        return;
    }
}

static void *kg__fconn_main(void *arg)
{
    kg__fconn *c = arg;
    kg__fplay(c);
    close(c->fd);
    atomic_fetch_add(&c->p->closed, 1);
    atomic_fetch_sub(&c->p->active, 1);
    free(c);
    return NULL;
}

static void *kg__faccept_main(void *arg)
{
    kg_fake_peer *p = arg;
    while (!atomic_load(&p->stopping)) {
        struct pollfd pf[2] = {{.fd = p->listen_fd, .events = POLLIN},
                               {.fd = p->wake[0], .events = POLLIN}};
        int n = poll(pf, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (pf[1].revents & POLLIN))
            break;
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        kg__fconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        unsigned number = atomic_fetch_add(&p->connections, 1) + 1;
        c->p = p;
        c->fd = fd;
        c->script = number == 1 ? p->first : p->rest;
        atomic_fetch_add(&p->active, 1);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, kg__fconn_main, c) != 0) {
            close(fd);
            free(c);
            atomic_fetch_sub(&p->active, 1);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

kg_fake_peer *kg_fake_peer_start(kg_fake_script first, kg_fake_script rest, const char *message)
{
    kg_fake_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->first = first;
    p->rest = rest;
    p->message = message ? strdup(message) : NULL;
    p->wake[0] = p->wake[1] = -1;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->listen_fd, 128) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &alen) != 0 ||
        pipe2(p->wake, O_CLOEXEC) != 0 ||
        (message && !p->message)) {
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        free(p->message);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    atomic_init(&p->stopping, false);
    if (pthread_create(&p->accept_thread, NULL, kg__faccept_main, p) != 0) {
        close(p->listen_fd);
        close(p->wake[0]);
        close(p->wake[1]);
        free(p->message);
        free(p);
        return NULL;
    }
    return p;
}

void kg_fake_peer_stop(kg_fake_peer *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, true);
    char b = 1;
    while (write(p->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(p->accept_thread, NULL);
    /* Connection threads notice `stopping` within one poll interval. */
    while (atomic_load(&p->active) > 0) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    close(p->listen_fd);
    close(p->wake[0]);
    close(p->wake[1]);
    free(p->message);
    free(p);
}

int kg_fake_peer_port(const kg_fake_peer *p)
{
    return p->port;
}

unsigned kg_fake_peer_connections(kg_fake_peer *p)
{
    return atomic_load(&p->connections);
}

uint64_t kg_fake_peer_bytes_sent(kg_fake_peer *p)
{
    return atomic_load(&p->bytes_sent);
}

unsigned kg_fake_peer_closed(kg_fake_peer *p)
{
    return atomic_load(&p->closed);
}
