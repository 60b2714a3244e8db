/* Running circuits and the states a backend holds: execute, results (frequencies, samples),
 * states to stream gates into, and reading them back (a copy, or a view of the segment). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int require_feature(qc_backend *b, const char *feature, const char *what)
{
    if (qc_backend_has_feature(b, feature))
        return QC_OK;
    json_t *features = json_object_get(json_object_get(b->info, "capabilities"), "features");
    char *offered = json_array_size(features) ? json_dumps(features, JSON_COMPACT) : NULL;
    int status = fail(b, QC_USAGE, "%s: backend '%s' (protocol version %d) does not offer '%s';"
                      " it offers %s", what, b->label, b->version, feature,
                      offered ? offered : "no optional features");
    free(offered);
    return status;
}

/* `params` with a workDoneToken when progress is watched; NULL (params freed) when out of
 * memory. */
json_t *with_progress(qc_backend *b, json_t *params)
{
    if (params == NULL || b->progress == NULL)
        return params;
    char token[32];
    snprintf(token, sizeof token, "work-%lld", (long long)++b->next_token);
    if (json_object_set_new(params, "workDoneToken", json_string(token)) != 0) {
        json_decref(params);
        return NULL;
    }
    return params;
}

static qc_state *state_new(qc_backend *b, int64_t id, int nqubits)
{
    qc_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->backend = b;
    s->id = id;
    s->nqubits = nqubits;
    backend_ref(b);
    return s;
}

static void state_release(qc_state *s)
{
    qc_backend *b = s->backend;
    if (b->pending_state == s->id && b->pending != NULL) {
        json_decref(b->pending); /* gates for a state about to go */
        b->pending = NULL;
    }
    if (!b->closed && b->failure == 0) {
        json_t *params = json_pack("{s:I}", "state", (json_int_t)s->id);
        if (params != NULL)
            rpc_notify(b, "state/free", params);
    }
    backend_unref(b);
    free(s);
}

void qc_state_free(qc_state *state)
{
    if (state != NULL && !state->in_result)
        state_release(state);
}

void qc_result_free(qc_result *result)
{
    if (result == NULL)
        return;
    json_decref(result->reply);
    free(result->outcomes);
    free(result->samples);
    if (result->state != NULL)
        state_release(result->state);
    backend_unref(result->backend);
    free(result);
}

static int by_bits(const void *a, const void *b)
{
    return strcmp(((const outcome *)a)->bits, ((const outcome *)b)->bits);
}

/* The counts of `frequencies` into `r`, sorted by bitstring (backends send them sorted, as a
 * rule: then no sort). The result keeps `reply`, whose keys the outcomes point to. */
static int take_frequencies(qc_backend *b, const char *method, qc_result *r, json_t *reply)
{
    json_t *frequencies = json_object_get(reply, "frequencies");
    if (!json_is_object(frequencies))
        return bad_result(b, method, reply, "an object of counts at $.frequencies");
    r->outcomes = malloc((json_object_size(frequencies) + 1) * sizeof *r->outcomes);
    if (r->outcomes == NULL)
        return fail(b, QC_NOMEM, "out of memory");
    r->reply = json_incref(reply);
    const char *bits;
    json_t *count;
    int sorted = 1;
    json_object_foreach(frequencies, bits, count) {
        if (!json_is_integer(count) || json_integer_value(count) < 0)
            return bad_result(b, method, reply, "non-negative integer counts at "
                              "$.frequencies");
        if (r->noutcomes > 0 && strcmp(r->outcomes[r->noutcomes - 1].bits, bits) >= 0)
            sorted = 0;
        r->outcomes[r->noutcomes++] = (outcome){bits, (uint64_t)json_integer_value(count)};
    }
    if (!sorted)
        qsort(r->outcomes, r->noutcomes, sizeof *r->outcomes, by_bits);
    return QC_OK;
}

static qc_result *result_new(qc_backend *b)
{
    qc_result *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->backend = b;
        backend_ref(b);
    }
    return r;
}

