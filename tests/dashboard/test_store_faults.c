/* test_store_faults.c - the run history when things break.
 *
 *   kill -9     a dashboard process is killed while events pour in over
 *               HTTP: the file passes PRAGMA integrity_check, a new
 *               dashboard opens it, and every event acknowledged more than
 *               KG__STORE_ADMIT_AGE before the kill is there (the bound
 *               admission keeps); the loss window is printed (normally
 *               within the 200 ms commit interval);
 *   disk full   a small tmpfs (when this process may mount one, in a private
 *               mount namespace) and a file-size limit (RLIMIT_FSIZE, in a
 *               child, always): the store reports itself failing with the
 *               reason, the live view goes on, and once there is room again
 *               every acknowledged event is written.
 *
 * Timing slack: a kill lands at any point; the bound is the writer's
 * promise, plus KILL_SLACK for a loaded test machine's scheduling. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hub.h"
#include "ingest.h"
#include "store.h"
#include "store_testutil.h"
#include "testutil.h"
#include "wsclient.h"

#define KILL_SLACK 0.3

static char g_dir[64];
static char g_db[128];
static bool g_can_mount;

static int setup(void **state)
{
    (void)state;
    kg_tmpdir(g_dir, sizeof g_dir);
    snprintf(g_db, sizeof g_db, "%s/history.db", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kg_trmdir(g_dir);
    return 0;
}

static char *event(int i)
{
    char id[32], wf[32];
    snprintf(id, sizeof id, "ev-%06d", i);
    snprintf(wf, sizeof wf, "run-%04d", i / 50);
    return kg_tevent(id, i % 50 == 0 ? "workflow_started" : "node_started", "lifecycle", "n",
                     wf, (unsigned long long)i, NULL);
}

/* ---- kill -9 ---------------------------------------------------------------------------- */

typedef struct poster {
    int port;
    atomic_bool stop;
    atomic_int next;              /* events acknowledged: 0 .. next-1 */
    double *acked;                /* ack time per event, 0 = not acknowledged */
    int cap;
} poster;

static void *post_loop(void *arg)
{
    poster *p = arg;
    int next = 0;
    while (!atomic_load(&p->stop) && next + 10 <= p->cap) {
        char *ev[10];
        for (int k = 0; k < 10; k++)
            ev[k] = event(next + k);
        char *body = kg_tbatch(ev, 0, 10);
        kg_thttp_resp r;
        int st = kg_thttp(p->port, "POST", "/api/ingest", "Content-Type: application/json\r\n",
                          body, strlen(body), &r);
        double now = kg_test_now();
        kg_thttp_resp_free(&r);
        free(body);
        for (int k = 0; k < 10; k++)
            free(ev[k]);
        if (st == 200) {
            for (int k = 0; k < 10; k++)
                p->acked[next + k] = now;
            next += 10;
            atomic_store(&p->next, next);
        } else if (st != 503) {
            break;   /* the server is gone */
        }
    }
    return NULL;
}

