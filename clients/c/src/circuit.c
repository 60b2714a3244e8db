/* Circuits: gates and measurements kept as the protocol writes them (section 2.3), checked as
 * they are added with the Python client's words. What only a backend knows (which gates it
 * takes, with which parameters, whether a matrix is unitary) it checks itself. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_SLOT (1 << 20)
#define MAX_UNITARY_QUBITS 16

char *gate_repr(const json_t *gate)
{
    size_t size = 0;
    char *text = NULL;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL)
        return NULL;
    fprintf(out, "%s(", json_string_value(json_object_get(gate, "name")));
    size_t i;
    json_t *v;
    const char *key;
    int first = 1;
    json_array_foreach(json_object_get(gate, "qubits"), i, v) {
        fprintf(out, "%s%lld", first ? "" : ", ", (long long)json_integer_value(v));
        first = 0;
    }
    json_object_foreach(json_object_get(gate, "params"), key, v) {
        char number[32];
        format_double(json_number_value(v), number, sizeof number);
        fprintf(out, "%s%s=%s", first ? "" : ", ", key, number);
        first = 0;
    }
    fputc(')', out);
    json_t *controls = json_object_get(gate, "controls");
    if (json_array_size(controls) > 0) {
        fprintf(out, ".controlled_by(");
        json_array_foreach(controls, i, v) {
            fprintf(out, "%s%lld", i ? ", " : "", (long long)json_integer_value(v));
        }
        fputc(')', out);
    }
    if (json_is_true(json_object_get(gate, "dagger")))
        fprintf(out, ".dagger()");
    fclose(out);
    return text;
}

static json_t *int_array(size_t n, const int *values)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < n; i++) {
        if (json_array_append_new(array, json_integer(values[i])) != 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* "acts on qubit 5, outside this 2-qubit circuit", or a repeat, or a negative index: the
 * problem with `qubits` (malloc'd), NULL when there is none. */
static char *qubits_problem(const char *what, size_t n, const int *qubits, int limit,
                            const char *where)
{
    for (size_t i = 0; i < n; i++) {
        if (qubits[i] < 0)
            return format_text("%s: qubit index %d is negative", what, qubits[i]);
        if (qubits[i] >= limit)
            return format_text("%s acts on qubit %d, outside this %d-qubit %s", what, qubits[i],
                               limit, where);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < i; k++) {
            if (qubits[i] == qubits[k]) {
                size_t size = 0;
                char *list = NULL;
                FILE *out = open_memstream(&list, &size);
                for (size_t m = 0; out && m < n; m++)
                    fprintf(out, "%s%d", m ? ", " : "", qubits[m]);
                if (out)
                    fclose(out);
                /* the name alone, as the Python client says it */
                char *text = format_text("%.*s acts on repeated qubits [%s]",
                                         (int)strcspn(what, "("), what, list ? list : "");
                free(list);
                return text;
            }
        }
    }
    return NULL;
}

