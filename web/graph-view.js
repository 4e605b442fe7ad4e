/*
 * graph-view.js - the workflow graph in SVG: nested groups, live states,
 * lit edges, pan/zoom/fit, a minimap, keyboard navigation.
 *
 * It draws one run at a time (show), from layout.js's geometry, and then
 * touches only what changes: a node's status attributes and texts, the
 * aggregated state of the groups around it, an edge's counters.  Expanded
 * sub-graphs are framed groups with a collapse button; collapsed ones are a
 * single box that shows what is running or failed inside.  Every drawn node
 * (leaf, collapsed group or group frame) has data-node-path.
 *
 * States are told apart by colour, glyph and words (○ idle, ▶ running,
 * ↻ retrying, ✓ completed, ✕ failed), so they read without colour vision.
 * A running node that reports its progress (node_progress) shows a bar along
 * its bottom edge and "40/100" in its status line.
 */
import { s, setText, setAttr, clear } from './dom.js';
import { layout, routePath } from './layout.js';
import { groupState, descendants } from './model.js';
import { statusOf } from './store.js';
import { fmtDur, clip } from './fmt.js';
import { pathLeaf } from './protocol.js';
import { progressText, progressShare } from './node-output.js';
import { layoutQuality } from './layout-metrics.js';

export const GLYPH = { idle: '○', running: '▶', retrying: '↻', completed: '✓', failed: '✕' };
const EDGE_LIT_MS = 900;
const MINI_W = 200, MINI_H = 130;

export class GraphView {
  /**
   * svg: the <svg>, mini: the minimap <svg>, empty: the "no topology" note.
   * cb: {measure(text, kind), select(path), toggle(path), layoutDone(ms, quality?)}
   */
  constructor(svg, mini, empty, cb) {
    this.svg = svg;
    this.mini = mini;
    this.empty = empty;
    this.cb = cb;
    this.root = svg.querySelector('.graph-root');
    this.key = null;
    this.run = null;
    this.lay = null;
    this.views = new Map();      // path -> node/group view
    this.edgeViews = new Map();  // edge key -> {el, lab, path, count, litUntil}
    this.lit = new Set();
    this.view = null;            // viewBox {x, y, w, h}
    this.userView = false;
    this.focused = '';           // path with the roving tabindex
    this.selected = '';
    this.layoutMs = 0;
    new ResizeObserver(() => { if (!this.userView) this.fit(); else this.drawMini(); }).observe(svg);
    this.installPanZoom();
    this.installKeys();
  }

  /** Draw `run` with the groups in `collapsed` closed (a new layout only if either changed shape). */
  show(run, collapsed) {
    const model = run && run.model;
    const key = model ? run.topoKey + '\u0002' + [...collapsed].sort().join('\u0001') : '';
    this.run = run;
    this.collapsed = collapsed;
    if (key !== this.key) this.rebuild(model, key);
    if (model) this.syncAll();
  }

