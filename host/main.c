/* host/main.c - the dsnn-host command line: option parsing, plugin directories, and the
 * commands run / resume / evaluate / list / info / report. Only this file decides to exit. */
/* realpath() is XSI. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "evaluate.h"
#include "registry.h"
#include "report.h"
#include "runner.h"

#define PROG "dsnn-host"
#define MAX_PLUGIN_DIRS 64
/* The installed plugin directory relative to the installed executable's directory (CMake sets
 * it from the install layout: <bindir> -> <libdir>/dsnn/plugins). */
#ifndef DSNN_PLUGIN_DIR_FROM_BIN
#define DSNN_PLUGIN_DIR_FROM_BIN "../lib/dsnn/plugins"
#endif


static void print_usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--plugin-dir DIR]... [--default-plugins] [--allow-unsafe-plugins]\n"
            "                 COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  run CFG [--results DIR] [--quiet] [--overwrite]\n"
            "                     run the experiment described by the libconfig file CFG\n"
            "  resume DIR [--quiet]\n"
            "                     continue the interrupted experiment of the results\n"
            "                     directory DIR (e.g. results/<name>): finished trials are\n"
            "                     kept, unfinished ones go on from their last checkpoint\n"
            "  evaluate TRIAL_DIR [--noise-levels L,...] [--repeats N] [--checkpoint FILE]\n"
            "                     nupic's noise-robustness test of a trial of a results\n"
            "                     directory (results/<experiment>/trial_NNNNN): its\n"
            "                     configuration rebuilt, its checkpoint (default\n"
            "                     TRIAL_DIR/checkpoint.bin) evaluated on the dataset's noise\n"
            "                     split at each level L (increasing, in [0, 1]; default\n"
            "                     0,0.025,...,0.2 as nupic's noise_tests.py), N times each\n"
            "                     (default 1, at most 1000) with noise seeds derived from the\n"
            "                     trial's; prints accuracy and loss (mean, std) per level and\n"
            "                     writes TRIAL_DIR/noise_eval.json (level 0: the test split)\n"
            "  list               list the loaded components (datasets, networks, models,\n"
            "                     search strategies) with version, description and file\n"
            "  info NAME          describe a component and its configuration keys; NAME may\n"
            "                     be KIND/NAME (e.g. model/set) when several kinds share it\n"
            "  report DIR [--group-by KEY]... [--html FILE]\n"
            "                     summarise the results directory DIR (results/<experiment>):\n"
            "                     a table per trial (status, epochs, best and last metric,\n"
            "                     time, parameters), with --group-by mean +- std per group of\n"
            "                     equal parameter KEY values (e.g. model.on_perc; 'all': every\n"
            "                     parameter but the seed), and an HTML page with SVG plots\n"
            "                     (default DIR/report.html)\n"
            "  help               print this help\n"
            "\n"
            "Options:\n"
            "  --plugin-dir DIR   load every *.so file of DIR (repeatable, in the order given).\n"
            "                     Without it: the directories of $DSNN_PLUGIN_PATH\n"
            "                     (colon-separated; an empty element is the default\n"
            "                     directory), else the default directory: <bin>/../plugins\n"
            "                     in a build tree (build/plugins), <bin>/" DSNN_PLUGIN_DIR_FROM_BIN "\n"
            "                     installed (--version prints it)\n"
            "  --default-plugins  load the default plugin directory too, at this place among\n"
            "                     the --plugin-dir options (your plugins and the shipped ones)\n"
            "                     A plugin directory or file\n"
            "                     that is writable by group or others, or owned by another\n"
            "                     user than you or root, is refused (exit 4); so is a file\n"
            "                     that is not a valid shared object (truncated, corrupt)\n"
            "  --allow-unsafe-plugins\n"
            "                     load such unsafe directories and files anyway, with a\n"
            "                     warning naming each\n"
            "  --results DIR      (run) root directory of the results (default: 'results',\n"
            "                     or experiment.results_dir of the config)\n"
            "  -q, --quiet        (run, resume) no progress on stdout (a table refreshed in\n"
            "                     place on a terminal, else one line per epoch); (evaluate)\n"
            "                     no table\n"
            "  --overwrite        (run) replace an existing results/<experiment>\n"
            "  -h, --help         print this help\n"
            "  --version          print the dsnn version, the plugin ABI version, the sparse\n"
            "                     kernel set in use and OpenBLAS's core\n"
            "\n"
            "Environment:\n"
            "  DSNN_ISA=scalar|avx2|avx512|auto   force a sparse kernel set (default: the\n"
            "                     best this CPU has); one the CPU lacks is an error (exit 2)\n"
            "  OPENBLAS_CORETYPE  OpenBLAS's kernel choice for the dense layers (unset: its own)\n"
            "\n"
            "Exit codes:\n"
            "  %3d  success (all trials terminated normally)\n"
            "  %3d  the experiment ran, but at least one trial ended in error (evaluate: a\n"
            "       plugin failed or crashed in the evaluation)\n"
            "  %3d  bad command line (or DSNN_ISA)\n"
            "  %3d  configuration file invalid (evaluate: the checkpoint is of another\n"
            "       trial, configuration or model; the dataset has no noise split)\n"
            "  %3d  a plugin could not be loaded, or a named plugin is missing\n"
            "  %3d  results directory or data could not be read / written (evaluate: not a\n"
            "       trial folder, no checkpoint)\n"
            "  %3d  interrupted by SIGINT / SIGTERM ('" PROG " resume DIR' continues)\n",
            DSNN_EXIT_OK, DSNN_EXIT_TRIALS_FAILED, DSNN_EXIT_USAGE, DSNN_EXIT_CONFIG,
            DSNN_EXIT_PLUGIN, DSNN_EXIT_IO, DSNN_EXIT_INTERRUPTED);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
    return DSNN_EXIT_USAGE;
}