json_t *make_gate(const char *name, size_t nqubits, const int *qubits, size_t nparams,
                  const qc_param *params, int limit, const char *where, char **error)
{
    *error = NULL;
    if (name == NULL || *name == '\0') {
        *error = strdup("a gate needs a name (docs/protocol.md section 7: \"H\", \"CNOT\", "
                        "\"RX\"...)");
        return NULL;
    }
    if (strcmp(name, "M") == 0 || strcmp(name, "Unitary") == 0) {
        *error = format_text("%s: use %s", name, name[0] == 'M' ? "qc_circuit_measure"
                                                                : "qc_circuit_add_unitary");
        return NULL;
    }
    if (nqubits == 0 || qubits == NULL) {
        *error = format_text("%s: got no qubits", name);
        return NULL;
    }
    json_t *gate = json_pack("{s:s, s:o}", "name", name, "qubits", int_array(nqubits, qubits));
    json_t *values = nparams ? json_object() : NULL;
    for (size_t i = 0; gate && i < nparams; i++) {
        if (params == NULL || params[i].name == NULL || *params[i].name == '\0') {
            *error = format_text("%s: parameter %zu has no name (theta, phi, lam)", name, i);
        } else if (json_object_get(values, params[i].name) != NULL) {
            *error = format_text("%s: got parameter '%s' twice", name, params[i].name);
        } else if (!isfinite(params[i].value)) {
            char number[32];
            format_double(params[i].value, number, sizeof number);
            *error = format_text("%s: parameter '%s' is not finite (%s)", name, params[i].name,
                                 number);
        } else {
            json_object_set_new(values, params[i].name, json_real(params[i].value));
            continue;
        }
        json_decref(values);
        json_decref(gate);
        return NULL;
    }
    if (gate && values)
        json_object_set_new(gate, "params", values);
    char *repr = gate ? gate_repr(gate) : NULL;
    *error = repr ? qubits_problem(repr, nqubits, qubits, limit, where) : NULL;
    free(repr);
    if (*error != NULL || repr == NULL) {
        json_decref(gate);
        return NULL;
    }
    return gate;
}

int qc_circuit_new(int nqubits, qc_circuit **circuit)
{
    if (circuit == NULL)
        return QC_USAGE;
    qc_circuit *c = *circuit = calloc(1, sizeof *c);
    if (c == NULL)
        return QC_NOMEM;
    c->nqubits = nqubits;
    c->seed = QC_NO_SEED;
    c->gates = json_array();
    c->measurements = json_array();
    c->slots = json_array();
    c->measured = calloc(nqubits > 0 ? (size_t)nqubits : 1, 1);
    if (!c->gates || !c->measurements || !c->slots || !c->measured)
        return circuit_fail(c, QC_NOMEM, "out of memory");
    if (nqubits <= 0) {
        int status = circuit_fail(c, QC_USAGE, "a circuit needs a positive number of qubits, "
                                  "got %d", nqubits);
        c->unusable = strdup(c->errmsg);
        return status;
    }
    return QC_OK;
}

void qc_circuit_free(qc_circuit *circuit)
{
    if (circuit == NULL)
        return;
    json_decref(circuit->gates);
    json_decref(circuit->measurements);
    json_decref(circuit->slots);
    free(circuit->measured);
    free(circuit->errmsg);
    free(circuit->unusable);
    free(circuit->encoded);
    free(circuit);
}

/* QC_OK if the circuit can take more, else its first problem again. */
static int circuit_usable(qc_circuit *c)
{
    if (c->unusable != NULL || !c->gates || !c->measurements || !c->slots || !c->measured)
        return circuit_fail(c, QC_USAGE, "%s", c->unusable ? c->unusable : "out of memory");
    return QC_OK;
}

/* The circuit changed: the text encoded for its last execute is stale. */
static void changed(qc_circuit *c)
{
    free(c->encoded);
    c->encoded = NULL;
}

static int already_measured(qc_circuit *c, const json_t *gate, size_t n, const int *qubits)
{
    for (size_t i = 0; i < n; i++) {
        if (c->measured[qubits[i]]) {
            char *repr = gate_repr(gate);
            int status = circuit_fail(c, QC_USAGE, "%s acts on qubit %d, which is already "
                                      "measured; measurements close the circuit", repr ? repr
                                      : "a gate", qubits[i]);
            free(repr);
            return status;
        }
    }
    return QC_OK;
}

static int append_gate(qc_circuit *c, json_t *gate, char *error, size_t n, const int *qubits)
{
    c->last_ok = 0;
    if (gate == NULL) {
        int status = error ? circuit_fail(c, QC_USAGE, "%s", error)
                           : circuit_fail(c, QC_NOMEM, "out of memory");
        free(error);
        return status;
    }
    int status = already_measured(c, gate, n, qubits);
    if (status == QC_OK && json_array_append(c->gates, gate) != 0)
        status = circuit_fail(c, QC_NOMEM, "out of memory");
    json_decref(gate);
    c->last_ok = status == QC_OK;
    changed(c);
    return status;
}

