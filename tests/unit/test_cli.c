/* tests/unit/test_cli.c - the dsnn-host command line, run as a child process
 * ($DSNN_BUILD_DIR/bin/dsnn-host) against the test plugins of build/test-plugins/<case>/. */
/* realpath() is XSI. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "harness.h"

extern char **environ;

struct result {
    int code; /* exit status, or 128 + signal */
    char out[32768];
    char err[32768];
};

/* $DSNN_BUILD_DIR/test-plugins/<rel>; a few results stay valid at once (one command line). */
static const char *tp(const char *rel)
{
    static char dirs[4][4096];
    static unsigned next;
    char *d = dirs[next++ % 4];
    snprintf(d, sizeof(dirs[0]), "%s/test-plugins/%s", dsnn_test_build_dir(), rel);
    return d;
}

static void slurp(int fd, char *buf, size_t size)
{
    size_t n = 0;
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
}

/* When set, the executable run instead of $DSNN_BUILD_DIR/bin/dsnn-host (a copy elsewhere). */
static const char *g_exe;

/* Runs dsnn-host with the NULL-terminated args; env_set ("NAME=value" or NULL) is added to the
 * environment, env_unset (a name or NULL) removed from it. */
static void run_env(struct result *r, const char *env_set, const char *env_unset, ...)
{
    char exe[4096];
    if (g_exe)
        snprintf(exe, sizeof(exe), "%s", g_exe);
    else
        snprintf(exe, sizeof(exe), "%s/bin/dsnn-host", dsnn_test_build_dir());
    const char *argv[32] = {exe};
    size_t n = 1;
    va_list ap;
    va_start(ap, env_unset);
    for (const char *a; n < 31 && (a = va_arg(ap, const char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;

    char *envp[512];
    size_t ne = 0;
    size_t unset_len = env_unset ? strlen(env_unset) : 0;
    for (char **e = environ; *e && ne < 510; e++) {
        if (env_unset && strncmp(*e, env_unset, unset_len) == 0 && (*e)[unset_len] == '=')
            continue;
        envp[ne++] = *e;
    }
    if (env_set)
        envp[ne++] = (char *)env_set;
    envp[ne] = NULL;

    char out_path[] = "/tmp/dsnn_cli_out_XXXXXX", err_path[] = "/tmp/dsnn_cli_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    CU_ASSERT_FATAL(fo >= 0 && fe >= 0);
    unlink(out_path);
    unlink(err_path);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fo, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fe, STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    slurp(fo, r->out, sizeof(r->out));
    slurp(fe, r->err, sizeof(r->err));
    close(fo);
    close(fe);
}

#define RUN(r, ...) run_env((r), NULL, "DSNN_PLUGIN_PATH", __VA_ARGS__, (const char *)NULL)

static bool has(const char *hay, const char *needle)
{
    bool ok = strstr(hay, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n  expected \"%s\" in:\n%s\n", needle, hay);
    return ok;
}

static struct result R; /* large: not on the stack */

static void test_version(void)
{
    RUN(&R, "--version");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, DSNN_VERSION_STRING));
    char abi[32];
    snprintf(abi, sizeof(abi), "ABI %d.%d", DSNN_ABI_MAJOR, DSNN_ABI_MINOR);
    CU_ASSERT(has(R.out, abi));
    CU_ASSERT_STRING_EQUAL(R.err, "");
}

/* --version names the kernel set in use and OpenBLAS's core; DSNN_ISA forces a set, and one the
 * CPU lacks or an unknown word is exit 2 with a message naming what the CPU has, before any
 * command runs. */
static void test_version_isa(void)
{
    RUN(&R, "--version");
    char want[128];
    snprintf(want, sizeof want, "sparse kernels %s (this CPU has: %s)",
             dsnn_isa_str(dsnn_isa_best()), dsnn_isa_cpu_list());
    if (!getenv("DSNN_ISA"))
        CU_ASSERT(has(R.out, want));
    CU_ASSERT(has(R.out, "OpenBLAS core "));
    for (int i = 0; i < DSNN_ISA_COUNT; i++) {
        enum dsnn_isa isa = (enum dsnn_isa)i;
        char env[64];
        snprintf(env, sizeof env, "DSNN_ISA=%s", dsnn_isa_str(isa));
        run_env(&R, env, "DSNN_ISA", "--version", (const char *)NULL);
        if (dsnn_isa_supported(isa)) {
            CU_ASSERT_EQUAL(R.code, 0);
            snprintf(want, sizeof want, "sparse kernels %s ", dsnn_isa_str(isa));
            CU_ASSERT(has(R.out, want));
        } else {
            CU_ASSERT_EQUAL(R.code, 2);
            CU_ASSERT(has(R.err, env));
            CU_ASSERT(has(R.err, dsnn_isa_cpu_list()));
        }
    }
    run_env(&R, "DSNN_ISA=sse9", "DSNN_ISA", "--version", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "DSNN_ISA=sse9: unknown kernel set"));
    CU_ASSERT(has(R.err, dsnn_isa_cpu_list()));
    CU_ASSERT_STRING_EQUAL(R.out, "");
    /* checked before a command reads anything: not the missing file's exit 3 */
    run_env(&R, "DSNN_ISA=sse9", "DSNN_ISA", "run", "/nonexistent/x.cfg", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 2);
    run_env(&R, "DSNN_ISA=auto", "DSNN_ISA", "--version", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 0);
}

