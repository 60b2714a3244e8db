/* The C client's test program: tests/test_c_client.py runs it (built plain and under
 * AddressSanitizer and UndefinedBehaviorSanitizer) and checks what it prints, one JSON object
 * per line, against NumPy and the Python client. Every mode ends by freeing everything and
 * printing what is left: descriptors, child processes, shared-memory segments.
 *
 *   qc_check functions BACKEND            every function on a real backend
 *   qc_check usage                        refusals that need no backend
 *   qc_check fake TIMEOUT COMMAND...      a fake backend: the first failure, in words
 *   qc_check killed BACKEND               the backend killed in the middle of a call
 *   qc_check connect NAME                 connecting by name, and what the log was told
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "qibo_core.h"

static int failures;

static void emit(json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(line);
}

/* A step that must succeed: print the failure and count it otherwise. */
static int ok(int status, const char *step, const qc_backend *b, const qc_circuit *c)
{
    if (status == QC_OK)
        return 1;
    failures++;
    emit(json_pack("{s:s, s:s, s:s}", "step", step, "unexpected", qc_strstatus(status),
                   "message", c && *qc_circuit_errmsg(c) ? qc_circuit_errmsg(c)
                                                         : qc_errmsg(b)));
    return 0;
}

static json_t *failure(int status, const char *message)
{
    return json_pack("{s:s, s:s}", "status", qc_strstatus(status), "message", message);
}

static json_t *counts(const qc_result *r)
{
    json_t *object = json_object();
    for (size_t i = 0; i < qc_result_outcomes(r); i++) {
        const char *bits;
        uint64_t count;
        qc_result_outcome(r, i, &bits, &count);
        json_object_set_new(object, bits, json_integer((json_int_t)count));
    }
    return object;
}

static json_t *doubles(const double *values, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_real(values[i]));
    return list;
}

static json_t *circuit_text(const qc_circuit *c)
{
    char *text = NULL;
    if (qc_circuit_to_json(c, &text) != QC_OK)
        return json_null();
    json_t *value = json_loads(text, 0, NULL);
    free(text);
    return value;
}

/* ---- leaks ------------------------------------------------------------------------- */

static int count_fds(void)
{
    int n = 0;
    DIR *dir = opendir("/proc/self/fd");
    for (struct dirent *e; dir && (e = readdir(dir));)
        n += e->d_name[0] != '.';
    if (dir)
        closedir(dir);
    return n - 1; /* the directory's own */
}

static int count_segments(void)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "qibo-core-%ld-", (long)getpid());
    int n = 0;
    DIR *dir = opendir("/dev/shm");
    for (struct dirent *e; dir && (e = readdir(dir));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (dir)
        closedir(dir);
    return n;
}

static void report_leftovers(int fds_before)
{
    int children = waitpid(-1, NULL, WNOHANG) >= 0 || errno != ECHILD;
    emit(json_pack("{s:s, s:i, s:b, s:i}", "step", "leftovers", "fds", count_fds() - fds_before,
                   "children", children, "segments", count_segments()));
}

/* ---- functions ------------------------------------------------------------------------ */

static const char QASM[] =
    "OPENQASM 2.0;\n"
    "include \"qelib1.inc\";\n"
    "qreg q[3];\n"
    "creg c[2];\n"
    "creg d[1];\n"
    "h q[0];\n"
    "cx q[0], q[1];\n"
    "u3(pi/2, -pi/4, 0.5*2) q[2]; // a comment\n"
    "rz(-(1 + 2^2) / sqrt(4)) q;\n"
    "barrier q;\n"
    "cu1(pi/8) q[2], q[0];\n"
    "measure q[1] -> c[0];\n"
    "measure q[0] -> c[1];\n"
    "measure q[2] -> d[0];\n";

