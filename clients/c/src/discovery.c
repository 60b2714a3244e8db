/* Finding backends, by the rules of qibo_core/client/discovery.py: a command named in the
 * configuration file ($QIBO_CORE_CONFIG, else $XDG_CONFIG_HOME/qibo-core/backends.json, else
 * ~/.config/qibo-core/backends.json), else the first executable qibo-backend-<name> on PATH.
 * Unlike the Python client there is no interpreter whose scripts folder to search first. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PREFIX "qibo-backend-"
#define CONFIG_MAX_BYTES (1 << 20)

static int valid_name(const char *name)
{
    if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') ||
          (name[0] >= '0' && name[0] <= '9')))
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
              (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' || *c == '-'))
            return 0;
    return 1;
}

void free_argv(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

static int is_executable(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode) && access(path, X_OK) == 0;
}

/* The PATH folders, in order, without repeats (by real path) or empty entries. */
static char **search_path(void)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "");
    size_t count = 1;
    for (const char *c = copy ? copy : ""; *c; c++)
        count += *c == ':';
    char **folders = calloc(count + 1, sizeof *folders);
    char **reals = calloc(count + 1, sizeof *reals);
    if (copy == NULL || folders == NULL || reals == NULL) {
        free(copy);
        free(folders);
        free(reals);
        return NULL;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *folder = strtok_r(copy, ":", &save); folder; folder = strtok_r(NULL, ":", &save)) {
        char *real = realpath(folder, NULL);
        int seen = real == NULL;
        for (size_t i = 0; i < n && !seen; i++)
            seen = reals[i] != NULL && strcmp(reals[i], real) == 0;
        if (!seen) {
            reals[n] = real;
            folders[n++] = strdup(folder);
        } else {
            free(real);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(reals[i]);
    free(reals);
    free(copy);
    return folders;
}

static char *find_on_path(const char *name)
{
    char **folders = search_path();
    char *found = NULL;
    for (size_t i = 0; folders && folders[i] && !found; i++) {
        char *candidate = format_text("%s/%s%s", folders[i], PREFIX, name);
        if (candidate && is_executable(candidate))
            found = candidate;
        else
            free(candidate);
    }
    free_argv(folders);
    return found;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "numpy, qulacs": every installed backend's name, or "none". */
static char *installed_names(void)
{
    char **folders = search_path();
    char **names = NULL;
    size_t count = 0, cap = 0;
    for (size_t i = 0; folders && folders[i]; i++) {
        DIR *dir = opendir(folders[i]);
        for (struct dirent *e; dir && (e = readdir(dir));) {
            const char *name = e->d_name + strlen(PREFIX);
            if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 || !valid_name(name))
                continue;
            char *path = format_text("%s/%s", folders[i], e->d_name);
            int usable = path && is_executable(path);
            free(path);
            int seen = 0;
            for (size_t k = 0; k < count && !seen; k++)
                seen = strcmp(names[k], name) == 0;
            if (!usable || seen)
                continue;
            if (count == cap) {
                cap = cap ? 2 * cap : 8;
                char **grown = realloc(names, cap * sizeof *names);
                if (grown == NULL)
                    break;
                names = grown;
            }
            if ((names[count] = strdup(name)) != NULL)
                count++;
        }
        if (dir)
            closedir(dir);
    }
    free_argv(folders);
    qsort(names, count, sizeof *names, by_text);
    size_t size = 5;
    for (size_t k = 0; k < count; k++)
        size += strlen(names[k]) + 2;
    char *text = malloc(size);
    if (text) {
        strcpy(text, count ? "" : "none");
        for (size_t k = 0; k < count; k++)
            strcat(strcat(text, k ? ", " : ""), names[k]);
    }
    for (size_t k = 0; k < count; k++)
        free(names[k]);
    free(names);
    return text;
}

static char *config_path(void)
{
    const char *explicit = getenv("QIBO_CORE_CONFIG");
    if (explicit != NULL)
        return strdup(explicit);
    const char *base = getenv("XDG_CONFIG_HOME");
    if (base != NULL && *base)
        return format_text("%s/qibo-core/backends.json", base);
    const char *home = getenv("HOME");
    return format_text("%s/.config/qibo-core/backends.json", home ? home : "");
}

static long invalid_utf8_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t extra;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xc2 && c <= 0xdf)
            extra = 1;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3;
        else
            return (long)i;
        if (len - i <= extra)
            return (long)i;
        for (size_t k = 1; k <= extra; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return (long)i;
        i += extra + 1;
    }
    return -1;
}

/* The configuration file's text (NULL when there is none), or QC_CONFIG with *error. */
static int read_config_text(const char *path, char **text, size_t *len, char **error)
{
    *text = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return QC_OK;
    if (fd < 0) {
        *error = format_text("cannot read %s: %s", path, strerror(errno));
        return QC_CONFIG;
    }
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        /* a FIFO would hang the reader */
        *error = format_text("%s is not a regular file", path);
    } else if (info.st_size > CONFIG_MAX_BYTES) {
        *error = format_text("%s is %lld bytes; at most %d", path, (long long)info.st_size,
                             CONFIG_MAX_BYTES);
    } else if ((*text = malloc((size_t)info.st_size + 1)) == NULL) {
        *error = NULL;
    } else {
        ssize_t n;
        *len = 0;
        while ((n = read(fd, *text + *len, (size_t)info.st_size - *len)) > 0)
            *len += (size_t)n;
        if (n < 0)
            *error = format_text("cannot read %s: %s", path, strerror(errno));
    }
    close(fd);
    long bad = *text ? invalid_utf8_at((unsigned char *)*text, *len) : -1;
    if (*text && !*error && bad >= 0)
        *error = format_text("%s is not UTF-8 text (invalid UTF-8 at byte %ld)", path, bad);
    if (*text == NULL || *error != NULL) {
        free(*text);
        *text = NULL;
        return *error ? QC_CONFIG : QC_NOMEM;
    }
    return QC_OK;
}

