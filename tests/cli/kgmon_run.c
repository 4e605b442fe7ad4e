/* kgmon_run.c - start, watch and stop the real kgmon binary (see kgmon_run.h). */
#include "kgmon_run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static char kgm__tmp[256];

static int kgm__rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void kgm__remove_dir(void)
{
    if (kgm__tmp[0])
        nftw(kgm__tmp, kgm__rm, 16, FTW_DEPTH | FTW_PHYS);
}

const char *kgm_dir(void)
{
    if (!kgm__tmp[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(kgm__tmp, sizeof kgm__tmp, "%s/kgmon-cli-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(kgm__tmp)) {
            perror("mkdtemp");
            abort();
        }
        atexit(kgm__remove_dir);
    }
    return kgm__tmp;
}

const char *kgm_path(const char *name)
{
    static char bufs[8][600];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", kgm_dir(), name);
    return b;
}

static const char *kgm__binary(void)
{
    const char *b = getenv("KGMON");
    if (!b || !*b) {
        fprintf(stderr, "KGMON is not set: it must name the kgmon binary\n");
        abort();
    }
    return b;
}

/* In the child: only async-signal-safe calls until exec. */
static void kgm__child(int out, int err, pid_t parent, char *const *argv)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    if (out >= 0)
        dup2(out, 1);
    dup2(err, 2);
    if (chdir(kgm__tmp) != 0)
        _exit(126);
    /* A test's SIGINT must reach the child's handler. */
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
}

static char **kgm__argv(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **v = calloc(n + 2, sizeof *v);
    if (!v)
        abort();
    v[0] = (char *)kgm__binary();
    for (size_t i = 0; i < n; i++)
        v[i + 1] = (char *)argv[i];
    return v;
}

static pid_t kgm__fork(kgm_proc *p, int out, int err, char **argv)
{
    pid_t parent = getpid();
    if (!p->tty) {
        pid_t pid = fork();
        if (pid == 0)
            kgm__child(out, err, parent, argv);
        return pid;
    }
    /* forkpty makes the pty the child's stdin/stdout/stderr; the child
     * then puts stderr back on its file so the two stay apart. */
    struct winsize ws = {.ws_row = 50, .ws_col = 200};
    pid_t pid = forkpty(&p->pty_fd, NULL, NULL, &ws);
    if (pid == 0)
        kgm__child(-1, err, parent, argv);
    if (pid > 0)
        fcntl(p->pty_fd, F_SETFL, fcntl(p->pty_fd, F_GETFL) | O_NONBLOCK);
    return pid;
}

int kgm_start(kgm_proc *p, bool tty, const char *const *argv)
{
    static unsigned seq;
    memset(p, 0, sizeof *p);
    p->tty = tty;
    p->pty_fd = -1;
    unsigned n = seq++;
    snprintf(p->out_path, sizeof p->out_path, "%s/out-%u.txt", kgm_dir(), n);
    snprintf(p->err_path, sizeof p->err_path, "%s/err-%u.txt", kgm_dir(), n);
    int out = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char **v = kgm__argv(argv);
    /* history: the default database (kgmon dashboard / demo --dashboard)
     * goes in this test's directory, not in the user's home. */
    setenv("XDG_STATE_HOME", kgm_dir(), 1);
    pid_t pid = out >= 0 && err >= 0 ? kgm__fork(p, out, err, v) : -1;
    free(v);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    if (pid < 0) {
        perror("kgm_start");
        return -1;
    }
    p->pid = pid;
    return 0;
}

/* Move what the pty has for us into the stdout file. */
static void kgm__drain_pty(kgm_proc *p)
{
    if (p->pty_fd < 0)
        return;
    FILE *f = fopen(p->out_path, "a");
    char buf[4096];
    ssize_t n;
    while ((n = read(p->pty_fd, buf, sizeof buf)) > 0)
        if (f)
            fwrite(buf, 1, (size_t)n, f);
    if (f)
        fclose(f);
}

static bool kgm__reap(kgm_proc *p, int flags)
{
    int st;
    pid_t r = waitpid(p->pid, &st, flags);
    if (r != p->pid)
        return false;
    kgm__drain_pty(p);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->pid = 0;
    return true;
}

bool kgm_wait(kgm_proc *p, double timeout)
{
    if (p->pid == 0)
        return true;
    double deadline = kg_test_now() + timeout;
    while (kg_test_now() < deadline) {
        kgm__drain_pty(p);
        if (kgm__reap(p, WNOHANG))
            return true;
        kg_test_sleep(0.002);
    }
    fprintf(stderr, "kgmon (pid %d) still running after %.1f s: killed\n", (int)p->pid, timeout);
    kill(p->pid, SIGKILL);
    kgm__reap(p, 0);
    p->status = -1;
    return false;
}

void kgm_signal(kgm_proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

char *kgm_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb)
                free(b);
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b)
        b[n] = '\0';
    if (len)
        *len = b ? n : 0;
    return b;
}

char *kgm_stdout(kgm_proc *p)
{
    kgm__drain_pty(p);
    char *s = kgm_read_file(p->out_path, NULL);
    return s ? s : strdup("");
}

char *kgm_stderr(kgm_proc *p)
{
    char *s = kgm_read_file(p->err_path, NULL);
    return s ? s : strdup("");
}

static bool kgm__has(char *text, const char *needle)
{
    bool yes = strstr(text, needle) != NULL;
    free(text);
    return yes;
}

bool kgm_wait_stdout(kgm_proc *p, const char *needle, double timeout)
{
    return KG_WAIT_UNTIL(kgm__has(kgm_stdout(p), needle), timeout);
}

bool kgm_wait_stderr(kgm_proc *p, const char *needle, double timeout)
{
    return KG_WAIT_UNTIL(kgm__has(kgm_stderr(p), needle), timeout);
}

void kgm_cleanup(kgm_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        kgm__reap(p, 0);
    }
    if (p->pty_fd >= 0)
        close(p->pty_fd);
    p->pty_fd = -1;
    unlink(p->out_path);
    unlink(p->err_path);
}

int kgm_run(double timeout, char **out, char **err, const char *const *argv)
{
    kgm_proc p;
    if (kgm_start(&p, false, argv) != 0)
        return -1;
    bool exited = kgm_wait(&p, timeout);
    if (out)
        *out = kgm_stdout(&p);
    if (err)
        *err = kgm_stderr(&p);
    kgm_cleanup(&p);
    return exited ? p.status : -1;
}

int kgm_runl(double timeout, char **out, char **err, ...)
{
    const char *argv[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, err);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return kgm_run(timeout, out, err, argv);
}

int kgm_dashboard_port(const char *text)
{
    const char *d = text ? strstr(text, "Dashboard: http://") : NULL;
    if (!d)
        return -1;
    const char *colon = strchr(d + 18, ':');
    return colon ? atoi(colon + 1) : -1;
}

size_t kgm_count(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = hay; len && (p = strstr(p, needle)); p += len)
        n++;
    return n;
}