static void step_bell(qc_backend *b)
{
    qc_circuit *c = NULL;
    qc_result *r = NULL, *sample = NULL;
    qc_view *view = NULL;
    double amplitudes[8], probabilities[4], marginal[2];
    const void *viewed = NULL;
    size_t nbytes = 0;
    qc_circuit_new(2, &c);
    qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL);
    qc_circuit_add_gate(c, "CNOT", 2, (int[]){0, 1}, 0, NULL);
    qc_circuit_measure(c, 2, (int[]){0, 1}, NULL);
    qc_circuit_set_shots(c, 1000, 7);
    if (ok(qc_execute(b, c, &r), "bell execute", b, c) &&
        ok(qc_state_read(qc_result_state(r), amplitudes, sizeof amplitudes), "bell read", b,
           NULL) &&
        ok(qc_state_view(qc_result_state(r), &viewed, &nbytes, &view), "bell view", b, NULL) &&
        ok(qc_state_probabilities(qc_result_state(r), 0, NULL, probabilities), "bell probs", b,
           NULL) &&
        ok(qc_state_probabilities(qc_result_state(r), 1, (int[]){1}, marginal), "marginal", b,
           NULL) &&
        ok(qc_state_sample(qc_result_state(r), 100, 2, (int[]){1, 0}, 3, &sample), "sample", b,
           NULL))
        emit(json_pack("{s:s, s:o, s:o, s:b, s:o, s:o, s:o, s:I, s:I}", "step", "bell",
                       "frequencies", counts(r), "amplitudes", doubles(amplitudes, 8),
                       "view equals read", nbytes == sizeof amplitudes &&
                                               memcmp(viewed, amplitudes, nbytes) == 0,
                       "probabilities", doubles(probabilities, 4), "marginal",
                       doubles(marginal, 2), "sample", counts(sample), "count 00",
                       (json_int_t)qc_result_count(r, "00"), "count 01",
                       (json_int_t)qc_result_count(r, "01")));
    qc_view_free(view);
    qc_result_free(sample);
    qc_result_free(r);
    qc_circuit_free(c);
}

static void step_gates(qc_backend *b)
{
    /* a unitary on two qubits: CNOT times (H x S) */
    const double h = 1 / sqrt(2);
    const double unitary[32] = {h, 0, 0, 0, h, 0, 0, 0,   0, 0, 0, h, 0, 0, 0, h,
                                0, 0, 0, h, 0, 0, 0, -h,  h, 0, 0, 0, -h, 0, 0, 0};
    qc_circuit *c = NULL;
    qc_result *r = NULL;
    double amplitudes[16];
    qc_circuit_new(3, &c);
    int s = qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL);
    s = s ?: qc_circuit_add_gate(c, "RX", 1, (int[]){1}, 1, (qc_param[]){{"theta", 0.3}});
    s = s ?: qc_circuit_add_gate(c, "CU3", 2, (int[]){0, 2}, 3,
                                 (qc_param[]){{"theta", 0.1}, {"phi", 0.2}, {"lam", 0.3}});
    s = s ?: qc_circuit_add_gate(c, "RY", 1, (int[]){2}, 1, (qc_param[]){{"theta", 0.7}});
    s = s ?: qc_circuit_controls(c, 1, (int[]){1});
    s = s ?: qc_circuit_add_gate(c, "S", 1, (int[]){1}, 0, NULL);
    s = s ?: qc_circuit_dagger(c);
    s = s ?: qc_circuit_add_unitary(c, 2, (int[]){2, 0}, unitary);
    s = s ?: qc_circuit_add_gate(c, "fSim", 2, (int[]){1, 2}, 2,
                                 (qc_param[]){{"theta", 0.4}, {"phi", 0.9}});
    s = s ?: qc_circuit_add_gate(c, "U2", 1, (int[]){1}, 2,
                                 (qc_param[]){{"phi", -0.2}, {"lam", 1.1}});
    s = s ?: qc_circuit_dagger(c);
    s = s ?: qc_circuit_add_gate(c, "SWAP", 2, (int[]){0, 2}, 0, NULL);
    s = s ?: qc_circuit_add_gate(c, "TOFFOLI", 3, (int[]){2, 1, 0}, 0, NULL);
    if (ok(s, "gates build", b, c) && ok(qc_execute(b, c, &r), "gates execute", b, c) &&
        ok(qc_state_read(qc_result_state(r), amplitudes, sizeof amplitudes), "gates read", b,
           NULL))
        emit(json_pack("{s:s, s:o, s:o}", "step", "gates", "circuit", circuit_text(c),
                       "amplitudes", doubles(amplitudes, 16)));
    qc_result_free(r);
    qc_circuit_free(c);
}

