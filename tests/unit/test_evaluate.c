/* tests/unit/test_evaluate.c - dsnn-host evaluate TRIAL_DIR (nupic's offline noise test),
 * black-box through the command line on the generated IDX data of runner_harness.h:
 *   - on a finished trial whose checkpoint is its last epoch's, the accuracy and loss at level 0
 *     are, as text, the trial's last val_acc / val_loss (dense model: the state evaluated is the
 *     state saved) or val_acc_after_rewire / val_loss_after_rewire (SET: nupic's order
 *     evaluates before the epoch's prune / regrow round, the checkpoint is after it); repeat 0
 *     at the trial's own noise_level is its noise_acc;
 *   - accuracy falls with noise on a trained net; repeats (other noise seeds) differ at noise >
 *     0 and agree at 0; noise_eval.json parses; report lists and plots it;
 *   - every error: not a trial folder, no checkpoint, a checkpoint of another trial /
 *     configuration, malformed or out-of-range levels, bad repeats, a dataset without a noise
 *     split, options of other commands;
 *   - a model that crashes (or fails) while evaluating is an error message, not a dead host
 *     (the test-only "crash" model with crash_on_noise). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#endif
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

#include "dsnn/dsnn.h"
#include "harness.h"

extern char **environ;

#include "runner_harness.h"

/* ---- helpers ---- */

/* Runs the experiment of spec (extra: lines added to the dataset group) to its end (exit 0);
 * returns <tmp>/results/<name>. */
static const char *run_exp(const struct cfg_spec *spec, const char *dataset_extra)
{
    static char text[16384], with[17000];
    make_cfg(text, sizeof text, spec);
    const char *at = strstr(text, "  batch_size_test = 50;\n");
    CU_ASSERT_FATAL(at != NULL);
    size_t head = (size_t)(at - text) + strlen("  batch_size_test = 50;\n");
    snprintf(with, sizeof with, "%.*s%s%s", (int)head, text, dataset_extra ? dataset_extra : "",
             text + head);
    const char *cfg = tpath("%s.cfg", spec->name);
    CU_ASSERT_FATAL(write_text(cfg, with));
    const char *root = tpath("results");
    struct run r = host("run", cfg, "--results", root, "--quiet", "--overwrite", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    return tpath("results/%s", spec->name);
}

/* The last line of <dir>/<trial>/result.json, parsed. */
static bool last_result(const char *dir, const char *trial, struct jobj *o)
{
    static struct jobj lines[MAX_LINES];
    int n = read_jsonl(tpath("results/%s/%s/result.json", strrchr(dir, '/') + 1, trial), lines,
                       MAX_LINES);
    if (n <= 0)
        return false;
    *o = lines[n - 1];
    return true;
}

/* noise_eval.json of trial_dir, parsed (the caller frees it). */
static bool read_eval(const char *trial_dir, struct dsnn_json_value *v)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/noise_eval.json", trial_dir);
    size_t len = 0;
    char *text = read_file(path, &len);
    struct dsnn_error err = {0};
    bool ok = text && dsnn_json_parse(text, len, v, &err) == DSNN_OK;
    if (!ok)
        fprintf(stderr, "\n  %s: %s\n", path, text ? err.msg : "cannot read");
    free(text);
    return ok;
}

/* Level k of an evaluation. */
static const struct dsnn_json_value *eval_level(const struct dsnn_json_value *v, size_t k)
{
    const struct dsnn_json_value *l = dsnn_json_get(v, "levels");
    return l && l->type == DSNN_JSON_ARRAY && k < l->n ? &l->items[k] : NULL;
}

/* The JSON text of item i of array member key of o ("" if none). */
static const char *item_text(const struct dsnn_json_value *o, const char *key, size_t i)
{
    const struct dsnn_json_value *a = o ? dsnn_json_get(o, key) : NULL;
    return a && a->type == DSNN_JSON_ARRAY && i < a->n ? a->items[i].text : "";
}

static struct run evaluate(const char *trial_dir, const char *a1, const char *a2,
                           const char *a3, const char *a4)
{
    return host("evaluate", trial_dir, a1, a2, a3, a4, NULL);
}

/* ---- tests ---- */

