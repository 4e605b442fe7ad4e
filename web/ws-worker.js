/*
 * kaygraph-c live monitor: the dashboard's WebSocket, owned by a dedicated worker.
 *
 * Why: the server sends one WebSocket message per event, and a browser pays a
 * fixed cost for every message it delivers (a task, an event object, a string)
 * on the thread that owns the socket.  At 10,000 events/s that alone can fill
 * the page's main thread.  Here the worker takes those deliveries, checks each
 * message is JSON, and hands the page one batch per ~16 ms as a single JSON
 * array text, which the page parses once.  The page stays responsive; the
 * added latency is at most one batch interval.
 *
 * Protocol with app.js (postMessage):
 *   page -> worker  {cmd:"connect", url}   open (closing any previous socket)
 *                   {cmd:"send", data}     send a text message if open
 *                   {cmd:"close"}          close the socket
 *   worker -> page  {ev:"open"} | {ev:"close", code} | {ev:"batch", data:"[msg,msg,…]", n}
 *
 * Nothing here interprets event contents; app.js does, as text only.
 */
'use strict';

const BATCH_MS = 16;        // at most ~60 batches a second
const BATCH_MAX = 5000;     // flush early when this many messages are waiting

let ws = null;
let buf = [];
let timer = 0;

function flush() {
  if (timer) { clearTimeout(timer); timer = 0; }
  if (!buf.length) return;
  const n = buf.length;
  const data = '[' + buf.join(',') + ']';
  buf = [];
  postMessage({ ev: 'batch', data, n });
}

function connect(url) {
  if (ws) { ws.onclose = null; try { ws.close(); } catch (e) { /* already closed */ } }
  let sock;
  try {
    sock = new WebSocket(url);
  } catch (e) {
    postMessage({ ev: 'close', code: 0 });
    return;
  }
  ws = sock;
  sock.onopen = () => postMessage({ ev: 'open' });
  sock.onmessage = (e) => {
    if (typeof e.data !== 'string') return;
    // Only well-formed JSON goes into a batch, so the page's single parse of
    // the joined array cannot be spoiled by one bad message.
    try { JSON.parse(e.data); } catch (err) { return; }
    buf.push(e.data);
    if (buf.length >= BATCH_MAX) flush();
    else if (!timer) timer = setTimeout(flush, BATCH_MS);
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    flush();
    ws = null;
    postMessage({ ev: 'close', code: e.code });
  };
  sock.onerror = () => { /* onclose follows */ };
}

self.onmessage = (e) => {
  const m = e.data || {};
  if (m.cmd === 'connect') connect(String(m.url));
  else if (m.cmd === 'send' && ws && ws.readyState === WebSocket.OPEN) ws.send(String(m.data));
  else if (m.cmd === 'close' && ws) { const s = ws; ws = null; flush(); s.close(); }
};
