/* tests/unit/test_config.c - typed configuration access (sdk/src/core/config.c).
 *
 * Parse and load errors ("NAME:LINE: ..."), the one error style of the typed getters
 * ("FILE:LINE: key 'model.learning_rate': expected a number, got a string"), numbers, arrays,
 * enums, tree navigation, dsnn_config_file_set (search overrides) and the JSON / libconfig
 * renderings, including a round trip of every kind of value through the libconfig parser. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "dsnn/config.h"
#include "dsnn/status.h"
#include "harness.h"

/* ---- helpers ---- */

#define ASSERT_HAS(msg, sub)                                                                       \
    do {                                                                                           \
        const char *m_ = (msg), *s_ = (sub);                                                       \
        bool ok_ = m_ && strstr(m_, s_) != NULL;                                                   \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,   \
                    m_ ? m_ : "(null)", s_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

#define ASSERT_STR(got, want)                                                                      \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        bool ok_ = g_ && strcmp(g_, w_) == 0;                                                      \
        if (!ok_)                                                                                  \
            fprintf(stderr, "\n    %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__,          \
                    g_ ? g_ : "(null)", w_);                                                       \
        CU_ASSERT(ok_);                                                                            \
    } while (0)

/* 1-based line of the first occurrence of needle in text (0 if absent). */
static int line_of(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (!p)
        return 0;
    int line = 1;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

static struct dsnn_config_file *parse(const char *text, const char *name)
{
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    enum dsnn_status st = dsnn_config_file_parse(text, name, &f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    parse failed: %s\n", err.msg);
    CU_ASSERT_EQUAL(st, DSNN_OK);
    return f;
}

/* A temporary file holding text; path into buf. */
static bool write_temp(const char *text, char *path, size_t size)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, size, "%s/dsnn-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static const char *const k_text = "experiment = { name = \"demo\"; epochs = 10; };\n"
                                  "model = {\n"
                                  "  learning_rate = \"fast\";\n"
                                  "  momentum = 1;\n"
                                  "  epochs = 1.5;\n"
                                  "  steps = 7;\n"
                                  "  big = 5000000000L;\n"
                                  "  neg = -3;\n"
                                  "  rate = 0.25;\n"
                                  "  flag = true;\n"
                                  "  sizes = [1, 2, 3];\n"
                                  "  sizes_list = (4, 5);\n"
                                  "  floats = [0.5, 1.5];\n"
                                  "  mixed = (1, 2.5);\n"
                                  "  bad_list = (1, \"two\");\n"
                                  "  float_in_ints = [1, 2];\n"
                                  "  on_perc = 0.1;\n"
                                  "  on_perc_int = 1;\n"
                                  "  on_perc_arr = [0.1, 0.2, 0.3];\n"
                                  "  alg = \"adam\";\n"
                                  "  empty = [];\n"
                                  "  sub = { deep = { x = \"s\"; y = 2; }; };\n"
                                  "};\n";

/* ---- parsing ---- */

static void test_parse_ok(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *root = dsnn_config_file_root(f);
    CU_ASSERT_PTR_NOT_NULL(root);
    CU_ASSERT_EQUAL(dsnn_cfg_type(root), DSNN_CFG_GROUP);
    CU_ASSERT_EQUAL(dsnn_cfg_count(root), 2);
    ASSERT_STR(dsnn_cfg_child_name(root, 0), "experiment");
    ASSERT_STR(dsnn_cfg_child_name(root, 1), "model");
    CU_ASSERT_PTR_NULL(dsnn_cfg_child_name(root, 2));
    CU_ASSERT_PTR_NULL(dsnn_cfg_child(root, 2));
    dsnn_config_file_free(f);
    dsnn_config_file_free(NULL);
}

static void test_parse_error_name_line(void)
{
    static const char *const texts[] = {
        "a = 1;\nb = 2;\nc = ;\n",                      /* error on line 3 */
        "a = 1;\n\n\n\nmodel = { x = [1, \"a\"]; };\n", /* mixed array, line 5 */
        "model = {\n  x = 1;\n",                        /* unterminated group: end of text */
    };
    static const int lines[] = {3, 5, 0};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct dsnn_config_file *f = (struct dsnn_config_file *)1;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(dsnn_config_file_parse(texts[i], "exp.cfg", &f, &err), DSNN_ERR_CONFIG);
        CU_ASSERT_EQUAL(err.status, DSNN_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(f);
        char want[64];
        if (lines[i]) {
            snprintf(want, sizeof want, "exp.cfg:%d: ", lines[i]);
            CU_ASSERT_EQUAL(strncmp(err.msg, want, strlen(want)), 0);
            if (strncmp(err.msg, want, strlen(want)) != 0)
                fprintf(stderr, "\n    got \"%s\", want prefix \"%s\"\n", err.msg, want);
        } else {
            CU_ASSERT_EQUAL(strncmp(err.msg, "exp.cfg:", 8), 0);
        }
        CU_ASSERT(strlen(err.msg) > strlen("exp.cfg:1: "));
    }
}

/* libconfig 1.5 keeps an integer literal without L in 32 bits (4294967298 -> 2): such literals
 * are refused with the file, line and literal; strings, comments, floats, identifiers, the L
 * suffix and the 32-bit limits themselves pass; an @included file is scanned too. */
static void test_int_literals(void)
{
    static const char *const bad[] = {
        "a = 1;\nepochs = 4294967298;\n",
        "a = 1;\nx = [1, 2,\n 2147483648];\n",
        "x = -2147483649;\n",
        "x = 0x1ffffffff;\n",
        "g = { y = (1, 99999999999999999999999); };\n",
    };
    static const int lines[] = {2, 3, 1, 1, 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dsnn_config_file *f = (struct dsnn_config_file *)1;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(dsnn_config_file_parse(bad[i], "exp.cfg", &f, &err), DSNN_ERR_CONFIG);
        CU_ASSERT_PTR_NULL(f);
        char want[64];
        snprintf(want, sizeof want, "exp.cfg:%d: integer ", lines[i]);
        CU_ASSERT_EQUAL(strncmp(err.msg, want, strlen(want)), 0);
        if (strncmp(err.msg, want, strlen(want)) != 0)
            fprintf(stderr, "\n    got \"%s\", want prefix \"%s\"\n", err.msg, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "L suffix"));
    }
    const char *ok = "a = 2147483647; b = -2147483648; c = 0xffffffff; d = 4294967298L;\n"
                     "s = \"4294967298\"; # 4294967298\n// 4294967298\n/* 4294967298\n*/\n"
                     "f = 4294967298.0; e = 1e999; layer4294967298x = 1; h = 5e-4;\n";
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(ok, "ok.cfg", &f, &err), DSNN_OK);
    int64_t v = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_config_file_root(f), "d", 0, &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(v, 4294967298LL);
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_config_file_root(f), "b", 0, &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(v, -2147483648LL);
    dsnn_config_file_free(f);
    /* an included file with a bad literal: its path and line */
    char inc[512], main_path[512], text[1200];
    CU_ASSERT_FATAL(write_temp("x = 1;\ny = 8589934592;\n", inc, sizeof inc));
    snprintf(text, sizeof text, "a = 1;\n@include \"%s\"\n", inc);
    CU_ASSERT_FATAL(write_temp(text, main_path, sizeof main_path));
    f = NULL;
    CU_ASSERT_EQUAL(dsnn_config_file_load(main_path, &f, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(f);
    char want[600];
    snprintf(want, sizeof want, "%s:2: integer 8589934592", inc);
    CU_ASSERT_EQUAL(strncmp(err.msg, want, strlen(want)), 0);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fprintf(stderr, "\n    got \"%s\", want prefix \"%s\"\n", err.msg, want);
    unlink(inc);
    unlink(main_path);
}

static void test_load_errors(void)
{
    char path[512];
    const char *bad = "a = 1;\nb = 2;\n\nc = [1, 2;\n";
    CU_ASSERT_FATAL(write_temp(bad, path, sizeof path));
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_config_file_load(path, &f, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(f);
    char want[600];
    snprintf(want, sizeof want, "%s:4: ", path);
    CU_ASSERT_EQUAL(strncmp(err.msg, want, strlen(want)), 0);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fprintf(stderr, "\n    got \"%s\", want prefix \"%s\"\n", err.msg, want);
    unlink(path);

    /* A missing file is an I/O error naming the path. */
    struct dsnn_error err2 = {0};
    CU_ASSERT_EQUAL(dsnn_config_file_load("/nonexistent/dir/exp.cfg", &f, &err2), DSNN_ERR_IO);
    CU_ASSERT_PTR_NULL(f);
    ASSERT_HAS(err2.msg, "/nonexistent/dir/exp.cfg");
}

/* ---- the snapshot: @includes expanded once, messages naming the file written ---- */

static void expect_prefix(const char *msg, const char *want)
{
    CU_ASSERT_EQUAL(strncmp(msg, want, strlen(want)), 0);
    if (strncmp(msg, want, strlen(want)) != 0)
        fprintf(stderr, "\n    got \"%s\", want prefix \"%s\"\n", msg, want);
}

static void test_snapshot(void)
{
    char inc[512], main_path[512], text[2400], want[1200];
    struct dsnn_error err = {0};
    CU_ASSERT_FATAL(write_temp("  lr = 0.5;\n  name = \"x\";", inc, sizeof inc));
    /* an @include in a comment or a string is not one */
    snprintf(text, sizeof text,
             "# @include \"nowhere.cfg\"\nmodel = {\n  @include \"%s\"\n  k = 2;\n};\n"
             "s = \"\n@include \\\"nowhere.cfg\\\"\";\n/*\n@include \"nowhere.cfg\"\n*/\n",
             inc);
    CU_ASSERT_FATAL(write_temp(text, main_path, sizeof main_path));
    struct dsnn_config_file *f = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_load(main_path, &f, &err), DSNN_OK);
    size_t len = 0;
    const char *snap = dsnn_config_file_text(f, &len);
    CU_ASSERT_EQUAL(len, strlen(snap));
    ASSERT_HAS(snap, "  lr = 0.5;\n  name = \"x\";\n");
    ASSERT_HAS(snap, "# >>> @include");
    CU_ASSERT(strstr(snap, "\n  @include") == NULL);
    /* messages name the included file and its line */
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    int64_t v = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "name", 0, &v, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: ", inc);
    expect_prefix(err.msg, want);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "k", 0, &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(v, 2);
    char where[1200];
    snprintf(want, sizeof want, "%s:4", main_path);
    ASSERT_STR(dsnn_cfg_where(model, "k", where, sizeof where), want);
    /* a clone is parsed from the snapshot: the files may change or go */
    CU_ASSERT_FATAL(write_temp("", text, sizeof text));
    unlink(inc);
    unlink(main_path);
    struct dsnn_config_file *g = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_clone(f, &g, &err), DSNN_OK);
    ASSERT_STR(dsnn_config_file_text(g, NULL), snap);
    double lr = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_float(dsnn_cfg_group(dsnn_config_file_root(g), "model"), "lr", 0,
                                   &lr, &err), DSNN_OK);
    CU_ASSERT_EQUAL(lr, 0.5);
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_cfg_group(dsnn_config_file_root(g), "model"), "name", 0,
                                 &v, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: ", inc);
    expect_prefix(err.msg, want);
    dsnn_config_file_free(g);
    dsnn_config_file_free(f);
    unlink(text);

    /* a text without @include is its own snapshot, byte for byte (no newline added) */
    const char *plain = "a = 1;\n# c\nb = \"two\";";
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse(plain, "p.cfg", &f, &err), DSNN_OK);
    ASSERT_STR(dsnn_config_file_text(f, NULL), plain);
    dsnn_config_file_free(f);
}

static void test_snapshot_errors(void)
{
    char inc[512], main_path[512], text[1400], want[1200];
    struct dsnn_error err = {0};
    struct dsnn_config_file *f = NULL;
    /* a syntax error in an included file: that file and its line */
    CU_ASSERT_FATAL(write_temp("x = 1;\ny = [1, 2;\n", inc, sizeof inc));
    snprintf(text, sizeof text, "a = 1;\n@include \"%s\"\nb = 2;\n", inc);
    CU_ASSERT_FATAL(write_temp(text, main_path, sizeof main_path));
    CU_ASSERT_EQUAL(dsnn_config_file_load(main_path, &f, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_PTR_NULL(f);
    snprintf(want, sizeof want, "%s:2: ", inc);
    expect_prefix(err.msg, want);
    /* a missing include: the line of the directive and the path */
    unlink(inc);
    CU_ASSERT_EQUAL(dsnn_config_file_load(main_path, &f, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: cannot open the included file '%s'", main_path, inc);
    expect_prefix(err.msg, want);
    /* a file that includes itself */
    snprintf(text, sizeof text, "a = 1;\n@include \"%s\"\n", main_path);
    FILE *fp = fopen(main_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(text, fp);
    fclose(fp);
    CU_ASSERT_EQUAL(dsnn_config_file_load(main_path, &f, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "nested deeper than 10 files");
    snprintf(want, sizeof want, "%s:2: ", main_path);
    expect_prefix(err.msg, want);
    unlink(main_path);
    /* a NUL byte (libconfig would stop reading there, silently) */
    static const char with_nul[] = "a = 1;\nb = 2;\0c = 3;\n";
    snprintf(main_path, sizeof main_path, "%s/dsnn-config-nul-XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(main_path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, with_nul, sizeof with_nul - 1), (ssize_t)(sizeof with_nul - 1));
    close(fd);
    CU_ASSERT_EQUAL(dsnn_config_file_load(main_path, &f, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2: a NUL byte", main_path);
    expect_prefix(err.msg, want);
    unlink(main_path);
    /* an include that is not a regular file (it could block or never end) */
    CU_ASSERT_EQUAL(dsnn_config_file_parse("a = 1;\n@include \"/dev/zero\"\n", "z.cfg", &f, &err),
                    DSNN_ERR_CONFIG);
    expect_prefix(err.msg, "z.cfg:2: the included file '/dev/zero' is not a regular file");
    CU_ASSERT_EQUAL(dsnn_config_file_parse("a = 1;\n@include \"/tmp\"\n", "d.cfg", &f, &err),
                    DSNN_ERR_CONFIG);
    expect_prefix(err.msg, "d.cfg:2: the included file '/tmp' is a directory");
    /* the configuration file itself: a directory, a device, a FIFO (an open of a FIFO without a
     * writer would block for ever) */
    CU_ASSERT_EQUAL(dsnn_config_file_load("/tmp", &f, &err), DSNN_ERR_CONFIG);
    expect_prefix(err.msg, "/tmp: the configuration file is a directory");
    CU_ASSERT_EQUAL(dsnn_config_file_load("/dev/zero", &f, &err), DSNN_ERR_CONFIG);
    expect_prefix(err.msg, "/dev/zero: the configuration file is not a regular file");
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/dsnn-config-fifo-%d",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    if (mkfifo(fifo, 0600) == 0) {
        CU_ASSERT_EQUAL(dsnn_config_file_load(fifo, &f, &err), DSNN_ERR_CONFIG);
        ASSERT_HAS(err.msg, "the configuration file is not a regular file");
        snprintf(text, sizeof text, "a = 1;\n@include \"%s\"\n", fifo);
        CU_ASSERT_EQUAL(dsnn_config_file_parse(text, "f.cfg", &f, &err), DSNN_ERR_CONFIG);
        expect_prefix(err.msg, "f.cfg:2: the included file");
        ASSERT_HAS(err.msg, "is not a regular file");
        unlink(fifo);
    }
    /* an unterminated file name */
    CU_ASSERT_EQUAL(dsnn_config_file_parse("a = 1;\n@include \"x.cfg\n", "u.cfg", &f, &err),
                    DSNN_ERR_CONFIG);
    expect_prefix(err.msg, "u.cfg:2: @include");
}

static void test_rename(void)
{
    struct dsnn_error err = {0};
    struct dsnn_config_file *f = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_parse("model = {\n  k = 1;\n  old = [1, 2];\n};\n"
                                                 "other = { old = 3; new = 4; };\n",
                                                 "r.cfg", &f, &err),
                          DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_config_file_rename(f, "model", "old", "new", &err), DSNN_OK);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    CU_ASSERT(!dsnn_cfg_has(model, "old"));
    int64_t v[4];
    size_t n = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "new", v, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && v[0] == 1 && v[1] == 2);
    char where[64];
    ASSERT_STR(dsnn_cfg_where(model, "new", where, sizeof where), "r.cfg:3"); /* its line */
    /* absent: nothing; both given: an error naming the line and both names */
    CU_ASSERT_EQUAL(dsnn_config_file_rename(f, "model", "none", "k2", &err), DSNN_OK);
    CU_ASSERT(!dsnn_cfg_has(model, "k2"));
    CU_ASSERT_EQUAL(dsnn_config_file_rename(f, "other", "old", "new", &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "r.cfg:5: key 'other.new' and its other name 'old' are both given");
    CU_ASSERT_EQUAL(dsnn_config_file_rename(f, "nogroup", "old", "new", &err), DSNN_OK);
    dsnn_config_file_free(f);
}

/* ---- typed getters: the error style ---- */

static void check_type_error(const struct dsnn_cfg *model, const char *where_name, const char *text)
{
    struct dsnn_error err = {0};
    double d = -1;
    char want[512];

    /* A string where a number is expected: the complete message. */
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "learning_rate", 0.1, &d, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:%d: key 'model.learning_rate': expected a number, got a string",
             where_name, line_of(text, "learning_rate"));
    ASSERT_STR(err.msg, want);

    /* A float where an integer is expected is refused, naming the value. */
    int64_t i = -1;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "epochs", 3, &i, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:%d: key 'model.epochs': ", where_name,
             line_of(text, "epochs = 1.5"));
    ASSERT_HAS(err.msg, want);
    ASSERT_HAS(err.msg, "expected an integer");
    ASSERT_HAS(err.msg, "1.5");

    /* Deeply nested: the full dotted key. */
    const struct dsnn_cfg *deep = dsnn_cfg_group(dsnn_cfg_group(model, "sub"), "deep");
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int(deep, "x", 0, &i, &err), DSNN_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:%d: key 'model.sub.deep.x': expected an integer, got a string",
             where_name, line_of(text, "x = \"s\""));
    ASSERT_STR(err.msg, want);

    /* bool / string / array type errors. */
    bool b = false;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_bool(model, "steps", false, &b, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.steps'");
    ASSERT_HAS(err.msg, "expected true or false, got an integer");
    const char *s = NULL;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_string(model, "sizes", "x", &s, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.sizes'");
    ASSERT_HAS(err.msg, "expected a string, got an array");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "sub", 0, &d, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "got a group");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "sizes_list", 0, &d, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "got a list");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_string(model, "flag", NULL, &s, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "got a boolean");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "rate", 0, &i, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "0.25");
}

static void test_type_errors_parsed(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    check_type_error(dsnn_cfg_group(dsnn_config_file_root(f), "model"), "exp.cfg", k_text);
    dsnn_config_file_free(f);
}

static void test_type_errors_loaded(void)
{
    char path[512];
    CU_ASSERT_FATAL(write_temp(k_text, path, sizeof path));
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_load(path, &f, &err), DSNN_OK);
    check_type_error(dsnn_cfg_group(dsnn_config_file_root(f), "model"), path, k_text);
    dsnn_config_file_free(f);
    unlink(path);
}

static void test_scalars(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct dsnn_error err = {0};
    double d = -1;
    int64_t i = -1;
    bool b = false;
    const char *s = NULL;

    /* An integer where a float is expected is accepted. */
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "momentum", 0.5, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 1.0);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "rate", 0.5, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.25);
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "big", 0.5, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 5000000000.0);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "steps", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 7);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "neg", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, -3);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "big", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 5000000000LL);
    CU_ASSERT_EQUAL(dsnn_cfg_bool(model, "flag", false, &b, &err), DSNN_OK);
    CU_ASSERT_TRUE(b);
    CU_ASSERT_EQUAL(dsnn_cfg_string(model, "alg", NULL, &s, &err), DSNN_OK);
    ASSERT_STR(s, "adam");
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* Missing keys and a NULL group yield the default. */
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "absent", 0.5, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.5);
    CU_ASSERT_EQUAL(dsnn_cfg_int(model, "absent", 42, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 42);
    CU_ASSERT_EQUAL(dsnn_cfg_bool(NULL, "flag", true, &b, &err), DSNN_OK);
    CU_ASSERT_TRUE(b);
    CU_ASSERT_EQUAL(dsnn_cfg_string(NULL, "alg", "SGD", &s, &err), DSNN_OK);
    ASSERT_STR(s, "SGD");
    CU_ASSERT_EQUAL(dsnn_cfg_int(NULL, "x", -7, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, -7);
    CU_ASSERT_EQUAL(dsnn_cfg_float(NULL, "x", 2.5, &d, &err), DSNN_OK);
    CU_ASSERT_EQUAL(d, 2.5);
    /* Asking a non-group for a key: the default (it has no members). */
    const struct dsnn_cfg *sizes = dsnn_config_file_lookup(f, "model.sizes");
    CU_ASSERT_EQUAL(dsnn_cfg_int(sizes, "x", 9, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 9);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* Errors without an err struct still return the status. */
    CU_ASSERT_EQUAL(dsnn_cfg_float(model, "learning_rate", 0.1, &d, NULL), DSNN_ERR_CONFIG);
    dsnn_config_file_free(f);
}

static void test_arrays(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct dsnn_error err = {0};
    int64_t iv[8] = {0};
    double dv[8] = {0};
    size_t n = 99;

    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "sizes", iv, 8, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT(iv[0] == 1 && iv[1] == 2 && iv[2] == 3);
    /* A list works as well as an array. */
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "sizes_list", iv, 8, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(iv[0] == 4 && iv[1] == 5);
    /* Exactly max values is fine. */
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "sizes", iv, 3, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 3);
    /* Floats; integers accepted in a float array, also mixed in a list. */
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "floats", dv, 8, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && dv[0] == 0.5 && dv[1] == 1.5);
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "float_in_ints", dv, 8, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && dv[0] == 1.0 && dv[1] == 2.0);
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "mixed", dv, 8, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && dv[0] == 1.0 && dv[1] == 2.5);
    /* Empty array and missing key: n = 0. */
    n = 99;
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "empty", iv, 8, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 0);
    n = 99;
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "absent", dv, 8, &n, &err), DSNN_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* Too many values names the key and the limit. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "sizes", iv, 2, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.sizes'");
    ASSERT_HAS(err.msg, "3 values");
    ASSERT_HAS(err.msg, "at most 2");
    char want[64];
    snprintf(want, sizeof want, "exp.cfg:%d: ", line_of(k_text, "sizes = [1"));
    ASSERT_HAS(err.msg, want);
    /* Floats in an int array are refused, naming the element. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "floats", iv, 8, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.floats'");
    ASSERT_HAS(err.msg, "element 0");
    ASSERT_HAS(err.msg, "expected an integer, got a float");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "bad_list", dv, 8, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "element 1");
    ASSERT_HAS(err.msg, "got a string");
    /* A scalar or a group where an array is expected. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "steps", iv, 8, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.steps'");
    ASSERT_HAS(err.msg, "expected an array");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_float_array(model, "sub", dv, 8, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "got a group");
    dsnn_config_file_free(f);
}

static void test_float_or_array(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct dsnn_error err = {0};
    double dv[4] = {0};
    size_t n = 0;

    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "on_perc", 0.5, dv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 1 && dv[0] == 0.1);
    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "on_perc_int", 0.5, dv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 1 && dv[0] == 1.0);
    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "on_perc_arr", 0.5, dv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 3 && dv[0] == 0.1 && dv[1] == 0.2 && dv[2] == 0.3);
    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "absent", 0.5, dv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 1 && dv[0] == 0.5);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "alg", 0.5, dv, 4, &n, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.alg'");
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_float_or_array(model, "on_perc_arr", 0.5, dv, 2, &n, &err),
                    DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "key 'model.on_perc_arr'");
    ASSERT_HAS(err.msg, "at most 2");
    dsnn_config_file_free(f);
}

static void test_enum(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    static const char *const algs[] = {"SGD", "Adam", NULL};
    static const char *const others[] = {"none", "StepLR", "MultiStepLR", NULL};
    struct dsnn_error err = {0};
    int idx = -1;

    /* Case-insensitive match. */
    CU_ASSERT_EQUAL(dsnn_cfg_enum(model, "alg", "SGD", algs, &idx, &err), DSNN_OK);
    CU_ASSERT_EQUAL(idx, 1);
    /* The default when absent. */
    CU_ASSERT_EQUAL(dsnn_cfg_enum(model, "absent", "MultiStepLR", others, &idx, &err), DSNN_OK);
    CU_ASSERT_EQUAL(idx, 2);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* Not a choice: where, key, value and every choice. */
    CU_ASSERT_EQUAL(dsnn_cfg_enum(model, "alg", "none", others, &idx, &err), DSNN_ERR_CONFIG);
    char want[256];
    snprintf(want, sizeof want,
             "exp.cfg:%d: key 'model.alg': \"adam\" is not one of \"none\", \"StepLR\", "
             "\"MultiStepLR\"",
             line_of(k_text, "alg = "));
    ASSERT_STR(err.msg, want);
    /* Not a string. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_enum(model, "steps", "SGD", algs, &idx, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "expected a string, got an integer");
    /* No default and absent. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_enum(model, "absent", NULL, algs, &idx, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "model.absent");
    ASSERT_HAS(err.msg, "\"SGD\", \"Adam\"");
    dsnn_config_file_free(f);
}

static void test_check_range(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(dsnn_config_file_root(f), "model");
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "rate", 0.25, 0, 1, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "rate", 0, 0, 1, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "rate", 1, 0, 1, &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "momentum", 1.5, 0, 1, &err), DSNN_ERR_CONFIG);
    char want[128];
    snprintf(want, sizeof want,
             "exp.cfg:%d: key 'model.momentum': 1.5 is out of range: must be in [0, 1]",
             line_of(k_text, "momentum"));
    ASSERT_STR(err.msg, want);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "rate", NAN, 0, 1, &err), DSNN_ERR_CONFIG);
    CU_ASSERT_EQUAL(dsnn_cfg_check_range(model, "rate", -1e-9, 0, 1, &err), DSNN_ERR_CONFIG);
    dsnn_config_file_free(f);
}

static void test_navigation(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *root = dsnn_config_file_root(f);
    const struct dsnn_cfg *model = dsnn_cfg_group(root, "model");
    CU_ASSERT_PTR_NOT_NULL_FATAL(model);
    CU_ASSERT_PTR_NULL(dsnn_cfg_group(root, "absent"));
    CU_ASSERT_PTR_NULL(dsnn_cfg_group(model, "steps")); /* not a group */
    CU_ASSERT_PTR_NULL(dsnn_cfg_group(NULL, "model"));
    CU_ASSERT_TRUE(dsnn_cfg_has(model, "steps"));
    CU_ASSERT_FALSE(dsnn_cfg_has(model, "absent"));
    CU_ASSERT_FALSE(dsnn_cfg_has(NULL, "steps"));

    const struct dsnn_cfg *deep = dsnn_cfg_group(dsnn_cfg_group(model, "sub"), "deep");
    ASSERT_STR(dsnn_cfg_path(deep), "model.sub.deep");
    ASSERT_STR(dsnn_cfg_path(model), "model");
    ASSERT_STR(dsnn_cfg_path(root), "");
    ASSERT_STR(dsnn_cfg_path(NULL), "");

    char buf[128], want[64];
    snprintf(want, sizeof want, "exp.cfg:%d", line_of(k_text, "steps"));
    ASSERT_STR(dsnn_cfg_where(model, "steps", buf, sizeof buf), want);
    snprintf(want, sizeof want, "exp.cfg:%d", line_of(k_text, "model = {"));
    ASSERT_STR(dsnn_cfg_where(model, NULL, buf, sizeof buf), want);
    /* A missing key: where the group is. */
    ASSERT_STR(dsnn_cfg_where(model, "absent", buf, sizeof buf), want);

    CU_ASSERT_EQUAL(dsnn_cfg_count(deep), 2);
    ASSERT_STR(dsnn_cfg_child_name(deep, 0), "x");
    ASSERT_STR(dsnn_cfg_child_name(deep, 1), "y");
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_cfg_child(deep, 0)), DSNN_CFG_STRING);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_cfg_child(deep, 1)), DSNN_CFG_INT);
    CU_ASSERT_EQUAL(dsnn_cfg_count(NULL), 0);
    CU_ASSERT_EQUAL(dsnn_cfg_count(dsnn_config_file_lookup(f, "model.steps")), 0);

    static const struct {
        const char *path;
        enum dsnn_cfg_type type;
    } types[] = {
        {"model.steps", DSNN_CFG_INT},       {"model.big", DSNN_CFG_INT},
        {"model.rate", DSNN_CFG_FLOAT},      {"model.flag", DSNN_CFG_BOOL},
        {"model.alg", DSNN_CFG_STRING},      {"model.sizes", DSNN_CFG_ARRAY},
        {"model.sizes_list", DSNN_CFG_LIST}, {"model.sub", DSNN_CFG_GROUP},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const struct dsnn_cfg *c = dsnn_config_file_lookup(f, types[i].path);
        CU_ASSERT_PTR_NOT_NULL(c);
        CU_ASSERT_EQUAL(dsnn_cfg_type(c), types[i].type);
        ASSERT_STR(dsnn_cfg_name(c), strrchr(types[i].path, '.') + 1);
    }
    CU_ASSERT_PTR_NULL(dsnn_config_file_lookup(f, "model.absent"));
    CU_ASSERT_PTR_NULL(dsnn_config_file_lookup(NULL, "model"));
    CU_ASSERT_EQUAL(dsnn_cfg_type(NULL), DSNN_CFG_NONE);
    CU_ASSERT_PTR_NULL(dsnn_cfg_name(NULL));
    /* Elements of arrays are reachable as children. */
    const struct dsnn_cfg *sizes = dsnn_config_file_lookup(f, "model.sizes");
    CU_ASSERT_EQUAL(dsnn_cfg_count(sizes), 3);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_cfg_child(sizes, 2)), DSNN_CFG_INT);
    CU_ASSERT_PTR_NULL(dsnn_cfg_child_name(sizes, 0));
    dsnn_config_file_free(f);
}

