/*
 * theme.js - light / dark theme and the time zone shown, remembered per
 * browser.  "auto" follows prefers-color-scheme; the toggle cycles
 * auto -> light -> dark.  Times are shown in the browser's zone or in UTC
 * (the zone of the events' own timestamps).
 */
const THEMES = ['auto', 'light', 'dark'];

function load(key, dflt) {
  try { return localStorage.getItem(key) || dflt; } catch (e) { return dflt; }
}
function save(key, v) {
  try { localStorage.setItem(key, v); } catch (e) { /* private mode: not remembered */ }
}

export class Preferences {
  constructor(onChange) {
    this.onChange = onChange;
    this.theme = THEMES.includes(load('kg-theme', 'auto')) ? load('kg-theme', 'auto') : 'auto';
    this.utc = load('kg-utc', '0') === '1';
    this.media = window.matchMedia('(prefers-color-scheme: light)');
    this.media.addEventListener('change', () => { if (this.theme === 'auto') this.apply(); });
    this.apply();
  }
  /** The theme in effect: light or dark. */
  get effective() {
    return this.theme === 'auto' ? (this.media.matches ? 'light' : 'dark') : this.theme;
  }
  cycleTheme() {
    this.theme = THEMES[(THEMES.indexOf(this.theme) + 1) % THEMES.length];
    save('kg-theme', this.theme);
    this.apply();
  }
  setTheme(t) {
    if (!THEMES.includes(t)) return;
    this.theme = t;
    save('kg-theme', t);
    this.apply();
  }
  toggleUtc() {
    this.utc = !this.utc;
    save('kg-utc', this.utc ? '1' : '0');
    this.onChange('zone');
  }
  apply() {
    const root = document.documentElement;
    root.setAttribute('data-theme', this.effective);
    root.setAttribute('data-theme-choice', this.theme);
    this.onChange('theme');
  }
}
