/* dashboard/auth.c - who may talk to the dashboard: token, Origin and Host rules.
 *
 * Pure functions of header values so they are unit-tested without sockets.
 *  - Token: compared in constant time (no early exit on the first differing
 *    byte) wherever it comes from: Bearer header, ?token=, or our cookie.
 *  - Origin: a browser always sends it on a WebSocket upgrade; it must be
 *    the page's own origin (same host:port as the Host header) or listed.
 *    A missing Origin means a non-browser client, which the token governs.
 *  - Host: on a loopback bind only loopback names are accepted, so a DNS
 *    rebinding page (evil.example resolving to 127.0.0.1) is refused even
 *    though its Origin equals its Host. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

bool kg__token_equal(const char *expected, const char *given, size_t given_len)
{
    size_t n = strlen(expected);
    unsigned char diff = (unsigned char)(n != given_len);
    /* Always walk the expected token's length so timing reveals nothing of
     * the prefix that matched. */
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

bool kg__auth_bearer_ok(const char *token, const char *authorization)
{
    if (!authorization)
        return false;
    while (*authorization == ' ')
        authorization++;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    return kg__token_equal(token, t, n);
}

bool kg__auth_cookie_ok(const char *token, const char *cookie)
{
    if (!cookie)
        return false;
    const char *p = cookie;
    while (*p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 9 && strncmp(p, "kg_token=", 9) == 0)
            return kg__token_equal(token, p + 9, n - 9);
        p += n;
    }
    return false;
}

/* "http://host:port" -> "host:port" (lowercased into out). */
static bool kg__origin_hostport(const char *origin, char *out, size_t outlen)
{
    const char *p = strstr(origin, "://");
    if (!p)
        return false;
    p += 3;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)p[i]);
    out[n] = '\0';
    /* An https origin without a port means :443, http :80. */
    if (!strchr(out, ':') || (out[0] == '[' && !strstr(out, "]:"))) {
        const char *port = strncmp(origin, "https", 5) == 0 ? ":443" : ":80";
        if (n + strlen(port) >= outlen)
            return false;
        strcat(out, port);
    }
    return true;
}

static bool kg__host_norm(const char *host, char *out, size_t outlen)
{
    size_t n = strlen(host);
    if (n == 0 || n >= outlen)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)host[i]);
    out[n] = '\0';
    if (!strchr(out, ':') || (out[0] == '[' && !strstr(out, "]:"))) {
        if (n + 3 >= outlen)
            return false;
        strcat(out, ":80");
    }
    return true;
}

bool kg__origin_ok(const char *origin, const char *host, const char *allowed)
{
    if (!origin || !*origin)
        return true;
    if (allowed && *allowed) {
        const char *p = allowed;
        size_t olen = strlen(origin);
        while (*p) {
            while (*p == ',' || *p == ' ')
                p++;
            size_t n = strcspn(p, ",");
            size_t m = n;
            while (m && p[m - 1] == ' ')
                m--;
            if (m && ((m == 1 && *p == '*') || (m == olen && strncasecmp(p, origin, m) == 0)))
                return true;
            p += n;
        }
    }
    if (strcmp(origin, "null") == 0 || !host)
        return false;
    char o[300], h[300];
    if (!kg__origin_hostport(origin, o, sizeof o) || !kg__host_norm(host, h, sizeof h))
        return false;
    return strcmp(o, h) == 0;
}

bool kg__is_loopback_bind(const char *bind)
{
    return bind && (strncmp(bind, "127.", 4) == 0 || strcmp(bind, "::1") == 0 ||
                    strcasecmp(bind, "localhost") == 0);
}

bool kg__host_ok(const char *host, bool loopback_bind)
{
    if (!loopback_bind)
        return true;
    if (!host || !*host)
        return true;   /* HTTP/1.0 without Host: nothing to rebind */
    char h[300];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return false;
    for (size_t i = 0; i <= n; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    /* Strip the port. */
    if (h[0] == '[') {
        char *e = strchr(h, ']');
        if (!e)
            return false;
        e[1] = '\0';
        return strcmp(h, "[::1]") == 0;
    }
    char *colon = strchr(h, ':');
    if (colon)
        *colon = '\0';
    if (strcmp(h, "localhost") == 0 || (strlen(h) > 10 && strcmp(h + strlen(h) - 10, ".localhost") == 0))
        return true;
    if (strncmp(h, "127.", 4) == 0) {
        for (const char *p = h + 4; *p; p++)
            if (!isdigit((unsigned char)*p) && *p != '.')
                return false;
        return true;
    }
    return false;
}
