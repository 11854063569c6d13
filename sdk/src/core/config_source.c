/* core/config_source.c - the text of a configuration with its @includes expanded, and where each
 * of its lines came from.
 *
 * libconfig would open included files itself, whenever a configuration is parsed: a run that
 * parses it again later (a trial's configuration) would see an edited include, and a hash of the
 * main file would not cover the includes. Instead the text is expanded once, here, into one
 * self-contained text (the snapshot: what the host parses, hashes and saves in the results
 * directory), and libconfig never sees an @include. Each line of the snapshot remembers its file
 * and line, so that messages still name the file the user wrote.
 *
 * The directive is recognised as libconfig 1.5 does: `@include "path"` at the start of a line
 * (after blanks), outside strings and comments, the path with \\ and \" escapes, relative paths
 * from the current directory. The snapshot replaces it by a comment line naming the file, the
 * file's lines, a closing comment line, and what followed the directive on its line (as a line of
 * its own). A text without @include is its own snapshot, byte for byte. */
#include "core/core_impl.h"
#include "dsnn/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { MAX_DEPTH = 10 }; /* libconfig's limit of nested includes */
#define MAX_TEXT ((size_t)16 << 20) /* the snapshot's size limit */

enum lex_state { LEX_CODE, LEX_STRING, LEX_COMMENT };

struct builder {
    struct cfg_source *s;
    size_t cap, lines_cap;
    struct dsnn_error *err;
};

static enum dsnn_status nomem(struct builder *b)
{
    return dsnn_error_set(b->err, DSNN_ERR_NOMEM, "out of memory expanding the configuration");
}

/* Appends n bytes of one line (from file, line) to the snapshot; nl adds a newline if the bytes
 * lack one. */
static enum dsnn_status put_line(struct builder *b, const char *p, size_t n, uint32_t file,
                                 uint32_t line, const char *where)
{
    struct cfg_source *s = b->s;
    const bool add_nl = n == 0 || p[n - 1] != '\n';
    if (s->len + n + 2 > MAX_TEXT)
        return dsnn_error_set(b->err, DSNN_ERR_CONFIG,
                              "%s: the configuration with its @includes expanded exceeds %zu MiB",
                              where, MAX_TEXT >> 20);
    if (s->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < s->len + n + 2)
            cap *= 2;
        char *t = realloc(s->text, cap);
        if (!t)
            return nomem(b);
        s->text = t;
        b->cap = cap;
    }
    if (s->n_lines == b->lines_cap) {
        size_t cap = b->lines_cap ? 2 * b->lines_cap : 256;
        struct cfg_origin *l = realloc(s->lines, cap * sizeof *l);
        if (!l)
            return nomem(b);
        s->lines = l;
        b->lines_cap = cap;
    }
    memcpy(s->text + s->len, p, n);
    s->len += n;
    if (add_nl)
        s->text[s->len++] = '\n';
    s->text[s->len] = '\0';
    s->lines[s->n_lines++] = (struct cfg_origin){.file = file, .line = line};
    return DSNN_OK;
}

/* Carries the lexical state over the bytes [p, e) of a line. */
static enum lex_state lex_line(const char *p, const char *e, enum lex_state st)
{
    while (p < e) {
        if (st == LEX_STRING) {
            if (*p == '\\' && p + 1 < e)
                p++;
            else if (*p == '"')
                st = LEX_CODE;
            p++;
        } else if (st == LEX_COMMENT) {
            if (*p == '*' && p + 1 < e && p[1] == '/')
                st = LEX_CODE, p++;
            p++;
        } else if (*p == '"') {
            st = LEX_STRING, p++;
        } else if (*p == '#' || (*p == '/' && p + 1 < e && p[1] == '/')) {
            return st; /* the rest of the line is a comment */
        } else if (*p == '/' && p + 1 < e && p[1] == '*') {
            st = LEX_COMMENT, p += 2;
        } else {
            p++;
        }
    }
    return st;
}

/* If the line [p, e) is an @include directive, its path (unescaped) into path and the position
 * after the closing quote into *rest. Returns 1 if so, 0 if not, -1 if the path is unterminated
 * or too long. */