/* ---- plugin directories ---- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The default plugin directory into buf (canonical if it exists): in a build tree
 * <bin>/../plugins; installed, <bin>/DSNN_PLUGIN_DIR_FROM_BIN (e.g. /usr/lib/x86_64-linux-gnu/
 * dsnn/plugins for /usr/bin/dsnn-host). Relative to the executable, so that an installed tree can be
 * moved (cmake --install --prefix, dpkg). */
static bool default_plugin_dir(const char *argv0, char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
    } else if (argv0 && strchr(argv0, '/')) {
        snprintf(exe, sizeof(exe), "%s", argv0);
    } else {
        return false;
    }
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = '\0';
    char raw[PATH_MAX + 64];
    snprintf(raw, sizeof(raw), "%s/../plugins", exe[0] ? exe : "");
    if (!is_dir(raw)) {
        char installed[PATH_MAX + 64];
        snprintf(installed, sizeof(installed), "%s/%s", exe[0] ? exe : "",
                 DSNN_PLUGIN_DIR_FROM_BIN);
        memcpy(raw, installed, sizeof(raw));
    }
    char canon[PATH_MAX];
    const char *use = realpath(raw, canon) ? canon : raw;
    if (strlen(use) >= size)
        return false;
    memcpy(buf, use, strlen(use) + 1);
    return true;
}

/* What stands for the default plugin directory in a list of directories: --default-plugins on
 * the command line, an empty element of DSNN_PLUGIN_PATH ("DIR:" or ":DIR", as MANPATH). */
static const char default_marker[] = "";

/* Loads the plugin directories; prints every load error and warning. Returns false if any
 * failed. The directories: those of --plugin-dir / --default-plugins in their order, else those
 * of $DSNN_PLUGIN_PATH, else the default directory. */
