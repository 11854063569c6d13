/* tests/unit/test_runner.c - the experiment runner, black-box through the command line: runs
 * $DSNN_BUILD_DIR/bin/dsnn-host as a child process on small generated IDX datasets (a few hundred
 * 28x28 images of 3 separable classes, so that every run takes well under 2 s) and checks exit
 * codes, messages and the results directory:
 *   - a plain run: experiment.cfg (verbatim), journal.jsonl (event sequence), the trial folder
 *     (params.json, trial.cfg, result.json one JSON line per epoch, progress.csv);
 *   - grid search over model.learning_rate x num_samples;
 *   - crash isolation with the test-only "crash" model (build/test-plugins/ok/): a crashing
 *     trial ends in ERROR with error.txt, the others go on, exit code 1;
 *   - configuration errors (syntax, unknown key, wrong type, unknown plugin, missing group,
 *     grid over an unknown key) are reported with FILE:LINE and the key, before any trial runs;
 *   - an existing results directory is kept without --overwrite, replaced with it;
 *   - missing dataset files fail the trial with a message naming the path;
 *   - the same configuration run twice gives the same numbers.
 * Everything is written under one mkdtemp directory, removed at exit (kept when
 * DSNN_KEEP_TEST_DIR is set, for a look after a failure). The helpers are in runner_harness.h
 * (shared with test_resume.c: parallel trials, checkpoints, retries, resume). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsnn/dsnn.h" /* DSNN_PRINTF */
#include "harness.h"

extern char **environ;

#include "runner_harness.h"

/* ------------------------------------------------------------------------------------------ */
/* (1) A plain run                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_plain_run(void)
{
    struct cfg_spec s = {.name = "plain", .epochs = 2};
    const char *cfg = write_cfg("plain.cfg", &s);
    const char *res = tpath("res_plain");
    struct run r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "TERMINATED"));
    run_free(&r);

    const char *dir = tpath("res_plain/plain");
    /* experiment.cfg: byte-identical to the input */
    size_t la = 0, lb = 0;
    char *a = read_file(cfg, &la), *b = read_file(tpath("res_plain/plain/experiment.cfg"), &lb);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a), free(b);

    /* journal: the full event sequence, each line with a time */
    static const char *const events[] = {"experiment_started", "trial_created", "trial_started",
                                         "trial_result",       "trial_result",  "trial_finished",
                                         "experiment_finished"};
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_EQUAL_FATAL(n, (int)(sizeof events / sizeof *events));
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(jstr(&g_objs[i], "event"), events[i]);
        CU_ASSERT(strlen(jstr(&g_objs[i], "time")) >= 20);
        if (i >= 1 && i <= 5)
            CU_ASSERT_STRING_EQUAL(jstr(&g_objs[i], "trial_id"), "trial_00000");
    }
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[0], "name"), "plain");
    CU_ASSERT_EQUAL(jnum(&g_objs[0], "trials"), 1);
    CU_ASSERT_EQUAL(jnum(&g_objs[3], "epoch"), 0);
    CU_ASSERT_EQUAL(jnum(&g_objs[4], "epoch"), 1);
    CU_ASSERT(isfinite(jnum(&g_objs[4], "val_acc")));
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[5], "status"), "TERMINATED");
    CU_ASSERT_EQUAL(jnum(&g_objs[5], "epochs"), 2);
    CU_ASSERT_EQUAL(jnum(&g_objs[6], "failed_trials"), 0);

    /* the trial folder */
    snprintf(path, sizeof path, "%s/trial_00000/params.json", dir);
    CU_ASSERT_EQUAL(read_jsonl(path, g_objs, 1), 1);
    CU_ASSERT(jnum(&g_objs[0], "trial_seed") >= 0);
    snprintf(path, sizeof path, "%s/trial_00000/trial.cfg", dir);
    char *tcfg = read_file(path, NULL);
    CU_ASSERT(contains(tcfg, "learning_rate"));
    CU_ASSERT(contains(tcfg, "hidden_sizes"));
    free(tcfg);
    snprintf(path, sizeof path, "%s/trial_00000/error.txt", dir);
    CU_ASSERT(!exists(path));
    double vacc = check_result_json(dir, "trial_00000", 2);
    /* 3 well-separated classes: the network must learn them (a broken training loop would not) */
    if (!(vacc >= 0.9))
        fprintf(stderr, "\n  final val_acc %g < 0.9 on separable data\n", vacc);
    CU_ASSERT(vacc >= 0.9);
    check_progress_csv(dir, "trial_00000", 2);
    CU_ASSERT(!exists(tpath("res_plain/plain/trial_00001")));
}