/* Gates only the backend can refuse: it names the gate, and stays usable. */
static void step_invalid_gates(qc_backend *b)
{
    const char *names[] = {"FOO", "RX"};
    json_t *line = json_pack("{s:s, s:[]}", "step", "invalid gates", "refusals");
    for (size_t i = 0; i < 2; i++) {
        qc_circuit *c = NULL;
        qc_result *r = NULL;
        qc_circuit_new(1, &c);
        qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL);
        qc_circuit_add_gate(c, names[i], 1, (int[]){0}, 0, NULL);
        int status = qc_execute(b, c, &r);
        json_array_append_new(json_object_get(line, "refusals"),
                              json_pack("{s:s, s:i, s:s}", "status", qc_strstatus(status),
                                        "code", qc_errcode(b), "message", qc_errmsg(b)));
        qc_result_free(r);
        qc_circuit_free(c);
    }
    emit(line);
}

static void step_qasm(qc_backend *b)
{
    qc_circuit *c = NULL;
    qc_result *r = NULL;
    double amplitudes[16];
    if (ok(qc_circuit_from_qasm(QASM, &c), "qasm parse", b, c) &&
        ok(qc_circuit_set_shots(c, 500, 11), "qasm shots", b, c) &&
        ok(qc_execute(b, c, &r), "qasm execute", b, c) &&
        ok(qc_state_read(qc_result_state(r), amplitudes, sizeof amplitudes), "qasm read", b,
           NULL))
        emit(json_pack("{s:s, s:s, s:o, s:o, s:o}", "step", "qasm", "text", QASM, "circuit",
                       circuit_text(c), "frequencies", counts(r), "amplitudes",
                       doubles(amplitudes, 16)));
    qc_result_free(r);
    qc_circuit_free(c);
}

static void step_stream(qc_backend *b)
{
    qc_state *s = NULL;
    qc_circuit *more = NULL;
    qc_result *sample = NULL;
    double probabilities[4], amplitudes[16], value = 0;
    qc_circuit_new(3, &more);
    qc_circuit_add_gate(more, "H", 1, (int[]){1}, 0, NULL);
    qc_circuit_add_gate(more, "T", 1, (int[]){1}, 0, NULL);
    qc_circuit_dagger(more);
    if (!ok(qc_state_new(b, 3, &s), "state new", b, NULL))
        return;
    int status = qc_state_apply_gate(s, "X", 1, (int[]){0}, 0, NULL);
    status = status ?: qc_state_apply_gate(s, "RY", 1, (int[]){2}, 1,
                                           (qc_param[]){{"theta", 1.2}});
    status = status ?: qc_state_apply(s, more);
    if (ok(status, "stream", b, NULL) &&
        ok(qc_state_probabilities(s, 2, (int[]){0, 2}, probabilities), "stream probs", b,
           NULL) &&
        ok(qc_state_read(s, amplitudes, sizeof amplitudes), "stream read", b, NULL) &&
        ok(qc_state_expectation(s, "Z0 + 0.5 X2 - 0.25 Y1 Z2", &value), "stream expect", b,
           NULL) &&
        ok(qc_state_sample(s, 100, 2, (int[]){2, 0}, QC_NO_SEED, &sample), "stream sample", b,
           NULL))
        emit(json_pack("{s:s, s:o, s:o, s:f, s:o}", "step", "stream", "probabilities",
                       doubles(probabilities, 4), "amplitudes", doubles(amplitudes, 16),
                       "expectation", value, "sample", counts(sample)));
    /* A gate the backend refuses fails the next request naming the state, once. */
    qc_state_apply_gate(s, "H", 1, (int[]){0}, 0, NULL);
    qc_state_apply_gate(s, "FOO", 1, (int[]){0}, 0, NULL);
    qc_state_apply_gate(s, "X", 1, (int[]){1}, 0, NULL);
    int failed = qc_state_read(s, amplitudes, sizeof amplitudes);
    int code = qc_errcode(b);
    const char *data = qc_errdata(b);
    json_t *failed_line = json_pack("{s:s, s:s, s:i, s:s, s:s?}", "step", "gate failed",
                                    "status", qc_strstatus(failed), "code", code, "message",
                                    qc_errmsg(b), "data", data);
    int again = qc_state_read(s, amplitudes, sizeof amplitudes);
    json_object_set_new(failed_line, "usable after", json_boolean(again == QC_OK));
    json_object_set_new(failed_line, "amplitudes", doubles(amplitudes, 16));
    emit(failed_line);
    qc_result_free(sample);
    qc_circuit_free(more);
    qc_state_free(s);
}