static bool load_plugins(struct dsnn_registry *reg, const char *const *dirs, size_t n_dirs,
                         const char *argv0, bool allow_unsafe)
{
    dsnn_registry_set_allow_unsafe(reg, allow_unsafe);
    static char env_copy[8192];
    const char *list[MAX_PLUGIN_DIRS];
    size_t n = 0;
    if (n_dirs > 0) {
        for (size_t i = 0; i < n_dirs; i++)
            list[n++] = dirs[i];
    } else {
        const char *env = getenv("DSNN_PLUGIN_PATH");
        if (env && *env) {
            snprintf(env_copy, sizeof(env_copy), "%s", env);
            for (char *p = env_copy; p && n < MAX_PLUGIN_DIRS;) {
                char *colon = strchr(p, ':');
                if (colon)
                    *colon = '\0';
                list[n++] = *p ? p : default_marker;
                p = colon ? colon + 1 : NULL;
            }
        }
        if (n == 0)
            list[n++] = default_marker;
    }
    static char def[PATH_MAX];
    bool have_def = false, def_done = false;
    for (size_t i = 0; i < n; i++) {
        struct dsnn_error err = {0};
        const char *dir = list[i];
        if (dir == default_marker || !*dir) {
            if (def_done)
                continue; /* named twice */
            def_done = true;
            have_def = default_plugin_dir(argv0, def, sizeof(def));
            if (!have_def || !is_dir(def)) {
                fprintf(stderr,
                        PROG ": note: default plugin directory %s does not exist; use "
                        "--plugin-dir DIR or set DSNN_PLUGIN_PATH\n",
                        have_def ? def : "(unknown: the path of this executable)");
                continue;
            }
            dir = def;
        }
        dsnn_registry_load_dir(reg, dir, &err); /* errors are collected in reg */
    }
    for (size_t i = 0; i < dsnn_registry_n_warnings(reg); i++)
        fprintf(stderr, PROG ": warning: %s\n", dsnn_registry_warning_at(reg, i));
    size_t n_err = dsnn_registry_n_errors(reg);
    for (size_t i = 0; i < n_err; i++)
        fprintf(stderr, PROG ": plugin error: %s\n", dsnn_registry_error_at(reg, i)->msg);
    if (n_err > 0)
        fprintf(stderr,
                PROG ": %zu plugin error%s: fix, rebuild or remove the file%s named above\n",
                n_err, n_err == 1 ? "" : "s", n_err == 1 ? "" : "s");
    return n_err == 0;
}

static void print_dirs(FILE *f, const struct dsnn_registry *reg)
{
    size_t n = dsnn_registry_n_dirs(reg);
    if (n == 0) {
        fprintf(f, "(none)");
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ":" : "", dsnn_registry_dir_at(reg, i));
}

/* ---- list ---- */

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static int cmd_list(const struct dsnn_registry *reg)
{
    static const enum dsnn_kind kinds[] = {DSNN_KIND_DATASET, DSNN_KIND_NETWORK, DSNN_KIND_MODEL,
                                           DSNN_KIND_SEARCH};
    static const char *titles[] = {"datasets", "networks", "models", "search strategies"};
    size_t count = dsnn_registry_count(reg);
    int wn = 1, wv = 1, wd = 1;
    for (size_t i = 0; i < count; i++) {
        const struct dsnn_registry_entry *e = dsnn_registry_at(reg, i);
        int ln = (int)strlen(e->name), lv = (int)strlen(or_empty(e->component->version)),
            ld = (int)strlen(or_empty(e->component->description));
        wn = ln > wn ? ln : wn;
        wv = lv > wv ? lv : wv;
        wd = ld > wd ? ld : wd;
    }
    printf("plugin directories: ");
    print_dirs(stdout, reg);
    printf("\n");
    for (size_t k = 0; k < DSNN_COUNT_OF(kinds); k++) {
        printf("\n%s:\n", titles[k]);
        size_t shown = 0;
        for (size_t i = 0; i < count; i++) {
            const struct dsnn_registry_entry *e = dsnn_registry_at(reg, i);
            if (e->kind != kinds[k])
                continue;
            printf("  %-*s  %-*s  %-*s  %s\n", wn, e->name, wv, or_empty(e->component->version),
                   wd, or_empty(e->component->description), e->path);
            shown++;
        }
        if (shown == 0)
            printf("  (none)\n");
    }
    return DSNN_EXIT_OK;
}

/* ---- info ---- */

