/* dashboard/conns.c - the listening socket and the accounting of every connection.
 *
 * The dashboard accepts its own connections and hands each to libwebsockets
 * (server.h says why).  That is where the limits live:
 *
 *  - At most max_connections open at once.  When full, the connection that
 *    made progress longest ago is closed to make room: an idle keep-alive, a
 *    slowloris still sending its headers, a body trickling in (a request's
 *    start, not each byte, counts as progress), a response nobody reads.
 *    WebSocket clients are not evicted this way (their own limits apply);
 *    with nothing to evict, the newcomer gets a short 503.
 *  - At the process's file-descriptor limit (accept fails with EMFILE), a
 *    connection is evicted the same way (if it made no progress for
 *    250 ms), or, with nothing to evict, one descriptor kept in reserve is
 *    closed to accept the waiting connection, answer it 503 and close it
 *    (then reopened): the listening socket never stays readable with
 *    nothing done about it, so the service thread cannot spin.
 *  - Errors and evictions are logged once per 10 s with counts.
 *  - A request body must arrive within body_timeout, and after its first
 *    5 s at body_min_rate at least; a response nobody reads for
 *    client_timeout is dropped.
 *  - Response bytes waiting on slow readers are counted (hub.pending).
 *  - Freed memory is handed back to the system (malloc_trim) after a burst
 *    of connections went away: glibc keeps what the service thread freed in
 *    its arena, and a wave of 1,500 connections otherwise leaves RSS where
 *    its peak was (20.5 MB instead of 11.4 MB, RELIABILITY.md).
 *
 * Service thread only. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "server.h"
#include "util/clock.h"

#define KG__ACCEPT_BATCH 64          /* accepts per wake-up, so others get served */
#define KG__CLOSING_SLACK 8          /* descriptors over the limit while evictions close */
/* Out of descriptors, a connection that made progress this recently is not
 * evicted: with a handful of descriptors, evicting newcomers for newcomers
 * would serve no one (each closed before its request arrived). */
#define KG__EVICT_MIN_AGE 0.25
#define KG__LOG_EVERY 10.0           /* seconds between summary lines */
#define KG__SWEEP_US 250000          /* housekeeping period */
#define KG__BODY_GRACE 5.0           /* seconds before body_min_rate applies */
#define KG__CONN_COST (32u << 10)    /* about what a closed connection gave back */
#define KG__TRIM_AFTER (8u << 20)    /* malloc_trim once this much went away */

kg__conn *kg__conn_of(struct lws *wsi)
{
    return wsi ? lws_get_opaque_user_data(wsi) : NULL;
}

/* ---- the listening socket ------------------------------------------------------------ */

/* max_connections, within what the file-descriptor limit allows: a margin
 * is left for the listening socket, the reserve, Redis, the log and
 * whatever else the (embedding) process opens. */
static void kg__limits(kg_dashboard_t *d)
{
    d->max_conns = d->opt.max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t lim = (size_t)rl.rlim_cur;
        size_t margin = 32 + lim / 16;
        size_t room = lim > margin + 16 ? lim - margin : 16;
        if (d->max_conns > room) {
            kg__server_log(d, KG_DASH_LOG_INFO,
                    "max_connections %zu lowered to %zu: the file-descriptor limit is %zu",
                    d->max_conns, room, lim);
            d->max_conns = room;
        }
    }
    d->max_clients = d->opt.max_clients;
    /* Keep room for HTTP (/healthz) next to the WebSocket clients. */
    size_t ws_room = d->max_conns > 32 ? d->max_conns - 16 : d->max_conns / 2;
    if (d->max_clients > ws_room) {
        kg__server_log(d, KG_DASH_LOG_WARN, "max_clients %u lowered to %zu (max_connections %zu)",
                d->max_clients, ws_room, d->max_conns);
        d->max_clients = (unsigned)ws_room;
    }
}