/* The samples of an execute: from `segment`, or inline. */
static int take_samples(qc_backend *b, qc_result *r, const json_t *result, qc_segment *segment)
{
    json_t *array = json_object_get(result, "samples");
    size_t size = (size_t)(r->nshots * r->width);
    if (array == NULL)
        return bad_result(b, "execute", result, "an Array at $.samples");
    if ((r->samples = malloc(size ? size : 1)) == NULL)
        return fail(b, QC_NOMEM, "out of memory: %zu bytes for the samples", size);
    if (segment == NULL)
        return decode_array_into(b, "execute", array, "uint8", r->samples, size);
    int64_t id = -1;
    int status = array_segment(b, "execute", array, "uint8", size, &id);
    if (status == QC_OK && id != segment->id)
        status = fail_for_good(b, QC_PROTOCOL, "backend '%s' answered segment %lld for the "
                               "samples, not %lld", b->label, (long long)id,
                               (long long)segment->id);
    return status == QC_OK ? segment_copy(b, segment, r->samples, size) : status;
}

/* execute's params but the circuit, which crosses as text encoded once (circuit_member). */
static json_t *execute_params(qc_backend *b, const qc_circuit *c, qc_segment *segment)
{
    json_t *params = json_pack("{s:I}", "nshots", (json_int_t)c->nshots);
    if (params != NULL && c->seed != QC_NO_SEED)
        json_object_set_new(params, "seed", json_integer(c->seed));
    if (params != NULL && c->samples)
        json_object_set_new(params, "samples", json_true());
    if (params != NULL && segment != NULL)
        json_object_set_new(params, "samplesSegment", json_integer(segment->id));
    return with_progress(b, params);
}

int qc_execute(qc_backend *backend, const qc_circuit *circuit, qc_result **result)
{
    if (backend == NULL || result == NULL)
        return QC_USAGE;
    qc_backend *b = backend;
    int status = usable(b, "execute");
    if (status != QC_OK)
        return status;
    if (circuit == NULL || circuit->unusable != NULL)
        return fail(b, QC_USAGE, "execute: %s", circuit ? circuit->unusable
                                                        : "no circuit given");
    if (circuit->samples && (status = require_feature(b, "samples", "samples")) != QC_OK)
        return status;
    qc_segment *segment = NULL;
    if (circuit->samples && circuit->nshots > 0) {
        segment = segment_acquire(b, (size_t)(circuit->nshots * circuit->nmeasured), &status);
        if (status != QC_OK)
            return status;
    }
    json_t *params = execute_params(b, circuit, segment);
    json_t *reply = NULL;
    raw_member text;
    if (params == NULL || circuit_member(circuit, &text) != 0) {
        json_decref(params);
        status = fail(b, QC_NOMEM, "out of memory");
    } else {
        status = rpc_call_with(b, "execute", params, &text, b->timeout, &reply);
    }
    qc_result *r = status == QC_OK ? result_new(b) : NULL;
    int64_t id = -1;
    if (status == QC_OK && r == NULL)
        status = fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK && get_count(reply, "state", &id) != 0)
        status = bad_result(b, "execute", reply, "an integer at $.state");
    if (status == QC_OK && (r->state = state_new(b, id, circuit->nqubits)) == NULL)
        status = fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK) {
        r->state->in_result = 1;
        r->nshots = circuit->nshots;
        r->width = circuit->nmeasured;
        if (circuit->nshots > 0)
            status = take_frequencies(b, "execute", r, reply);
    }
    if (status == QC_OK && circuit->samples && circuit->nshots > 0)
        status = take_samples(b, r, reply, segment);
    if (segment != NULL)
        segment_release(b, segment);
    json_decref(reply);
    if (status != QC_OK) {
        qc_result_free(r);
        return status;
    }
    *result = r;
    return QC_OK;
}

size_t qc_result_outcomes(const qc_result *result)
{
    return result ? result->noutcomes : 0;
}

int qc_result_outcome(const qc_result *result, size_t i, const char **bitstring,
                      uint64_t *count)
{
    if (result == NULL)
        return QC_USAGE;
    if (i >= result->noutcomes)
        return fail(result->backend, QC_USAGE, "outcome %zu of a result with %zu outcomes", i,
                    result->noutcomes);
    if (bitstring != NULL)
        *bitstring = result->outcomes[i].bits;
    if (count != NULL)
        *count = result->outcomes[i].count;
    return QC_OK;
}