static void test_help(void)
{
    RUN(&R, "--help");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "usage: dsnn-host"));
    CU_ASSERT(has(R.out, "--plugin-dir"));
    CU_ASSERT(has(R.out, "DSNN_PLUGIN_PATH"));
    CU_ASSERT(has(R.out, "Exit codes"));
    CU_ASSERT(has(R.out, "130"));
    CU_ASSERT(has(R.out, "--allow-unsafe-plugins"));
    RUN(&R, "-h");
    CU_ASSERT_EQUAL(R.code, 0);
    RUN(&R, "help");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "Exit codes"));
}

static void test_usage_errors(void)
{
    RUN(&R, "frobnicate");
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "unknown command 'frobnicate'"));
    CU_ASSERT(has(R.err, "--help"));
    RUN(&R, "--no-such-option", "list");
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "unknown option '--no-such-option'"));
    RUN(&R, "--plugin-dir");
    CU_ASSERT_EQUAL(R.code, 2);
    run_env(&R, NULL, "DSNN_PLUGIN_PATH", (const char *)NULL); /* no command */
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "usage:"));
    RUN(&R, "run");
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "missing"));
    RUN(&R, "info");
    CU_ASSERT_EQUAL(R.code, 2);
    RUN(&R, "list", "extra");
    CU_ASSERT_EQUAL(R.code, 2);
    RUN(&R, "list", "--quiet");
    CU_ASSERT_EQUAL(R.code, 2);
    CU_ASSERT(has(R.err, "'run' only"));
    RUN(&R, "--plugin-dir", tp("ok"), "info", "layer/okmodel");
    CU_ASSERT_EQUAL(R.code, 2);
}

static void test_list(void)
{
    RUN(&R, "--plugin-dir", tp("ok"), "list");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, tp("ok")));
    CU_ASSERT(has(R.out, "datasets:"));
    CU_ASSERT(has(R.out, "search strategies:"));
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(has(R.out, "oknet"));
    CU_ASSERT(has(R.out, "okmodel"));
    CU_ASSERT(has(R.out, "oksearch"));
    CU_ASSERT(has(R.out, "crash"));
    CU_ASSERT(has(R.out, "1.0.0"));
    CU_ASSERT(has(R.out, "Gaussian blobs")); /* description */
    CU_ASSERT(has(R.out, "/ok/okdata.so"));  /* file */
    /* grouped by kind: datasets before networks before models before search */
    const char *d = strstr(R.out, "okdata"), *n = strstr(R.out, "oknet"),
               *m = strstr(R.out, "okmodel"), *s = strstr(R.out, "oksearch");
    CU_ASSERT(d && n && m && s && d < n && n < m && m < s);
    CU_ASSERT_STRING_EQUAL(R.err, "");
    /* --plugin-dir=DIR form, and options after the command */
    char opt[4200];
    snprintf(opt, sizeof(opt), "--plugin-dir=%s", tp("ok"));
    RUN(&R, "list", opt);
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "okdata"));
}