static void test_level0_is_val_acc(void)
{
    /* dense: the checkpoint holds the state the last val_acc was measured on */
    struct cfg_spec spec = {.name = "ev_dense", .epochs = 3};
    const char *dir = run_exp(&spec, "  test_noise = true;\n  noise_level = 0.3;\n");
    const char *trial = tpath("results/ev_dense/trial_00000");
    struct run r = evaluate(trial, "--noise-levels", "0,0.3", NULL, NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "noise_level"));
    CU_ASSERT(contains(r.out, "after epoch 3"));
    run_free(&r);
    struct jobj last;
    struct dsnn_json_value v;
    CU_ASSERT_FATAL(last_result(dir, "trial_00000", &last));
    CU_ASSERT_FATAL(read_eval(trial, &v));
    const struct dsnn_json_value *l0 = eval_level(&v, 0), *l1 = eval_level(&v, 1);
    CU_ASSERT_STRING_EQUAL(item_text(l0, "acc", 0), jget(&last, "val_acc")->val);
    CU_ASSERT_STRING_EQUAL(item_text(l0, "loss", 0), jget(&last, "val_loss")->val);
    /* repeat 0 at the trial's own noise_level: its noise split, the same noise seed */
    CU_ASSERT_STRING_EQUAL(item_text(l1, "acc", 0), jget(&last, "noise_acc")->val);
    CU_ASSERT_STRING_EQUAL(item_text(l1, "loss", 0), jget(&last, "noise_loss")->val);
    CU_ASSERT_EQUAL(dsnn_json_num(&v, "checkpoint_epochs", 0), 3);
    CU_ASSERT_STRING_EQUAL(dsnn_json_str(&v, "trial_id"), "trial_00000");
    dsnn_json_free(&v);

    /* SET: evaluated before the round (val_acc), saved after it (val_acc_after_rewire) */
    spec = (struct cfg_spec){.name = "ev_set", .epochs = 2,
                             .model = "  plugin = \"set\";\n  learning_rate = 0.1;\n"
                                      "  momentum = 0.9;\n  on_perc = 0.3;\n"};
    dir = run_exp(&spec, NULL);
    trial = tpath("results/ev_set/trial_00000");
    r = evaluate(trial, "--noise-levels", "0", "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT_STRING_EQUAL(r.out, "");
    run_free(&r);
    CU_ASSERT_FATAL(last_result(dir, "trial_00000", &last));
    CU_ASSERT_FATAL(jget(&last, "val_acc_after_rewire") != NULL);
    CU_ASSERT_FATAL(read_eval(trial, &v));
    CU_ASSERT_STRING_EQUAL(item_text(eval_level(&v, 0), "acc", 0),
                           jget(&last, "val_acc_after_rewire")->val);
    CU_ASSERT_STRING_EQUAL(item_text(eval_level(&v, 0), "loss", 0),
                           jget(&last, "val_loss_after_rewire")->val);
    dsnn_json_free(&v);
}

