/*
 * qibo_core.h: run quantum circuits on qibo-core backends from C.
 *
 * A backend is an executable `qibo-backend-<name>` (NumPy, Qulacs, Aer, qibojit, or anything
 * that speaks docs/protocol.md). This library finds it, spawns it with pipes, speaks the
 * protocol (JSON-RPC, one message per line), and shuts it down. Read this file top to bottom.
 *
 * Rules that hold for every function:
 *
 * - Every call returns an int status (enum qc_status): QC_OK, or what went wrong. No call
 *   aborts, exits or raises a signal; the library starts no thread and keeps no global state.
 * - The words: qc_errmsg(backend) for the last failure of a backend or of anything made on it
 *   (results, states, prepared circuits, views); qc_circuit_errmsg(circuit) for a circuit.
 *   They say what went wrong and what to do, in the words of the Python client.
 * - A constructor (qc_connect, qc_circuit_new, qc_circuit_from_qasm) sets its out-parameter
 *   whenever memory allows, also when it fails, so that the message can be read: free it
 *   either way. Other functions set their out-parameters only on QC_OK.
 * - Every object is freed by one *_free function, safe to call on NULL. Objects made on a
 *   backend (results, states, prepared circuits, views) may outlive it: once the backend is
 *   freed their calls fail with QC_USAGE, and freeing them is still required; the handle's
 *   memory (and qc_errmsg on it) stays valid until the last of them is freed.
 * - A backend and what is made on it are used by one thread at a time; qc_cancel may be called
 *   from any thread or from a signal handler, until qc_backend_free.
 * - Amplitudes are little-endian complex numbers, real part first (C99 `double complex` for
 *   complex128), qubit 0 the most significant bit of an index.
 */
#ifndef QIBO_CORE_H
#define QIBO_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QC_VERSION "0.1.0"
/* The newest protocol version this library speaks; it also speaks 1 and 2. */
#define QC_PROTOCOL_VERSION 3

/* ---- statuses and errors ------------------------------------------------------------- */

enum qc_status {
    QC_OK = 0,
    QC_USAGE = 1,      /* the call cannot be made as asked (an argument, a closed backend): fix
                          the call; the backend is still usable */
    QC_NOT_FOUND = 2,  /* no qibo-backend-<name> on PATH nor in the configuration file */
    QC_CONFIG = 3,     /* the backends configuration file is invalid: fix the file */
    QC_TIMEOUT = 4,    /* a request ran out of time and was cancelled; the backend is usable */
    QC_BACKEND = 5,    /* the backend answered with an error: qc_errcode() gives its code */
    QC_CRASHED = 6,    /* the backend exited (how, and its last stderr lines, in the message) */
    QC_HUNG = 7,       /* it answered neither a request nor its cancellation: terminated */
    QC_PROTOCOL = 8,   /* it sent something that is not protocol: killed */
    QC_CONNECTION = 9, /* it could not be started, or a system call on its pipes failed */
    QC_NOMEM = 10      /* out of memory */
};
/* QC_CRASHED, QC_HUNG, QC_PROTOCOL and QC_CONNECTION are for good: every later call on that
 * backend fails the same way. Free it and connect again. */

/* The JSON-RPC error codes of the protocol, as qc_errcode() gives them after QC_BACKEND. */
enum qc_rpc_code {
    QC_RPC_PARSE_ERROR = -32700,
    QC_RPC_INVALID_REQUEST = -32600,
    QC_RPC_METHOD_NOT_FOUND = -32601,
    QC_RPC_INVALID_PARAMS = -32602,
    QC_RPC_INTERNAL_ERROR = -32603,
    QC_RPC_UNSUPPORTED_PROTOCOL_VERSION = -32001,
    QC_RPC_SERVER_NOT_INITIALIZED = -32002,
    QC_RPC_UNKNOWN_STATE = -32003,
    QC_RPC_GATE_FAILED = -32004,
    QC_RPC_STATE_TOO_LARGE = -32005,
    QC_RPC_REQUEST_CANCELLED = -32006
};

typedef struct qc_backend qc_backend;
typedef struct qc_circuit qc_circuit;
typedef struct qc_result qc_result;
typedef struct qc_state qc_state;
typedef struct qc_prepared qc_prepared;
typedef struct qc_view qc_view;

