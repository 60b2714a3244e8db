/* A backend's life, apart from what is said to it: spawning with pipes, moving bytes both
 * ways without either side blocking, keeping the end of its stderr, and the stop ladder
 * (wait, SIGTERM, wait, SIGKILL, always reap).
 *
 * No thread drains stderr: every wait polls stdout and stderr together (an unread stderr pipe
 * would block the child at 64 KiB), and writes poll them too, so a child that answers while
 * a long request is still being written never deadlocks with us. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

#define PIPE_BUFFER (1 << 20)
#define READ_CHUNK (1 << 16)

double qc_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void proc_init(qc_process *p)
{
    memset(p, 0, sizeof *p);
    p->in = p->out = p->err = -1;
    p->max_line = (size_t)1 << 30;
}

void proc_log(const qc_process *p, int level, const char *format, ...)
{
    if (p->log == NULL)
        return;
    va_list args;
    va_start(args, format);
    char *text = vformat_text(format, args);
    va_end(args);
    if (text != NULL)
        p->log(p->log_userdata, level, text);
    free(text);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int proc_spawn(qc_process *p, char *const argv[], int search)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = 0;
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        error = errno;
    if (!error && (error = posix_spawn_file_actions_init(&actions)) == 0) {
        /* dup2 clears close-on-exec on the copies; every other descriptor of ours is
         * close-on-exec (pipe2), so the child inherits exactly these three. */
        posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        posix_spawn_file_actions_adddup2(&actions, err[1], 2);
        if ((error = posix_spawnattr_init(&attributes)) == 0) {
            sigset_t none, all;
            sigemptyset(&none);
            sigfillset(&all);
            posix_spawnattr_setsigmask(&attributes, &none);
            posix_spawnattr_setsigdefault(&attributes, &all);
            /* A session of its own: a terminal's Ctrl-C is the client's to handle (it
             * cancels), not the backend's. */
            posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK |
                                                      POSIX_SPAWN_SETSIGDEF |
                                                      POSIX_SPAWN_SETSID);
            error = (search ? posix_spawnp : posix_spawn)(&p->pid, argv[0], &actions,
                                                          &attributes, argv, environ);
            posix_spawnattr_destroy(&attributes);
        }
        posix_spawn_file_actions_destroy(&actions);
    }
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (error) {
        p->pid = 0;
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&err[0]);
        return error;
    }
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
    for (int i = 0; i < 3; i++) {
        int fd = (int[]){p->in, p->out, p->err}[i];
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    /* A large message crosses in few wake-ups; above pipe-max-size the default still works. */
    fcntl(p->in, F_SETPIPE_SZ, PIPE_BUFFER);
    fcntl(p->out, F_SETPIPE_SZ, PIPE_BUFFER);
    return 0;
}

/* write() that cannot raise SIGPIPE: the signal is blocked in this thread around the call,
 * and one it raised is taken back before unblocking (no process-wide handler touched). */
static ssize_t write_quietly(int fd, const char *data, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    int blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0;
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    ssize_t written = write(fd, data, len);
    int saved = errno;
    if (written < 0 && saved == EPIPE && !was_pending && blocked) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    if (blocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return written;
}

static void keep_stderr_line(qc_process *p, const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return;
    if (len > STDERR_LINE_BYTES)
        len = STDERR_LINE_BYTES;
    memcpy(p->tail[p->tail_next], line, len);
    p->tail[p->tail_next][len] = '\0';
    proc_log(p, QC_LOG_INFO, "%s", p->tail[p->tail_next]);
    p->tail_next = (p->tail_next + 1) % STDERR_TAIL_LINES;
    if (p->tail_count < STDERR_TAIL_LINES)
        p->tail_count++;
}

/* Each stderr line is kept to STDERR_LINE_BYTES, so memory stays bounded whatever comes (a
 * progress bar redrawn with \r forever has no newline at all). */
static void take_stderr(qc_process *p, const char *chunk, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = chunk[i];
        if (c == '\n' || c == '\r') {
            keep_stderr_line(p, p->partial, p->partial_len);
            p->partial_len = 0;
        } else if (p->partial_len < STDERR_LINE_BYTES) {
            p->partial[p->partial_len++] = c;
        }
    }
}