  rebuild(model, key) {
    // The same topology redrawn (a group collapsed or expanded) keeps a view
    // the user chose; otherwise the new drawing is fitted.
    const keepView = this.userView && this.key && key && this.key.split('\u0002')[0] === key.split('\u0002')[0] ? this.view : null;
    this.key = key;
    this.views.clear();
    this.edgeViews.clear();
    this.lit.clear();
    clear(this.root);
    this.empty.hidden = !!model;
    if (!model) { this.lay = null; this.drawMini(); return; }
    const t0 = performance.now();
    const lay = layout(model, this.collapsed, { measure: this.cb.measure });
    this.layoutMs = performance.now() - t0;
    this.lay = lay;
    this.model = model;
    const groupLayer = s('g', { class: 'groups' });
    const edgeLayer = s('g', { class: 'edges' });
    const nodeLayer = s('g', { class: 'nodes' });
    const labelLayer = s('g', { class: 'labels' });
    const groups = [];
    for (const [path, b] of lay.boxes) {
      const n = model.byPath.get(path);
      if (n.group && !b.collapsed) groups.push([path, b, n]);
      else nodeLayer.appendChild(this.drawNode(path, b, n));
    }
    groups.sort((a, b) => a[1].depth - b[1].depth);
    for (const [path, b, n] of groups) groupLayer.appendChild(this.drawGroup(path, b, n));
    for (const e of lay.edges) {
      const d = routePath(e.segs);
      const target = model.byPath.get(e.to);
      const err = /error|fail|invalid|^no_/i.test(e.action) || (target && /error|fail|fallback|recover/i.test(target.id + ' ' + target.type));
      const cls = 'gedge' + (e.back ? ' back' : '') + (e.self ? ' self' : '') + (err ? ' errpath' : '');
      const path = s('path', { class: 'path', d, 'marker-end': 'url(#arrow)' });
      const el = s('g', { class: cls, 'data-from': e.from, 'data-to': e.to, 'data-action': e.action, 'data-count': 0 },
        s('title', null, `${pathLeaf(e.from)} —${e.action}→ ${pathLeaf(e.to)}`),
        s('path', { class: 'halo', d }), path);
      edgeLayer.appendChild(el);
      let lab = null;
      if (e.label) {
        const w = e.label.w;
        lab = s('g', { class: cls, transform: `translate(${e.label.x.toFixed(1)},${e.label.y.toFixed(1)})` },
          s('rect', { class: 'elabel-bg', x: -w / 2, y: -8.5, width: w, height: 17, rx: 8.5 }),
          s('text', { class: 'elabel', 'text-anchor': 'middle', y: 3.8 }, e.label.text));
        labelLayer.appendChild(lab);
      }
      this.edgeViews.set(e.key, { el, lab, path, count: -1, litUntil: 0 });
    }
    this.root.append(groupLayer, edgeLayer, nodeLayer, labelLayer);
    if (!this.focused || !this.views.has(this.focused)) this.focused = model.root.start || [...this.views.keys()][0] || '';
    const fv = this.views.get(this.focused);
    if (fv) fv.el.setAttribute('tabindex', '0');
    this.buildMini();
    if (keepView) this.setView(keepView); else { this.userView = false; this.fit(); }
    if (this.selected) this.markSelected(this.selected);
    if (this.cb.layoutDone) this.cb.layoutDone(this.layoutMs);
  }

  drawNode(path, b, n) {
    const collapsedGroup = n.group;
    const kids = collapsedGroup ? descendants(this.model, path).length : 0;
    const stat = s('text', { class: 'nstat', x: 14, y: b.h - 9 }, 'idle');
    const glyph = s('text', { class: 'glyph', x: b.w - 12, y: 21, 'text-anchor': 'end', 'aria-hidden': 'true' }, GLYPH.idle);
    const tip = s('title', null, '');
    const children = [tip, s('rect', { class: 'ring', x: -5, y: -5, width: b.w + 10, height: b.h + 10, rx: 13 })];
    if (collapsedGroup) children.push(s('rect', { class: 'stack', x: 5, y: 5, width: b.w, height: b.h, rx: 9 }));
    children.push(
      s('rect', { class: 'box', width: b.w, height: b.h, rx: 9 }),
      s('rect', { class: 'bar', x: 0, y: 9, width: 4, height: b.h - 18, rx: 2 }),
      s('text', { class: 'nid', x: 14, y: 21 }, this.fitText(n.id, 'title', b.w - 40)),
      s('text', { class: 'ntype', x: 14, y: 37 }, this.fitText(collapsedGroup ? `${n.type || 'Graph'}${n.batch ? ' per item' : ''} · ${kids} inside` : n.type, 'mono', b.w - 22)),
      glyph, stat);
    let ptrack = null, pfill = null;
    if (!collapsedGroup) {
      ptrack = s('rect', { class: 'ptrack', x: 12, y: b.h - 5, width: b.w - 24, height: 3, rx: 1.5 });
      pfill = s('rect', { class: 'pfill', x: 12, y: b.h - 5, width: 0, height: 3, rx: 1.5 });
      children.push(ptrack, pfill);
    }
    let toggle = null;
    if (collapsedGroup) {
      toggle = this.toggleButton(b.w - 34, b.h - 24, true, path);
      children.push(toggle);
    }
    const isStart = n.parent && n.parent.start === path;
    if (isStart) children.push(s('text', { class: 'start-tag', x: 2, y: -6 }, 'START'));
    const el = s('g', {
      class: 'gnode' + (collapsedGroup ? ' gcollapsed' : ''), 'data-node-path': path, 'data-node-id': n.id,
      'data-kind': collapsedGroup ? 'group' : 'node', 'data-collapsed': collapsedGroup ? 'true' : null, 'data-status': 'idle',
      transform: `translate(${b.x.toFixed(1)},${b.y.toFixed(1)})`, tabindex: '-1', role: 'button', 'aria-label': n.id,
    }, ...children);
    this.views.set(path, { el, n, b, stat, glyph, tip, pfill, group: collapsedGroup, c: {} });
    return el;
  }

