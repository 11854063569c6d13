/* tests/unit/test_resume.c - parallel trials, checkpoints, retries and resume of dsnn-host,
 * black-box through the command line on the generated IDX data of runner_harness.h (every run
 * takes a fraction of a second):
 *   - experiment.parallel = 2 gives the same results as parallel = 1 (and trials overlap);
 *   - kill -9 of the host while a trial hangs (after its first epoch is in the journal), then
 *     `dsnn-host resume`: every trial's result.json / progress.csv equal an uninterrupted run's
 *     (but the time fields), finished trials are not run again, the interrupted one continues
 *     from its checkpoint (the journal shows both); a journal line cut short is tolerated;
 *   - a resume from an older checkpoint gives the uninterrupted run's numbers bit for bit, for a
 *     dense, a sparse (SET) and a gradient-grown (RigL) model, and SET / RigL on a ResNet whose
 *     convolutions (those of the residual blocks too) are truly sparse;
 *   - the same after SIGINT (exit 130, INTERRUPTED, resumable);
 *   - experiment.max_failures: a trial crashing once is retried from its checkpoint and ends
 *     like an uninterrupted one (error.1.txt kept); retries exhausted end in ERROR;
 *   - checkpoint files: written atomically (no temporary left, header and checksum valid),
 *     keep_checkpoints, checkpoint_freq = 0; a damaged checkpoint on resume fails that trial
 *     with a message naming the file, not the host;
 *   - the search strategy's state survives a resume (restore op, or the journal replayed);
 *   - PAUSE and PERTURB (PBT mechanics: checkpoint copy, new parameters, pbt_history.jsonl);
 *   - resume of a finished experiment, usage errors, a changed experiment.cfg;
 *   - the progress table on a terminal (a pseudo-terminal).
 * The test-only plugins (build/test-plugins/ok/): "crash" (crash_once_file: fail / hang only on
 * the first attempt) and "oksearch" (STOP / PAUSE / PERTURB on demand, save / restore). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp, posix_openpt */
#endif
#include <ctype.h>
#include <dirent.h>
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

#include "checkpoint.h" /* host/: checks of the checkpoint files */
#include "journal.h"    /* host/: JSON numbers */
#include "dsnn/dsnn.h"
#include "harness.h"

extern char **environ;

#include "runner_harness.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Files of dir whose name contains needle. */
static int count_files(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, needle) != NULL;
    closedir(d);
    return n;
}

/* The crash model, hanging (or failing) at the start of epoch `epoch` of trial `trial` the
 * first time only (crash_once_file = once). */
static const char *crash_model(const char *mode, int trial, int epoch, const char *once)
{
    static char buf[8][4400];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0],
             "  plugin = \"crash\";\n"
             "  learning_rate = 0.1;\n"
             "  momentum = 0.9;\n"
             "  crash_mode = \"%s\";\n"
             "  crash_trial = %d;\n"
             "  crash_epoch = %d;\n"
             "  crash_once_file = \"%s\";\n",
             mode, trial, epoch, once);
    return b;
}

/* A file that exists (crash_once_file of the uninterrupted reference runs: no failure). */
static const char *existing_file(void)
{
    const char *p = tpath("already_crashed");
    if (!exists(p))
        CU_ASSERT_FATAL(write_text(p, "x\n"));
    return p;
}

#define LR_GRID "  grid = { model = { learning_rate = [0.1, 0.05, 0.02]; }; };\n"

/* ------------------------------------------------------------------------------------------ */
/* (1) Parallel trials                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_parallel_same_results(void)
{
    struct cfg_spec s = {
        .name = "par",
        .epochs = 2,
        .num_samples = 2,
        .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n",
    };
    const char *cfg1 = write_cfg("par1.cfg", &s);
    struct run r = host("run", cfg1, "--results", tpath("res_par1"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    s.experiment_extra = " parallel = 2;";
    const char *cfg2 = write_cfg("par2.cfg", &s);
    r = host("run", cfg2, "--results", tpath("res_par2"), NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "2 at once"));
    CU_ASSERT(contains(r.out, "TERMINATED"));
    run_free(&r);
    for (int t = 0; t < 4; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_par1/par"), tpath("res_par2/par"), trial, 2);
        char *p1 = read_file(tpath("res_par1/par/%s/params.json", trial), NULL);
        char *p2 = read_file(tpath("res_par2/par/%s/params.json", trial), NULL);
        CU_ASSERT(p1 && p2 && strcmp(p1, p2) == 0);
        free(p1), free(p2);
    }
    /* two trials ran at once: trial 1 started before trial 0 finished */
    int n = read_journal(tpath("res_par2/par"));
    int started1 = -1, finished0 = -1;
    for (int i = 0; i < n; i++) {
        if (started1 < 0 && strcmp(jstr(&g_objs[i], "event"), "trial_started") == 0 &&
            strcmp(jstr(&g_objs[i], "trial_id"), "trial_00001") == 0)
            started1 = i;
        if (finished0 < 0 && strcmp(jstr(&g_objs[i], "event"), "trial_finished") == 0 &&
            strcmp(jstr(&g_objs[i], "trial_id"), "trial_00000") == 0)
            finished0 = i;
    }
    CU_ASSERT(started1 >= 0 && finished0 >= 0 && started1 < finished0);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_finished", NULL), 4);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");

    /* threads = 0: the cores divided among the trials at once, at least 1 each */
    s.threads = -1;
    s.experiment_extra = " parallel = 3;";
    s.num_samples = 1;
    const char *cfg3 = write_cfg("par3.cfg", &s);
    r = host("run", cfg3, "--results", tpath("res_par3"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    n = read_journal(tpath("res_par3/par"));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long expect = cores / 2 > 0 ? cores / 2 : 1; /* 2 trials: min(parallel, trials) at once */
    CU_ASSERT_EQUAL((long)jnum(&g_objs[0], "trial_threads"), expect);
    char *log = read_file(tpath("res_par3/par/trial_00000/log.txt"), NULL);
    char needle[64];
    snprintf(needle, sizeof needle, "%ld threads", expect);
    CU_ASSERT(contains(log, needle));
    free(log);
}

/* ------------------------------------------------------------------------------------------ */
/* (2) kill -9 of the host, then resume                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Runs cfg (trial `hang_trial` hangs at the start of epoch 1 the first time: once), kills the
 * host with sig once that trial hangs (its epoch 0 is in the journal and its checkpoint
 * written), and returns the interrupted run. */
static struct run run_until_hang(const char *cfg, const char *res, const char *once, int sig)
{
    const char *args[] = {"run", cfg, "--results", res, "--quiet", NULL};
    struct proc p;
    host_start(&p, args);
    CU_ASSERT(wait_for_file(once));
    sleep_ms(100);
    kill(p.pid, sig);
    return host_wait(&p, 30);
}

static void check_resumed_journal(const char *dir, int n_trials, const char *hang_trial)
{
    int n = read_journal(dir);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "experiment_resumed", NULL), 1);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
    for (int t = 0; t < n_trials; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        CU_ASSERT_STRING_EQUAL(final_status(n, trial), "TERMINATED");
        /* the strategy saw each epoch once */
        CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", trial), 3);
        /* created once */
        CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_created", trial), 1);
    }
    /* the hanging trial: started, then continued after its first epoch from its checkpoint */
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", hang_trial), 2);
    const struct jobj *again = nth_event(n, "trial_started", hang_trial, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(jnum(again, "from_epoch"), 1);
    CU_ASSERT_EQUAL(jnum(again, "from_line"), 1);
    CU_ASSERT_STRING_EQUAL(jget(again, "checkpoint") ? jget(again, "checkpoint")->val : "",
                           "true");
}

