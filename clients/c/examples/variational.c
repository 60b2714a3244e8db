/* A variational loop: minimise the energy of a 4-qubit transverse-field Ising chain over a
 * hardware-efficient ansatz, by gradient descent. Each step asks the backend for the energy
 * and its whole gradient (the parameter-shift rule: two shifted sets per parameter) in one
 * qc_expectation call: the circuit crossed once, at qc_prepare; each step sends only values. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qibo_core.h"

#define PI 3.14159265358979323846

enum { N = 4, LAYERS = 2, P = 2 * N * LAYERS, SETS = 1 + 2 * P, STEPS = 60 };

static const char HAMILTONIAN[] =
    "Z0 Z1 + Z1 Z2 + Z2 Z3 + 0.5 X0 + 0.5 X1 + 0.5 X2 + 0.5 X3";

static int build_ansatz(qc_circuit *c)
{
    int status = QC_OK, slot = 0;
    for (int layer = 0; layer < LAYERS; layer++) {
        for (int q = 0; q < N && status == QC_OK; q++) {
            qc_param zero = {"theta", 0.0};
            status = qc_circuit_add_gate(c, "RY", 1, (int[]){q}, 1, &zero);
            if (status == QC_OK)
                status = qc_circuit_slot(c, "theta", slot++);
            if (status == QC_OK)
                status = qc_circuit_add_gate(c, "RZ", 1, (int[]){q}, 1, &zero);
            if (status == QC_OK)
                status = qc_circuit_slot(c, "theta", slot++);
        }
        for (int q = 0; q + 1 < N && status == QC_OK; q++)
            status = qc_circuit_add_gate(c, "CZ", 2, (int[]){q, q + 1}, 0, NULL);
    }
    return status;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "qulacs";
    qc_backend *backend = NULL;
    qc_circuit *circuit = NULL;
    qc_prepared *prepared = NULL;
    double theta[P], sets[SETS][P], values[SETS], first = 0;
    for (int k = 0; k < P; k++)
        theta[k] = 0.1 + 0.37 * k - floor((0.1 + 0.37 * k) / PI) * PI;
    int status = qc_connect(name, NULL, &backend);
    if (status == QC_OK && (status = qc_circuit_new(N, &circuit)) == QC_OK)
        status = build_ansatz(circuit);
    if (status == QC_OK)
        status = qc_prepare(backend, circuit, &prepared);
    for (int step = 0; step < STEPS && status == QC_OK; step++) {
        for (int s = 0; s < SETS; s++)
            memcpy(sets[s], theta, sizeof theta);
        for (int k = 0; k < P; k++) {
            sets[1 + 2 * k][k] += PI / 2;
            sets[2 + 2 * k][k] -= PI / 2;
        }
        status = qc_expectation(prepared, HAMILTONIAN, SETS, &sets[0][0], values);
        if (status != QC_OK)
            break;
        if (step == 0)
            first = values[0];
        for (int k = 0; k < P; k++)
            theta[k] -= 0.2 * (values[1 + 2 * k] - values[2 + 2 * k]) / 2;
        if (step % 10 == 0 || step == STEPS - 1)
            printf("step %2d: energy %.6f\n", step, values[0]);
    }
    if (status == QC_OK)
        printf("from %.6f to %.6f\n", first, values[0]);
    else
        fprintf(stderr, "%s: %s\n", qc_strstatus(status),
                circuit && *qc_circuit_errmsg(circuit) ? qc_circuit_errmsg(circuit)
                                                       : qc_errmsg(backend));
    qc_prepared_free(prepared);
    qc_circuit_free(circuit);
    qc_backend_free(backend);
    return status == QC_OK ? 0 : 1;
}
