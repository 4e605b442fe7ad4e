/* dashboard/store_pg.c - the PostgreSQL engine of the run history (store.h), libpq.
 *
 * For several dashboards and one history: each dashboard writes the events
 * it receives, and two dashboards reading one Redis receive the same
 * events.  So every write is a merge: events go in with ON CONFLICT
 * (event_id) DO NOTHING RETURNING event_id, and only what came back counts
 * in the run and node-execution summaries, whose updates add counts and
 * take minima, maxima and the strongest status (order does not matter).  A
 * batch is a handful of statements whatever its size: each column travels
 * as one array parameter and unnest() turns them back into rows, in the
 * batch's order (events by event_id, runs by run_id, executions by key), so
 * concurrent writers mostly take row locks in the same order; a deadlock
 * the server still detects comes back as KG_EBUSY and the batch is retried.
 *
 * The schema (the same tables as SQLite, store_sqlite.c) is created or
 * migrated under a transaction-level advisory lock, so dashboards starting
 * together do not race; its version is in kg_meta.  retain_mb is measured
 * as the event text plus a fixed overhead per event (kg_runs.bytes; the
 * server's files are VACUUM's business, not ours). */
#ifdef KG_HAVE_LIBPQ

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "kaygraph/monitor.h"
#include "store.h"

#define KG__PG_SCHEMA 1
#define KG__PG_LOCK 0x6b67686973ll   /* advisory lock key for migrations ("kghis") */
#define KG__PG_RETAIN_EVENTS 20000
#define KG__PG_LOOSE_BYTES 300        /* size estimate of an event of no run */

static const char *const kg__pg_migrations[KG__PG_SCHEMA] = {
    "CREATE TABLE kg_runs("
    " rid BIGSERIAL PRIMARY KEY,"
    " run_id TEXT NOT NULL UNIQUE,"
    " parent_id TEXT, graph TEXT, graph_type TEXT, topology TEXT,"
    " status SMALLINT NOT NULL DEFAULT 0,"
    " started_ms BIGINT, last_ms BIGINT, ended_ms BIGINT, duration DOUBLE PRECISION,"
    " final_action TEXT, error TEXT,"
    " events BIGINT NOT NULL DEFAULT 0, errors BIGINT NOT NULL DEFAULT 0,"
    " bytes BIGINT NOT NULL DEFAULT 0, host TEXT, pid BIGINT);"
    "CREATE INDEX kg_runs_started ON kg_runs(started_ms, rid);"
    "CREATE INDEX kg_runs_graph ON kg_runs(graph, started_ms, rid);"
    "CREATE INDEX kg_runs_status ON kg_runs(status, started_ms, rid);"
    "CREATE INDEX kg_runs_parent ON kg_runs(parent_id) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX kg_runs_stats ON kg_runs(started_ms, graph, status, duration, parent_id)"
    " WHERE parent_id IS NULL;"
    "CREATE TABLE kg_events("
    " id BIGSERIAL PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " rid BIGINT NOT NULL, seq BIGINT NOT NULL, ts_ms BIGINT NOT NULL,"
    " etype SMALLINT NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX kg_events_run ON kg_events(rid, seq, id);"
    "CREATE TABLE kg_loose("
    " id BIGSERIAL PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE,"
    " ts_ms BIGINT NOT NULL, body TEXT NOT NULL);"
    "CREATE TABLE kg_execs("
    " xid BIGSERIAL PRIMARY KEY,"
    " rid BIGINT NOT NULL, corr TEXT NOT NULL, item INTEGER NOT NULL,"
    " node_id TEXT, node TEXT, graph TEXT, node_type TEXT,"
    " status SMALLINT NOT NULL DEFAULT 0,"
    " started_ms BIGINT, ended_ms BIGINT, duration DOUBLE PRECISION,"
    " retries BIGINT NOT NULL DEFAULT 0, events BIGINT NOT NULL DEFAULT 0,"
    " errors BIGINT NOT NULL DEFAULT 0,"
    " action TEXT, error TEXT, error_type TEXT, phase TEXT, err_ms BIGINT,"
    " UNIQUE(rid, corr, item));"
    "CREATE INDEX kg_execs_node ON kg_execs(graph, node, started_ms, duration, status);",
};

typedef struct kg__pg {
    PGconn *conn;
    bool writer;
} kg__pg;

/* ---- errors and statements ---------------------------------------------------------------- */

/* libpq's messages end with a newline and may span lines: keep the first. */
static void kg__pg_msg(const char *m, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", m && *m ? m : "unknown error");
    out[strcspn(out, "\n")] = '\0';
}

