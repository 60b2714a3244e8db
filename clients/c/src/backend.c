/* qc_connect and qc_backend_free: finding, spawning, the handshake with version negotiation,
 * and the polite shutdown. A handle lives until it and every object made on it are freed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const int SUPPORTED[] = {1, 2, 3};

static void shut_down(qc_backend *b);
static void give_up(qc_backend *b);

static qc_backend *backend_new(const char *name, const qc_options *options)
{
    qc_backend *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    proc_init(&b->proc);
    b->refs = 1;
    b->wake[0] = b->wake[1] = -1;
    b->next_id = 1;
    b->label = strdup(name ? name : "?");
    strcpy(b->precision, "complex128");
    if (options != NULL) {
        if (options->precision != NULL && strlen(options->precision) < sizeof b->precision)
            strcpy(b->precision, options->precision);
        b->timeout = options->timeout > 0 ? options->timeout : 0;
        if (options->max_reply_bytes > 0)
            b->proc.max_line = options->max_reply_bytes;
        b->proc.log = options->log;
        b->proc.log_userdata = options->log_userdata;
    }
    b->itemsize = strcmp(b->precision, "complex64") == 0 ? 8 : 16;
    if (b->label == NULL || pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(b->label);
        free(b);
        return NULL;
    }
    return b;
}

static void backend_destroy(qc_backend *b)
{
    segments_close(b, 0);
    json_decref(b->pending);
    json_decref(b->info);
    free(b->info_text);
    free(b->server_name);
    free(b->out);
    free(b->label);
    free(b->failure_msg);
    clear_error(b);
    free(b);
}

void backend_unref(qc_backend *b)
{
    if (b != NULL && --b->refs == 0)
        backend_destroy(b);
}

static int check_options(qc_backend *b, const qc_options *options)
{
    if (options == NULL)
        return QC_OK;
    if (options->precision != NULL && strcmp(options->precision, "complex128") != 0 &&
        strcmp(options->precision, "complex64") != 0)
        return fail(b, QC_USAGE, "precision must be \"complex128\" or \"complex64\", got \"%s\"",
                    options->precision);
    if (options->threads < 0)
        return fail(b, QC_USAGE, "threads must be positive (or 0 for the backend's default), "
                    "got %d", options->threads);
    if (options->timeout < 0)
        return fail(b, QC_USAGE, "timeout must be a positive number of seconds (or 0 for none)");
    return QC_OK;
}

static int initialize(qc_backend *b, int version, int threads, json_t **result)
{
    json_t *options = json_pack("{s:s}", "precision", b->precision);
    if (options != NULL && threads > 0)
        json_object_set_new(options, "threads", json_integer(threads));
    json_t *params = json_pack("{s:i, s:{s:s, s:s}, s:o}", "protocolVersion", version,
                               "clientInfo", "name", "qibo-core-c", "version", QC_VERSION,
                               "options", options);
    if (params == NULL)
        return fail(b, QC_NOMEM, "out of memory");
    return rpc_call(b, "initialize", params, HANDSHAKE_TIMEOUT, result);
}

static int speaks(int version)
{
    for (size_t i = 0; i < sizeof SUPPORTED / sizeof SUPPORTED[0]; i++)
        if (SUPPORTED[i] == version)
            return 1;
    return 0;
}

/* The newest version both speak, from UnsupportedProtocolVersion's data; 0 if none. */
static int common_version(const qc_backend *b)
{
    json_t *data = b->errdata ? json_loads(b->errdata, JSON_DECODE_ANY, NULL) : NULL;
    json_t *supported = json_object_get(data, "supported");
    int best = 0;
    size_t i;
    json_t *v;
    json_array_foreach(supported, i, v) {
        int version = (int)json_integer_value(v);
        if (json_is_integer(v) && speaks(version) && version > best)
            best = version;
    }
    json_decref(data);
    return best;
}

static int keep_info(qc_backend *b, json_t *info)
{
    json_t *server = json_object_get(info, "serverInfo");
    json_t *caps = json_object_get(info, "capabilities");
    json_t *version = json_object_get(info, "protocolVersion");
    json_t *encodings = json_object_get(caps, "stateEncodings");
    const char *name = json_string_value(json_object_get(server, "name"));
    if (!json_is_integer(version) || !json_is_object(caps) || name == NULL ||
        !json_is_array(encodings)) {
        int status = bad_result(b, "initialize", info, "protocolVersion, serverInfo.name and "
                                "capabilities with stateEncodings");
        json_decref(info);
        return status;
    }
    b->info = info;
    b->version = (int)json_integer_value(version);
    if (!speaks(b->version)) {
        char *text = json_dumps(info, JSON_COMPACT);
        int status = fail_for_good(b, QC_PROTOCOL, "backend '%s' answered 'initialize' with "
                                   "protocol version %d; this client speaks [1, 2, 3]: %s",
                                   b->label, b->version, text ? text : "");
        free(text);
        return status;
    }
    b->server_name = strdup(name);
    b->info_text = json_dumps(info, JSON_COMPACT);
    json_t *max = json_object_get(caps, "maxMessageBytes");
    if (json_is_integer(max) && json_integer_value(max) > 0)
        b->max_request = (size_t)json_integer_value(max);
    size_t i;
    json_t *e;
    json_array_foreach(encodings, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), "shm") == 0)
            b->shm_enabled = 1;
    }
    return b->server_name && b->info_text ? QC_OK : fail(b, QC_NOMEM, "out of memory");
}

static int handshake(qc_backend *b, int threads)
{
    json_t *info = NULL;
    int status = initialize(b, QC_PROTOCOL_VERSION, threads, &info);
    if (status == QC_BACKEND && b->errcode == QC_RPC_UNSUPPORTED_PROTOCOL_VERSION) {
        int version = common_version(b);
        if (version > 0)
            status = initialize(b, version, threads, &info);
    }
    return status == QC_OK ? keep_info(b, info) : status;
}