static void print_info(const struct dsnn_registry_entry *e)
{
    const struct dsnn_component *c = e->component;
    printf("%s '%s' version %s\n", dsnn_kind_str(e->kind), e->name,
           c->version ? c->version : "(unknown)");
    if (c->description && *c->description)
        printf("  %s\n", c->description);
    printf("  file:   %s\n", e->path);
    printf("  plugin: %s (ABI %u.%u)\n", e->plugin->name, (unsigned)e->plugin->abi_major,
           (unsigned)e->plugin->abi_minor);
    if (c->n_keys == 0) {
        printf("  keys:   (none documented)\n");
        return;
    }
    int wn = 4, wt = 4, wd = 7, wr = 5;
    char def[256], range[256];
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct dsnn_key_spec *k = &c->keys[i];
        dsnn_key_default_text(k, def, sizeof def);
        dsnn_key_range_text(k, range, sizeof range);
        int ln = (int)strlen(k->name), lt = (int)strlen(dsnn_key_type_str(k->type)),
            ld = (int)strlen(def), lr = (int)strlen(range);
        wn = ln > wn ? ln : wn;
        wt = lt > wt ? lt : wt;
        wd = ld > wd ? ld : wd;
        wr = lr > wr ? lr : wr;
    }
    printf("  keys of the '%s' group:\n", dsnn_kind_str(e->kind));
    printf("    %-*s  %-*s  %-*s  %-*s  %s\n", wn, "name", wt, "type", wd, "default", wr, "range",
           "doc");
    for (size_t i = 0; i < c->n_keys; i++) {
        const struct dsnn_key_spec *k = &c->keys[i];
        dsnn_key_default_text(k, def, sizeof def);
        dsnn_key_range_text(k, range, sizeof range);
        printf("    %-*s  %-*s  %-*s  %-*s  %s\n", wn, k->name, wt, dsnn_key_type_str(k->type), wd,
               def, wr, range, or_empty(k->doc));
    }
}

static int cmd_info(const struct dsnn_registry *reg, const char *arg)
{
    const char *name = arg;
    enum dsnn_kind kind = (enum dsnn_kind)0;
    const char *slash = strchr(arg, '/');
    if (slash) {
        char kbuf[32];
        size_t kl = (size_t)(slash - arg);
        if (kl >= sizeof(kbuf) || (memcpy(kbuf, arg, kl), kbuf[kl] = '\0',
                                   !dsnn_registry_kind_parse(kbuf, &kind)))
            return usage_error("info: '%s': expected NAME or KIND/NAME with KIND one of "
                               "dataset, network, model, search",
                               arg);
        name = slash + 1;
    }
    if (slash) {
        struct dsnn_error err = {0};
        const struct dsnn_registry_entry *e = NULL;
        if (dsnn_registry_lookup(reg, kind, name, &e, &err) != DSNN_OK) {
            fprintf(stderr, PROG ": %s\n", err.msg);
            return DSNN_EXIT_PLUGIN;
        }
        print_info(e);
        return DSNN_EXIT_OK;
    }
    size_t found = 0;
    for (size_t i = 0; i < dsnn_registry_count(reg); i++) {
        const struct dsnn_registry_entry *e = dsnn_registry_at(reg, i);
        if (strcmp(e->name, name) != 0)
            continue;
        if (found++)
            printf("\n");
        print_info(e);
    }
    if (found)
        return DSNN_EXIT_OK;
    const char *best = dsnn_registry_suggest(reg, (enum dsnn_kind)0, name);
    fprintf(stderr, PROG ": no component named '%s'", name);
    if (best)
        fprintf(stderr, " (did you mean '%s'?)", best);
    fprintf(stderr, "; '" PROG " list' shows the %zu loaded components (plugin directories: ",
            dsnn_registry_count(reg));
    print_dirs(stderr, reg);
    fprintf(stderr, ")\n");
    return DSNN_EXIT_PLUGIN;
}

/* ---- main ---- */

struct cli {
    const char *plugin_dirs[MAX_PLUGIN_DIRS];
    size_t n_plugin_dirs;
    const char *command;
    const char *args[8];
    size_t n_args;
    const char *results;
    bool quiet, overwrite, run_opts;
    bool allow_unsafe_plugins;
    const char *group_by[MAX_PLUGIN_DIRS]; /* report */
    size_t n_group_by;
    const char *html;
    bool report_opts;
    const char *noise_levels, *repeats, *checkpoint; /* evaluate */
    bool eval_opts;
    bool help, version;
};

/* The commands that load plugins. */
enum command { CMD_RUN, CMD_RESUME, CMD_EVALUATE, CMD_LIST, CMD_INFO, CMD_UNKNOWN };

/* True when argument a is option name, alone or as name=VALUE. Then *value is VALUE, or the
 * next argument (taken: *i moves on), or NULL when there is none. */
static bool option_value(const char *a, const char *name, int argc, char **argv, int *i,
                         const char **value)
{
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return false;
    if (a[n] == '=')
        *value = a + n + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else
        *value = NULL;
    return true;
}

/* The checks of a directory option (a as given, name without "=VALUE"): -1 when value is a
 * non-empty directory, else the usage error. */
