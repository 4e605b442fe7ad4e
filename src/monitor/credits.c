/* credits.c - thread-local descriptor references (see credits.h). */
#include <pthread.h>

#include "monitor/credits.h"

__thread kg_credit kg__credits[KG_CREDIT_SLOTS] __attribute__((tls_model("initial-exec")));
#define credits kg__credits
static __thread bool registered __attribute__((tls_model("initial-exec")));

static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* At thread exit: give back what the thread still holds. */
static void credits_return(void *unused)
{
    (void)unused;
    for (int i = 0; i < KG_CREDIT_SLOTS; i++) {
        if (credits[i].desc && credits[i].left)
            kg__desc_unref(credits[i].desc, credits[i].left);
        credits[i].desc = NULL;
        credits[i].left = 0;
    }
}

static void exit_key_create(void)
{
    pthread_key_create(&exit_key, credits_return);
}

/* The descriptor is not in slot 0 (or its credits ran out): find it and
 * swap it to the front, or give the last slot's credits back and take a new
 * bulk there.  With the slots a thread uses most near the front, a graph of
 * up to KG_CREDIT_SLOTS nodes switches slots without an atomic operation. */
void kg__credit_slow(kg_node_desc *d)
{
    if (!registered) {
        pthread_once(&exit_once, exit_key_create);
        pthread_setspecific(exit_key, credits);   /* any non-NULL value arms the destructor */
        registered = true;
    }
    if (credits[0].desc != d) {
        int i = 1;
        while (i < KG_CREDIT_SLOTS && credits[i].desc != d)
            i++;
        if (i == KG_CREDIT_SLOTS) {
            i = KG_CREDIT_SLOTS - 1;
            if (credits[i].desc && credits[i].left)
                kg__desc_unref(credits[i].desc, credits[i].left);
            credits[i] = (kg_credit){d, 0};
        }
        kg_credit c = credits[0];
        credits[0] = credits[i];
        credits[i] = c;
    }
    if (credits[0].left == 0) {
        kg__desc_ref(d, KG_CREDIT_BULK);
        credits[0].left = KG_CREDIT_BULK;
    }
    credits[0].left--;
}
