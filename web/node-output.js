/*
 * node-output.js - what a node reported about itself (issue 14: node_log
 * lines, custom metrics, progress, custom events) as page elements, for the
 * node panel and the run page.
 *
 * Log lines show their level in colour AND as a word with a glyph, the
 * message as text only (dom.js: never markup), structured fields folded
 * into a <details> that opens on click or Enter.  Metrics are shown by kind:
 * a counter's reports add up, a gauge is its last value, a histogram its
 * spread.  The text helpers are pure (tests/web/node-output.test.mjs).
 */
import { h } from './dom.js';
import { fmtClock, fmtInt } from './fmt.js';

export const LEVEL_GLYPH = { debug: '·', info: 'i', warning: '⚠', error: '✕' };

/** "40/100" (and the share when total is not 100); "40 done" when the total is not known (0). */
export function progressText(p) {
  if (!p) return '';
  if (!(p.total > 0)) return `${fmtNum(p.done)} done`;
  const t = `${fmtNum(p.done)}/${fmtNum(p.total)}`;
  return p.total === 100 ? t : `${t} (${Math.round((100 * p.done) / p.total)}%)`;
}

/** The filled share of a progress bar, 0..1 (0 when the total is not known). */
export const progressShare = (p) => (p && p.total > 0 ? Math.max(0, Math.min(1, p.done / p.total)) : 0);

/** A number as people write it: integers whole, others to 4 significant digits. */
export function fmtNum(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v)) return fmtInt(v);
  return String(Number(v.toPrecision(4)));
}

/** One metric's value in words, by its kind (store.js addMetric keeps count/sum/min/max/last). */
export function metricValue(m) {
  const u = m.unit ? ' ' + m.unit : '';
  if (m.kind === 'counter') return `${fmtNum(m.sum)}${u} in all (${fmtInt(m.count)} report${m.count === 1 ? '' : 's'})`;
  if (m.kind === 'histogram') return `${fmtInt(m.count)} values · min ${fmtNum(m.min)} · avg ${fmtNum(m.sum / m.count)} · max ${fmtNum(m.max)}${u}`;
  return `${fmtNum(m.last)}${u}` + (m.count > 1 ? ` (last of ${fmtInt(m.count)})` : '');
}

const json = (v) => { try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); } };

/**
 * Log lines, oldest first.  opts: utc, label(line) -> '' | "item 3" (which
 * execution, when a node ran several times), max (newest kept).
 */
export function logList(lines, opts = {}) {
  const max = opts.max || 200;
  const shown = lines.length > max ? lines.slice(-max) : lines;
  const ol = h('ol', { class: 'nl-list', 'aria-label': 'Log lines' });
  for (const l of shown) {
    const label = opts.label ? opts.label(l) : '';
    const li = h('li', { class: 'nl', 'data-level': l.level },
      h('span', { class: 'nl-time' }, fmtClock(l.tsMs, opts.utc)),
      h('span', { class: 'nl-level' }, `${LEVEL_GLYPH[l.level] || '?'} ${l.level.toUpperCase()}`),
      label ? h('span', { class: 'nl-exec' }, label) : null,
      h('span', { class: 'nl-msg' }, l.message, l.truncated ? h('span', { class: 'nl-cut', title: 'The producer cut this line (message over 2,048 bytes or fields over 4,096)' }, ' [cut]') : null));
    if (l.fields && Object.keys(l.fields).length) {
      const n = Object.keys(l.fields).length;
      li.append(h('details', { class: 'nl-fields' }, h('summary', null, `fields (${n})`), h('pre', null, json(l.fields))));
    }
    ol.append(li);
  }
  return ol;
}

/** Custom metrics of a node (Map name -> metric) as a table. */
export function metricsTable(metrics) {
  const tb = h('tbody');
  for (const m of [...metrics.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    tb.append(h('tr', { 'data-metric': m.name }, h('td', null, m.name), h('td', null, m.kind), h('td', { class: 'nm-val' }, metricValue(m))));
  }
  return h('div', { class: 'np-table-wrap' }, h('table', { class: 'np-table nm-table' },
    h('thead', null, h('tr', null, h('th', null, 'metric'), h('th', null, 'kind'), h('th', null, 'value'))), tb));
}

/** Custom events, oldest first: time, name, data folded. */
export function customList(list, opts = {}) {
  const ol = h('ol', { class: 'nl-list', 'aria-label': 'Custom events' });
  for (const c of list.slice(-(opts.max || 50))) {
    ol.append(h('li', { class: 'nl nc', 'data-level': 'info' },
      h('span', { class: 'nl-time' }, fmtClock(c.tsMs, opts.utc)),
      h('span', { class: 'nl-level' }, '◆ EVENT'),
      h('span', { class: 'nl-msg' }, c.name),
      c.data !== undefined ? h('details', { class: 'nl-fields' },
        h('summary', null, c.truncated ? `data (cut${c.originalSize !== undefined ? `: ${fmtInt(c.originalSize)} bytes of JSON` : ''})` : 'data'),
        h('pre', null, c.truncated && typeof c.data === 'string' ? c.data : json(c.data))) : null));
  }
  return ol;
}

/** A progress bar with its text, for the node panel ("40/100"). */
export function progressBar(p) {
  const fill = h('span', { class: 'np-progress-fill' });
  fill.style.width = (100 * progressShare(p)).toFixed(1) + '%';   // CSSOM: the server's CSP refuses style attributes
  return h('div', { class: 'np-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': p.total > 0 ? p.total : null,
    'aria-valuenow': p.total > 0 ? p.done : null, 'aria-valuetext': progressText(p) },
    h('span', { class: 'np-progress-track' }, fill), h('span', { class: 'np-progress-text' }, progressText(p)));
}
