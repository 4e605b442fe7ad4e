/* store_testutil.c - see store_testutil.h. */
#include "store_testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "hub.h"
#include "ingest.h"
#include "store.h"
#include "testutil.h"
#include "wsclient.h"

kg__hub *kg__server_hub(struct kg_dashboard *d);

kg_dashboard_t *kg_tdash(const char *db, kg_dashboard_options *o)
{
    kg_dashboard_options dflt;
    if (!o) {
        kg_dashboard_options_init(&dflt);
        o = &dflt;
    }
    o->port = 0;
    o->db = db;
    kg_dashboard_t *d = NULL;
    kg_error_t err;
    kg_error_clear(&err);
    if (kg_dashboard_new(o, &d, &err) != 0)
        fail_msg("kg_dashboard_new: %s", err.message);
    return d;
}

void kg_tdash_sync(kg_dashboard_t *d)
{
    kg__store *s = kg__server_hub(d)->store;
    assert_non_null(s);
    assert_int_equal(kg__store_sync(s, 20), 0);
}

int kg_tingest(kg_dashboard_t *d, const char *body)
{
    int rc;
    double deadline = kg_test_now() + 20;
    while ((rc = kg_dashboard_ingest(d, body, strlen(body), NULL)) == KG_EFULL &&
           kg_test_now() < deadline)
        kg_test_sleep(0.01);
    return rc;
}

void kg_tdash_run(kg_dashboard_t *d, const kg_trun *r, size_t batch)
{
    size_t n;
    char **ev = kg_trun_events(r, &n);
    for (size_t i = 0; i < n; i += batch) {
        char *body = kg_tbatch(ev, i, n - i < batch ? n - i : batch);
        int rc = kg_tingest(d, body);
        if (rc != 0)
            fail_msg("ingest of %s: %s", r->run_id, kg_strerror(rc));
        free(body);
    }
    kg_tevents_free(ev, n);
}

json_t *kg_tget(int port, const char *path, int status, const char *headers)
{
    kg_thttp_resp r;
    int got = kg_thttp(port, "GET", path, headers, NULL, 0, &r);
    if (got != status)
        fail_msg("GET %s: %d (wanted %d): %s", path, got, status, r.body ? r.body : "");
    json_error_t je;
    json_t *j = json_loads(r.body ? r.body : "", 0, &je);
    if (!j)
        fail_msg("GET %s: not JSON (%s): %.300s", path, je.text, r.body ? r.body : "");
    kg_thttp_resp_free(&r);
    return j;
}

json_t *kg_thistory(int port)
{
    json_t *m = kg_tget(port, "/api/metrics", 200, NULL);
    json_t *h = json_incref(json_object_get(m, "history"));
    json_decref(m);
    assert_non_null(h);
    return h;
}

void kg_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/kg-hist-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static int kg__rm(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

void kg_trmdir(const char *dir)
{
    nftw(dir, kg__rm, 8, FTW_DEPTH | FTW_PHYS);
}

long long kg_tsql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        else
            fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

bool kg_tsql_ok(const char *path)
{
    sqlite3 *db = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(st, 0);
            ok = r && strcmp(r, "ok") == 0;
            if (!ok)
                fprintf(stderr, "integrity_check: %s\n", r ? r : "(null)");
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return ok;
}