static void test_paths_in_lists(void)
{
    /* Keys inside groups that are elements of a list: the message shows the whole path. */
    const char *text = "model = {\n"
                       "  layers = (\n"
                       "    { size = 10; },\n"
                       "    { size = \"big\"; }\n"
                       "  );\n"
                       "};\n";
    struct dsnn_config_file *f = parse(text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *layers = dsnn_config_file_lookup(f, "model.layers");
    CU_ASSERT_EQUAL(dsnn_cfg_type(layers), DSNN_CFG_LIST);
    const struct dsnn_cfg *l0 = dsnn_cfg_child(layers, 0), *l1 = dsnn_cfg_child(layers, 1);
    ASSERT_STR(dsnn_cfg_path(layers), "model.layers");
    ASSERT_STR(dsnn_cfg_path(l0), "model.layers[0]");
    ASSERT_STR(dsnn_cfg_path(l1), "model.layers[1]");
    struct dsnn_error err = {0};
    int64_t i = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int(l0, "size", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 10);
    CU_ASSERT_EQUAL(dsnn_cfg_int(l1, "size", 0, &i, &err), DSNN_ERR_CONFIG);
    ASSERT_STR(err.msg, "exp.cfg:4: key 'model.layers[1].size': expected an integer, got a string");
    /* Elements of arrays. */
    dsnn_config_file_free(f);
    f = parse("a = { b = [1, 2, 3]; };\n", "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    ASSERT_STR(dsnn_cfg_path(dsnn_cfg_child(dsnn_config_file_lookup(f, "a.b"), 2)), "a.b[2]");
    dsnn_config_file_free(f);

    /* A path longer than the buffer is cut, not overflowed. */
    char text2[4096];
    size_t len = 0;
    for (int d = 0; d < 40; d++)
        len += (size_t)snprintf(text2 + len, sizeof text2 - len, "group_number_%02d = {", d);
    len += (size_t)snprintf(text2 + len, sizeof text2 - len, " x = \"s\";");
    for (int d = 0; d < 40; d++)
        len += (size_t)snprintf(text2 + len, sizeof text2 - len, " };");
    f = parse(text2, "deep.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *g = dsnn_config_file_root(f);
    for (int d = 0; d < 40; d++) {
        char name[32];
        snprintf(name, sizeof name, "group_number_%02d", d);
        g = dsnn_cfg_group(g, name);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    const char *path = dsnn_cfg_path(g);
    CU_ASSERT(strlen(path) > 200 && strlen(path) < 256);
    CU_ASSERT_EQUAL(strncmp(path, "group_number_00.group_number_01.", 32), 0);
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_cfg_int(g, "x", 0, &i, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "deep.cfg:1: key 'group_number_00.group_number_01.");
    ASSERT_HAS(err.msg, "expected an integer, got a string");
    dsnn_config_file_free(f);
}

/* ---- dsnn_config_file_set ---- */

static void render_text(const struct dsnn_cfg *c, char *buf, size_t size)
{
    dsnn_cfg_to_text(c, buf, size);
}

static void test_set_scalars(void)
{
    struct dsnn_config_file *f = parse("model = { lr = 0.1; keep = 1; };\n", "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct dsnn_error err = {0};
    char buf[256];

    /* Replace a value, also with one of another type. */
    struct dsnn_value v = {.type = DSNN_VALUE_FLOAT, .u.f = 0.02};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.lr", &v, &err), DSNN_OK);
    const struct dsnn_cfg *c = dsnn_config_file_lookup(f, "model.lr");
    CU_ASSERT_EQUAL(dsnn_cfg_type(c), DSNN_CFG_FLOAT);
    double d = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_float(dsnn_config_file_lookup(f, "model"), "lr", 0, &d, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(d, 0.02);
    v = (struct dsnn_value){.type = DSNN_VALUE_STRING, .u.s = "Adam"};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.lr", &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_config_file_lookup(f, "model.lr")), DSNN_CFG_STRING);
    /* Exactly one "lr" remains, the other key untouched. */
    CU_ASSERT_EQUAL(dsnn_cfg_count(dsnn_config_file_lookup(f, "model")), 2);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_config_file_lookup(f, "model.keep")), DSNN_CFG_INT);

    /* Creating groups as needed. */
    v = (struct dsnn_value){.type = DSNN_VALUE_INT, .u.i = 5000000000LL};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "a.b.c.n", &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_config_file_lookup(f, "a")), DSNN_CFG_GROUP);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_config_file_lookup(f, "a.b.c")), DSNN_CFG_GROUP);
    int64_t i = 0;
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_config_file_lookup(f, "a.b.c"), "n", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, 5000000000LL);
    ASSERT_STR(dsnn_cfg_path(dsnn_config_file_lookup(f, "a.b.c")), "a.b.c");
    v = (struct dsnn_value){.type = DSNN_VALUE_BOOL, .u.b = true};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.new_flag", &v, &err), DSNN_OK);
    bool b = false;
    CU_ASSERT_EQUAL(dsnn_cfg_bool(dsnn_config_file_lookup(f, "model"), "new_flag", false, &b, &err),
                    DSNN_OK);
    CU_ASSERT_TRUE(b);
    /* A top-level key. */
    v = (struct dsnn_value){.type = DSNN_VALUE_INT, .u.i = -4};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "top", &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_cfg_int(dsnn_config_file_root(f), "top", 0, &i, &err), DSNN_OK);
    CU_ASSERT_EQUAL(i, -4);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);

    /* (A replaced key moves to the end of its group: libconfig cannot insert in place.) */
    render_text(dsnn_config_file_root(f), buf, sizeof buf);
    ASSERT_STR(buf, "{ model = { keep = 1; lr = \"Adam\"; new_flag = true; }; "
                    "a = { b = { c = { n = 5000000000L; }; }; }; top = -4; }");

    /* Errors: a path through a scalar, an empty path, a bad name. */
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.keep.x", &v, &err), DSNN_ERR_CONFIG);
    ASSERT_HAS(err.msg, "model.keep.x");
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "", &v, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, NULL, &v, &err), DSNN_ERR_INVALID);
    memset(&err, 0, sizeof err);
    CU_ASSERT_NOT_EQUAL(dsnn_config_file_set(f, "model.9bad name", &v, &err), DSNN_OK);
    ASSERT_HAS(err.msg, "9bad name");
    dsnn_config_file_free(f);
}