  drawGroup(path, b, n) {
    const gstat = s('text', { class: 'gstat', x: b.w - 12, y: 24, 'text-anchor': 'end' }, '');
    const tip = s('title', null, '');
    const toggle = this.toggleButton(10, 10, false, path);
    const children = [tip,
      s('rect', { class: 'ring', x: -5, y: -5, width: b.w + 10, height: b.h + 10, rx: 15 }),
      s('rect', { class: 'gbox', width: b.w, height: b.h, rx: 12 }),
      s('rect', { class: 'ghead', width: b.w, height: b.header - 4, rx: 12 }),
      toggle,
      s('text', { class: 'gtitle', x: 40, y: 25 }, n.id),
      s('text', { class: 'gtype', x: 46 + this.cb.measure(n.id, 'title'), y: 25 }, (n.type || 'Graph') + (n.batch ? ' · per item' : '')),
      gstat];
    const gtype = children[children.length - 2];
    let strip = null;
    if (n.batch) {
      strip = s('g', { class: 'items', transform: 'translate(14,36)' });
      children.push(strip);
    }
    const isStart = n.parent && n.parent.start === path;
    if (isStart) children.push(s('text', { class: 'start-tag', x: 2, y: -6 }, 'START'));
    const el = s('g', {
      class: 'ggroup' + (n.batch ? ' gbatch' : ''), 'data-node-path': path, 'data-node-id': n.id, 'data-kind': 'group',
      'data-collapsed': 'false', 'data-status': 'idle', transform: `translate(${b.x.toFixed(1)},${b.y.toFixed(1)})`,
      tabindex: '-1', role: 'group', 'aria-label': `${n.id} (sub-graph)`,
    }, ...children);
    this.views.set(path, { el, n, b, gstat, gtype, tip, strip, group: true, open: true, c: {} });
    return el;
  }