static void read_stderr(qc_process *p)
{
    char chunk[READ_CHUNK];
    for (;;) {
        ssize_t n = read(p->err, chunk, sizeof chunk);
        if (n > 0) {
            take_stderr(p, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            keep_stderr_line(p, p->partial, p->partial_len);
            p->partial_len = 0;
            close_fd(&p->err);
        }
        return;
    }
}

/* Read what stdout holds into the buffer; -1 when out of memory. */
static int read_stdout(qc_process *p)
{
    for (;;) {
        if (p->start > 0 && p->start == p->end) {
            p->start = p->end = p->scanned = 0;
        }
        if (p->cap - p->end < READ_CHUNK) {
            if (p->start > p->cap / 2) {
                memmove(p->buf, p->buf + p->start, p->end - p->start);
                p->end -= p->start;
                p->scanned -= p->start;
                p->start = 0;
            }
            if (p->cap - p->end < READ_CHUNK) {
                size_t cap = p->cap ? p->cap * 2 : 4 * READ_CHUNK;
                char *grown = realloc(p->buf, cap);
                if (grown == NULL)
                    return -1;
                p->buf = grown;
                p->cap = cap;
            }
        }
        size_t room = p->cap - p->end - 1;
        ssize_t n = read(p->out, p->buf + p->end, room);
        if (n > 0) {
            p->end += (size_t)n;
            /* A short read emptied the pipe: no read to pay for that says so. A line past the
             * limit stops here: the caller refuses it. */
            if ((size_t)n < room || p->end - p->start > p->max_line)
                return 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            p->out_eof = 1;
        return 0;
    }
}

/* A whole line waits in the buffer (blank lines are skipped): its bounds. */
static int have_line(qc_process *p, size_t *line_start, size_t *line_end)
{
    for (;;) {
        if (p->scanned < p->start)
            p->scanned = p->start;
        char *newline = p->scanned < p->end ? memchr(p->buf + p->scanned, '\n',
                                                     p->end - p->scanned) : NULL;
        if (newline == NULL) {
            p->scanned = p->end;
            return 0;
        }
        size_t begin = p->start, stop = (size_t)(newline - p->buf);
        p->start = p->scanned = stop + 1;
        size_t i = begin;
        while (i < stop && strchr(" \t\r", p->buf[i]) != NULL)
            i++;
        if (i < stop) {
            *line_start = begin;
            *line_end = stop;
            return 1;
        }
    }
}

static int remaining_ms(double deadline)
{
    if (deadline <= 0)
        return -1;
    double left = deadline - qc_now();
    return left <= 0 ? 0 : (int)ceil(left * 1e3);
}

/* Move bytes until `len` bytes of `data` are written (want_line 0) or a line waits
 * (want_line 1), reading stdout and stderr all the while. */
static int pump(qc_process *p, const char *data, size_t len, int want_line, double deadline,
                int wake, size_t *line_start, size_t *line_end)
{
    size_t written = 0;
    for (;;) {
        if (want_line && have_line(p, line_start, line_end))
            return IO_DONE;
        if (!want_line && written == len)
            return IO_DONE;
        if (want_line && p->end - p->start > p->max_line)
            return IO_OVERSIZED;
        if (want_line && p->out_eof)
            return IO_EOF;
        if (!want_line) {
            if (p->in < 0)
                return IO_BROKEN;
            ssize_t n = write_quietly(p->in, data + written, len - written);
            if (n > 0) {
                written += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EPIPE)
                return IO_BROKEN;
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                return IO_ERROR;
        }
        struct pollfd fds[4];
        int count = 0, at_in = -1, at_out = -1, at_err = -1, at_wake = -1;
        if (!want_line) {
            at_in = count;
            fds[count++] = (struct pollfd){p->in, POLLOUT, 0};
        }
        if (!p->out_eof && p->out >= 0) {
            at_out = count;
            fds[count++] = (struct pollfd){p->out, POLLIN, 0};
        }
        if (p->err >= 0) {
            at_err = count;
            fds[count++] = (struct pollfd){p->err, POLLIN, 0};
        }
        if (want_line && wake >= 0) {
            at_wake = count;
            fds[count++] = (struct pollfd){wake, POLLIN, 0};
        }
        int timeout = remaining_ms(deadline);
        if (timeout == 0)
            return IO_TIMEOUT;
        int ready = poll(fds, (nfds_t)count, timeout);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return IO_ERROR;
        if (ready == 0)
            return IO_TIMEOUT;
        if (at_err >= 0 && fds[at_err].revents)
            read_stderr(p);
        if (at_out >= 0 && fds[at_out].revents && read_stdout(p) < 0)
            return IO_ERROR;
        if (at_in >= 0 && (fds[at_in].revents & (POLLERR | POLLHUP)))
            return IO_BROKEN;
        if (at_wake >= 0 && fds[at_wake].revents) {
            char drain[64];
            while (read(wake, drain, sizeof drain) > 0) {
            }
            return IO_WAKE;
        }
    }
}

int proc_write(qc_process *p, const char *data, size_t len, double deadline)
{
    return pump(p, data, len, 0, deadline, -1, NULL, NULL);
}

int proc_read_line(qc_process *p, double deadline, int wake, char **line, size_t *len)
{
    size_t begin = 0, stop = 0;
    int result = pump(p, NULL, 0, 1, deadline, wake, &begin, &stop);
    if (result == IO_DONE) {
        p->buf[stop] = '\0';
        *line = p->buf + begin;
        *len = stop - begin;
    }
    return result;
}

static int try_reap(qc_process *p)
{
    if (p->reaped || p->pid <= 0)
        return 1;
    int status;
    pid_t done;
    do {
        done = waitpid(p->pid, &status, WNOHANG);
    } while (done < 0 && errno == EINTR);
    if (done == p->pid || (done < 0 && errno == ECHILD)) {
        /* ECHILD: someone else reaped it (a SIGCHLD set to SIG_IGN): it is gone all the same */
        p->reaped = 1;
        p->wait_status = done == p->pid ? status : 0;
        return 1;
    }
    return 0;
}

int proc_wait(qc_process *p, double seconds)
{
    if (try_reap(p))
        return 1;
    double deadline = qc_now() + seconds;
    int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    int reaped = 0;
    double pause = 0.001;
    while (!(reaped = try_reap(p))) {
        int left = remaining_ms(deadline);
        if (left == 0)
            break;
        struct pollfd fds[3];
        int count = 0;
        if (pidfd >= 0)
            fds[count++] = (struct pollfd){pidfd, POLLIN, 0};
        if (p->out >= 0 && !p->out_eof)
            fds[count++] = (struct pollfd){p->out, POLLIN, 0};
        if (p->err >= 0)
            fds[count++] = (struct pollfd){p->err, POLLIN, 0};
        /* Without a pidfd (Linux before 5.3) nothing says when it exits: look now and then. */
        int timeout = pidfd >= 0 ? left : (int)(pause * 1e3);
        if (pidfd < 0 && pause < 0.016)
            pause *= 2;
        if (left > 0 && timeout > left)
            timeout = left;
        if (poll(fds, (nfds_t)count, timeout) > 0) {
            if (p->err >= 0)
                read_stderr(p);
            if (p->out >= 0 && !p->out_eof) {
                p->start = p->end = p->scanned = 0; /* what it says now is not awaited */
                if (read_stdout(p) < 0)
                    p->out_eof = 1;
            }
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return reaped;
}

void proc_stop(qc_process *p, int polite, const char *name)
{
    if (p->pid <= 0 || try_reap(p))
        return;
    if (polite) {
        if (proc_wait(p, EXIT_TIMEOUT))
            return;
        proc_log(p, QC_LOG_WARNING, "backend %s (pid %ld) did not exit; terminating", name,
                 (long)p->pid);
    }
    kill(p->pid, SIGTERM);
    if (proc_wait(p, TERMINATE_TIMEOUT))
        return;
    proc_log(p, QC_LOG_WARNING, "backend %s (pid %ld) ignored SIGTERM; killing", name,
             (long)p->pid);
    kill(p->pid, SIGKILL);
    while (!proc_wait(p, 60.0)) {
    }
}

void proc_close(qc_process *p, const char *name)
{
    close_fd(&p->in);
    proc_stop(p, 1, name);
    if (p->err >= 0)
        read_stderr(p);
    close_fd(&p->out);
    close_fd(&p->err);
    free(p->buf);
    p->buf = NULL;
    p->start = p->end = p->cap = p->scanned = 0;
}

void proc_describe_exit(const qc_process *p, char *text, size_t size)
{
    if (!p->reaped) {
        snprintf(text, size, "is still running");
    } else if (WIFSIGNALED(p->wait_status)) {
        int sig = WTERMSIG(p->wait_status);
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev != NULL)
            snprintf(text, size, "was killed by SIG%s", abbrev);
        else
            snprintf(text, size, "was killed by signal %d", sig);
    } else {
        snprintf(text, size, "exited with code %d", WEXITSTATUS(p->wait_status));
    }
}

char *proc_stderr_tail(const qc_process *p, int lines)
{
    int count = p->tail_count < lines ? p->tail_count : lines;
    size_t size = 1;
    for (int i = 0; i < count; i++) {
        int at = (p->tail_next - count + i + STDERR_TAIL_LINES) % STDERR_TAIL_LINES;
        size += strlen(p->tail[at]) + 3;
    }
    char *text = malloc(size);
    if (text == NULL)
        return NULL;
    text[0] = '\0';
    char *end = text;
    for (int i = 0; i < count; i++) {
        int at = (p->tail_next - count + i + STDERR_TAIL_LINES) % STDERR_TAIL_LINES;
        end += sprintf(end, "\n  %s", p->tail[at]);
    }
    return text;
}