static int kg__pg_fail(kg__pg *p, PGresult *res, const char *what, kg_error_t *err)
{
    char msg[KG_ERROR_MESSAGE_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    kg__pg_msg(res ? PQresultErrorMessage(res) : PQerrorMessage(p->conn), msg, sizeof msg);
    int code = KG_EIO;
    if (PQstatus(p->conn) != CONNECTION_OK)
        code = KG_ECONNECT;
    else if (state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
        code = KG_EBUSY;   /* deadlock / serialization: retry the batch */
    else if (state && strcmp(state, "57014") == 0)
        code = KG_ETIMEOUT;
    PQclear(res);
    return kg_error_set(err, code, "StoreError", "%s: %s", what, msg);
}

/* Run `sql` with text parameters; *out gets the result when wanted (tuples
 * or command).  0 or an error. */
static int kg__pg_run(kg__pg *p, const char *sql, int n, const char *const *params,
                      PGresult **out, const char *what, kg_error_t *err)
{
    PGresult *res = PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return kg__pg_fail(p, res, what, err);
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int kg__pg_exec(kg__pg *p, const char *sql, const char *what, kg_error_t *err)
{
    PGresult *res = PQexec(p->conn, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return kg__pg_fail(p, res, what, err);
    PQclear(res);
    return 0;
}

/* ---- array parameters --------------------------------------------------------------------- */

/* A PostgreSQL array literal built element by element: {"a","b",NULL}. */
typedef struct kg__arr {
    kg_buf sb;
    size_t n;
} kg__arr;

static void kg__arr_init(kg__arr *a)
{
    kg_buf_init(&a->sb);
    kg_buf_puts(&a->sb, "{");
    a->n = 0;
}

static void kg__arr_sep(kg__arr *a)
{
    if (a->n++)
        kg_buf_puts(&a->sb, ",");
}

static void kg__arr_text(kg__arr *a, const char *s, size_t len)
{
    kg__arr_sep(a);
    if (!s) {
        kg_buf_puts(&a->sb, "NULL");
        return;
    }
    kg_buf_reserve(&a->sb, len + 2);
    kg_buf_puts(&a->sb, "\"");
    const char *start = s;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            kg_buf_append(&a->sb, start, (size_t)(s + i - start));
            kg_buf_append(&a->sb, "\\", 1);
            start = s + i;
        }
    }
    kg_buf_append(&a->sb, start, (size_t)(s + len - start));
    kg_buf_puts(&a->sb, "\"");
}

static void kg__arr_str(kg__arr *a, const char *s)
{
    kg__arr_text(a, s, s ? strlen(s) : 0);
}

static void kg__arr_int(kg__arr *a, int64_t v, bool null)
{
    kg__arr_sep(a);
    if (null)
        kg_buf_puts(&a->sb, "NULL");
    else
        kg_buf_printf(&a->sb, "%lld", (long long)v);
}

static void kg__arr_ms(kg__arr *a, int64_t v)
{
    kg__arr_int(a, v, v < 0);
}

static void kg__arr_real(kg__arr *a, double v)
{
    kg__arr_sep(a);
    if (isnan(v))
        kg_buf_puts(&a->sb, "NULL");
    else
        kg_buf_printf(&a->sb, "%.17g", v);
}

/* Close the arrays and run `sql` with them as parameters $1..$n. */
static int kg__arr_run(kg__pg *p, const char *sql, kg__arr *arrs, int n, PGresult **out,
                       const char *what, kg_error_t *err)
{
    const char *params[24];
    bool oom = false;
    for (int i = 0; i < n; i++) {
        kg_buf_puts(&arrs[i].sb, "}");
        oom |= arrs[i].sb.failed;
        params[i] = arrs[i].sb.data;
    }
    int rc = oom ? kg_error_set(err, KG_ENOMEM, NULL, "out of memory")
                 : kg__pg_run(p, sql, n, params, out, what, err);
    for (int i = 0; i < n; i++)
        kg_buf_free(&arrs[i].sb);
    return rc;
}

/* ---- open, schema --------------------------------------------------------------------------- */

static int kg__pg_migrate(kg__pg *p, kg_error_t *err)
{
    int rc = kg__pg_exec(p, "BEGIN", "migrate", err);
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", KG__PG_LOCK);
    PGresult *res = NULL;
    if (rc == 0)
        rc = kg__pg_exec(p, lock, "migrate", err);
    if (rc == 0)
        rc = kg__pg_exec(p, "CREATE TABLE IF NOT EXISTS kg_meta(key TEXT PRIMARY KEY, "
                            "value TEXT NOT NULL)",
                         "migrate", err);
    if (rc == 0)
        rc = kg__pg_run(p, "SELECT value FROM kg_meta WHERE key = 'schema_version'", 0, NULL,
                        &res, "migrate", err);
    long version = 0;
    if (rc == 0 && PQntuples(res) == 1)
        version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (rc == 0 && version > KG__PG_SCHEMA)
        rc = kg_error_set(err, KG_EUNSUPPORTED, "StoreError",
                          "schema version %ld is newer than this build knows (%d)", version,
                          KG__PG_SCHEMA);
    for (long v = version; rc == 0 && v < KG__PG_SCHEMA; v++) {
        char bump[160];
        snprintf(bump, sizeof bump,
                 "INSERT INTO kg_meta VALUES('schema_version', '%ld') ON CONFLICT(key) DO "
                 "UPDATE SET value = EXCLUDED.value",
                 v + 1);
        if ((rc = kg__pg_exec(p, kg__pg_migrations[v], "migrate", err)) == 0)
            rc = kg__pg_exec(p, bump, "migrate", err);
    }
    if (rc == 0)
        return kg__pg_exec(p, "COMMIT", "migrate", err);
    PQclear(PQexec(p->conn, "ROLLBACK"));
    return rc;
}

static void kg__pg_close(void *conn)
{
    kg__pg *p = conn;
    if (!p)
        return;
    PQfinish(p->conn);
    free(p);
}

static bool kg__pg_alive(void *conn)
{
    kg__pg *p = conn;
    return p && PQstatus(p->conn) == CONNECTION_OK;
}

static int kg__pg_open(const char *spec, bool writer, void **conn, kg_error_t *err)
{
    kg__pg *p = calloc(1, sizeof *p);
    if (!p)
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    p->writer = writer;
    p->conn = PQconnectdb(spec);
    int rc = 0;
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        char msg[KG_ERROR_MESSAGE_MAX];
        kg__pg_msg(p->conn ? PQerrorMessage(p->conn) : "out of memory", msg, sizeof msg);
        rc = kg_error_set(err, KG_ECONNECT, "StoreError", "cannot connect to PostgreSQL: %s",
                          msg);
    }
    /* Readers give up on a runaway query; the writer's statements are short. */
    if (rc == 0)
        rc = kg__pg_exec(p, writer ? "SET statement_timeout = '60s'"
                                   : "SET statement_timeout = '5s'",
                         "open", err);
    if (rc == 0)
        rc = kg__pg_exec(p, "SET client_min_messages = warning", "open", err);
    if (rc == 0 && writer)
        rc = kg__pg_migrate(p, err);
    if (rc == 0 && !writer) {
        PGresult *res = NULL;
        rc = kg__pg_run(p, "SELECT value FROM kg_meta WHERE key = 'schema_version'", 0, NULL,
                        &res, "open", err);
        if (rc == 0 && (PQntuples(res) != 1 || atol(PQgetvalue(res, 0, 0)) != KG__PG_SCHEMA))
            rc = kg_error_set(err, KG_EIO, "StoreError", "schema version is not %d",
                              KG__PG_SCHEMA);
        PQclear(res);
    }
    if (rc) {
        kg__pg_close(p);
        return rc;
    }
    *conn = p;
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------------- */

static int kg__pg_begin(void *c, kg_error_t *err)
{
    return kg__pg_exec(c, "BEGIN", "begin", err);
}

static int kg__pg_commit(void *c, kg_error_t *err)
{
    return kg__pg_exec(c, "COMMIT", "commit", err);
}

static void kg__pg_rollback(void *c)
{
    kg__pg *p = c;
    if (PQstatus(p->conn) == CONNECTION_OK)
        PQclear(PQexec(p->conn, "ROLLBACK"));
}

static int kg__srun_id_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const kg__srun *)elem)->run_id);
}