int kg__listen_open(kg_dashboard_t *d)
{
    /* A name or an IPv4 address binds IPv4 ("localhost" would resolve to
     * ::1 first); an address with ':' is IPv6. */
    struct addrinfo hints = {.ai_family = strchr(d->opt.bind, ':') ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", d->opt.port);
    if (getaddrinfo(d->opt.bind, ps, &hints, &ai) != 0 || !ai)
        return EADDRNOTAVAIL;
    int rc = 0, fd = -1, one = 1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = errno;
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 511) == 0) {
            rc = 0;
            break;
        }
        rc = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return rc ? rc : EADDRNOTAVAIL;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        d->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    d->listen_fd = fd;
    d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    d->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (d->reserve_fd < 0 || d->devnull_fd < 0)
        return errno ? errno : EMFILE;
    kg__limits(d);
    return 0;
}

int kg__listen_start(kg_dashboard_t *d)
{
    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof ad);
    ad.vh = d->vh;
    ad.type = LWS_ADOPT_RAW_FILE_DESC;
    ad.fd.filefd = d->listen_fd;
    ad.vh_prot_name = d->protocols[KG__PROTO_LISTEN].name;
    d->listen_wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    return d->listen_wsi ? 0 : -1;
}

void kg__listen_close(kg_dashboard_t *d)
{
    /* Once adopted, lws closes the listening socket with its context. */
    if (d->listen_fd >= 0 && !d->listen_wsi)
        close(d->listen_fd);
    if (d->reserve_fd >= 0)
        close(d->reserve_fd);
    if (d->devnull_fd >= 0)
        close(d->devnull_fd);
    d->listen_fd = d->reserve_fd = d->devnull_fd = -1;
    for (size_t i = 0; i < d->peers.nb; i++)
        for (kg_map_entry *e = d->peers.b[i]; e; e = e->next)
            free(e->val);
    kg_map_free(&d->peers);
}

/* Stop polling the listening socket until the next sweep (a failure that
 * retrying at once would only repeat). */
static void kg__listen_pause(kg_dashboard_t *d)
{
    if (!d->listen_paused && d->listen_wsi) {
        lws_rx_flow_control(d->listen_wsi, 0);
        d->listen_paused = true;
    }
}

/* ---- connections ------------------------------------------------------------------- */

static kg__peer *kg__peer_get(kg_dashboard_t *d, const char *addr)
{
    kg__peer *p = kg_map_get(&d->peers, addr);
    if (!p && (p = calloc(1, sizeof *p)) != NULL && kg_map_put(&d->peers, addr, p) != 0) {
        free(p);
        p = NULL;
    }
    return p;
}

static void kg__peer_put(kg_dashboard_t *d, kg__conn *c)
{
    kg__peer *p = c->peer;
    if (!p)
        return;
    p->conns--;
    if (p->conns == 0 && p->ws == 0)
        free(kg_map_del(&d->peers, c->addr));
    c->peer = NULL;
}

void kg__conn_free(kg_dashboard_t *d, kg__conn *c)
{
    if (c->ws)
        d->conn_events.ws_closed(d, c);
    kg__conn_pending(d, c, 0);
    kg__peer_put(d, c);
    if (c->closing)
        d->nclosing--;
    d->nconns--;
    atomic_store(&d->conns_pub, (unsigned)d->nconns);
    kg_list_remove(&c->link);
    d->trim_freed += KG__CONN_COST;
    free(c);
}

void kg__conn_pending(kg_dashboard_t *d, kg__conn *c, size_t n)
{
    if (n < c->pending)
        d->trim_freed += c->pending - n;
    d->hub.pending = d->hub.pending - c->pending + n;
    c->pending = n;
}

