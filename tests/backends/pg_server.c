/* pg_server.c - start and stop a real PostgreSQL server (see pg_server.h). */
#include "pg_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fixture.h"

/* The newest /usr/lib/postgresql/N/bin with initdb, or $KG_PG_BIN, or "". */
static void kg__pg_bin(char *out, size_t outlen)
{
    const char *env = getenv("KG_PG_BIN");
    if (env && *env) {
        snprintf(out, outlen, "%s", env);
        return;
    }
    out[0] = '\0';
    DIR *d = opendir("/usr/lib/postgresql");
    long best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        char path[512];
        snprintf(path, sizeof path, "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
        if (end != e->d_name && !*end && v > best && access(path, X_OK) == 0) {
            best = v;
            snprintf(out, outlen, "/usr/lib/postgresql/%.32s/bin", e->d_name);
        }
    }
    if (d)
        closedir(d);
}

bool kg_pg_server_available(char *why, size_t whylen)
{
    char bin[256], path[512];
    kg__pg_bin(bin, sizeof bin);
    snprintf(path, sizeof path, "%s%sinitdb", bin, bin[0] ? "/" : "");
    if (!bin[0] || access(path, X_OK) != 0)
        snprintf(why, whylen, "PostgreSQL server binaries not found (apt install postgresql, "
                              "or set KG_PG_BIN)");
    else if (geteuid() == 0 && !getpwnam("postgres"))
        snprintf(why, whylen, "running as root and there is no postgres user to run the server");
    else
        return true;
    return !kg_test_skip_allowed(why);
}

/* Run argv as the server's user; wait when `wait` (returns the exit status),
 * else return the pid. */
static pid_t kg__pg_spawn(const char *const *argv, bool wait, int *status)
{
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Credentials first: changing them clears the parent-death signal. */
        if (pw && (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
            _exit(125);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            if (!getenv("KG_PG_VERBOSE"))
                dup2(null, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (wait) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return pid;
}

static int kg__pg_give(const char *dir)
{
    struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
    if (pw && chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
        perror("chown");
        return -1;
    }
    return 0;
}

static void kg__pg_uri(kg_pg_server *s, const char *db, char *out, size_t outlen)
{
    snprintf(out, outlen, "postgres://postgres@127.0.0.1:%d/%s?connect_timeout=5", s->port, db);
}

static int kg__pg_launch(kg_pg_server *s)
{
    char postgres[512], port[16], sock[96];
    snprintf(postgres, sizeof postgres, "%s/postgres", s->bin);
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(sock, sizeof sock, "%s", s->sockdir);
    const char *argv[] = {postgres, "-D", s->dir, "-p", port, "-k", sock,
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                          "-c", "full_page_writes=off", "-c", "max_connections=50",
                          "-c", "shared_buffers=32MB", NULL};
    s->pid = kg__pg_spawn(argv, false, NULL);
    if (s->pid <= 0)
        return -1;
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2", s->port);
    double deadline = kg_test_now() + 60;
    while (kg_test_now() < deadline) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return 1;   /* died: port taken? */
        }
        if (PQping(conninfo) == PQPING_OK)
            return 0;
        kg_test_sleep(0.05);
    }
    fprintf(stderr, "postgres on port %d did not accept connections in 60 s\n", s->port);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

int kg_pg_server_start(kg_pg_server *s)
{
    memset(s, 0, sizeof *s);
    kg__pg_bin(s->bin, sizeof s->bin);
    snprintf(s->dir, sizeof s->dir, "/tmp/kg-pg-XXXXXX");
    snprintf(s->sockdir, sizeof s->sockdir, "/tmp/kg-pgs-XXXXXX");
    if (!mkdtemp(s->dir) || !mkdtemp(s->sockdir)) {
        perror("mkdtemp");
        return -1;
    }
    if (kg__pg_give(s->dir) || kg__pg_give(s->sockdir))
        return -1;
    char initdb[512];
    snprintf(initdb, sizeof initdb, "%s/initdb", s->bin);
    const char *argv[] = {initdb, "-D", s->dir, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--locale=C", "--no-sync", NULL};
    int status = -1;
    if (kg__pg_spawn(argv, true, &status) < 0 || status != 0) {
        fprintf(stderr, "initdb failed (exit %d; KG_PG_VERBOSE=1 shows why)\n", status);
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = kg_test_free_port();
        int rc = kg__pg_launch(s);
        if (rc == 0) {
            kg__pg_uri(s, "postgres", s->uri, sizeof s->uri);
            return 0;
        }
        if (rc < 0)
            return -1;
    }
    fprintf(stderr, "postgres would not start\n");
    return -1;
}

int kg_pg_server_restart(kg_pg_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        s->pid = 0;
    }
    /* The killed postmaster's children notice and exit; its shared memory
     * and pid file are cleaned up by the next start (crash recovery). */
    for (int attempt = 0; attempt < 100; attempt++) {
        int rc = kg__pg_launch(s);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return -1;
        kg_test_sleep(0.1);
    }
    return -1;
}

int kg_pg_server_createdb(kg_pg_server *s, const char *name, char *out, size_t outlen)
{
    PGconn *c = PQconnectdb(s->uri);
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "CREATE DATABASE %s: %s\n", name, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    kg__pg_uri(s, name, out, outlen);
    return ok ? 0 : -1;
}

long long kg_pg_int(const char *uri, const char *sql)
{
    PGconn *c = PQconnectdb(uri);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    long long v = -1;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
}

static int kg__rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void kg_pg_server_stop(kg_pg_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGINT);   /* fast shutdown */
        double deadline = kg_test_now() + 10;
        int st;
        while (waitpid(s->pid, &st, WNOHANG) != s->pid && kg_test_now() < deadline)
            kg_test_sleep(0.02);
        if (kill(s->pid, 0) == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
    }
    if (s->dir[0])
        nftw(s->dir, kg__rm, 8, FTW_DEPTH | FTW_PHYS);
    if (s->sockdir[0])
        nftw(s->sockdir, kg__rm, 8, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = s->sockdir[0] = '\0';
}