static int kg__pg_ensure_runs(void *c, kg__srun *runs, size_t n, kg_error_t *err)
{
    kg__pg *p = c;
    if (!n)
        return 0;
    kg__arr ids;
    kg__arr_init(&ids);
    for (size_t i = 0; i < n; i++)
        kg__arr_str(&ids, runs[i].run_id);
    kg_buf_puts(&ids.sb, "}");
    if (ids.sb.failed) {
        kg_buf_free(&ids.sb);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    const char *params[1] = {ids.sb.data};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, "INSERT INTO kg_runs(run_id) SELECT unnest($1::text[]) "
                           "ON CONFLICT (run_id) DO NOTHING",
                        1, params, NULL, "insert runs", err);
    if (rc == 0)
        rc = kg__pg_run(p, "SELECT run_id, rid, graph FROM kg_runs WHERE run_id = ANY($1::text[])",
                        1, params, &res, "find runs", err);
    kg_buf_free(&ids.sb);
    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        kg__srun *r = bsearch(PQgetvalue(res, i, 0), runs, n, sizeof *runs, kg__srun_id_cmp);
        if (!r)
            continue;
        r->rid = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        if (!PQgetisnull(res, i, 2))
            r->db_graph = strdup(PQgetvalue(res, i, 2));
    }
    PQclear(res);
    for (size_t i = 0; i < n; i++)
        if (!runs[i].rid)
            return kg_error_set(err, KG_EIO, "StoreError", "run %s vanished while written",
                                runs[i].run_id);
    return 0;
}

static int kg__sev_id_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(kg__sev *const *)elem)->event_id);
}

/* Mark the events the server reported as inserted (their event_ids). */
static void kg__pg_mark(PGresult *res, kg__sev **ev, size_t n)
{
    for (int i = 0; i < PQntuples(res); i++) {
        kg__sev **e = bsearch(PQgetvalue(res, i, 0), ev, n, sizeof *ev, kg__sev_id_cmp);
        /* With twins in the batch bsearch may land on either; mark the first. */
        while (e && e > ev && strcmp(e[-1]->event_id, (*e)->event_id) == 0)
            e--;
        if (e)
            (*e)->inserted = true;
    }
}

static int kg__pg_insert_events(void *c, kg__sev **ev, size_t n, kg_error_t *err)
{
    kg__pg *p = c;
    kg__arr a[6], l[3];
    for (int i = 0; i < 6; i++)
        kg__arr_init(&a[i]);
    for (int i = 0; i < 3; i++)
        kg__arr_init(&l[i]);
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        kg__sev *e = ev[i];
        if (prev && strcmp(prev, e->event_id) == 0)
            continue;   /* a twin within the batch */
        prev = e->event_id;
        if (e->rid) {
            kg__arr_str(&a[0], e->event_id);
            kg__arr_int(&a[1], e->rid, false);
            kg__arr_int(&a[2], e->seq, false);
            kg__arr_int(&a[3], e->ts_ms, false);
            kg__arr_int(&a[4], e->type, false);
            kg__arr_text(&a[5], e->msg->data, e->msg->len);
        } else {
            kg__arr_str(&l[0], e->event_id);
            kg__arr_int(&l[1], e->ts_ms, false);
            kg__arr_text(&l[2], e->msg->data, e->msg->len);
        }
    }
    bool loose = l[0].n > 0, run = a[0].n > 0;
    PGresult *res = NULL;
    int rc = 0;
    if (run) {
        rc = kg__arr_run(p, "INSERT INTO kg_events(event_id, rid, seq, ts_ms, etype, body) "
                            "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], "
                            "$4::bigint[], $5::smallint[], $6::text[]) "
                            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                         a, 6, &res, "insert events", err);
        if (rc == 0) {
            kg__pg_mark(res, ev, n);
            PQclear(res);
        }
    } else {
        for (int i = 0; i < 6; i++)
            kg_buf_free(&a[i].sb);
    }
    if (loose && rc == 0) {
        rc = kg__arr_run(p, "INSERT INTO kg_loose(event_id, ts_ms, body) SELECT * FROM "
                            "unnest($1::text[], $2::bigint[], $3::text[]) "
                            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                         l, 3, &res, "insert events", err);
        if (rc == 0) {
            kg__pg_mark(res, ev, n);
            PQclear(res);
        }
    } else {
        for (int i = 0; i < 3; i++)
            kg_buf_free(&l[i].sb);
    }
    return rc;
}