static void test_set_deep_copy(void)
{
    /* The source of the values is another configuration, freed before the target is read. */
    struct dsnn_config_file *src =
        parse("grid = {\n"
              "  sizes = [100, 200];\n"
              "  choices = ([100], [200, 200], [300, 300, 300]);\n"
              "  mixed = (1, \"two\", 3.5, true, [4, 5], { x = 6; });\n"
              "  group = { a = 1; inner = { b = [0.5, 1.5]; c = \"s\"; }; l = (1, 2); };\n"
              "  floats = [0.5, 1.0];\n"
              "};\n",
              "src.cfg");
    struct dsnn_config_file *dst = parse("model = { sizes = 3; other = \"x\"; };\n", "dst.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dst);
    struct dsnn_error err = {0};
    static const struct {
        const char *from, *to, *text;
    } cases[] = {
        {"grid.sizes", "model.sizes", "[100, 200]"},
        {"grid.choices", "model.choices", "([100], [200, 200], [300, 300, 300])"},
        {"grid.mixed", "network.mixed", "(1, \"two\", 3.5, true, [4, 5], { x = 6; })"},
        {"grid.group", "model.group",
         "{ a = 1; inner = { b = [0.5, 1.5]; c = \"s\"; }; l = (1, 2); }"},
        {"grid.floats", "model.floats", "[0.5, 1.0]"},
    };
    size_t nc = sizeof cases / sizeof cases[0];
    for (size_t k = 0; k < nc; k++) {
        struct dsnn_value v = {.type = DSNN_VALUE_CFG,
                               .u.cfg = dsnn_config_file_lookup(src, cases[k].from)};
        CU_ASSERT_PTR_NOT_NULL(v.u.cfg);
        CU_ASSERT_EQUAL(dsnn_config_file_set(dst, cases[k].to, &v, &err), DSNN_OK);
    }
    /* An element of a list (itself an array), as the grid plugin proposes it. */
    const struct dsnn_cfg *choices = dsnn_config_file_lookup(src, "grid.choices");
    struct dsnn_value v = {.type = DSNN_VALUE_CFG, .u.cfg = dsnn_cfg_child(choices, 1)};
    CU_ASSERT_EQUAL(dsnn_config_file_set(dst, "model.hidden", &v, &err), DSNN_OK);
    /* A scalar setting. */
    v.u.cfg = dsnn_cfg_child(dsnn_config_file_lookup(src, "grid.floats"), 0);
    CU_ASSERT_EQUAL(dsnn_config_file_set(dst, "model.lr", &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);
    dsnn_config_file_free(src);

    char buf[512];
    for (size_t k = 0; k < nc; k++) {
        render_text(dsnn_config_file_lookup(dst, cases[k].to), buf, sizeof buf);
        ASSERT_STR(buf, cases[k].text);
    }
    render_text(dsnn_config_file_lookup(dst, "model.hidden"), buf, sizeof buf);
    ASSERT_STR(buf, "[200, 200]");
    render_text(dsnn_config_file_lookup(dst, "model.lr"), buf, sizeof buf);
    ASSERT_STR(buf, "0.5");
    /* Typed getters read the copies. */
    int64_t iv[4];
    size_t n = 0;
    const struct dsnn_cfg *model = dsnn_config_file_lookup(dst, "model");
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "hidden", iv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && iv[0] == 200 && iv[1] == 200);
    CU_ASSERT_EQUAL(dsnn_cfg_int_array(model, "sizes", iv, 4, &n, &err), DSNN_OK);
    CU_ASSERT(n == 2 && iv[0] == 100 && iv[1] == 200);
    double d = 0;
    CU_ASSERT_EQUAL(
        dsnn_cfg_float(dsnn_config_file_lookup(dst, "model.group.inner"), "b", 0, &d, &err),
        DSNN_ERR_CONFIG); /* an array, not a number */
    ASSERT_STR(dsnn_cfg_path(dsnn_config_file_lookup(dst, "model.group.inner")),
               "model.group.inner");

    /* The whole result parses back to the same tree. */
    char whole[2048], again[2048];
    dsnn_cfg_to_text(dsnn_config_file_root(dst), whole, sizeof whole);
    /* The root renders as "{ ... }": strip the braces to get a file. */
    char file[2048];
    snprintf(file, sizeof file, "%.*s", (int)strlen(whole) - 2, whole + 1);
    struct dsnn_config_file *re = parse(file, "re.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(re);
    dsnn_cfg_to_text(dsnn_config_file_root(re), again, sizeof again);
    ASSERT_STR(again, whole);
    dsnn_config_file_free(re);
    dsnn_config_file_free(dst);
}

static void test_set_from_same_file(void)
{
    /* Values taken from the configuration being changed: the setting itself, an element of the
     * setting being replaced, an ancestor of the new setting. */
    struct dsnn_config_file *f =
        parse("model = { sizes = ([1, 2], [3]); lr = 0.5; sub = { a = 1; }; };\n", "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct dsnn_error err = {0};
    char buf[512];
    struct dsnn_value v = {.type = DSNN_VALUE_CFG, .u.cfg = dsnn_config_file_lookup(f, "model.lr")};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.lr", &v, &err), DSNN_OK);
    v.u.cfg = dsnn_cfg_child(dsnn_config_file_lookup(f, "model.sizes"), 1);
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.sizes", &v, &err), DSNN_OK);
    v.u.cfg = dsnn_config_file_lookup(f, "model.sub");
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.sub.copy", &v, &err), DSNN_OK);
    CU_ASSERT_EQUAL(err.status, DSNN_OK);
    dsnn_cfg_to_text(dsnn_config_file_lookup(f, "model"), buf, sizeof buf);
    ASSERT_STR(buf, "{ sub = { a = 1; copy = { a = 1; }; }; lr = 0.5; sizes = [3]; }");
    /* A bad value type leaves the old setting in place. */
    struct dsnn_value bad = {.type = (enum dsnn_value_type)99};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.lr", &bad, &err), DSNN_ERR_INVALID);
    CU_ASSERT_EQUAL(dsnn_cfg_type(dsnn_config_file_lookup(f, "model.lr")), DSNN_CFG_FLOAT);
    dsnn_config_file_free(f);
}

/* ---- rendering ---- */

static void test_to_json_text(void)
{
    const char *text =
        "g = { a = 1; b = [1, 2]; c = \"q\\\"x\\\\y\\n\\tz\"; d = { e = true; f = false; };\n"
        "      h = 0.5; i = (1, \"s\", [2.5]); j = 1.0; k = 1e-08; l = -3; m = []; n = ();\n"
        "      o = 5000000000L; p = 2.5e+20; };\n";
    struct dsnn_config_file *f = parse(text, "r.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *g = dsnn_config_file_lookup(f, "g");
    char buf[1024];
    size_t n = dsnn_cfg_to_json(g, buf, sizeof buf);
    const char *json = "{\"a\": 1, \"b\": [1, 2], \"c\": \"q\\\"x\\\\y\\n\\tz\", "
                       "\"d\": {\"e\": true, \"f\": false}, \"h\": 0.5, \"i\": [1, \"s\", [2.5]], "
                       "\"j\": 1, \"k\": 1e-08, \"l\": -3, \"m\": [], \"n\": [], "
                       "\"o\": 5000000000, \"p\": 2.5e+20}";
    ASSERT_STR(buf, json);
    CU_ASSERT_EQUAL(n, strlen(json));
    n = dsnn_cfg_to_text(g, buf, sizeof buf);
    const char *txt = "{ a = 1; b = [1, 2]; c = \"q\\\"x\\\\y\\n\\tz\"; "
                      "d = { e = true; f = false; }; "
                      "h = 0.5; i = (1, \"s\", [2.5]); j = 1.0; k = 1e-08; l = -3; m = []; n = (); "
                      "o = 5000000000L; p = 2.5e+20; }";
    ASSERT_STR(buf, txt);
    CU_ASSERT_EQUAL(n, strlen(txt));

    /* snprintf semantics: the needed length, a NUL-terminated prefix. */
    char small[8];
    memset(small, 'x', sizeof small);
    n = dsnn_cfg_to_json(g, small, sizeof small);
    CU_ASSERT_EQUAL(n, strlen(json));
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_EQUAL(strncmp(small, json, sizeof small - 1), 0);
    CU_ASSERT_EQUAL(dsnn_cfg_to_text(g, NULL, 0), strlen(txt));
    CU_ASSERT_EQUAL(dsnn_cfg_to_json(NULL, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "");

    /* Scalars alone. */
    dsnn_cfg_to_json(dsnn_config_file_lookup(f, "g.c"), buf, sizeof buf);
    ASSERT_STR(buf, "\"q\\\"x\\\\y\\n\\tz\"");
    dsnn_cfg_to_text(dsnn_config_file_lookup(f, "g.j"), buf, sizeof buf);
    ASSERT_STR(buf, "1.0");
    dsnn_config_file_free(f);
}

static void test_value_json(void)
{
    char buf[128];
    struct dsnn_value v = {.type = DSNN_VALUE_INT, .u.i = -12};
    CU_ASSERT_EQUAL(dsnn_value_to_json(&v, buf, sizeof buf), 3);
    ASSERT_STR(buf, "-12");
    v = (struct dsnn_value){.type = DSNN_VALUE_FLOAT, .u.f = 2.0};
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "2");
    dsnn_value_to_text(&v, buf, sizeof buf);
    ASSERT_STR(buf, "2.0");
    v.u.f = 0.1;
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "0.1");
    v.u.f = NAN;
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "null");
    v.u.f = INFINITY;
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "null");
    v = (struct dsnn_value){.type = DSNN_VALUE_BOOL, .u.b = false};
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "false");
    v = (struct dsnn_value){.type = DSNN_VALUE_STRING, .u.s = "a\"b\x01"};
    dsnn_value_to_json(&v, buf, sizeof buf);
    ASSERT_STR(buf, "\"a\\\"b\\u0001\"");
    v = (struct dsnn_value){.type = DSNN_VALUE_CFG, .u.cfg = NULL};
    CU_ASSERT_EQUAL(dsnn_value_to_json(&v, buf, sizeof buf), 0);
}

