/* OpenQASM 2.0, the subset clients/c/README.md states: `OPENQASM 2.0;`, `include
 * "qelib1.inc";`, qreg and creg, the qelib1.inc gates of the table below (with register
 * broadcasting: `h q;`), parameter expressions (numbers, pi, + - * / ^, parentheses, sin cos
 * tan exp ln sqrt), `measure` into cregs (each creg becomes a measurement register, its
 * qubits in bit order) and `barrier` (ignored). Anything else is refused by name with its
 * line. Gates map to the protocol's as qibo_core/circuit/qasm.py maps them. */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct qasm_gate {
    const char *qasm, *name;
    int nqubits, nparams;
    const char *params[3];
} qasm_gate;

static const qasm_gate GATES[] = {
    {"id", "I", 1, 0, {0}},        {"x", "X", 1, 0, {0}},         {"y", "Y", 1, 0, {0}},
    {"z", "Z", 1, 0, {0}},         {"h", "H", 1, 0, {0}},         {"s", "S", 1, 0, {0}},
    {"sdg", "SDG", 1, 0, {0}},     {"t", "T", 1, 0, {0}},         {"tdg", "TDG", 1, 0, {0}},
    {"sx", "SX", 1, 0, {0}},       {"sxdg", "SXDG", 1, 0, {0}},
    {"rx", "RX", 1, 1, {"theta"}}, {"ry", "RY", 1, 1, {"theta"}}, {"rz", "RZ", 1, 1, {"theta"}},
    {"u1", "U1", 1, 1, {"theta"}}, {"p", "U1", 1, 1, {"theta"}},
    {"u2", "U2", 1, 2, {"phi", "lam"}},
    {"u3", "U3", 1, 3, {"theta", "phi", "lam"}}, {"u", "U3", 1, 3, {"theta", "phi", "lam"}},
    {"cx", "CNOT", 2, 0, {0}},     {"CX", "CNOT", 2, 0, {0}},     {"cy", "CY", 2, 0, {0}},
    {"cz", "CZ", 2, 0, {0}},       {"ch", "CH", 2, 0, {0}},       {"csx", "CSX", 2, 0, {0}},
    {"swap", "SWAP", 2, 0, {0}},
    {"crx", "CRX", 2, 1, {"theta"}}, {"cry", "CRY", 2, 1, {"theta"}},
    {"crz", "CRZ", 2, 1, {"theta"}}, {"cu1", "CU1", 2, 1, {"theta"}},
    {"cp", "CU1", 2, 1, {"theta"}}, {"cu3", "CU3", 2, 3, {"theta", "phi", "lam"}},
    {"ccx", "TOFFOLI", 3, 0, {0}}, {"rxx", "RXX", 2, 1, {"theta"}},
    {"rzz", "RZZ", 2, 1, {"theta"}},
};

enum kind { T_END, T_ID, T_INT, T_REAL, T_STRING, T_SYMBOL };

typedef struct token {
    enum kind kind;
    const char *text;
    size_t len;
    int line;
} token;

typedef struct reg {
    char *name;
    int first, size;
    int *bits; /* cregs: the qubit measured into each bit, or -1 */
} reg;

typedef struct call {
    const qasm_gate *gate;
    int qubits[3];
    double params[3];
    int line;
    int measure_bit, creg; /* a measurement of qubits[0] into bit measure_bit of creg */
} call;

typedef struct parser {
    token *tokens;
    size_t ntokens, at;
    reg *qregs, *cregs;
    int nqregs, ncregs;
    call *calls;
    size_t ncalls, capcalls;
    char *error;
} parser;

#define FAIL(p, line, ...) fail_at(p, line, format_text(__VA_ARGS__))

static int fail_at(parser *p, int line, char *message)
{
    if (p->error == NULL)
        p->error = message ? format_text("line %d: %s", line, message) : NULL;
    free(message);
    return -1;
}