static int kg__pg_apply_runs(void *c, const kg__srun *runs, size_t n, kg_error_t *err)
{
    kg__pg *p = c;
    kg__arr a[17], g[2];
    for (int i = 0; i < 17; i++)
        kg__arr_init(&a[i]);
    for (int i = 0; i < 2; i++)
        kg__arr_init(&g[i]);
    for (size_t i = 0; i < n; i++) {
        const kg__srun *r = &runs[i];
        if (!r->events)
            continue;
        kg__arr_int(&a[0], r->rid, false);
        kg__arr_ms(&a[1], r->min_ms);
        kg__arr_ms(&a[2], r->max_ms);
        kg__arr_ms(&a[3], r->ended_ms);
        kg__arr_int(&a[4], r->events, false);
        kg__arr_int(&a[5], r->errors, false);
        kg__arr_int(&a[6], r->status < 0 ? 0 : r->status, false);
        kg__arr_real(&a[7], r->duration);
        kg__arr_str(&a[8], r->graph);
        kg__arr_str(&a[9], r->graph_type);
        kg__arr_str(&a[10], r->parent_id);
        kg__arr_str(&a[11], r->final_action);
        kg__arr_str(&a[12], r->error);
        kg__arr_str(&a[13], r->host);
        kg__arr_ms(&a[14], r->pid);
        kg__arr_str(&a[15], r->topology);
        kg__arr_int(&a[16], r->bytes, false);
        if (r->graph) {
            kg__arr_int(&g[0], r->rid, false);
            kg__arr_str(&g[1], r->graph);
        }
    }
    bool any = a[0].n > 0, named = g[0].n > 0;
    int rc = 0;
    /* Rows are locked in rid order first: two writers then wait for each
     * other instead of deadlocking. */
    if (any)
        rc = kg__arr_run(
            p,
            "WITH d AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], "
            "$4::bigint[], $5::bigint[], $6::bigint[], $7::smallint[], $8::float8[], $9::text[], "
            "$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], "
            "$16::text[], $17::bigint[]) AS d(rid, min_ms, max_ms, ended_ms, events, errors, "
            "status, duration, graph, graph_type, parent_id, final_action, error, host, pid, "
            "topology, bytes)), "
            "l AS (SELECT r.rid FROM kg_runs r WHERE r.rid IN (SELECT rid FROM d) ORDER BY r.rid "
            "FOR UPDATE) "
            "UPDATE kg_runs r SET started_ms = LEAST(r.started_ms, d.min_ms), "
            "last_ms = GREATEST(r.last_ms, d.max_ms), ended_ms = GREATEST(r.ended_ms, d.ended_ms), "
            "events = r.events + d.events, errors = r.errors + d.errors, "
            "status = GREATEST(r.status, d.status), duration = COALESCE(d.duration, r.duration), "
            "graph = COALESCE(r.graph, d.graph), graph_type = COALESCE(r.graph_type, d.graph_type), "
            "parent_id = COALESCE(r.parent_id, d.parent_id), "
            "final_action = COALESCE(d.final_action, r.final_action), "
            "error = COALESCE(d.error, r.error), host = COALESCE(r.host, d.host), "
            "pid = COALESCE(r.pid, d.pid), topology = COALESCE(r.topology, d.topology), "
            "bytes = r.bytes + d.bytes FROM d WHERE r.rid = d.rid AND r.rid IN (SELECT rid FROM l)",
            a, 17, NULL, "update runs", err);
    else
        for (int i = 0; i < 17; i++)
            kg_buf_free(&a[i].sb);
    if (named && rc == 0)
        rc = kg__arr_run(p,
                         "UPDATE kg_execs x SET graph = d.graph FROM unnest($1::bigint[], "
                         "$2::text[]) AS d(rid, graph) WHERE x.rid = d.rid AND x.graph IS NULL",
                         g, 2, NULL, "name executions", err);
    else
        for (int i = 0; i < 2; i++)
            kg_buf_free(&g[i].sb);
    return rc;
}

#define KG__PG_NEWER_ERROR                                                                    \
    "(EXCLUDED.err_ms IS NOT NULL AND (x.err_ms IS NULL OR EXCLUDED.err_ms > x.err_ms OR "    \
    "(EXCLUDED.err_ms = x.err_ms AND EXCLUDED.error > x.error)))"

