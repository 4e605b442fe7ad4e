/*
 * runs-page.js - the runs page (#/runs): the run history's runs, newest
 * first, filtered by status, graph, start time and run id, read a page at a
 * time as the list scrolls (runs-query.js pager, GET /api/runs), and a
 * summary per graph (GET /api/graphs: runs, success rate, p50 / p95).
 *
 * The filters are in the address, so a filtered list can be reloaded or
 * shared; a row is a link to the run's page (#/runs/<id>).  Keyboard: ↑/↓
 * (PgUp/PgDn, Home/End) move between rows, Enter opens one; the last row's
 * ↓ reads the next page.  Statuses show a glyph and a word with the colour.
 */
import { $, h, clear, setText } from './dom.js';
import { fmtDur, fmtInt, fmtPct, fmtDateTime, idTail, distinctPart } from './fmt.js';
import { parseRun, parseGraphs } from './history.js';
import { filtersFromQuery, filtersToQuery, createPager, graphsUrl, localInputToIso, isoToLocalInput, STATUSES, PAGE_SIZE } from './runs-query.js';
import { runPageHref } from './router.js';

export const RUN_GLYPH = { running: '▶', success: '✓', failed: '✕', stale: '‖', unknown: '?' };
const RANGES = ['', '1h', '24h', '7d', '30d'];