static void test_kill9_resume(void)
{
    struct cfg_spec s = {.name = "k9", .epochs = 3, .search = LR_GRID};
    s.model = crash_model("hang", 1, 1, existing_file());
    const char *ref_cfg = write_cfg("k9ref.cfg", &s);
    struct run r = host("run", ref_cfg, "--results", tpath("res_k9ref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);

    const char *once = tpath("k9.once");
    s.model = crash_model("hang", 1, 1, once);
    const char *cfg = write_cfg("k9.cfg", &s);
    r = run_until_hang(cfg, tpath("res_k9"), once, SIGKILL);
    CHECK_CODE(r, 128 + SIGKILL);
    run_free(&r);
    const char *dir = tpath("res_k9/k9");
    int n = read_journal(dir);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00000"), "TERMINATED");
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00001"), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00002"), 0);
    CU_ASSERT(exists(tpath("res_k9/k9/trial_00001/checkpoint.bin")));
    /* a line cut short by the kill (as if it had happened while writing) */
    FILE *f = fopen(tpath("res_k9/k9/journal.jsonl"), "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"time\": \"2030-01-01T00:00:00Z\", \"event\": \"trial_res", f);
    fclose(f);

    r = host("resume", dir, NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.err, "cut short"));
    CU_ASSERT(contains(r.out, "resuming"));
    run_free(&r);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_k9ref/k9"), dir, trial, 3);
    }
    check_resumed_journal(dir, 3, "trial_00001");
    n = read_journal(dir);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00000"), 1); /* not re-run */
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00002"), 1);

    /* the same with two trials at once (the kill lands wherever the other trial is) */
    struct cfg_spec s2 = {.name = "k9p",
                          .epochs = 3,
                          .num_samples = 2,
                          .experiment_extra = " parallel = 2;",
                          .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n"};
    s2.model = crash_model("hang", 1, 1, existing_file());
    ref_cfg = write_cfg("k9pref.cfg", &s2);
    r = host("run", ref_cfg, "--results", tpath("res_k9pref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    once = tpath("k9p.once");
    s2.model = crash_model("hang", 1, 1, once);
    cfg = write_cfg("k9p.cfg", &s2);
    r = run_until_hang(cfg, tpath("res_k9p"), once, SIGKILL);
    CHECK_CODE(r, 128 + SIGKILL);
    run_free(&r);
    dir = tpath("res_k9p/k9p");
    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    for (int t = 0; t < 4; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_k9pref/k9p"), dir, trial, 3);
    }
    check_resumed_journal(dir, 4, "trial_00001");
}

/* The state a kill -9 right after epoch 2 of 4 leaves, made exactly: a run with every
 * checkpoint kept, its checkpoint.bin replaced by checkpoint.2.bin and its journal cut after the
 * result of epoch 1. Resumed, it must give the uninterrupted run's numbers bit for bit: the
 * model's save/load carry everything (weights, sparse topology, optimizer state, RNG states,
 * schedules) and the data order depends on (seed, epoch) only. */
static void resume_from_epoch2_net(const char *name, const char *model, const char *network)
{
    struct cfg_spec s = {.name = name, .epochs = 4, .model = model, .network = network,
                         .experiment_extra = " keep_checkpoints = 10;"};
    char file[64];
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *cfg = write_cfg(file, &s);
    struct run r = host("run", cfg, "--results", tpath("res_m_full"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    r = host("run", cfg, "--results", tpath("res_m_cut"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *dir = tpath("res_m_cut/%s", name);
    size_t len = 0;
    char *ck = read_file(tpath("res_m_cut/%s/trial_00000/checkpoint.2.bin", name), &len);
    CU_ASSERT_FATAL(ck && len > 0);
    CU_ASSERT_FATAL(write_file(tpath("res_m_cut/%s/trial_00000/checkpoint.bin", name), ck, len));
    free(ck);
    char *journal = read_file(tpath("res_m_cut/%s/journal.jsonl", name), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(journal);
    char *cut = strstr(journal, "\"line\": 1,");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cut);
    cut = strchr(cut, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(cut);
    CU_ASSERT_FATAL(write_file(tpath("res_m_cut/%s/journal.jsonl", name), journal,
                               (size_t)(cut + 1 - journal)));
    free(journal);
    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(!strstr(r.err, "not deterministic"));
    run_free(&r);
    same_results(tpath("res_m_full/%s", name), dir, "trial_00000", 4);
    int n = read_journal(dir);
    const struct jobj *again = nth_event(n, "trial_started", "trial_00000", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(jnum(again, "from_epoch"), 2);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00000"), 4);
}

static void resume_from_epoch2(const char *name, const char *model)
{
    resume_from_epoch2_net(name, model, NULL);
}

static void test_resume_models(void)
{
#define SCHED "  momentum = 0.9;\n  lr_scheduler = \"StepLR\";\n  lr_gamma = 0.8;\n"
    resume_from_epoch2("m_dense", "  plugin = \"dense\";\n  learning_rate = 0.1;\n" SCHED);
    resume_from_epoch2("m_set", "  plugin = \"set\";\n  on_perc = 0.3;\n"
                                "  learning_rate = 0.1;\n" SCHED);
    resume_from_epoch2("m_rigl", "  plugin = \"rigl\";\n  on_perc = 0.3;\n"
                                 "  update_frequency = 5;\n  learning_rate = 0.1;\n" SCHED);
    /* truly sparse convolutions, also inside residual blocks (ResNet-18 at width 1/8) */
#define RESNET "  plugin = \"resnet\";\n  width = 0.125;\n"
    resume_from_epoch2_net("m_set_conv", "  plugin = \"set\";\n  on_perc = 0.2;\n"
                           "  sparse_linear_only = false;\n  learning_rate = 0.1;\n" SCHED,
                           RESNET);
    resume_from_epoch2_net("m_rigl_conv", "  plugin = \"rigl\";\n  on_perc = 0.2;\n"
                           "  sparse_linear_only = false;\n  update_frequency = 3;\n"
                           "  learning_rate = 0.1;\n" SCHED, RESNET);
#undef RESNET
#undef SCHED
}

/* ------------------------------------------------------------------------------------------ */
/* (3) SIGINT, then resume                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void test_sigint_resume(void)
{
    struct cfg_spec s = {.name = "si", .epochs = 3, .search = LR_GRID};
    s.model = crash_model("hang", 1, 1, existing_file());
    const char *ref_cfg = write_cfg("siref.cfg", &s);
    struct run r = host("run", ref_cfg, "--results", tpath("res_siref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);

    const char *once = tpath("si.once");
    s.model = crash_model("hang", 1, 1, once);
    const char *cfg = write_cfg("si.cfg", &s);
    r = run_until_hang(cfg, tpath("res_si"), once, SIGINT);
    CHECK_CODE(r, 130);
    CU_ASSERT(contains(r.err, "interrupted"));
    CU_ASSERT(contains(r.err, "dsnn-host resume"));
    run_free(&r);
    const char *dir = tpath("res_si/si");
    int n = read_journal(dir);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "INTERRUPTED");
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_interrupted");
    const struct jobj *fin = nth_event(n, "trial_finished", "trial_00001", 0);
    CU_ASSERT(fin && !jget(fin, "seq")); /* not a search event: the trial is not complete */
    CU_ASSERT(!exists(tpath("res_si/si/trial_00001/error.txt")));

    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_siref/si"), dir, trial, 3);
    }
    check_resumed_journal(dir, 3, "trial_00001");
    n = read_journal(dir);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00000"), 1);

    /* a resumed experiment that has finished: nothing to do, nothing written */
    size_t l0 = 0, l1 = 0;
    char *j0 = read_file(tpath("res_si/si/journal.jsonl"), &l0);
    r = host("resume", dir, NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.out, "nothing to resume"));
    run_free(&r);
    char *j1 = read_file(tpath("res_si/si/journal.jsonl"), &l1);
    CU_ASSERT(j0 && j1 && l0 == l1 && memcmp(j0, j1, l0) == 0);
    free(j0), free(j1);
}

/* ------------------------------------------------------------------------------------------ */
/* (4) max_failures                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void test_retry(void)
{
    struct cfg_spec s = {.name = "rt", .epochs = 3, .search = LR_GRID};
    s.model = crash_model("segv", 1, 2, existing_file());
    const char *ref_cfg = write_cfg("rtref.cfg", &s);
    struct run r = host("run", ref_cfg, "--results", tpath("res_rtref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);

    /* trial 1 dies of SIGSEGV at the start of epoch 2 once: retried from its checkpoint */
    s.model = crash_model("segv", 1, 2, tpath("rt.once"));
    s.experiment_extra = " max_failures = 1;";
    const char *cfg = write_cfg("rt.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_rt"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(contains(r.err, "retrying"));
    run_free(&r);
    const char *dir = tpath("res_rt/rt");
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_rtref/rt"), dir, trial, 3);
    }
    char *e1 = read_file(tpath("res_rt/rt/trial_00001/error.1.txt"), NULL);
    CU_ASSERT(contains(e1, "SIGSEGV"));
    CU_ASSERT(contains(e1, "after 2 epoch"));
    free(e1);
    CU_ASSERT(!exists(tpath("res_rt/rt/trial_00001/error.txt")));
    int n = read_journal(dir);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "TERMINATED");
    const struct jobj *failed = nth_event(n, "trial_failed", "trial_00001", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(failed);
    CU_ASSERT_EQUAL(jnum(failed, "attempt"), 1);
    CU_ASSERT(contains(jstr(failed, "error"), "SIGSEGV"));
    const struct jobj *again = nth_event(n, "trial_started", "trial_00001", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(again);
    CU_ASSERT_EQUAL(jnum(again, "attempt"), 2);
    CU_ASSERT_EQUAL(jnum(again, "from_epoch"), 2);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00001"), 3);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_failed", NULL), 1);
    CU_ASSERT_EQUAL(jnum(&g_objs[n - 1], "failed_trials"), 0);

    /* crashing every time: max_failures retries, then ERROR (every attempt's error kept) */
    s.model = crash_model("abort", 1, 1, "");
    s.experiment_extra = " max_failures = 2;";
    cfg = write_cfg("rt2.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_rt2"), "--quiet", NULL);
    CHECK_CODE(r, 1);
    run_free(&r);
    for (int a = 1; a <= 2; a++) {
        char *e = read_file(tpath("res_rt2/rt/trial_00001/error.%d.txt", a), NULL);
        CU_ASSERT(contains(e, "SIGABRT"));
        free(e);
    }
    char *e = read_file(tpath("res_rt2/rt/trial_00001/error.txt"), NULL);
    CU_ASSERT(contains(e, "SIGABRT"));
    free(e);
    n = read_journal(tpath("res_rt2/rt"));
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "ERROR");
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_failed", "trial_00001"), 2);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00001"), 3);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", "trial_00001"), 1);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00002"), "TERMINATED");
    check_result_json(tpath("res_rt2/rt"), "trial_00001", 1);
}