static int kg__pg_apply_execs(void *c, const kg__sexec *x, size_t n, kg_error_t *err)
{
    kg__pg *p = c;
    if (!n)
        return 0;
    kg__arr a[19];
    for (int i = 0; i < 19; i++)
        kg__arr_init(&a[i]);
    for (size_t i = 0; i < n; i++) {
        const kg__sexec *e = &x[i];
        kg__arr_int(&a[0], e->rid, false);
        kg__arr_str(&a[1], e->corr);
        kg__arr_int(&a[2], e->item, false);
        kg__arr_str(&a[3], e->node_id);
        kg__arr_str(&a[4], e->node);
        kg__arr_str(&a[5], e->graph);
        kg__arr_str(&a[6], e->node_type);
        kg__arr_int(&a[7], e->status < 0 ? 0 : e->status, false);
        kg__arr_ms(&a[8], e->min_ms);
        kg__arr_ms(&a[9], e->end_ms);
        kg__arr_real(&a[10], e->duration);
        kg__arr_int(&a[11], e->retries, false);
        kg__arr_int(&a[12], e->events, false);
        kg__arr_int(&a[13], e->errors, false);
        kg__arr_str(&a[14], e->action);
        kg__arr_str(&a[15], e->error);
        kg__arr_str(&a[16], e->error_type);
        kg__arr_str(&a[17], e->phase);
        kg__arr_ms(&a[18], e->error ? e->err_ms : -1);
    }
    return kg__arr_run(
        p,
        "INSERT INTO kg_execs AS x(rid, corr, item, node_id, node, graph, node_type, status, "
        "started_ms, ended_ms, duration, retries, events, errors, action, error, error_type, "
        "phase, err_ms) SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], "
        "$5::text[], $6::text[], $7::text[], $8::smallint[], $9::bigint[], $10::bigint[], "
        "$11::float8[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::text[], "
        "$17::text[], $18::text[], $19::bigint[]) "
        "ON CONFLICT (rid, corr, item) DO UPDATE SET "
        "node_id = COALESCE(x.node_id, EXCLUDED.node_id), node = COALESCE(x.node, EXCLUDED.node), "
        "graph = COALESCE(x.graph, EXCLUDED.graph), "
        "node_type = COALESCE(x.node_type, EXCLUDED.node_type), "
        "status = GREATEST(x.status, EXCLUDED.status), "
        "started_ms = LEAST(x.started_ms, EXCLUDED.started_ms), "
        "ended_ms = GREATEST(x.ended_ms, EXCLUDED.ended_ms), "
        "duration = COALESCE(EXCLUDED.duration, x.duration), "
        "retries = x.retries + EXCLUDED.retries, events = x.events + EXCLUDED.events, "
        "errors = x.errors + EXCLUDED.errors, action = COALESCE(EXCLUDED.action, x.action), "
        "error = CASE WHEN " KG__PG_NEWER_ERROR " THEN EXCLUDED.error ELSE x.error END, "
        "error_type = CASE WHEN " KG__PG_NEWER_ERROR " THEN EXCLUDED.error_type ELSE x.error_type END, "
        "phase = CASE WHEN " KG__PG_NEWER_ERROR " THEN EXCLUDED.phase ELSE x.phase END, "
        "err_ms = CASE WHEN " KG__PG_NEWER_ERROR " THEN EXCLUDED.err_ms ELSE x.err_ms END",
        a, 19, NULL, "upsert executions", err);
}

/* ---- retention ------------------------------------------------------------------------------------ */

static int kg__pg_int(kg__pg *p, const char *sql, int n, const char *const *params, int64_t *out,
                      kg_error_t *err)
{
    PGresult *res = NULL;
    int rc = kg__pg_run(p, sql, n, params, &res, "query", err);
    if (rc)
        return rc;
    *out = PQntuples(res) && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                                                     : -1;
    PQclear(res);
    return 0;
}

static int kg__pg_size(void *c, uint64_t *bytes, kg_error_t *err)
{
    int64_t runs = 0, loose = 0;
    int rc = kg__pg_int(c, "SELECT coalesce(sum(bytes), 0) FROM kg_runs", 0, NULL, &runs, err);
    if (rc == 0)
        rc = kg__pg_int(c, "SELECT coalesce(max(id) - min(id) + 1, 0) FROM kg_loose", 0, NULL,
                        &loose, err);
    if (rc == 0)
        *bytes = (uint64_t)runs + (uint64_t)loose * KG__PG_LOOSE_BYTES;
    return rc;
}

static int kg__pg_delete_run(kg__pg *p, const char *rid, uint64_t *budget, kg__retain_result *out,
                             kg_error_t *err)
{
    char lim[32];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)*budget);
    const char *params[2] = {rid, lim};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, "DELETE FROM kg_events WHERE id IN (SELECT id FROM kg_events WHERE "
                           "rid = $1 LIMIT $2)",
                        2, params, &res, "retention", err);
    if (rc)
        return rc;
    uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    out->events += n;
    *budget -= n < *budget ? n : *budget;
    if (*budget == 0)
        return 0;
    if ((rc = kg__pg_run(p, "DELETE FROM kg_execs WHERE rid = $1", 1, params, NULL, "retention",
                         err)) == 0 &&
        (rc = kg__pg_run(p, "DELETE FROM kg_runs WHERE rid = $1", 1, params, NULL, "retention",
                         err)) == 0)
        out->runs++;
    return rc;
}

/* Oldest runs (all, or those idle since before_ms), until their estimated
 * size reaches `need_bytes` (0: no bound). */
