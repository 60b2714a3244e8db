/* A Bell pair on qibo-backend-qulacs, a backend written in Python, driven from C: the case
 * qibo-core was designed for. Prints each outcome and its count; exits 1 on a failure, with
 * the library's words on stderr. */
#include <inttypes.h>
#include <stdio.h>

#include "qibo_core.h"

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "qulacs";
    qc_backend *backend = NULL;
    qc_circuit *circuit = NULL;
    qc_result *result = NULL;
    int status = qc_connect(name, NULL, &backend);
    if (status == QC_OK)
        status = qc_circuit_new(2, &circuit);
    if (status == QC_OK) {
        qc_circuit_add_gate(circuit, "H", 1, (int[]){0}, 0, NULL);
        qc_circuit_add_gate(circuit, "CNOT", 2, (int[]){0, 1}, 0, NULL);
        qc_circuit_measure(circuit, 2, (int[]){0, 1}, NULL);
        status = qc_circuit_set_shots(circuit, 1000, 7);
    }
    if (status == QC_OK)
        status = qc_execute(backend, circuit, &result);
    for (size_t i = 0; status == QC_OK && i < qc_result_outcomes(result); i++) {
        const char *bits;
        uint64_t count;
        qc_result_outcome(result, i, &bits, &count);
        printf("%s %" PRIu64 "\n", bits, count);
    }
    if (status != QC_OK)
        fprintf(stderr, "%s: %s\n", qc_strstatus(status),
                circuit && *qc_circuit_errmsg(circuit) ? qc_circuit_errmsg(circuit)
                                                       : qc_errmsg(backend));
    qc_result_free(result);
    qc_circuit_free(circuit);
    qc_backend_free(backend);
    return status == QC_OK ? 0 : 1;
}
