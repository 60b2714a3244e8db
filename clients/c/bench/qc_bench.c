/* The C side of scripts/bench.py's C-client target: one run per line read on stdin, its
 * seconds printed on stdout, so that the script alternates these runs with its own.
 *
 *   qc_bench qft NQUBITS NSHOTS BACKEND   "run": execute a QFT with measurements, read the
 *                                         frequencies, free the result
 *   qc_bench read NQUBITS BACKEND         "view": the state through the mapped segment;
 *                                         "copy": into a buffer of ours (qc_state_read);
 *                                         "memcpy": the same bytes copied by memcpy
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qibo_core.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int check(int status, qc_backend *b, const qc_circuit *c)
{
    if (status != QC_OK) {
        fprintf(stderr, "qc_bench: %s: %s\n", qc_strstatus(status),
                c && *qc_circuit_errmsg(c) ? qc_circuit_errmsg(c) : qc_errmsg(b));
        exit(1);
    }
    return status;
}

static int run_qft(int n, uint64_t nshots, qc_backend *b)
{
    qc_circuit *c = NULL;
    check(qc_circuit_new(n, &c), b, c);
    for (int i = 0; i < n; i++) {
        check(qc_circuit_add_gate(c, "H", 1, (int[]){i}, 0, NULL), b, c);
        for (int j = i + 1; j < n; j++)
            check(qc_circuit_add_gate(c, "CU1", 2, (int[]){j, i}, 1,
                                      (qc_param[]){{"theta", M_PI / (double)(1 << (j - i))}}),
                  b, c);
    }
    for (int i = 0; i < n / 2; i++)
        check(qc_circuit_add_gate(c, "SWAP", 2, (int[]){i, n - 1 - i}, 0, NULL), b, c);
    int *all = malloc((size_t)n * sizeof *all);
    for (int i = 0; i < n; i++)
        all[i] = i;
    check(qc_circuit_measure(c, (size_t)n, all, NULL), b, c);
    check(qc_circuit_set_shots(c, nshots, QC_NO_SEED), b, c);
    free(all);
    char line[64];
    uint64_t total = 0;
    while (fgets(line, sizeof line, stdin)) {
        double start = now();
        qc_result *r = NULL;
        check(qc_execute(b, c, &r), b, c);
        for (size_t i = 0; i < qc_result_outcomes(r); i++) {
            uint64_t count;
            qc_result_outcome(r, i, NULL, &count);
            total += count;
        }
        qc_result_free(r);
        printf("%.9f\n", now() - start);
        fflush(stdout);
    }
    qc_circuit_free(c);
    return total == 0; /* the counts were read */
}

static int run_read(int n, qc_backend *b)
{
    qc_state *s = NULL;
    check(qc_state_new(b, n, &s), b, NULL);
    for (int q = 0; q < n; q++)
        check(qc_state_apply_gate(s, "H", 1, (int[]){q}, 0, NULL), b, NULL);
    size_t size = qc_state_nbytes(s);
    char *mine = malloc(size), *source = malloc(size);
    memset(mine, 1, size); /* touched: no first-use page faults in the timings */
    memset(source, 2, size);
    check(qc_state_read(s, mine, size), b, NULL);
    char line[64];
    double sum = 0;
    while (fgets(line, sizeof line, stdin)) {
        double start = now();
        if (strncmp(line, "view", 4) == 0) {
            const void *amplitudes;
            qc_view *view = NULL;
            check(qc_state_view(s, &amplitudes, NULL, &view), b, NULL);
            sum += ((const double *)amplitudes)[0];
            qc_view_free(view);
        } else if (strncmp(line, "copy", 4) == 0) {
            check(qc_state_read(s, mine, size), b, NULL);
        } else {
            memcpy(mine, source, size);
            __asm__ volatile("" : : "r"(mine) : "memory"); /* the copy is used */
        }
        printf("%.9f\n", now() - start);
        fflush(stdout);
    }
    qc_state_free(s);
    free(mine);
    free(source);
    return sum < 0;
}

int main(int argc, char **argv)
{
    int qft = argc == 5 && strcmp(argv[1], "qft") == 0;
    if (!qft && !(argc == 4 && strcmp(argv[1], "read") == 0)) {
        fprintf(stderr, "usage: qc_bench qft NQUBITS NSHOTS BACKEND | read NQUBITS BACKEND\n");
        return 2;
    }
    qc_backend *b = NULL;
    check(qc_connect(argv[argc - 1], NULL, &b), b, NULL);
    int n = atoi(argv[2]);
    int status = qft ? run_qft(n, strtoull(argv[3], NULL, 10), b) : run_read(n, b);
    qc_backend_free(b);
    return status;
}