static int include_directive(const char *p, const char *e, char *path, size_t size,
                             const char **rest)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(e - p) < 9 || memcmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
        return 0;
    for (p += 8; p < e && (*p == ' ' || *p == '\t'); p++)
        ;
    if (p == e || *p != '"')
        return 0;
    size_t n = 0;
    for (p++; p < e && *p != '"'; p++) {
        if (*p == '\\' && p + 1 < e && (p[1] == '\\' || p[1] == '"'))
            p++;
        if (*p == '\n' || n + 1 >= size)
            return -1;
        path[n++] = *p;
    }
    if (p == e)
        return -1;
    path[n] = '\0';
    *rest = p + 1;
    return 1;
}

static enum dsnn_status add_file(struct builder *b, const char *name, uint32_t *index)
{
    struct cfg_source *s = b->s;
    char **f = realloc(s->files, (s->n_files + 1) * sizeof *f);
    if (!f)
        return nomem(b);
    s->files = f;
    if (!(f[s->n_files] = strdup(name)))
        return nomem(b);
    *index = (uint32_t)s->n_files++;
    return DSNN_OK;
}

/* Reads path whole (at most MAX_TEXT bytes) into *out (NUL-terminated). Only a regular file is
 * read: a directory, a device (/dev/zero) or a FIFO (whose open would block for ever) is refused.
 * It is opened non-blocking and checked with fstat on the open descriptor, so that the check
 * and the read concern the same file. */
static enum dsnn_status read_text(const char *path, char **out, size_t *len, const char *where,
                                  struct dsnn_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (!where)
            return dsnn_error_set(err, DSNN_ERR_IO, "%s: cannot open the configuration file: %s",
                                  path, strerror(errno));
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: cannot open the included file '%s': %s",
                              where, path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        const bool dir = S_ISDIR(sb.st_mode);
        close(fd);
        const char *what = dir ? "a directory" : "not a regular file (a device or a FIFO?)";
        if (!where)
            return dsnn_error_set(err, DSNN_ERR_CONFIG,
                                  "%s: the configuration file is %s", path, what);
        return dsnn_error_set(err, DSNN_ERR_CONFIG, "%s: the included file '%s' is %s", where,
                              path, what);
    }
    /* back to blocking reads (a regular file never blocks, but keep the stdio contract) */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    }
    char *buf = malloc(MAX_TEXT + 1);
    size_t n = buf ? fread(buf, 1, MAX_TEXT + 1, f) : 0;
    const bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf)
        return dsnn_error_set(err, DSNN_ERR_NOMEM, "%s: out of memory", path);
    if (bad || n > MAX_TEXT) {
        free(buf);
        return dsnn_error_set(err, bad ? DSNN_ERR_IO : DSNN_ERR_CONFIG, "%s: %s", path,
                              bad ? "read error" : "larger than 16 MiB: not a configuration file");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return DSNN_OK;
}

static enum dsnn_status expand(struct builder *b, const char *text, size_t len, const char *name,
                               int depth);

/* The @include of path on line `line` of file `file` (named fname). */
static enum dsnn_status expand_include(struct builder *b, const char *path, uint32_t file,
                                       uint32_t line, const char *fname, int depth)
{
    char where[4200], mark[4200];
    snprintf(where, sizeof where, "%s:%u", fname, line);
    if (depth + 1 > MAX_DEPTH)
        return dsnn_error_set(b->err, DSNN_ERR_CONFIG,
                              "%s: @include \"%s\" nested deeper than %d files (does a file "
                              "include itself?)",
                              where, path, MAX_DEPTH);
    char *text = NULL;
    size_t n = 0;
    enum dsnn_status st = read_text(path, &text, &n, where, b->err);
    if (st != DSNN_OK)
        return st;
    int w = snprintf(mark, sizeof mark, "# >>> @include \"%s\" (expanded by dsnn)", path);
    if ((st = put_line(b, mark, (size_t)w, file, line, where)) == DSNN_OK &&
        (st = expand(b, text, n, path, depth + 1)) == DSNN_OK) {
        w = snprintf(mark, sizeof mark, "# <<< @include \"%s\"", path);
        st = put_line(b, mark, (size_t)w, file, line, where);
    }
    free(text);
    return st;
}