int qc_circuit_add_gate(qc_circuit *circuit, const char *name, size_t nqubits,
                        const int *qubits, size_t nparams, const qc_param *params)
{
    if (circuit == NULL)
        return QC_USAGE;
    int status = circuit_usable(circuit);
    if (status != QC_OK)
        return status;
    char *error = NULL;
    json_t *gate = make_gate(name, nqubits, qubits, nparams, params, circuit->nqubits,
                             "circuit", &error);
    return append_gate(circuit, gate, error, nqubits, qubits);
}

int qc_circuit_add_unitary(qc_circuit *circuit, size_t nqubits, const int *qubits,
                           const double *matrix)
{
    if (circuit == NULL)
        return QC_USAGE;
    int status = circuit_usable(circuit);
    if (status != QC_OK)
        return status;
    if (nqubits == 0 || qubits == NULL || matrix == NULL || nqubits > MAX_UNITARY_QUBITS)
        return circuit_fail(circuit, QC_USAGE, "Unitary: needs 1 to %d qubits and their "
                            "2^k x 2^k matrix", MAX_UNITARY_QUBITS);
    size_t dim = (size_t)1 << nqubits;
    json_t *rows = json_array();
    for (size_t r = 0; rows && r < dim; r++) {
        json_t *row = json_array();
        for (size_t k = 0; row && k < dim; k++) {
            const double *z = matrix + 2 * (r * dim + k);
            if (!isfinite(z[0]) || !isfinite(z[1])) {
                json_decref(row);
                json_decref(rows);
                return circuit_fail(circuit, QC_USAGE, "Unitary: the matrix has NaN or "
                                    "infinite entries");
            }
            json_array_append_new(row, json_pack("[f, f]", z[0], z[1]));
        }
        json_array_append_new(rows, row);
    }
    json_t *gate = json_pack("{s:s, s:o, s:o}", "name", "Unitary", "qubits",
                             int_array(nqubits, qubits), "matrix", rows);
    char *repr = gate ? gate_repr(gate) : NULL;
    char *error = repr ? qubits_problem(repr, nqubits, qubits, circuit->nqubits, "circuit")
                       : NULL;
    free(repr);
    if (error != NULL) {
        json_decref(gate);
        gate = NULL;
    }
    return append_gate(circuit, gate, error, nqubits, qubits);
}

static json_t *last_gate(qc_circuit *c, const char *what, int *status)
{
    *status = circuit_usable(c);
    if (*status != QC_OK)
        return NULL;
    if (!c->last_ok || json_array_size(c->gates) == 0) {
        *status = circuit_fail(c, QC_USAGE, "%s: there is no gate to modify (none was added, "
                               "or the last add failed)", what);
        return NULL;
    }
    return json_array_get(c->gates, json_array_size(c->gates) - 1);
}