/* ------------------------------------------------------------------------------------------ */
/* (2) Grid search                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_grid(void)
{
    struct cfg_spec s = {
        .name = "grid",
        .epochs = 1,
        .num_samples = 2,
        .search = "  grid = { model = { learning_rate = [0.1, 0.01]; }; };\n",
    };
    const char *cfg = write_cfg("grid.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_grid"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *dir = tpath("res_grid/grid");
    /* sample s of combination c is trial s * 2 + c */
    static const double lrs[4] = {0.1, 0.01, 0.1, 0.01};
    double seeds[4];
    for (int t = 0; t < 4; t++) {
        char trial[32], path[4200];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        snprintf(path, sizeof path, "%s/%s/params.json", dir, trial);
        CU_ASSERT_EQUAL_FATAL(read_jsonl(path, g_objs, 1), 1);
        CU_ASSERT_EQUAL(g_objs[0].n, 2); /* model.learning_rate and trial_seed */
        CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs[0], "model.learning_rate"), lrs[t], 1e-12);
        seeds[t] = jnum(&g_objs[0], "trial_seed");
        /* the trial ran with that value */
        check_result_json(dir, trial, 1);
        CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[0], "learning_rate"), lrs[t], 1e-12);
        snprintf(path, sizeof path, "%s/%s/trial.cfg", dir, trial);
        char *tcfg = read_file(path, NULL);
        CU_ASSERT(contains(tcfg, t % 2 ? "learning_rate = 0.01;" : "learning_rate = 0.1;"));
        free(tcfg);
    }
    /* every trial has its own seed */
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CU_ASSERT(seeds[i] != seeds[j]);
    CU_ASSERT(!exists(tpath("res_grid/grid/trial_00004")));
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(jnum(&g_objs[0], "trials"), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_created", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", NULL), 4);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_finished", NULL), 4);
    for (int t = 0; t < 4; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        const struct jobj *f = finished_event(g_objs, n, trial);
        CU_ASSERT_PTR_NOT_NULL(f);
        if (f)
            CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "TERMINATED");
    }
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
}

/* ------------------------------------------------------------------------------------------ */
/* (3) Crash isolation                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_crash_isolation(void)
{
    /* trial 0 never crashes, trial 1 dies of SIGSEGV at the start of its second epoch */
    struct cfg_spec s = {
        .name = "crash",
        .epochs = 2,
        .model = "  plugin = \"crash\";\n"
                 "  learning_rate = 0.1;\n"
                 "  crash_mode = \"segv\";\n",
        .search = "  grid = { model = { crash_epoch = [-1, 1]; }; };\n",
    };
    const char *cfg = write_cfg("crash.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_crash"), NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, "trial_00001"));
    CU_ASSERT(contains(r.err, "SIGSEGV"));
    CU_ASSERT(contains(r.out, "TERMINATED"));
    CU_ASSERT(contains(r.out, "ERROR"));
    run_free(&r);
    const char *dir = tpath("res_crash/crash");
    char path[4200];
    /* the good trial ran to the end, untouched by the crash */
    check_result_json(dir, "trial_00000", 2);
    snprintf(path, sizeof path, "%s/trial_00000/error.txt", dir);
    CU_ASSERT(!exists(path));
    /* the crashing one kept its first epoch and says what killed it */
    check_result_json(dir, "trial_00001", 1);
    snprintf(path, sizeof path, "%s/trial_00001/error.txt", dir);
    char *etxt = read_file(path, NULL);
    CU_ASSERT_PTR_NOT_NULL(etxt);
    CU_ASSERT(contains(etxt, "signal 11"));
    CU_ASSERT(contains(etxt, "SIGSEGV"));
    CU_ASSERT(contains(etxt, "after 1 epoch"));
    free(etxt);

    snprintf(path, sizeof path, "%s/journal.jsonl", dir);
    int n = read_jsonl(path, g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f0 = finished_event(g_objs, n, "trial_00000");
    const struct jobj *f1 = finished_event(g_objs, n, "trial_00001");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
    CU_ASSERT_STRING_EQUAL(jstr(f0, "status"), "TERMINATED");
    CU_ASSERT_EQUAL(jnum(f0, "epochs"), 2);
    CU_ASSERT_STRING_EQUAL(jstr(f1, "status"), "ERROR");
    CU_ASSERT_EQUAL(jnum(f1, "epochs"), 1);
    CU_ASSERT(contains(jstr(f1, "error"), "SIGSEGV"));
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00000"), 2);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00001"), 1);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
    CU_ASSERT_EQUAL(jnum(&g_objs[n - 1], "failed_trials"), 1);
}