/* ------------------------------------------------------------------------------------------ */
/* (5) Checkpoint files                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_checkpoint_files(void)
{
    struct cfg_spec s = {.name = "ck", .epochs = 3, .experiment_extra = " keep_checkpoints = 2;"};
    const char *cfg = write_cfg("ck.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_ck"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *tdir = tpath("res_ck/ck/trial_00000");
    struct dsnn_checkpoint_header h;
    struct dsnn_error err = {0};
    unsigned char *payload = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dsnn_checkpoint_read(tpath("res_ck/ck/trial_00000/checkpoint.bin"), &h, &payload, &err),
        DSNN_OK);
    free(payload);
    CU_ASSERT_EQUAL(h.epochs, 3);
    CU_ASSERT_EQUAL(h.n_results, 3);
    CU_ASSERT_EQUAL(h.trial_index, 0);
    CU_ASSERT_STRING_EQUAL(h.trial_id, "trial_00000");
    CU_ASSERT_STRING_EQUAL(h.model, "dense");
    CU_ASSERT_STRING_EQUAL(h.dsnn_version, DSNN_VERSION_STRING);
    CU_ASSERT(h.payload_size > 0);
    /* the previous one kept, older ones removed, no temporary file left */
    CU_ASSERT(exists(tpath("res_ck/ck/trial_00000/checkpoint.2.bin")));
    CU_ASSERT(!exists(tpath("res_ck/ck/trial_00000/checkpoint.1.bin")));
    CU_ASSERT_EQUAL(count_files(tdir, ".tmp"), 0);
    CU_ASSERT_EQUAL(count_files(tdir, "checkpoint"), 2);
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(tpath("res_ck/ck/trial_00000/checkpoint.2.bin"), &h,
                                         NULL, &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(h.epochs, 2);

    /* checkpoint_freq = 2 of 3 epochs: after epoch 2 only; 0: none */
    s.name = "ck2";
    s.experiment_extra = " checkpoint_freq = 2;";
    cfg = write_cfg("ck2.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_ck"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(tpath("res_ck/ck2/trial_00000/checkpoint.bin"), &h, NULL,
                                         &err),
                    DSNN_OK);
    CU_ASSERT_EQUAL(h.epochs, 2);
    s.name = "ck0";
    s.experiment_extra = " checkpoint_freq = 0;";
    cfg = write_cfg("ck0.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_ck"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    CU_ASSERT_EQUAL(count_files(tpath("res_ck/ck0/trial_00000"), "checkpoint"), 0);

    /* a damaged file is refused with a message naming it */
    const char *bad = tpath("bad_checkpoint");
    CU_ASSERT_FATAL(mkdir(bad, 0755) == 0);
    struct dsnn_checkpoint_header w = {.epochs = 1, .n_results = 1};
    snprintf(w.trial_id, sizeof w.trial_id, "trial_00000");
    CU_ASSERT_EQUAL_FATAL(dsnn_checkpoint_write(bad, &w, "0123456789", 10, 1, &err), DSNN_OK);
    const char *file = tpath("bad_checkpoint/checkpoint.bin");
    size_t len = 0;
    char *bytes = read_file(file, &len);
    CU_ASSERT_FATAL(bytes && len > 10);
    bytes[len - 3] ^= 0x40;
    CU_ASSERT_FATAL(write_file(file, bytes, len));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, file));
    CU_ASSERT(contains(err.msg, "checksum"));
    CU_ASSERT_FATAL(write_file(file, bytes, len - 4));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, "truncated"));
    /* the header is inside the checksum: a flipped bit of the epoch count is caught (format 1
     * hashed the payload only, and a trial skipped epochs) */
    bytes[len - 3] ^= 0x40;
    bytes[16] ^= 0x02; /* epochs 1 -> 3 */
    CU_ASSERT_FATAL(write_file(file, bytes, len));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, "checksum"));
    bytes[16] ^= 0x02;
    /* the dsnn version that wrote it must be this one (the version is in the hash: a forged
     * one needs the hash recomputed, as here) */
    const size_t hsize = len - 10, vat = 16 + 7 * 8 + 32; /* header bytes; dsnn_version */
    CU_ASSERT_EQUAL_FATAL(strcmp(bytes + vat, DSNN_VERSION_STRING), 0);
    bytes[vat] = bytes[vat] == '9' ? '8' : '9';
    CU_ASSERT_FATAL(write_file(file, bytes, len));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, "checksum"));
    memset(bytes + 56, 0, 8);
    uint64_t hash = dsnn_fnv1a(dsnn_fnv1a(DSNN_FNV_INIT, bytes, hsize), bytes + hsize, 10);
    memcpy(bytes + 56, &hash, 8);
    CU_ASSERT_FATAL(write_file(file, bytes, len));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, "written by dsnn"));
    free(bytes);
    CU_ASSERT_EQUAL_FATAL(dsnn_checkpoint_write(bad, &w, "0123456789", 10, 1, &err), DSNN_OK);
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_OK);
    /* an intact checkpoint with bytes after its payload is refused too */
    CU_ASSERT_EQUAL_FATAL(dsnn_checkpoint_write(bad, &w, "0123456789", 10, 1, &err), DSNN_OK);
    bytes = read_file(file, &len);
    CU_ASSERT_FATAL(bytes != NULL);
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_OK);
    char *longer = malloc(len + 1);
    memcpy(longer, bytes, len);
    longer[len] = 'x';
    CU_ASSERT_FATAL(write_file(file, longer, len + 1));
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(file, &h, NULL, &err), DSNN_ERR_FORMAT);
    CU_ASSERT(contains(err.msg, file));
    free(longer);
    free(bytes);
}

