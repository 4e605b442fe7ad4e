/*
 * fmt.js - formatting of numbers, durations, times and ids for display.
 *
 * Pure functions (no DOM), unit-tested in tests/web/fmt.test.mjs.  Times are
 * shown either in the browser's zone or in UTC (the JSON's own zone); every
 * formatted time can be labelled with its zone so a reader never guesses.
 */

const intFmt = new Intl.NumberFormat('en-US');

/** A finite number or undefined. */
export function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function fmtInt(n) {
  return n === undefined || n === null || !Number.isFinite(n) ? '–' : intFmt.format(Math.round(n));
}

/** 1234 -> "1,234", 12345 -> "12.3k", 1234567 -> "1.23M". */
export function fmtCompact(n) {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
  return fmtInt(n);
}

/** Seconds as a short human duration ("840 µs", "12.3 ms", "1.20 s", "2.5 min"). */
export function fmtDur(sec) {
  if (sec === undefined || sec === null || !Number.isFinite(sec) || sec < 0) return '–';
  if (sec < 0.001) return (sec * 1e6).toFixed(0) + ' µs';
  if (sec < 1) return (sec * 1e3).toFixed(sec < 0.01 ? 2 : sec < 0.1 ? 1 : 0) + ' ms';
  if (sec < 120) return sec.toFixed(2) + ' s';
  return (sec / 60).toFixed(1) + ' min';
}

/** A 0..1 ratio as a percentage; null/undefined -> "–". */
export function fmtPct(ratio) {
  if (ratio === undefined || ratio === null || !Number.isFinite(ratio)) return '–';
  const v = ratio * 100;
  return v.toFixed(v >= 99.95 || v === 0 || v === 100 ? 0 : 1) + '%';
}

const pad2 = (n) => (n < 10 ? '0' : '') + n;
const pad3 = (n) => (n < 10 ? '00' : n < 100 ? '0' : '') + n;

/** Milliseconds since the epoch of an ISO 8601 text, or NaN. */
export function parseTs(ts) {
  return typeof ts === 'string' && ts ? Date.parse(ts) : NaN;
}

/** "HH:MM:SS.mmm" of an epoch-ms time, in UTC or in the browser's zone. */
export function fmtClock(ms, utc, withMs = true) {
  if (!Number.isFinite(ms)) return '--:--:--';
  const d = new Date(ms);
  const h = utc ? d.getUTCHours() : d.getHours();
  const m = utc ? d.getUTCMinutes() : d.getMinutes();
  const s = utc ? d.getUTCSeconds() : d.getSeconds();
  const t = pad2(h) + ':' + pad2(m) + ':' + pad2(s);
  return withMs ? t + '.' + pad3(utc ? d.getUTCMilliseconds() : d.getMilliseconds()) : t;
}

/** "2026-11-30 14:03:22.123 UTC" (or the local zone's offset). */
export function fmtDateTime(ms, utc) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const y = utc ? d.getUTCFullYear() : d.getFullYear();
  const mo = (utc ? d.getUTCMonth() : d.getMonth()) + 1;
  const da = utc ? d.getUTCDate() : d.getDate();
  return `${y}-${pad2(mo)}-${pad2(da)} ${fmtClock(ms, utc)} ${zoneLabel(utc, ms)}`;
}

/** "UTC", or the browser zone's offset at that time ("UTC+01:00"). */
export function zoneLabel(utc, ms = Date.now()) {
  if (utc) return 'UTC';
  const off = -new Date(ms).getTimezoneOffset();
  if (off === 0) return 'UTC+00:00';
  const a = Math.abs(off);
  return 'UTC' + (off > 0 ? '+' : '-') + pad2(Math.floor(a / 60)) + ':' + pad2(a % 60);
}

/** A compact zone name for column headers: "UTC", "UTC+1", "UTC-5:30". */
export function zoneShort(utc, ms = Date.now()) {
  if (utc) return 'UTC';
  const off = -new Date(ms).getTimezoneOffset();
  if (off === 0) return 'UTC';
  const a = Math.abs(off), m = a % 60;
  return 'UTC' + (off > 0 ? '+' : '-') + Math.floor(a / 60) + (m ? ':' + pad2(m) : '');
}

export function clip(text, n) {
  text = String(text);
  return text.length > n ? text.slice(0, Math.max(1, n - 1)) + '…' : text;
}

/**
 * How to tell ids apart in a label: the shortest suffix (>= min, <= max
 * characters) that differs between all of them, else the shortest such
 * prefix.  Run ids of one producer share a long prefix (instance + time) and
 * differ at the end, so a label shows the end, not the first eight
 * characters.  Returns {from: 'end' | 'start', n}.
 */
export function distinctPart(ids, min = 4, max = 12) {
  const list = Array.from(new Set(ids));
  const unique = (f) => { const seen = new Set(); for (const id of list) { const k = f(id); if (seen.has(k)) return false; seen.add(k); } return true; };
  for (let n = min; n <= max; n++) if (unique((id) => id.slice(-n))) return { from: 'end', n };
  for (let n = min; n <= max; n++) if (unique((id) => id.slice(0, n))) return { from: 'start', n };
  return { from: 'end', n: max };
}

/** The shortest unique suffix length (see distinctPart). */
export function uniqueSuffixLen(ids, min = 4, max = 12) {
  const d = distinctPart(ids, min, max);
  return d.from === 'end' ? d.n : max;
}

/** "…000066" (or "cea2b03b…") for an id; short ids are shown whole. */
export function idTail(id, n, from = 'end') {
  if (id.length <= n + 1) return id;
  return from === 'start' ? id.slice(0, n) + '…' : '…' + id.slice(-n);
}

/** A round upper bound for a chart axis with four steps. */
export function niceMax(v) {
  if (!(v > 4)) return 4;
  const step = v / 4;
  const q = Math.pow(10, Math.floor(Math.log10(step)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * q >= step) return 4 * m * q;
  return 40 * q;
}