uint64_t qc_result_count(const qc_result *result, const char *bitstring)
{
    if (result == NULL || bitstring == NULL)
        return 0;
    outcome key = {(char *)bitstring, 0};
    outcome *found = bsearch(&key, result->outcomes, result->noutcomes, sizeof key, by_bits);
    return found ? found->count : 0;
}

int qc_result_samples(const qc_result *result, const uint8_t **samples, uint64_t *nshots,
                      size_t *width)
{
    if (result == NULL)
        return QC_USAGE;
    if (result->samples == NULL)
        return fail(result->backend, QC_USAGE, "samples: this result kept none; call "
                    "qc_circuit_keep_samples(circuit, 1) before qc_execute");
    if (samples != NULL)
        *samples = result->samples;
    if (nshots != NULL)
        *nshots = result->nshots;
    if (width != NULL)
        *width = result->width;
    return QC_OK;
}

qc_state *qc_result_state(qc_result *result)
{
    return result ? result->state : NULL;
}

int qc_state_new(qc_backend *backend, int nqubits, qc_state **state)
{
    if (backend == NULL || state == NULL)
        return QC_USAGE;
    if (nqubits <= 0)
        return fail(backend, QC_USAGE, "a state needs a positive number of qubits, got %d",
                    nqubits);
    json_t *reply = NULL;
    int64_t id = -1;
    json_t *params = json_pack("{s:i}", "nqubits", nqubits);
    int status = params ? rpc_call(backend, "state/new", params, backend->timeout, &reply)
                        : fail(backend, QC_NOMEM, "out of memory");
    if (status == QC_OK && get_count(reply, "state", &id) != 0)
        status = bad_result(backend, "state/new", reply, "an integer at $.state");
    json_decref(reply);
    if (status == QC_OK && (*state = state_new(backend, id, nqubits)) == NULL)
        status = fail(backend, QC_NOMEM, "out of memory");
    return status;
}

int qc_state_nqubits(const qc_state *state)
{
    return state ? state->nqubits : 0;
}

size_t qc_state_nbytes(const qc_state *state)
{
    if (state == NULL || state->nqubits >= 58)
        return 0;
    return ((size_t)1 << state->nqubits) * state->backend->itemsize;
}

/* Queue one gate for the state; a full batch leaves at once. */
static int stream(qc_state *s, json_t *gate)
{
    qc_backend *b = s->backend;
    int status = QC_OK;
    if (b->pending != NULL && b->pending_state != s->id && json_array_size(b->pending) > 0)
        status = flush_pending(b);
    if (status == QC_OK && b->pending == NULL && (b->pending = json_array()) == NULL)
        status = fail(b, QC_NOMEM, "out of memory");
    b->pending_state = s->id;
    if (status == QC_OK && json_array_append(b->pending, gate) != 0)
        status = fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK && json_array_size(b->pending) >= STREAM_BATCH)
        status = flush_pending(b);
    return status;
}

int qc_state_apply_gate(qc_state *state, const char *name, size_t nqubits, const int *qubits,
                        size_t nparams, const qc_param *params)
{
    if (state == NULL)
        return QC_USAGE;
    int status = usable(state->backend, "state/apply");
    if (status != QC_OK)
        return status;
    char *error = NULL;
    json_t *gate = make_gate(name, nqubits, qubits, nparams, params, state->nqubits, "state",
                             &error);
    if (gate == NULL) {
        status = error ? fail(state->backend, QC_USAGE, "%s", error)
                       : fail(state->backend, QC_NOMEM, "out of memory");
        free(error);
        return status;
    }
    status = stream(state, gate);
    json_decref(gate);
    return status;
}

