/* store_testutil.h - what the run-history tests share: a dashboard with a
 * database, waiting for its writer, reading its API and its file. */
#ifndef KG_TEST_STORE_TESTUTIL_H
#define KG_TEST_STORE_TESTUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kaygraph/dashboard.h"
#include "store_events.h"

/* A dashboard on an ephemeral port with `db` (and the other options of `o`
 * when not NULL); fails the test when it does not start. */
kg_dashboard_t *kg_tdash(const char *db, kg_dashboard_options *o);
/* Wait until everything accepted so far is written (at most 20 s). */
void kg_tdash_sync(kg_dashboard_t *d);
/* kg_dashboard_ingest, retried while the history pushes back (KG_EFULL), as
 * a webhook sender would; the final code. */
int kg_tingest(kg_dashboard_t *d, const char *body);
/* Ingest the whole run, in batches of `batch` events. */
void kg_tdash_run(kg_dashboard_t *d, const kg_trun *r, size_t batch);
/* GET path: the JSON body (new reference) when the status is `status`,
 * else the test fails.  `headers` as kg_thttp. */
json_t *kg_tget(int port, const char *path, int status, const char *headers);
/* The history object of /api/metrics. */
json_t *kg_thistory(int port);
/* A fresh temporary directory (removed by kg_trmdir) and a path in it. */
void kg_tmpdir(char *dir, size_t len);
void kg_trmdir(const char *dir);
/* SQLite: one integer (-1 on error) and PRAGMA integrity_check == "ok". */
long long kg_tsql_int(const char *path, const char *sql);
bool kg_tsql_ok(const char *path);

#endif
