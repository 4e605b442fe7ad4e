/* backends/redis_reply.h - turning Redis replies into events: the part of the
 * Redis reader that handles what the server (or anything pretending to be it)
 * sends, kept apart so tests/fuzz/fuzz_redis_reply.c can feed it arbitrary
 * replies without a server. */
#ifndef KG_BACKENDS_REDIS_REPLY_H
#define KG_BACKENDS_REDIS_REPLY_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>

#include "kaygraph/redis_reader.h"

/* 1 and the outputs (malloc'd, the caller frees) when `reply` is a published
 * message ("message" or "pmessage"), 0 when it is something else (a
 * subscribe confirmation), negative on allocation failure.  `len` and
 * `channel` may be NULL. */
int kg__take_message(const redisReply *reply, char **json, size_t *len, char **channel);

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

#endif