static void step_expectation(qc_backend *b)
{
    enum { N = 4, SETS = 5, WIDTH = 2 * N };
    qc_circuit *c = NULL;
    qc_prepared *p = NULL;
    double sets[SETS * WIDTH], values[SETS];
    const char *observable = "Z0 Z1 + 0.5 X2 - 0.25 Y3 + 0.1";
    qc_circuit_new(N, &c);
    int s = QC_OK;
    for (int q = 0; q < N && !s; q++) {
        s = qc_circuit_add_gate(c, "RY", 1, (int[]){q}, 1, (qc_param[]){{"theta", 0}});
        s = s ?: qc_circuit_slot(c, "theta", 2 * q);
        s = s ?: qc_circuit_add_gate(c, "RZ", 1, (int[]){q}, 1, (qc_param[]){{"theta", 0}});
        s = s ?: qc_circuit_slot(c, "theta", 2 * q + 1);
    }
    for (int q = 0; q + 1 < N && !s; q++)
        s = qc_circuit_add_gate(c, "CZ", 2, (int[]){q, q + 1}, 0, NULL);
    for (int i = 0; i < SETS * WIDTH; i++)
        sets[i] = 3 * sin(1.7 * i + 0.3);
    if (ok(s, "ansatz", b, c) && ok(qc_prepare(b, c, &p), "prepare", b, NULL) &&
        ok(qc_expectation(p, observable, SETS, sets, values), "expectation", b, NULL)) {
        json_t *slots = json_array();
        emit(json_pack("{s:s, s:o, s:s, s:i, s:o, s:o}", "step", "expectation", "circuit",
                       circuit_text(c), "observable", observable, "nparameters",
                       qc_circuit_nparameters(c), "sets", doubles(sets, SETS * WIDTH),
                       "values", doubles(values, SETS)));
        json_decref(slots);
    }
    /* a second call reuses the prepared circuit: only values cross */
    if (p != NULL && ok(qc_expectation(p, "X0", 1, sets, values), "expectation again", b,
                        NULL))
        emit(json_pack("{s:s, s:f}", "step", "expectation again", "value", values[0]));
    qc_prepared_free(p);
    qc_circuit_free(c);
}

