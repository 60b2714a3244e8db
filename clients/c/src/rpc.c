/* JSON-RPC with a spawned backend: one request in flight at a time, answered in the calling
 * thread (no reader thread). Timeouts cancel the request and give the backend CANCEL_GRACE
 * seconds to answer the cancellation before it is terminated as hung; qc_cancel wakes the
 * waiting call through a pipe, and the call sends the cancellation. A crash is noticed as the
 * end of stdout or a broken stdin, and reported with how the process ended and its last
 * stderr lines; anything that is not protocol ends the connection. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define QUOTE_LIMIT 200

void backend_ref(qc_backend *b)
{
    b->refs++;
}

int check_open(qc_backend *b, const char *what)
{
    if (!b->closed)
        return QC_OK;
    return fail(b, QC_USAGE, "%s: the handle to backend '%s' was freed (qc_backend_free), and "
                "its states with it; read what you need before freeing the handle", what,
                b->label);
}

int usable(qc_backend *b, const char *what)
{
    int status = check_open(b, what);
    if (status != QC_OK)
        return status;
    if (b->failure != 0)
        return fail(b, b->failure, "%s", b->failure_msg ? b->failure_msg : "out of memory");
    return QC_OK;
}

void log_once(qc_backend *b, int bit, const char *format, ...)
{
    if (b->said & bit || b->proc.log == NULL)
        return;
    b->said |= bit;
    va_list args;
    va_start(args, format);
    char *text = vformat_text(format, args);
    va_end(args);
    if (text != NULL)
        b->proc.log(b->proc.log_userdata, QC_LOG_WARNING, text);
    free(text);
}

/* QC_CRASHED: stdout ended or stdin broke. How the process ended, with its last words; one
 * that closed its `pipe` but keeps running must not be left so, and is terminated. */
static int crashed(qc_backend *b, const char *pipe)
{
    long pid = (long)b->proc.pid;
    char how[64];
    int ended = proc_wait(&b->proc, TERMINATE_TIMEOUT);
    if (!ended)
        proc_stop(&b->proc, 0, b->label);
    proc_describe_exit(&b->proc, how, sizeof how);
    char *tail = proc_stderr_tail(&b->proc, 10);
    const char *heading = tail && *tail ? "\nlast lines of its stderr:" : "";
    int status;
    if (ended)
        status = fail_for_good(b, QC_CRASHED, "backend '%s' (pid %ld) %s%s%s", b->label, pid,
                               how, heading, tail ? tail : "");
    else
        status = fail_for_good(b, QC_CRASHED, "backend '%s' (pid %ld) closed its %s but kept "
                               "running; it was terminated%s%s", b->label, pid, pipe, heading,
                               tail ? tail : "");
    free(tail);
    return status;
}

/* QC_PROTOCOL for good, and the process killed: nothing it says can be trusted now. */
static int broke_protocol(qc_backend *b, char *message)
{
    int status = message ? fail_for_good(b, QC_PROTOCOL, "%s", message) : QC_NOMEM;
    free(message);
    if (b->proc.pid > 0 && !b->proc.reaped) {
        kill(b->proc.pid, SIGKILL);
        proc_wait(&b->proc, 60.0);
    }
    return status;
}

static int io_failure(qc_backend *b, int io, const char *method)
{
    switch (io) {
    case IO_BROKEN:
        return crashed(b, "stdin");
    case IO_EOF:
        return crashed(b, "stdout");
    case IO_OVERSIZED:
        return broke_protocol(b, format_text(
            "backend '%s' sent a line of more than %zu bytes, the most this client takes: "
            "qc_options.max_reply_bytes takes more", b->label, b->proc.max_line));
    default:
        return fail_for_good(b, QC_CONNECTION, "talking to backend '%s' during '%s' failed: %s",
                             b->label, method, strerror(errno));
    }
}

static int dump_into(const char *buffer, size_t size, void *data)
{
    qc_backend *b = data;
    if (b->out_len + size + 2 > b->out_cap) {
        size_t cap = b->out_cap ? b->out_cap : 4096;
        while (cap < b->out_len + size + 2)
            cap *= 2;
        char *grown = realloc(b->out, cap);
        if (grown == NULL)
            return -1;
        b->out = grown;
        b->out_cap = cap;
    }
    memcpy(b->out + b->out_len, buffer, size);
    b->out_len += size;
    return 0;
}

static int append(qc_backend *b, const char *text, size_t size)
{
    return dump_into(text, size, b);
}

/* The line of one message into b->out: an envelope around `params` (encoded by jansson),
 * with `raw` (JSON text encoded earlier, a circuit's) spliced in as member `raw_key`. */
