/* backends/sigpipe.h - keep a write to a dead socket from killing the process.
 *
 * Writing to a socket whose peer has gone raises SIGPIPE, whose default
 * action terminates the process -- a monitoring backend must never do that
 * to the workflow.  The library cannot change the process's signal handlers
 * (they belong to the application), so each socket write is wrapped: block
 * SIGPIPE in this thread, write, consume a SIGPIPE the write raised, restore
 * the mask.  hiredis and libcurl both write on the calling thread, so this
 * covers them. */
#ifndef KG_BACKENDS_SIGPIPE_H
#define KG_BACKENDS_SIGPIPE_H

#include <signal.h>
#include <stdbool.h>

typedef struct kg__sigpipe_guard {
    sigset_t old;
    bool pending_before;   /* a SIGPIPE that was not ours: left for its owner */
} kg__sigpipe_guard;

void kg__sigpipe_block(kg__sigpipe_guard *g);
void kg__sigpipe_restore(kg__sigpipe_guard *g);

#endif