/* 16 qubits (1 MiB) cross through a segment, and so do samples of 90,000 bytes. */
static void step_large(qc_backend *b, const char *name)
{
    enum { N = 16 };
    qc_state *s = NULL;
    qc_view *view = NULL;
    const void *viewed = NULL;
    size_t nbytes = 0;
    double *copy = malloc((size_t)16 << N);
    int status = qc_state_new(b, N, &s);
    for (int q = 0; q < N && status == QC_OK; q++)
        status = qc_state_apply_gate(s, "H", 1, (int[]){q}, 0, NULL);
    status = status ?: qc_state_apply_gate(s, "RZ", 1, (int[]){3}, 1,
                                           (qc_param[]){{"theta", 0.5}});
    if (ok(status, "large state", b, NULL) &&
        ok(qc_state_read(s, copy, (size_t)16 << N), "large read", b, NULL) &&
        ok(qc_state_view(s, &viewed, &nbytes, &view), "large view", b, NULL)) {
        double norm = 0;
        for (size_t i = 0; i < (size_t)2 << N; i++)
            norm += copy[i] * copy[i];
        emit(json_pack("{s:s, s:f, s:f, s:f, s:b}", "step", "large", "norm", norm, "first re",
                       copy[0], "first im", copy[1], "view equals read",
                       nbytes == (size_t)16 << N && memcmp(viewed, copy, nbytes) == 0));
    }
    qc_view_free(view);
    qc_state_free(s);
    free(copy);
    /* samples through a segment, checked against the counts; then the same seed without
     * shared memory gives the same counts */
    qc_options plain = {.no_shared_memory = 1};
    qc_backend *inline_backend = NULL;
    qc_circuit *c = NULL;
    qc_result *r = NULL, *again = NULL;
    qc_circuit_new(3, &c);
    qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL);
    qc_circuit_add_gate(c, "RX", 1, (int[]){2}, 1, (qc_param[]){{"theta", 1.0}});
    qc_circuit_measure(c, 3, (int[]){2, 0, 1}, "m");
    qc_circuit_set_shots(c, 30000, 5);
    qc_circuit_keep_samples(c, 1);
    const uint8_t *rows = NULL, *rows_again = NULL;
    uint64_t nshots = 0, nshots_again = 0;
    size_t width = 0, width_again = 0;
    if (ok(qc_execute(b, c, &r), "samples", b, c) &&
        ok(qc_result_samples(r, &rows, &nshots, &width), "samples rows", b, NULL) &&
        ok(qc_connect(name, &plain, &inline_backend), "connect inline", inline_backend, NULL) &&
        ok(qc_execute(inline_backend, c, &again), "samples inline", inline_backend, c) &&
        ok(qc_result_samples(again, &rows_again, &nshots_again, &width_again), "rows inline",
           inline_backend, NULL)) {
        int consistent = 1;
        for (size_t i = 0; i < qc_result_outcomes(r); i++) {
            const char *bits;
            uint64_t count, seen = 0;
            qc_result_outcome(r, i, &bits, &count);
            for (uint64_t k = 0; k < nshots; k++)
                seen += rows[k * width] == bits[0] - '0' && rows[k * width + 1] == bits[1] - '0'
                        && rows[k * width + 2] == bits[2] - '0';
            consistent = consistent && seen == count;
        }
        emit(json_pack("{s:s, s:I, s:i, s:b, s:o, s:b}", "step", "samples", "nshots",
                       (json_int_t)nshots, "width", (int)width, "rows match counts",
                       consistent, "frequencies", counts(r), "same without shared memory",
                       nshots == nshots_again &&
                           memcmp(rows, rows_again, nshots * width) == 0));
    }
    qc_result_free(again);
    qc_result_free(r);
    qc_circuit_free(c);
    qc_backend_free(inline_backend);
}

static qc_circuit *qft(int n)
{
    qc_circuit *c = NULL;
    qc_circuit_new(n, &c);
    for (int i = 0; i < n; i++) {
        qc_circuit_add_gate(c, "H", 1, (int[]){i}, 0, NULL);
        for (int j = i + 1; j < n; j++)
            qc_circuit_add_gate(c, "CU1", 2, (int[]){j, i}, 1,
                                (qc_param[]){{"theta", M_PI / (double)(1 << (j - i))}});
    }
    for (int i = 0; i < n / 2; i++)
        qc_circuit_add_gate(c, "SWAP", 2, (int[]){i, n - 1 - i}, 0, NULL);
    return c;
}

static void *cancel_soon(void *backend)
{
    nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    qc_cancel(backend);
    return NULL;
}

static void count_progress(void *userdata, int64_t done, int64_t total)
{
    (void)done;
    (void)total;
    ++*(int *)userdata;
}