static int tokenize(parser *p, const char *text)
{
    size_t cap = 64;
    p->tokens = malloc(cap * sizeof *p->tokens);
    int line = 1;
    const char *c = text;
    while (p->tokens != NULL) {
        if (p->ntokens + 1 >= cap) {
            token *grown = realloc(p->tokens, (cap *= 2) * sizeof *grown);
            if (grown == NULL)
                return -1;
            p->tokens = grown;
        }
        while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n' || (c[0] == '/' && c[1] == '/')) {
            if (*c == '/')
                while (*c && *c != '\n')
                    c++;
            else
                line += *c++ == '\n';
        }
        token *t = &p->tokens[p->ntokens];
        *t = (token){T_END, c, 0, line};
        const char *start = c;
        if (*c == '\0') {
            p->ntokens++;
            return 0;
        } else if (isalpha((unsigned char)*c) || *c == '_') {
            while (isalnum((unsigned char)*c) || *c == '_')
                c++;
            t->kind = T_ID;
        } else if (isdigit((unsigned char)*c) || (*c == '.' && isdigit((unsigned char)c[1]))) {
            t->kind = T_INT;
            while (isdigit((unsigned char)*c))
                c++;
            if (*c == '.') {
                t->kind = T_REAL;
                for (c++; isdigit((unsigned char)*c); c++) {
                }
            }
            if ((*c == 'e' || *c == 'E') &&
                (isdigit((unsigned char)c[1]) || ((c[1] == '+' || c[1] == '-') &&
                                                  isdigit((unsigned char)c[2])))) {
                t->kind = T_REAL;
                for (c += 2; isdigit((unsigned char)*c); c++) {
                }
            }
        } else if (*c == '"') {
            for (c++; *c && *c != '"' && *c != '\n'; c++) {
            }
            if (*c != '"')
                return FAIL(p, line, "unclosed string");
            c++;
            t->kind = T_STRING;
        } else if ((c[0] == '-' && c[1] == '>') || (c[0] == '=' && c[1] == '=')) {
            c += 2;
            t->kind = T_SYMBOL;
        } else if (strchr(";,()[]{}+-*/^", *c)) {
            c++;
            t->kind = T_SYMBOL;
        } else {
            return FAIL(p, line, "unexpected character '%c'", *c);
        }
        t->len = (size_t)(c - start);
        p->ntokens++;
    }
    return -1;
}

static token *peek(parser *p)
{
    return &p->tokens[p->at];
}

static int is(const token *t, const char *text)
{
    return t->kind != T_END && t->len == strlen(text) && strncmp(t->text, text, t->len) == 0;
}

static char *found(const token *t)
{
    return t->kind == T_END ? strdup("the end of the program")
                            : format_text("'%.*s'", (int)t->len, t->text);
}

/* Take the next token, which must be `text` (or of `kind`, when text is NULL). */
static token *take(parser *p, const char *text, enum kind kind)
{
    token *t = peek(p);
    if ((text != NULL && !is(t, text)) || (text == NULL && t->kind != kind)) {
        static const char *const kinds[] = {"the end", "a name", "an integer", "a number",
                                            "a string", "a symbol"};
        char *what = found(t);
        if (text != NULL)
            FAIL(p, t->line, "expected '%s', found %s", text, what ? what : "?");
        else
            FAIL(p, t->line, "expected %s, found %s", kinds[kind], what ? what : "?");
        free(what);
        return NULL;
    }
    if (t->kind != T_END)
        p->at++;
    return t;
}

/* ---- expressions ------------------------------------------------------------------- */

static int sum(parser *p, double *value);

static int atom(parser *p, double *value)
{
    static const struct {
        const char *name;
        double (*f)(double);
    } functions[] = {{"sin", sin}, {"cos", cos}, {"tan", tan},
                     {"exp", exp}, {"ln", log},  {"sqrt", sqrt}};
    token *t = peek(p);
    if (t->kind == T_INT || t->kind == T_REAL) {
        p->at++;
        *value = strtod(t->text, NULL);
        return 0;
    }
    if (is(t, "pi")) {
        p->at++;
        *value = M_PI;
        return 0;
    }
    if (is(t, "(")) {
        p->at++;
        return sum(p, value) || !take(p, ")", T_SYMBOL) ? -1 : 0;
    }
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (is(t, functions[i].name) && p->at + 1 < p->ntokens && is(&p->tokens[p->at + 1], "(")) {
            p->at += 2;
            if (sum(p, value) || !take(p, ")", T_SYMBOL))
                return -1;
            *value = functions[i].f(*value);
            return 0;
        }
    }
    char *what = found(t);
    FAIL(p, t->line, "unexpected %s in an expression", what ? what : "?");
    free(what);
    return -1;
}

static int unary(parser *p, double *value)
{
    if (is(peek(p), "-") || is(peek(p), "+")) {
        int minus = is(peek(p), "-");
        p->at++;
        if (unary(p, value))
            return -1;
        *value = minus ? -*value : *value;
        return 0;
    }
    return atom(p, value);
}