/* value -> libconfig text -> parse -> the same value. */
static void round_trip(const struct dsnn_value *v)
{
    char text[1024], file[1100];
    size_t n = dsnn_value_to_text(v, text, sizeof text);
    CU_ASSERT_EQUAL(n, strlen(text));
    snprintf(file, sizeof file, "v = %s;\n", text);
    struct dsnn_config_file *f = NULL;
    struct dsnn_error err = {0};
    enum dsnn_status st = dsnn_config_file_parse(file, "rt.cfg", &f, &err);
    if (st != DSNN_OK)
        fprintf(stderr, "\n    cannot parse back \"%s\": %s\n", file, err.msg);
    CU_ASSERT_EQUAL_FATAL(st, DSNN_OK);
    const struct dsnn_cfg *root = dsnn_config_file_root(f);
    const struct dsnn_cfg *c = dsnn_config_file_lookup(f, "v");
    bool same = false;
    switch (v->type) {
    case DSNN_VALUE_INT: {
        int64_t i = 0;
        same = dsnn_cfg_type(c) == DSNN_CFG_INT &&
               dsnn_cfg_int(root, "v", 0, &i, &err) == DSNN_OK && i == v->u.i;
        break;
    }
    case DSNN_VALUE_FLOAT: {
        double d = 0;
        same = dsnn_cfg_type(c) == DSNN_CFG_FLOAT &&
               dsnn_cfg_float(root, "v", 0, &d, &err) == DSNN_OK &&
               memcmp(&d, &v->u.f, sizeof d) == 0;
        break;
    }
    case DSNN_VALUE_BOOL: {
        bool b = !v->u.b;
        same = dsnn_cfg_bool(root, "v", b, &b, &err) == DSNN_OK && b == v->u.b;
        break;
    }
    case DSNN_VALUE_STRING: {
        const char *s = NULL;
        same = dsnn_cfg_string(root, "v", NULL, &s, &err) == DSNN_OK && s && strcmp(s, v->u.s) == 0;
        break;
    }
    case DSNN_VALUE_CFG: {
        char a[1024], b[1024];
        dsnn_cfg_to_json(v->u.cfg, a, sizeof a);
        dsnn_cfg_to_json(c, b, sizeof b);
        same = strcmp(a, b) == 0 && dsnn_cfg_type(c) == dsnn_cfg_type(v->u.cfg);
        break;
    }
    }
    if (!same)
        fprintf(stderr, "\n    value did not survive the round trip through \"%s\"\n", text);
    CU_ASSERT_TRUE(same);
    dsnn_config_file_free(f);
}