static int kg__pg_delete_oldest(kg__pg *p, bool by_age, int64_t before_ms, size_t max_runs,
                                uint64_t need_bytes, uint64_t *budget, kg__retain_result *out,
                                kg_error_t *err)
{
    char b[32], lim[32];
    snprintf(b, sizeof b, "%lld", (long long)before_ms);
    snprintf(lim, sizeof lim, "%zu", max_runs);
    const char *params[2] = {lim, b};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, by_age ? "SELECT rid, bytes FROM kg_runs WHERE started_ms < $2 AND "
                                    "last_ms < $2 ORDER BY started_ms LIMIT $1"
                                  : "SELECT rid, bytes FROM kg_runs ORDER BY started_ms LIMIT $1",
                        by_age ? 2 : 1, params, &res, "retention", err);
    if (rc)
        return rc;
    int n = PQntuples(res);
    uint64_t freed = 0;
    for (int i = 0; i < n && *budget && rc == 0 && (!need_bytes || freed < need_bytes); i++) {
        freed += strtoull(PQgetvalue(res, i, 1), NULL, 10);
        rc = kg__pg_delete_run(p, PQgetvalue(res, i, 0), budget, out, err);
    }
    PQclear(res);
    if ((size_t)n == max_runs || !*budget)
        out->more = true;
    return rc;
}

static int kg__pg_retain(void *c, const kg__retain *r, kg__retain_result *out, kg_error_t *err)
{
    kg__pg *p = c;
    memset(out, 0, sizeof *out);
    uint64_t budget = KG__PG_RETAIN_EVENTS;
    int rc = kg__pg_exec(p, "BEGIN", "retention", err);
    if (rc == 0 && r->before_ms >= 0) {
        rc = kg__pg_delete_oldest(p, true, r->before_ms, r->max_runs, 0, &budget, out, err);
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)r->before_ms);
        const char *params[1] = {b};
        PGresult *res = NULL;
        if (rc == 0 &&
            (rc = kg__pg_run(p, "DELETE FROM kg_loose WHERE id IN (SELECT id FROM kg_loose "
                                "ORDER BY id LIMIT 5000) AND ts_ms < $1",
                             1, params, &res, "retention", err)) == 0) {
            uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
            out->events += n;
            out->more |= n == 5000;
            PQclear(res);
        }
    }
    uint64_t used = 0;
    if (rc == 0 && r->max_bytes && (rc = kg__pg_size(p, &used, err)) == 0 &&
        used > r->max_bytes && budget) {
        int64_t oldest_run = -1, oldest_loose = -1;
        rc = kg__pg_int(p, "SELECT min(started_ms) FROM kg_runs", 0, NULL, &oldest_run, err);
        if (rc == 0)
            rc = kg__pg_int(p, "SELECT ts_ms FROM kg_loose ORDER BY id LIMIT 1", 0, NULL,
                            &oldest_loose, err);
        if (rc == 0 && oldest_loose >= 0 && (oldest_run < 0 || oldest_loose <= oldest_run))
            rc = kg__pg_exec(p, "DELETE FROM kg_loose WHERE id IN (SELECT id FROM kg_loose ORDER "
                                "BY id LIMIT 5000)",
                             "retention", err);
        else if (rc == 0 && oldest_run >= 0)
            rc = kg__pg_delete_oldest(p, false, -1, r->max_runs, used - r->max_bytes, &budget,
                                      out, err);
        out->more = true;
    }
    if (rc == 0)
        rc = kg__pg_exec(p, "COMMIT", "retention", err);
    if (rc) {
        kg__pg_rollback(p);
        return rc;
    }
    return kg__pg_size(p, &out->bytes, err);
}

/* ---- queries ------------------------------------------------------------------------------------------ */