static enum dsnn_status expand(struct builder *b, const char *text, size_t len, const char *name,
                               int depth)
{
    uint32_t file = 0;
    enum dsnn_status st = add_file(b, name, &file);
    const char *nul = memchr(text, '\0', len);
    if (st == DSNN_OK && nul) {
        uint32_t line = 1;
        for (const char *q = text; q < nul; q++)
            line += *q == '\n';
        return dsnn_error_set(b->err, DSNN_ERR_CONFIG,
                              "%s:%u: a NUL byte: not a configuration file", name, line);
    }
    enum lex_state lex = LEX_CODE;
    const char *p = text, *end = text + len;
    for (uint32_t line = 1; st == DSNN_OK && p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl + 1 : end, *rest = NULL;
        char path[4096];
        const int inc = lex == LEX_CODE ? include_directive(p, e, path, sizeof path, &rest) : 0;
        char where[4200];
        snprintf(where, sizeof where, "%s:%u", name, line);
        if (inc < 0)
            return dsnn_error_set(b->err, DSNN_ERR_CONFIG,
                                  "%s: @include: the file name lacks its closing quote (or is "
                                  "longer than 4095 bytes)",
                                  where);
        if (inc > 0) {
            if ((st = expand_include(b, path, file, line, name, depth)) == DSNN_OK)
                for (const char *q = rest; q < e; q++)
                    if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
                        st = put_line(b, rest, (size_t)(e - rest), file, line, where);
                        lex = lex_line(rest, e, LEX_CODE);
                        break;
                    }
        } else {
            st = put_line(b, p, (size_t)(e - p), file, line, where);
            lex = lex_line(p, e, lex);
        }
        p = e;
    }
    return st;
}

/* The snapshot of text has no newline after its last line when text has none. */
static void trim_last_newline(struct cfg_source *s, const char *text, size_t len)
{
    if (s->len && (len == 0 || text[len - 1] != '\n') && s->text[s->len - 1] == '\n')
        s->text[--s->len] = '\0';
}

static enum dsnn_status finish(struct builder *b, enum dsnn_status st)
{
    if (st != DSNN_OK) {
        cfg_source_free(b->s);
        return st;
    }
    if (!b->s->text && !(b->s->text = calloc(1, 1)))
        return nomem(b);
    return DSNN_OK;
}

enum dsnn_status cfg_source_from_text(struct cfg_source *s, const char *text, size_t len,
                                      const char *name, struct dsnn_error *err)
{
    memset(s, 0, sizeof *s);
    struct builder b = {.s = s, .err = err};
    enum dsnn_status st = expand(&b, text, len, name, 0);
    if (st == DSNN_OK)
        trim_last_newline(s, text, len);
    return finish(&b, st);
}

enum dsnn_status cfg_source_from_file(struct cfg_source *s, const char *path,
                                      struct dsnn_error *err)
{
    memset(s, 0, sizeof *s);
    char *text = NULL;
    size_t n = 0;
    enum dsnn_status st = read_text(path, &text, &n, NULL, err);
    if (st != DSNN_OK)
        return st;
    st = cfg_source_from_text(s, text, n, path, err);
    free(text);
    return st;
}

enum dsnn_status cfg_source_copy(struct cfg_source *dst, const struct cfg_source *src)
{
    memset(dst, 0, sizeof *dst);
    dst->text = malloc(src->len + 1);
    dst->lines = malloc((src->n_lines ? src->n_lines : 1) * sizeof *dst->lines);
    dst->files = calloc(src->n_files ? src->n_files : 1, sizeof *dst->files);
    bool ok = dst->text && dst->lines && dst->files;
    for (size_t i = 0; ok && i < src->n_files; i++, dst->n_files++)
        ok = (dst->files[i] = strdup(src->files[i])) != NULL;
    if (!ok) {
        cfg_source_free(dst);
        return DSNN_ERR_NOMEM;
    }
    memcpy(dst->text, src->text, src->len + 1);
    dst->len = src->len;
    memcpy(dst->lines, src->lines, src->n_lines * sizeof *dst->lines);
    dst->n_lines = src->n_lines;
    return DSNN_OK;
}

void cfg_source_free(struct cfg_source *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_files; i++)
        free(s->files[i]);
    free(s->files);
    free(s->lines);
    free(s->text);
    memset(s, 0, sizeof *s);
}

const char *cfg_source_origin(const struct cfg_source *s, int line, int *orig_line)
{
    if (!s || line < 1 || (size_t)line > s->n_lines || !s->files) {
        *orig_line = line;
        return NULL;
    }
    const struct cfg_origin o = s->lines[line - 1];
    *orig_line = (int)o.line;
    return o.file < s->n_files ? s->files[o.file] : NULL;
}