int qc_circuit_controls(qc_circuit *circuit, size_t ncontrols, const int *controls)
{
    int status = QC_USAGE;
    json_t *gate = circuit ? last_gate(circuit, "controls", &status) : NULL;
    if (gate == NULL)
        return status;
    if (ncontrols > 0 && controls == NULL)
        return circuit_fail(circuit, QC_USAGE, "controls: got no qubits");
    json_t *qubits = json_object_get(gate, "qubits");
    size_t n = json_array_size(qubits);
    int *all = malloc((n + ncontrols + 1) * sizeof *all);
    if (all == NULL)
        return circuit_fail(circuit, QC_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        all[i] = (int)json_integer_value(json_array_get(qubits, i));
    memcpy(all + n, controls, ncontrols * sizeof *all);
    json_t *tried = json_deep_copy(gate);
    if (tried != NULL)
        json_object_set_new(tried, "controls", int_array(ncontrols, controls));
    char *repr = tried ? gate_repr(tried) : NULL;
    char *error = repr ? qubits_problem(repr, n + ncontrols, all, circuit->nqubits, "circuit")
                       : NULL;
    free(repr);
    status = error ? circuit_fail(circuit, QC_USAGE, "%s", error)
             : tried ? already_measured(circuit, tried, ncontrols, controls)
                     : circuit_fail(circuit, QC_NOMEM, "out of memory");
    if (status == QC_OK)
        json_object_set(gate, "controls", json_object_get(tried, "controls"));
    changed(circuit);
    free(error);
    free(all);
    json_decref(tried);
    return status;
}

int qc_circuit_dagger(qc_circuit *circuit)
{
    int status = QC_USAGE;
    json_t *gate = circuit ? last_gate(circuit, "dagger", &status) : NULL;
    if (gate == NULL)
        return status;
    int dagger = !json_is_true(json_object_get(gate, "dagger"));
    changed(circuit);
    if (json_object_set_new(gate, "dagger", json_boolean(dagger)) != 0)
        return circuit_fail(circuit, QC_NOMEM, "out of memory");
    return QC_OK;
}

int qc_circuit_slot(qc_circuit *circuit, const char *param, int index)
{
    int status = QC_USAGE;
    json_t *gate = circuit ? last_gate(circuit, "slot", &status) : NULL;
    if (gate == NULL)
        return status;
    if (param == NULL || json_object_get(json_object_get(gate, "params"), param) == NULL) {
        char *repr = gate_repr(gate);
        status = circuit_fail(circuit, QC_USAGE, "%s has no parameter '%s' to take values from "
                              "a set", repr ? repr : "the gate", param ? param : "(null)");
        free(repr);
        return status;
    }
    if (index < 0 || index >= MAX_SLOT)
        return circuit_fail(circuit, QC_USAGE, "a slot takes value number 0 to %d of a set, "
                            "got %d", MAX_SLOT - 1, index);
    json_int_t at = (json_int_t)json_array_size(circuit->gates) - 1;
    size_t i;
    json_t *slot;
    json_array_foreach(circuit->slots, i, slot) {
        if (json_integer_value(json_object_get(slot, "gate")) == at &&
            strcmp(json_string_value(json_object_get(slot, "param")), param) == 0) {
            json_array_remove(circuit->slots, i);
            break;
        }
    }
    if (json_array_append_new(circuit->slots, json_pack("{s:I, s:s, s:i}", "gate", at, "param",
                                                        param, "parameter", index)) != 0)
        return circuit_fail(circuit, QC_NOMEM, "out of memory");
    circuit->nparameters = 0;
    json_array_foreach(circuit->slots, i, slot) {
        int k = (int)json_integer_value(json_object_get(slot, "parameter"));
        if (k + 1 > circuit->nparameters)
            circuit->nparameters = k + 1;
    }
    return QC_OK;
}

int qc_circuit_measure(qc_circuit *circuit, size_t nqubits, const int *qubits,
                       const char *register_name)
{
    if (circuit == NULL)
        return QC_USAGE;
    int status = circuit_usable(circuit);
    if (status != QC_OK)
        return status;
    if (nqubits == 0 || qubits == NULL)
        return circuit_fail(circuit, QC_USAGE, "M(q, ..., register_name=None): got no qubits");
    char fallback[32];
    snprintf(fallback, sizeof fallback, "register%zu", json_array_size(circuit->measurements));
    const char *name = register_name ? register_name : fallback;
    if (*name == '\0')
        return circuit_fail(circuit, QC_USAGE, "M: a register name must not be empty");
    json_t *m = json_pack("{s:o, s:s}", "qubits", int_array(nqubits, qubits), "register", name);
    if (m == NULL)
        return circuit_fail(circuit, QC_NOMEM, "out of memory");
    char *repr = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&repr, &size);
    if (out) {
        fprintf(out, "M(");
        for (size_t i = 0; i < nqubits; i++)
            fprintf(out, "%d, ", qubits[i]);
        fprintf(out, "register_name='%s')", name);
        fclose(out);
    }
    char *error = repr ? qubits_problem(repr, nqubits, qubits, circuit->nqubits, "circuit")
                       : strdup("out of memory");
    size_t i;
    json_t *other;
    json_array_foreach(circuit->measurements, i, other) {
        if (!error && strcmp(json_string_value(json_object_get(other, "register")), name) == 0)
            error = format_text("register '%s' is already used", name);
    }
    for (size_t k = 0; !error && k < nqubits; k++)
        if (circuit->measured[qubits[k]])
            error = format_text("%s acts on qubit %d, which is already measured; measurements "
                                "close the circuit", repr, qubits[k]);
    free(repr);
    if (error != NULL) {
        json_decref(m);
        status = circuit_fail(circuit, QC_USAGE, "%s", error);
        free(error);
        return status;
    }
    if (json_array_append_new(circuit->measurements, m) != 0)
        return circuit_fail(circuit, QC_NOMEM, "out of memory");
    for (size_t k = 0; k < nqubits; k++)
        circuit->measured[qubits[k]] = 1;
    changed(circuit);
    circuit->nmeasured += nqubits;
    return QC_OK;
}