static void test_kill9(void **state)
{
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pipefd[0]);
        kg_dashboard_options o;
        kg_dashboard_options_init(&o);
        o.port = 0;
        o.db = g_db;
        kg_dashboard_t *d = NULL;
        if (kg_dashboard_new(&o, &d, NULL) != 0)
            _exit(2);
        int port = kg_dashboard_port(d);
        if (write(pipefd[1], &port, sizeof port) != sizeof port)
            _exit(3);
        for (;;)
            pause();
    }
    close(pipefd[1]);
    int port = 0;
    assert_int_equal(read(pipefd[0], &port, sizeof port), (ssize_t)sizeof port);
    close(pipefd[0]);

    poster p = {.port = port, .cap = 2000000};
    atomic_init(&p.stop, false);
    atomic_init(&p.next, 0);
    p.acked = calloc((size_t)p.cap, sizeof *p.acked);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_loop, &p), 0);
    assert_true(KG_WAIT_UNTIL(atomic_load(&p.next) >= 2000, 30));
    kg_test_sleep(1.0);
    double killed = kg_test_now();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    atomic_store(&p.stop, true);
    pthread_join(t, NULL);

    assert_true(kg_tsql_ok(g_db));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM kg_events WHERE event_id = ?1", -1,
                                        &st, NULL),
                     SQLITE_OK);
    int old_lost = 0, recent_lost = 0, acked = 0;
    double worst = 0;
    int sent = atomic_load(&p.next);
    for (int i = 0; i < sent; i++) {
        if (!p.acked[i])
            continue;
        acked++;
        char id[32];
        snprintf(id, sizeof id, "ev-%06d", i);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
        bool found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
        if (found)
            continue;
        double age = killed - p.acked[i];
        if (age > worst)
            worst = age;
        if (age > KG__STORE_ADMIT_AGE + KILL_SLACK)
            old_lost++;
        else
            recent_lost++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("kill -9: %d events acknowledged, %d lost (all acknowledged within %.3f s of the "
           "kill)\n",
           acked, old_lost + recent_lost, worst);
    assert_int_equal(old_lost, 0);
    free(p.acked);

    /* It opens cleanly and serves what it has. */
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    json_t *h = kg_thistory(kg_dashboard_port(d));
    assert_string_equal(json_string_value(json_object_get(h, "state")), "ok");
    json_decref(h);
    json_t *runs = kg_tget(kg_dashboard_port(d), "/api/runs?limit=1", 200, NULL);
    assert_int_equal(json_array_size(json_object_get(runs, "runs")), 1);
    json_decref(runs);
    kg_dashboard_free(d);
}

/* ---- disk full --------------------------------------------------------------------------- */

static const char *history_state(int port, char *error, size_t errlen)
{
    static char state[32];
    json_t *j = kg_tget(port, "/healthz", 200, NULL);
    json_t *h = json_object_get(j, "history");
    snprintf(state, sizeof state, "%s", json_string_value(json_object_get(h, "state")));
    if (error)
        snprintf(error, errlen, "%s",
                 json_string_value(json_object_get(h, "error"))
                     ? json_string_value(json_object_get(h, "error"))
                     : "");
    json_decref(j);
    return state;
}

/* Ingest batches until the store reports failing; returns the number of
 * events acknowledged, or -1 when it never failed. */
static int fill_until_failing(kg_dashboard_t *d, int first, char *error, size_t errlen)
{
    int port = kg_dashboard_port(d), i = first;
    double deadline = kg_test_now() + 60, report = kg_test_now() + 10;
    while (kg_test_now() < deadline) {
        if (strcmp(history_state(port, error, errlen), "failing") == 0)
            return i - first;
        if (kg_test_now() > report) {   /* a slow case says where it is */
            json_t *h = kg_thistory(port);
            char *t = json_dumps(h, JSON_COMPACT);
            fprintf(stderr, "after %d events: %s\n", i - first, t);
            free(t);
            json_decref(h);
            report = kg_test_now() + 10;
        }
        char *ev[20];
        for (int k = 0; k < 20; k++)
            ev[k] = event(i + k);
        char *body = kg_tbatch(ev, 0, 20);
        int rc;
        /* Behind: the sender waits and retries the batch until it is
         * acknowledged (what was accepted before is a duplicate then). */
        while ((rc = kg_dashboard_ingest(d, body, strlen(body), NULL)) == KG_EFULL &&
               kg_test_now() < deadline)
            kg_test_sleep(0.02);
        free(body);
        for (int k = 0; k < 20; k++)
            free(ev[k]);
        if (rc != 0)
            fail_msg("ingest: %d", rc);
        i += 20;
    }
    return -1;
}

static void live_view_works(kg_dashboard_t *d)
{
    char *e = kg_tevent("live-during-failure", "node_started", "lifecycle", "a", "live", 1, NULL);
    assert_int_equal(kg_dashboard_ingest(d, e, strlen(e), NULL), 0);
    free(e);
    json_t *ev = kg_tget(kg_dashboard_port(d), "/api/events?limit=1", 200, NULL);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(ev, "events"), 0), "event_id")),
                        "live-during-failure");
    json_decref(ev);
}