static char *kg__pg_text(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static int64_t kg__pg_ms(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? -1 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double kg__pg_real(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

#define KG__PG_RUN_COLS                                                                     \
    "r.rid, r.run_id, r.parent_id, r.graph, r.graph_type, r.status, r.started_ms, "         \
    "r.last_ms, r.ended_ms, r.duration, r.final_action, r.error, r.events, r.errors, "      \
    "r.host, r.pid, (SELECT count(*) FROM kg_execs x WHERE x.rid = r.rid)"

static void kg__pg_run_row(PGresult *res, int i, kg__run_row *r)
{
    memset(r, 0, sizeof *r);
    r->rid = kg__pg_ms(res, i, 0);
    r->run_id = kg__pg_text(res, i, 1);
    r->parent_id = kg__pg_text(res, i, 2);
    r->graph = kg__pg_text(res, i, 3);
    r->graph_type = kg__pg_text(res, i, 4);
    r->status = (int)kg__pg_ms(res, i, 5);
    r->started_ms = kg__pg_ms(res, i, 6);
    r->last_ms = kg__pg_ms(res, i, 7);
    r->ended_ms = kg__pg_ms(res, i, 8);
    r->duration = kg__pg_real(res, i, 9);
    r->final_action = kg__pg_text(res, i, 10);
    r->error = kg__pg_text(res, i, 11);
    r->events = kg__pg_ms(res, i, 12);
    r->errors = kg__pg_ms(res, i, 13);
    r->host = kg__pg_text(res, i, 14);
    r->pid = kg__pg_ms(res, i, 15);
    r->executions = kg__pg_ms(res, i, 16);
}

static int kg__pg_each_run(PGresult *res, kg__run_cb cb, void *ud)
{
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        kg__run_row r;
        kg__pg_run_row(res, i, &r);
        rc = cb(ud, &r);
        kg__run_row_clear(&r);
    }
    PQclear(res);
    return rc;
}

static int kg__pg_runs(void *c, const kg__runs_query *q, kg__run_cb cb, void *ud,
                       kg_error_t *err)
{
    kg__pg *p = c;
    kg_buf sql;
    kg_buf_init(&sql);
    kg_buf_puts(&sql, "SELECT " KG__PG_RUN_COLS " FROM kg_runs r WHERE true");
    if (!q->nested)
        kg_buf_puts(&sql, " AND r.parent_id IS NULL");
    if (q->graph)
        kg_buf_puts(&sql, " AND r.graph = $1");
    if (q->prefix)   /* a prefix, matched literally (no LIKE wildcards) */
        kg_buf_puts(&sql, " AND left(r.run_id, length($2)) = $2");
    if (q->since_ms >= 0)
        kg_buf_puts(&sql, " AND r.started_ms >= $3::bigint");
    if (q->until_ms >= 0)
        kg_buf_puts(&sql, " AND r.started_ms < $4::bigint");
    if (q->status_mask) {
        static const char *const conds[] = {
            [KG__ST_RUNNING] = "(r.status = 0 AND r.last_ms >= $5::bigint)",
            [KG__ST_SUCCESS] = "r.status = 1",
            [KG__ST_FAILED] = "r.status = 2",
            [KG__STALE_BIT] = "(r.status = 0 AND r.last_ms < $5::bigint)",
        };
        const char *sep = " AND (";
        for (int b = 0; b < 4; b++)
            if (q->status_mask & (1u << b)) {
                kg_buf_puts(&sql, sep);
                kg_buf_puts(&sql, conds[b]);
                sep = " OR ";
            }
        kg_buf_puts(&sql, ")");
    }
    if (q->cursor)
        kg_buf_puts(&sql, " AND (r.started_ms, r.rid) < ($6::bigint, $7::bigint)");
    kg_buf_puts(&sql, " ORDER BY r.started_ms DESC NULLS LAST, r.rid DESC LIMIT $8::bigint");
    char since[32], until[32], stale[32], cms[32], crid[32], lim[32];
    snprintf(since, sizeof since, "%lld", (long long)q->since_ms);
    snprintf(until, sizeof until, "%lld", (long long)q->until_ms);
    snprintf(stale, sizeof stale, "%lld", (long long)q->stale_before_ms);
    snprintf(cms, sizeof cms, "%lld", (long long)q->cursor_ms);
    snprintf(crid, sizeof crid, "%lld", (long long)q->cursor_rid);
    snprintf(lim, sizeof lim, "%zu", q->limit);
    const char *params[8] = {q->graph ? q->graph : "", q->prefix ? q->prefix : "", since, until,
                             stale, cms, crid, lim};
    if (sql.failed) {
        kg_buf_free(&sql);
        return kg_error_set(err, KG_ENOMEM, NULL, "out of memory");
    }
    /* Every parameter is sent, used or not, so each needs a declared type:
     * all text, cast where used. */
    Oid types[8] = {25, 25, 25, 25, 25, 25, 25, 25};
    PGresult *res = PQexecParams(p->conn, sql.data, 8, types, params, NULL, NULL, 0);
    kg_buf_free(&sql);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
        return kg__pg_fail(p, res, "query", err);
    return kg__pg_each_run(res, cb, ud);
}

static int kg__pg_run_get(void *c, const char *run_id, kg__run_row *out, kg_error_t *err)
{
    kg__pg *p = c;
    const char *params[1] = {run_id};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, "SELECT " KG__PG_RUN_COLS ", r.topology FROM kg_runs r WHERE "
                           "r.run_id = $1",
                        1, params, &res, "query", err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return kg_error_set(err, KG_ENOTFOUND, "NotFound", "no such run");
    }
    kg__pg_run_row(res, 0, out);
    out->topology = kg__pg_text(res, 0, 17);
    PQclear(res);
    return 0;
}

static int kg__pg_children(void *c, const char *run_id, size_t limit, kg__run_cb cb, void *ud,
                           kg_error_t *err)
{
    kg__pg *p = c;
    char lim[32];
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[2] = {run_id, lim};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, "SELECT " KG__PG_RUN_COLS " FROM kg_runs r WHERE r.parent_id = $1 "
                           "ORDER BY r.started_ms DESC, r.rid DESC LIMIT $2",
                        2, params, &res, "query", err);
    return rc ? rc : kg__pg_each_run(res, cb, ud);
}

static int kg__pg_execs(void *c, int64_t rid, size_t limit, kg__exec_cb cb, void *ud,
                        kg_error_t *err)
{
    kg__pg *p = c;
    char r[32], lim[32];
    snprintf(r, sizeof r, "%lld", (long long)rid);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[2] = {r, lim};
    PGresult *res = NULL;
    int rc = kg__pg_run(
        p,
        "WITH RECURSIVE tree(rid, run_id, depth) AS ("
        " SELECT rid, run_id, 0 FROM kg_runs WHERE rid = $1"
        " UNION ALL SELECT r.rid, r.run_id, t.depth + 1 FROM kg_runs r JOIN tree t"
        " ON r.parent_id = t.run_id WHERE t.depth < 32)"
        " SELECT t.run_id, x.corr, x.item, x.node_id, x.node, x.node_type, x.status,"
        " x.started_ms, x.ended_ms, x.duration, x.retries, x.events, x.errors, x.action,"
        " x.error, x.error_type, x.phase FROM tree t JOIN kg_execs x ON x.rid = t.rid"
        " ORDER BY x.started_ms, x.xid LIMIT $2",
        2, params, &res, "query", err);
    if (rc)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        kg__exec_row x = {
            .run_id = kg__pg_text(res, i, 0),
            .corr = kg__pg_text(res, i, 1),
            .item = (int)kg__pg_ms(res, i, 2),
            .node_id = kg__pg_text(res, i, 3),
            .node = kg__pg_text(res, i, 4),
            .node_type = kg__pg_text(res, i, 5),
            .status = (int)kg__pg_ms(res, i, 6),
            .started_ms = kg__pg_ms(res, i, 7),
            .ended_ms = kg__pg_ms(res, i, 8),
            .duration = kg__pg_real(res, i, 9),
            .retries = kg__pg_ms(res, i, 10),
            .events = kg__pg_ms(res, i, 11),
            .errors = kg__pg_ms(res, i, 12),
            .action = kg__pg_text(res, i, 13),
            .error = kg__pg_text(res, i, 14),
            .error_type = kg__pg_text(res, i, 15),
            .phase = kg__pg_text(res, i, 16),
        };
        rc = cb(ud, &x);
        kg__exec_row_clear(&x);
    }
    PQclear(res);
    return rc;
}