static void step_timeout_and_cancel(qc_backend *b)
{
    qc_circuit *slow = qft(22), *quick = qft(2);
    qc_result *r = NULL;
    int progress = 0;
    qc_set_timeout(b, 0.05);
    int timed_out = qc_execute(b, slow, &r);
    json_t *timeout_line = failure(timed_out, qc_errmsg(b));
    qc_set_timeout(b, 0);
    int after_timeout = qc_execute(b, quick, &r);
    qc_result_free(r);
    r = NULL;
    qc_set_progress(b, count_progress, &progress);
    pthread_t thread;
    pthread_create(&thread, NULL, cancel_soon, b);
    int cancelled = qc_execute(b, slow, &r);
    pthread_join(thread, NULL);
    json_t *cancel_line = failure(cancelled, qc_errmsg(b));
    json_object_set_new(cancel_line, "code", json_integer(qc_errcode(b)));
    qc_set_progress(b, NULL, NULL);
    qc_result_free(r);
    r = NULL;
    int after_cancel = qc_execute(b, quick, &r);
    qc_result_free(r);
    emit(json_pack("{s:s, s:o, s:b, s:o, s:b, s:i}", "step", "timeout and cancel", "timeout",
                   timeout_line, "usable after timeout", after_timeout == QC_OK, "cancel",
                   cancel_line, "usable after cancel", after_cancel == QC_OK, "progress",
                   progress));
    qc_circuit_free(slow);
    qc_circuit_free(quick);
}

static int functions(const char *name)
{
    int fds = count_fds();
    qc_backend *b = NULL;
    if (!ok(qc_connect(name, NULL, &b), "connect", b, NULL)) {
        qc_backend_free(b);
        return 1;
    }
    emit(json_pack("{s:s, s:s, s:i, s:b, s:b}", "step", "connected", "name", qc_backend_name(b),
                   "protocol", qc_backend_protocol_version(b), "has pid",
                   qc_backend_pid(b) > 0, "expectation",
                   qc_backend_has_feature(b, "expectation")));
    step_bell(b);
    step_gates(b);
    step_invalid_gates(b);
    step_qasm(b);
    step_stream(b);
    step_expectation(b);
    step_large(b, name);
    step_timeout_and_cancel(b);
    qc_backend_free(b);
    report_leftovers(fds);
    return failures != 0;
}

/* ---- usage: refusals in words ------------------------------------------------------- */

static void refusal(const char *name, int status, const char *message)
{
    emit(json_pack("{s:s, s:s, s:s, s:s}", "step", "usage", "case", name, "status",
                   qc_strstatus(status), "message", message));
}

/* The status first, then the words: an argument list has no order of evaluation. */
#define REFUSE(name, call, words)                                                          \
    do {                                                                                   \
        int status_ = (call);                                                              \
        refusal(name, status_, words);                                                     \
    } while (0)