static void test_disk_full_tmpfs(void **state)
{
    (void)state;
    if (!g_can_mount)
        skip();
    char mnt[160];
    snprintf(mnt, sizeof mnt, "%s/small", g_dir);
    assert_int_equal(mkdir(mnt, 0700), 0);
    assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=4m"), 0);
    char db[200], ballast[200];
    snprintf(db, sizeof db, "%s/history.db", mnt);
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    kg_dashboard_t *d = kg_tdash(db, NULL);
    /* One event written first: the writer has its files open before the
     * disk fills (else it reports "unavailable" instead: cannot open). */
    char *first = event(1000000);
    assert_int_equal(kg_tingest(d, first), 0);
    free(first);
    kg_tdash_sync(d);
    /* Fill the file system with something else. */
    FILE *f = fopen(ballast, "w");
    assert_non_null(f);
    static char block[4096];
    while (fwrite(block, 1, sizeof block, f) == sizeof block) {
    }
    fclose(f);

    char err[256];
    int acked = fill_until_failing(d, 0, err, sizeof err);
    assert_true(acked >= 0);
    printf("disk full (tmpfs): failing after %d events: %s\n", acked, err);
    assert_non_null(strstr(err, "full"));
    live_view_works(d);
    acked += 2;   /* and the first one */
    json_t *h = kg_thistory(kg_dashboard_port(d));
    assert_int_equal(json_integer_value(json_object_get(h, "dropped")), 0);
    json_decref(h);

    /* Room again: everything acknowledged is written. */
    assert_int_equal(unlink(ballast), 0);
    assert_true(KG_WAIT_UNTIL(strcmp(history_state(kg_dashboard_port(d), NULL, 0), "ok") == 0,
                              30));
    kg_tdash_sync(d);
    kg_dashboard_free(d);
    assert_true(kg_tsql_ok(db));
    assert_int_equal(kg_tsql_int(db, "SELECT count(*) FROM kg_events"), acked);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

/* The same with a file-size limit, in a child (the limit is per process). */
static int rlimit_child(void)
{
    signal(SIGXFSZ, SIG_IGN);   /* writes past the limit fail with EFBIG instead */
    kg_dashboard_t *d = kg_tdash(g_db, NULL);
    int acked = 0;
    char err[256];
    for (; acked < 100; acked += 20) {
        char *ev[20];
        for (int k = 0; k < 20; k++)
            ev[k] = event(acked + k);
        char *body = kg_tbatch(ev, 0, 20);
        if (kg_tingest(d, body) != 0)
            return 10;
        free(body);
        for (int k = 0; k < 20; k++)
            free(ev[k]);
    }
    kg_tdash_sync(d);
    struct stat a, b;
    char wal[200];
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    if (stat(g_db, &a) || stat(wal, &b))
        return 11;
    struct rlimit lim;
    getrlimit(RLIMIT_FSIZE, &lim);
    struct rlimit small = lim;
    small.rlim_cur = (rlim_t)(a.st_size > b.st_size ? a.st_size : b.st_size) + 65536;
    if (setrlimit(RLIMIT_FSIZE, &small))
        return 12;
    int more = fill_until_failing(d, acked, err, sizeof err);
    if (more < 0)
        return 13;
    acked += more;
    printf("disk full (RLIMIT_FSIZE): failing after %d more events: %s\n", more, err);
    live_view_works(d);
    acked++;
    if (setrlimit(RLIMIT_FSIZE, &lim))
        return 14;
    if (!KG_WAIT_UNTIL(strcmp(history_state(kg_dashboard_port(d), NULL, 0), "ok") == 0, 30))
        return 15;
    kg_tdash_sync(d);
    kg_dashboard_free(d);
    if (!kg_tsql_ok(g_db))
        return 16;
    long long n = kg_tsql_int(g_db, "SELECT count(*) FROM kg_events");
    if (n != acked) {
        fprintf(stderr, "stored %lld of %d acknowledged\n", n, acked);
        return 17;
    }
    return 0;
}

static void test_disk_full_rlimit(void **state)
{
    (void)state;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int rc = rlimit_child();
        fflush(stdout);
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    /* A private mount namespace (before any thread): a tmpfs mounted by a
     * test disappears with the process, whatever happens to it. */
    g_can_mount = geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
                  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
    if (!g_can_mount)
        printf("cannot mount here: the tmpfs case is skipped, RLIMIT_FSIZE covers disk full\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_rlimit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