static int kg__pg_events(void *c, int64_t rid, int64_t after_seq, int64_t after_id, size_t limit,
                         bool errors_only, kg__text_cb cb, void *ud, kg_error_t *err)
{
    kg__pg *p = c;
    char r[32], s[32], i[32], lim[32], et[8];
    snprintf(r, sizeof r, "%lld", (long long)rid);
    snprintf(s, sizeof s, "%lld", (long long)after_seq);
    snprintf(i, sizeof i, "%lld", (long long)after_id);
    snprintf(lim, sizeof lim, "%zu", limit);
    snprintf(et, sizeof et, "%d", KG_TYPE_ERROR);
    const char *params[5] = {r, s, i, lim, et};
    PGresult *res = NULL;
    int rc = kg__pg_run(p, errors_only
                               ? "SELECT seq, id, body FROM kg_events WHERE rid = $1 AND "
                                 "(seq, id) > ($2::bigint, $3::bigint) AND etype = $5::smallint "
                                 "ORDER BY seq, id LIMIT $4"
                               : "SELECT seq, id, body FROM kg_events WHERE rid = $1 AND "
                                 "(seq, id) > ($2::bigint, $3::bigint) ORDER BY seq, id LIMIT $4",
                        errors_only ? 5 : 4, params, &res, "query", err);
    if (rc)
        return rc;
    for (int k = 0; k < PQntuples(res) && rc == 0; k++)
        rc = cb(ud, kg__pg_ms(res, k, 0), kg__pg_ms(res, k, 1), PQgetvalue(res, k, 2),
                (size_t)PQgetlength(res, k, 2));
    PQclear(res);
    return rc;
}

static int kg__pg_points(PGresult *res, kg__point_cb cb, void *ud)
{
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++)
        rc = cb(ud, PQgetvalue(res, i, 0), kg__pg_ms(res, i, 1), kg__pg_real(res, i, 2),
                (int)kg__pg_ms(res, i, 3));
    PQclear(res);
    return rc;
}

static int kg__pg_graph_points(void *c, int64_t since_ms, size_t limit, kg__point_cb cb, void *ud,
                               kg_error_t *err)
{
    char s[32], lim[32];
    snprintf(s, sizeof s, "%lld", (long long)since_ms);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[2] = {s, lim};
    PGresult *res = NULL;
    int rc = kg__pg_run(c, "SELECT coalesce(graph, ''), started_ms, duration, status FROM kg_runs "
                           "WHERE parent_id IS NULL AND started_ms >= $1 ORDER BY started_ms "
                           "DESC LIMIT $2",
                        2, params, &res, "query", err);
    return rc ? rc : kg__pg_points(res, cb, ud);
}

static int kg__pg_node_points(void *c, const char *graph, const char *node, int64_t since_ms,
                              int64_t until_ms, size_t limit, kg__point_cb cb, void *ud,
                              kg_error_t *err)
{
    char s[32], u[32], lim[32];
    snprintf(s, sizeof s, "%lld", (long long)(since_ms >= 0 ? since_ms : INT64_MIN));
    snprintf(u, sizeof u, "%lld", (long long)(until_ms >= 0 ? until_ms : INT64_MAX));
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[5] = {graph, node, s, u, lim};
    PGresult *res = NULL;
    int rc = kg__pg_run(c, "SELECT graph, started_ms, duration, status FROM kg_execs WHERE "
                           "graph = $1 AND node = $2 AND started_ms >= $3 AND started_ms < $4 "
                           "ORDER BY started_ms DESC LIMIT $5",
                        5, params, &res, "query", err);
    return rc ? rc : kg__pg_points(res, cb, ud);
}

const kg__store_ops kg__store_pg_ops = {
    .name = "postgres",
    .open = kg__pg_open,
    .close = kg__pg_close,
    .alive = kg__pg_alive,
    .begin = kg__pg_begin,
    .commit = kg__pg_commit,
    .rollback = kg__pg_rollback,
    .ensure_runs = kg__pg_ensure_runs,
    .insert_events = kg__pg_insert_events,
    .apply_runs = kg__pg_apply_runs,
    .apply_execs = kg__pg_apply_execs,
    .retain = kg__pg_retain,
    .size = kg__pg_size,
    .runs = kg__pg_runs,
    .run_get = kg__pg_run_get,
    .children = kg__pg_children,
    .execs = kg__pg_execs,
    .events = kg__pg_events,
    .graph_points = kg__pg_graph_points,
    .node_points = kg__pg_node_points,
};

#else
/* Built without libpq: the engine table is absent (kg__store_engine says so). */
typedef int kg__store_pg_unused;
#endif
