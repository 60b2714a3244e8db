/* Prepared circuits and expectation values (docs/protocol.md 4.11, protocol version 3): the
 * circuit crosses once, with slots for the values; each qc_expectation sends only the sets of
 * values (one float64 array) and the observable, and gets one value per set. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "internal.h"

int qc_prepare(qc_backend *backend, const qc_circuit *circuit, qc_prepared **prepared)
{
    if (backend == NULL || prepared == NULL)
        return QC_USAGE;
    qc_backend *b = backend;
    int status = usable(b, "circuit/prepare");
    if (status == QC_OK)
        status = require_feature(b, "expectation", "expectation values");
    if (status != QC_OK)
        return status;
    if (circuit == NULL || circuit->unusable != NULL)
        return fail(b, QC_USAGE, "circuit/prepare: %s", circuit ? circuit->unusable
                                                               : "no circuit given");
    json_t *params = json_pack("{s:O, s:i}", "slots", circuit->slots, "parameters",
                               circuit->nparameters);
    json_t *reply = NULL;
    int64_t id = -1;
    raw_member text;
    if (params == NULL || circuit_member(circuit, &text) != 0) {
        json_decref(params);
        status = fail(b, QC_NOMEM, "out of memory");
    } else {
        status = rpc_call_with(b, "circuit/prepare", params, &text, b->timeout, &reply);
    }
    if (status == QC_OK && get_count(reply, "circuit", &id) != 0)
        status = bad_result(b, "circuit/prepare", reply, "an integer at $.circuit");
    json_decref(reply);
    qc_prepared *p = status == QC_OK ? calloc(1, sizeof *p) : NULL;
    if (status == QC_OK && p == NULL)
        status = fail(b, QC_NOMEM, "out of memory");
    if (status != QC_OK)
        return status;
    p->backend = b;
    p->id = id;
    p->nqubits = circuit->nqubits;
    p->nparameters = circuit->nparameters;
    backend_ref(b);
    *prepared = p;
    return QC_OK;
}

void qc_prepared_free(qc_prepared *prepared)
{
    if (prepared == NULL)
        return;
    qc_backend *b = prepared->backend;
    if (!b->closed && b->failure == 0) {
        json_t *params = json_pack("{s:I}", "circuit", (json_int_t)prepared->id);
        if (params != NULL)
            rpc_notify(b, "circuit/free", params);
    }
    backend_unref(b);
    free(prepared);
}

int qc_expectation(qc_prepared *prepared, const char *observable, size_t nsets,
                   const double *parameters, double *values)
{
    if (prepared == NULL)
        return QC_USAGE;
    qc_backend *b = prepared->backend;
    int status = usable(b, "circuit/expectation");
    if (status != QC_OK)
        return status;
    size_t width = (size_t)prepared->nparameters;
    if (values == NULL || (parameters == NULL && nsets > 0 && width > 0))
        return fail(b, QC_USAGE, "circuit/expectation: %s", values == NULL
                    ? "no buffer for the values given"
                    : "no parameters given (nsets rows of qc_circuit_nparameters values)");
    char *error = NULL;
    json_t *terms = parse_observable(observable, prepared->nqubits, &error);
    if (terms == NULL) {
        status = error ? fail(b, QC_USAGE, "%s", error) : fail(b, QC_NOMEM, "out of memory");
        free(error);
        return status;
    }
    if (nsets == 0) {
        json_decref(terms);
        return QC_OK;
    }
    static const double none = 0.0;
    json_t *params = json_pack("{s:I, s:o, s:o}", "circuit", (json_int_t)prepared->id,
                               "parameters", float64_array(width ? parameters : &none, nsets,
                                                           width),
                               "observable", terms);
    params = with_progress(b, params);
    json_t *reply = NULL;
    status = params ? rpc_call(b, "circuit/expectation", params, b->timeout, &reply)
                    : fail(b, QC_NOMEM, "out of memory");
    if (status == QC_OK)
        status = decode_array_into(b, "circuit/expectation", reply, "float64", values,
                                   nsets * sizeof *values);
    json_decref(reply);
    return status;
}
