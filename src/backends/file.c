/* file.c - the JSON Lines backend: one event per line, to a file or stdout.
 *
 * A batch is assembled in memory and written with one write(2), so lines
 * from concurrent dispatcher workers never interleave mid-line (O_APPEND
 * makes each write land whole at the end of the file). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaygraph/backends.h"

typedef struct file_backend {
    char *path;                  /* "-" = stdout */
    int fd;
    pthread_mutex_t lock;        /* guards fd opening */
} file_backend;

static int file_open(file_backend *f)
{
    if (f->fd >= 0)
        return 0;
    f->fd = strcmp(f->path, "-") == 0
                ? STDOUT_FILENO
                : open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return f->fd >= 0 ? 0 : KG_EIO;
}

static int file_connect(void *data, unsigned workers)
{
    file_backend *f = data;
    (void)workers;
    pthread_mutex_lock(&f->lock);
    int rc = file_open(f);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KG_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int file_send(void *data, unsigned worker, const kg_batch *batch)
{
    file_backend *f = data;
    (void)worker;
    pthread_mutex_lock(&f->lock);
    int rc = file_open(f);
    int fd = f->fd;
    pthread_mutex_unlock(&f->lock);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < batch->count; i++)
        total += batch->events[i].json_len + 1;
    char *buf = malloc(total ? total : 1);
    if (!buf)
        return KG_ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < batch->count; i++) {
        memcpy(buf + off, batch->events[i].json, batch->events[i].json_len);
        off += batch->events[i].json_len;
        buf[off++] = '\n';
    }
    rc = write_all(fd, buf, off);
    free(buf);
    return rc;
}

static void file_disconnect(void *data)
{
    file_backend *f = data;
    pthread_mutex_lock(&f->lock);
    if (f->fd > STDERR_FILENO)
        close(f->fd);
    f->fd = -1;
    pthread_mutex_unlock(&f->lock);
}

static bool file_is_connected(void *data)
{
    file_backend *f = data;
    pthread_mutex_lock(&f->lock);
    bool open_now = f->fd >= 0;
    pthread_mutex_unlock(&f->lock);
    return open_now;
}

static void file_destroy(void *data)
{
    file_backend *f = data;
    file_disconnect(f);
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f);
}

static const kg_backend_ops file_ops = {
    .name = "file",
    .connect = file_connect,
    .send_batch = file_send,
    .disconnect = file_disconnect,
    .is_connected = file_is_connected,
    .destroy = file_destroy,
};

kg_backend_t *kg_file_backend_new(const char *path, kg_error_t *err)
{
    if (!path || !*path) {
        kg_error_set(err, KG_EINVAL, "ConfigError", "file backend needs a path (or - for stdout)");
        return NULL;
    }
    file_backend *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        kg_error_set(err, KG_ENOMEM, NULL, "file backend");
        return NULL;
    }
    f->fd = -1;
    pthread_mutex_init(&f->lock, NULL);
    kg_backend_t *b = kg_backend_new(&file_ops, f);
    if (!b)
        kg_error_set(err, KG_ENOMEM, NULL, "file backend");
    return b;
}
