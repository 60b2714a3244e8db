/* What the library's modules share: the structures behind the opaque handles, and each
 * module's functions. Nothing here is public. */
#ifndef QC_INTERNAL_H
#define QC_INTERNAL_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qibo_core.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qibo-core's arrays are little-endian; this library copies them as they are"
#endif

#define QC_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- process.c: a child with its stdin, stdout and stderr on pipes -------------------- */

#define STDERR_TAIL_LINES 50
#define STDERR_LINE_BYTES 1000
#define EXIT_TIMEOUT 2.0      /* seconds a backend has to exit once asked */
#define TERMINATE_TIMEOUT 2.0 /* seconds after SIGTERM before SIGKILL */

typedef struct qc_process {
    pid_t pid;        /* 0 before spawning and once reaped */
    int reaped;
    int wait_status;  /* once reaped */
    int in, out, err; /* our ends of its stdin, stdout, stderr; -1 when closed */
    int out_eof;
    char *buf;        /* stdout read but not yet taken: [start, end) */
    size_t start, end, cap, scanned;
    size_t max_line;
    char tail[STDERR_TAIL_LINES][STDERR_LINE_BYTES + 1]; /* the last stderr lines, a ring */
    int tail_next, tail_count;
    char partial[STDERR_LINE_BYTES + 1];
    size_t partial_len;
    void (*log)(void *userdata, int level, const char *message);
    void *log_userdata;
} qc_process;

enum io_result { IO_DONE, IO_TIMEOUT, IO_EOF, IO_BROKEN, IO_WAKE, IO_OVERSIZED, IO_ERROR };

void proc_init(qc_process *p);
/* Spawn argv (argv[0] a path, or a name looked up on PATH when `search`); 0 or an errno. */
int proc_spawn(qc_process *p, char *const argv[], int search);
/* Write `len` bytes to the child's stdin, reading its stdout and stderr meanwhile. */
int proc_write(qc_process *p, const char *data, size_t len, double deadline);
/* Wait for a whole line on stdout; on IO_DONE *line (NUL-terminated, valid until the next
 * read) and *len. `wake` is a descriptor whose readability interrupts the wait (IO_WAKE). */
int proc_read_line(qc_process *p, double deadline, int wake, char **line, size_t *len);
/* Reap the child within `seconds` (draining its output meanwhile); 1 if reaped. */
int proc_wait(qc_process *p, double seconds);
/* Stop the child: wait (if polite), SIGTERM, wait, SIGKILL; always reap. `name` for logs. */
void proc_stop(qc_process *p, int polite, const char *name);
/* Close stdin, stop politely, close the other pipes, free the buffer. */
void proc_close(qc_process *p, const char *name);
/* "exited with code 1", "was killed by SIGKILL", "is still running". */
void proc_describe_exit(const qc_process *p, char *text, size_t size);
/* The last `lines` stderr lines as "\n  line\n  line" (malloc'd; "" when none). */
char *proc_stderr_tail(const qc_process *p, int lines);
void proc_log(const qc_process *p, int level, const char *format, ...) QC_PRINTF(3, 4);
double qc_now(void);

/* ---- discovery.c --------------------------------------------------------------------- */

/* The argv that starts backend `name` (NULL-terminated, malloc'd with its strings: free with
 * free_argv); or a status with the message in *error (malloc'd). */
int find_backend_command(const char *name, char ***argv, int *search, char **error,
                         qc_process *log_to);
void free_argv(char **argv);

/* ---- the handles --------------------------------------------------------------------- */

typedef struct qc_segment {
    int64_t id;
    size_t size;
    int fd;
    const void *map; /* mapped read-only on first use; NULL before */
    int in_use;
    struct qc_segment *next;
} qc_segment;

struct qc_backend {
    int refs; /* the handle itself while not freed, plus every object made on it */
    int closed;
    char *label; /* the name asked for: what messages call it */
    qc_process proc;
    int wake[2];
    double timeout;
    int64_t next_id;
    int failure; /* a status that every call now returns (crash, hang, protocol), or 0 */
    char *failure_msg;
    char *errmsg;
    int errcode;
    char *errdata;
    json_t *info;
    char *info_text;
    int version;
    char *server_name;
    size_t max_request;
    size_t itemsize;
    char precision[16];
    char *out; /* the line being written */
    size_t out_len, out_cap;
    int64_t pending_state; /* streamed gates not sent yet, all for this state */
    json_t *pending;
    qc_segment *segments;
    int shm_enabled;
    int said; /* fallbacks already logged (bits) */
    void (*progress)(void *userdata, int64_t done, int64_t total);
    void *progress_userdata;
    int64_t next_token;
};

