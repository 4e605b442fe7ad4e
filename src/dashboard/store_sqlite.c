/* dashboard/store_sqlite.c - the SQLite engine of the run history (store.h).
 *
 * One file: WAL journal (readers never block the writer), synchronous=NORMAL
 * (a commit is in the OS once it returns, so a killed process loses nothing
 * committed; a power cut may lose the last commits but never corrupts),
 * auto_vacuum=INCREMENTAL so retention can give pages back to the file
 * system a few at a time.  The schema version is PRAGMA user_version; each
 * migration step runs in its own transaction.
 *
 * Tables (docs/history.md has the column meanings):
 *   kg_runs    one row per workflow run (summary, merged from its events)
 *   kg_events  every event of a run: its JSON text, unique event_id
 *   kg_loose   events of no run (the dispatcher's periodic metrics)
 *   kg_execs   one row per node execution (run, correlation_id, item)
 *
 * The writer keeps a small run_id -> rid cache (it is the only writer of its
 * file), cleared whenever retention deletes runs.
 *
 * Checkpoints (copying the WAL into the file, with its fsyncs) run on a
 * thread of their own with its own connection, not inside the writer's
 * commits: a checkpoint of a few MB takes tens of milliseconds on a busy
 * disk, and a writer stuck in one would hold every accepted event back.
 * The writer's WAL hook tells it the WAL's size; it checkpoints (PASSIVE:
 * never blocking the writer) from KG__CKPT_PAGES on.  A checkpointer that
 * cannot keep up is backed by the writer itself at KG__CKPT_WRITER_PAGES. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "kaygraph/monitor.h"
#include "store.h"
#include "util/clock.h"

#define KG__SQLITE_SCHEMA 1
#define KG__SQLITE_BUSY_MS 1000       /* a lock held longer is reported as a failure */
#define KG__SQLITE_QUERY_S 5.0        /* queries running longer are interrupted */
#define KG__RETAIN_EVENTS 20000       /* events deleted per retention step */
#define KG__VACUUM_PAGES 2048         /* pages given back per retention step */
#define KG__RUN_CACHE_MAX 8192
#define KG__CKPT_PAGES 2000           /* 8 MB of WAL: time for a background checkpoint */
#define KG__CKPT_WRITER_PAGES 65536   /* 256 MB: the writer checkpoints itself */