/* The other ways a trial can die: abort(), _exit() without a word, a reported error. */
static void test_crash_modes(void)
{
    struct cfg_spec s = {
        .name = "modes",
        .epochs = 1,
        .model = "  plugin = \"crash\";\n"
                 "  crash_epoch = 0;\n"
                 "  crash_exit_code = 7;\n",
        .search = "  grid = { model = { crash_mode = [\"abort\", \"exit\", \"error\"]; }; };\n",
    };
    const char *cfg = write_cfg("modes.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_modes"), "--quiet", NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, "3 of 3 trial(s) ended in ERROR"));
    run_free(&r);
    static const char *const expect[3][2] = {
        {"signal 6", "SIGABRT"},
        {"exited with status 7", "after 0 epoch"},
        {"crash: deliberate failure at epoch 0 of trial 2", "crash: deliberate failure"},
    };
    for (int t = 0; t < 3; t++) {
        char *etxt = read_file(tpath("res_modes/modes/trial_%05d/error.txt", t), NULL);
        CU_ASSERT_PTR_NOT_NULL(etxt);
        CU_ASSERT(contains(etxt, expect[t][0]));
        CU_ASSERT(contains(etxt, expect[t][1]));
        free(etxt);
        CU_ASSERT(!exists(tpath("res_modes/modes/trial_%05d/result.json", t)));
    }
    int n = read_jsonl(tpath("res_modes/modes/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_finished", NULL), 3);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        const struct jobj *f = finished_event(g_objs, n, trial);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "ERROR");
        CU_ASSERT(contains(jstr(f, "error"), expect[t][1]));
    }
    CU_ASSERT_EQUAL(jnum(&g_objs[n - 1], "failed_trials"), 3);
}

/* ------------------------------------------------------------------------------------------ */
/* (4) Configuration errors: exit 3 (4 for a missing plugin), FILE:LINE, the key, nothing run */
/* ------------------------------------------------------------------------------------------ */

/* Runs cfg (already written) and checks: exit code, every needle in stderr, no results. */
static void expect_config_error(const char *cfg, int code, const char *const *needles)
{
    char res[4096];
    snprintf(res, sizeof res, "%s.results", cfg);
    struct run r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, code);
    for (const char *const *nd = needles; *nd; nd++)
        CU_ASSERT(contains(r.err, *nd));
    CU_ASSERT(!strstr(r.out, "epoch 1/"));
    if (exists(res))
        fprintf(stderr, "\n  %s: results directory created for a bad configuration\n", res);
    CU_ASSERT(!exists(res));
    run_free(&r);
}

static void test_syntax_error(void)
{
    const char *cfg = tpath("syntax.cfg");
    CU_ASSERT_FATAL(write_text(cfg, "experiment = {\n"
                                    "  name = \"syntax\";\n"
                                    "  seed = 1;\n"
                                    "  epochs = = 2;\n" /* line 4 */
                                    "};\n"));
    char where[4200];
    snprintf(where, sizeof where, "%s:4", cfg);
    const char *needles[] = {where, NULL};
    expect_config_error(cfg, 3, needles);

    const char *cfg2 = tpath("syntax2.cfg");
    CU_ASSERT_FATAL(write_text(cfg2, "experiment = { name = \"s2\"; };\n"
                                     "\n"
                                     "model = { learning_rate = 0.1.2; };\n"));
    snprintf(where, sizeof where, "%s:3", cfg2);
    const char *needles2[] = {where, NULL};
    expect_config_error(cfg2, 3, needles2);
}

