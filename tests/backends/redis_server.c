/* redis_server.c - start, kill and restart a real redis-server (see
 * redis_server.h). */
#include "redis_server.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static const char *kg__binary(void)
{
    const char *b = getenv("KG_REDIS_SERVER");
    return b && *b ? b : "redis-server";
}

static bool kg__binary_found(void)
{
    const char *b = kg__binary();
    if (strchr(b, '/'))
        return access(b, X_OK) == 0;
    const char *path = getenv("PATH");
    char dir[4096];
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, path, b);
        if (access(dir, X_OK) == 0)
            return true;
        path = colon ? colon + 1 : NULL;
    }
    return access("/usr/bin/redis-server", X_OK) == 0;
}

bool kg_redis_server_available(void)
{
    return kg__binary_found() || !kg_test_skip_allowed("redis-server not found");
}

static redisContext *kg__client(const kg_redis_server *s, double timeout)
{
    struct timeval tv = {(time_t)timeout, (suseconds_t)((timeout - (double)(time_t)timeout) * 1e6)};
    /* A server in another network namespace is out of reach of 127.0.0.1
     * here; its unix socket is not (path names are not per namespace). */
    redisContext *c = s->netns[0] ? redisConnectUnixWithTimeout(s->unix_path, tv)
                                  : redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (s->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* Fork/exec redis-server on s->port; wait for PING.  1 when the child died
 * early (port taken?), -1 on other failures. */
static int kg__spawn(kg_redis_server *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    const char *argv[24];
    int n = 0;
    argv[n++] = kg__binary();
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = s->bind[0] ? s->bind : "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = s->dir[0] ? "yes" : "no";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    if (s->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = s->password;
    }
    if (s->dir[0]) {
        argv[n++] = "--appendfsync";
        argv[n++] = "always";
        argv[n++] = "--dir";
        argv[n++] = s->dir;
    }
    if (s->unix_socket) {
        argv[n++] = "--unixsocket";
        argv[n++] = s->unix_path;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    argv[n] = NULL;
    int nsfd = -1;
    if (s->netns[0]) {
        char path[128];
        snprintf(path, sizeof path, "/var/run/netns/%s", s->netns);
        nsfd = open(path, O_RDONLY | O_CLOEXEC);
        if (nsfd < 0) {
            perror(path);
            return -1;
        }
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0 && nsfd >= 0)
        close(nsfd);
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0)
            _exit(125);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            if (!getenv("KG_REDIS_VERBOSE"))
                dup2(null, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    double deadline = kg_test_now() + 10.0;
    while (kg_test_now() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            return 1;
        }
        redisContext *c = kg__client(s, 0.2);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        }
        kg_test_sleep(0.01);
    }
    fprintf(stderr, "redis-server on port %d did not answer PING in 10 s\n", s->port);
    kg_redis_server_kill(s);
    return -1;
}

int kg_redis_server_start(kg_redis_server *s, const kg_redis_server_opts *opts)
{
    memset(s, 0, sizeof *s);
    if (opts && opts->password)
        snprintf(s->password, sizeof s->password, "%s", opts->password);
    if (opts && opts->netns)
        snprintf(s->netns, sizeof s->netns, "%s", opts->netns);
    if (opts && opts->bind)
        snprintf(s->bind, sizeof s->bind, "%s", opts->bind);
    s->unix_socket = (opts && opts->unix_socket) || s->netns[0];
    if (opts && opts->persist) {
        snprintf(s->dir, sizeof s->dir, "/tmp/kg-redis-XXXXXX");
        if (!mkdtemp(s->dir)) {
            perror("mkdtemp");
            return -1;
        }
    }
    /* The free port may be taken by someone else before redis binds it. */
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = kg_test_free_port();
        if (s->unix_socket)
            snprintf(s->unix_path, sizeof s->unix_path, "/tmp/kg-redis-%d-%d.sock",
                     (int)getpid(), s->port);
        int rc = kg__spawn(s);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return -1;
    }
    fprintf(stderr, "redis-server (%s) would not start\n", kg__binary());
    return -1;
}

void kg_redis_server_kill(kg_redis_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
}

int kg_redis_server_restart(kg_redis_server *s)
{
    kg_redis_server_kill(s);
    /* The port is ours to reuse: redis sets SO_REUSEADDR, and nothing else
     * binds a port that was just in use by accident often enough to matter;
     * retry briefly in case the old socket lingers. */
    for (int attempt = 0; attempt < 20; attempt++) {
        int rc = kg__spawn(s);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return -1;
        kg_test_sleep(0.05);
    }
    return -1;
}

static int kg__rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void kg_redis_server_stop(kg_redis_server *s)
{
    kg_redis_server_kill(s);
    if (s->unix_path[0])
        unlink(s->unix_path);
    if (s->dir[0]) {
        nftw(s->dir, kg__rm, 8, FTW_DEPTH | FTW_PHYS);
        s->dir[0] = '\0';
    }
}

redisContext *kg_redis_server_client(const kg_redis_server *s)
{
    return kg__client(s, 5.0);
}

redisReply *kg_redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return r;
}

long long kg_redis_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    if (r)
        freeReplyObject(r);
    return v;
}

long long kg_redis_count_keys(redisContext *c, const char *pattern)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = kg_redis_cmd(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

long long kg_redis_counters_sum(redisContext *c, const char *prefix)
{
    static const char *const types[] = {"lifecycle", "data", "error", "metric"};
    long long sum = 0;
    for (int i = 0; i < 4; i++) {
        long long v = kg_redis_int(c, "GET %smetrics:events:%s", prefix, types[i]);
        sum += v > 0 ? v : 0;
    }
    return sum;
}