static void test_value_text_round_trip(void)
{
    static const int64_t ints[] = {0,
                                   1,
                                   -1,
                                   42,
                                   2147483647,
                                   -2147483648LL,
                                   2147483648LL,
                                   -2147483649LL,
                                   5000000000LL,
                                   INT64_MAX,
                                   INT64_MIN + 1};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct dsnn_value v = {.type = DSNN_VALUE_INT, .u.i = ints[i]};
        round_trip(&v);
    }
    static const double floats[] = {0.0,     -0.0,        0.1,
                                    1.0,     3.0,         -2.5,
                                    1e-8,    1e20,        1e300,
                                    1.0 / 3, 123456789.0, 2.2250738585072014e-308,
                                    0.02,    4.9e-324,    1.7976931348623157e308};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        struct dsnn_value v = {.type = DSNN_VALUE_FLOAT, .u.f = floats[i]};
        round_trip(&v);
    }
    struct dsnn_value v = {.type = DSNN_VALUE_BOOL, .u.b = true};
    round_trip(&v);
    v.u.b = false;
    round_trip(&v);
    static const char *const strings[] = {
        "",         "SGD",         "with \"quotes\"", "back\\slash", "new\nline\ttab",
        "cr\rff\f", "ctl\x01\x1f", "utf8 \xc3\xa9"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        v = (struct dsnn_value){.type = DSNN_VALUE_STRING, .u.s = strings[i]};
        round_trip(&v);
    }
    struct dsnn_config_file *f =
        parse("a = [1, 2];\nb = ([100], [200, 200]);\nc = { x = 1; y = { z = \"s\"; }; };\n"
              "d = [0.5, 2.0];\ne = (1, \"x\", true, 2.5, { q = [3L]; });\nf = [];\n"
              "g = [5000000000L, 1L];\n",
              "src.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct dsnn_cfg *root = dsnn_config_file_root(f);
    for (size_t i = 0; i < dsnn_cfg_count(root); i++) {
        v = (struct dsnn_value){.type = DSNN_VALUE_CFG, .u.cfg = dsnn_cfg_child(root, i)};
        round_trip(&v);
    }
    dsnn_config_file_free(f);
}