static int power(parser *p, double *value)
{
    if (unary(p, value))
        return -1;
    if (is(peek(p), "^")) {
        double exponent;
        p->at++;
        if (power(p, &exponent))
            return -1;
        *value = pow(*value, exponent);
    }
    return 0;
}

static int product(parser *p, double *value)
{
    if (power(p, value))
        return -1;
    while (is(peek(p), "*") || is(peek(p), "/")) {
        int divide = is(peek(p), "/");
        int line = peek(p)->line;
        double operand;
        p->at++;
        if (power(p, &operand))
            return -1;
        if (divide && operand == 0)
            return FAIL(p, line, "division by zero");
        *value = divide ? *value / operand : *value * operand;
    }
    return 0;
}

static int sum(parser *p, double *value)
{
    if (product(p, value))
        return -1;
    while (is(peek(p), "+") || is(peek(p), "-")) {
        int minus = is(peek(p), "-");
        double operand;
        p->at++;
        if (product(p, &operand))
            return -1;
        *value += minus ? -operand : operand;
    }
    return 0;
}

/* ---- statements ---------------------------------------------------------------------- */

static reg *find(reg *regs, int count, const token *name)
{
    for (int i = 0; i < count; i++)
        if (strlen(regs[i].name) == name->len && strncmp(regs[i].name, name->text, name->len) == 0)
            return &regs[i];
    return NULL;
}

