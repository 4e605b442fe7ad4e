/* redis_reply.c - the bounded reply functions behind kg__reply_limit and
 * kg__reply_bound (see redis_reply.h).  They delegate to whatever functions
 * the reader had (the hiredis defaults, which hiredis does not export) and
 * only refuse oversized arrays and replies. */
#include <pthread.h>
#include <string.h>

#include "backends/redis_reply.h"

static redisReplyObjectFunctions hiredis_defaults;
static redisReplyObjectFunctions bounded;
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;

static void *bounded_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || (unsigned)elements > KG__REPLY_MAX_ELEMENTS) {
        kg__reply_bounds *b = task->privdata;
        if (b)
            b->over = true;
        return NULL;   /* hiredis reports this as out of memory and fails the reply */
    }
    return hiredis_defaults.createArray(task, elements);
}

/* Strings (bulk, status, error) count against the reply's total. */
static void *bounded_string(const redisReadTask *task, char *str, size_t len)
{
    kg__reply_bounds *b = task->privdata;
    if (b && b->total_max) {
        if (len > b->total_max - b->used || b->over) {
            b->over = true;
            return NULL;
        }
        b->used += len;
    }
    return hiredis_defaults.createString(task, str, len);
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
    bounded.createString = bounded_string;
}

void kg__reply_limit(redisReader *reader)
{
    kg__reply_bound(reader, NULL);
}

void kg__reply_bound(redisReader *reader, kg__reply_bounds *b)
{
    pthread_once(&bounded_once, bounded_init);
    if (reader && hiredis_defaults.createArray && hiredis_defaults.createString) {
        reader->fn = &bounded;
        reader->privdata = b;
    }
}

bool kg__reply_buffer_over(const redisReader *reader, const kg__reply_bounds *b)
{
    /* What is left past `pos` is the element being received: hiredis parses
     * every complete element before this is looked at.  64 bytes of slack
     * cover the "$<length>\r\n" header and the closing CRLF. */
    return b && b->bulk_max && reader->len > reader->pos &&
           reader->len - reader->pos > b->bulk_max + 64;
}

bool kg__is_sub_confirmation(const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[2]->type != REDIS_REPLY_INTEGER)
        return false;
    const char *kind = reply->element[0]->str;
    return strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0;
}
