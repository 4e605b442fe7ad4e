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
    kg__reply_limit(reader);   /* as every reader connection of ours */
    if (redisReaderFeed(reader, (const char *)data, size) == REDIS_OK) {
        void *reply = NULL;
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
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
    }
    redisReaderFree(reader);
    return 0;
}