static void test_file_write(void)
{
    struct dsnn_config_file *f = parse(k_text, "exp.cfg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct dsnn_value v = {.type = DSNN_VALUE_FLOAT, .u.f = 0.02};
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_config_file_set(f, "model.on_perc", &v, &err), DSNN_OK);
    char path[512];
    CU_ASSERT_FATAL(write_temp("", path, sizeof path));
    CU_ASSERT_EQUAL(dsnn_config_file_write(f, path, &err), DSNN_OK);
    struct dsnn_config_file *g = NULL;
    CU_ASSERT_EQUAL_FATAL(dsnn_config_file_load(path, &g, &err), DSNN_OK);
    char a[2048], b[2048];
    dsnn_cfg_to_json(dsnn_config_file_root(f), a, sizeof a);
    dsnn_cfg_to_json(dsnn_config_file_root(g), b, sizeof b);
    ASSERT_STR(b, a);
    dsnn_config_file_free(g);
    unlink(path);
    CU_ASSERT_EQUAL(dsnn_config_file_write(f, "/nonexistent/dir/x.cfg", &err), DSNN_ERR_IO);
    ASSERT_HAS(err.msg, "/nonexistent/dir/x.cfg");
    dsnn_config_file_free(f);
}

/* ---- status and error messages (the carrier of every message above) ---- */

