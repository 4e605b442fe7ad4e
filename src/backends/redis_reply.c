/* redis_reply.c - the bounded reply functions behind kg__reply_limit (see
 * redis_reply.h).  They delegate to whatever functions the reader had (the
 * hiredis defaults, which hiredis does not export) and only refuse
 * oversized arrays. */
#include <pthread.h>

#include "backends/redis_reply.h"

static redisReplyObjectFunctions hiredis_defaults;
static redisReplyObjectFunctions bounded;
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;

static void *bounded_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || (unsigned)elements > KG__REPLY_MAX_ELEMENTS)
        return NULL;   /* hiredis reports this as out of memory and fails the reply */
    return hiredis_defaults.createArray(task, elements);
}

/* A fresh reader's function table is hiredis' default one: copy it once. */
static void bounded_init(void)
{
    redisReader *probe = redisReaderCreate();
    if (probe && probe->fn)
        hiredis_defaults = *probe->fn;
    redisReaderFree(probe);
    bounded = hiredis_defaults;
    bounded.createArray = bounded_array;
}

void kg__reply_limit(redisReader *reader)
{
    pthread_once(&bounded_once, bounded_init);
    if (reader && hiredis_defaults.createArray)
        reader->fn = &bounded;
}