  /**
   * A text that fits `w` px: boxes are sized to their id and type (layout.js
   * leafSize, up to its nodeMaxW), so only names longer than that are cut,
   * with "…" (the whole text is in the node's tooltip and panel).
   */
  fitText(text, kind, w) {
    const m = this.cb.measure;
    if (!text || m(text, kind) <= w) return text || '';
    let lo = 1, hi = text.length;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (m(text.slice(0, mid) + '…', kind) <= w) lo = mid; else hi = mid - 1; }
    return text.slice(0, lo) + '…';
  }

  toggleButton(x, y, collapsed, path) {
    const g = s('g', { class: 'gtoggle', transform: `translate(${x},${y})`, 'data-toggle': path, role: 'button',
      'aria-label': (collapsed ? 'Expand ' : 'Collapse ') + pathLeaf(path) },
    s('title', null, collapsed ? 'Expand this sub-graph' : 'Collapse this sub-graph'),
    s('rect', { width: 22, height: 20, rx: 5 }),
    s('text', { x: 11, y: 14.5, 'text-anchor': 'middle' }, collapsed ? '+' : '−'));
    return g;
  }

  syncAll() {
    for (const p of this.views.keys()) if (!this.views.get(p).group) this.updateNode(p);
    for (const p of this.views.keys()) if (this.views.get(p).group) this.updateGroup(p);
    for (const [k, ev] of this.edgeViews) this.setEdgeCount(ev, this.run.edges.get(k) || 0);
    this.paintMini();
  }

  /** Paths changed in the shown run: redraw them and the groups around them. */
  update(paths) {
    if (!this.run || !this.lay) return;
    const groups = new Set();
    for (const p of paths) {
      const v = this.views.get(p);
      if (v && !v.group) this.updateNode(p);
      let n = this.model.byPath.get(p);
      if (n && n.group) groups.add(p);
      while (n && n.parent) { if (this.views.has(n.parent.path)) groups.add(n.parent.path); n = n.parent; }
    }
    for (const g of groups) if (this.views.has(g)) this.updateGroup(g);
    this.miniDirty = true;
  }

  updateNode(path) {
    const v = this.views.get(path);
    const run = this.run;
    const n = run.nodes.get(path);
    const status = n ? n.status : 'idle';
    const c = v.c;
    let text = status;
    if (n) {
      // retry_attempted: attempt = the 1-based attempt that failed, max_retries = attempts allowed.
      if (status === 'retrying') text = `retrying · attempt ${n.attempt + 1}${n.maxRetries !== undefined ? ' of ' + n.maxRetries : ''}`;
      else if (status === 'failed') text = 'failed · ' + (n.lastError || '');
      else if (status === 'completed') text = 'completed' + (n.count > 1 ? ` · ×${n.count}` : '') + (n.lastDur !== undefined ? ' · ' + fmtDur(n.lastDur) : '');
      else if (status === 'running' && n.items.size) text = `running · ${n.items.size} items`;
      if (status === 'completed' && n.items.size > 1) text = `completed · ${n.items.size} items`;
    }
    // Progress right after the status word, so a short box still shows it.
    const prog = n && n.progress && (status === 'running' || status === 'retrying') ? n.progress : null;
    if (prog) text = status + ' · ' + progressText(prog) + text.slice(status.length);
    const pk = prog ? `${prog.done}/${prog.total}` : '';
    if (c.prog !== pk && v.pfill) {
      c.prog = pk;
      if (!prog) v.el.removeAttribute('data-progress');
      else {
        v.el.setAttribute('data-progress', pk);
        v.pfill.setAttribute('width', (progressShare(prog) * (v.b.w - 24)).toFixed(1));
      }
    }
    const maxChars = Math.max(8, Math.floor((v.b.w - 24) / 6.3));
    if (c.status !== status) {
      c.status = status;
      v.el.setAttribute('data-status', status);
      setText(v.glyph, GLYPH[status] || '?');
    }
    const shown = clip(text, maxChars);
    if (c.text !== shown) { c.text = shown; setText(v.stat, shown); }
    const tip = `${path}\n${v.n.type ? 'type: ' + v.n.type + '\n' : ''}status: ${text}` +
      (n ? `\nexecutions: ${n.count}  retries: ${n.retries}  failures: ${n.failures}` + (n.lastError ? `\nlast error: ${n.lastError}` : '') : '');
    if (c.tip !== tip) { c.tip = tip; setText(v.tip, tip); v.el.setAttribute('aria-label', `${v.n.id}: ${text}`); }
    v.el.setAttribute('data-retries', n ? n.retries : 0);
    v.el.setAttribute('data-failures', n ? n.failures : 0);
  }

  updateGroup(path) {
    const v = this.views.get(path);
    if (!v || !v.group) return;
    const run = this.run;
    const g = groupState(this.model, path, (p) => statusOf(run, p));
    const cnt = g.counts;
    const parts = [];
    if (cnt.running + cnt.retrying) parts.push(`${GLYPH.running} ${cnt.running + cnt.retrying} running`);
    if (cnt.failed) parts.push(`${GLYPH.failed} ${cnt.failed} failed`);
    if (cnt.completed) parts.push(`${GLYPH.completed} ${cnt.completed} done`);
    const items = run.items.get(path);
    if (items && items.size) parts.unshift(`${items.size} item run${items.size === 1 ? '' : 's'}`);
    const text = parts.join(' · ') || 'idle';
    const c = v.c;
    if (c.status !== g.status) { c.status = g.status; v.el.setAttribute('data-status', g.status); if (v.glyph) setText(v.glyph, GLYPH[g.status]); }
    if (v.stat) { const t = clip(text, Math.floor((v.b.w - 24) / 6.3)); if (c.text !== t) { c.text = t; setText(v.stat, t); } }
    if (v.gstat && c.text !== text) { c.text = text; this.fitGroupHead(v, text); }
    const tip = `${path} (${v.n.batch ? 'batch graph: its sub-graph runs once per item' : 'sub-graph'})\n${text}`;
    if (c.tip !== tip) { c.tip = tip; setText(v.tip, tip); v.el.setAttribute('aria-label', `${v.n.id} (sub-graph): ${text}`); }
    if (v.strip) this.drawItems(v, items);
  }

  /**
   * A group's header holds its title and type at the left and what runs
   * inside at the right: on a narrow group the type gives way first, then
   * the right-hand text is shortened, so they never overlap.
   */
  fitGroupHead(v, text) {
    const m = this.cb.measure;
    const left = 46 + m(v.n.id, 'title') + 10, right = v.b.w - 12;
    const typeW = m(v.gtype.textContent, 'mono');
    const fits = (t) => left + typeW + 8 + m(t, 'text') * 1.1 <= right;
    v.gtype.style.display = fits(text) ? '' : 'none';
    const room = right - (fits(text) ? left + typeW + 8 : left);
    setText(v.gstat, m(text, 'text') * 1.1 <= room ? text : this.fitText(text, 'text', room / 1.1));
  }

  /** A batch graph's per-item runs: one small square per item, by status. */
  drawItems(v, items) {
    const list = items ? [...items.entries()].sort((a, b) => a[0] - b[0]) : [];
    const sig = list.map(([k, i]) => k + i.status).join(',');
    if (v.c.items === sig) return;
    v.c.items = sig;
    clear(v.strip);
    const room = Math.max(1, Math.floor((v.b.w - 120) / 13));
    const shown = list.slice(0, room);
    shown.forEach(([k, it], i) => {
      v.strip.appendChild(s('rect', { class: 'item', x: i * 13, y: 0, width: 10, height: 10, rx: 2, 'data-status': it.status === 'completed' ? 'completed' : it.status },
        s('title', null, `item ${k}: ${it.status}`)));
    });
    const done = list.filter(([, i]) => i.status === 'completed').length, bad = list.filter(([, i]) => i.status === 'failed').length;
    const rest = list.length - shown.length;
    v.strip.appendChild(s('text', { class: 'items-text', x: shown.length * 13 + 6, y: 9 },
      list.length ? `${rest > 0 ? '+' + rest + ' · ' : ''}${done} ${GLYPH.completed}${bad ? ` ${bad} ${GLYPH.failed}` : ''} of ${list.length} items` : 'no item runs yet'));
  }

  setEdgeCount(ev, count) {
    if (ev.count === count) return;
    ev.count = count;
    ev.el.setAttribute('data-count', count);
    ev.el.classList.toggle('traversed', count > 0);
    if (ev.lab) ev.lab.classList.toggle('traversed', count > 0);
  }

  /** An edge was taken: count it and let it glow for a moment. */
  lightEdge(key, now) {
    const ev = this.edgeViews.get(key);
    if (!ev) return;
    this.setEdgeCount(ev, this.run.edges.get(key) || 0);
    if (!ev.litUntil) {
      ev.el.classList.add('lit');
      if (ev.lab) ev.lab.classList.add('lit');
      ev.path.setAttribute('marker-end', 'url(#arrow-lit)');
    }
    ev.litUntil = now + EDGE_LIT_MS;
    this.lit.add(ev);
  }

  tick(now) {
    for (const ev of this.lit) {
      if (ev.litUntil > now) continue;
      ev.litUntil = 0;
      ev.el.classList.remove('lit');
      if (ev.lab) ev.lab.classList.remove('lit');
      ev.path.setAttribute('marker-end', 'url(#arrow)');
      this.lit.delete(ev);
    }
    if (this.miniDirty) { this.miniDirty = false; this.paintMini(); }
  }

  // -- view box: fit, zoom, pan ------------------------------------------------
  fit() {
    if (!this.lay) return;
    const r = this.svg.getBoundingClientRect();
    const pw = Math.max(r.width, 50), ph = Math.max(r.height, 50);
    const pad = 30, bb = this.lay.bbox;
    const scale = Math.min(pw / (bb.w + 2 * pad), ph / (bb.h + 2 * pad + 20), 1.25);
    const vw = pw / scale, vh = ph / scale;
    this.userView = false;
    this.setView({ x: bb.x + bb.w / 2 - vw / 2, y: bb.y + bb.h / 2 - vh / 2 + 8, w: vw, h: vh });
  }
  setView(v) {
    this.view = v;
    this.svg.setAttribute('viewBox', `${v.x.toFixed(1)} ${v.y.toFixed(1)} ${v.w.toFixed(1)} ${v.h.toFixed(1)}`);
    this.drawMini();
  }
  zoom(k, cx, cy) {
    if (!this.view) return;
    const v = this.view;
    const px = cx === undefined ? v.x + v.w / 2 : cx, py = cy === undefined ? v.y + v.h / 2 : cy;
    this.userView = true;
    this.setView({ x: px - (px - v.x) * k, y: py - (py - v.y) * k, w: v.w * k, h: v.h * k });
  }
  /** Centre a box, zooming in to a readable scale if needed. */
  reveal(path) {
    const b = this.lay && this.lay.boxes.get(path);
    if (!b || !this.view) return;
    const r = this.svg.getBoundingClientRect();
    const scale = r.width / this.view.w;
    const want = scale < 0.7 ? 0.9 : scale;
    const vw = r.width / want, vh = r.height / want;
    this.userView = true;
    this.setView({ x: b.x + b.w / 2 - vw / 2, y: b.y + b.h / 2 - vh / 2, w: vw, h: vh });
  }
  /** Make sure a box is inside the view (keyboard moves). */
  ensureVisible(path) {
    const b = this.lay && this.lay.boxes.get(path);
    const v = this.view;
    if (!b || !v) return;
    if (b.x >= v.x && b.y >= v.y && b.x + b.w <= v.x + v.w && b.y + b.h <= v.y + v.h) return;
    if (b.w > v.w || b.h > v.h) { this.reveal(path); return; }
    const nx = Math.min(Math.max(v.x, b.x + b.w - v.w + 20), b.x - 20), ny = Math.min(Math.max(v.y, b.y + b.h - v.h + 20), b.y - 20);
    this.userView = true;
    this.setView({ x: nx, y: ny, w: v.w, h: v.h });
  }

  installPanZoom() {
    const svg = this.svg;
    svg.addEventListener('wheel', (e) => {
      if (!this.view) return;
      e.preventDefault();
      const r = svg.getBoundingClientRect(), v = this.view;
      this.zoom(Math.exp(e.deltaY * 0.0015), v.x + (e.clientX - r.left) / r.width * v.w, v.y + (e.clientY - r.top) / r.height * v.h);
    }, { passive: false });
    let drag = null;
    svg.addEventListener('pointerdown', (e) => {
      if (!this.view || e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, v: Object.assign({}, this.view), moved: false, id: e.pointerId };
    });
    svg.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const r = svg.getBoundingClientRect();
      const dx = (e.clientX - drag.x) / r.width * drag.v.w, dy = (e.clientY - drag.y) / r.height * drag.v.h;
      if (!drag.moved && Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) < 4) return;
      if (!drag.moved) { drag.moved = true; svg.setPointerCapture(drag.id); svg.classList.add('panning'); }
      this.userView = true;
      this.setView({ x: drag.v.x - dx, y: drag.v.y - dy, w: drag.v.w, h: drag.v.h });
    });
    const end = () => { if (drag && drag.moved) { this.suppressClick = true; setTimeout(() => { this.suppressClick = false; }, 0); } drag = null; svg.classList.remove('panning'); };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.addEventListener('dblclick', (e) => { if (!e.target.closest('[data-node-path]')) this.fit(); });
    svg.addEventListener('click', (e) => {
      if (this.suppressClick) return;
      const t = e.target.closest('[data-toggle]');
      if (t) { this.cb.toggle(t.getAttribute('data-toggle')); return; }
      const n = e.target.closest('[data-node-path]');
      if (n) { this.focusPath(n.getAttribute('data-node-path'), false); this.cb.select(n.getAttribute('data-node-path')); }
    });
    // Minimap: click or drag to move the view there.
    const miniMove = (e) => {
      if (!this.lay || !this.view || !this.miniScale) return;
      const r = this.mini.getBoundingClientRect();
      const gx = (e.clientX - r.left) / this.miniScale + this.miniOx, gy = (e.clientY - r.top) / this.miniScale + this.miniOy;
      this.userView = true;
      this.setView({ x: gx - this.view.w / 2, y: gy - this.view.h / 2, w: this.view.w, h: this.view.h });
    };
    let miniDrag = false;
    this.mini.addEventListener('pointerdown', (e) => { miniDrag = true; this.mini.setPointerCapture(e.pointerId); miniMove(e); });
    this.mini.addEventListener('pointermove', (e) => { if (miniDrag) miniMove(e); });
    this.mini.addEventListener('pointerup', () => { miniDrag = false; });
  }

  // -- keyboard: one tab stop, arrows move between boxes ----------------------
  focusPath(path, focus = true) {
    const v = this.views.get(path);
    if (!v) return;
    const old = this.views.get(this.focused);
    if (old && old !== v) old.el.setAttribute('tabindex', '-1');
    v.el.setAttribute('tabindex', '0');
    this.focused = path;
    if (focus) { v.el.focus({ preventScroll: true }); this.ensureVisible(path); }
  }
  installKeys() {
    this.svg.addEventListener('keydown', (e) => {
      const el = e.target.closest && e.target.closest('[data-node-path]');
      if (!el) return;
      const path = el.getAttribute('data-node-path');
      const v = this.views.get(path);
      let dir = null;
      switch (e.key) {
        case 'ArrowRight': dir = [1, 0]; break;
        case 'ArrowLeft': dir = [-1, 0]; break;
        case 'ArrowDown': dir = [0, 1]; break;
        case 'ArrowUp': dir = [0, -1]; break;
        case 'Enter': this.cb.select(path); e.preventDefault(); return;
        case ' ': case '+': case '-': case '=':
          if (v && v.group && (e.key === ' ' || (e.key === '-') === !!v.open || (e.key !== '-' && !v.open))) { this.cb.toggle(path); e.preventDefault(); }
          return;
        case 'Home': { const first = this.model.root.start; if (first) this.focusPath(first); e.preventDefault(); return; }
        default: return;
      }
      e.preventDefault();
      const next = this.neighbour(path, dir);
      if (next) this.focusPath(next);
    });
  }
  /** The nearest box in a direction from a box's centre (a group's frame counts as a box). */
  neighbour(path, [dx, dy]) {
    const a = this.lay.boxes.get(path);
    if (!a) return '';
    const ax = a.x + a.w / 2, ay = a.y + (a.group && !a.collapsed ? 20 : a.h / 2);
    let best = '', bestD = Infinity;
    for (const [p, b] of this.lay.boxes) {
      if (p === path) continue;
      const bx = b.x + b.w / 2, by = b.y + (b.group && !b.collapsed ? 20 : b.h / 2);
      const along = (bx - ax) * dx + (by - ay) * dy;
      if (along <= 1) continue;
      const across = Math.abs((bx - ax) * dy) + Math.abs((by - ay) * dx);
      const d = along + 2.5 * across;
      if (d < bestD) { bestD = d; best = p; }
    }
    return best;
  }

  markSelected(path) {
    const old = this.views.get(this.selected);
    if (old) old.el.classList.remove('selected');
    this.selected = path;
    const v = this.views.get(path);
    if (v) v.el.classList.add('selected');
  }
  flash(path) {
    const v = this.views.get(path);
    if (!v) return;
    v.el.classList.add('found');
    setTimeout(() => v.el.classList.remove('found'), 1600);
  }

  // -- minimap ------------------------------------------------------------------
  buildMini() {
    clear(this.mini);
    this.miniRects = [];
    if (!this.lay || !(this.lay.bbox.w > 0 && this.lay.bbox.h > 0)) { this.mini.hidden = true; this.miniRects = null; this.miniView = null; return; }
    const bb = this.lay.bbox;
    const sc = Math.min(MINI_W / bb.w, MINI_H / bb.h);
    this.miniScale = sc;
    this.miniOx = bb.x - (MINI_W / sc - bb.w) / 2;
    this.miniOy = bb.y - (MINI_H / sc - bb.h) / 2;
    const g = s('g', { transform: `scale(${sc}) translate(${-this.miniOx},${-this.miniOy})` });
    for (const [p, b] of this.lay.boxes) {
      const open = b.group && !b.collapsed;
      const r = s('rect', { class: open ? 'mgroup' : 'mnode', x: b.x, y: b.y, width: b.w, height: b.h, 'data-status': 'idle' });
      g.appendChild(r);
      if (!open) this.miniRects.push([p, r]);
    }
    this.miniView = s('rect', { class: 'mview', x: 0, y: 0, width: 0, height: 0 });
    g.appendChild(this.miniView);
    this.mini.appendChild(g);
    this.paintMini();
  }
  paintMini() {
    if (!this.miniRects || !this.run) return;
    for (const [p, r] of this.miniRects) {
      const v = this.views.get(p);
      setAttr(r, 'data-status', v ? v.el.getAttribute('data-status') : 'idle');
    }
  }
  drawMini() {
    if (!this.lay || !this.view || !this.miniView) { this.mini.hidden = true; return; }
    const v = this.view, bb = this.lay.bbox;
    // Shown only when part of the graph is out of view.
    const all = v.x <= bb.x + 1 && v.y <= bb.y + 1 && v.x + v.w >= bb.x + bb.w - 1 && v.y + v.h >= bb.y + bb.h - 1;
    this.mini.hidden = all;
    this.miniView.setAttribute('x', v.x); this.miniView.setAttribute('y', v.y);
    this.miniView.setAttribute('width', v.w); this.miniView.setAttribute('height', v.h);
  }

  /** Crossings and overlaps of what is drawn (tests, diagnostics). */
  quality() {
    return this.lay ? Object.assign(layoutQuality(this.lay), { layoutMs: this.layoutMs, boxes: this.lay.boxes.size }) : null;
  }
}