static void test_status_and_errors(void)
{
    CU_ASSERT_STRING_EQUAL(dsnn_status_str(DSNN_OK), "ok");
    CU_ASSERT_STRING_EQUAL(dsnn_status_str(DSNN_ERR_CONFIG), "configuration error");
    CU_ASSERT_STRING_EQUAL(dsnn_status_str(DSNN_ERR_FORMAT), "malformed file");
    CU_ASSERT_STRING_EQUAL(dsnn_status_str((enum dsnn_status)1234), "unknown status");
    for (int s = 0; s <= DSNN_ERR_INTERRUPTED; s++)
        CU_ASSERT_STRING_NOT_EQUAL(dsnn_status_str((enum dsnn_status)s), "unknown status");

    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_error_set(&err, DSNN_ERR_IO, "%s: cannot open: %d", "x.bin", 2),
                    DSNN_ERR_IO);
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_IO);
    ASSERT_STR(err.msg, "x.bin: cannot open: 2");
    CU_ASSERT_EQUAL(dsnn_error_set(NULL, DSNN_ERR_NOMEM, "ignored"), DSNN_ERR_NOMEM);
    CU_ASSERT_EQUAL(dsnn_error_prefix(&err, "trial %d", 3), DSNN_ERR_IO);
    ASSERT_STR(err.msg, "trial 3: x.bin: cannot open: 2");
    CU_ASSERT_EQUAL(err.status, DSNN_ERR_IO);
    CU_ASSERT_EQUAL(dsnn_error_prefix(NULL, "x"), DSNN_ERR_INTERNAL);

    /* Messages longer than the buffer are cut and stay terminated. */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dsnn_error_set(&err, DSNN_ERR_CONFIG, "%s", big);
    CU_ASSERT_EQUAL(strlen(err.msg), DSNN_ERROR_MSG_MAX - 1);
    dsnn_error_set(&err, DSNN_ERR_CONFIG, "tail");
    memset(big, 'p', sizeof big - 1);
    CU_ASSERT_EQUAL(dsnn_error_prefix(&err, "%s", big), DSNN_ERR_CONFIG);
    CU_ASSERT(strlen(err.msg) < DSNN_ERROR_MSG_MAX);
    CU_ASSERT(err.msg[0] == 'p');
    dsnn_error_set(&err, DSNN_ERR_CONFIG, "%s", big);
    CU_ASSERT_EQUAL(dsnn_error_prefix(&err, "ctx"), DSNN_ERR_CONFIG);
    CU_ASSERT(strlen(err.msg) == DSNN_ERROR_MSG_MAX - 1);
    CU_ASSERT_EQUAL(strncmp(err.msg, "ctx: ppp", 8), 0);
}

