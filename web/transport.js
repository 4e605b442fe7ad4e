/*
 * transport.js - the WebSocket to /ws, reconnecting with backoff.
 *
 * Two carriers behind one interface: ws-worker.js owns the socket in a
 * worker and hands the page one batch of messages per ~16 ms (so thousands
 * of messages a second do not each cost a main-thread task); a direct
 * socket is the fallback when a worker cannot start.  The page asks for
 * batched frames (/ws?batch=1: runs of events as one {"type":"events"}
 * message, docs/protocol.md).  Messages are parsed JSON; interpreting them
 * is the caller's business.
 */

class WorkerCarrier {
  constructor(cb) {
    this.kind = 'worker';
    this.worker = new Worker('ws-worker.js');
    this.worker.onmessage = (e) => {
      const m = e.data || {};
      if (m.ev === 'batch') {
        let arr;
        try { arr = JSON.parse(m.data); } catch (err) { return; }
        if (Array.isArray(arr)) cb.messages(arr);
      } else if (m.ev === 'open') cb.open();
      else if (m.ev === 'close') cb.close(m.code);
    };
    this.worker.onerror = (e) => { if (e && e.preventDefault) e.preventDefault(); this.worker.terminate(); cb.failed(); };
  }
  open(url) { this.worker.postMessage({ cmd: 'connect', url }); }
  send(text) { this.worker.postMessage({ cmd: 'send', data: text }); }
}

class DirectCarrier {
  constructor(cb) { this.kind = 'direct'; this.cb = cb; this.ws = null; }
  open(url) {
    let ws;
    try { ws = new WebSocket(url); } catch (e) { this.cb.close(0); return; }
    this.ws = ws;
    ws.onopen = () => this.cb.open();
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      this.cb.messages([msg]);
    };
    ws.onclose = (e) => { if (this.ws === ws) { this.ws = null; this.cb.close(e.code); } };
    ws.onerror = () => { /* onclose follows */ };
  }
  send(text) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text); }
}

export class Connection {
  /**
   * url: the WebSocket URL; cb: {messages(array), status(state, text, retryAt)}
   * where state is connecting | open | reconnecting.
   */
  constructor(url, cb, useWorker = true) {
    this.url = url;
    this.cb = cb;
    this.isOpen = false;
    this.attempt = 0;
    this.openedAt = 0;
    this.closedAt = 0;
    const carrierCb = {
      open: () => this.onOpen(),
      close: () => this.onClose(),
      messages: (arr) => cb.messages(arr),
      failed: () => { this.carrier = new DirectCarrier(carrierCb); this.connect(); },
    };
    this.carrier = null;
    if (useWorker && typeof Worker === 'function') {
      try { this.carrier = new WorkerCarrier(carrierCb); } catch (e) { this.carrier = null; }
    }
    if (!this.carrier) this.carrier = new DirectCarrier(carrierCb);
  }
  connect() {
    clearTimeout(this.retryTimer);
    this.cb.status(this.attempt ? 'reconnecting' : 'connecting', 0);
    this.carrier.open(this.url);
  }
  onOpen() {
    this.isOpen = true;
    this.openedAt = Date.now();
    this.cb.status('open', 0);
    // The backoff resets only once the connection has proved stable.
    this.stableTimer = setTimeout(() => { this.attempt = 0; }, 5000);
  }
  onClose() {
    if (this.isOpen) this.closedAt = Date.now();
    this.isOpen = false;
    clearTimeout(this.stableTimer);
    const base = Math.min(15000, 500 * Math.pow(2, this.attempt));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this.cb.status('reconnecting', this.retryAt);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
  /** Reconnect now (the user asked). */
  retryNow() { if (!this.isOpen) this.connect(); }
  send(obj) {
    if (!this.isOpen) return false;
    this.carrier.send(JSON.stringify(obj));
    return true;
  }
}