export class RunsPage {
  /** cb: {api, utc(), setRoute(loc, replace), notice(text)} */
  constructor(cb) {
    this.cb = cb;
    this.key = null;
    this.pager = null;
    this.graphsKey = null;
    this.perf = {};
    this.tbody = $('runs-tbody');
    const form = $('runs-filters');
    form.addEventListener('submit', (e) => e.preventDefault());
    for (const box of form.querySelectorAll('input[name="rf-status"]')) box.addEventListener('change', () => this.commit(false));
    $('rf-graph').addEventListener('change', () => this.commit(false));
    $('rf-nested').addEventListener('change', () => this.commit(false));
    $('rf-range').addEventListener('change', () => {
      $('rf-custom').hidden = $('rf-range').value !== 'custom';
      if ($('rf-range').value !== 'custom') this.commit(false);
      else $('rf-since').focus();
    });
    for (const id of ['rf-since', 'rf-until']) $(id).addEventListener('change', () => this.commit(false));
    let timer = 0;
    $('rf-q').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => this.commit(true), 300); });
    $('rf-q').addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(timer); this.commit(false); } });
    $('rf-clear').addEventListener('click', () => this.cb.setRoute({ page: 'runs', query: '' }));
    $('runs-refresh').addEventListener('click', () => { this.key = null; this.graphsKey = null; this.show(this.query || ''); });
    $('runs-more-btn').addEventListener('click', () => this.more(true));
    this.tbody.addEventListener('keydown', (e) => this.onKey(e));
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) this.more(false); }, { rootMargin: '400px' }).observe($('runs-more'));
  }

  /**
   * Show the list for a query (the address's filters).  Coming back to the
   * same filters soon after (back from a run's page) keeps the rows read and
   * the scroll position; later, the list is read again.
   */
  show(query, entering) {
    this.query = query;
    const f = filtersFromQuery(query);
    this.fillControls(f);
    const key = filtersToQuery(f);
    document.title = 'kaygraph · runs';
    if (key === this.key && !(entering && performance.now() - this.loadedAt > 15000)) return;
    this.loadedAt = performance.now();
    this.key = key;
    this.filters = f;
    this.perf = { start: performance.now() };
    this.pager = createPager(f, PAGE_SIZE);
    this.focusNext = false;
    clear(this.tbody);
    if (!entering) window.scrollTo(0, 0);   // other filters: a new list, from its top
    this.tail = null;
    setText($('runs-count'), 'reading the run history…');
    this.more(false);
    this.loadGraphs(f);
  }
  hide() {}

  /** The controls as the filters say (after a reload, back/forward or a shared link). */
  fillControls(f) {
    for (const box of $('runs-filters').querySelectorAll('input[name="rf-status"]')) box.checked = f.status.includes(box.value);
    const g = $('rf-graph');
    if (f.graph && ![...g.options].some((o) => o.value === f.graph)) g.append(new Option(f.graph, f.graph));
    g.value = f.graph;
    $('rf-nested').checked = f.nested;
    const custom = !!(f.until || (f.since && !RANGES.includes(f.since)));
    $('rf-range').value = custom ? 'custom' : f.since;
    $('rf-custom').hidden = !custom;
    const utc = this.cb.utc();
    if (custom) { $('rf-since').value = isoToLocalInput(f.since, utc); $('rf-until').value = isoToLocalInput(f.until, utc); }
    if (document.activeElement !== $('rf-q')) $('rf-q').value = f.q;
  }

  /** The controls' filters into the address (typing replaces the history entry). */
  commit(replace) {
    const f = { status: [...$('runs-filters').querySelectorAll('input[name="rf-status"]:checked')].map((b) => b.value).filter((v) => STATUSES.includes(v)),
      graph: $('rf-graph').value, since: '', until: '', q: $('rf-q').value.trim(), nested: $('rf-nested').checked };
    const range = $('rf-range').value;
    if (range === 'custom') {
      const utc = this.cb.utc();
      f.since = localInputToIso($('rf-since').value, utc);
      f.until = localInputToIso($('rf-until').value, utc);
    } else f.since = range;
    this.cb.setRoute({ page: 'runs', query: filtersToQuery(f) }, replace);
  }

  async more(fromKey) {
    const p = this.pager;
    const url = p && p.next();
    if (!url) { if (fromKey && p && p.pending) this.focusNext = true; return; }   // ↓ while a page is on its way
    this.updateFooter();
    const r = await this.cb.api.get(url);
    if (p !== this.pager) return;
    if (!r.ok) { p.fail(url, r.error); this.updateFooter(); return; }
    const added = p.accept(url, r.body, parseRun);
    this.append(added);
    if (p.pages === 1) { this.perf.firstRender = performance.now() - this.perf.start; this.perf.firstAt = performance.now(); }
    this.updateFooter();
    if ((fromKey || this.focusNext) && added.length) this.focusRow(this.tbody.children[this.tbody.children.length - added.length]);
    this.focusNext = false;
    // Short pages on a tall window: keep reading until the footer leaves the view.
    const foot = $('runs-more').getBoundingClientRect();
    if (!p.done && !$('runs-page').hidden && foot.top < window.innerHeight + 200) this.more(false);
  }

  append(rows) {
    if (!rows.length) return;
    if (!this.tail) this.tail = distinctPart(rows.map((r) => r.id), 6, 12);
    const utc = this.cb.utc();
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const link = h('a', { class: 'run-link', href: runPageHref(r.id), title: r.id, 'aria-label': `run ${r.id}, ${r.status}` },
        h('span', { class: 'rid-full' }, r.id), h('span', { class: 'rid-tail' }, idTail(r.id, this.tail.n, this.tail.from)));
      const err = r.error || '';
      frag.append(h('tr', { 'data-run-id': r.id, 'data-status': r.status },
        h('td', { class: 'rs-status' }, h('span', { class: 'rs-glyph', 'aria-hidden': 'true' }, RUN_GLYPH[r.status] || '?'), ' ', r.status),
        h('td', { class: 'rs-id' }, link),
        h('td', { class: 'rs-graph', title: r.graphType }, r.graph || '–'),
        h('td', { class: 'rs-time' }, Number.isFinite(r.startMs) ? fmtDateTime(r.startMs, utc).replace(/ UTC.*$/, '') : '–'),
        h('td', { class: 'num' }, fmtDur(r.duration)),
        h('td', { class: 'num' }, fmtInt(r.executions)),
        h('td', { class: 'num' }, fmtInt(r.events)),
        h('td', { class: 'num' + (r.errors ? ' bad' : '') }, fmtInt(r.errors)),
        h('td', { class: 'rs-final' + (err ? ' bad' : ''), title: err || r.finalAction }, err ? `✕ ${err}` : r.finalAction || '')));
    }
    this.tbody.append(frag);
  }

  updateFooter() {
    const p = this.pager;
    const n = p.rows.length;
    const btn = $('runs-more-btn');
    btn.hidden = p.done;
    btn.disabled = !!p.pending;
    setText(btn, p.pending ? 'Reading…' : p.error ? 'Try again' : 'Load more');
    let text;
    if (p.error) text = `Could not read the runs: ${p.error}`;
    else if (!n && p.done) text = this.key ? 'No run matches these filters.' : 'No runs stored yet.';
    else if (p.capped) text = `The first ${fmtInt(n)} runs are listed: narrow the filters to see older ones.`;
    else if (p.done) text = `${fmtInt(n)} run${n === 1 ? '' : 's'} — the end of the list.`;
    else text = `${fmtInt(n)} runs so far (newest first)`;
    setText($('runs-end'), p.done || p.error ? text : '');
    setText($('runs-count'), p.error ? text : `${fmtInt(n)}${p.done ? '' : '+'} run${n === 1 ? '' : 's'}`);
    $('runs-count').classList.toggle('bad', !!p.error);
  }

  async loadGraphs(f) {
    const key = f.since || '';
    if (key === this.graphsKey) return;
    this.graphsKey = key;
    const r = await this.cb.api.get(graphsUrl(f));
    if (key !== this.graphsKey) return;
    const box = $('graph-cards');
    clear(box);
    if (!r.ok) { box.append(h('p', { class: 'muted' }, `No graph summary: ${r.error}`)); setText($('graphs-range'), ''); return; }
    const g = parseGraphs(r.body);
    const since = Date.parse(g.since);
    setText($('graphs-range'), Number.isFinite(since) ? `top-level runs started since ${fmtDateTime(since, this.cb.utc())}${g.truncated ? ' (the newest 200,000)' : ''}` : '');
    // The graph filter offers every graph the summary knows.
    const sel = $('rf-graph');
    for (const x of g.graphs) if (x.graph && ![...sel.options].some((o) => o.value === x.graph)) sel.append(new Option(x.graph, x.graph));
    sel.value = this.filters.graph;
    if (!g.graphs.length) { box.append(h('p', { class: 'muted' }, 'No runs in this range.')); return; }
    for (const x of g.graphs) {
      const b = h('button', { class: 'gcard', type: 'button', 'data-graph': x.graph, 'aria-pressed': String(this.filters.graph === x.graph),
        title: `Show only the runs of ${x.graph}` },
      h('span', { class: 'gcard-name' }, x.graph || '(no graph)'),
      h('span', { class: 'gcard-runs' }, `${fmtInt(x.runs)} run${x.runs === 1 ? '' : 's'}`),
      h('span', { class: 'gcard-rate' + (x.failed ? ' warn' : '') }, `${RUN_GLYPH.success} ${fmtPct(x.successRate)} succeeded`),
      h('span', { class: 'gcard-dur' }, `p50 ${fmtDur(x.p50)} · p95 ${fmtDur(x.p95)}`),
      h('span', { class: 'gcard-sub' }, [x.failed ? `${RUN_GLYPH.failed} ${fmtInt(x.failed)} failed` : '', x.running ? `${RUN_GLYPH.running} ${fmtInt(x.running)} running` : '',
        Number.isFinite(x.lastStartMs) ? `last ${fmtDateTime(x.lastStartMs, this.cb.utc()).slice(0, 19)}` : ''].filter(Boolean).join(' · ')));
      b.addEventListener('click', () => {
        const f2 = Object.assign({}, this.filters, { graph: this.filters.graph === x.graph ? '' : x.graph });
        this.cb.setRoute({ page: 'runs', query: filtersToQuery(f2) });
      });
      box.append(b);
    }
  }

  focusRow(tr) {
    if (!tr) return;
    const a = tr.querySelector('a');
    if (a) { a.focus(); tr.scrollIntoView({ block: 'nearest' }); }
  }
  onKey(e) {
    const tr = e.target.closest('tr');
    if (!tr) return;
    const rows = this.tbody.children;
    const i = [...rows].indexOf(tr);
    const page = Math.max(1, Math.floor(window.innerHeight / 30) - 2);
    let j = -1;
    switch (e.key) {
      case 'ArrowDown': if (i === rows.length - 1) { e.preventDefault(); this.more(true); return; } j = i + 1; break;
      case 'ArrowUp': j = Math.max(0, i - 1); break;
      case 'PageDown': j = Math.min(rows.length - 1, i + page); break;
      case 'PageUp': j = Math.max(0, i - page); break;
      case 'Home': j = 0; break;
      case 'End': j = rows.length - 1; break;
      default: return;
    }
    e.preventDefault();
    this.focusRow(rows[j]);
  }

  /** Times changed zone: draw the rows again. */
  redrawTimes() {
    if (!this.pager) return;
    clear(this.tbody);
    this.append(this.pager.rows);
    this.graphsKey = null;
    this.loadGraphs(this.filters);
  }

  figures() { return Object.assign({ rows: this.pager ? this.pager.rows.length : 0, pages: this.pager ? this.pager.pages : 0, done: !!(this.pager && this.pager.done) }, this.perf); }
}