static void test_unknown_key(void)
{
    struct cfg_spec s = {.name = "typo",
                         .model = "  plugin = \"dense\";\n"
                                  "  momentum = 0.9;\n"
                                  "  learnig_rate = 0.1;\n"}; /* MODEL_LINE + 2 */
    const char *cfg = write_cfg("typo.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE + 2);
    const char *needles[] = {where, "model.learnig_rate", "did you mean 'learning_rate'", NULL};
    expect_config_error(cfg, 3, needles);

    /* a typo in the host's own group too */
    const char *cfg2 = tpath("typo2.cfg");
    CU_ASSERT_FATAL(write_text(cfg2, "experiment = {\n  name = \"t2\";\n  epocs = 2;\n};\n"));
    snprintf(where, sizeof where, "%s:3", cfg2);
    const char *needles2[] = {where, "experiment.epocs", "did you mean 'epochs'", NULL};
    expect_config_error(cfg2, 3, needles2);
}

static void test_wrong_type(void)
{
    struct cfg_spec s = {.name = "type",
                         .model = "  plugin = \"dense\";\n"
                                  "  learning_rate = \"x\";\n"}; /* MODEL_LINE + 1 */
    const char *cfg = write_cfg("type.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE + 1);
    const char *needles[] = {where, "model.learning_rate", NULL};
    expect_config_error(cfg, 3, needles);

    /* an integer key given a float, in another plugin's group */
    struct cfg_spec s2 = {.name = "type2", .model = "  plugin = \"dense\";\n"
                                                    "  lr_step_size = 1.5;\n"};
    const char *cfg2 = write_cfg("type2.cfg", &s2);
    snprintf(where, sizeof where, "%s:%d", cfg2, MODEL_LINE + 1);
    const char *needles2[] = {where, "model.lr_step_size", NULL};
    expect_config_error(cfg2, 3, needles2);

    /* the host's own keys */
    const char *cfg3 = tpath("type3.cfg");
    CU_ASSERT_FATAL(
        write_text(cfg3, "experiment = {\n  name = \"t3\";\n  epochs = \"two\";\n};\n"));
    snprintf(where, sizeof where, "%s:3", cfg3);
    const char *needles3[] = {where, "experiment.epochs", NULL};
    expect_config_error(cfg3, 3, needles3);
}

static void test_unknown_plugin(void)
{
    struct cfg_spec s = {.name = "noplugin", .model = "  plugin = \"dens\";\n"};
    const char *cfg = write_cfg("noplugin.cfg", &s);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", cfg, MODEL_LINE);
    const char *needles[] = {where, "dens", "did you mean 'dense'", NULL};
    expect_config_error(cfg, 4, needles);
}

static void test_missing_group(void)
{
    const char *cfg = tpath("nodata.cfg");
    CU_ASSERT_FATAL(write_text(cfg, "experiment = { name = \"nodata\"; };\n"
                                    "network = { plugin = \"mlp\"; };\n"
                                    "model = { plugin = \"dense\"; };\n"));
    const char *needles[] = {cfg, "dataset", NULL};
    expect_config_error(cfg, 3, needles);
}

static void test_grid_unknown_key(void)
{
    struct cfg_spec s = {
        .name = "gridkey",
        .search = "  grid = { model = { learning_rat = [0.1, 0.01]; }; };\n",
    };
    const char *cfg = write_cfg("gridkey.cfg", &s);
    const char *needles[] = {"model.learning_rat", "did you mean 'learning_rate'",
                             "searched values of trial_00000", NULL};
    expect_config_error(cfg, 3, needles);

    /* searched values of the wrong type (found before any trial runs, not by every trial) */
    struct cfg_spec s3 = {
        .name = "gridtype",
        .search = "  grid = { model = { learning_rate = (0.1, \"fast\"); }; };\n",
    };
    const char *cfg3 = write_cfg("gridtype.cfg", &s3);
    const char *needles3[] = {"model.learning_rate", "trial_00001", "expected a number", NULL};
    expect_config_error(cfg3, 3, needles3);

    /* a searched group that does not exist at all */
    struct cfg_spec s2 = {
        .name = "gridgroup",
        .search = "  grid = { modle = { learning_rate = [0.1, 0.01]; }; };\n",
    };
    const char *cfg2 = write_cfg("gridgroup.cfg", &s2);
    const char *needles2[] = {"modle", NULL};
    expect_config_error(cfg2, 3, needles2);
}

/* ------------------------------------------------------------------------------------------ */
/* (5) An existing results directory                                                          */
/* ------------------------------------------------------------------------------------------ */

static void test_existing_results(void)
{
    struct cfg_spec s = {.name = "again", .epochs = 1};
    const char *cfg = write_cfg("again.cfg", &s);
    const char *res = tpath("res_again");
    struct run r = host("run", cfg, "--results", res, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *journal = tpath("res_again/again/journal.jsonl");
    const char *result = tpath("res_again/again/trial_00000/result.json");
    const char *marker = tpath("res_again/again/notes.txt");
    CU_ASSERT_FATAL(write_text(marker, "my notes\n"));
    size_t lj = 0, lr = 0;
    char *j0 = read_file(journal, &lj), *r0 = read_file(result, &lr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r0);

    /* without --overwrite: refused, nothing touched */
    r = host("run", cfg, "--results", res, NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "already exists"));
    CU_ASSERT(contains(r.err, "--overwrite"));
    run_free(&r);
    size_t lj1 = 0, lr1 = 0;
    char *j1 = read_file(journal, &lj1), *r1 = read_file(result, &lr1);
    CU_ASSERT(j1 && lj1 == lj && memcmp(j0, j1, lj) == 0);
    CU_ASSERT(r1 && lr1 == lr && memcmp(r0, r1, lr) == 0);
    CU_ASSERT(exists(marker));
    free(j1), free(r1);

    /* with --overwrite: replaced by a fresh run */
    r = host("run", cfg, "--results", res, "--overwrite", "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    CU_ASSERT(!exists(marker));
    int n = read_jsonl(journal, g_objs, MAX_LINES);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "experiment_started", NULL), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "experiment_finished", NULL), 1);
    check_result_json(tpath("res_again/again"), "trial_00000", 1);
    free(j0), free(r0);

    /* --overwrite never deletes a directory that is not a dsnn results directory */
    const char *other = tpath("res_other/again");
    CU_ASSERT_FATAL(mkdir(tpath("res_other"), 0755) == 0 && mkdir(other, 0755) == 0);
    CU_ASSERT_FATAL(write_text(tpath("res_other/again/thesis.tex"), "precious\n"));
    r = host("run", cfg, "--results", tpath("res_other"), "--overwrite", NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "not a dsnn results directory"));
    run_free(&r);
    CU_ASSERT(exists(tpath("res_other/again/thesis.tex")));

    /* ... nor a plain file of that name */
    CU_ASSERT_FATAL(mkdir(tpath("res_file"), 0755) == 0);
    CU_ASSERT_FATAL(write_text(tpath("res_file/again"), "precious\n"));
    r = host("run", cfg, "--results", tpath("res_file"), "--overwrite", NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "not a dsnn results directory"));
    run_free(&r);
    char *kept = read_file(tpath("res_file/again"), NULL);
    CU_ASSERT(kept && strcmp(kept, "precious\n") == 0);
    free(kept);
}