static int directory_value(const char *a, const char *name, const char *value)
{
    if (!value)
        return usage_error("option '%s' needs a directory", a);
    if (!*value)
        return usage_error("option '%s' needs a non-empty directory", name);
    return -1;
}

/* Appends dir (or default_marker) to the plugin directories; -1, or the usage error when full. */
static int push_plugin_dir(struct cli *cli, const char *dir)
{
    if (cli->n_plugin_dirs == MAX_PLUGIN_DIRS)
        return usage_error("too many --plugin-dir options (at most %s)", "64");
    cli->plugin_dirs[cli->n_plugin_dirs++] = dir;
    return -1;
}

/* Parses argv into cli; returns -1 on success or an exit code. Options may come before or after
 * the command; "--" ends the options. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            const char *value = NULL;
            int rc;
            if (strcmp(a, "--") == 0) {
                opts_done = true;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                cli->help = true;
            } else if (strcmp(a, "--version") == 0) {
                cli->version = true;
            } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
                cli->quiet = cli->run_opts = true;
            } else if (strcmp(a, "--allow-unsafe-plugins") == 0) {
                cli->allow_unsafe_plugins = true;
            } else if (strcmp(a, "--overwrite") == 0) {
                cli->overwrite = cli->run_opts = true;
            } else if (strcmp(a, "--default-plugins") == 0) {
                if ((rc = push_plugin_dir(cli, default_marker)) >= 0)
                    return rc;
            } else if (option_value(a, "--plugin-dir", argc, argv, &i, &value)) {
                if ((rc = directory_value(a, "--plugin-dir", value)) >= 0 ||
                    (rc = push_plugin_dir(cli, value)) >= 0)
                    return rc;
            } else if (option_value(a, "--results", argc, argv, &i, &value)) {
                if ((rc = directory_value(a, "--results", value)) >= 0)
                    return rc;
                cli->results = value;
                cli->run_opts = true;
            } else if (option_value(a, "--noise-levels", argc, argv, &i, &value) ||
                       option_value(a, "--repeats", argc, argv, &i, &value) ||
                       option_value(a, "--checkpoint", argc, argv, &i, &value)) {
                if (!value || !*value)
                    return usage_error("option '%s' needs a value", a);
                const char **slot = a[2] == 'n' ? &cli->noise_levels
                                    : a[2] == 'r' ? &cli->repeats
                                                  : &cli->checkpoint;
                *slot = value;
                cli->eval_opts = true;
            } else if (option_value(a, "--group-by", argc, argv, &i, &value) ||
                       option_value(a, "--html", argc, argv, &i, &value)) {
                if (!value)
                    return usage_error("option '%s' needs a value", a);
                if (!*value)
                    return usage_error("option '%s' needs a non-empty value", a);
                if (a[2] == 'h') {
                    cli->html = value;
                } else if (cli->n_group_by == MAX_PLUGIN_DIRS) {
                    return usage_error("too many --group-by options (at most %s)", "64");
                } else {
                    cli->group_by[cli->n_group_by++] = value;
                }
                cli->report_opts = true;
            } else {
                return usage_error("unknown option '%s'", a);
            }
            continue;
        }
        if (!cli->command) {
            cli->command = a;
        } else if (cli->n_args < DSNN_COUNT_OF(cli->args)) {
            cli->args[cli->n_args++] = a;
        } else {
            return usage_error("too many arguments (at '%s')", a);
        }
    }
    return -1;
}

static int expect_args(const struct cli *cli, size_t n, const char *what)
{
    if (cli->n_args < n) {
        fprintf(stderr, PROG ": %s: missing %s\nTry '" PROG " --help' for more information.\n",
                cli->command, what);
        return DSNN_EXIT_USAGE;
    }
    if (cli->n_args > n)
        return usage_error("unexpected argument '%s'", cli->args[n]);
    return -1;
}

/* `report DIR`: reads files only, no plugins. */
static int cmd_report(struct cli *cli)
{
    if (cli->run_opts)
        return usage_error("--results, --quiet and --overwrite apply to 'run' only, not '%s'",
                           cli->command);
    if (cli->eval_opts)
        return usage_error("--noise-levels, --repeats and --checkpoint apply to 'evaluate' only, "
                           "not '%s'",
                           cli->command);
    int rc = expect_args(cli, 1, "the results directory DIR");
    if (rc >= 0)
        return rc;
    struct dsnn_report_options ropt = {
        .group_by = cli->group_by, .n_group_by = cli->n_group_by, .html_path = cli->html};
    struct dsnn_error rerr = {0};
    enum dsnn_status st = dsnn_report_run(cli->args[0], &ropt, stdout, stderr, &rerr);
    if (st != DSNN_OK) {
        fflush(stdout);
        fprintf(stderr, PROG ": report: %s\n", rerr.msg);
        return st == DSNN_ERR_INVALID ? DSNN_EXIT_USAGE : DSNN_EXIT_IO;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, PROG ": cannot write to standard output: %s\n", strerror(errno));
        return DSNN_EXIT_IO;
    }
    return DSNN_EXIT_OK;
}

