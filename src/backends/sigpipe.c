/* sigpipe.c - see sigpipe.h. */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "backends/sigpipe.h"

void kg__sigpipe_block(kg__sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->pending_before = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void kg__sigpipe_restore(kg__sigpipe_guard *g)
{
    if (!g->pending_before) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            /* Raised by our write to a dead socket: consume it so that
             * unblocking does not deliver it. */
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}
