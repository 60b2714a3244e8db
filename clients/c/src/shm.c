/* Shared-memory segments (docs/protocol.md 2.5): large arrays cross at memory speed.
 *
 * The client creates a file in /dev/shm and reserves its space (posix_fallocate: a full
 * /dev/shm fails here, cleanly, never as a SIGBUS later), the backend opens it (shm/attach),
 * and the file is unlinked as soon as the backend has answered: from then on only the two
 * processes hold the memory, so nothing leaks whichever side dies. A segment the backend
 * cannot attach (it runs elsewhere) turns segments off for good; one that cannot be created
 * makes that one array cross as base64. Names carry the creator's pid: segments left by a
 * client killed in between are removed by the next one. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

enum { SAID_CREATE = 1, SAID_ROOM = 2, SAID_ATTACH = 4, CHECKED_ORPHANS = 8 };

/* Remove segments of ours (same user) whose creator pid no longer runs. */
static void remove_orphans(void)
{
    DIR *dir = opendir(SHM_DIR);
    if (dir == NULL)
        return;
    int fd = dirfd(dir);
    for (struct dirent *e; (e = readdir(dir));) {
        const char *rest = e->d_name + strlen(SHM_PREFIX);
        if (strncmp(e->d_name, SHM_PREFIX, strlen(SHM_PREFIX)) != 0)
            continue;
        char *end;
        long pid = strtol(rest, &end, 10);
        struct stat info;
        if (end == rest || *end != '-' || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* running (EPERM: someone else's process) */
        if (fstatat(fd, e->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_uid == geteuid())
            unlinkat(fd, e->d_name, 0);
    }
    closedir(dir);
}

void segment_destroy(qc_segment *s)
{
    if (s == NULL)
        return;
    if (s->map != NULL)
        munmap((void *)s->map, s->size);
    close(s->fd);
    free(s);
}

static void drop(qc_backend *b, qc_segment *s, int detach)
{
    for (qc_segment **at = &b->segments; *at; at = &(*at)->next) {
        if (*at == s) {
            *at = s->next;
            break;
        }
    }
    if (detach && b->failure == 0 && !b->closed) {
        json_t *params = json_pack("{s:I}", "segment", (json_int_t)s->id);
        if (params != NULL)
            rpc_notify(b, "shm/detach", params);
    }
    segment_destroy(s);
}

static qc_segment *attach(qc_backend *b, size_t size, int *status)
{
    unsigned char random[16];
    char path[96];
    if (getrandom(random, sizeof random, GRND_NONBLOCK) != (ssize_t)sizeof random) {
        for (size_t i = 0; i < sizeof random; i++)
            random[i] = (unsigned char)(qc_now() * 1e9 / (double)(i + 1));
    }
    int at = snprintf(path, sizeof path, "%s/%s%ld-", SHM_DIR, SHM_PREFIX, (long)getpid());
    for (size_t i = 0; i < sizeof random; i++)
        at += snprintf(path + at, sizeof path - (size_t)at, "%02x", random[i]);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        log_once(b, SAID_CREATE, "cannot create a segment in %s (%s): reading as base64",
                 SHM_DIR, strerror(errno));
        return NULL;
    }
    int error = posix_fallocate(fd, 0, (off_t)size);
    if (error != 0) {
        log_once(b, SAID_ROOM, "%s has no room for %zu bytes (%s): reading as base64", SHM_DIR,
                 size, strerror(error));
        close(fd);
        unlink(path);
        return NULL;
    }
    json_t *params = json_pack("{s:s, s:I}", "path", path, "size", (json_int_t)size);
    json_t *result = NULL;
    *status = params ? rpc_call(b, "shm/attach", params, b->timeout, &result)
                     : fail(b, QC_NOMEM, "out of memory");
    unlink(path); /* at once, success or not: from now on only the two processes hold it */
    int64_t id = 0;
    if (*status == QC_OK && get_count(result, "segment", &id) != 0)
        *status = bad_result(b, "shm/attach", result, "an integer at $.segment");
    json_decref(result);
    qc_segment *s = *status == QC_OK ? calloc(1, sizeof *s) : NULL;
    if (s == NULL) {
        close(fd);
        if (*status == QC_BACKEND) {
            /* another host, or a backend that cannot open files: base64 from now on */
            log_once(b, SAID_ATTACH, "backend '%s' refused shared memory (%s): arrays cross as "
                     "base64", b->label, qc_errmsg(b));
            b->shm_enabled = 0;
            clear_error(b);
            *status = QC_OK;
        } else if (*status == QC_OK) {
            *status = fail(b, QC_NOMEM, "out of memory");
        }
        return NULL;
    }
    s->id = id;
    s->size = size;
    s->fd = fd;
    s->in_use = 1;
    s->next = b->segments;
    b->segments = s;
    return s;
}

qc_segment *segment_acquire(qc_backend *b, size_t size, int *status)
{
    *status = QC_OK;
    if (!b->shm_enabled || size < SHM_MIN_BYTES)
        return NULL;
    if (!(b->said & CHECKED_ORPHANS)) {
        b->said |= CHECKED_ORPHANS;
        remove_orphans();
    }
    qc_segment *best = NULL;
    int free_count = 0;
    for (qc_segment *s = b->segments; s; s = s->next) {
        free_count += !s->in_use;
        if (!s->in_use && s->size >= size && (best == NULL || s->size < best->size))
            best = s;
    }
    if (best != NULL) {
        best->in_use = 1;
        return best;
    }
    while (free_count-- >= SHM_KEEP_FREE) {
        qc_segment *smallest = NULL;
        for (qc_segment *s = b->segments; s; s = s->next)
            if (!s->in_use && (smallest == NULL || s->size < smallest->size))
                smallest = s;
        drop(b, smallest, 1);
    }
    return attach(b, size, status);
}

void segment_release(qc_backend *b, qc_segment *s)
{
    for (qc_segment *at = b->segments; at; at = at->next) {
        if (at == s) {
            s->in_use = 0;
            return;
        }
    }
    segment_destroy(s); /* its backend closed the pool meanwhile: the segment is the view's */
}

static int truncated(qc_backend *b, qc_segment *s, size_t size)
{
    struct stat info = {0};
    if (fstat(s->fd, &info) == 0 && (size_t)info.st_size >= size)
        return 0;
    fail_for_good(b, QC_PROTOCOL, "the segment ends after %lld of %zu bytes: backend '%s' "
                  "truncated it", (long long)info.st_size, size, b->label);
    return 1;
}

const void *segment_map(qc_backend *b, qc_segment *s, size_t size, int *status)
{
    *status = QC_OK;
    if (truncated(b, s, size)) {
        *status = QC_PROTOCOL;
        return NULL;
    }
    if (s->map == NULL) {
        /* Read-only, and only once the backend wrote: its pages are there to populate. */
        void *map = mmap(NULL, s->size, PROT_READ, MAP_SHARED | MAP_POPULATE, s->fd, 0);
        if (map == MAP_FAILED) {
            *status = fail(b, QC_CONNECTION, "cannot map a shared-memory segment: %s",
                           strerror(errno));
            return NULL;
        }
        s->map = map;
    }
    return s->map;
}

int segment_copy(qc_backend *b, qc_segment *s, void *out, size_t size)
{
    /* pread, not the mapping: a backend that truncates the file gives a short read here, not
     * a SIGBUS */
    size_t done = 0;
    while (done < size) {
        size_t chunk = size - done < (1u << 30) ? size - done : (1u << 30);
        ssize_t n = pread(s->fd, (char *)out + done, chunk, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return truncated(b, s, size) ? QC_PROTOCOL
                                         : fail(b, QC_CONNECTION, "reading a segment failed: %s",
                                                n < 0 ? strerror(errno) : "end of file");
        done += (size_t)n;
    }
    return QC_OK;
}

void segments_close(qc_backend *b, int detach)
{
    while (b->segments != NULL) {
        qc_segment *s = b->segments;
        if (s->in_use) {
            b->segments = s->next;
            s->next = NULL; /* a view holds it, and destroys it when freed */
        } else {
            drop(b, s, detach);
        }
    }
}
