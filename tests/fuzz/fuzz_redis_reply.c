/* fuzz_redis_reply.c - libFuzzer target for the Redis reply handling: the
 * input is a byte stream as a Redis server would send it (RESP), parsed by
 * hiredis' reader; every reply is then handed to the code that turns Pub/Sub
 * messages and stream entries into events (src/backends/redis_reply.h).
 * A hostile or broken server must not crash the dashboard or `kgmon tail`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/redis_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch every byte a visitor is given, so that ASan sees a bad pointer or length. */
static void visit(void *ud, const kg_stream_entry *e)
{
    size_t *sum = ud;
    *sum += strlen(e->id);
    for (size_t i = 0; e->event && i < e->event_len; i++)
        *sum += (unsigned char)e->event[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *reader = redisReaderCreate();
    if (!reader)
        return 0;
    /* As every reader connection of ours, with small bounds so that inputs
     * of a few KB reach them. */
    kg__reply_bounds bounds = {.bulk_max = 1024, .total_max = 4096};
    kg__reply_bound(reader, &bounds);
    /* Fed in pieces, as reads arrive, with the buffer bound checked between
     * them as kg__reply_wait does. */
    for (size_t at = 0; at < size && !kg__reply_buffer_over(reader, &bounds);) {
        size_t piece = size - at < 512 ? size - at : 512;
        if (redisReaderFeed(reader, (const char *)data + at, piece) != REDIS_OK)
            break;
        at += piece;
        void *reply = NULL;
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
            bounds.used = 0;
            (void)kg__is_sub_confirmation(reply);
            char *json = NULL, *channel = NULL;
            size_t len = 0;
            if (kg__take_message(reply, &json, &len, &channel) == 1) {
                free(json);
                free(channel);
            }
            size_t sum = 0;
            kg__stream_each(reply, visit, &sum);
            freeReplyObject(reply);
            reply = NULL;
        }
        if (reader->err)
            break;
    }
    redisReaderFree(reader);
    return 0;
}