static int declare(parser *p)
{
    int quantum = is(peek(p), "qreg");
    p->at++;
    token *name = take(p, NULL, T_ID);
    token *size = name && take(p, "[", T_SYMBOL) ? take(p, NULL, T_INT) : NULL;
    if (!size || !take(p, "]", T_SYMBOL) || !take(p, ";", T_SYMBOL))
        return -1;
    if (find(p->qregs, p->nqregs, name) || find(p->cregs, p->ncregs, name))
        return FAIL(p, name->line, "register '%.*s' is declared twice", (int)name->len,
                    name->text);
    long n = strtol(size->text, NULL, 10);
    int total = 0;
    for (int i = 0; i < p->nqregs; i++)
        total += p->qregs[i].size;
    if (n <= 0 || n > 1024 || total + n > 1024)
        return FAIL(p, size->line, "a register of %ld: registers hold 1 to 1024 (qu)bits in all",
                    n);
    reg **regs = quantum ? &p->qregs : &p->cregs;
    int *count = quantum ? &p->nqregs : &p->ncregs;
    reg *grown = realloc(*regs, (size_t)(*count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    *regs = grown;
    reg *r = &grown[*count];
    *r = (reg){strndup(name->text, name->len), total, (int)n, NULL};
    if (!quantum)
        r->bits = malloc((size_t)n * sizeof *r->bits);
    if (r->name == NULL || (!quantum && r->bits == NULL)) {
        free(r->name);
        free(r->bits);
        return -1;
    }
    for (int i = 0; !quantum && i < n; i++)
        r->bits[i] = -1;
    (*count)++;
    return 0;
}

/* A qubit argument, `q` (all of it) or `q[i]`: its first qubit and how many. */
static int argument(parser *p, reg *regs, int count, const char *what, int *first, int *n,
                    reg **which)
{
    token *name = take(p, NULL, T_ID);
    if (name == NULL)
        return -1;
    reg *r = find(regs, count, name);
    if (r == NULL)
        return FAIL(p, name->line, "unknown %s '%.*s'", what, (int)name->len, name->text);
    *which = r;
    *first = r->first;
    *n = r->size;
    if (!is(peek(p), "["))
        return 0;
    p->at++;
    token *index = take(p, NULL, T_INT);
    if (index == NULL || !take(p, "]", T_SYMBOL))
        return -1;
    long i = strtol(index->text, NULL, 10);
    if (i >= r->size)
        return FAIL(p, index->line, "index %ld out of range for %s[%d]", i, r->name, r->size);
    *first = r->first + (int)i;
    *n = 1;
    return 0;
}

static call *new_call(parser *p)
{
    if (p->ncalls == p->capcalls) {
        size_t cap = p->capcalls ? 2 * p->capcalls : 64;
        call *grown = realloc(p->calls, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        p->calls = grown;
        p->capcalls = cap;
    }
    call *c = &p->calls[p->ncalls++];
    memset(c, 0, sizeof *c);
    c->creg = -1;
    return c;
}

static int measure(parser *p)
{
    int line = take(p, "measure", T_ID)->line;
    int first, n, bit = 0, width;
    reg *qreg, *creg;
    if (argument(p, p->qregs, p->nqregs, "qreg", &first, &n, &qreg) ||
        !take(p, "->", T_SYMBOL) ||
        argument(p, p->cregs, p->ncregs, "creg", &bit, &width, &creg) ||
        !take(p, ";", T_SYMBOL))
        return -1;
    bit -= creg->first;
    if (width != n)
        return FAIL(p, line, "measure of %d qubits into %d bits", n, width);
    for (int i = 0; i < n; i++) {
        call *c = new_call(p);
        if (c == NULL)
            return -1;
        c->qubits[0] = first + i;
        c->measure_bit = bit + i;
        c->creg = (int)(creg - p->cregs);
        c->line = line;
    }
    return 0;
}

static int gate_call(parser *p)
{
    token *name = take(p, NULL, T_ID);
    const qasm_gate *gate = NULL;
    for (size_t i = 0; i < sizeof GATES / sizeof GATES[0] && !gate; i++)
        if (is(name, GATES[i].qasm))
            gate = &GATES[i];
    if (gate == NULL)
        return FAIL(p, name->line, "unknown gate '%.*s' (this library reads the qelib1.inc gates"
                    " of clients/c/README.md)", (int)name->len, name->text);
    double params[4];
    int nparams = 0;
    if (is(peek(p), "(")) {
        p->at++;
        while (!is(peek(p), ")")) {
            if (nparams == 4 || sum(p, &params[nparams++]))
                return nparams == 4 ? FAIL(p, name->line, "too many parameters") : -1;
            if (!is(peek(p), ")") && !take(p, ",", T_SYMBOL))
                return -1;
        }
        p->at++;
    }
    int firsts[3], sizes[3], nargs = 0, width = 1;
    reg *r;
    do {
        if (nargs > 0)
            p->at++;
        if (nargs == 3)
            return FAIL(p, name->line, "%s takes %d qubits", gate->qasm, gate->nqubits);
        if (argument(p, p->qregs, p->nqregs, "qreg", &firsts[nargs], &sizes[nargs], &r))
            return -1;
        if (sizes[nargs] > 1 && width > 1 && sizes[nargs] != width)
            return FAIL(p, name->line, "registers of different sizes in one gate");
        if (sizes[nargs] > 1)
            width = sizes[nargs];
        nargs++;
    } while (is(peek(p), ","));
    if (!is(peek(p), ";")) {
        char *what = found(peek(p));
        FAIL(p, peek(p)->line, "expected ',' or ';' after %.*s's arguments, found %s",
             (int)name->len, name->text, what ? what : "?");
        free(what);
        return -1;
    }
    p->at++;
    if (nparams != gate->nparams || nargs != gate->nqubits)
        return FAIL(p, name->line, "%s: takes %d parameters and %d qubits, got %d and %d",
                    gate->qasm, gate->nparams, gate->nqubits, nparams, nargs);
    for (int i = 0; i < width; i++) {
        call *c = new_call(p);
        if (c == NULL)
            return -1;
        c->gate = gate;
        c->line = name->line;
        for (int k = 0; k < nargs; k++)
            c->qubits[k] = firsts[k] + (sizes[k] > 1 ? i : 0);
        memcpy(c->params, params, (size_t)nparams * sizeof *params);
    }
    return 0;
}

static int statement(parser *p)
{
    token *t = peek(p);
    static const char *const refused[] = {"gate", "opaque", "if", "reset"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (is(t, refused[i]))
            return FAIL(p, t->line, "'%s' is not in the subset of OpenQASM 2.0 this library "
                        "reads (clients/c/README.md); qibo_core's Python Circuit.from_qasm "
                        "reads it", refused[i]);
    if (is(t, "include")) {
        p->at++;
        token *name = take(p, NULL, T_STRING);
        if (name == NULL)
            return -1;
        if (!is(name, "\"qelib1.inc\""))
            return FAIL(p, name->line, "only qelib1.inc can be included, not %.*s",
                        (int)name->len, name->text);
        return take(p, ";", T_SYMBOL) ? 0 : -1;
    }
    if (is(t, "qreg") || is(t, "creg"))
        return declare(p);
    if (is(t, "barrier")) {
        while (!is(peek(p), ";") && peek(p)->kind != T_END)
            p->at++;
        return take(p, ";", T_SYMBOL) ? 0 : -1;
    }
    if (is(t, "measure"))
        return measure(p);
    if (t->kind == T_ID)
        return gate_call(p);
    char *what = found(t);
    FAIL(p, t->line, "unexpected %s", what ? what : "?");
    free(what);
    return -1;
}

/* The circuit of the calls read: gates in order, then one measurement per creg. */
static int build(parser *p, qc_circuit *c)
{
    unsigned char *measured = calloc((size_t)c->nqubits, 1);
    if (measured == NULL)
        return circuit_fail(c, QC_NOMEM, "out of memory");
    int status = QC_OK;
    for (size_t i = 0; i < p->ncalls && status == QC_OK; i++) {
        call *k = &p->calls[i];
        if (k->gate == NULL) {
            int *bit = &p->cregs[k->creg].bits[k->measure_bit];
            if (*bit >= 0 && *bit != k->qubits[0])
                status = circuit_fail(c, QC_USAGE, "line %d: bit %d of creg %s is measured "
                                      "twice", k->line, k->measure_bit, p->cregs[k->creg].name);
            *bit = k->qubits[0];
            measured[k->qubits[0]] = 1;
            continue;
        }
        for (int q = 0; q < k->gate->nqubits && status == QC_OK; q++)
            if (measured[k->qubits[q]])
                status = circuit_fail(c, QC_USAGE, "line %d: %s acts on qubit %d after its "
                                      "measurement: in this subset measurements close the "
                                      "circuit", k->line, k->gate->qasm, k->qubits[q]);
        qc_param params[3];
        for (int n = 0; n < k->gate->nparams; n++)
            params[n] = (qc_param){k->gate->params[n], k->params[n]};
        if (status == QC_OK)
            status = qc_circuit_add_gate(c, k->gate->name, (size_t)k->gate->nqubits, k->qubits,
                                         (size_t)k->gate->nparams, params);
        if (status != QC_OK && status != QC_NOMEM && strncmp(c->errmsg, "line ", 5) != 0) {
            char *message = c->errmsg;
            c->errmsg = NULL;
            circuit_fail(c, status, "line %d: %s", k->line, message);
            free(message);
        }
    }
    free(measured);
    for (int r = 0; r < p->ncregs && status == QC_OK; r++) {
        int qubits[1024], n = 0;
        for (int b = 0; b < p->cregs[r].size; b++)
            if (p->cregs[r].bits[b] >= 0)
                qubits[n++] = p->cregs[r].bits[b];
        if (n > 0)
            status = qc_circuit_measure(c, (size_t)n, qubits, p->cregs[r].name);
    }
    return status;
}

static void parser_free(parser *p)
{
    for (int i = 0; i < p->nqregs; i++)
        free(p->qregs[i].name);
    for (int i = 0; i < p->ncregs; i++) {
        free(p->cregs[i].name);
        free(p->cregs[i].bits);
    }
    free(p->qregs);
    free(p->cregs);
    free(p->calls);
    free(p->tokens);
    free(p->error);
}

int qc_circuit_from_qasm(const char *text, qc_circuit **circuit)
{
    if (circuit == NULL)
        return QC_USAGE;
    parser p = {0};
    int failed = text == NULL ? FAIL(&p, 1, "no program given") : tokenize(&p, text);
    if (!failed) {
        token *version = take(&p, "OPENQASM", T_ID) ? take(&p, NULL, T_REAL) : NULL;
        if (version && !is(version, "2.0"))
            FAIL(&p, version->line, "only OpenQASM 2.0 is supported, not %.*s",
                 (int)version->len, version->text);
        failed = p.error != NULL || !version || !take(&p, ";", T_SYMBOL);
    }
    while (!failed && peek(&p)->kind != T_END)
        failed = statement(&p) != 0;
    int nqubits = 0;
    for (int i = 0; i < p.nqregs; i++)
        nqubits += p.qregs[i].size;
    if (!failed && nqubits == 0)
        failed = FAIL(&p, peek(&p)->line, "the program declares no qreg");
    int status = qc_circuit_new(failed ? 1 : nqubits, circuit);
    if (status == QC_OK && failed)
        status = p.error ? circuit_fail(*circuit, QC_USAGE, "%s", p.error)
                         : circuit_fail(*circuit, QC_NOMEM, "out of memory");
    if (status == QC_OK)
        status = build(&p, *circuit);
    if (status != QC_OK && *circuit != NULL && (*circuit)->unusable == NULL)
        (*circuit)->unusable = strdup(qc_circuit_errmsg(*circuit));
    parser_free(&p);
    return status;
}