/* Numbers written to the journal and result files read back exactly (17 significant digits),
 * so that a resumed search replays the same decisions; non-finite ones are null (as in
 * result.json). */
static void test_json_numbers_round_trip(void)
{
    const double v[] = {0.1, 1.0 / 3.0, 0.89371234567891234, -2.5e-7, 6.02214076e23, 1e-300,
                        123456.789012345678, 0.5, 42, -17};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        struct dsnn_sbuf b = {0};
        dsnn_sbuf_json_number(&b, v[i]);
        CU_ASSERT_FATAL(b.p != NULL);
        char *end = NULL;
        const double back = strtod(b.p, &end);
        if (back != v[i])
            fprintf(stderr, "\n  %.17g written as %s\n", v[i], b.p);
        CU_ASSERT(back == v[i]);
        CU_ASSERT(end && *end == '\0');
        dsnn_sbuf_free(&b);
    }
    struct dsnn_sbuf b = {0};
    dsnn_sbuf_json_number(&b, NAN);
    dsnn_sbuf_puts(&b, " ");
    dsnn_sbuf_json_number(&b, -INFINITY);
    CU_ASSERT_STRING_EQUAL(b.p, "null null");
    dsnn_sbuf_free(&b);
}

/* A 3-epoch grid experiment `name` whose trial_00001 hangs in epoch 1, stopped there by SIGINT
 * (exit 130) in res_<name>/<name>; with reference, the same experiment first runs uninterrupted
 * into res_<name>ref/<name>. */
static void interrupted_grid(const char *name, bool reference)
{
    struct cfg_spec s = {.name = name, .epochs = 3, .search = LR_GRID};
    char file[64], res[64];
    struct run r;
    if (reference) {
        s.model = crash_model("hang", 1, 1, existing_file());
        snprintf(file, sizeof file, "%sref.cfg", name);
        const char *ref_cfg = write_cfg(file, &s);
        r = host("run", ref_cfg, "--results", tpath("res_%sref", name), "--quiet", NULL);
        CHECK_CODE(r, 0);
        run_free(&r);
    }
    snprintf(file, sizeof file, "%s.once", name);
    const char *once = tpath("%s", file);
    s.model = crash_model("hang", 1, 1, once);
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *cfg = write_cfg(file, &s);
    snprintf(res, sizeof res, "res_%s", name);
    r = run_until_hang(cfg, tpath("%s", res), once, SIGINT);
    CHECK_CODE(r, 130);
    run_free(&r);
}

/* A journal written before non-finite numbers became null holds them as the strings "nan",
 * "inf", "-inf": it still loads, reads them as numbers, and `dsnn-host resume` replays it. */