/* The name of a status ("QC_TIMEOUT"); a static string. */
const char *qc_strstatus(int status);

/* The message of the last failure on `backend` (or on an object made on it); "" after none.
 * Owned by the backend, valid until its next call. NULL gives "out of memory". */
const char *qc_errmsg(const qc_backend *backend);

/* The JSON-RPC code of the last QC_BACKEND failure (enum qc_rpc_code), else 0. */
int qc_errcode(const qc_backend *backend);

/* The `data` of the last QC_BACKEND failure as JSON text (GateFailed:
 * {"state": 2, "index": 7, "gate": {...}}), or NULL. Owned by the backend, as qc_errmsg. */
const char *qc_errdata(const qc_backend *backend);

/* ---- connecting ---------------------------------------------------------------------- */

enum qc_log_level { QC_LOG_INFO = 1, QC_LOG_WARNING = 2 };

/* Options of qc_connect. A zeroed struct (or NULL) means every default. */
typedef struct qc_options {
    const char *precision;       /* "complex128" (NULL: the default) or "complex64" */
    int threads;                 /* threads the simulator may use; 0: the backend's default */
    double timeout;              /* seconds each request may take; 0: no limit (the handshake
                                    always has 10 s) */
    const char *const *command;  /* a NULL-terminated argv to run instead of looking the name
                                    up (e.g. {"ssh", "gpu-box", "qibo-backend-qulacs", NULL}) */
    int no_shared_memory;        /* nonzero: every array crosses as base64 */
    size_t max_reply_bytes;      /* longest reply line taken; 0: 1 GiB */
    /* Called with the backend's stderr lines (QC_LOG_INFO) and with what the library did on
     * its own (QC_LOG_WARNING: a fallback to base64, a backend that had to be terminated).
     * NULL: nothing is reported. */
    void (*log)(void *userdata, int level, const char *message);
    void *log_userdata;
} qc_options;

/* Find qibo-backend-<name> (the configuration file's command for `name`, else the first
 * executable of that name on PATH), spawn it, and agree on a protocol version (3, or the
 * newest both speak). *backend is set whenever memory allows, also on failure (then its
 * qc_errmsg says why, and it holds no process): free it with qc_backend_free. */
int qc_connect(const char *name, const qc_options *options, qc_backend **backend);

/* Shut the backend down politely (shutdown, exit), then less so (SIGTERM after 2 s, SIGKILL
 * after 2 more); always reap it and close every pipe and segment. Objects made on it stay
 * to be freed. Safe on NULL. */
void qc_backend_free(qc_backend *backend);

/* What the backend said of itself: serverInfo.name ("qulacs"); owned by the backend. */
const char *qc_backend_name(const qc_backend *backend);
/* The protocol version agreed (1, 2 or 3); 0 before a handshake. */
int qc_backend_protocol_version(const qc_backend *backend);
/* The backend's process id; 0 once it is reaped. */
long qc_backend_pid(const qc_backend *backend);
/* 1 if the backend lists `feature` ("samples", "expectation"...) in its capabilities. */
int qc_backend_has_feature(const qc_backend *backend, const char *feature);
/* The whole `initialize` result as JSON text; owned by the backend. NULL before one. */
const char *qc_backend_info(const qc_backend *backend);

/* Seconds each later request may take (0: no limit). One that runs out is cancelled
 * (QC_TIMEOUT); a backend that ignores the cancellation for 2 s is terminated (QC_HUNG). */
int qc_set_timeout(qc_backend *backend, double seconds);

/* Cancel the request in flight on `backend`, if any: its caller gets QC_BACKEND with code
 * QC_RPC_REQUEST_CANCELLED (or its result, if that came first). Callable from any thread and
 * from a signal handler (it writes one byte to a pipe of the backend's). */
int qc_cancel(qc_backend *backend);

/* Call `progress(userdata, done, total)` whenever the backend reports progress of an execute
 * (gates) or of qc_expectation (sets); NULL stops. Called from inside the waiting call. */
