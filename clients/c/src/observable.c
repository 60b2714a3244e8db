/* Observables as text, "Z0 Z1 + 0.5 X2 - 0.25 Y3", read by the rules and with the words of
 * qibo_core/circuit/observable.py, into the protocol's terms (4.11). A term is an optional
 * coefficient (`0.5` or `0.5 *`) and Pauli factors; a coefficient alone is a multiple of the
 * identity. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int is_number(const char *word)
{
    const char *c = word;
    int digits = 0;
    while (isdigit((unsigned char)*c))
        c++, digits++;
    if (*c == '.') {
        c++;
        while (isdigit((unsigned char)*c))
            c++, digits++;
    }
    if (!digits)
        return 0;
    if (*c == 'e' || *c == 'E') {
        c++;
        if (*c == '+' || *c == '-')
            c++;
        if (!isdigit((unsigned char)*c))
            return 0;
        while (isdigit((unsigned char)*c))
            c++;
    }
    return *c == '\0';
}

typedef struct factor {
    char letter;
    int qubit;
} factor;

static int by_qubit(const void *a, const void *b)
{
    return ((const factor *)a)->qubit - ((const factor *)b)->qubit;
}

#define MAX_FACTORS 1024

/* One term's body (without its sign) into a {coefficient, pauli} object; NULL with *error
 * (or out of memory). */
static json_t *parse_term(size_t index, char *body, double sign, int nqubits, char **error)
{
    char *trimmed = body;
    while (isspace((unsigned char)*trimmed))
        trimmed++;
    size_t len = strlen(trimmed);
    while (len && isspace((unsigned char)trimmed[len - 1]))
        trimmed[--len] = '\0';
    char *where = format_text("term %zu ('%s')", index, trimmed);
    char *words = strdup(trimmed);
    factor *factors = malloc(MAX_FACTORS * sizeof *factors);
    size_t count = 0, nidentity = 0;
    int identity[MAX_FACTORS];
    double coefficient = 1.0;
    if (!where || !words || !factors) {
        free(where);
        free(words);
        free(factors);
        return NULL;
    }
    for (char *c = words; *c; c++)
        if (*c == '*')
            *c = ' ';
    char *save = NULL;
    char *word = strtok_r(words, " \t\r\n", &save);
    if (word == NULL)
        *error = format_text("%s: empty (a sign with nothing after it?)", where);
    if (word != NULL && is_number(word)) {
        coefficient = strtod(word, NULL);
        if (!isfinite(coefficient))
            *error = format_text("%s: the coefficient is not finite", where);
        word = strtok_r(NULL, " \t\r\n", &save);
    }
    for (; word != NULL && *error == NULL; word = strtok_r(NULL, " \t\r\n", &save)) {
        char *end = word;
        long q = word[0] && strchr("XYZI", word[0]) && isdigit((unsigned char)word[1])
                     ? strtol(word + 1, &end, 10) : -1;
        if (q < 0 || *end != '\0' || q > 1 << 24) {
            *error = format_text("%s: '%s' is not a Pauli factor (X, Y, Z or I and a qubit: "
                                 "'Z0')", where, word);
            break;
        }
        for (size_t k = 0; k < count && !*error; k++)
            if (factors[k].qubit == q)
                *error = format_text("%s: qubit %ld appears twice", where, q);
        for (size_t k = 0; k < nidentity && !*error; k++)
            if (identity[k] == q)
                *error = format_text("%s: qubit %ld appears twice", where, q);
        if (!*error && count + nidentity == MAX_FACTORS)
            *error = format_text("%s: more than %d factors", where, MAX_FACTORS);
        if (*error)
            break;
        if (word[0] == 'I')
            identity[nidentity++] = (int)q;
        else
            factors[count++] = (factor){word[0], (int)q};
    }
    qsort(factors, count, sizeof *factors, by_qubit);
    size_t size = 0;
    char *pauli = NULL;
    FILE *out = *error ? NULL : open_memstream(&pauli, &size);
    for (size_t k = 0; out && k < count; k++) {
        if (factors[k].qubit >= nqubits && !*error)
            *error = format_text("term %zu: qubit %d is outside the %d-qubit circuit", index,
                                 factors[k].qubit, nqubits);
        fprintf(out, "%s%c%d", k ? " " : "", factors[k].letter, factors[k].qubit);
    }
    if (out)
        fclose(out);
    json_t *term = *error || !pauli ? NULL : json_pack("{s:f, s:s}", "coefficient",
                                                       sign * coefficient, "pauli", pauli);
    free(pauli);
    free(where);
    free(words);
    free(factors);
    return term;
}

json_t *parse_observable(const char *text, int nqubits, char **error)
{
    *error = NULL;
    char *copy = text ? strdup(text) : NULL;
    const char *c = text ? text : "";
    while (isspace((unsigned char)*c))
        c++;
    if (*c == '\0') {
        free(copy);
        *error = strdup("an observable's text is empty");
        return NULL;
    }
    json_t *terms = json_array();
    if (copy == NULL || terms == NULL) {
        free(copy);
        json_decref(terms);
        return NULL;
    }
    /* Split at each sign that is not an exponent's (1e-3). */
    char *body = copy;
    double sign = 1.0;
    size_t index = 0;
    int leading = 1;
    for (char *at = copy;; at++) {
        int split = *at == '\0';
        if ((*at == '+' || *at == '-') &&
            !(at - copy >= 2 && (at[-1] == 'e' || at[-1] == 'E') &&
              (isdigit((unsigned char)at[-2]) || at[-2] == '.')))
            split = 1;
        if (!split)
            continue;
        char next = *at;
        *at = '\0';
        const char *b = body;
        while (isspace((unsigned char)*b))
            b++;
        if (!(leading && *b == '\0' && next != '\0')) {
            json_t *term = parse_term(index++, body, sign, nqubits, error);
            if (term == NULL || json_array_append_new(terms, term) != 0) {
                free(copy);
                json_decref(terms);
                return NULL;
            }
        }
        leading = 0;
        if (next == '\0')
            break;
        sign = next == '-' ? -1.0 : 1.0;
        body = at + 1;
    }
    free(copy);
    return terms;
}
