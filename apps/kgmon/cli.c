/* cli.c - see cli.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kgmon %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see kgmon %s --help)\n", cmd);
    va_end(ap);
    return KGMON_USAGE;
}

/* Digits, without a leading zero unless the digits are "0": the number of
 * them (0 when there are none or a leading zero). */
static size_t canonical_digits(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 1 && s[0] == '0' ? 0 : n;
}

/* strtoull and strtod accept more than a person means to type (" 1", "+1",
 * "1e3", "0x1p3", "inf"), so the form is checked first. */
bool cli_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    size_t n = s ? canonical_digits(s) : 0;
    if (n == 0 || s[n] != '\0')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_double(const char *s, double min, double max, double *out)
{
    if (!s)
        return false;
    const char *p = s + (*s == '-' && min < 0);
    size_t n = canonical_digits(p);
    if (n == 0)
        return false;
    p += n;
    if (*p == '.') {
        size_t f = strspn(p + 1, "0123456789");
        if (f == 0)
            return false;
        p += 1 + f;
    }
    if (*p != '\0')
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_list_each(const char *list, bool (*each)(const char *word, size_t len, void *ud),
                   void *ud)
{
    if (!list)
        return false;
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        const char *w = p, *e = p + n;
        while (w < e && *w == ' ')
            w++;
        while (e > w && e[-1] == ' ')
            e--;
        if (e == w || (each && !each(w, (size_t)(e - w), ud)))
            return false;
        p += n;
        if (!*p)
            return true;
    }
}

static bool host_char(char c, bool v6)
{
    return v6 ? isxdigit((unsigned char)c) || c == ':' || c == '.'
              : isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

const char *cli_parse_url(const char *s, const char *const *schemes, bool userinfo_ok,
                          cli_url *out)
{
    memset(out, 0, sizeof *out);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "contains a space or a control character";
    const char *sep = strstr(s, "://");
    size_t sn = sep ? (size_t)(sep - s) : 0;
    for (size_t i = 0; sep && schemes[i] && !out->scheme[0]; i++)
        if (strlen(schemes[i]) == sn && strncasecmp(s, schemes[i], sn) == 0)
            memcpy(out->scheme, schemes[i], sn + 1);
    if (!out->scheme[0])
        return "has a scheme that is not supported here";
    const char *auth = sep + 3;
    size_t an = strcspn(auth, "/?#");
    out->rest = auth + an;
    const char *at = memchr(auth, '@', an);
    if (at && !userinfo_ok)
        return "has a user name, which is not supported here";
    const char *h = at ? at + 1 : auth, *end = auth + an;
    bool v6 = h < end && *h == '[';
    const char *he = v6 ? memchr(h, ']', (size_t)(end - h)) : memchr(h, ':', (size_t)(end - h));
    if (v6 && !he)
        return "has an unclosed [IPv6] host";
    if (!he)
        he = end;
    const char *hb = h + v6;
    if (he == hb)
        return "has no host";
    for (const char *c = hb; c < he; c++)
        if (!host_char(*c, v6))
            return "has a bad host";
    const char *after = he + v6;
    out->port = strcmp(out->scheme, "https") == 0 || strcmp(out->scheme, "wss") == 0 ? 443 : 80;
    if (after < end) {
        char port[8];
        size_t pn = (size_t)(end - after - 1);
        unsigned long long v;
        if (*after != ':' || pn == 0 || pn >= sizeof port)
            return "has a bad port";
        memcpy(port, after + 1, pn);
        port[pn] = '\0';
        if (!cli_parse_uint(port, 1, 65535, &v))
            return "has a bad port (1..65535)";
        out->port = (int)v;
    }
    out->host = strndup(hb, (size_t)(he - hb));
    return out->host ? NULL : "cannot be copied (out of memory)";
}

void cli_url_free(cli_url *u)
{
    free(u->host);
    u->host = NULL;
}

bool cli_parse_hostport(const char *s, int default_port, char **host, int *port)
{
    if (!s || !*s)
        return false;
    const char *colon = strrchr(s, ':');
    unsigned long long p = (unsigned long long)default_port;
    size_t host_len = strlen(s);
    if (colon) {
        if (!cli_parse_uint(colon + 1, 1, 65535, &p))
            return false;
        host_len = (size_t)(colon - s);
    } else if (cli_parse_uint(s, 1, 65535, &p)) {
        host_len = 0;
    }
    *host = host_len ? strndup(s, host_len) : strdup("127.0.0.1");
    *port = (int)p;
    return *host != NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool cli_sleep_interruptible(double seconds)
{
    double slept = 0;
    while (slept < seconds && !cli_interrupted) {
        double step = seconds - slept < 0.05 ? seconds - slept : 0.05;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
        slept += step;
    }
    return cli_interrupted != 0;
}

bool cli_is_tty(int fd)
{
    return isatty(fd) == 1;
}

const char *cli_env_token(void)
{
    const char *t = getenv("KGMON_TOKEN");
    return t && *t ? t : NULL;
}
