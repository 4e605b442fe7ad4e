/* dashboard/query.h - query strings and percent-decoding (query.c). */
#ifndef KG_DASH_QUERY_H
#define KG_DASH_QUERY_H

#include <stdbool.h>
#include <stddef.h>

/* Percent-decode n bytes of `s` into out ('+' as a space when plus_space);
 * false when it does not fit or decodes to a NUL. */
bool kg__url_decode(const char *s, size_t n, char *out, size_t outlen, bool plus_space);
/* Value of `name` in a query string, URL-decoded into out; false if absent. */
bool kg__query_get(const char *query, const char *name, char *out, size_t outlen);

#endif
