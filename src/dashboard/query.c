/* dashboard/query.c - query strings and percent-decoding, for the HTTP
 * routes and the WebSocket upgrade alike. */
#include <string.h>

#include "query.h"

static int kg__hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool kg__url_decode(const char *s, size_t n, char *out, size_t outlen, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && kg__hexval(s[i + 1]) >= 0 && kg__hexval(s[i + 2]) >= 0) {
            c = (char)(kg__hexval(s[i + 1]) * 16 + kg__hexval(s[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= outlen)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return true;
}

bool kg__query_get(const char *query, const char *name, char *out, size_t outlen)
{
    if (!query)
        return false;
    size_t nlen = strlen(name);
    const char *p = query;
    while (*p) {
        size_t n = strcspn(p, "&");
        if (n > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
            return kg__url_decode(p + nlen + 1, n - nlen - 1, out, outlen, true);
        p += n;
        if (*p == '&')
            p++;
    }
    return false;
}
