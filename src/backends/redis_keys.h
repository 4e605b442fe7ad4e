/* backends/redis_keys.h - the names of docs/redis.md's layout, in one place
 * for the writer (redis.c) and the reader (redis_reader.c).
 *
 * Every key and channel is the configured prefix followed by one of these.
 * KG_REDIS_LEN gives a literal's length without a strlen at run time. */
#ifndef KG_BACKENDS_REDIS_KEYS_H
#define KG_BACKENDS_REDIS_KEYS_H

#define KG_REDIS_PREFIX_DEFAULT "kaygraph:monitoring:"

/* Pub/Sub: every event on "all" and on its event_type's channel. */
#define KG_REDIS_CHANNEL_ALL "all"
/* Seed layout. */
#define KG_REDIS_KEY_EVENT "event:"                    /* + event_id: the JSON (SETEX) */
#define KG_REDIS_KEY_WORKFLOW "workflow:"              /* + workflow_id: sorted set */
#define KG_REDIS_KEY_NODE "node:"                      /* + node_id: sorted set */
#define KG_REDIS_KEY_COUNTER "metrics:events:"         /* + event_type: counter */
#define KG_REDIS_KEY_ACTIVE_NODES "active:nodes"       /* set */
#define KG_REDIS_KEY_ACTIVE_CLOCK "active:clock:nodes" /* hash: last change per node */
#define KG_REDIS_KEY_ACTIVE_WORKFLOWS "active:workflows"
/* Optional capped stream (stream_maxlen), entries "event <json>". */
#define KG_REDIS_KEY_STREAM "stream"
#define KG_REDIS_STREAM_FIELD "event"
/* Lean layout: a marker readers check, and one hash per run. */
#define KG_REDIS_KEY_LAYOUT "layout"                  /* "lean" when the lean layout is written */
#define KG_REDIS_LAYOUT_LEAN_MARK "lean"
#define KG_REDIS_KEY_RUN "run:"                        /* + workflow_id: hash */

#define KG_REDIS_LEN(lit) (sizeof(lit) - 1)

#endif
