/* kgmon_run.h - run the real kgmon binary from the CLI tests.
 *
 * The binary is $KGMON (CMake sets it to $<TARGET_FILE:kgmon>).  A child
 * writes stdout and stderr to files in a private temporary directory (no
 * pipe to drain, so a chatty child never blocks), runs with that directory as
 * its working directory, and dies with the test (PR_SET_PDEATHSIG).  Every
 * wait is bounded: a child that outlives its bound is killed and the test
 * fails saying so.  Optionally the child's stdout is a pseudo-terminal, to
 * test what kgmon prints on a terminal. */
#ifndef KG_TEST_KGMON_RUN_H
#define KG_TEST_KGMON_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct kgm_proc {
    pid_t pid;                 /* 0 once reaped */
    int status;                /* exit code once reaped; 128+N for signal N */
    bool tty;                  /* stdout is a pty, read through `pty_fd` */
    int pty_fd;
    char out_path[512];
    char err_path[512];
} kgm_proc;

/* The private directory of this test process (created on first use). */
const char *kgm_dir(void);

/* A path inside kgm_dir(), in a static buffer rotated over 8 calls. */
const char *kgm_path(const char *name);

/* Start `kgmon argv...` (argv NULL-terminated, without "kgmon").  With `tty`
 * the child's stdout is a pty.  0 or -1 (message on stderr). */
int kgm_start(kgm_proc *p, bool tty, const char *const *argv);

/* Wait for the child at most `timeout` s.  True when it exited (p->status
 * set); false when it was still running: it is then SIGKILLed and reaped. */
bool kgm_wait(kgm_proc *p, double timeout);

/* Send a signal to a running child. */
void kgm_signal(kgm_proc *p, int sig);

/* The child's stdout / stderr so far (malloc'd, NUL-terminated; the pty's
 * output is read and appended to the stdout file first). */
char *kgm_stdout(kgm_proc *p);
char *kgm_stderr(kgm_proc *p);

/* Wait at most `timeout` s until stdout (or stderr) contains `needle`. */
bool kgm_wait_stdout(kgm_proc *p, const char *needle, double timeout);
bool kgm_wait_stderr(kgm_proc *p, const char *needle, double timeout);

/* Kill (if running) and reap; remove the output files. */
void kgm_cleanup(kgm_proc *p);

/* Run to completion within `timeout` s; returns the exit code (-1 when it
 * had to be killed) and, when not NULL, *out / *err (malloc'd). */
int kgm_run(double timeout, char **out, char **err, const char *const *argv);

/* Convenience: kgm_run with a NULL-terminated list of arguments. */
int kgm_runl(double timeout, char **out, char **err, ...) __attribute__((sentinel));

/* The port in a "Dashboard: http://HOST:PORT/" line of `text`, or -1. */
int kgm_dashboard_port(const char *text);

/* Whole file (malloc'd, NUL-terminated), or NULL. */
char *kgm_read_file(const char *path, size_t *len);

/* Number of occurrences of `needle` in `hay`. */
size_t kgm_count(const char *hay, const char *needle);

#endif
