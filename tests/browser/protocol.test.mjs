// The dashboard's protocol against docs/schema, from the server's side and
// without a browser: the real `kgmon dashboard` (with a history database)
// receives the nested example's events from the real engine (`kgmon demo
// --graph nested` through the webhook), and every WebSocket message (raw and
// batched connections, replies to ping / get_workflow_events / a bad
// message included) and every REST body (live routes, errors, ingest answers
// and the run-history routes) must match docs/schema.  The same schemas
// validate the mock server the UI tests use, so the protocol lives in one
// place.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  precondition, freePort, startProcess, stopProcess, waitHealthy, until, runDemo, schemaWatcher,
  checkRestSchemas, KGMON,
} from './helpers.mjs';
import { loadSchemas } from './schema.mjs';

const skip = precondition(true);

describe('protocol: the real server against docs/schema', { skip }, () => {
  let server, schemas, dir;

  before(async () => {
    schemas = await loadSchemas();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-protocol-'));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = startProcess(KGMON, ['dashboard', '--port', String(port), '--db', path.join(dir, 'history.db')],
      'kgmon dashboard');
    await waitHealthy(base, child);
    server = { child, base, port, mock: false };
  });

  after(async () => {
    if (server) await stopProcess(server.child);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('WebSocket messages and REST bodies of a nested run match the schemas', { timeout: 180000 }, async () => {
    const watcher = await schemaWatcher(server.base, schemas);
    await runDemo(server, 2, ['--graph', 'nested', '--node-delay', '0']);
    const { workflows } = await (await fetch(server.base + '/api/workflows')).json();
    assert.ok(workflows.length >= 2, 'the runs reached the dashboard');
    watcher.ask(workflows[workflows.length - 1].workflow_id);
    // A metrics message comes every second; the replies to the requests at once.
    await until('a metrics message and the replies', async () => {
      const t = watcher.peek().byType;
      return t.metrics && t.workflow_events && t.pong && t.error;
    }, 15000);
    const rest = await checkRestSchemas(server.base, schemas);

    // The run history's routes.
    const bad = [];
    const check = async (route, p, status = 200) => {
      const r = await fetch(server.base + p);
      assert.equal(r.status, status, `GET ${p}`);
      const why = schemas.rest(route, await r.json());
      if (why) bad.push(`${p}: ${why}`);
    };
    await until('runs stored', async () => (await (await fetch(server.base + '/api/runs')).json()).runs?.length >= 2, 15000);
    const runs = (await (await fetch(server.base + '/api/runs')).json()).runs;
    await check('runs', '/api/runs?limit=5');
    await check('runs', '/api/runs?status=failed');
    const id = runs[0].workflow_id;
    await check('run_page', '/api/runs/' + encodeURIComponent(id));
    await check('run_events', '/api/runs/' + encodeURIComponent(id) + '/events');
    await check('graphs', '/api/graphs');
    await check('node_stats', '/api/nodes/orders/intake/stats');
    await check('error', '/api/runs/no-such-run', 404);
    await check('error', '/api/runs?limit=x', 400);

    const report = watcher.close();
    assert.deepEqual(report.invalid, [], 'WebSocket messages that do not match docs/schema');
    for (const t of ['initial', 'event', 'metrics', 'workflow_events', 'pong', 'error', 'events']) {
      assert.ok(report.byType[t] > 0, `a "${t}" message was checked (seen: ${JSON.stringify(report.byType)})`);
    }
    assert.deepEqual(rest, [], 'REST bodies that do not match docs/schema');
    assert.deepEqual(bad, [], 'run-history bodies that do not match docs/schema');
  });
});
