/* util/iso8601.h - timestamps as events carry them: ISO 8601, UTC.
 *
 * Written with microseconds ("2026-11-27T17:36:13.123456Z", 27 characters);
 * read with any number of fraction digits and a Z or +HH:MM / -HH:MM zone,
 * since events may come from other producers. */
#ifndef KG_UTIL_ISO8601_H
#define KG_UTIL_ISO8601_H

#include <stdint.h>

#define KG_ISO8601_LEN 27

/* Format `unix_ns` (ns since the epoch) into out (NUL-terminated). */
void kg_iso8601_format(char out[32], int64_t unix_ns);

/* Parse to Unix milliseconds; -1 when `s` is not such a timestamp. */
int64_t kg_iso8601_parse_ms(const char *s);

#endif