int qc_set_progress(qc_backend *backend,
                    void (*progress)(void *userdata, int64_t done, int64_t total),
                    void *userdata);

/* ---- circuits ------------------------------------------------------------------------ */

/* A gate parameter by name, as docs/protocol.md section 7 names them: theta, phi, lam. */
typedef struct qc_param {
    const char *name;
    double value;
} qc_param;

#define QC_NO_SEED (-1)

/* An empty circuit of `nqubits` qubits. *circuit is set whenever memory allows (see the
 * rules above); free it with qc_circuit_free. */
int qc_circuit_new(int nqubits, qc_circuit **circuit);

/* The circuit an OpenQASM 2.0 program describes (the subset clients/c/README.md states:
 * qelib1.inc gates, qreg, creg, measure, barrier, expressions with pi). A failure names the
 * line: "line 7: unknown gate 'foo'". *circuit is set as by qc_circuit_new. */
int qc_circuit_from_qasm(const char *text, qc_circuit **circuit);

void qc_circuit_free(qc_circuit *circuit);

/* The message of the circuit's last failure, "" after none; owned by the circuit. */
const char *qc_circuit_errmsg(const qc_circuit *circuit);

/* Append gate `name` (section 7: "H", "CNOT", "RX", "CU3"...) on `qubits` (built-in controls
 * first, as the protocol orders them) with named parameters. The arrays are copied. The
 * backend checks the name and the parameters; this call checks the qubits. */
int qc_circuit_add_gate(qc_circuit *circuit, const char *name, size_t nqubits,
                        const int *qubits, size_t nparams, const qc_param *params);

/* Append a Unitary on `qubits`: `matrix` is 2^k x 2^k complex numbers, row-major, each as
 * two doubles (real, imaginary); copied. The backend checks it is unitary within 1e-8. */
int qc_circuit_add_unitary(qc_circuit *circuit, size_t nqubits, const int *qubits,
                           const double *matrix);

/* Modify the last gate added: extra control qubits (controlled_by), the inverse, and a
 * parameter that takes value number `index` of each set in qc_expectation (elsewhere the gate
 * keeps the value it was added with). QC_USAGE if the last add failed or there is none. */
int qc_circuit_controls(qc_circuit *circuit, size_t ncontrols, const int *controls);
int qc_circuit_dagger(qc_circuit *circuit);
int qc_circuit_slot(qc_circuit *circuit, const char *param, int index);

/* Measure `qubits` at the end into register `register_name` (NULL: "register<k>" for the
 * k-th measurement). Measurements close the circuit: no gate may act on a measured qubit. */
int qc_circuit_measure(qc_circuit *circuit, size_t nqubits, const int *qubits,
                       const char *register_name);

/* Shots sampled by qc_execute (default 0), with a seed for repeatable counts (QC_NO_SEED, or
 * 0 <= seed <= 2^63 - 1), and whether every shot is kept (qc_result_samples). */
int qc_circuit_set_shots(qc_circuit *circuit, uint64_t nshots, int64_t seed);
int qc_circuit_keep_samples(qc_circuit *circuit, int samples);

int qc_circuit_nqubits(const qc_circuit *circuit);
size_t qc_circuit_ngates(const qc_circuit *circuit);
/* Values per set of qc_expectation: the highest slot index + 1. */
int qc_circuit_nparameters(const qc_circuit *circuit);

/* The circuit as the protocol's JSON (section 2.3); *json is the caller's, to free(). */
int qc_circuit_to_json(const qc_circuit *circuit, char **json);

/* ---- running ------------------------------------------------------------------------- */

/* Run `circuit` from |0...0> and sample its shots. *result is the caller's
 * (qc_result_free); it holds the final state on the backend until then. */
int qc_execute(qc_backend *backend, const qc_circuit *circuit, qc_result **result);

void qc_result_free(qc_result *result);

/* The number of distinct outcomes seen; outcome `i` (sorted by bitstring) and its count. The
 * bitstring lists the measured qubits in measurement order; it is owned by the result. */
size_t qc_result_outcomes(const qc_result *result);
int qc_result_outcome(const qc_result *result, size_t i, const char **bitstring,
                      uint64_t *count);