/* Migrations: step i brings the schema from version i to i + 1. */
static const char *const kg__sqlite_migrations[KG__SQLITE_SCHEMA] = {
    "CREATE TABLE kg_runs("
    " rid INTEGER PRIMARY KEY,"
    " run_id TEXT NOT NULL UNIQUE,"
    " parent_id TEXT, graph TEXT, graph_type TEXT, topology TEXT,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " started_ms INTEGER, last_ms INTEGER, ended_ms INTEGER, duration REAL,"
    " final_action TEXT, error TEXT,"
    " events INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,"
    " bytes INTEGER NOT NULL DEFAULT 0, host TEXT, pid INTEGER);"
    "CREATE INDEX kg_runs_started ON kg_runs(started_ms);"
    "CREATE INDEX kg_runs_graph ON kg_runs(graph, started_ms);"
    "CREATE INDEX kg_runs_status ON kg_runs(status, started_ms);"
    /* Partial: "parent_id IS NULL" (top-level runs, most lists) must not
     * pick it over the time index, which gives the order for free. */
    "CREATE INDEX kg_runs_parent ON kg_runs(parent_id) WHERE parent_id IS NOT NULL;"
    /* Covering indexes: /api/graphs and node stats read only the index. */
    "CREATE INDEX kg_runs_stats ON kg_runs(started_ms, graph, status, duration, parent_id)"
    " WHERE parent_id IS NULL;"
    "CREATE TABLE kg_events("
    " id INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " rid INTEGER NOT NULL, seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL,"
    " etype INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX kg_events_run ON kg_events(rid, seq);"
    "CREATE TABLE kg_loose("
    " id INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " ts_ms INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE TABLE kg_execs("
    " xid INTEGER PRIMARY KEY,"
    " rid INTEGER NOT NULL, corr TEXT NOT NULL, item INTEGER NOT NULL,"
    " node_id TEXT, node TEXT, graph TEXT, node_type TEXT,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " started_ms INTEGER, ended_ms INTEGER, duration REAL,"
    " retries INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0,"
    " action TEXT, error TEXT, error_type TEXT, phase TEXT, err_ms INTEGER,"
    " UNIQUE(rid, corr, item));"
    "CREATE INDEX kg_execs_node ON kg_execs(graph, node, started_ms, duration, status);",
};

enum {
    KG__Q_EVENT, KG__Q_LOOSE, KG__Q_RUN_INS, KG__Q_RUN_SEL, KG__Q_RUN_UPD, KG__Q_EXEC_GRAPH,
    KG__Q_EXEC_UPS, KG__Q_COUNT
};

static const char *const kg__sqlite_writes[KG__Q_COUNT] = {
    [KG__Q_EVENT] = "INSERT INTO kg_events(event_id, rid, seq, ts_ms, etype, body)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(event_id) DO NOTHING",
    [KG__Q_LOOSE] = "INSERT INTO kg_loose(event_id, ts_ms, body) VALUES(?1, ?2, ?3)"
                    " ON CONFLICT(event_id) DO NOTHING",
    [KG__Q_RUN_INS] = "INSERT INTO kg_runs(run_id) VALUES(?1) ON CONFLICT(run_id) DO NOTHING",
    [KG__Q_RUN_SEL] = "SELECT rid, graph FROM kg_runs WHERE run_id = ?1",
    /* Merges: see store.h.  SQLite's min()/max() return NULL when an
     * argument is NULL, hence the CASEs. */
    [KG__Q_RUN_UPD] =
        "UPDATE kg_runs SET"
        " started_ms = CASE WHEN ?2 IS NOT NULL AND (started_ms IS NULL OR ?2 < started_ms)"
        "  THEN ?2 ELSE started_ms END,"
        " last_ms = CASE WHEN ?3 IS NOT NULL AND (last_ms IS NULL OR ?3 > last_ms)"
        "  THEN ?3 ELSE last_ms END,"
        " ended_ms = CASE WHEN ?4 IS NOT NULL AND (ended_ms IS NULL OR ?4 > ended_ms)"
        "  THEN ?4 ELSE ended_ms END,"
        " events = events + ?5, errors = errors + ?6, status = max(status, ?7),"
        " duration = coalesce(?8, duration), graph = coalesce(graph, ?9),"
        " graph_type = coalesce(graph_type, ?10), parent_id = coalesce(parent_id, ?11),"
        " final_action = coalesce(?12, final_action), error = coalesce(?13, error),"
        " host = coalesce(host, ?14), pid = coalesce(pid, ?15),"
        " topology = coalesce(topology, ?16), bytes = bytes + ?17"
        " WHERE rid = ?1",
    [KG__Q_EXEC_GRAPH] = "UPDATE kg_execs SET graph = ?2 WHERE rid = ?1 AND graph IS NULL",
    [KG__Q_EXEC_UPS] =
        "INSERT INTO kg_execs(rid, corr, item, node_id, node, graph, node_type, status,"
        " started_ms, ended_ms, duration, retries, events, errors, action, error, error_type,"
        " phase, err_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
        " ?15, ?16, ?17, ?18, ?19)"
        " ON CONFLICT(rid, corr, item) DO UPDATE SET"
        " node_id = coalesce(node_id, excluded.node_id), node = coalesce(node, excluded.node),"
        " graph = coalesce(graph, excluded.graph),"
        " node_type = coalesce(node_type, excluded.node_type),"
        " status = max(status, excluded.status),"
        " started_ms = CASE WHEN excluded.started_ms IS NOT NULL AND (started_ms IS NULL OR"
        "  excluded.started_ms < started_ms) THEN excluded.started_ms ELSE started_ms END,"
        " ended_ms = CASE WHEN excluded.ended_ms IS NOT NULL AND (ended_ms IS NULL OR"
        "  excluded.ended_ms > ended_ms) THEN excluded.ended_ms ELSE ended_ms END,"
        " duration = coalesce(excluded.duration, duration),"
        " retries = retries + excluded.retries, events = events + excluded.events,"
        " errors = errors + excluded.errors, action = coalesce(excluded.action, action),"
        " error = CASE WHEN " "KG_NEWER_ERROR" " THEN excluded.error ELSE error END,"
        " error_type = CASE WHEN " "KG_NEWER_ERROR" " THEN excluded.error_type ELSE error_type END,"
        " phase = CASE WHEN " "KG_NEWER_ERROR" " THEN excluded.phase ELSE phase END,"
        " err_ms = CASE WHEN " "KG_NEWER_ERROR" " THEN excluded.err_ms ELSE err_ms END",
};

/* The last error wins (by time, then text), whatever the arrival order. */
#define KG__NEWER_ERROR                                                                    \
    "(excluded.err_ms IS NOT NULL AND (err_ms IS NULL OR excluded.err_ms > err_ms OR"      \
    " (excluded.err_ms = err_ms AND excluded.error > error)))"

/* The background checkpointer of a writer connection. */
typedef struct kg__ckpt {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wal_pages;                /* as the writer's hook last saw it (lock) */
    bool stop;
} kg__ckpt;

typedef struct kg__lite {
    sqlite3 *db;
    bool writer;
    kg__ckpt *ckpt;               /* writer only */
    sqlite3_stmt *st[KG__Q_COUNT];
    kg_map runs;                 /* writer: run_id -> kg__cached_run of runs with a graph */
    double deadline;              /* queries: interrupt after this (monotonic) */
} kg__lite;

typedef struct kg__cached_run {
    int64_t rid;
    char graph[];
} kg__cached_run;

static void kg__cache_clear(kg__lite *l)
{
    for (size_t i = 0; i < l->runs.nb; i++)
        for (kg_map_entry *e = l->runs.b[i]; e; e = e->next)
            free(e->val);
    kg_map_free(&l->runs);
}

static void kg__cache_put(kg__lite *l, const kg__srun *r)
{
    if (l->runs.n >= KG__RUN_CACHE_MAX)
        kg__cache_clear(l);
    size_t n = strlen(r->db_graph) + 1;
    kg__cached_run *c = malloc(sizeof *c + n);
    if (!c)
        return;
    c->rid = r->rid;
    memcpy(c->graph, r->db_graph, n);
    if (kg_map_put(&l->runs, r->run_id, c) != 0)
        free(c);
}

/* ---- errors ---------------------------------------------------------------------------- */

static int kg__lite_err(kg__lite *l, int rc, const char *what, kg_error_t *err)
{
    int code = rc == SQLITE_NOMEM ? KG_ENOMEM
               : rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? KG_EBUSY
               : rc == SQLITE_INTERRUPT                   ? KG_ETIMEOUT
                                                          : KG_EIO;
    const char *msg = l && l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
    if (rc == SQLITE_INTERRUPT)
        msg = "the query took too long";
    return kg_error_set(err, code, "StoreError", "%s: %s (sqlite %s)", what, msg,
                        sqlite3_errstr(rc & 0xff));
}

static int kg__lite_exec(kg__lite *l, const char *sql, const char *what, kg_error_t *err)
{
    int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : kg__lite_err(l, rc, what, err);
}

/* ---- binding ----------------------------------------------------------------------------- */

static void kg__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void kg__bind_ms(sqlite3_stmt *st, int i, int64_t v)
{
    if (v >= 0)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void kg__bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

static char *kg__col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static int64_t kg__col_ms(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static double kg__col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

/* Run a prepared write statement once; reset it.  0 or an error. */
static int kg__step_done(kg__lite *l, sqlite3_stmt *st, const char *what, kg_error_t *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : kg__lite_err(l, rc, what, err);
}

/* ---- open, schema ------------------------------------------------------------------------ */

static int kg__lite_progress(void *ud)
{
    kg__lite *l = ud;
    return l->deadline > 0 && kg_clock_mono() > l->deadline;
}

static int kg__lite_pragma_int(kg__lite *l, const char *sql, int64_t *out, kg_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : kg__lite_err(l, rc, sql, err);
}

static int kg__lite_migrate(kg__lite *l, kg_error_t *err)
{
    int64_t version = 0, tables = 0;
    int rc;
    if ((rc = kg__lite_pragma_int(l, "PRAGMA user_version", &version, err)) != 0 ||
        (rc = kg__lite_pragma_int(l, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE "
                                     "'sqlite_%'",
                                  &tables, err)) != 0)
        return rc;
    if (version > KG__SQLITE_SCHEMA)
        return kg_error_set(err, KG_EUNSUPPORTED, "StoreError",
                            "schema version %lld is newer than this build knows (%d): use a "
                            "newer kaygraph or another --db",
                            (long long)version, KG__SQLITE_SCHEMA);
    if (version == 0 && tables > 0)
        return kg_error_set(err, KG_EINVAL, "StoreError",
                            "not a kaygraph history database (it has other tables)");
    if (version == 0 &&
        (rc = kg__lite_exec(l, "PRAGMA auto_vacuum = INCREMENTAL", "auto_vacuum", err)) != 0)
        return rc;
    for (int64_t v = version; v < KG__SQLITE_SCHEMA; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %lld", (long long)v + 1);
        if ((rc = kg__lite_exec(l, "BEGIN IMMEDIATE", "migrate", err)) != 0)
            return rc;
        if ((rc = kg__lite_exec(l, kg__sqlite_migrations[v], "migrate", err)) != 0 ||
            (rc = kg__lite_exec(l, bump, "migrate", err)) != 0 ||
            (rc = kg__lite_exec(l, "COMMIT", "migrate", err)) != 0) {
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    return 0;
}

static char *kg__expand_newer_error(const char *sql)
{
    /* The upsert repeats one condition four times; it is written once. */
    static const char mark[] = "KG_NEWER_ERROR";
    kg_buf sb;
    kg_buf_init(&sb);
    const char *p = sql, *m;
    while ((m = strstr(p, mark))) {
        kg_buf_append(&sb, p, (size_t)(m - p));
        kg_buf_puts(&sb, KG__NEWER_ERROR);
        p = m + sizeof mark - 1;
    }
    kg_buf_puts(&sb, p);
    return kg_buf_steal(&sb, NULL);
}

static int kg__lite_prepare(kg__lite *l, kg_error_t *err)
{
    for (int i = 0; i < KG__Q_COUNT; i++) {
        char *sql = kg__expand_newer_error(kg__sqlite_writes[i]);
        if (!sql)
            return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
        int rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
        free(sql);
        if (rc != SQLITE_OK)
            return kg__lite_err(l, rc, "prepare", err);
    }
    return 0;
}

/* ---- checkpoints ----------------------------------------------------------------------- */

static void *kg__ckpt_main(void *arg)
{
    kg__ckpt *c = arg;
    kg__store_background_thread();
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        if (c->wal_pages < KG__CKPT_PAGES) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
            continue;
        }
        c->wal_pages = 0;
        pthread_mutex_unlock(&c->lock);
        /* Failures (a full disk) leave the WAL as it is: the writer reports
         * its own failures, and the next attempt comes with the next commit. */
        sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* The writer's WAL hook (after each commit): `pages` frames in the WAL. */
static int kg__lite_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    (void)name;
    kg__ckpt *c = ud;
    if (pages >= KG__CKPT_WRITER_PAGES) {
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&c->lock);
    c->wal_pages = pages;
    bool wake = pages >= KG__CKPT_PAGES;
    pthread_mutex_unlock(&c->lock);
    if (wake)
        pthread_cond_signal(&c->cond);
    return SQLITE_OK;
}

static void kg__ckpt_stop(kg__ckpt *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    sqlite3_close_v2(c->db);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* Start the checkpointer of writer `l`: 0, or an error (then the writer
 * checkpoints inline, as SQLite does by default). */
static int kg__ckpt_start(kg__lite *l, const char *spec)
{
    kg__ckpt *c = calloc(1, sizeof *c);
    if (!c)
        return KG_ENOMEM;
    if (sqlite3_open_v2(spec, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close_v2(c->db);
        free(c);
        return KG_EIO;
    }
    sqlite3_busy_timeout(c->db, KG__SQLITE_BUSY_MS);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    if (pthread_create(&c->thread, NULL, kg__ckpt_main, c) != 0) {
        sqlite3_close_v2(c->db);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
        free(c);
        return KG_ENOMEM;
    }
    l->ckpt = c;
    /* Replaces SQLite's automatic checkpoint in the writer's commits. */
    sqlite3_wal_hook(l->db, kg__lite_wal_hook, c);
    return 0;
}

static void kg__lite_close(void *conn)
{
    kg__lite *l = conn;
    if (!l)
        return;
    kg__ckpt_stop(l->ckpt);
    for (int i = 0; i < KG__Q_COUNT; i++)
        sqlite3_finalize(l->st[i]);
    kg__cache_clear(l);
    sqlite3_close_v2(l->db);
    free(l);
}

static bool kg__lite_alive(void *conn)
{
    (void)conn;
    return true;   /* a file does not hang up */
}

static int kg__lite_open(const char *spec, bool writer, void **conn, kg_error_t *err)
{
    kg__lite *l = calloc(1, sizeof *l);
    if (!l)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    l->writer = writer;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(spec, &l->db, flags, NULL);
    if (rc != SQLITE_OK) {
        kg_error_set(err, KG_EIO, "StoreError", "cannot open %s: %s", spec,
                     l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        kg__lite_close(l);
        return KG_EIO;
    }
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, KG__SQLITE_BUSY_MS);
    int64_t ignored;
    char mode[16] = "";
    sqlite3_stmt *st = NULL;
    /* The first statement reads the file: a file that is not a database,
     * or a corrupt header, shows here. */
    rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    int r = 0;
    if (rc != SQLITE_OK)
        r = kg__lite_err(l, rc, "open", err);
    else if (strcmp(mode, "wal") != 0)
        r = kg_error_set(err, KG_EIO, "StoreError", "cannot use WAL mode (journal is %s)", mode);
    if (r == 0 && writer)
        r = kg__lite_exec(l, "PRAGMA synchronous = NORMAL", "open", err);
    if (r == 0 && writer)
        r = kg__lite_migrate(l, err);
    if (r == 0 && writer)
        r = kg__lite_exec(l,
                          "PRAGMA journal_size_limit = 67108864; PRAGMA wal_autocheckpoint = 4000",
                          "open", err);
    if (r == 0 && writer)
        r = kg__lite_prepare(l, err);
    if (r == 0 && writer)
        kg__ckpt_start(l, spec);
    if (r == 0 && !writer) {
        r = kg__lite_pragma_int(l, "PRAGMA user_version", &ignored, err);
        if (r == 0 && ignored != KG__SQLITE_SCHEMA)
            r = kg_error_set(err, KG_EIO, "StoreError", "schema version %lld, expected %d",
                             (long long)ignored, KG__SQLITE_SCHEMA);
        if (r == 0)
            r = kg__lite_exec(l, "PRAGMA query_only = 1", "open", err);
        sqlite3_progress_handler(l->db, 1000, kg__lite_progress, l);
    }
    if (r) {
        kg__lite_close(l);
        return r;
    }
    *conn = l;
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

static int kg__lite_begin(void *c, kg_error_t *err)
{
    return kg__lite_exec(c, "BEGIN IMMEDIATE", "begin", err);
}

static int kg__lite_commit(void *c, kg_error_t *err)
{
    return kg__lite_exec(c, "COMMIT", "commit", err);
}

static void kg__lite_rollback(void *c)
{
    kg__lite *l = c;
    sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
    /* The cache may name runs this transaction created. */
    kg__cache_clear(l);
}

static int kg__lite_ensure_runs(void *c, kg__srun *runs, size_t n, kg_error_t *err)
{
    kg__lite *l = c;
    for (size_t i = 0; i < n; i++) {
        kg__srun *r = &runs[i];
        const kg__cached_run *cached = kg_map_get(&l->runs, r->run_id);
        if (cached) {
            r->rid = cached->rid;
            r->db_graph = strdup(cached->graph);
            continue;
        }
        sqlite3_stmt *st = l->st[KG__Q_RUN_INS];
        kg__bind_text(st, 1, r->run_id);
        int rc = kg__step_done(l, st, "insert run", err);
        if (rc)
            return rc;
        st = l->st[KG__Q_RUN_SEL];
        kg__bind_text(st, 1, r->run_id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            r->rid = sqlite3_column_int64(st, 0);
            r->db_graph = kg__col_text(st, 1);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (s != SQLITE_ROW)
            return kg__lite_err(l, s == SQLITE_DONE ? SQLITE_INTERNAL : s, "find run", err);
        /* Only runs whose graph is known are cached: the others still need
         * db_graph from the next batch's lookup. */
        if (r->db_graph)
            kg__cache_put(l, r);
    }
    return 0;
}

static int kg__lite_insert_events(void *c, kg__sev **ev, size_t n, kg_error_t *err)
{
    kg__lite *l = c;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        kg__sev *e = ev[i];
        /* Sorted by event_id: a repeat within the batch is next to its twin. */
        if (prev && strcmp(prev, e->event_id) == 0)
            continue;
        prev = e->event_id;
        sqlite3_stmt *st;
        if (e->rid) {
            st = l->st[KG__Q_EVENT];
            kg__bind_text(st, 1, e->event_id);
            sqlite3_bind_int64(st, 2, e->rid);
            sqlite3_bind_int64(st, 3, e->seq);
            sqlite3_bind_int64(st, 4, e->ts_ms);
            sqlite3_bind_int(st, 5, e->type);
            sqlite3_bind_text(st, 6, e->msg->data, (int)e->msg->len, SQLITE_STATIC);
        } else {
            st = l->st[KG__Q_LOOSE];
            kg__bind_text(st, 1, e->event_id);
            sqlite3_bind_int64(st, 2, e->ts_ms);
            sqlite3_bind_text(st, 3, e->msg->data, (int)e->msg->len, SQLITE_STATIC);
        }
        int rc = kg__step_done(l, st, "insert event", err);
        if (rc)
            return rc;
        e->inserted = sqlite3_changes(l->db) == 1;
    }
    return 0;
}

static int kg__lite_apply_runs(void *c, const kg__srun *runs, size_t n, kg_error_t *err)
{
    kg__lite *l = c;
    for (size_t i = 0; i < n; i++) {
        const kg__srun *r = &runs[i];
        if (!r->events)
            continue;
        sqlite3_stmt *st = l->st[KG__Q_RUN_UPD];
        sqlite3_bind_int64(st, 1, r->rid);
        kg__bind_ms(st, 2, r->min_ms);
        kg__bind_ms(st, 3, r->max_ms);
        kg__bind_ms(st, 4, r->ended_ms);
        sqlite3_bind_int64(st, 5, r->events);
        sqlite3_bind_int64(st, 6, r->errors);
        sqlite3_bind_int(st, 7, r->status < 0 ? 0 : r->status);
        kg__bind_real(st, 8, r->duration);
        kg__bind_text(st, 9, r->graph);
        kg__bind_text(st, 10, r->graph_type);
        kg__bind_text(st, 11, r->parent_id);
        kg__bind_text(st, 12, r->final_action);
        kg__bind_text(st, 13, r->error);
        kg__bind_text(st, 14, r->host);
        kg__bind_ms(st, 15, r->pid);
        kg__bind_text(st, 16, r->topology);
        sqlite3_bind_int64(st, 17, r->bytes);
        int rc = kg__step_done(l, st, "update run", err);
        if (rc == 0 && r->graph) {
            st = l->st[KG__Q_EXEC_GRAPH];
            sqlite3_bind_int64(st, 1, r->rid);
            kg__bind_text(st, 2, r->graph);
            rc = kg__step_done(l, st, "name executions", err);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int kg__lite_apply_execs(void *c, const kg__sexec *x, size_t n, kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = l->st[KG__Q_EXEC_UPS];
    for (size_t i = 0; i < n; i++) {
        const kg__sexec *e = &x[i];
        sqlite3_bind_int64(st, 1, e->rid);
        kg__bind_text(st, 2, e->corr);
        sqlite3_bind_int(st, 3, e->item);
        kg__bind_text(st, 4, e->node_id);
        kg__bind_text(st, 5, e->node);
        kg__bind_text(st, 6, e->graph);
        kg__bind_text(st, 7, e->node_type);
        sqlite3_bind_int(st, 8, e->status < 0 ? 0 : e->status);
        kg__bind_ms(st, 9, e->min_ms);
        kg__bind_ms(st, 10, e->end_ms);
        kg__bind_real(st, 11, e->duration);
        sqlite3_bind_int64(st, 12, e->retries);
        sqlite3_bind_int64(st, 13, e->events);
        sqlite3_bind_int64(st, 14, e->errors);
        kg__bind_text(st, 15, e->action);
        kg__bind_text(st, 16, e->error);
        kg__bind_text(st, 17, e->error_type);
        kg__bind_text(st, 18, e->phase);
        kg__bind_ms(st, 19, e->error ? e->err_ms : -1);
        int rc = kg__step_done(l, st, "upsert execution", err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

static int kg__lite_used_bytes(kg__lite *l, uint64_t *bytes, kg_error_t *err)
{
    int64_t pages = 0, freel = 0, size = 0;
    int rc;
    if ((rc = kg__lite_pragma_int(l, "PRAGMA page_count", &pages, err)) ||
        (rc = kg__lite_pragma_int(l, "PRAGMA freelist_count", &freel, err)) ||
        (rc = kg__lite_pragma_int(l, "PRAGMA page_size", &size, err)))
        return rc;
    *bytes = (uint64_t)(pages - freel) * (uint64_t)size;
    return 0;
}

static int kg__lite_size(void *c, uint64_t *bytes, kg_error_t *err)
{
    return kg__lite_used_bytes(c, bytes, err);
}

/* Delete up to *budget events of run `rid`, and the run itself once it has
 * none left.  *gone: the run was deleted. */
static int kg__lite_delete_run(kg__lite *l, int64_t rid, uint64_t *budget, uint64_t *events,
                               bool *gone, kg_error_t *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM kg_events WHERE id IN (SELECT id FROM kg_events WHERE rid = %lld "
             "LIMIT %llu)",
             (long long)rid, (unsigned long long)*budget);
    int rc = kg__lite_exec(l, sql, "retention", err);
    if (rc)
        return rc;
    uint64_t n = (uint64_t)sqlite3_changes(l->db);
    *events += n;
    *budget -= n < *budget ? n : *budget;
    *gone = false;
    if (*budget == 0)
        return 0;   /* maybe more of its events: the next step goes on */
    snprintf(sql, sizeof sql,
             "DELETE FROM kg_execs WHERE rid = %lld; DELETE FROM kg_runs WHERE rid = %lld",
             (long long)rid, (long long)rid);
    *gone = true;
    return kg__lite_exec(l, sql, "retention", err);
}

/* Oldest runs matching `where` (bound with ?1 = before_ms when >= 0), until
 * their estimated size (kg_runs.bytes) reaches `need_bytes` (0: no bound). */
static int kg__lite_delete_oldest(kg__lite *l, const char *where, int64_t before_ms,
                                  size_t max_runs, uint64_t need_bytes, uint64_t *budget,
                                  kg__retain_result *out, kg_error_t *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT rid, bytes FROM kg_runs %s ORDER BY started_ms LIMIT %zu",
             where, max_runs);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return kg__lite_err(l, rc, "retention", err);
    if (before_ms >= 0)
        sqlite3_bind_int64(st, 1, before_ms);
    int64_t rids[128];
    size_t n = 0;
    uint64_t freed = 0;
    while (n < sizeof rids / sizeof rids[0] && (!need_bytes || freed < need_bytes) &&
           (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rids[n++] = sqlite3_column_int64(st, 0);
        freed += (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (rc == SQLITE_ROW || rc == SQLITE_OK)
        rc = SQLITE_DONE;   /* stopped early on purpose */
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return kg__lite_err(l, rc, "retention", err);
    int r = 0;
    for (size_t i = 0; i < n && *budget && r == 0; i++) {
        bool gone = false;
        r = kg__lite_delete_run(l, rids[i], budget, &out->events, &gone, err);
        out->runs += gone;
    }
    if (n == max_runs || !*budget)
        out->more = true;
    return r;
}

static int kg__lite_retain(void *c, const kg__retain *r, kg__retain_result *out, kg_error_t *err)
{
    kg__lite *l = c;
    memset(out, 0, sizeof *out);
    uint64_t budget = KG__RETAIN_EVENTS;
    int rc = kg__lite_exec(l, "BEGIN IMMEDIATE", "retention", err);
    if (rc)
        return rc;
    if (r->before_ms >= 0) {
        rc = kg__lite_delete_oldest(l, "WHERE started_ms < ?1 AND last_ms < ?1", r->before_ms,
                                    r->max_runs, 0, &budget, out, err);
        if (rc == 0) {
            char sql[256];
            snprintf(sql, sizeof sql,
                     "DELETE FROM kg_loose WHERE id IN (SELECT id FROM kg_loose ORDER BY id "
                     "LIMIT 5000) AND ts_ms < %lld",
                     (long long)r->before_ms);
            rc = kg__lite_exec(l, sql, "retention", err);
            out->events += (uint64_t)sqlite3_changes(l->db);
            if (sqlite3_changes(l->db) == 5000)
                out->more = true;
        }
    }
    uint64_t used = 0;
    if (rc == 0 && r->max_bytes && (rc = kg__lite_used_bytes(l, &used, err)) == 0 &&
        used > r->max_bytes && budget) {
        /* Over the size: the oldest first, runs or loose events. */
        int64_t oldest_run = -1, oldest_loose = -1;
        kg__lite_pragma_int(l, "SELECT coalesce(min(started_ms), -1) FROM kg_runs", &oldest_run,
                            err);
        kg__lite_pragma_int(l, "SELECT coalesce((SELECT ts_ms FROM kg_loose ORDER BY id LIMIT 1),"
                               " -1)",
                            &oldest_loose, err);
        if (oldest_loose >= 0 && (oldest_run < 0 || oldest_loose <= oldest_run)) {
            rc = kg__lite_exec(l, "DELETE FROM kg_loose WHERE id IN (SELECT id FROM kg_loose "
                                  "ORDER BY id LIMIT 5000)",
                               "retention", err);
            out->events += (uint64_t)sqlite3_changes(l->db);
        } else if (oldest_run >= 0) {
            rc = kg__lite_delete_oldest(l, "", -1, r->max_runs, used - r->max_bytes, &budget,
                                        out, err);
        }
        out->more = true;   /* measured again after the commit */
    }
    if (rc == 0)
        rc = kg__lite_exec(l, "COMMIT", "retention", err);
    if (rc) {
        kg__lite_rollback(l);
        return rc;
    }
    if (out->runs)
        kg__cache_clear(l);   /* cached rids may be gone */
    char vac[64];
    snprintf(vac, sizeof vac, "PRAGMA incremental_vacuum(%d)", KG__VACUUM_PAGES);
    if ((rc = kg__lite_exec(l, vac, "retention", err)) != 0)
        return rc;
    int64_t freel = 0;
    kg__lite_pragma_int(l, "PRAGMA freelist_count", &freel, err);
    if (freel > 0)
        out->more = true;
    return kg__lite_used_bytes(l, &out->bytes, err);
}

/* ---- queries --------------------------------------------------------------------------------- */

static int kg__lite_query(kg__lite *l, const char *sql, sqlite3_stmt **st, kg_error_t *err)
{
    l->deadline = kg_clock_mono() + KG__SQLITE_QUERY_S;
    int rc = sqlite3_prepare_v2(l->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : kg__lite_err(l, rc, "query", err);
}

/* Step through the rows, calling `row` for each; `row` returns non-zero to
 * stop (that value is returned: > 0 a stop, < 0 an error).  0 at the end. */
static int kg__lite_rows(kg__lite *l, sqlite3_stmt *st, int (*row)(sqlite3_stmt *, void *),
                         void *ud, kg_error_t *err)
{
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = row(st, ud);
    if (!stop && rc != SQLITE_DONE)
        stop = kg__lite_err(l, rc, "query", err);
    sqlite3_finalize(st);
    l->deadline = 0;
    return stop;
}

#define KG__RUN_COLS                                                                        \
    "r.rid, r.run_id, r.parent_id, r.graph, r.graph_type, r.status, r.started_ms, "         \
    "r.last_ms, r.ended_ms, r.duration, r.final_action, r.error, r.events, r.errors, "      \
    "r.host, r.pid, (SELECT count(*) FROM kg_execs x WHERE x.rid = r.rid)"

static void kg__run_from_row(sqlite3_stmt *st, kg__run_row *r)
{
    memset(r, 0, sizeof *r);
    r->rid = sqlite3_column_int64(st, 0);
    r->run_id = kg__col_text(st, 1);
    r->parent_id = kg__col_text(st, 2);
    r->graph = kg__col_text(st, 3);
    r->graph_type = kg__col_text(st, 4);
    r->status = sqlite3_column_int(st, 5);
    r->started_ms = kg__col_ms(st, 6);
    r->last_ms = kg__col_ms(st, 7);
    r->ended_ms = kg__col_ms(st, 8);
    r->duration = kg__col_real(st, 9);
    r->final_action = kg__col_text(st, 10);
    r->error = kg__col_text(st, 11);
    r->events = sqlite3_column_int64(st, 12);
    r->errors = sqlite3_column_int64(st, 13);
    r->host = kg__col_text(st, 14);
    r->pid = kg__col_ms(st, 15);
    r->executions = sqlite3_column_int64(st, 16);
}

typedef struct kg__lite_cb {
    kg__run_cb run;
    kg__exec_cb exec;
    kg__text_cb text;
    kg__point_cb point;
    void *ud;
} kg__lite_cb;

static int kg__row_run(sqlite3_stmt *st, void *ud)
{
    kg__lite_cb *cb = ud;
    kg__run_row r;
    kg__run_from_row(st, &r);
    int rc = cb->run(cb->ud, &r);
    kg__run_row_clear(&r);
    return rc;
}

/* Upper bound for a prefix range: the prefix with its last byte + 1 (a
 * prefix of 0xff bytes has none: -1). */
static int kg__prefix_end(const char *prefix, char *out, size_t outlen)
{
    size_t n = strlen(prefix);
    if (n == 0 || n >= outlen)
        return -1;
    memcpy(out, prefix, n + 1);
    while (n > 0 && (unsigned char)out[n - 1] == 0xff)
        out[--n] = '\0';
    if (n == 0)
        return -1;
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    return 0;
}

static int kg__lite_runs(void *c, const kg__runs_query *q, kg__run_cb cb, void *ud,
                         kg_error_t *err)
{
    kg__lite *l = c;
    kg_buf sql;
    kg_buf_init(&sql);
    kg_buf_puts(&sql, "SELECT " KG__RUN_COLS " FROM kg_runs r WHERE 1");
    if (!q->nested)
        kg_buf_puts(&sql, " AND r.parent_id IS NULL");
    if (q->graph)
        kg_buf_puts(&sql, " AND r.graph = ?1");
    char end[KG__ID_MAX + 2];
    bool has_end = q->prefix && kg__prefix_end(q->prefix, end, sizeof end) == 0;
    if (q->prefix)
        kg_buf_puts(&sql, has_end ? " AND r.run_id >= ?2 AND r.run_id < ?3" : " AND r.run_id >= ?2");
    if (q->since_ms >= 0)
        kg_buf_puts(&sql, " AND r.started_ms >= ?4");
    if (q->until_ms >= 0)
        kg_buf_puts(&sql, " AND r.started_ms < ?5");
    if (q->status_mask) {
        const char *sep = " AND (";
        static const char *const conds[] = {
            [KG__ST_RUNNING] = "(r.status = 0 AND r.last_ms >= ?6)",
            [KG__ST_SUCCESS] = "r.status = 1",
            [KG__ST_FAILED] = "r.status = 2",
            [KG__STALE_BIT] = "(r.status = 0 AND r.last_ms < ?6)",
        };
        for (int b = 0; b < 4; b++)
            if (q->status_mask & (1u << b)) {
                kg_buf_puts(&sql, sep);
                kg_buf_puts(&sql, conds[b]);
                sep = " OR ";
            }
        kg_buf_puts(&sql, ")");
    }
    if (q->cursor)
        kg_buf_puts(&sql, " AND (r.started_ms < ?7 OR (r.started_ms = ?7 AND r.rid < ?8))");
    kg_buf_puts(&sql, " ORDER BY r.started_ms DESC, r.rid DESC LIMIT ?9");
    if (sql.failed) {
        kg_buf_free(&sql);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, sql.data, &st, err);
    kg_buf_free(&sql);
    if (rc)
        return rc;
    kg__bind_text(st, 1, q->graph);
    kg__bind_text(st, 2, q->prefix);
    if (has_end)
        sqlite3_bind_text(st, 3, end, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, q->since_ms);
    sqlite3_bind_int64(st, 5, q->until_ms);
    sqlite3_bind_int64(st, 6, q->stale_before_ms);
    sqlite3_bind_int64(st, 7, q->cursor_ms);
    sqlite3_bind_int64(st, 8, q->cursor_rid);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)q->limit);
    kg__lite_cb k = {.run = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_run, &k, err);
}

static int kg__lite_run_get(void *c, const char *run_id, kg__run_row *out, kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, "SELECT " KG__RUN_COLS ", r.topology FROM kg_runs r WHERE "
                               "r.run_id = ?1",
                            &st, err);
    if (rc)
        return rc;
    kg__bind_text(st, 1, run_id);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        kg__run_from_row(st, out);
        out->topology = kg__col_text(st, 17);
    }
    sqlite3_finalize(st);
    l->deadline = 0;
    if (s == SQLITE_ROW)
        return 0;
    if (s == SQLITE_DONE)
        return kg_error_set(err, KG_ENOTFOUND, "NotFound", "no such run");
    return kg__lite_err(l, s, "query", err);
}

static int kg__lite_children(void *c, const char *run_id, size_t limit, kg__run_cb cb, void *ud,
                             kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, "SELECT " KG__RUN_COLS " FROM kg_runs r WHERE r.parent_id = ?1 "
                               "ORDER BY r.started_ms DESC, r.rid DESC LIMIT ?2",
                            &st, err);
    if (rc)
        return rc;
    kg__bind_text(st, 1, run_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    kg__lite_cb k = {.run = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_run, &k, err);
}

static int kg__row_exec(sqlite3_stmt *st, void *ud)
{
    kg__lite_cb *cb = ud;
    kg__exec_row x = {
        .run_id = kg__col_text(st, 0),
        .corr = kg__col_text(st, 1),
        .item = sqlite3_column_int(st, 2),
        .node_id = kg__col_text(st, 3),
        .node = kg__col_text(st, 4),
        .node_type = kg__col_text(st, 5),
        .status = sqlite3_column_int(st, 6),
        .started_ms = kg__col_ms(st, 7),
        .ended_ms = kg__col_ms(st, 8),
        .duration = kg__col_real(st, 9),
        .retries = sqlite3_column_int64(st, 10),
        .events = sqlite3_column_int64(st, 11),
        .errors = sqlite3_column_int64(st, 12),
        .action = kg__col_text(st, 13),
        .error = kg__col_text(st, 14),
        .error_type = kg__col_text(st, 15),
        .phase = kg__col_text(st, 16),
    };
    int rc = cb->exec(cb->ud, &x);
    kg__exec_row_clear(&x);
    return rc;
}

static int kg__lite_execs(void *c, int64_t rid, size_t limit, kg__exec_cb cb, void *ud,
                          kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(
        l,
        "WITH RECURSIVE tree(rid, run_id, depth) AS ("
        " SELECT rid, run_id, 0 FROM kg_runs WHERE rid = ?1"
        " UNION ALL SELECT r.rid, r.run_id, t.depth + 1 FROM kg_runs r JOIN tree t"
        " ON r.parent_id = t.run_id WHERE t.depth < 32)"
        " SELECT t.run_id, x.corr, x.item, x.node_id, x.node, x.node_type, x.status,"
        " x.started_ms, x.ended_ms, x.duration, x.retries, x.events, x.errors, x.action,"
        " x.error, x.error_type, x.phase FROM tree t JOIN kg_execs x ON x.rid = t.rid"
        " ORDER BY x.started_ms, x.xid LIMIT ?2",
        &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    kg__lite_cb k = {.exec = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_exec, &k, err);
}

static int kg__row_text(sqlite3_stmt *st, void *ud)
{
    kg__lite_cb *cb = ud;
    return cb->text(cb->ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                    (const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2));
}

static int kg__lite_events(void *c, int64_t rid, int64_t after_seq, int64_t after_id,
                           size_t limit, bool errors_only, kg__text_cb cb, void *ud,
                           kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, errors_only
                                   ? "SELECT seq, id, body FROM kg_events WHERE rid = ?1 AND "
                                     "etype = ?4 AND (seq > ?2 OR (seq = ?2 AND id > ?3)) "
                                     "ORDER BY seq, id LIMIT ?5"
                                   : "SELECT seq, id, body FROM kg_events WHERE rid = ?1 AND "
                                     "(seq > ?2 OR (seq = ?2 AND id > ?3)) ORDER BY seq, id "
                                     "LIMIT ?5",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, after_seq);
    sqlite3_bind_int64(st, 3, after_id);
    if (errors_only)
        sqlite3_bind_int(st, 4, KG_TYPE_ERROR);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
    kg__lite_cb k = {.text = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_text, &k, err);
}

static int kg__row_point(sqlite3_stmt *st, void *ud)
{
    kg__lite_cb *cb = ud;
    return cb->point(cb->ud, (const char *)sqlite3_column_text(st, 0), kg__col_ms(st, 1),
                     kg__col_real(st, 2), sqlite3_column_int(st, 3));
}

static int kg__lite_graph_points(void *c, int64_t since_ms, size_t limit, kg__point_cb cb,
                                 void *ud, kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, "SELECT coalesce(graph, ''), started_ms, duration, status FROM "
                               "kg_runs WHERE parent_id IS NULL AND started_ms >= ?1 "
                               "ORDER BY started_ms DESC LIMIT ?2",
                            &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, since_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    kg__lite_cb k = {.point = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_point, &k, err);
}

static int kg__lite_node_points(void *c, const char *graph, const char *node, int64_t since_ms,
                                int64_t until_ms, size_t limit, kg__point_cb cb, void *ud,
                                kg_error_t *err)
{
    kg__lite *l = c;
    sqlite3_stmt *st = NULL;
    int rc = kg__lite_query(l, "SELECT graph, started_ms, duration, status FROM kg_execs "
                               "WHERE graph = ?1 AND node = ?2 AND started_ms >= ?3 AND "
                               "started_ms < ?4 ORDER BY started_ms DESC LIMIT ?5",
                            &st, err);
    if (rc)
        return rc;
    kg__bind_text(st, 1, graph);
    kg__bind_text(st, 2, node);
    sqlite3_bind_int64(st, 3, since_ms >= 0 ? since_ms : INT64_MIN);
    sqlite3_bind_int64(st, 4, until_ms >= 0 ? until_ms : INT64_MAX);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
    kg__lite_cb k = {.point = cb, .ud = ud};
    return kg__lite_rows(l, st, kg__row_point, &k, err);
}

const kg__store_ops kg__store_sqlite_ops = {
    .name = "sqlite",
    .open = kg__lite_open,
    .close = kg__lite_close,
    .alive = kg__lite_alive,
    .begin = kg__lite_begin,
    .commit = kg__lite_commit,
    .rollback = kg__lite_rollback,
    .ensure_runs = kg__lite_ensure_runs,
    .insert_events = kg__lite_insert_events,
    .apply_runs = kg__lite_apply_runs,
    .apply_execs = kg__lite_apply_execs,
    .retain = kg__lite_retain,
    .size = kg__lite_size,
    .runs = kg__lite_runs,
    .run_get = kg__lite_run_get,
    .children = kg__lite_children,
    .execs = kg__lite_execs,
    .events = kg__lite_events,
    .graph_points = kg__lite_graph_points,
    .node_points = kg__lite_node_points,
};