static void test_legacy_nan_journal(void)
{
    interrupted_grid("lg", true);
    struct run r;
    /* the journal as the previous version wrote it: legacy strings among the metrics; without
     * the strategy's state file, so that the replay passes them to on_result */
    const char *dir = tpath("res_lg/lg");
    const char *jpath = tpath("res_lg/lg/journal.jsonl");
    char *text = read_file(jpath, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    FILE *f = fopen(jpath, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int legacy = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
        char *m = strstr(line, "\"metrics\": {");
        if (m && m < nl) {
            m += strlen("\"metrics\": {");
            fprintf(f, "%.*s\"legacy_nan\": \"nan\", \"legacy_inf\": \"inf\", "
                       "\"legacy_ninf\": \"-inf\", %.*s\n",
                    (int)(m - line), line, (int)(nl - m), m);
            legacy++;
        } else {
            fprintf(f, "%.*s\n", (int)(nl - line), line);
        }
    }
    fclose(f);
    free(text);
    CU_ASSERT(legacy > 0);
    unlink(tpath("res_lg/lg/search_state.bin"));

    struct dsnn_journal_log log;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL_FATAL(dsnn_journal_load(jpath, &log, &err), DSNN_OK);
    int seen = 0;
    for (size_t i = 0; i < log.n; i++) {
        const struct dsnn_json_value *m = dsnn_json_get(&log.events[i], "metrics");
        if (!m)
            continue;
        seen++;
        CU_ASSERT(isnan(dsnn_json_num(m, "legacy_nan", 0)));
        CU_ASSERT(dsnn_json_num(m, "legacy_inf", 0) == INFINITY);
        CU_ASSERT(dsnn_json_num(m, "legacy_ninf", 0) == -INFINITY);
    }
    CU_ASSERT_EQUAL(seen, legacy);
    dsnn_journal_log_free(&log);

    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(!r.err || !strstr(r.err, "damaged"));
    run_free(&r);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_lgref/lg"), dir, trial, 3);
    }
}

/* Journal fields that index or size anything are range-checked on resume: a trial_result whose
 * "line" is -1, 1.8e19, 1e9 (beyond the trial's next line) or not integral ends the resume with an
 * error naming the journal and the field, at once (it used to hang or allocate gigabytes). */
/* A trial process that dies (SIGSEGV in epoch 1) keeps what it wrote to its log.txt: the log is
 * line-buffered (fully buffered, it used to be empty). */
