/* Arrays on the wire (docs/protocol.md 2.4): base64 of little-endian bytes, or a segment.
 * Decoding trusts nothing: a dtype, shape or length other than the one asked for is a
 * protocol error saying what is wrong, and bytes land only in memory of the expected size. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char ALPHABET[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const signed char VALUE[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

char *base64_encode(const void *data, size_t size)
{
    const unsigned char *in = data;
    char *text = malloc((size + 2) / 3 * 4 + 1), *out = text;
    if (text == NULL)
        return NULL;
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = ALPHABET[v >> 18];
        *out++ = ALPHABET[(v >> 12) & 63];
        *out++ = ALPHABET[(v >> 6) & 63];
        *out++ = ALPHABET[v & 63];
    }
    if (i < size) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < size ? (unsigned)in[i + 1] << 8 : 0);
        *out++ = ALPHABET[v >> 18];
        *out++ = ALPHABET[(v >> 12) & 63];
        *out++ = i + 1 < size ? ALPHABET[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
    return text;
}

int base64_decode(const char *text, size_t len, void *out, size_t size, const char **problem)
{
    size_t padding = len >= 1 && text[len - 1] == '=' ? (len >= 2 && text[len - 2] == '=' ? 2 : 1)
                                                      : 0;
    if (len % 4 != 0) {
        *problem = "'data' is not base64: its length is not a multiple of 4";
        return -1;
    }
    if (len / 4 * 3 - padding != size) {
        *problem = NULL; /* the caller says how many bytes the shape needs */
        return -1;
    }
    unsigned char *bytes = out;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int a = VALUE[(unsigned char)text[i]], b = VALUE[(unsigned char)text[i + 1]];
        int last = i + 4 == len;
        int c = last && padding == 2 ? 0 : VALUE[(unsigned char)text[i + 2]];
        int d = last && padding >= 1 ? 0 : VALUE[(unsigned char)text[i + 3]];
        if ((a | b | c | d) < 0) {
            *problem = "'data' is not base64: a character outside the alphabet";
            return -1;
        }
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        bytes[o++] = (unsigned char)(v >> 16);
        if (o < size)
            bytes[o++] = (unsigned char)(v >> 8);
        if (o < size)
            bytes[o++] = (unsigned char)v;
    }
    return 0;
}

static int malformed(qc_backend *b, const char *method, const char *format, ...)
    QC_PRINTF(3, 4);

static int malformed(qc_backend *b, const char *method, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char *what = vformat_text(format, args);
    va_end(args);
    int status = fail_for_good(b, QC_PROTOCOL, "backend '%s' answered '%s' with a malformed "
                               "array: %s", b->label, method, what ? what : "out of memory");
    free(what);
    return status;
}

static size_t itemsize_of(const char *dtype)
{
    if (strcmp(dtype, "complex128") == 0)
        return 16;
    if (strcmp(dtype, "complex64") == 0 || strcmp(dtype, "float64") == 0)
        return 8;
    return strcmp(dtype, "uint8") == 0 ? 1 : 0;
}

/* Check an Array's dtype and that its shape holds exactly `size` bytes. */
static int check_array(qc_backend *b, const char *method, const json_t *array,
                       const char *dtype, size_t size)
{
    const char *got = json_string_value(json_object_get(array, "dtype"));
    json_t *shape = json_object_get(array, "shape");
    if (!json_is_object(array) || got == NULL || !json_is_array(shape))
        return malformed(b, method, "an object with 'dtype' and 'shape' was expected");
    if (itemsize_of(got) == 0)
        return malformed(b, method, "unsupported dtype '%s'; expected one of ['complex128', "
                         "'complex64', 'float64', 'uint8']", got);
    if (strcmp(got, dtype) != 0)
        return malformed(b, method, "dtype '%s' where '%s' was asked for", got, dtype);
    unsigned long long elements = 1;
    size_t i;
    json_t *n;
    json_array_foreach(shape, i, n) {
        if (!json_is_integer(n) || json_integer_value(n) < 0 || json_array_size(shape) > 64)
            return malformed(b, method, "shape is not a list of non-negative integers");
        unsigned long long d = (unsigned long long)json_integer_value(n);
        if (d != 0 && elements > (1ULL << 40) / d)
            return malformed(b, method, "shape holds more than 2**40 elements");
        elements *= d;
    }
    if (elements * itemsize_of(dtype) != size)
        return malformed(b, method, "shape of %llu elements of %s, where %zu bytes were asked "
                         "for", elements, dtype, size);
    return QC_OK;
}

int decode_array_into(qc_backend *b, const char *method, const json_t *array,
                      const char *dtype, void *out, size_t size)
{
    int status = check_array(b, method, array, dtype, size);
    if (status != QC_OK)
        return status;
    json_t *data = json_object_get(array, "data");
    if (!json_is_string(data))
        return malformed(b, method, "the array has no inline 'data'");
    const char *problem = NULL;
    size_t len = json_string_length(data);
    if (base64_decode(json_string_value(data), len, out, size, &problem) != 0) {
        if (problem != NULL)
            return malformed(b, method, "%s", problem);
        return malformed(b, method, "array data holds %zu bytes, its shape needs %zu",
                         len / 4 * 3, size);
    }
    return QC_OK;
}

int array_segment(qc_backend *b, const char *method, const json_t *array, const char *dtype,
                  size_t size, int64_t *segment)
{
    int status = check_array(b, method, array, dtype, size);
    if (status != QC_OK)
        return status;
    if (get_count(array, "segment", segment) != 0)
        return malformed(b, method, "a segment was given, and the array names none");
    return QC_OK;
}

json_t *float64_array(const double *values, size_t rows, size_t columns)
{
    char *data = base64_encode(values, rows * columns * sizeof *values);
    json_t *array = data ? json_pack("{s:s, s:[I, I], s:s}", "dtype", "float64", "shape",
                                     (json_int_t)rows, (json_int_t)columns, "data", data)
                         : NULL;
    free(data);
    return array;
}