static int usage(void)
{
    int fds = count_fds();
    qc_circuit *c = NULL;
    qc_backend *b = NULL;
    int s = qc_circuit_new(0, &c);
    refusal("no qubits", s, qc_circuit_errmsg(c));
    REFUSE("still no qubits", qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL),
            qc_circuit_errmsg(c));
    qc_circuit_free(c);
    qc_circuit_new(2, &c);
    REFUSE("outside", qc_circuit_add_gate(c, "H", 1, (int[]){2}, 0, NULL),
            qc_circuit_errmsg(c));
    REFUSE("repeated", qc_circuit_add_gate(c, "CNOT", 2, (int[]){0, 0}, 0, NULL),
            qc_circuit_errmsg(c));
    REFUSE("negative", qc_circuit_add_gate(c, "X", 1, (int[]){-1}, 0, NULL),
            qc_circuit_errmsg(c));
    REFUSE("not finite", qc_circuit_add_gate(c, "RX", 1, (int[]){0}, 1,
                                              (qc_param[]){{"theta", NAN}}),
            qc_circuit_errmsg(c));
    REFUSE("twice", qc_circuit_add_gate(c, "U2", 1, (int[]){0}, 2,
                                         (qc_param[]){{"phi", 1}, {"phi", 2}}),
            qc_circuit_errmsg(c));
    REFUSE("dagger of nothing", qc_circuit_dagger(c), qc_circuit_errmsg(c));
    qc_circuit_add_gate(c, "RX", 1, (int[]){0}, 1, (qc_param[]){{"theta", 0.5}});
    REFUSE("slot of no parameter", qc_circuit_slot(c, "phi", 0), qc_circuit_errmsg(c));
    REFUSE("control on a target", qc_circuit_controls(c, 1, (int[]){0}), qc_circuit_errmsg(c));
    qc_circuit_measure(c, 1, (int[]){1}, "m");
    REFUSE("register again", qc_circuit_measure(c, 1, (int[]){0}, "m"), qc_circuit_errmsg(c));
    REFUSE("after measurement", qc_circuit_add_gate(c, "H", 1, (int[]){1}, 0, NULL),
            qc_circuit_errmsg(c));
    REFUSE("shots", qc_circuit_set_shots(c, (1ULL << 40) + 1, QC_NO_SEED),
            qc_circuit_errmsg(c));
    REFUSE("seed", qc_circuit_set_shots(c, 10, -5), qc_circuit_errmsg(c));
    qc_circuit_free(c);
    const char *programs[] = {
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\nfoo q[0];\n",
        "OPENQASM 2.0;\nqreg q[2];\ngate g a { h a; }\n",
        "OPENQASM 3.0;\nqreg q[1];\n",
        "OPENQASM 2.0;\nqreg q[2];\n\nh q[2];\n",
        "OPENQASM 2.0;\nqreg q[1];\nrx(1/0) q[0];\n",
        "OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];\nh q[0];\n",
        "OPENQASM 2.0;\nqreg q[2];\ncx q[0];\n",
        "OPENQASM 2.0;\nqreg q[2];\nh q[0]\n",
    };
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        c = NULL;
        s = qc_circuit_from_qasm(programs[i], &c);
        emit(json_pack("{s:s, s:s, s:s, s:s}", "step", "qasm refused", "program", programs[i],
                       "status", qc_strstatus(s), "message", qc_circuit_errmsg(c)));
        qc_circuit_free(c);
    }
    s = qc_connect("no-such-backend", NULL, &b);
    refusal("not found", s, qc_errmsg(b));
    REFUSE("found nothing to use", qc_state_new(b, 1, &(qc_state *){NULL}), qc_errmsg(b));
    qc_backend_free(b);
    s = qc_connect("not a name", NULL, &b);
    refusal("not a name", s, qc_errmsg(b));
    qc_backend_free(b);
    s = qc_connect("numpy", &(qc_options){.precision = "complex256"}, &b);
    refusal("precision", s, qc_errmsg(b));
    qc_backend_free(b);
    s = qc_connect("x", &(qc_options){.command = (const char *const[]){"/nonexistent/program",
                                                                       NULL}}, &b);
    refusal("cannot start", s, qc_errmsg(b));
    qc_backend_free(b);
    qc_backend_free(NULL);
    qc_circuit_free(NULL);
    qc_result_free(NULL);
    qc_state_free(NULL);
    qc_prepared_free(NULL);
    qc_view_free(NULL);
    report_leftovers(fds);
    return 0;
}

/* ---- a fake backend: every step until the first failure ----------------------------- */

