/* pg_server.h - a real PostgreSQL server for tests, in a temporary directory.
 *
 * As redis_server.h does for Redis: the tests start their own server rather
 * than rely on one being set up.  `initdb` makes a cluster in a fresh
 * temporary directory (trust authentication, user "postgres"), then
 * `postgres` serves it on a free loopback port with its unix socket in a
 * temporary directory too; fsync is off (a test cluster is thrown away).
 * PostgreSQL refuses to run as root, and CI runs as root: then both run as
 * the `postgres` user the Debian package creates (the directories are given
 * to it).  The server gets PR_SET_PDEATHSIG, so a crashing test leaves none
 * behind.  Binaries: $KG_PG_BIN, else the newest /usr/lib/postgresql/N/bin,
 * else PATH. */
#ifndef KG_TEST_PG_SERVER_H
#define KG_TEST_PG_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct kg_pg_server {
    pid_t pid;             /* the postmaster, 0 when not running */
    int port;
    char dir[64];          /* the cluster */
    char sockdir[64];      /* the unix socket's directory */
    char bin[256];         /* where initdb and postgres are */
    char uri[256];         /* postgres://postgres@127.0.0.1:PORT/postgres */
} kg_pg_server;

/* Whether to run a PostgreSQL test: initdb and postgres are there (and, as
 * root, a postgres user).  When not, false (skip, with `why`) only with
 * KG_TEST_ALLOW_SKIP=1; else true, and the test fails starting the server. */
bool kg_pg_server_available(char *why, size_t whylen);

/* initdb + start, wait (at most 60 s) until it accepts connections.  0, or
 * -1 with a message on stderr. */
int kg_pg_server_start(kg_pg_server *s);

/* CREATE DATABASE `name`; its URI in out.  0 or -1. */
int kg_pg_server_createdb(kg_pg_server *s, const char *name, char *out, size_t outlen);

/* Run one SQL statement on database `uri` and return the first column of
 * the first row as an integer (-1 on error or no row). */
long long kg_pg_int(const char *uri, const char *sql);

/* SIGKILL the server (no shutdown) and restart it on the same port and
 * data: a crashed database coming back.  0 or -1. */
int kg_pg_server_restart(kg_pg_server *s);

/* Fast shutdown, then remove both directories. */
void kg_pg_server_stop(kg_pg_server *s);

#endif