struct qc_state {
    qc_backend *backend;
    int64_t id;
    int nqubits;
    int in_result; /* owned by a result: qc_state_free leaves it alone */
    int freed;
};

typedef struct outcome {
    const char *bits; /* a key of the reply the result keeps */
    uint64_t count;
} outcome;

struct qc_result {
    qc_backend *backend;
    qc_state *state; /* NULL for counts from qc_state_sample */
    json_t *reply; /* the answer, whose keys the outcomes point to */
    outcome *outcomes;
    size_t noutcomes;
    uint8_t *samples;
    uint64_t nshots;
    size_t width;
};

struct qc_prepared {
    qc_backend *backend;
    int64_t id;
    int nqubits;
    int nparameters;
};

struct qc_view {
    qc_backend *backend;
    qc_segment *segment; /* the segment the view maps, or NULL */
    void *copy;          /* decoded from base64 when no segment could be had */
};

struct qc_circuit {
    int nqubits;
    json_t *gates;
    json_t *measurements;
    json_t *slots;
    unsigned char *measured;
    size_t nmeasured;
    int nparameters;
    uint64_t nshots;
    int64_t seed;
    int samples;
    int last_ok; /* the last add succeeded: modifiers may apply */
    char *errmsg;
    char *unusable; /* why the circuit cannot be used at all (its constructor failed) */
    char *encoded;  /* circuit_json as text, kept until the circuit changes */
    size_t encoded_len;
};

/* ---- errors.c ------------------------------------------------------------------------ */

/* Record a failure on `b` (message, no code) and return `status`. */
int fail(qc_backend *b, int status, const char *format, ...) QC_PRINTF(3, 4);
/* The same for a failure that leaves the backend unusable: every later call returns it. */
int fail_for_good(qc_backend *b, int status, const char *format, ...) QC_PRINTF(3, 4);
int circuit_fail(qc_circuit *c, int status, const char *format, ...) QC_PRINTF(3, 4);
void clear_error(qc_backend *b);
/* A malloc'd printf; NULL when out of memory. */
char *format_text(const char *format, ...) QC_PRINTF(1, 2);
char *vformat_text(const char *format, va_list args);
/* `text` quoted for a message ('...'), cut after `limit` bytes with the length said. */
char *quote(const char *text, size_t len, size_t limit);
/* Python's repr of a float: the shortest text that reads back the same. */
void format_double(double value, char *text, size_t size);

/* ---- rpc.c --------------------------------------------------------------------------- */

#define HANDSHAKE_TIMEOUT 10.0
#define SHUTDOWN_TIMEOUT 2.0
#define CANCEL_GRACE 2.0
#define STREAM_BATCH 1024

/* Whether `b` may send: QC_OK, or the failure (recorded) that says why not. */
int usable(qc_backend *b, const char *what);
/* Send request `method` with `params` (stolen; NULL for none) and wait for its result: QC_OK
 * with *result (a new reference; NULL when not wanted), or a failure recorded on b.
 * `timeout` 0 means none. */
int rpc_call(qc_backend *b, const char *method, json_t *params, double timeout,
             json_t **result);
/* A member whose JSON text was encoded earlier (a circuit's, kept by the circuit). */
typedef struct raw_member {
    const char *key;
    const char *text;
    size_t len;
} raw_member;
/* rpc_call with `raw` spliced into params as their first member. */
int rpc_call_with(qc_backend *b, const char *method, json_t *params, const raw_member *raw,
                  double timeout, json_t **result);
