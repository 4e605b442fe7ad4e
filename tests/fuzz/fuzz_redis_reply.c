/* fuzz_redis_reply.c - libFuzzer target for the Redis reply handling: the
 * input is a byte stream as a Redis server would send it (RESP), parsed by
 * hiredis' reader; every reply is then handed to the code that turns Pub/Sub
 * messages and stream entries into events (src/backends/redis_reply.h).
 * A hostile or broken server must not crash the dashboard or `kgmon tail`. */
#include <stdint.h>
#include <stdlib.h>

#include "backends/redis_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
            json_t *arr = json_array();
            kg__stream_entries(reply, arr);
            json_decref(arr);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisReaderFree(reader);
    return 0;
}
