/*
 * api.js - GET requests to the dashboard's JSON routes (docs/protocol.md,
 * docs/history.md), with the token when the page was opened with ?token=.
 *
 * Answers come back as {ok, status, body, error}: error is the server's own
 * words ({"error": "…"}) or what went wrong on the way, never an exception,
 * so every caller can show why something is missing.  A request can be
 * cancelled (AbortController) when the page moves on.
 */
export function createApi(token) {
  const headers = token ? { Authorization: 'Bearer ' + token } : {};
  return {
    async get(url, signal) {
      let r;
      try { r = await fetch(url, { headers, signal, cache: 'no-store' }); } catch (e) {
        return { ok: false, status: 0, body: null, error: e.name === 'AbortError' ? 'cancelled' : `the server did not answer (${e.message})` };
      }
      let body = null;
      try { body = await r.json(); } catch (e) { /* not JSON: the status says enough */ }
      const error = r.ok ? '' : (body && typeof body.error === 'string' ? body.error : `HTTP ${r.status}`);
      return { ok: r.ok && body !== null, status: r.status, body, error: r.ok && body === null ? 'the answer was not JSON' : error };
    },
  };
}