static void test_crashed_trial_log(void)
{
    struct cfg_spec s = {.name = "cl", .epochs = 2};
    s.model = crash_model("segv", 0, 1, tpath("cl.once"));
    const char *cfg = write_cfg("cl.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_cl"), "--quiet", NULL);
    if (r.code != 1)
        fprintf(stderr, "\n    code %d: %s\n", r.code, r.err ? r.err : "");
    CU_ASSERT(r.code == 1); /* the trial ended in ERROR */
    run_free(&r);
    char *log = read_file(tpath("res_cl/cl/trial_00000/log.txt"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT(contains(log, "trial_00000: attempt 1"));
    if (!contains(log, "trial_00000: attempt 1"))
        fprintf(stderr, "\n    log.txt: \"%s\"\n", log);
    free(log);
}

/* run --overwrite of an experiment that another dsnn-host is running: refused before anything is
 * removed (the lock is taken before the delete); once that host is gone, it overwrites. */
/* The configuration is read once: its snapshot (@includes expanded) is what every trial is built
 * from and what experiment.cfg holds. Trial 0 pauses in epoch 1 while the configuration and the
 * file it includes are edited; trials 1 and 2 must still run as an unedited run does. Then, with
 * the include deleted, `resume` needs only experiment.cfg. */
static void snapshot_cfg(const char *name, const char *once, const char *inc)
{
    char model[8800];
    snprintf(model, sizeof model,
             "  plugin = \"crash\";\n  learning_rate = 0.1;\n  crash_mode = \"pause\";\n"
             "  crash_trial = 0;\n  crash_epoch = 1;\n  crash_once_file = \"%s\";\n"
             "  @include \"%s\"\n",
             once, inc);
    char file[64];
    snprintf(file, sizeof file, "%s.cfg", name);
    struct cfg_spec s = {.name = name, .epochs = 3, .search = LR_GRID, .model = model};
    write_cfg(file, &s);
}

static void test_config_snapshot(void)
{
    char inc[4096], once[4096]; /* tpath's buffers rotate */
    snprintf(inc, sizeof inc, "%s", tpath("snap_inc.cfg"));
    CU_ASSERT_FATAL(write_text(inc, "  momentum = 0.5;\n"));
    snapshot_cfg("snapref", existing_file(), inc);
    struct run r = host("run", tpath("snapref.cfg"), "--results", tpath("res_snapref"),
                        "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);

    snprintf(once, sizeof once, "%s", tpath("snap.once"));
    snapshot_cfg("snap", once, inc);
    const char *args[] = {"run", tpath("snap.cfg"), "--results", tpath("res_snap"), "--quiet",
                          NULL};
    struct proc p;
    host_start(&p, args);
    CU_ASSERT(wait_for_file(once));
    CU_ASSERT_FATAL(write_text(inc, "  momentum = 0.0;\n"));
    struct cfg_spec edited = {.name = "snap", .epochs = 3, .search = LR_GRID};
    write_cfg("snap.cfg", &edited);
    CU_ASSERT_EQUAL(unlink(once), 0);
    r = host_wait(&p, 60);
    CHECK_CODE(r, 0);
    run_free(&r);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_snapref/snapref"), tpath("res_snap/snap"), trial, 3);
    }
    char *saved = read_file(tpath("res_snap/snap/experiment.cfg"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(saved);
    CU_ASSERT(contains(saved, "momentum = 0.5;"));
    CU_ASSERT(contains(saved, "# >>> @include"));
    CU_ASSERT(strstr(saved, "\n  @include") == NULL);
    free(saved);
    CU_ASSERT_EQUAL(unlink(inc), 0);
    r = host("resume", tpath("res_snap/snap"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
}

static void test_overwrite_live(void)
{
    struct cfg_spec s = {.name = "ow", .epochs = 2, .search = LR_GRID};
    const char *once = tpath("ow.once");
    s.model = crash_model("hang", 1, 1, once);
    const char *cfg = write_cfg("ow.cfg", &s);
    const char *res = tpath("res_ow");
    const char *args[] = {"run", cfg, "--results", res, "--quiet", NULL};
    struct proc p;
    host_start(&p, args);
    CU_ASSERT_FATAL(wait_for_file(once));
    struct run r = host("run", cfg, "--results", res, "--quiet", "--overwrite", NULL);
    CU_ASSERT_EQUAL(r.code, 5);
    CU_ASSERT(r.err && contains(r.err, "in use by another dsnn-host"));
    run_free(&r);
    char *journal = read_file(tpath("res_ow/ow/journal.jsonl"), NULL);
    CU_ASSERT_PTR_NOT_NULL(journal); /* the live experiment is intact */
    free(journal);
    kill(p.pid, SIGINT);
    r = host_wait(&p, 30);
    CHECK_CODE(r, 130);
    run_free(&r);
    r = host("run", cfg, "--results", res, "--quiet", "--overwrite", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    journal = read_file(tpath("res_ow/ow/journal.jsonl"), NULL);
    CU_ASSERT(journal && !contains(journal, "experiment_resumed"));
    free(journal);
}

/* Result files are never written through a symbolic link: a link planted at a trial's
 * result.json (pointing out of the results directory) is replaced by the resume's rewrite of the
 * file or refused (appends open with O_NOFOLLOW), and the file it points to stays as it was. */
static void test_results_no_follow(void)
{
    interrupted_grid("nf", false);
    struct run r;
    const char *outside = tpath("nf_outside.txt");
    CU_ASSERT_FATAL(write_file(outside, "keep", 4));
    const char *target = tpath("res_nf/nf/trial_00001/result.json");
    unlink(target);
    CU_ASSERT_EQUAL_FATAL(symlink(outside, target), 0);
    r = host("resume", tpath("res_nf/nf"), "--quiet", NULL);
    const bool refused = r.err && contains(r.err, "symbolic link");
    run_free(&r);
    /* the link was replaced (atomic rewrite) or refused, never written through */
    struct stat st;
    CU_ASSERT(lstat(target, &st) != 0 || !S_ISLNK(st.st_mode) || refused);
    size_t n = 0;
    char *kept = read_file(outside, &n);
    CU_ASSERT(kept && n == 4 && memcmp(kept, "keep", 4) == 0);
    free(kept);
}

/* experiment.trial_timeout_s: an attempt that hangs is stopped (SIGTERM, then SIGKILL) and the
 * trial ends in ERROR with a message naming the key, instead of blocking the host for ever. */
static void test_trial_timeout(void)
{
    struct cfg_spec s = {.name = "to", .epochs = 2, .experiment_extra = " trial_timeout_s = 1.5;"};
    s.model = crash_model("hang", 0, 1, tpath("to.once"));
    const char *cfg = write_cfg("to.cfg", &s);
    const double t0 = (double)time(NULL);
    struct run r = host("run", cfg, "--results", tpath("res_to"), "--quiet", NULL);
    CU_ASSERT_EQUAL(r.code, 1);
    CU_ASSERT((double)time(NULL) - t0 < 25); /* stopped, not waited for */
    run_free(&r);
    char *journal = read_file(tpath("res_to/to/journal.jsonl"), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(journal);
    CU_ASSERT(contains(journal, "trial_timeout_s"));
    free(journal);
    /* the key's range is checked before anything runs */
    s.name = "to2";
    s.experiment_extra = " trial_timeout_s = -1.0;";
    cfg = write_cfg("to2.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_to"), "--quiet", NULL);
    CU_ASSERT_EQUAL(r.code, 3);
    CU_ASSERT(r.err && contains(r.err, "trial_timeout_s"));
    run_free(&r);
}

/* A misspelt experiment.metric is warned about (once, with the usual metrics the model reports)
 * instead of silently feeding NaN to the search strategy; the right one gives no warning. */
static void test_unknown_metric(void)
{
    struct cfg_spec s = {.name = "um", .epochs = 2, .experiment_extra = " metric = \"val_accuracy\";"};
    const char *cfg = write_cfg("um.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_um"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(r.err && contains(r.err, "experiment.metric = \"val_accuracy\" is not among") &&
              contains(r.err, "val_acc"));
    run_free(&r);
    s.name = "um2";
    s.experiment_extra = " metric = \"val_acc\";";
    cfg = write_cfg("um2.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_um"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(!r.err || !contains(r.err, "experiment.metric"));
    run_free(&r);
}

static void test_journal_field_ranges(void)
{
    interrupted_grid("jr", false);
    struct run r;
    const char *dir = tpath("res_jr/jr");
    char jpath[4200];
    snprintf(jpath, sizeof jpath, "%s/journal.jsonl", dir);
    size_t len = 0;
    char *orig = read_file(jpath, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    const char *at = strstr(orig, "\"line\": 0,");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    static const char *const bad[] = {"-1", "1.8e19", "1000000000", "0.5", "\"0\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = malloc(len + 64);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        const size_t head = (size_t)(at - orig) + strlen("\"line\": ");
        int n = snprintf(text, len + 64, "%.*s%s%s", (int)head, orig, bad[i],
                         orig + head + 1 /* the 0 */);
        CU_ASSERT_FATAL(n > 0 && write_file(jpath, text, (size_t)n));
        free(text);
        r = host("resume", dir, "--quiet", NULL);
        CU_ASSERT(r.code != 0 && r.code != -1 && r.code != 130);
        if (!r.err || !strstr(r.err, "'line'"))
            fprintf(stderr, "\n    line = %s: code %d, stderr: %s\n", bad[i], r.code,
                    r.err ? r.err : "(none)");
        CU_ASSERT(r.err && strstr(r.err, "'line'") && strstr(r.err, "journal.jsonl"));
        run_free(&r);
    }
    /* the journal as written resumes */
    CU_ASSERT_FATAL(write_file(jpath, orig, len));
    free(orig);
    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
}

/* A journal that ends in NUL bytes (what a power loss leaves behind a write) resumes with a
 * warning, the NULs and the line they cut dropped and cut off the file, to the uninterrupted
 * run's results; NUL bytes followed by more lines are damage: an error naming the line. */
static void test_journal_nul_tail(void)
{
    interrupted_grid("jn", true);
    struct run r;
    const char *dir = tpath("res_jn/jn");
    char jpath[4200];
    snprintf(jpath, sizeof jpath, "%s/journal.jsonl", dir);
    size_t len = 0;
    char *orig = read_file(jpath, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    /* NULs in the middle, then more lines: refused */
    const char *second = strchr(orig, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    const size_t cut = (size_t)(second + 1 - orig);
    char *mid = malloc(len + 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mid);
    memcpy(mid, orig, cut);
    memset(mid + cut, 0, 16);
    memcpy(mid + cut + 16, orig + cut, len - cut);
    CU_ASSERT_FATAL(write_file(jpath, mid, len + 16));
    free(mid);
    r = host("resume", dir, "--quiet", NULL);
    CU_ASSERT(r.code != 0 && r.code != -1);
    CU_ASSERT(r.err && strstr(r.err, "journal.jsonl:2: NUL bytes inside"));
    run_free(&r);
    /* a NUL tail after a line cut short: dropped with a warning */
    char *tail = malloc(len + 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
    memcpy(tail, orig, len);
    memcpy(tail + len, "{\"event\": \"trial_res", 20);
    memset(tail + len + 20, 0, 4096 - 20);
    CU_ASSERT_FATAL(write_file(jpath, tail, len + 4096));
    free(tail);
    free(orig);
    r = host("resume", dir, "--quiet", NULL);
    CHECK_CODE(r, 0);
    CU_ASSERT(r.err && strstr(r.err, "4076 NUL bytes"));
    run_free(&r);
    size_t now = 0;
    char *after = read_file(jpath, &now);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT(memchr(after, '\0', now) == NULL);
    free(after);
    for (int t = 0; t < 3; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(tpath("res_jnref/jn"), dir, trial, 3);
    }
}

static void test_corrupt_checkpoint_on_resume(void)
{
    struct cfg_spec s = {.name = "cc", .epochs = 3, .search = LR_GRID};
    const char *once = tpath("cc.once");
    s.model = crash_model("hang", 1, 1, once);
    const char *cfg = write_cfg("cc.cfg", &s);
    struct run r = run_until_hang(cfg, tpath("res_cc"), once, SIGTERM);
    CHECK_CODE(r, 130);
    run_free(&r);
    const char *file = tpath("res_cc/cc/trial_00001/checkpoint.bin");
    size_t len = 0;
    char *bytes = read_file(file, &len);
    CU_ASSERT_FATAL(bytes && len > 300);
    bytes[len / 2 + 150] ^= 0x10; /* in the payload */
    CU_ASSERT_FATAL(write_file(file, bytes, len));
    free(bytes);
    r = host("resume", tpath("res_cc/cc"), "--quiet", NULL);
    CHECK_CODE(r, 1);
    CU_ASSERT(contains(r.err, file));
    CU_ASSERT(contains(r.err, "checksum"));
    run_free(&r);
    char *etxt = read_file(tpath("res_cc/cc/trial_00001/error.txt"), NULL);
    CU_ASSERT(contains(etxt, file));
    free(etxt);
    int n = read_journal(tpath("res_cc/cc"));
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "ERROR");
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00000"), "TERMINATED");
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00002"), "TERMINATED");
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
}

/* ------------------------------------------------------------------------------------------ */
/* (6) The search strategy's state over a resume                                              */
/* ------------------------------------------------------------------------------------------ */

/* oksearch answers STOP from its 5th result on: trial 0 runs 3 epochs (results 1-3), trial 1
 * stops after 2 (results 4, 5), trial 2 after 1 (6). The host is killed after result 4: the
 * count must survive the resume (restore op or replay), else trial 1 would run 3 epochs. */
static void stateful_search(const char *name, bool no_save)
{
    char search[512];
    snprintf(search, sizeof search,
             "  path = \"model.learning_rate\";\n  values = [0.1, 0.05, 0.02];\n"
             "  stop_after_results = 5;\n  no_save = %s;\n",
             no_save ? "true" : "false");
    const char *once = tpath("%s.once", name);
    struct cfg_spec s = {.name = name, .epochs = 3, .search_plugin = "oksearch", .search = search};
    s.model = crash_model("hang", 1, 1, once);
    char file[64];
    snprintf(file, sizeof file, "%s.cfg", name);
    const char *cfg = write_cfg(file, &s);
    const char *res = tpath("res_%s", name);
    struct run r = run_until_hang(cfg, res, once, SIGKILL);
    CHECK_CODE(r, 128 + SIGKILL);
    run_free(&r);
    CU_ASSERT_EQUAL(exists(tpath("res_%s/%s/search_state.bin", name, name)), !no_save);
    r = host("resume", tpath("res_%s/%s", name, name), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *dir = tpath("res_%s/%s", name, name);
    int n = read_journal(dir);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00000"), "TERMINATED");
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "STOPPED");
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00002"), "STOPPED");
    const struct jobj *res_ev = nth_event(n, "experiment_resumed", NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res_ev);
    CU_ASSERT_STRING_EQUAL(jstr(res_ev, "search_state"), no_save ? "replayed" : "restored");
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", NULL), 6);
    check_result_json(dir, "trial_00000", 3);
    check_result_json(dir, "trial_00001", 2);
    check_result_json(dir, "trial_00002", 1);
}

static void test_search_state_resume(void)
{
    stateful_search("ssr", false); /* search_state.bin and the restore op */
    stateful_search("ssp", true);  /* no state file: the journal replayed */
}

/* ------------------------------------------------------------------------------------------ */
/* (7) PAUSE and PERTURB                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_pause(void)
{
    struct cfg_spec s = {
        .name = "pause",
        .epochs = 3,
        .experiment_extra = " checkpoint_freq = 5;", /* PAUSE checkpoints anyway */
        .search_plugin = "oksearch",
        .search = "  path = \"model.learning_rate\";\n  values = [0.1, 0.05];\n"
                  "  pause_epoch = 0;\n",
    };
    const char *cfg = write_cfg("pause.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_pause"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    int n = read_journal(tpath("res_pause/pause"));
    for (int t = 0; t < 2; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        CU_ASSERT_STRING_EQUAL(final_status(n, trial), "PAUSED");
        check_result_json(tpath("res_pause/pause"), trial, 1);
        struct dsnn_checkpoint_header h;
        struct dsnn_error err = {0};
        CU_ASSERT_EQUAL(dsnn_checkpoint_read(tpath("res_pause/pause/%s/checkpoint.bin", trial),
                                             &h, NULL, &err),
                        DSNN_OK);
        CU_ASSERT_EQUAL(h.epochs, 1);
    }
}

static void test_perturb(void)
{
    /* trial 1 is perturbed after epoch 0: it continues from its own checkpoint with
     * learning_rate 0.02 */
    struct cfg_spec s = {
        .name = "pbt",
        .epochs = 3,
        .experiment_extra = " parallel = 2;",
        .search_plugin = "oksearch",
        .search = "  path = \"model.learning_rate\";\n  values = [0.1, 0.05];\n"
                  "  perturb_epoch = 0;\n  perturb_trial = 1;\n  perturb_value = 0.02;\n",
    };
    const char *cfg = write_cfg("pbt.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_pbt"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    const char *dir = tpath("res_pbt/pbt");
    check_result_json(dir, "trial_00001", 3);
    CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[0], "learning_rate"), 0.05, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[1], "learning_rate"), 0.02, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[2], "learning_rate"), 0.02, 1e-12);
    CU_ASSERT_EQUAL(jnum(&g_objs2[1], "epoch"), 1);
    check_result_json(dir, "trial_00000", 3);
    CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs2[2], "learning_rate"), 0.1, 1e-12);
    CU_ASSERT_EQUAL_FATAL(read_jsonl(tpath("res_pbt/pbt/trial_00001/params.json"), g_objs, 1), 1);
    CU_ASSERT_DOUBLE_EQUAL(jnum(&g_objs[0], "model.learning_rate"), 0.02, 1e-12);
    CU_ASSERT_EQUAL_FATAL(
        read_jsonl(tpath("res_pbt/pbt/trial_00001/pbt_history.jsonl"), g_objs, MAX_LINES), 1);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[0], "source"), "trial_00001");
    CU_ASSERT(contains(jget(&g_objs[0], "old_params")->val, "0.05"));
    CU_ASSERT(contains(jget(&g_objs[0], "new_params")->val, "0.02"));
    CU_ASSERT_EQUAL(jnum(&g_objs[0], "from_epoch"), 1);
    char *tcfg = read_file(tpath("res_pbt/pbt/trial_00001/trial.cfg"), NULL);
    CU_ASSERT(contains(tcfg, "learning_rate = 0.02;"));
    free(tcfg);
    CU_ASSERT(!exists(tpath("res_pbt/pbt/trial_00000/pbt_history.jsonl")));
    int n = read_journal(dir);
    CU_ASSERT_STRING_EQUAL(final_status(n, "trial_00001"), "TERMINATED");
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_perturbed", "trial_00001"), 1);
    CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_started", "trial_00001"), 2);
    const struct jobj *p = nth_event(n, "trial_perturbed", "trial_00001", 0);
    CU_ASSERT(p && contains(jget(p, "new_params")->val, "0.02"));

    /* from another trial's checkpoint: trial 1 copies the checkpoint of trial 0 (finished,
     * 3 epochs), under its own name, and has nothing left to run */
    s.name = "pbt2";
    s.experiment_extra = NULL;
    s.search = "  path = \"model.learning_rate\";\n  values = [0.1, 0.05];\n"
               "  perturb_epoch = 0;\n  perturb_trial = 1;\n  perturb_source = 0;\n"
               "  perturb_value = 0.02;\n";
    cfg = write_cfg("pbt2.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_pbt"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    struct dsnn_checkpoint_header h;
    struct dsnn_error err = {0};
    CU_ASSERT_EQUAL(dsnn_checkpoint_read(tpath("res_pbt/pbt2/trial_00001/checkpoint.bin"), &h,
                                         NULL, &err),
                    DSNN_OK);
    CU_ASSERT_STRING_EQUAL(h.trial_id, "trial_00001");
    CU_ASSERT_EQUAL(h.trial_index, 1);
    CU_ASSERT_EQUAL(h.epochs, 3);
    CU_ASSERT_EQUAL(read_jsonl(tpath("res_pbt/pbt2/trial_00001/pbt_history.jsonl"), g_objs, 4), 1);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[0], "source"), "trial_00000");
    check_result_json(tpath("res_pbt/pbt2"), "trial_00001", 1);
}

/* ------------------------------------------------------------------------------------------ */
/* (8) Command line                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void test_resume_errors(void)
{
    struct run r = host("resume", NULL);
    CHECK_CODE(r, 2);
    CU_ASSERT(contains(r.err, "missing"));
    run_free(&r);
    r = host("resume", tpath("no_such_dir"), NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "not a dsnn results directory"));
    run_free(&r);
    r = host("resume", tpath("x"), "--overwrite", NULL);
    CHECK_CODE(r, 2);
    run_free(&r);

    /* experiment.cfg changed since the experiment started: refused */
    struct cfg_spec s = {.name = "chg", .epochs = 1};
    const char *cfg = write_cfg("chg.cfg", &s);
    r = host("run", cfg, "--results", tpath("res_chg"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    FILE *f = fopen(tpath("res_chg/chg/experiment.cfg"), "a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("# edited\n", f);
    fclose(f);
    r = host("resume", tpath("res_chg/chg"), NULL);
    CHECK_CODE(r, 3);
    CU_ASSERT(contains(r.err, "changed"));
    run_free(&r);

    /* `run` on an existing results directory points at resume */
    r = host("run", cfg, "--results", tpath("res_chg"), NULL);
    CHECK_CODE(r, 5);
    CU_ASSERT(contains(r.err, "resume"));
    run_free(&r);
}

/* ------------------------------------------------------------------------------------------ */
/* (9) The progress table on a terminal                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_tty_table(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    CU_ASSERT_FATAL(master >= 0);
    CU_ASSERT_FATAL(grantpt(master) == 0 && unlockpt(master) == 0);
    const char *slave = ptsname(master);
    CU_ASSERT_PTR_NOT_NULL_FATAL(slave);
    struct cfg_spec s = {.name = "tty", .epochs = 2, .experiment_extra = " parallel = 2;",
                         .search = "  grid = { model = { learning_rate = [0.1, 0.05]; }; };\n"};
    const char *cfg = write_cfg("tty.cfg", &s);
    char exe[4096], plugins[4096], test_plugins[4096], res[4096];
    snprintf(exe, sizeof exe, "%s/bin/dsnn-host", dsnn_test_build_dir());
    snprintf(plugins, sizeof plugins, "%s/plugins", dsnn_test_build_dir());
    snprintf(test_plugins, sizeof test_plugins, "%s/test-plugins/ok", dsnn_test_build_dir());
    snprintf(res, sizeof res, "%s", tpath("res_tty"));
    char *argv[] = {exe, "--plugin-dir", plugins, "--plugin-dir", test_plugins, "run",
                    (char *)cfg, "--results", res, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, slave, O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    setenv("TERM", "xterm", 1);
    pid_t pid;
    CU_ASSERT_FATAL(posix_spawn(&pid, exe, &fa, NULL, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    fcntl(master, F_SETFL, O_NONBLOCK);
    char out[65536];
    size_t len = 0;
    int status = 0;
    for (int i = 0; i < 6000; i++) {
        ssize_t r;
        while ((r = read(master, out + len, sizeof out - 1 - len)) > 0)
            len += (size_t)r;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            sleep_ms(20);
            while ((r = read(master, out + len, sizeof out - 1 - len)) > 0)
                len += (size_t)r;
            break;
        }
        sleep_ms(10);
    }
    close(master);
    out[len] = '\0';
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(contains(out, "\033[K"));         /* drawn in place */
    CU_ASSERT(contains(out, "val_acc last/best")); /* the table's header */
    CU_ASSERT(contains(out, "TERMINATED"));
    CU_ASSERT(contains(out, "2/2"));
    CU_ASSERT(!strstr(out, "] epoch 1/2")); /* not the line-per-epoch output */
}

static CU_TestInfo tests[] = {
    {"parallel = 2 gives the results of parallel = 1", test_parallel_same_results},
    {"kill -9 of the host, then resume", test_kill9_resume},
    {"resume from a checkpoint is bitwise exact (dense, set, rigl; sparse convs)",
     test_resume_models},
    {"SIGINT, then resume", test_sigint_resume},
    {"max_failures: retry from the checkpoint", test_retry},
    {"checkpoint files", test_checkpoint_files},
    {"JSON numbers round-trip exactly", test_json_numbers_round_trip},
    {"a journal with the legacy \"nan\" strings resumes", test_legacy_nan_journal},
    {"damaged checkpoint on resume", test_corrupt_checkpoint_on_resume},
    {"journal fields out of range on resume", test_journal_field_ranges},
    {"a misspelt experiment.metric is warned about", test_unknown_metric},
    {"experiment.trial_timeout_s stops a hung trial", test_trial_timeout},
    {"result files are not written through symbolic links", test_results_no_follow},
    {"run --overwrite of a live experiment is refused", test_overwrite_live},
    {"the configuration is read once, its @includes snapshotted", test_config_snapshot},
    {"the log of a crashed trial keeps its lines", test_crashed_trial_log},
    {"journal with a NUL tail (power loss) on resume", test_journal_nul_tail},
    {"search strategy state over a resume", test_search_state_resume},
    {"PAUSE", test_pause},
    {"PERTURB (PBT mechanics)", test_perturb},
    {"resume: command line and changed configuration", test_resume_errors},
    {"progress table on a terminal", test_tty_table},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("runner: parallel trials, checkpoints, retries, resume", tests)
