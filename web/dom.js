/*
 * dom.js - building page elements from untrusted data, safely.
 *
 * Event data reaches the page only as text (createTextNode / textContent)
 * or as inert attribute values; nothing here (or anywhere in web/) uses
 * innerHTML, outerHTML, insertAdjacentHTML or eval, so a "<script>" in an
 * event is shown, never run.
 */
export const SVGNS = 'http://www.w3.org/2000/svg';

function build(ns, tag, attrs, children) {
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const v = attrs[k];
      if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
    }
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element; string/number children become text nodes. */
export const h = (tag, attrs, ...children) => build(null, tag, attrs, children);
/** An SVG element; string/number children become text nodes. */
export const s = (tag, attrs, ...children) => build(SVGNS, tag, attrs, children);

export const $ = (id) => document.getElementById(id);

/** Set text only when it changed (no layout work for equal text). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el, name, value) {
  const v = String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Text width in px for the layout, measured once per (text, kind) with a canvas. */
export function textMeasurer() {
  const ctx = document.createElement('canvas').getContext('2d');
  const fonts = {
    title: '600 13px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif',
    mono: '11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
    text: '11px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif',
  };
  const cache = new Map();
  return (text, kind) => {
    const k = kind + '\u0000' + text;
    let w = cache.get(k);
    if (w === undefined) {
      ctx.font = fonts[kind] || fonts.text;
      w = ctx.measureText(text).width;
      if (cache.size > 5000) cache.clear();
      cache.set(k, w);
    }
    return w;
  };
}
