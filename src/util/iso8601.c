/* util/iso8601.c - see iso8601.h. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/iso8601.h"

void kg_iso8601_format(char out[32], int64_t unix_ns)
{
    int64_t sec = unix_ns / 1000000000, frac = unix_ns % 1000000000;
    if (frac < 0) {   /* before 1970: floor, so the fraction stays positive */
        sec--;
        frac += 1000000000;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%06ldZ", date, (long)(frac / 1000));
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The fraction after the seconds, as milliseconds; p is moved past it.
 * -1 when a '.' has no digits. */
static int parse_fraction_ms(const char **p)
{
    if (**p != '.')
        return 0;
    (*p)++;
    int ms = 0, n = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++, n++)
        if (n < 3)
            ms = ms * 10 + (**p - '0');
    if (!n)
        return -1;
    for (; n < 3; n++)
        ms *= 10;
    return ms;
}

/* The zone designator as seconds east of UTC; false when malformed. */
static bool parse_zone(const char **p, int *off)
{
    *off = 0;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
    } else if (**p == '+' || **p == '-') {
        int oh, om;
        const char *z = *p;
        if (!digits(z + 1, 2, &oh) || z[3] != ':' || !digits(z + 4, 2, &om))
            return false;
        *off = (oh * 60 + om) * 60 * (*z == '-' ? -1 : 1);
        *p += 6;
    }
    return true;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm):
 * timegm without the TZ environment games. */
static int64_t days_from_civil(int Y, int M, int D)
{
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

int64_t kg_iso8601_parse_ms(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM) */
    int Y, M, D, h, m, sec, off;
    if (strlen(s) < 19 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) ||
        s[7] != '-' || !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &m) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    int ms = parse_fraction_ms(&p);
    if (ms < 0 || !parse_zone(&p, &off) || *p)
        return -1;
    int64_t t = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
    return t * 1000 + ms;
}