/* Send notification `method` (params stolen). */
int rpc_notify(qc_backend *b, const char *method, json_t *params);
/* Send the streamed gates that wait. */
int flush_pending(qc_backend *b);
/* ProtocolError for a result that lacks what `method` answers: "expected ... at $.state". */
int bad_result(qc_backend *b, const char *method, const json_t *result, const char *what);
/* Integer member `key` of `object` into *value (0 <= value); 0, or -1 when absent/wrong. */
int get_count(const json_t *object, const char *key, int64_t *value);
/* Mark the backend unusable after a failure found while reading (kills it when asked). */
void backend_unref(qc_backend *b);
void backend_ref(qc_backend *b);
/* QC_USAGE when an object outlives its backend's handle. */
int check_open(qc_backend *b, const char *what);
void log_once(qc_backend *b, int bit, const char *format, ...) QC_PRINTF(3, 4);

/* ---- state.c ------------------------------------------------------------------------- */

/* QC_USAGE, in words, unless the backend offers `feature` ("samples", "expectation"). */
int require_feature(qc_backend *b, const char *feature, const char *what);
/* `params` with a workDoneToken when progress is watched (NULL, params freed, when out of
 * memory). */
json_t *with_progress(qc_backend *b, json_t *params);

/* ---- arrays.c ------------------------------------------------------------------------ */

/* Decode base64 `text` into exactly `size` bytes at `out`; 0, or -1 with *problem set. */
int base64_decode(const char *text, size_t len, void *out, size_t size, const char **problem);
/* Base64 of `size` bytes, NUL-terminated, malloc'd; NULL when out of memory. */
char *base64_encode(const void *data, size_t size);
/* An Array (2.4) of `dtype` holding exactly `size` bytes, inline, decoded into `out`; or
 * QC_PROTOCOL recorded on b, naming `method`. */
int decode_array_into(qc_backend *b, const char *method, const json_t *array,
                      const char *dtype, void *out, size_t size);
/* The segment id an Array names instead of data, after checking dtype and size; or
 * QC_PROTOCOL recorded. */
int array_segment(qc_backend *b, const char *method, const json_t *array, const char *dtype,
                  size_t size, int64_t *segment);
/* An Array of float64 with `shape` (two dims), inline base64; NULL when out of memory. */
json_t *float64_array(const double *values, size_t rows, size_t columns);

/* ---- shm.c --------------------------------------------------------------------------- */

#define SHM_DIR "/dev/shm"
#define SHM_PREFIX "qibo-core-"
#define SHM_MIN_BYTES 65536 /* smaller arrays cross as base64: attaching costs more */
#define SHM_KEEP_FREE 2

/* A segment of at least `size` bytes for the backend to write into, or NULL: then this
 * array crosses as base64. A failure that is not a fallback returns its status in *status. */
qc_segment *segment_acquire(qc_backend *b, size_t size, int *status);
void segment_release(qc_backend *b, qc_segment *s);
/* The first `size` bytes the backend wrote into `s`, mapped: NULL and QC_PROTOCOL recorded
 * when the file holds fewer (the backend truncated it). */
const void *segment_map(qc_backend *b, qc_segment *s, size_t size, int *status);
/* Copy the first `size` bytes of `s` into `out` with pread (a truncated file is a protocol
 * error, never a SIGBUS). */
int segment_copy(qc_backend *b, qc_segment *s, void *out, size_t size);
/* Close every free segment (and detach it when `detach`); segments in use are left. */
void segments_close(qc_backend *b, int detach);
/* Unmap and close a segment that is no longer any backend's. */
void segment_destroy(qc_segment *s);

/* ---- circuit.c, observable.c ----------------------------------------------------------- */

/* A gate object as the protocol writes it, after checking the qubits against `nqubits`
 * (`where`: "circuit" or "state"); NULL with the message in *error (malloc'd). */
json_t *make_gate(const char *name, size_t nqubits, const int *qubits, size_t nparams,
                  const qc_param *params, int limit, const char *where, char **error);
/* "RX(0, theta=0.5)" of a gate object, as Python's repr; malloc'd. */
char *gate_repr(const json_t *gate);
/* The circuit's protocol JSON (a new reference); NULL when out of memory. */
json_t *circuit_json(const qc_circuit *c);
/* The same as text, encoded once per change of the circuit (every execute of an unchanged
 * circuit sends the same bytes): "circuit" and its text in *raw; -1 when out of memory. */
int circuit_member(const qc_circuit *c, raw_member *raw);
/* The observable text as protocol terms, each qubit below `nqubits`; NULL with *error. */
json_t *parse_observable(const char *text, int nqubits, char **error);

#endif
