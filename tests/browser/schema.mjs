// docs/schema/ loaded into a JSON Schema validator (ajv, pinned dev
// dependency), for the mock server (every message it sends is checked) and
// the browser test (every message the real server sends is checked).
//
//   const v = await loadSchemas();
//   v.ws(msg)            -> null | "why it is invalid"   (ws-server-message)
//   v.rest(route, body)  -> null | "why"                 (rest.schema.json#/$defs/<route>)
//   v.event(ev)          -> null | "why"
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SCHEMA_DIR = path.resolve(here, '../../docs/schema');
const BASE = 'https://kaygraph-c.invalid/schema/';

export async function loadSchemas() {
  const { default: Ajv2020 } = await import('ajv/dist/2020.js');
  const ajv = new Ajv2020({ strict: true, allErrors: false });
  for (const f of fs.readdirSync(SCHEMA_DIR).filter((n) => n.endsWith('.json'))) {
    ajv.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8')));
  }
  const check = (id) => {
    const fn = ajv.getSchema(BASE + id);
    if (!fn) throw new Error('no schema ' + id);
    return (value) => (fn(value) ? null : ajv.errorsText(fn.errors, { dataVar: 'message' }));
  };
  const ws = check('ws-server-message.schema.json');
  const event = check('event.schema.json');
  const client = check('ws-client-message.schema.json');
  const routes = {};
  for (const r of ['metrics', 'events', 'workflows', 'workflow_events', 'ingest', 'healthz', 'error',
    'runs', 'run_page', 'run_events', 'graphs', 'node_stats']) routes[r] = check('rest.schema.json#/$defs/' + r);   // history: the run routes
  return {
    ws, event, client,
    rest: (route, body) => (routes[route] ? routes[route](body) : `no schema for route ${route}`),
  };
}
