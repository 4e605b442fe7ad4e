// Load generator for the browser test's responsiveness check: POSTs synthetic
// workflow runs to a dashboard's /api/ingest at a target rate, in webhook
// batches, several requests in flight, and prints one JSON line of results.
//
// It runs as its own process so that building and sending 10,000 events/s
// never delays the test process that probes the page.
//
// usage: node load-producer.mjs BASE_URL [rate=10000] [seconds=4] [batch=250] [token]
// output: {"sent":N,"accepted":N,"seconds":S,"rate":R,"errors":["…"]}

const [base, rateArg = '10000', secsArg = '4', batchArg = '250', token = ''] = process.argv.slice(2);
const RATE = Number(rateArg), SECONDS = Number(secsArg), BATCH = Number(batchArg), INFLIGHT = 6;

// A five-node pipeline; every run: workflow_started, three events per node, workflow_completed.
const ids = ['ingest', 'parse', 'enrich', 'score', 'store'];
const graph = {
  nodes: ids.map((id) => ({ id, type: 'LoadNode' })),
  edges: ids.slice(1).map((to, i) => ({ from: ids[i], to, action: 'default' })),
  start: ids[0],
};
const prefix = Math.random().toString(16).slice(2, 10).padEnd(8, '0');
let seq = 0;
const id = () => `${prefix}-7b2a-7c4d-9e1f-${(++seq).toString(16).padStart(12, '0')}`;
const STEPS = ids.length * 3 + 2;
let runNo = 0, step = 0, run = '';

function nextEvent() {
  if (!run || step >= STEPS) { run = `load-run-${prefix}-${++runNo}`; step = 0; }
  const ev = {
    event_id: id(), timestamp: new Date().toISOString(), node_id: 'graph', node_type: 'Graph',
    event_type: 'lifecycle', event_name: '', data: {}, correlation_id: run, workflow_id: run, seq,
    source: { host: 'load-producer', pid: process.pid },
  };
  if (step === 0) { ev.event_name = 'workflow_started'; ev.data = { graph }; }
  else if (step === STEPS - 1) { ev.event_name = 'workflow_completed'; ev.data = { status: 'success', final_action: 'default', duration: 0.01 }; }
  else {
    const k = step - 1, phase = k % 3;
    ev.node_id = ids[Math.floor(k / 3)];
    ev.node_type = 'LoadNode';
    ev.event_name = ['node_started', 'node_executing', 'node_completed'][phase];
    ev.data = phase === 2 ? { state: 'completed', next_action: 'default', total_execution_time: 0.0004 } : { state: phase === 0 ? 'started' : 'executing' };
  }
  step++;
  return ev;
}

const headers = { 'Content-Type': 'application/json' };
if (token) headers.Authorization = 'Bearer ' + token;
let sent = 0, accepted = 0;
const errors = [];
const inflight = new Set();
const start = Date.now();
while (Date.now() - start < SECONDS * 1000) {
  const due = start + (sent / RATE) * 1000;
  if (Date.now() < due || inflight.size >= INFLIGHT) {
    await Promise.race([new Promise((r) => setTimeout(r, Math.max(1, due - Date.now()))), ...inflight]);
    continue;
  }
  const events = [];
  for (let i = 0; i < BATCH; i++) events.push(nextEvent());
  sent += events.length;
  const body = JSON.stringify({ events, batch_size: events.length, timestamp: new Date().toISOString() });
  const p = fetch(base + '/api/ingest', { method: 'POST', headers, body })
    .then(async (r) => {
      const text = await r.text();
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${text.slice(0, 200)}`);
      accepted += JSON.parse(text).accepted || 0;
    })
    .catch((e) => { if (errors.length < 5) errors.push(e.message); })
    .finally(() => inflight.delete(p));
  inflight.add(p);
}
await Promise.all(inflight);
const seconds = (Date.now() - start) / 1000;
console.log(JSON.stringify({ sent, accepted, seconds, rate: Math.round(sent / seconds), errors }));