static void test_noise_and_repeats(void)
{
    struct cfg_spec spec = {.name = "ev_noise", .epochs = 3};
    run_exp(&spec, NULL);
    const char *trial = tpath("results/ev_noise/trial_00000");
    /* the generated classes are bands of bright rows: they survive much noise */
    struct run r = evaluate(trial, "--noise-levels", "0,0.9,0.97,1", "--repeats", "3");
    CHECK_CODE(r, 0);
    run_free(&r);
    struct dsnn_json_value v;
    CU_ASSERT_FATAL(read_eval(trial, &v));
    CU_ASSERT_EQUAL(dsnn_json_num(&v, "repeats", 0), 3);
    const struct dsnn_json_value *seeds = dsnn_json_get(&v, "noise_seeds");
    CU_ASSERT_FATAL(seeds && seeds->n == 3);
    CU_ASSERT(strcmp(seeds->items[0].text, seeds->items[1].text) != 0);
    double acc[4];
    for (size_t k = 0; k < 4; k++) {
        const struct dsnn_json_value *l = eval_level(&v, k);
        CU_ASSERT_FATAL(l != NULL);
        acc[k] = dsnn_json_num(l, "acc_mean", NAN);
        /* mean of the three repeats */
        double s = 0;
        for (size_t i = 0; i < 3; i++)
            s += strtod(item_text(l, "acc", i), NULL);
        CU_ASSERT_DOUBLE_EQUAL(acc[k], s / 3, 1e-7);
        bool differ = strcmp(item_text(l, "loss", 0), item_text(l, "loss", 1)) != 0 ||
                      strcmp(item_text(l, "loss", 1), item_text(l, "loss", 2)) != 0;
        CU_ASSERT(k == 0 ? !differ : differ); /* other noise at > 0, none at 0 */
        if (k == 0)
            CU_ASSERT_EQUAL(dsnn_json_num(l, "acc_std", NAN), 0);
    }
    CU_ASSERT(acc[0] > 0.9);
    CU_ASSERT(acc[0] + acc[1] > acc[2] + acc[3]); /* falls on average */
    CU_ASSERT(acc[3] < 0.6);                      /* all noise: about chance (1/3) */
    dsnn_json_free(&v);

    /* report: listed, and plotted against the noise level */
    r = host("report", tpath("results/ev_noise"), NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "noise robustness"));
    CU_ASSERT(contains(r.out, "0.97"));
    run_free(&r);
    char *html = read_file(tpath("results/ev_noise/report.html"), NULL);
    CU_ASSERT(contains(html, "<svg class=\"chart noise\""));
    CU_ASSERT(contains(html, ">noise level</text>"));
    CU_ASSERT(contains(html, "data-trial=\"trial_00000\""));
    free(html);
}

/* Asserts exit code and a piece of stderr of `evaluate ARGS`. */
static void expect_error(const char *trial, const char *a1, const char *a2, int code,
                         const char *text)
{
    struct run r = evaluate(trial, a1, a2, NULL, NULL);
    CHECK_CODE(r, code);
    CU_ASSERT(contains(r.err, text));
    run_free(&r);
}

static void test_errors(void)
{
    struct cfg_spec spec = {.name = "ev_err", .epochs = 1, .num_samples = 2};
    run_exp(&spec, NULL);
    char t0[4096], t1ckpt[4096]; /* tpath's buffers rotate */
    snprintf(t0, sizeof t0, "%s", tpath("results/ev_err/trial_00000"));
    snprintf(t1ckpt, sizeof t1ckpt, "%s", tpath("results/ev_err/trial_00001/checkpoint.bin"));
    expect_error(tpath("results/ev_err"), NULL, NULL, 5, "is not a trial folder");
    expect_error(tpath("results/ev_err/trial_00009"), NULL, NULL, 5, "is not a trial folder");
    CU_ASSERT(mkdir(tpath("results/ev_err/trial_00007"), 0755) == 0);
    expect_error(tpath("results/ev_err/trial_00007"), NULL, NULL, 5, "no trial_created event");
    expect_error(t0, "--checkpoint", tpath("results/ev_err/none.bin"), 5,
                 "no checkpoint to evaluate");
    expect_error(t0, "--checkpoint", t1ckpt, 3, "for another configuration (trial 1");
    expect_error(t0, "--checkpoint", tpath("ev_err.cfg"), 5, "not a dsnn checkpoint");
    expect_error(t0, "--noise-levels", "0,1.5", 2, "item 2 '1.5' is not a number in [0, 1]");
    expect_error(t0, "--noise-levels", "-0.1", 2, "is not a number in [0, 1]");
    expect_error(t0, "--noise-levels", "0,,0.1", 2, "item 2 '' is not a number");
    expect_error(t0, "--noise-levels", "0.1x", 2, "item 1 '0.1x'");
    expect_error(t0, "--noise-levels", "0.2,0.1", 2, "must be increasing");
    expect_error(t0, "--repeats", "0", 2, "expected an integer in [1, 1000]");
    expect_error(t0, "--repeats", "1001", 2, "expected an integer in [1, 1000]");
    expect_error(t0, "--repeats", "2x", 2, "--repeats '2x'");
    expect_error(t0, "--overwrite", NULL, 2, "apply to 'run' only");
    struct run r = host("run", tpath("ev_err.cfg"), "--repeats", "2", NULL);
    CHECK_CODE(r, 2);
    CU_ASSERT(contains(r.err, "apply to 'evaluate' only"));
    run_free(&r);
    r = host("evaluate", NULL);
    CHECK_CODE(r, 2);
    CU_ASSERT(contains(r.err, "missing the trial folder TRIAL_DIR"));
    run_free(&r);

    /* a checkpoint of another model (and so configuration) */
    spec = (struct cfg_spec){.name = "ev_err_set", .model = "  plugin = \"set\";\n"
                                                            "  learning_rate = 0.1;\n"};
    run_exp(&spec, NULL);
    expect_error(t0, "--checkpoint", tpath("results/ev_err_set/trial_00000/checkpoint.bin"), 3,
                 "for another configuration");
    /* no checkpoint written */
    spec = (struct cfg_spec){.name = "ev_err_nockpt", .experiment_extra = " checkpoint_freq = 0;"};
    run_exp(&spec, NULL);
    expect_error(tpath("results/ev_err_nockpt/trial_00000"), NULL, NULL, 5,
                 "no checkpoint to evaluate");
    /* experiment.cfg changed since: the checkpoint is of another configuration */
    char *cfg = read_file(tpath("results/ev_err/experiment.cfg"), NULL);
    CU_ASSERT_FATAL(cfg != NULL);
    char *at = strstr(cfg, "momentum = 0.9");
    CU_ASSERT_FATAL(at != NULL);
    at[strlen("momentum = 0.")] = '8';
    CU_ASSERT(write_text(tpath("results/ev_err/experiment.cfg"), cfg));
    free(cfg);
    expect_error(t0, NULL, NULL, 3, "for another configuration");
}