static enum command command_parse(const char *name)
{
    static const char *const names[] = {"run", "resume", "evaluate", "list", "info"};
    for (size_t i = 0; i < DSNN_COUNT_OF(names); i++)
        if (strcmp(name, names[i]) == 0)
            return (enum command)i;
    return CMD_UNKNOWN;
}

/* The options and arguments of run / resume / evaluate / list / info: -1 when fine, else the
 * exit code. */
static int check_command(struct cli *cli, enum command cmd)
{
    if (cli->report_opts)
        return usage_error("--group-by and --html apply to 'report' only, not '%s'", cli->command);
    if (cmd == CMD_UNKNOWN)
        return usage_error("unknown command '%s' (commands: run, resume, evaluate, list, info, "
                           "report, help)",
                           cli->command);
    if (cmd != CMD_EVALUATE && cli->eval_opts)
        return usage_error("--noise-levels, --repeats and --checkpoint apply to 'evaluate' only, "
                           "not '%s'",
                           cli->command);
    if ((cmd == CMD_RESUME || cmd == CMD_EVALUATE) && (cli->results || cli->overwrite))
        return usage_error("--results and --overwrite apply to 'run' only, not '%s' (it works in "
                           "the directory it is given)",
                           cli->command);
    if (cmd != CMD_RUN && cmd != CMD_RESUME && cmd != CMD_EVALUATE && cli->run_opts)
        return usage_error("--results, --quiet and --overwrite apply to 'run' only, not '%s'",
                           cli->command);
    return expect_args(cli, cmd == CMD_LIST ? 0 : 1,
                       cmd == CMD_RUN        ? "the configuration file CFG"
                       : cmd == CMD_RESUME   ? "the results directory DIR"
                       : cmd == CMD_EVALUATE ? "the trial folder TRIAL_DIR"
                                             : "NAME");
}

/* evaluate TRIAL_DIR: the options, then the command. */
static int cmd_evaluate(const struct cli *cli, struct dsnn_registry *reg, struct dsnn_error *err)
{
    static double levels[DSNN_EVAL_MAX_LEVELS];
    struct dsnn_eval_options opt = {.checkpoint = cli->checkpoint, .quiet = cli->quiet};
    if (cli->noise_levels &&
        dsnn_eval_parse_levels(cli->noise_levels, levels, DSNN_COUNT_OF(levels), &opt.n_levels,
                               err) != DSNN_OK)
        return DSNN_EXIT_USAGE;
    opt.levels = cli->noise_levels ? levels : NULL;
    if (cli->repeats && dsnn_eval_parse_repeats(cli->repeats, &opt.repeats, err) != DSNN_OK)
        return DSNN_EXIT_USAGE;
    return dsnn_evaluate_trial(reg, cli->args[0], &opt, err);
}

/* run / resume / evaluate with the plugins loaded. */
static int cmd_run_like(const struct cli *cli, enum command cmd, struct dsnn_registry *reg)
{
    struct dsnn_error err = {0};
    struct dsnn_run_options opt = {
        .results_root = cli->results, .quiet = cli->quiet, .overwrite = cli->overwrite};
    int rc = cmd == CMD_EVALUATE ? cmd_evaluate(cli, reg, &err)
             : cmd == CMD_RESUME ? dsnn_resume_experiment(reg, cli->args[0], &opt, &err)
                                 : dsnn_run_experiment(reg, cli->args[0], &opt, &err);
    if (rc != DSNN_EXIT_OK && err.msg[0])
        fprintf(stderr, PROG ": %s%s\n", cmd == CMD_EVALUATE ? "evaluate: " : "", err.msg);
    return rc < 0 || rc > 255 ? DSNN_EXIT_IO : rc;
}