static void test_plugin_path_env(void)
{
    char env[4200];
    snprintf(env, sizeof(env), "DSNN_PLUGIN_PATH=%s:%s", tp("ok"), tp("duplicate"));
    run_env(&R, env, NULL, "list", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 4); /* the duplicate directory has a refused file */
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(has(R.out, "dupmodel"));
    CU_ASSERT(has(R.err, "dup_b.so"));
    /* --plugin-dir overrides the environment */
    run_env(&R, env, NULL, "--plugin-dir", tp("ok"), "list", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(!strstr(R.out, "dupmodel"));
}

static void test_default_plugin_dir(void)
{
    /* Without --plugin-dir and DSNN_PLUGIN_PATH: <dir of dsnn-host>/../plugins = build/plugins. */
    RUN(&R, "list");
    char want[4096], canon[4096];
    snprintf(want, sizeof(want), "%s/plugins", dsnn_test_build_dir());
    struct stat st;
    if (stat(want, &st) == 0 && realpath(want, canon)) {
        CU_ASSERT(has(R.out, canon));
    } else {
        CU_ASSERT(has(R.err, "does not exist"));
    }
}

/* The shipped plugins next to one's own: --default-plugins among the --plugin-dir options, an
 * empty element of DSNN_PLUGIN_PATH; either way the default directory is loaded once. */
static void test_default_plugins_too(void)
{
    char want[4096], canon[4096];
    snprintf(want, sizeof(want), "%s/plugins", dsnn_test_build_dir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(want, canon));
    RUN(&R, "--plugin-dir", tp("ok"), "--default-plugins", "list");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(has(R.out, canon));
    CU_ASSERT(has(R.out, "set.so"));
    /* named twice: loaded once (a second load would be duplicate components, exit 4) */
    RUN(&R, "--default-plugins", "--plugin-dir", tp("ok"), "--default-plugins", "list");
    CU_ASSERT_EQUAL(R.code, 0);
    char env[4200];
    snprintf(env, sizeof(env), "DSNN_PLUGIN_PATH=%s:", tp("ok"));
    run_env(&R, env, NULL, "list", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(has(R.out, "set.so"));
    snprintf(env, sizeof(env), "DSNN_PLUGIN_PATH=%s", tp("ok"));
    run_env(&R, env, NULL, "list", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(!has(R.out, "set.so"));
    /* --version names it */
    RUN(&R, "--version");
    CU_ASSERT(has(R.out, "default plugin directory "));
    CU_ASSERT(has(R.out, canon));
}

static void test_info(void)
{
    RUN(&R, "--plugin-dir", tp("ok"), "info", "crash");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "model 'crash'"));
    CU_ASSERT(has(R.out, "1.0.0"));
    CU_ASSERT(has(R.out, "/ok/crash.so"));
    CU_ASSERT(has(R.out, "crash_epoch"));
    CU_ASSERT(has(R.out, "crash_mode"));
    CU_ASSERT(has(R.out, "string"));
    CU_ASSERT(has(R.out, "segv"));            /* a default */
    CU_ASSERT(has(R.out, "at whose start"));  /* a doc */
    CU_ASSERT(has(R.out, "learning_rate"));

    RUN(&R, "--plugin-dir", tp("ok"), "info", "search/oksearch");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "search 'oksearch'"));
    CU_ASSERT(has(R.out, "stop_epoch"));

    RUN(&R, "--plugin-dir", tp("ok"), "info", "okmdel");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "no component named 'okmdel'"));
    CU_ASSERT(has(R.err, "did you mean 'okmodel'"));

    RUN(&R, "--plugin-dir", tp("ok"), "info", "dataset/okmodel");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "available datasets: okdata"));
}