static int encode(qc_backend *b, int64_t id, const char *method, const json_t *params,
                  const raw_member *raw)
{
    char head[128];
    int n = id ? snprintf(head, sizeof head, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"",
                          (long long)id, method)
               : snprintf(head, sizeof head, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\"", method);
    b->out_len = 0;
    if (n < 0 || (size_t)n >= sizeof head || append(b, head, (size_t)n))
        return -1;
    if (params == NULL && raw == NULL)
        return append(b, "}\n", 2);
    if (append(b, ",\"params\":", 10))
        return -1;
    if (raw != NULL && (append(b, "{\"", 2) || append(b, raw->key, strlen(raw->key)) ||
                        append(b, "\":", 2) || append(b, raw->text, raw->len)))
        return -1;
    size_t object = b->out_len;
    if (params != NULL &&
        json_dump_callback(params, dump_into, b, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return -1;
    if (raw != NULL && b->out_len - object > 2)
        b->out[object] = ','; /* {"circuit":...,"nshots":...} */
    else if (raw != NULL) {
        b->out_len = object; /* no params beside it, or "{}" */
        if (append(b, "}", 1))
            return -1;
    }
    return append(b, "}\n", 2);
}

/* Write one message (params stolen); id 0 for a notification. */
static int send_message(qc_backend *b, int64_t id, const char *method, json_t *params,
                        const raw_member *raw, double deadline)
{
    int encoded = encode(b, id, method, params, raw);
    json_decref(params);
    if (encoded != 0)
        return fail(b, QC_NOMEM, "out of memory (or a value JSON cannot hold) encoding '%s'",
                    method);
    if (b->max_request && b->out_len - 1 > b->max_request)
        return fail(b, QC_USAGE, "the '%s' message is %zu bytes, more than backend '%s' reads "
                    "(%zu, its --max-message-bytes): send less at once", method,
                    b->out_len - 1, b->label, b->max_request);
    int io = proc_write(&b->proc, b->out, b->out_len, deadline);
    if (io == IO_TIMEOUT) {
        /* Part of a line is in the pipe: nothing more can be said on it. */
        proc_stop(&b->proc, 0, b->label);
        return fail_for_good(b, QC_HUNG, "backend '%s' did not read '%s' in time: it is hung "
                             "and was terminated", b->label, method);
    }
    return io == IO_DONE ? QC_OK : io_failure(b, io, method);
}

int flush_pending(qc_backend *b)
{
    if (b->pending == NULL || json_array_size(b->pending) == 0)
        return QC_OK;
    json_t *gates = b->pending;
    b->pending = NULL;
    json_t *params = json_pack("{s:I, s:o}", "state", (json_int_t)b->pending_state, "gates",
                               gates);
    if (params == NULL)
        return fail(b, QC_NOMEM, "out of memory");
    double deadline = b->timeout > 0 ? qc_now() + b->timeout : 0;
    return send_message(b, 0, "state/apply", params, NULL, deadline);
}

int rpc_notify(qc_backend *b, const char *method, json_t *params)
{
    int status = usable(b, method);
    if (status == QC_OK)
        status = flush_pending(b);
    if (status != QC_OK) {
        json_decref(params);
        return status;
    }
    return send_message(b, 0, method, params, NULL,
                        b->timeout > 0 ? qc_now() + b->timeout : 0);
}

/* One line from stdout: a notification (handled; *done stays 0), or the response to `id`
 * (*done 1; *result, or QC_BACKEND recorded). */
static int dispatch(qc_backend *b, const char *line, size_t len, int64_t id, int *done,
                    json_t **result)
{
    json_error_t error;
    json_t *message = json_loadb(line, len, 0, &error);
    if (!json_is_object(message)) {
        char *quoted = quote(line, len, QUOTE_LIMIT);
        char *text = format_text("backend '%s' sent a line that is not a JSON-RPC message (%s):"
                                 " %s", b->label, message ? "not an object" : error.text,
                                 quoted ? quoted : "");
        free(quoted);
        json_decref(message);
        return broke_protocol(b, text);
    }
    json_t *method = json_object_get(message, "method");
    if (json_is_string(method)) {
        json_t *params = json_object_get(message, "params");
        json_t *value = json_object_get(params, "value");
        int64_t done_count, total;
        if (strcmp(json_string_value(method), "$/progress") == 0) {
            if (!json_is_object(value) || get_count(value, "done", &done_count) ||
                get_count(value, "total", &total)) {
                char *quoted = quote(line, len, QUOTE_LIMIT);
                char *text = format_text("backend '%s' sent an invalid $/progress: %s",
                                         b->label, quoted ? quoted : "");
                free(quoted);
                json_decref(message);
                return broke_protocol(b, text);
            }
            json_t *token = json_object_get(params, "token");
            char mine[32];
            snprintf(mine, sizeof mine, "work-%lld", (long long)b->next_token);
            if (b->progress && json_is_string(token) && strcmp(json_string_value(token), mine) == 0)
                b->progress(b->progress_userdata, done_count, total);
        }
        json_decref(message);
        return QC_OK;
    }
    json_t *got = json_object_get(message, "id");
    json_t *err = json_object_get(message, "error");
    json_t *res = json_object_get(message, "result");
    char *problem = NULL;
    if (!json_is_integer(got) || json_integer_value(got) != id)
        problem = format_text("answered an unknown request id %s", got && json_is_integer(got)
                              ? "" : "(not an integer)");
    else if (err == NULL && res == NULL)
        problem = strdup("sent a response with neither result nor error");
    else if (err != NULL && (!json_is_object(err) ||
                             !json_is_integer(json_object_get(err, "code")) ||
                             !json_is_string(json_object_get(err, "message"))))
        problem = strdup("sent an error without an integer 'code' and a string 'message'");
    if (problem != NULL) {
        char *quoted = quote(line, len, QUOTE_LIMIT);
        char number[32] = "";
        if (json_is_integer(got) && json_integer_value(got) != id)
            snprintf(number, sizeof number, "%lld", (long long)json_integer_value(got));
        char *text = format_text("backend '%s' %s%s: %s", b->label, problem, number,
                                 quoted ? quoted : "");
        free(problem);
        free(quoted);
        json_decref(message);
        return broke_protocol(b, text);
    }
    *done = 1;
    int status = QC_OK;
    if (err != NULL) {
        json_t *data = json_object_get(err, "data");
        status = fail(b, QC_BACKEND, "%s", json_string_value(json_object_get(err, "message")));
        b->errcode = (int)json_integer_value(json_object_get(err, "code"));
        b->errdata = data ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    } else if (result != NULL) {
        *result = json_incref(res);
    }
    json_decref(message);
    return status;
}

static void send_cancel(qc_backend *b, int64_t id)
{
    json_t *params = json_pack("{s:I}", "id", (json_int_t)id);
    if (params != NULL)
        send_message(b, 0, "$/cancelRequest", params, NULL, qc_now() + CANCEL_GRACE);
}

int rpc_call(qc_backend *b, const char *method, json_t *params, double timeout,
             json_t **result)
{
    return rpc_call_with(b, method, params, NULL, timeout, result);
}

int rpc_call_with(qc_backend *b, const char *method, json_t *params, const raw_member *raw,
                  double timeout, json_t **result)
{
    int status = usable(b, method);
    if (status == QC_OK)
        status = flush_pending(b);
    if (status != QC_OK) {
        json_decref(params);
        return status;
    }
    char drain[64];
    while (read(b->wake[0], drain, sizeof drain) > 0) {
    } /* a cancellation that came while nothing was in flight is for nothing */
    int64_t id = b->next_id++;
    double deadline = timeout > 0 ? qc_now() + timeout : 0;
    if ((status = send_message(b, id, method, params, raw, deadline)) != QC_OK)
        return status;
    int timed_out = 0, done = 0;
    json_t *answer = NULL;
    while (!done) {
        char *line;
        size_t len;
        int io = proc_read_line(&b->proc, deadline, b->wake[0], &line, &len);
        if (io == IO_DONE) {
            status = dispatch(b, line, len, id, &done, &answer);
            if (status != QC_OK && !done)
                return status;
        } else if (io == IO_WAKE) {
            send_cancel(b, id);
        } else if (io == IO_TIMEOUT && !timed_out) {
            timed_out = 1;
            send_cancel(b, id);
            deadline = qc_now() + CANCEL_GRACE;
        } else if (io == IO_TIMEOUT) {
            char seconds[32], grace[32];
            format_double(timeout, seconds, sizeof seconds);
            format_double(CANCEL_GRACE, grace, sizeof grace);
            proc_stop(&b->proc, 0, b->label);
            return fail_for_good(b, QC_HUNG, "backend '%s' did not answer '%s' within %s s, nor "
                                 "the cancellation within %s s: it is hung and was terminated",
                                 b->label, method, seconds, grace);
        } else {
            return io_failure(b, io, method);
        }
    }
    if (timed_out) {
        char seconds[32];
        json_decref(answer);
        format_double(timeout, seconds, sizeof seconds);
        return fail(b, QC_TIMEOUT, "backend '%s' did not answer '%s' within %s s; the request "
                    "was cancelled", b->label, method, seconds);
    }
    if (status == QC_OK && result != NULL)
        *result = answer;
    else
        json_decref(answer);
    return status;
}

int get_count(const json_t *object, const char *key, int64_t *value)
{
    json_t *member = json_object_get(object, key);
    if (!json_is_integer(member) || json_integer_value(member) < 0)
        return -1;
    *value = json_integer_value(member);
    return 0;
}

int bad_result(qc_backend *b, const char *method, const json_t *result, const char *what)
{
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *quoted = text ? quote(text, strlen(text), QUOTE_LIMIT) : NULL;
    char *message = format_text("backend '%s' answered '%s' with an invalid result: expected %s:"
                                " %s", b->label, method, what, quoted ? quoted : "null");
    free(text);
    free(quoted);
    return broke_protocol(b, message);
}