int qc_state_apply(qc_state *state, const qc_circuit *gates)
{
    if (state == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    int status = usable(b, "state/apply");
    if (status != QC_OK)
        return status;
    if (gates == NULL || gates->unusable != NULL)
        return fail(b, QC_USAGE, "state/apply: %s", gates ? gates->unusable
                                                          : "no circuit given");
    if (gates->nqubits != state->nqubits || json_array_size(gates->measurements) > 0)
        return fail(b, QC_USAGE, "state/apply: the gates of a %d-qubit circuit without "
                    "measurements go into a %d-qubit state; this circuit has %d qubits and %zu "
                    "measurements", state->nqubits, state->nqubits, gates->nqubits,
                    json_array_size(gates->measurements));
    size_t i;
    json_t *gate;
    json_array_foreach(gates->gates, i, gate) {
        if ((status = stream(state, gate)) != QC_OK)
            return status;
    }
    return QC_OK;
}

/* state/read into a segment (when one can be had) or inline: the reply, and the segment. */
static int request_read(qc_state *s, json_t **reply, qc_segment **segment)
{
    qc_backend *b = s->backend;
    size_t size = qc_state_nbytes(s);
    int status = usable(b, "state/read");
    if (status == QC_OK && size == 0)
        status = fail(b, QC_USAGE, "state/read: a state of %d qubits does not fit in memory",
                      s->nqubits);
    if (status == QC_OK)
        status = flush_pending(b); /* before attaching: gates first, in order */
    *segment = status == QC_OK ? segment_acquire(b, size, &status) : NULL;
    if (status != QC_OK)
        return status;
    json_t *params = json_pack("{s:I}", "state", (json_int_t)s->id);
    if (params != NULL && *segment != NULL)
        json_object_set_new(params, "segment", json_integer((*segment)->id));
    status = params ? rpc_call(b, "state/read", params, b->timeout, reply)
                    : fail(b, QC_NOMEM, "out of memory");
    int64_t id = -1;
    if (status == QC_OK && *segment != NULL) {
        status = array_segment(b, "state/read", *reply, b->precision, size, &id);
        if (status == QC_OK && id != (*segment)->id)
            status = fail_for_good(b, QC_PROTOCOL, "backend '%s' answered segment %lld for "
                                   "segment %lld", b->label, (long long)id,
                                   (long long)(*segment)->id);
    }
    if (status != QC_OK && *segment != NULL) {
        segment_release(b, *segment);
        *segment = NULL;
    }
    if (status != QC_OK) {
        json_decref(*reply);
        *reply = NULL;
    }
    return status;
}

int qc_state_read(qc_state *state, void *amplitudes, size_t nbytes)
{
    if (state == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    if (amplitudes == NULL || nbytes != qc_state_nbytes(state))
        return fail(b, QC_USAGE, "state/read: the buffer holds %zu bytes; state %lld of %d "
                    "qubits needs %zu (qc_state_nbytes)", amplitudes ? nbytes : 0,
                    (long long)state->id, state->nqubits, qc_state_nbytes(state));
    json_t *reply = NULL;
    qc_segment *segment = NULL;
    int status = request_read(state, &reply, &segment);
    if (status == QC_OK && segment != NULL)
        status = segment_copy(b, segment, amplitudes, nbytes);
    else if (status == QC_OK)
        status = decode_array_into(b, "state/read", reply, b->precision, amplitudes, nbytes);
    if (segment != NULL)
        segment_release(b, segment);
    json_decref(reply);
    return status;
}

int qc_state_view(qc_state *state, const void **amplitudes, size_t *nbytes, qc_view **view)
{
    if (state == NULL || amplitudes == NULL || view == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    size_t size = qc_state_nbytes(state);
    qc_view *v = calloc(1, sizeof *v);
    if (v == NULL)
        return fail(b, QC_NOMEM, "out of memory");
    json_t *reply = NULL;
    int status = request_read(state, &reply, &v->segment);
    const void *data = NULL;
    if (status == QC_OK && v->segment != NULL) {
        data = segment_map(b, v->segment, size, &status);
    } else if (status == QC_OK && (v->copy = malloc(size)) == NULL) {
        status = fail(b, QC_NOMEM, "out of memory: %zu bytes for the state", size);
    } else if (status == QC_OK) {
        status = decode_array_into(b, "state/read", reply, b->precision, v->copy, size);
        data = v->copy;
    }
    json_decref(reply);
    v->backend = b;
    backend_ref(b);
    if (status != QC_OK) {
        qc_view_free(v);
        return status;
    }
    *amplitudes = data;
    if (nbytes != NULL)
        *nbytes = size;
    *view = v;
    return QC_OK;
}

void qc_view_free(qc_view *view)
{
    if (view == NULL)
        return;
    if (view->segment != NULL)
        segment_release(view->backend, view->segment);
    free(view->copy);
    backend_unref(view->backend);
    free(view);
}

static json_t *qubit_list(size_t n, const int *qubits)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        json_array_append_new(list, json_integer(qubits[i]));
    return list;
}

int qc_state_probabilities(qc_state *state, size_t nqubits, const int *qubits,
                           double *probabilities)
{
    if (state == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    size_t k = qubits ? nqubits : (size_t)state->nqubits;
    if (probabilities == NULL || k == 0 || k > (size_t)state->nqubits)
        return fail(b, QC_USAGE, "state/probabilities: %s", probabilities == NULL
                    ? "no buffer given" : "name between 1 qubit and all of the state's");
    json_t *params = json_pack("{s:I}", "state", (json_int_t)state->id);
    if (params != NULL && qubits != NULL)
        json_object_set_new(params, "qubits", qubit_list(nqubits, qubits));
    json_t *reply = NULL;
    int status = params ? rpc_call(b, "state/probabilities", params, b->timeout, &reply)
                        : fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK)
        status = decode_array_into(b, "state/probabilities", reply, "float64", probabilities,
                                   ((size_t)1 << k) * sizeof(double));
    json_decref(reply);
    return status;
}

int qc_state_sample(qc_state *state, uint64_t nshots, size_t nqubits, const int *qubits,
                    int64_t seed, qc_result **counts)
{
    if (state == NULL || counts == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    if (nshots > (1ULL << 40))
        return fail(b, QC_USAGE, "nshots must be between 0 and 2**40, got %llu",
                    (unsigned long long)nshots);
    if (seed < 0 && seed != QC_NO_SEED)
        return fail(b, QC_USAGE, "seed must be between 0 and 2**63 - 1, got %lld (QC_NO_SEED "
                    "for none)", (long long)seed);
    json_t *params = json_pack("{s:I, s:I}", "state", (json_int_t)state->id, "nshots",
                               (json_int_t)nshots);
    if (params != NULL && qubits != NULL)
        json_object_set_new(params, "qubits", qubit_list(nqubits, qubits));
    if (params != NULL && seed != QC_NO_SEED)
        json_object_set_new(params, "seed", json_integer(seed));
    json_t *reply = NULL;
    int status = params ? rpc_call(b, "state/sample", params, b->timeout, &reply)
                        : fail(b, QC_NOMEM, "out of memory");
    qc_result *r = status == QC_OK ? result_new(b) : NULL;
    if (status == QC_OK && r == NULL)
        status = fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK) {
        r->nshots = nshots;
        r->width = qubits ? nqubits : (size_t)state->nqubits;
        status = take_frequencies(b, "state/sample", r, reply);
    }
    json_decref(reply);
    if (status != QC_OK) {
        qc_result_free(r);
        return status;
    }
    *counts = r;
    return QC_OK;
}

int qc_state_expectation(qc_state *state, const char *observable, double *value)
{
    if (state == NULL || value == NULL)
        return QC_USAGE;
    qc_backend *b = state->backend;
    int status = usable(b, "state/expectation");
    if (status == QC_OK)
        status = require_feature(b, "expectation", "an expectation value");
    if (status != QC_OK)
        return status;
    char *error = NULL;
    json_t *terms = parse_observable(observable, state->nqubits, &error);
    if (terms == NULL) {
        status = error ? fail(b, QC_USAGE, "%s", error) : fail(b, QC_NOMEM, "out of memory");
        free(error);
        return status;
    }
    json_t *params = json_pack("{s:I, s:o}", "state", (json_int_t)state->id, "observable",
                               terms);
    json_t *reply = NULL;
    status = params ? rpc_call(b, "state/expectation", params, b->timeout, &reply)
                    : fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK && !json_is_number(reply))
        status = bad_result(b, "state/expectation", reply, "a number");
    if (status == QC_OK)
        *value = json_number_value(reply);
    json_decref(reply);
    return status;
}