int qc_circuit_set_shots(qc_circuit *circuit, uint64_t nshots, int64_t seed)
{
    if (circuit == NULL)
        return QC_USAGE;
    if (nshots > (1ULL << 40))
        return circuit_fail(circuit, QC_USAGE, "nshots must be between 0 and 2**40, got %llu",
                            (unsigned long long)nshots);
    if (seed < 0 && seed != QC_NO_SEED)
        return circuit_fail(circuit, QC_USAGE, "seed must be between 0 and 2**63 - 1, got %lld"
                            " (QC_NO_SEED for none)", (long long)seed);
    circuit->nshots = nshots;
    circuit->seed = seed;
    return QC_OK;
}

int qc_circuit_keep_samples(qc_circuit *circuit, int samples)
{
    if (circuit == NULL)
        return QC_USAGE;
    circuit->samples = samples != 0;
    return QC_OK;
}

int qc_circuit_nqubits(const qc_circuit *circuit)
{
    return circuit ? circuit->nqubits : 0;
}

size_t qc_circuit_ngates(const qc_circuit *circuit)
{
    return circuit ? json_array_size(circuit->gates) : 0;
}

int qc_circuit_nparameters(const qc_circuit *circuit)
{
    return circuit ? circuit->nparameters : 0;
}

json_t *circuit_json(const qc_circuit *c)
{
    return json_pack("{s:i, s:O, s:O}", "nqubits", c->nqubits, "gates", c->gates,
                     "measurements", c->measurements);
}

int circuit_member(const qc_circuit *c, raw_member *raw)
{
    if (c->encoded == NULL) {
        /* a cache, not part of the circuit's value: filled in through a const circuit */
        qc_circuit *cache = (qc_circuit *)c;
        json_t *data = circuit_json(c);
        cache->encoded = data ? json_dumps(data, JSON_COMPACT) : NULL;
        cache->encoded_len = cache->encoded ? strlen(cache->encoded) : 0;
        json_decref(data);
        if (c->encoded == NULL)
            return -1;
    }
    *raw = (raw_member){"circuit", c->encoded, c->encoded_len};
    return 0;
}

int qc_circuit_to_json(const qc_circuit *circuit, char **json)
{
    if (circuit == NULL || json == NULL)
        return QC_USAGE;
    int status = circuit_usable((qc_circuit *)circuit);
    if (status != QC_OK)
        return status;
    json_t *data = circuit_json(circuit);
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (text == NULL)
        return circuit_fail((qc_circuit *)circuit, QC_NOMEM, "out of memory");
    *json = text;
    return QC_OK;
}