static int fake(double timeout, char **command)
{
    int fds = count_fds();
    qc_backend *b = NULL;
    qc_circuit *c = NULL;
    qc_result *r = NULL;
    qc_state *s = NULL;
    double small[8], *large = malloc((size_t)16 << 14);
    qc_options options = {.command = (const char *const *)command, .timeout = timeout,
                          .max_reply_bytes = 1 << 20};
    const char *step = "connect";
    int status = qc_connect("fake", &options, &b);
    if (status == QC_OK) {
        step = "execute";
        qc_circuit_new(2, &c);
        qc_circuit_add_gate(c, "H", 1, (int[]){0}, 0, NULL);
        qc_circuit_measure(c, 2, (int[]){0, 1}, NULL);
        qc_circuit_set_shots(c, 10, QC_NO_SEED);
        status = qc_execute(b, c, &r);
    }
    if (status == QC_OK) {
        step = "read";
        status = qc_state_read(qc_result_state(r), small, sizeof small);
    }
    if (status == QC_OK) {
        step = "large read";
        status = qc_state_new(b, 14, &s);
        status = status ?: qc_state_read(s, large, (size_t)16 << 14);
    }
    json_t *line = failure(status, qc_errmsg(b));
    json_object_set_new(line, "step", json_string("fake"));
    json_object_set_new(line, "at", json_string(status == QC_OK ? "done" : step));
    json_object_set_new(line, "code", json_integer(qc_errcode(b)));
    json_object_set_new(line, "protocol", json_integer(qc_backend_protocol_version(b)));
    qc_state *later = NULL;
    int again = qc_state_new(b, 1, &later);
    qc_state_free(later);
    json_object_set_new(line, "later", json_string(qc_strstatus(status ? again : QC_OK)));
    emit(line);
    qc_state_free(s);
    qc_result_free(r);
    qc_circuit_free(c);
    qc_backend_free(b);
    free(large);
    report_leftovers(fds);
    return 0;
}

/* ---- connecting by name (PATH, the configuration file) ----------------------------- */

static void keep_log(void *userdata, int level, const char *message)
{
    if (level == QC_LOG_WARNING)
        json_array_append_new(userdata, json_string(message));
}

static int connect_by_name(const char *name)
{
    int fds = count_fds();
    json_t *log = json_array();
    qc_backend *b = NULL;
    int status = qc_connect(name, &(qc_options){.log = keep_log, .log_userdata = log}, &b);
    char *warnings = json_dumps(log, JSON_COMPACT);
    emit(json_pack("{s:s, s:s, s:s, s:s, s:s}", "step", "connect", "status",
                   qc_strstatus(status), "message", qc_errmsg(b), "name", qc_backend_name(b),
                   "log", warnings));
    free(warnings);
    json_decref(log);
    qc_backend_free(b);
    report_leftovers(fds);
    return 0;
}

/* ---- a real backend killed in the middle of a call ---------------------------------- */

static void *kill_soon(void *backend)
{
    nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    kill((pid_t)qc_backend_pid(backend), SIGKILL);
    return NULL;
}

static int killed(const char *name)
{
    int fds = count_fds();
    qc_backend *b = NULL;
    qc_circuit *slow = qft(22);
    qc_result *r = NULL;
    qc_state *s = NULL;
    if (!ok(qc_connect(name, NULL, &b), "connect", b, NULL))
        return 1;
    ok(qc_state_new(b, 2, &s), "state before", b, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, kill_soon, b);
    int status = qc_execute(b, slow, &r);
    pthread_join(thread, NULL);
    json_t *line = failure(status, qc_errmsg(b));
    json_object_set_new(line, "step", json_string("killed"));
    double amplitudes[8];
    int later = qc_state_read(s, amplitudes, sizeof amplitudes);
    json_object_set_new(line, "later", json_string(qc_strstatus(later)));
    json_object_set_new(line, "later message", json_string(qc_errmsg(b)));
    emit(line);
    qc_backend_free(b);
    later = qc_state_read(s, amplitudes, sizeof amplitudes);
    emit(json_pack("{s:s, s:s, s:s}", "step", "after free", "status", qc_strstatus(later),
                   "message", qc_errmsg(b)));
    qc_state_free(s); /* an object made on a backend outlives it, and is freed after */
    qc_result_free(r);
    qc_circuit_free(slow);
    report_leftovers(fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "functions") == 0)
        return functions(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "usage") == 0)
        return usage();
    if (argc >= 4 && strcmp(argv[1], "fake") == 0)
        return fake(atof(argv[2]), argv + 3);
    if (argc >= 3 && strcmp(argv[1], "killed") == 0)
        return killed(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "connect") == 0)
        return connect_by_name(argv[2]);
    fprintf(stderr, "usage: qc_check functions BACKEND | usage | fake TIMEOUT COMMAND... | "
                    "killed BACKEND\n");
    return 2;
}
