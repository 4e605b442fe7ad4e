/* backends/redis_reply.h - turning Redis replies into events: the part of the
 * Redis reader that handles what the server (or anything pretending to be it)
 * sends, kept apart so tests/fuzz/fuzz_redis_reply.c can feed it arbitrary
 * replies without a server. */
#ifndef KG_BACKENDS_REDIS_REPLY_H
#define KG_BACKENDS_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kaygraph/redis_reader.h"

/* 1 and the outputs (malloc'd, the caller frees) when `reply` is a published
 * message ("message" or "pmessage"), 0 when it is something else (a
 * subscribe confirmation), negative on allocation failure.  `len` and
 * `channel` may be NULL. */
int kg__take_message(const redisReply *reply, char **json, size_t *len, char **channel);

/* True when `reply` confirms a SUBSCRIBE or PSUBSCRIBE: what a Redis server
 * answers first, and what a peer that is not Redis does not. */
bool kg__is_sub_confirmation(const redisReply *reply);

/* Pass each entry of an XREAD reply ([[key, [[id, [field, value, ...]],
 * ...]]]) to `visit`, borrowed from the reply; entries that do not have that
 * shape are skipped.  Returns the number visited. */
size_t kg__stream_each(const redisReply *v, kg_stream_visit_cb visit, void *ud);

/* Most elements a reply array may declare (1,048,576: far above any reply
 * the reader asks for). */
#define KG__REPLY_MAX_ELEMENTS (1u << 20)

/* Make `reader` refuse arrays that declare more than KG__REPLY_MAX_ELEMENTS
 * elements (the connection fails with an out-of-memory error).  hiredis 0.14
 * allocates the declared size up front and has no limit of its own, so
 * without this a broken or hostile server could make the reader allocate
 * gigabytes with a few bytes (found by fuzz_redis_reply). */
void kg__reply_limit(redisReader *reader);

/* Byte bounds of one connection's replies.  hiredis 0.14 has none: it keeps
 * a bulk string in its read buffer until the last byte of the length the
 * server declared has arrived ("$999999999999" makes it buffer whatever the
 * peer streams), and an array's strings add up without limit.
 *
 *   bulk_max   largest string one reply element may be: checked on the read
 *              buffer after every read (kg__reply_buffer_over), so at most
 *              bulk_max plus one read is ever buffered;
 *   total_max  most bytes of strings in one reply: counted as hiredis
 *              creates them (kg__reply_bound attaches the counter);
 *   used       bytes counted in the reply being read (reset per reply by
 *              the caller); `over` is set when total_max was passed, and
 *              hiredis then fails the connection with "out of memory". */
typedef struct kg__reply_bounds {
    size_t bulk_max;
    size_t total_max;
    size_t used;
    bool over;
} kg__reply_bounds;

/* kg__reply_limit plus the byte accounting of `b` (borrowed: it must
 * outlive the reader; NULL: arrays only). */
void kg__reply_bound(redisReader *reader, kg__reply_bounds *b);

/* True when the bytes waiting in `reader`'s buffer (the reply element being
 * received) exceed b->bulk_max. */
bool kg__reply_buffer_over(const redisReader *reader, const kg__reply_bounds *b);

#endif
