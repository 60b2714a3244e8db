/* Statuses, and the words of failures: each kept on the handle it happened to. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char NOMEM[] = "out of memory";

const char *qc_strstatus(int status)
{
    static const char *const names[] = {
        "QC_OK", "QC_USAGE", "QC_NOT_FOUND", "QC_CONFIG", "QC_TIMEOUT", "QC_BACKEND",
        "QC_CRASHED", "QC_HUNG", "QC_PROTOCOL", "QC_CONNECTION", "QC_NOMEM"};
    if (status < 0 || status >= (int)(sizeof names / sizeof names[0]))
        return "QC_UNKNOWN_STATUS";
    return names[status];
}

char *vformat_text(const char *format, va_list args)
{
    va_list again;
    va_copy(again, args);
    int size = vsnprintf(NULL, 0, format, args);
    char *text = size < 0 ? NULL : malloc((size_t)size + 1);
    if (text != NULL)
        vsnprintf(text, (size_t)size + 1, format, again);
    va_end(again);
    return text;
}

char *format_text(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *text = vformat_text(format, args);
    va_end(args);
    return text;
}

void clear_error(qc_backend *b)
{
    free(b->errmsg);
    free(b->errdata);
    b->errmsg = NULL;
    b->errdata = NULL;
    b->errcode = 0;
}

/* The new words are formatted before the old ones go: they may quote them. */
static int record(qc_backend *b, int status, const char *format, va_list args)
{
    char *message = vformat_text(format, args);
    clear_error(b);
    b->errmsg = message;
    return message == NULL ? QC_NOMEM : status;
}

int fail(qc_backend *b, int status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    status = record(b, status, format, args);
    va_end(args);
    return status;
}

int fail_for_good(qc_backend *b, int status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    status = record(b, status, format, args);
    va_end(args);
    if (b->failure == 0 && status != QC_NOMEM) {
        b->failure = status;
        b->failure_msg = strdup(b->errmsg);
    }
    return status;
}

int circuit_fail(qc_circuit *c, int status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *message = vformat_text(format, args);
    va_end(args);
    free(c->errmsg);
    c->errmsg = message;
    return c->errmsg == NULL ? QC_NOMEM : status;
}

const char *qc_errmsg(const qc_backend *backend)
{
    if (backend == NULL)
        return NOMEM;
    return backend->errmsg != NULL ? backend->errmsg : "";
}

int qc_errcode(const qc_backend *backend)
{
    return backend == NULL ? 0 : backend->errcode;
}

const char *qc_errdata(const qc_backend *backend)
{
    return backend == NULL ? NULL : backend->errdata;
}

const char *qc_circuit_errmsg(const qc_circuit *circuit)
{
    if (circuit == NULL)
        return NOMEM;
    return circuit->errmsg != NULL ? circuit->errmsg : "";
}

char *quote(const char *text, size_t len, size_t limit)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len <= limit)
        return format_text("'%.*s'", (int)len, text);
    return format_text("'%.*s... (%zu chars)'", (int)limit, text, len);
}

void format_double(double value, char *text, size_t size)
{
    if (!isfinite(value)) {
        snprintf(text, size, "%s", isnan(value) ? "nan" : value > 0 ? "inf" : "-inf");
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, size, "%.*g", digits, value);
        if (strtod(text, NULL) == value)
            break;
    }
    if (strpbrk(text, ".en") == NULL && strlen(text) + 2 < size)
        strcat(text, ".0");
}
