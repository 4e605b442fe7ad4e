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

/* `d` is in neither slot of its set, or its credits ran out: refill it
 * there, or give the older slot's credits back and take a bulk for `d`. */
void kg__credit_slow(kg_node_desc *d)
{
    if (!registered) {
        pthread_once(&exit_once, exit_key_create);
        pthread_setspecific(exit_key, credits);   /* any non-NULL value arms the destructor */
        registered = true;
    }
    kg_credit *set = kg__credit_set(d);
    kg_credit *slot = set[0].desc == d ? &set[0] : set[1].desc == d ? &set[1] : NULL;
    if (!slot) {
        /* The newest goes first; the one it displaces moves to the second. */
        if (set[1].desc && set[1].left)
            kg__desc_unref(set[1].desc, set[1].left);
        set[1] = set[0];
        set[0] = (kg_credit){d, 0};
        slot = &set[0];
    }
    if (slot->left == 0) {
        kg__desc_ref(d, KG_CREDIT_BULK);
        slot->left = KG_CREDIT_BULK;
    }
    slot->left--;
}