void kg__conn_kill(kg_dashboard_t *d, kg__conn *c)
{
    if (c->closing || !c->wsi)
        return;
    c->closing = true;
    d->nclosing++;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void kg__conn_destroyed(kg_dashboard_t *d, struct lws *wsi)
{
    kg__conn *c = kg__conn_of(wsi);
    if (!c || c->wsi != wsi) {
        if (c && c->adopting)
            c->gone = true;   /* kg__conn_adopt frees it */
        return;
    }
    kg__conn_free(d, c);
}

/* The HTTP connection that made progress longest ago (not within the last
 * `min_age` s), closed to make room. */
static bool kg__evict_one(kg_dashboard_t *d, double min_age)
{
    kg__conn *victim = NULL;
    double recent = kg_clock_mono() - min_age;
    for (kg_link *l = d->conns.next; l != &d->conns; l = l->next) {
        kg__conn *c = KG_CONTAINER_OF(l, kg__conn, link);
        if (c->kind != KG__CONN_HTTP || c->closing || c->adopting || !c->wsi ||
            c->progress > recent)
            continue;
        if (!victim || c->progress < victim->progress)
            victim = c;
    }
    if (!victim)
        return false;
    kg__conn_kill(d, victim);
    d->log_evicted++;
    atomic_fetch_add(&d->stat_evicted, 1);
    return true;
}

/* A short HTTP/1.1 503 on a socket lws never saw, then close.  What the
 * client sent is read first (one non-blocking read) so that the close is a
 * FIN, not a reset that could destroy the answer in flight. */
static void kg__refuse_fd(int fd, const char *why)
{
    char buf[4096];
    (void)!recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    char body[160];
    int bn = snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     bn, body);
    (void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void kg__addr_text(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
    out[0] = '\0';
    if (sa->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outlen);
    else if (sa->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)outlen);
    if (!out[0])
        snprintf(out, outlen, "unknown");
}

static void kg__conn_adopt(kg_dashboard_t *d, int fd, const struct sockaddr_storage *sa)
{
    kg__conn *c = calloc(1, sizeof *c);
    if (!c) {
        kg__refuse_fd(fd, "out of memory");
        return;
    }
    c->fd = fd;
    c->kind = KG__CONN_HTTP;
    c->progress = kg_clock_mono();
    kg__addr_text(sa, c->addr, sizeof c->addr);
    c->peer = kg__peer_get(d, c->addr);
    if (c->peer)
        c->peer->conns++;
    kg_list_push_back(&d->conns, &c->link);
    d->nconns++;
    atomic_store(&d->conns_pub, (unsigned)d->nconns);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    lws_adopt_desc_t ad;
    memset(&ad, 0, sizeof ad);
    ad.vh = d->vh;
    ad.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP;
    ad.fd.sockfd = fd;
    ad.opaque = c;
    /* If lws gives up half way it may or may not destroy the wsi (and call
     * kg__conn_destroyed) before returning NULL; `adopting` keeps the
     * connection alive until we know. */
    c->adopting = true;
    struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&ad);
    c->adopting = false;
    if (!wsi || c->gone) {
        /* lws has closed the socket. */
        kg__conn_free(d, c);
        return;
    }
    c->wsi = wsi;
}

/* accept() failed with EMFILE/ENFILE: make room, or shed the waiting one. */
static void kg__accept_exhausted(kg_dashboard_t *d)
{
    d->log_emfile++;
    /* Closes in flight free descriptors at the next service round; wait for
     * them a few rounds, not forever. */
    if (d->nclosing > 0 && d->emfile_rounds < 3) {
        d->emfile_rounds++;
        return;
    }
    d->emfile_rounds = 0;
    if (kg__evict_one(d, KG__EVICT_MIN_AGE)) {
        d->emfile_rounds = 1;
        return;
    }
    if (d->reserve_fd >= 0) {
        close(d->reserve_fd);
        d->reserve_fd = -1;
    }
    int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) {
        kg__refuse_fd(fd, "out of file descriptors");
        d->log_shed++;
        atomic_fetch_add(&d->stat_shed, 1);
    }
    d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if ((fd < 0 && err != EAGAIN && err != EWOULDBLOCK) || d->reserve_fd < 0)
        kg__listen_pause(d);
}

