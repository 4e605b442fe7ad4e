/* dashboard/api_runs.h - the run-history routes (api_runs.c): requests
 * become store queries (store.h) run off the service thread, and their
 * results become responses. */
#ifndef KG_DASH_API_RUNS_H
#define KG_DASH_API_RUNS_H

#include <stdbool.h>

#include "api.h"
#include "store.h"

/* Route /api/runs..., /api/graphs and /api/nodes/...: true when `req` is one of
 * them (then `resp` holds an error, or resp->deferred a query to run). */
bool kg__api_runs_handle(kg__hub *h, const kg__http_req *req, kg__http_resp *resp);
/* Move a completed query's answer into `resp` (service thread). */
void kg__api_runs_answer(kg__http_resp *resp, kg__squery *q);

#endif