static CU_TestInfo tests[] = {
    {"parse ok", test_parse_ok},
    {"parse error: NAME:LINE", test_parse_error_name_line},
    {"load errors: PATH:LINE, missing file", test_load_errors},
    {"integer literals beyond 32 bits without L are refused", test_int_literals},
    {"snapshot: @includes expanded once, origins kept, clone", test_snapshot},
    {"snapshot: errors in and of includes", test_snapshot_errors},
    {"rename a setting (key aliases)", test_rename},
    {"type errors (parsed text)", test_type_errors_parsed},
    {"type errors (loaded file)", test_type_errors_loaded},
    {"scalars, defaults, int as float", test_scalars},
    {"arrays", test_arrays},
    {"float or array", test_float_or_array},
    {"enum", test_enum},
    {"check_range", test_check_range},
    {"navigation", test_navigation},
    {"paths through lists, long paths", test_paths_in_lists},
    {"set: scalars, groups created, replace", test_set_scalars},
    {"set: deep copies", test_set_deep_copy},
    {"set: values from the same file", test_set_from_same_file},
    {"cfg_to_json / cfg_to_text", test_to_json_text},
    {"value_to_json", test_value_json},
    {"value_to_text round trip", test_value_text_round_trip},
    {"file write + load", test_file_write},
    {"status names, error messages", test_status_and_errors},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("config", tests)