void kg__listen_ready(kg_dashboard_t *d)
{
    for (int i = 0; i < KG__ACCEPT_BATCH; i++) {
        /* Evicted connections close at the start of the next round: until
         * then, do not hold many more descriptors than max_connections. */
        if (d->nconns >= d->max_conns + KG__CLOSING_SLACK)
            return;
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(d->listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EMFILE || errno == ENFILE) {
                kg__accept_exhausted(d);
                return;
            }
            d->log_errors++;
            d->log_errno = errno;
            kg__listen_pause(d);
            return;
        }
        d->emfile_rounds = 0;
        if (d->nconns - d->nclosing >= d->max_conns && !kg__evict_one(d, 0)) {
            kg__refuse_fd(fd, "too many connections");
            d->log_refused++;
            atomic_fetch_add(&d->stat_shed, 1);
            continue;
        }
        kg__conn_adopt(d, fd, &sa);
    }
}

/* ---- housekeeping ---------------------------------------------------------------------- */

static void kg__summary(kg_dashboard_t *d, double now)
{
    if (!(d->log_emfile || d->log_shed || d->log_evicted || d->log_refused || d->log_errors) ||
        now - d->log_at < KG__LOG_EVERY)
        return;
    char err[96] = "";
    if (d->log_errors)
        snprintf(err, sizeof err, ", %llu accept errors (last: %s)",
                 (unsigned long long)d->log_errors, strerror(d->log_errno));
    kg__server_log(d, KG_DASH_LOG_WARN,
            "connections (%zu open, limit %zu) in the last %.0f s: %llu accepts failed for want "
            "of file descriptors, %llu connections shed with 503, %llu idle or slow evicted, "
            "%llu refused at the limit%s",
            d->nconns, d->max_conns, d->log_at > 0 ? now - d->log_at : KG__LOG_EVERY,
            (unsigned long long)d->log_emfile, (unsigned long long)d->log_shed,
            (unsigned long long)d->log_evicted, (unsigned long long)d->log_refused, err);
    d->log_emfile = d->log_shed = d->log_evicted = d->log_refused = d->log_errors = 0;
    d->log_at = now;
}

static void kg__http_sweep(kg_dashboard_t *d, kg__conn *c, double now)
{
    if (c->in_body) {
        double t = now - c->req_at;
        if (t > d->opt.body_timeout ||
            (t >= KG__BODY_GRACE && (double)c->body_got < (double)d->opt.body_min_rate * t)) {
            c->in_body = false;
            d->conn_events.http_timeout(d, c);
        }
    } else if (c->pending && now - c->progress > d->opt.client_timeout) {
        /* A response nobody reads. */
        kg__conn_kill(d, c);
    }
}

void kg__conns_sweep(lws_sorted_usec_list_t *sul)
{
    kg_dashboard_t *d = lws_container_of(sul, kg_dashboard_t, sul_conns);
    double now = kg_clock_mono();
    /* Kills are asynchronous: nothing leaves the list while we walk it. */
    for (kg_link *l = d->conns.next; l != &d->conns; l = l->next) {
        kg__conn *c = KG_CONTAINER_OF(l, kg__conn, link);
        if (c->closing)
            continue;
        if (c->kind == KG__CONN_HTTP)
            kg__http_sweep(d, c, now);
        else
            d->conn_events.ws_sweep(d, c, now);
    }
    if (d->listen_paused) {
        lws_rx_flow_control(d->listen_wsi, 1);
        d->listen_paused = false;
    }
    kg__summary(d, now);
#if defined(__GLIBC__)
    if (d->trim_freed >= KG__TRIM_AFTER && now - d->trim_at >= 2) {
        malloc_trim(0);
        d->trim_freed = 0;
        d->trim_at = now;
    }
#endif
    lws_sul_schedule(d->ctx, 0, &d->sul_conns, kg__conns_sweep, KG__SWEEP_US);
}