/* run / resume / evaluate / list / info, with the plugins loaded. */
static int cmd_with_plugins(struct cli *cli, const char *argv0, enum command cmd)
{
    struct dsnn_registry *reg = NULL;
    struct dsnn_error err = {0};
    if (dsnn_registry_new(&reg, &err) != DSNN_OK) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return DSNN_EXIT_IO;
    }
    bool plugins_ok = load_plugins(reg, cli->plugin_dirs, cli->n_plugin_dirs, argv0,
                                   cli->allow_unsafe_plugins);
    fflush(stderr);
    int rc;
    if (dsnn_mpi_size() > 1 && dsnn_mpi_rank() > 0) {
        /* a worker rank: run / resume run the trials rank 0 sends; the other commands are rank
         * 0's alone */
        rc = cmd == CMD_RUN || cmd == CMD_RESUME ? dsnn_mpi_worker(reg, &err) : DSNN_EXIT_OK;
        if (rc != DSNN_EXIT_OK && err.msg[0])
            fprintf(stderr, PROG " (rank %d): %s\n", dsnn_mpi_rank(), err.msg);
    } else if (cmd == CMD_LIST) {
        rc = cmd_list(reg);
    } else if (cmd == CMD_INFO) {
        rc = cmd_info(reg, cli->args[0]);
    } else if (!plugins_ok) {
        fprintf(stderr, PROG ": not running %s: plugins failed to load\n", cli->args[0]);
        rc = DSNN_EXIT_PLUGIN;
    } else {
        rc = cmd_run_like(cli, cmd, reg);
    }
    if (rc == DSNN_EXIT_OK && !plugins_ok)
        rc = DSNN_EXIT_PLUGIN;
    if (fflush(stdout) != 0 && rc == DSNN_EXIT_OK) {
        fprintf(stderr, PROG ": cannot write to standard output: %s\n", strerror(errno));
        rc = DSNN_EXIT_IO;
    }
    dsnn_registry_free(reg);
    return rc;
}

static int main_body(int argc, char **argv)
{
    struct cli cli = {0};
    int rc = parse_args(argc, argv, &cli);
    if (rc >= 0)
        return rc;
    if (cli.help || (cli.command && strcmp(cli.command, "help") == 0)) {
        print_usage(stdout);
        return DSNN_EXIT_OK;
    }
    struct dsnn_error isa_err = {0};
    if (dsnn_isa_init_env(&isa_err) != DSNN_OK) {
        fprintf(stderr, PROG ": %s\n", isa_err.msg);
        return DSNN_EXIT_USAGE;
    }
    if (cli.version) {
        char def[PATH_MAX];
        if (!default_plugin_dir(argv[0], def, sizeof def))
            snprintf(def, sizeof def, "(unknown)");
        printf(PROG " (dsnn) %s\nplugin ABI %d.%d\nsparse kernels %s (this CPU has: %s)\n"
               "OpenBLAS core %s\ndefault plugin directory %s%s\n",
               DSNN_VERSION_STRING, DSNN_ABI_MAJOR, DSNN_ABI_MINOR,
               dsnn_isa_str(dsnn_isa_active()), dsnn_isa_cpu_list(), dsnn_blas_core(), def,
               is_dir(def) ? "" : " (missing)");
        return DSNN_EXIT_OK;
    }
    if (!cli.command) {
        print_usage(stderr);
        return DSNN_EXIT_USAGE;
    }
    if (strcmp(cli.command, "report") == 0)
        return cmd_report(&cli);
    enum command cmd = command_parse(cli.command);
    rc = check_command(&cli, cmd);
    if (rc >= 0)
        return rc;
    return cmd_with_plugins(&cli, argv[0], cmd);
}

/* Under an MPI launcher with N > 1 processes (mpirun, srun), every rank runs this: rank 0 is the
 * host, the others run trials (runner_mpi.c). */
int main(int argc, char **argv)
{
    struct dsnn_error err = {0};
    int mpi = dsnn_mpi_init(&argc, &argv, &err);
    if (mpi < 0) {
        fprintf(stderr, PROG ": %s\n", err.msg);
        return DSNN_EXIT_USAGE;
    }
    int rc = main_body(argc, argv);
    dsnn_mpi_finalize();
    return rc;
}