static void test_info_ambiguous(void)
{
    /* A name shared by several kinds prints every match. */
    RUN(&R, "--plugin-dir", tp("ambiguous"), "info", "twin");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "network 'twin' version 0.1.0"));
    CU_ASSERT(has(R.out, "model 'twin' version 0.2.0"));
    CU_ASSERT(has(R.out, "(required)")); /* key without default */
    RUN(&R, "--plugin-dir", tp("ambiguous"), "info", "model/twin");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "model 'twin'"));
    CU_ASSERT(!strstr(R.out, "network 'twin'"));

    /* A refused duplicate is reported (exit 4) but the first provider is still described. */
    RUN(&R, "--plugin-dir", tp("ok"), "--plugin-dir", tp("duplicate"), "info", "dupmodel");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.out, "model 'dupmodel'"));
    CU_ASSERT(has(R.out, "dup_a.so"));
    CU_ASSERT(has(R.err, "dup_b.so"));
}

static void test_bad_abi_dir(void)
{
    RUN(&R, "--plugin-dir", tp("bad_abi_major"), "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "badmajor.so"));
    char p[16], h[16];
    snprintf(p, sizeof(p), "ABI %d.0", DSNN_ABI_MAJOR + 1);
    snprintf(h, sizeof(h), "supports %d.%d", DSNN_ABI_MAJOR, DSNN_ABI_MINOR);
    CU_ASSERT(has(R.err, p));
    CU_ASSERT(has(R.err, h));

    /* run refuses to start when a plugin failed to load */
    RUN(&R, "--plugin-dir", tp("ok"), "--plugin-dir", tp("bad_abi_major"), "run", "x.cfg");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "badmajor.so"));

    RUN(&R, "--plugin-dir", tp("no_entry_symbol"), "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "dsnn_plugin_entry"));
    RUN(&R, "--plugin-dir", tp("not_so"), "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "x.so"));
    RUN(&R, "--plugin-dir", tp("no_such_case"), "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "no_such_case"));
}

/* A key's range from its spec is checked for every trial the search proposes before any trial
 * starts: exit 3 naming file:line and the key, and no trial folder is made (the first trial,
 * whose values are fine, does not run either). */
static void test_range_before_trials(void)
{
    char dir[] = "/tmp/dsnn_cli_range_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char cfg[4200], res[4200], plugins[4200], trial[4300];
    snprintf(cfg, sizeof cfg, "%s/range.cfg", dir);
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(plugins, sizeof plugins, "%s/plugins", dsnn_test_build_dir());
    FILE *f = fopen(cfg, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("experiment = { name = \"range\"; epochs = 1; };\n"
          "dataset = { plugin = \"synthetic\"; n_train = 64; n_test = 32; };\n"
          "network = { plugin = \"mlp\"; hidden_sizes = [8]; };\n"
          "model = { plugin = \"dense\"; };\n"
          "search = { plugin = \"grid\";\n"
          "  grid = { model = { momentum = [0.5, 1.5]; }; }; };\n",
          f);
    fclose(f);
    struct result R;
    RUN(&R, "--plugin-dir", plugins, "run", cfg, "--results", res, "--quiet");
    CU_ASSERT_EQUAL(R.code, 3);
    CU_ASSERT(has(R.err, "key 'model.momentum': 1.5 is out of range: must be in [0, 1]"));
    CU_ASSERT(has(R.err, "range.cfg:"));
    snprintf(trial, sizeof trial, "%s/range/trial_00000", res);
    struct stat st;
    CU_ASSERT(stat(trial, &st) != 0); /* no trial ran, not even the valid first one */
    char rm[4400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(rm), 0);
}


/* ---- unsafe plugin paths and broken shared objects ---- */

/* Copies file src to dst with the given mode (exactly, whatever the umask). */
static void copy_file(const char *src, const char *dst, mode_t mode)
{
    FILE *in = fopen(src, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    unlink(dst);
    int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CU_ASSERT_EQUAL_FATAL(write(fd, buf, n), (ssize_t)n);
    fclose(in);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(chmod(dst, mode), 0);
}

static void rm_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

/* dir/<the ok plugins> with mode 0755 (the directory too). */
static void make_plugin_dir(const char *dir)
{
    static const char *names[] = {"okdata.so", "oknet.so", "okmodel.so", "oksearch.so"};
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(chmod(dir, 0755), 0);
    for (size_t i = 0; i < DSNN_COUNT_OF(names); i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/%s", tp("ok"), names[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        copy_file(src, dst, 0755);
    }
}

/* A truncated or corrupt .so among good ones: `list` lists the good ones and exits 4 naming the
 * broken file and what is wrong, never dies of a signal (it died of SIGBUS); `info` and `run`
 * exit 4 too. */
static void test_broken_so(void)
{
    char tmp[] = "/tmp/dsnn_cli_broken_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char dir[4200], bad[4300], src[4300];
    snprintf(dir, sizeof dir, "%s/plugins", tmp);
    make_plugin_dir(dir);
    snprintf(src, sizeof src, "%s/oknet.so", tp("ok"));
    snprintf(bad, sizeof bad, "%s/oknet.so", dir);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(src, &st), 0);
    size_t size = (size_t)st.st_size;
    /* half; just past the ELF and program headers; all but the last byte; corrupt e_phoff */
    const long cuts[] = {(long)size / 2, 64 + 56 * 4, (long)size - 1, -1};
    const char *why[] = {"ends past the end of the file", "ends past the end of the file",
                         "section header table", "program header table"};
    for (size_t c = 0; c < DSNN_COUNT_OF(cuts); c++) {
        copy_file(src, bad, 0755);
        if (cuts[c] >= 0) {
            CU_ASSERT_EQUAL_FATAL(truncate(bad, cuts[c]), 0);
        } else {
            int fd = open(bad, O_WRONLY);
            CU_ASSERT_FATAL(fd >= 0);
            const unsigned char phoff[8] = {0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
            CU_ASSERT_EQUAL(pwrite(fd, phoff, sizeof phoff, 32), 8); /* e_phoff of Elf64 */
            close(fd);
        }
        RUN(&R, "--plugin-dir", dir, "list");
        CU_ASSERT_EQUAL(R.code, 4);
        CU_ASSERT(has(R.err, bad));
        CU_ASSERT(has(R.err, why[c]));
        CU_ASSERT(has(R.out, "okdata")); /* the good files are still listed */
        CU_ASSERT(!strstr(R.out, "oknet"));
        RUN(&R, "--plugin-dir", dir, "info", "okdata");
        CU_ASSERT_EQUAL(R.code, 4);
        CU_ASSERT(has(R.err, bad));
        RUN(&R, "--plugin-dir", dir, "run", "x.cfg");
        CU_ASSERT_EQUAL(R.code, 4);
        CU_ASSERT(has(R.err, "not running x.cfg"));
    }
    rm_tree(tmp);
}

/* A plugin directory or file writable by group / others, or owned by another user, is refused
 * (exit 4, naming the path and why) by run, resume, list and info, whether it comes from
 * --plugin-dir, $DSNN_PLUGIN_PATH or the default <bin>/../plugins; --allow-unsafe-plugins loads
 * it with a warning. */
static void test_unsafe_plugin_paths(void)
{
    char tmp[] = "/tmp/dsnn_cli_unsafe_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(tmp) != NULL);
    char dir[4200], file[4300], env[4300];
    snprintf(dir, sizeof dir, "%s/plugins", tmp);
    snprintf(file, sizeof file, "%s/okmodel.so", dir);
    snprintf(env, sizeof env, "DSNN_PLUGIN_PATH=%s", dir);
    make_plugin_dir(dir);
    RUN(&R, "--plugin-dir", dir, "list");
    CU_ASSERT_EQUAL(R.code, 0);

    CU_ASSERT_EQUAL(chmod(dir, 0777), 0);
    RUN(&R, "--plugin-dir", dir, "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, dir));
    CU_ASSERT(has(R.err, "writable by group and others (mode 0777)"));
    CU_ASSERT(has(R.err, "--allow-unsafe-plugins"));
    CU_ASSERT(!strstr(R.out, "okdata"));
    RUN(&R, "--plugin-dir", dir, "info", "okdata");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "writable by group and others"));
    RUN(&R, "--plugin-dir", dir, "run", "x.cfg");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "writable by group and others"));
    RUN(&R, "--plugin-dir", dir, "resume", tmp);
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "writable by group and others"));
    run_env(&R, env, NULL, "list", (const char *)NULL);
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, dir));
    /* the override: loaded, with a warning naming the directory */
    RUN(&R, "--allow-unsafe-plugins", "--plugin-dir", dir, "list");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(has(R.err, "warning"));
    CU_ASSERT(has(R.err, dir));
    RUN(&R, "--plugin-dir", dir, "info", "okmodel", "--allow-unsafe-plugins");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT_EQUAL(chmod(dir, 0755), 0);

    /* one file writable by group: that file is refused, the others load */
    CU_ASSERT_EQUAL(chmod(file, 0775), 0);
    RUN(&R, "--plugin-dir", dir, "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, file));
    CU_ASSERT(has(R.err, "writable by group (mode 0775)"));
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT(!strstr(R.out, "okmodel"));
    CU_ASSERT_EQUAL(chmod(file, 0755), 0);
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL(chown(file, 65534, 65534), 0);
        RUN(&R, "--plugin-dir", dir, "list");
        CU_ASSERT_EQUAL(R.code, 4);
        CU_ASSERT(has(R.err, "owned by uid 65534"));
        CU_ASSERT_EQUAL(chown(file, 0, 0), 0);
    }

    /* the default directory, next to a copy of the executable: <tmp>/bin/../plugins */
    char bin[4200], exe[4300], src[4300];
    snprintf(bin, sizeof bin, "%s/bin", tmp);
    CU_ASSERT_EQUAL_FATAL(mkdir(bin, 0755), 0);
    snprintf(exe, sizeof exe, "%s/dsnn-host", bin);
    snprintf(src, sizeof src, "%s/bin/dsnn-host", dsnn_test_build_dir());
    copy_file(src, exe, 0755);
    g_exe = exe;
    RUN(&R, "list");
    CU_ASSERT_EQUAL(R.code, 0);
    CU_ASSERT(has(R.out, "okdata"));
    CU_ASSERT_EQUAL(chmod(dir, 0757), 0);
    RUN(&R, "list");
    CU_ASSERT_EQUAL(R.code, 4);
    CU_ASSERT(has(R.err, "writable by others (mode 0757)"));
    g_exe = NULL;
    rm_tree(tmp);
}

static CU_TestInfo tests[] = {
    {"--version", test_version},
    {"--version names the kernel set; DSNN_ISA", test_version_isa},
    {"--help", test_help},
    {"usage errors exit 2", test_usage_errors},
    {"list", test_list},
    {"DSNN_PLUGIN_PATH", test_plugin_path_env},
    {"--default-plugins, DSNN_PLUGIN_PATH=DIR:", test_default_plugins_too},
    {"default plugin dir", test_default_plugin_dir},
    {"info", test_info},
    {"info of a name", test_info_ambiguous},
    {"plugin errors exit 4", test_bad_abi_dir},
    {"a key's range is checked before any trial (exit 3)", test_range_before_trials},
    {"a broken .so is refused, not a SIGBUS (exit 4)", test_broken_so},
    {"unsafe plugin paths are refused (exit 4)", test_unsafe_plugin_paths},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("cli", tests)