/* Each configured backend's command: {name: ["ssh", ...]}, or QC_CONFIG with *error. */
static int configured_backends(json_t **commands, char **error)
{
    *commands = NULL;
    char *path = config_path(), *text = NULL;
    size_t len = 0;
    if (path == NULL)
        return QC_NOMEM;
    int status = read_config_text(path, &text, &len, error);
    if (status != QC_OK || text == NULL) {
        free(path);
        *commands = status == QC_OK ? json_object() : NULL;
        return status == QC_OK && *commands == NULL ? QC_NOMEM : status;
    }
    json_error_t parse;
    json_t *root = json_loadb(text, len, 0, &parse);
    free(text);
    json_t *backends = json_is_object(root) ? json_object_get(root, "backends") : NULL;
    const char *shape = "expected {\"backends\": {name: {\"command\": [...]}}}";
    if (root == NULL) {
        *error = strstr(parse.text, "depth")
                     ? format_text("%s: the JSON is nested too deeply", path)
                     : format_text("%s: %s (%s at line %d column %d)", path, shape, parse.text,
                                   parse.line, parse.column);
    } else if (!json_is_object(root) || (backends != NULL && !json_is_object(backends))) {
        *error = format_text("%s: %s (not an object)", path, shape);
    } else {
        *commands = json_object();
        const char *name;
        json_t *entry;
        json_object_foreach(backends, name, entry) {
            json_t *command = json_object_get(entry, "command");
            size_t i;
            json_t *arg;
            int strings = json_is_array(command) && json_array_size(command) > 0;
            json_array_foreach(command, i, arg) strings = strings && json_is_string(arg);
            if (!json_is_object(entry) || command == NULL) {
                *error = format_text("%s: %s (the entry of '%s' has no \"command\")", path,
                                     shape, name);
                break;
            }
            if (!strings) {
                *error = format_text("%s: the command of '%s' must be a list of strings", path,
                                     name);
                break;
            }
            json_object_set(*commands, name, command);
        }
    }
    json_decref(root);
    free(path);
    if (*error != NULL || *commands == NULL) {
        json_decref(*commands);
        *commands = NULL;
        return *error ? QC_CONFIG : QC_NOMEM;
    }
    return QC_OK;
}

static char **argv_of(const json_t *command)
{
    size_t count = json_array_size(command);
    char **argv = calloc(count + 1, sizeof *argv);
    for (size_t i = 0; argv && i < count; i++) {
        if ((argv[i] = strdup(json_string_value(json_array_get(command, i)))) == NULL) {
            free_argv(argv);
            return NULL;
        }
    }
    return argv;
}

static char *names_of(const json_t *commands)
{
    size_t size = 5;
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)commands, name, value) size += strlen(name) + 2;
    char *text = malloc(size);
    if (text == NULL)
        return NULL;
    strcpy(text, json_object_size(commands) ? "" : "none");
    int first = 1;
    json_object_foreach((json_t *)commands, name, value) {
        strcat(strcat(text, first ? "" : ", "), name);
        first = 0;
    }
    return text;
}

static char **single(char *path)
{
    char **argv = calloc(2, sizeof *argv);
    if (argv == NULL) {
        free(path);
        return NULL;
    }
    argv[0] = path;
    return argv;
}

int find_backend_command(const char *name, char ***argv, int *search, char **error,
                         qc_process *log_to)
{
    *argv = NULL;
    *error = NULL;
    *search = 0;
    if (!valid_name(name)) {
        *error = format_text("'%s' is not a backend name (letters, digits, _ . -)", name);
        return *error ? QC_NOT_FOUND : QC_NOMEM;
    }
    json_t *commands = NULL;
    char *config_error = NULL;
    int config = configured_backends(&commands, &config_error);
    if (config == QC_NOMEM)
        return QC_NOMEM;
    json_t *command = commands ? json_object_get(commands, name) : NULL;
    if (command != NULL) {
        *argv = argv_of(command);
        *search = 1;
        json_decref(commands);
        return *argv ? QC_OK : QC_NOMEM;
    }
    char *path = find_on_path(name);
    if (path != NULL) {
        if (config_error != NULL)
            proc_log(log_to, QC_LOG_WARNING, "%s; using %s", config_error, path);
        free(config_error);
        json_decref(commands);
        *argv = single(path);
        return *argv ? QC_OK : QC_NOMEM;
    }
    char *installed = installed_names();
    char *configured = commands ? names_of(commands) : NULL;
    if (config_error != NULL)
        *error = format_text("%s%s not found on PATH; installed backends: %s (and %s)", PREFIX,
                             name, installed ? installed : "?", config_error);
    else
        *error = format_text("%s%s not found on PATH; installed backends: %s; configured: %s",
                             PREFIX, name, installed ? installed : "?",
                             configured ? configured : "?");
    free(installed);
    free(configured);
    free(config_error);
    json_decref(commands);
    return *error ? QC_NOT_FOUND : QC_NOMEM;
}