static void test_no_noise_split(void)
{
    const char *cfg = tpath("ev_okdata.cfg");
    CU_ASSERT_FATAL(write_text(cfg, "experiment = { name = \"ev_okdata\"; epochs = 1; };\n"
                                    "dataset = { plugin = \"okdata\"; };\n"
                                    "network = { plugin = \"oknet\"; hidden = 8; };\n"
                                    "model = { plugin = \"okmodel\"; };\n"
                                    "search = { plugin = \"oksearch\"; };\n"));
    struct run r = host("run", cfg, "--results", tpath("results"), "-q", "--overwrite", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    expect_error(tpath("results/ev_okdata/trial_00000"), NULL, NULL, 3,
                 "dataset plugin 'okdata' has no noise split");
}

/* The "crash" model fails while evaluating the noise split: the host reports it. */
static void crash_case(const char *name, const char *mode, const char *text)
{
    char model[512];
    snprintf(model, sizeof model,
             "  plugin = \"crash\";\n  crash_on_noise = true;\n  crash_mode = \"%s\";\n"
             "  learning_rate = 0.1;\n",
             mode);
    struct cfg_spec spec = {.name = name, .epochs = 2, .model = model};
    run_exp(&spec, NULL);
    const char *trial = tpath("results/%s/trial_00000", name);
    struct run r = evaluate(trial, "--noise-levels", "0,0.5", NULL, NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, text));
    CU_ASSERT(contains(r.err, "noise_eval.log"));
    run_free(&r);
    CU_ASSERT(!exists(tpath("results/%s/trial_00000/noise_eval.json", name)));
    CU_ASSERT(exists(tpath("results/%s/trial_00000/noise_eval.log", name)));
}

static void test_crashing_model(void)
{
    crash_case("ev_segv", "segv", "killed by signal 11, SIGSEGV");
    crash_case("ev_abort", "abort", "SIGABRT");
    crash_case("ev_error", "error", "crash: deliberate failure");
}

static CU_TestInfo tests[] = {
    {"level 0 is the trial's val_acc (dense; SET: after its round)", test_level0_is_val_acc},
    {"noise lowers accuracy; repeats differ; report plots it", test_noise_and_repeats},
    {"errors: trial folder, checkpoint, levels, repeats, options", test_errors},
    {"a dataset without a noise split", test_no_noise_split},
    {"a model crashing in the evaluation is an error, not a dead host", test_crashing_model},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("dsnn-host evaluate: noise robustness of a trial", tests)