/* The count of one bitstring (0 if never seen). */
uint64_t qc_result_count(const qc_result *result, const char *bitstring);

/* Every shot, when the circuit kept samples: nshots rows of `width` bytes (0 or 1), columns
 * in measurement order. Owned by the result. */
int qc_result_samples(const qc_result *result, const uint8_t **samples, uint64_t *nshots,
                      size_t *width);

/* The final state of an execute, held by the backend. Owned by the result: do not free it
 * (qc_state_free ignores it). NULL for the counts of qc_state_sample. */
qc_state *qc_result_state(qc_result *result);

/* ---- states held by the backend ------------------------------------------------------ */

/* A new state |0...0> of `nqubits` qubits on the backend, to stream gates into. The
 * caller's, to free with qc_state_free. */
int qc_state_new(qc_backend *backend, int nqubits, qc_state **state);

/* Release the backend's memory for the state. Safe on NULL and on a result's state. */
void qc_state_free(qc_state *state);

int qc_state_nqubits(const qc_state *state);
/* The bytes of the state's amplitudes: 2^n times 16 (complex128) or 8 (complex64). */
size_t qc_state_nbytes(const qc_state *state);

/* Stream gates without waiting for the backend: they leave in batches, before any other
 * request. A gate the backend refuses fails the next request naming the state with QC_BACKEND
 * and code QC_RPC_GATE_FAILED (qc_errdata says which); the state keeps the gates before it. */
int qc_state_apply_gate(qc_state *state, const char *name, size_t nqubits, const int *qubits,
                        size_t nparams, const qc_param *params);
/* Stream every gate of `gates` (a circuit of the same size, without measurements). */
int qc_state_apply(qc_state *state, const qc_circuit *gates);

/* Copy the amplitudes into `amplitudes` (exactly qc_state_nbytes(state) bytes): through a
 * shared-memory segment when the backend offers one, else as base64. */
int qc_state_read(qc_state *state, void *amplitudes, size_t nbytes);

/* The amplitudes without a copy of ours: the backend writes them into a shared-memory segment
 * that this library maps read-only, and *amplitudes points into it (into memory decoded from
 * base64 when shared memory cannot be had). *view is the caller's: the memory stays valid and
 * unchanged until qc_view_free(*view), which gives the segment back. A backend running on
 * your account could still truncate the segment under the view (SIGBUS on reading): use
 * qc_state_read where that matters more than speed. */
int qc_state_view(qc_state *state, const void **amplitudes, size_t *nbytes, qc_view **view);
void qc_view_free(qc_view *view);

/* Probabilities of the outcomes of `qubits` (NULL: all, in order), the first qubit the most
 * significant bit: 2^nqubits doubles written to `probabilities`. */
int qc_state_probabilities(qc_state *state, size_t nqubits, const int *qubits,
                           double *probabilities);

/* Counts of `nshots` shots of `qubits` (NULL: all) drawn from the state, as a result with no
 * state; the caller's (qc_result_free). */
int qc_state_sample(qc_state *state, uint64_t nshots, size_t nqubits, const int *qubits,
                    int64_t seed, qc_result **counts);

/* The expectation value of `observable` ("Z0 Z1 + 0.5 X2 - 0.25 Y3") on the state, computed
 * by the backend (protocol version 3, feature "expectation"). */
int qc_state_expectation(qc_state *state, const char *observable, double *value);

/* ---- expectation values over parameter sets (protocol version 3) --------------------- */

/* Send `circuit` once, with its slots (qc_circuit_slot), for qc_expectation. The caller's,
 * to free with qc_prepared_free (which frees it on the backend too). */
int qc_prepare(qc_backend *backend, const qc_circuit *circuit, qc_prepared **prepared);
void qc_prepared_free(qc_prepared *prepared);

/* The expectation value of `observable` after each of `nsets` sets of values: `parameters`
 * holds nsets rows of qc_circuit_nparameters() doubles; `values` receives nsets doubles. The
 * backend runs every set without a round trip. */
int qc_expectation(qc_prepared *prepared, const char *observable, size_t nsets,
                   const double *parameters, double *values);

#ifdef __cplusplus
}
#endif

#endif /* QIBO_CORE_H */
