/* A 20-qubit quantum Fourier transform on qibo-backend-qulacs, read back through shared
 * memory: the backend writes the 16 MiB of amplitudes into a segment this program maps, and
 * nothing copies them again. The QFT of |0...01> has amplitude e^(2 pi i k / 2^n) / 2^(n/2)
 * at |k>: the program prints the largest deviation from it. */
#include <complex.h>
#include <math.h>
#include <stdio.h>

#include "qibo_core.h"

#define PI 3.14159265358979323846

enum { N = 20 };

static int build_qft(qc_circuit *c)
{
    int status = qc_circuit_add_gate(c, "X", 1, (int[]){N - 1}, 0, NULL);
    for (int i = 0; i < N && status == QC_OK; i++) {
        status = qc_circuit_add_gate(c, "H", 1, (int[]){i}, 0, NULL);
        for (int j = i + 1; j < N && status == QC_OK; j++) {
            qc_param angle = {"theta", PI / (double)(1 << (j - i))};
            status = qc_circuit_add_gate(c, "CU1", 2, (int[]){j, i}, 1, &angle);
        }
    }
    for (int i = 0; i < N / 2 && status == QC_OK; i++)
        status = qc_circuit_add_gate(c, "SWAP", 2, (int[]){i, N - 1 - i}, 0, NULL);
    return status;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "qulacs";
    qc_backend *backend = NULL;
    qc_circuit *circuit = NULL;
    qc_result *result = NULL;
    qc_view *view = NULL;
    const void *memory = NULL;
    size_t nbytes = 0;
    int status = qc_connect(name, NULL, &backend);
    if (status == QC_OK && (status = qc_circuit_new(N, &circuit)) == QC_OK)
        status = build_qft(circuit);
    if (status == QC_OK)
        status = qc_execute(backend, circuit, &result);
    if (status == QC_OK)
        status = qc_state_view(qc_result_state(result), &memory, &nbytes, &view);
    if (status == QC_OK) {
        const double complex *amplitudes = memory;
        size_t size = nbytes / sizeof *amplitudes;
        double deviation = 0;
        double complex step = cexp(2 * PI * I / (double)size), expected = 0;
        for (size_t k = 0; k < size; k++) {
            /* exact every 1024 amplitudes, a rotation by one step in between */
            expected = k % 1024 ? expected * step
                                : cexp(2 * PI * I * (double)k / (double)size) / sqrt((double)size);
            double complex d = amplitudes[k] - expected;
            deviation = fmax(deviation, creal(d) * creal(d) + cimag(d) * cimag(d));
        }
        deviation = sqrt(deviation);
        printf("%d qubits, %zu bytes read through shared memory\n", N, nbytes);
        printf("amplitude 1: %.10f%+.10fi\n", creal(amplitudes[1]), cimag(amplitudes[1]));
        printf("largest deviation: %.3g\n", deviation);
    } else {
        fprintf(stderr, "%s: %s\n", qc_strstatus(status),
                circuit && *qc_circuit_errmsg(circuit) ? qc_circuit_errmsg(circuit)
                                                       : qc_errmsg(backend));
    }
    qc_view_free(view);
    qc_result_free(result);
    qc_circuit_free(circuit);
    qc_backend_free(backend);
    return status == QC_OK ? 0 : 1;
}