/* experiment.results_dir is the results root unless --results overrides it; a root that cannot
 * be created is an I/O error (exit 5). */
static void test_results_root(void)
{
    char extra[4200];
    snprintf(extra, sizeof extra, " results_dir = \"%s\";", tpath("res_cfgdir"));
    struct cfg_spec s = {.name = "rootdir", .experiment_extra = extra};
    const char *cfg = write_cfg("rootdir.cfg", &s);
    struct run r = host("run", cfg, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    check_result_json(tpath("res_cfgdir/rootdir"), "trial_00000", 1);

    r = host("run", cfg, "--quiet", "--results", tpath("res_cli"), NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    check_result_json(tpath("res_cli/rootdir"), "trial_00000", 1);

    /* a results root below a regular file */
    const char *bad = tpath("rootdir.cfg/results");
    r = host("run", cfg, "--results", bad, NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "rootdir.cfg"));
    run_free(&r);
}

/* SIGTERM to dsnn-host while a trial hangs: the trial is stopped, the host records it as
 * INTERRUPTED, runs no further trial, and exits with 130 - promptly, not after the trial. */
static void test_interrupt(void)
{
    struct cfg_spec s = {
        .name = "intr",
        .epochs = 2,
        .model = "  plugin = \"crash\";\n"
                 "  crash_epoch = 1;\n"
                 "  crash_mode = \"hang\";\n",
        .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n",
    };
    const char *cfg = write_cfg("intr.cfg", &s);
    const char *args[] = {"run", cfg, "--results", tpath("res_intr"), NULL};
    struct proc p;
    host_start(&p, args);
    /* wait for the first epoch of trial 0 (then it hangs at the start of the second) */
    const char *result = tpath("res_intr/intr/trial_00000/result.json");
    bool started = false;
    for (int i = 0; i < 6000 && !started; i++) {
        char *text = read_file(result, NULL);
        started = text && strchr(text, '\n');
        free(text);
        if (!started) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CU_ASSERT(started);
    struct timespec ts = {0, 200 * 1000 * 1000}; /* let it reach the hang */
    nanosleep(&ts, NULL);
    kill(p.pid, SIGTERM);
    struct run r = host_wait(&p, 20);
    CHECK_CODE(r, 130);
    CU_ASSERT(contains(r.err, "interrupted"));
    run_free(&r);
    int n = read_jsonl(tpath("res_intr/intr/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f = finished_event(g_objs, n, "trial_00000");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_STRING_EQUAL(jstr(f, "status"), "INTERRUPTED");
    CU_ASSERT_EQUAL(jnum(f, "epochs"), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00001"), 0);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_interrupted");
    CU_ASSERT(!exists(tpath("res_intr/intr/trial_00000/error.txt")));
}

/* ------------------------------------------------------------------------------------------ */
/* (6) Missing dataset files                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* A missing or corrupt data file stops `run` before any trial starts: exit 5 naming the file,
 * no results directory. Only the first trial's dataset is checked up front: a later trial
 * whose (searched) data cannot be read ends in ERROR as other trial failures (exit 1). */
static void test_missing_dataset(void)
{
    const char *nodir = tpath("no_such_data");
    struct cfg_spec s = {.name = "nofiles", .data = nodir};
    const char *cfg = write_cfg("nofiles.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_nofiles"), NULL);
    CHECK_CODE(r, 5);
    char file[4200];
    snprintf(file, sizeof file, "%s/train-images.idx", nodir);
    CU_ASSERT(contains(r.err, file));
    CU_ASSERT(contains(r.err, "before any trial starts"));
    CU_ASSERT(!exists(tpath("res_nofiles")));
    run_free(&r);

    /* a corrupt (truncated) images file */
    const char *bad = tpath("bad_data");
    CU_ASSERT_FATAL(mkdir(bad, 0755) == 0);
    static const char *const names[] = {"train-images.idx", "train-labels.idx",
                                        "test-images.idx", "test-labels.idx"};
    for (int i = 0; i < 4; i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/%s", data_dir(), names[i]);
        snprintf(dst, sizeof dst, "%s/%s", bad, names[i]);
        size_t len = 0;
        char *d = read_file(src, &len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_FATAL(write_file(dst, d, i == 0 ? len / 2 : len));
        free(d);
    }
    struct cfg_spec s2 = {.name = "corrupt", .data = bad};
    cfg = write_cfg("corrupt.cfg", &s2);
    r = host("run", cfg, "--results", tpath("res_corrupt"), NULL);
    CHECK_CODE(r, 5);
    snprintf(file, sizeof file, "%s/train-images.idx", bad);
    CU_ASSERT(contains(r.err, file));
    CU_ASSERT(contains(r.err, "truncated"));
    CU_ASSERT(!exists(tpath("res_corrupt")));
    run_free(&r);

    /* the second trial's data is missing: that trial ends in ERROR, the first runs */
    char search[8400];
    snprintf(search, sizeof search, "  grid = { dataset = { path = [\"%s\", \"%s\"]; }; };\n",
             data_dir(), nodir);
    struct cfg_spec s3 = {.name = "later", .search = search};
    cfg = write_cfg("later.cfg", &s3);
    r = host("run", cfg, "--results", tpath("res_later"), "--quiet", NULL);
    CHECK_CODE(r, 1);
    run_free(&r);
    char *etxt = read_file(tpath("res_later/later/trial_00001/error.txt"), NULL);
    CU_ASSERT_PTR_NOT_NULL(etxt);
    snprintf(file, sizeof file, "%s/train-images.idx", nodir);
    CU_ASSERT(contains(etxt, file));
    free(etxt);
    int n = read_jsonl(tpath("res_later/later/journal.jsonl"), g_objs, MAX_LINES);
    CU_ASSERT_FATAL(n > 0);
    const struct jobj *f0 = finished_event(g_objs, n, "trial_00000");
    const struct jobj *f1 = finished_event(g_objs, n, "trial_00001");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
    CU_ASSERT_STRING_EQUAL(jstr(f0, "status"), "TERMINATED");
    CU_ASSERT_STRING_EQUAL(jstr(f1, "status"), "ERROR");
    CU_ASSERT_EQUAL(jnum(f1, "epochs"), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* (7) Determinism                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void test_determinism(void)
{
    struct cfg_spec s = {
        .name = "det",
        .epochs = 2,
        .threads = 2,
        .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n",
    };
    const char *cfg = write_cfg("det.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_det1"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    r = host("run", cfg, "--results", tpath("res_det2"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    for (int t = 0; t < 2; t++) {
        int n1 = read_jsonl(tpath("res_det1/det/trial_%05d/result.json", t), g_objs, MAX_LINES);
        int n2 = read_jsonl(tpath("res_det2/det/trial_%05d/result.json", t), g_objs2, MAX_LINES);
        CU_ASSERT_EQUAL(n1, 2);
        CU_ASSERT_EQUAL_FATAL(n1, n2);
        for (int e = 0; e < n1; e++) {
            CU_ASSERT_EQUAL(g_objs[e].n, g_objs2[e].n);
            int compared = 0;
            for (int k = 0; k < g_objs[e].n; k++) {
                const struct jfield *a = &g_objs[e].f[k];
                if (is_time_key(a->key))
                    continue;
                const struct jfield *b = jget(&g_objs2[e], a->key);
                CU_ASSERT_PTR_NOT_NULL(b);
                if (b && strcmp(a->val, b->val) != 0) {
                    fprintf(stderr, "\n  trial %d epoch %d: %s differs: %s vs %s\n", t, e,
                            a->key, a->val, b->val);
                    CU_FAIL("result.json differs between two identical runs");
                }
                compared++;
            }
            CU_ASSERT(compared >= 6);
        }
        /* params.json too (seeds included) */
        char *p1 = read_file(tpath("res_det1/det/trial_%05d/params.json", t), NULL);
        char *p2 = read_file(tpath("res_det2/det/trial_%05d/params.json", t), NULL);
        CU_ASSERT(p1 && p2 && strcmp(p1, p2) == 0);
        free(p1), free(p2);
    }
    /* and the two trials of one run differ (different learning rates and seeds) */
    int n1 = read_jsonl(tpath("res_det1/det/trial_00000/result.json"), g_objs, MAX_LINES);
    int n2 = read_jsonl(tpath("res_det1/det/trial_00001/result.json"), g_objs2, MAX_LINES);
    CU_ASSERT_FATAL(n1 == 2 && n2 == 2);
    CU_ASSERT(jnum(&g_objs[0], "train_loss") != jnum(&g_objs2[0], "train_loss"));
}

/* nupic's order: each epoch is evaluated before its prune / regrow round, and again after it
 * (val_acc_after_rewire / val_loss_after_rewire); experiment.rewire_before_eval = true evaluates
 * after the round only. Training is the same either way, so the second evaluation of the default
 * run is the only evaluation of the other, number for number. */
static void test_eval_before_rewire(void)
{
    const char *model = "  plugin = \"set\";\n  on_perc = 0.3;\n  learning_rate = 0.1;\n"
                        "  momentum = 0.9;\n  weight_prune_perc = 0.3;\n";
    struct cfg_spec s = {.name = "ebr", .epochs = 3, .model = model};
    const char *cfg = write_cfg("ebr.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_ebr"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    s.experiment_extra = " rewire_before_eval = true;";
    cfg = write_cfg("ebr_after.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_ebr_after"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    int na = read_jsonl(tpath("res_ebr/ebr/trial_00000/result.json"), g_objs, MAX_LINES);
    int nb = read_jsonl(tpath("res_ebr_after/ebr/trial_00000/result.json"), g_objs2, MAX_LINES);
    CU_ASSERT_FATAL(na == 3 && nb == 3);
    int rewired = 0;
    for (int e = 0; e < 3; e++) {
        const struct jobj *a = &g_objs[e], *b = &g_objs2[e];
        CU_ASSERT_STRING_EQUAL(jget(a, "train_loss")->val, jget(b, "train_loss")->val);
        CU_ASSERT_STRING_EQUAL(jget(a, "nnz_fc1") ? jget(a, "nnz_fc1")->val : "?",
                               jget(b, "nnz_fc1") ? jget(b, "nnz_fc1")->val : "!");
        CU_ASSERT_PTR_NULL(jget(b, "val_acc_after_rewire"));
        const struct jfield *after = jget(a, "val_acc_after_rewire");
        const struct jfield *loss_after = jget(a, "val_loss_after_rewire");
        if (jnum(a, "pruned_fc1") > 0) { /* a round ran */
            rewired++;
            CU_ASSERT_PTR_NOT_NULL_FATAL(after);
            CU_ASSERT_PTR_NOT_NULL_FATAL(loss_after);
            CU_ASSERT_STRING_EQUAL(after->val, jget(b, "val_acc")->val);
            CU_ASSERT_STRING_EQUAL(loss_after->val, jget(b, "val_loss")->val);
            /* the evaluation before the round saw another network */
            CU_ASSERT_STRING_NOT_EQUAL(jget(a, "val_loss")->val, jget(b, "val_loss")->val);
        } else {
            CU_ASSERT_PTR_NULL(after);
        }
    }
    CU_ASSERT(rewired >= 2);
}

/* A configuration warning (an ignored key, allow_unknown_keys) is said once, before the first
 * trial starts, not once per trial check and per trial child (3 trials, 2 at once). */
static void test_warning_once(void)
{
    struct cfg_spec s = {.name = "warn", .epochs = 1,
                         .experiment_extra = " parallel = 2; allow_unknown_keys = true;",
                         .model = "  plugin = \"dense\";\n  learning_rate = 0.1;\n"
                                  "  no_such_key = 3;\n",
                         .search = "  grid = { model = { momentum = [0.0, 0.5, 0.9]; }; };\n"};
    const char *cfg = write_cfg("warn.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_warn"), NULL);
    CHECK_CODE(r, 0);
    size_t n = 0;
    for (const char *p = r.err; (p = strstr(p, "model.no_such_key")) != NULL; p++)
        n++;
    CU_ASSERT_EQUAL(n, 1);
    if (n != 1)
        printf("\n    stderr:\n%s\n", r.err);
    /* said before the table: nothing of a trial on stdout precedes it (stderr is unbuffered, and
     * the host's first trial line comes after validation) */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "warning: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "trial_00002"));
    run_free(&r);
}

/* A configuration written with nupic's key names runs (without allow_unknown_keys) and gives the
 * numbers of the one written with dsnn's: an alias (hebbian_prune_perc of dsnn-weighted-mag)
 * and percent_on_k_winner (k-winners below 0.5). */
static void test_nupic_names(void)
{
    struct cfg_spec s = {.name = "names", .epochs = 2,
                         .network = "  plugin = \"mlp-heb\";\n  hidden_sizes = [24, 16];\n"
                                    "  kwinners = true;\n  percent_on = [0.25, 0.375];\n",
                         .model = "  plugin = \"dsnn-weighted-mag\";\n  on_perc = 0.3;\n"
                                  "  learning_rate = 0.1;\n  momentum = 0.9;\n"
                                  "  weight_prune_perc = 0.2;\n"};
    const char *cfg = write_cfg("names_dsnn.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_names_dsnn"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    s.network = "  plugin = \"mlp-heb\";\n  hidden_sizes = [24, 16];\n"
                "  percent_on_k_winner = [0.25, 0.375];\n";
    s.model = "  plugin = \"dsnn-weighted-mag\";\n  on_perc = 0.3;\n  learning_rate = 0.1;\n"
              "  momentum = 0.9;\n  hebbian_prune_perc = 0.2;\n";
    cfg = write_cfg("names_nupic.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_names_nupic"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s", tpath("res_names_dsnn/names"));
    snprintf(b, sizeof b, "%s", tpath("res_names_nupic/names"));
    same_results(a, b, "trial_00000", 2);
    /* the trial's configuration names the keys as the plugins read them */
    char *t = read_file(tpath("res_names_nupic/names/trial_00000/trial.cfg"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(strstr(t, "weight_prune_perc") != NULL && strstr(t, "hebbian_prune_perc") == NULL);
    free(t);
    /* both names of one key: an error naming the line and both */
    s.model = "  plugin = \"dsnn-weighted-mag\";\n  weight_prune_perc = 0.2;\n"
              "  hebbian_prune_perc = 0.2;\n";
    cfg = write_cfg("names_both.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_names_both"), "--quiet", NULL);
    CHECK_CODE(r, 3);
    CU_ASSERT(contains(r.err, "names_both.cfg:27: key 'model.weight_prune_perc' and its other "
                              "name 'hebbian_prune_perc' are both given"));
    run_free(&r);
}

static CU_TestInfo tests[] = {
    {"plain run: results directory", test_plain_run},
    {"grid search over learning_rate x num_samples", test_grid},
    {"crash isolation (SIGSEGV in one trial)", test_crash_isolation},
    {"crash modes abort / exit / error", test_crash_modes},
    {"config: syntax error", test_syntax_error},
    {"config: unknown key", test_unknown_key},
    {"config: wrong type", test_wrong_type},
    {"config: unknown plugin", test_unknown_plugin},
    {"config: missing dataset group", test_missing_group},
    {"config: grid over an unknown key", test_grid_unknown_key},
    {"existing results directory / --overwrite", test_existing_results},
    {"results root: experiment.results_dir, --results, unwritable", test_results_root},
    {"SIGTERM during a hanging trial", test_interrupt},
    {"missing / corrupt dataset files: exit 5 up front", test_missing_dataset},
    {"determinism", test_determinism},
    {"evaluation before the rewiring round, and after it", test_eval_before_rewire},
    {"nupic's key names give the numbers of dsnn's", test_nupic_names},
    {"a configuration warning is said once", test_warning_once},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("runner (dsnn-host run)", tests)
