/* redis_server.h - a real redis-server for tests, on a free loopback port.
 *
 * Tests of the Redis backend run against the real thing (as hiredis' own
 * tests do): this starts `redis-server --port P --bind 127.0.0.1 --save ''
 * --appendonly no --daemonize no` with fork/exec, waits for it with a bounded
 * PING loop, and kills it at the end.  For fault tests it can be killed
 * (SIGKILL: no goodbye to clients) and restarted on the same port, with an
 * empty dataset, as a crashed and restarted server would be.
 *
 * The child gets PR_SET_PDEATHSIG, so a crashing test does not leave
 * servers behind.  The binary is $KG_REDIS_SERVER or `redis-server` on PATH. */
#ifndef KG_TEST_REDIS_SERVER_H
#define KG_TEST_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

typedef struct kg_redis_server_opts {
    const char *password;   /* --requirepass when set */
    bool unix_socket;       /* also listen on a unix socket (see .unix_path) */
    const char *netns;      /* run inside this network namespace (a name under
                             * /var/run/netns); implies unix_socket, through
                             * which the fixture itself talks to the server */
    const char *bind;       /* --bind addresses (space-separated); default
                             * "127.0.0.1" */
    bool persist;           /* AOF with fsync always in a temporary dir, so the
                             * data survive kill + restart (exactly-once
                             * accounting in fault tests) */
} kg_redis_server_opts;

typedef struct kg_redis_server {
    pid_t pid;              /* 0 when not running */
    int port;
    char unix_path[108];    /* "" unless opts.unix_socket */
    char password[64];
    bool unix_socket;
    char dir[64];           /* "" unless opts.persist */
    char netns[64];         /* "" unless opts.netns */
    char bind[256];
} kg_redis_server;

/* Whether to run a Redis test: false (the test skips) only when no
 * redis-server binary is found and KG_TEST_ALLOW_SKIP=1; without that, a
 * missing binary gives true, and the test fails when it cannot start it. */
bool kg_redis_server_available(void);

/* Start on a free port and wait (at most 10 s) until it answers PING.
 * `opts` NULL means defaults.  0, or -1 with a message on stderr. */
int kg_redis_server_start(kg_redis_server *s, const kg_redis_server_opts *opts);

/* SIGKILL the server and reap it.  No-op when not running. */
void kg_redis_server_kill(kg_redis_server *s);

/* Start again on the same port (and socket) after kg_redis_server_kill. */
int kg_redis_server_restart(kg_redis_server *s);

/* Kill and remove the socket file and the data directory. */
void kg_redis_server_stop(kg_redis_server *s);

/* An independent client connection (AUTH done), NULL on failure: over TCP
 * to 127.0.0.1, or over the unix socket for a server in a namespace.  Free
 * with redisFree. */
redisContext *kg_redis_server_client(const kg_redis_server *s);

/* Run a command on `c` and return the reply (freeReplyObject it), or NULL
 * when the connection failed.  Format as redisCommand. */
redisReply *kg_redis_cmd(redisContext *c, const char *fmt, ...);

/* Integer reply of a command (or -1 on error / non-integer), for asserts. */
long long kg_redis_int(redisContext *c, const char *fmt, ...);

/* Keys matching `pattern`, counted with SCAN; -1 on error. */
long long kg_redis_count_keys(redisContext *c, const char *pattern);

/* The sum of the per-type event counters <prefix>metrics:events:<type>. */
long long kg_redis_counters_sum(redisContext *c, const char *prefix);

#endif