int qc_connect(const char *name, const qc_options *options, qc_backend **backend)
{
    if (backend == NULL)
        return QC_USAGE;
    qc_backend *b = *backend = backend_new(name, options);
    if (b == NULL)
        return QC_NOMEM;
    int status = name == NULL ? fail(b, QC_USAGE, "qc_connect needs a backend name")
                              : check_options(b, options);
    char **argv = NULL;
    int search = 0;
    if (status == QC_OK && options != NULL && options->command != NULL) {
        size_t count = 0;
        while (options->command[count])
            count++;
        argv = calloc(count + 1, sizeof *argv);
        for (size_t i = 0; argv && i < count; i++)
            argv[i] = strdup(options->command[i]);
        search = 1;
        if (count == 0)
            status = fail(b, QC_USAGE, "qc_options.command is empty");
        else if (argv == NULL || argv[count - 1] == NULL)
            status = fail(b, QC_NOMEM, "out of memory");
    } else if (status == QC_OK) {
        char *error = NULL;
        status = find_backend_command(name, &argv, &search, &error, &b->proc);
        if (status != QC_OK)
            status = error ? fail(b, status, "%s", error) : fail(b, QC_NOMEM, "out of memory");
        free(error);
    }
    if (status == QC_OK) {
        int error = proc_spawn(&b->proc, argv, search);
        if (error)
            status = fail(b, QC_CONNECTION, "could not start backend '%s' (%s): %s", name,
                          argv[0], strerror(error));
    }
    free_argv(argv);
    if (status == QC_OK)
        status = handshake(b, options ? options->threads : 0);
    if (status != QC_OK)
        give_up(b);
    return status;
}

/* After a failed connect: no process left, and every later call says why. The message of
 * the failure stays what qc_errmsg gives. */
static void give_up(qc_backend *b)
{
    char *message = b->errmsg ? strdup(b->errmsg) : NULL;
    int code = b->errcode;
    char *data = b->errdata ? strdup(b->errdata) : NULL;
    if (b->failure == 0) {
        b->failure = QC_CONNECTION;
        b->failure_msg = format_text("the connection to backend '%s' failed (%s): connect again",
                                     b->label, message ? message : "out of memory");
    }
    shut_down(b);
    clear_error(b);
    b->errmsg = message;
    b->errcode = code;
    b->errdata = data;
}

static void shut_down(qc_backend *b)
{
    if (b->failure == 0 && b->proc.pid > 0 && !b->proc.reaped) {
        json_decref(b->pending);
        b->pending = NULL; /* unsent gates of states about to go: nobody will read them */
        int status = rpc_call(b, "shutdown", NULL, SHUTDOWN_TIMEOUT, NULL);
        if (status == QC_BACKEND && b->errcode == QC_RPC_SERVER_NOT_INITIALIZED)
            status = QC_OK; /* it refused `initialize`: exit is all it needs */
        if (status == QC_OK || status == QC_BACKEND)
            status = rpc_notify(b, "exit", NULL);
        if (status != QC_OK)
            proc_log(&b->proc, QC_LOG_WARNING, "backend %s did not shut down politely: %s",
                     b->label, qc_errmsg(b));
    }
    segments_close(b, 0);
    proc_close(&b->proc, b->label);
    for (int i = 0; i < 2; i++)
        if (b->wake[i] >= 0)
            close(b->wake[i]);
    b->wake[0] = b->wake[1] = -1;
}

void qc_backend_free(qc_backend *backend)
{
    if (backend == NULL || backend->closed)
        return;
    shut_down(backend);
    backend->closed = 1;
    backend_unref(backend);
}

const char *qc_backend_name(const qc_backend *backend)
{
    return backend && backend->server_name ? backend->server_name : "";
}

int qc_backend_protocol_version(const qc_backend *backend)
{
    return backend ? backend->version : 0;
}

long qc_backend_pid(const qc_backend *backend)
{
    return backend && !backend->proc.reaped ? (long)backend->proc.pid : 0;
}

int qc_backend_has_feature(const qc_backend *backend, const char *feature)
{
    json_t *features = backend ? json_object_get(json_object_get(backend->info, "capabilities"),
                                                 "features") : NULL;
    size_t i;
    json_t *f;
    json_array_foreach(features, i, f) {
        if (feature && json_is_string(f) && strcmp(json_string_value(f), feature) == 0)
            return 1;
    }
    return 0;
}

const char *qc_backend_info(const qc_backend *backend)
{
    return backend ? backend->info_text : NULL;
}

int qc_set_timeout(qc_backend *backend, double seconds)
{
    if (backend == NULL)
        return QC_USAGE;
    if (!(seconds >= 0))
        return fail(backend, QC_USAGE, "timeout must be a positive number of seconds (or 0 for "
                    "none)");
    backend->timeout = seconds;
    return QC_OK;
}

int qc_cancel(qc_backend *backend)
{
    if (backend == NULL || backend->wake[1] < 0)
        return QC_USAGE;
    int saved = errno; /* a signal handler must leave errno as it found it */
    ssize_t n;
    do {
        n = write(backend->wake[1], "c", 1);
    } while (n < 0 && errno == EINTR);
    errno = saved;
    return QC_OK; /* a full pipe already holds a cancellation */
}

int qc_set_progress(qc_backend *backend,
                    void (*progress)(void *userdata, int64_t done, int64_t total),
                    void *userdata)
{
    if (backend == NULL)
        return QC_USAGE;
    backend->progress = progress;
    backend->progress_userdata = userdata;
    return QC_OK;
}
