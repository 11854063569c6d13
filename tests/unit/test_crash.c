/* tests/unit/test_crash.c - crash consistency of dsnn-host, black-box through the command line on
 * the generated IDX data of runner_harness.h:
 *   - a full disk: the results directory on a small tmpfs (where this process may mount one;
 *     else a file size limit, RLIMIT_FSIZE, the same failed writes without root), at sizes
 *     from a few pages to nearly what the experiment needs. Every run stops with exit code 5
 *     naming the failed write; what it wrote parses (every journal line whole); after room is
 *     made, `resume` ends the experiment with every trial's result.json / progress.csv equal to
 *     an uninterrupted run's (but the time fields), each trial created once;
 *   - kill -9 of the host at random moments (more than 30 times, some of them in the middle of a
 *     journal or checkpoint write: DSNN_TEST_KILL_AT_WRITE), each followed by `resume`, until
 *     the experiment ends: the same final results as an uninterrupted run. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* mount */
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
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsnn/dsnn.h"
#include "harness.h"

extern char **environ;

#include "runner_harness.h"

#define GRID3 "  grid = { model = { learning_rate = [0.1, 0.05, 0.02]; }; };\n"
enum { EPOCHS = 3, TRIALS = 3 };

static const char *const k_sgd_model = "  plugin = \"dense\";\n"
                                       "  learning_rate = 0.1;\n"
                                       "  momentum = 0.9;\n";

/* Every trial of dir ended as in the reference run ref, created once, and the journal ends. */
static void check_like_reference(const char *ref, const char *dir)
{
    for (int t = 0; t < TRIALS; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        same_results(ref, dir, trial, EPOCHS);
    }
    int n = read_journal(dir);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_STRING_EQUAL(jstr(&g_objs[n - 1], "event"), "experiment_finished");
    for (int t = 0; t < TRIALS; t++) {
        char trial[32];
        snprintf(trial, sizeof trial, "trial_%05d", t);
        CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_created", trial), 1);
        CU_ASSERT_EQUAL(count_events(g_objs, n, "trial_result", trial), EPOCHS);
        CU_ASSERT_STRING_EQUAL(final_status(n, trial), "TERMINATED");
    }
}

/* ---- a full disk ---- */

static size_t g_bytes, g_largest;
static int add_size(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path, (void)ftw;
    if (flag == FTW_F) {
        g_bytes += ((size_t)sb->st_size + 4095) / 4096 * 4096;
        if ((size_t)sb->st_size > g_largest)
            g_largest = (size_t)sb->st_size;
    }
    return 0;
}

/* The bytes dir takes on a tmpfs (whole pages per file), and the size of its largest file. */
static size_t dir_bytes(const char *dir, size_t *largest)
{
    g_bytes = g_largest = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    *largest = g_largest;
    return g_bytes;
}

/* Runs cfg into results dir res with writes failing beyond `limit` bytes: on a tmpfs of that size
 * mounted at res (mounted = true), else with RLIMIT_FSIZE = limit (SIGXFSZ ignored: EFBIG). */
static struct run run_limited(const char *verb, const char *target, const char *res, bool mounted,
                              size_t limit)
{
    const char *args_run[] = {"run", target, "--results", res, "--quiet", NULL};
    const char *args_resume[] = {"resume", target, "--quiet", NULL};
    struct proc p;
    if (mounted) {
        host_start(&p, strcmp(verb, "run") == 0 ? args_run : args_resume);
        return host_wait(&p, 60);
    }
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = limit;
    void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim); /* inherited by the host and its trial processes */
    host_start(&p, strcmp(verb, "run") == 0 ? args_run : args_resume);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, was);
    return host_wait(&p, 60);
}

/* One experiment (checkpoints every epoch, or none: then the journal and the results fill the
 * disk) run out of room at several sizes, each then resumed to its end. */
static void disk_full(const char *name, const char *extra)
{
    struct cfg_spec s = {.name = name, .epochs = EPOCHS, .search = GRID3, .model = k_sgd_model,
                         .experiment_extra = extra};
    char ref_name[64], file[80], ref_dir[4096], cfg[4096];
    snprintf(ref_name, sizeof ref_name, "%sref", name);
    s.name = ref_name;
    snprintf(file, sizeof file, "%s.cfg", ref_name);
    const char *ref_cfg = write_cfg(file, &s);
    struct run r = host("run", ref_cfg, "--results", tpath("res_%s", ref_name), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    snprintf(ref_dir, sizeof ref_dir, "%s", tpath("res_%s/%s", ref_name, ref_name));
    size_t largest = 0;
    const size_t need = dir_bytes(ref_dir, &largest);
    CU_ASSERT_FATAL(need > 8 * 4096);
    s.name = name;
    snprintf(file, sizeof file, "%s.cfg", name);
    snprintf(cfg, sizeof cfg, "%s", write_cfg(file, &s));
    static const double fractions[] = {0.02, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9};
    int stopped = 0, mounted_runs = 0;
    for (size_t k = 0; k < sizeof fractions / sizeof *fractions; k++) {
        char res[4096], dir[4200], opt[64];
        snprintf(res, sizeof res, "%s", tpath("%s_%zu", name, k));
        snprintf(dir, sizeof dir, "%s/%s", res, name);
        CU_ASSERT_FATAL(mkdir(res, 0755) == 0);
        size_t limit = (size_t)(fractions[k] * (double)need) / 4096 * 4096;
        if (limit < 4096)
            limit = 4096;
        snprintf(opt, sizeof opt, "size=%zu,mode=0755", limit);
        const bool mounted = !getenv("DSNN_TEST_NO_MOUNT") &&
                             mount("tmpfs", res, "tmpfs", MS_NOSUID | MS_NODEV, opt) == 0;
        mounted_runs += mounted;
        /* without a tmpfs the limit is per file: a fraction of the largest file's size */
        r = run_limited("run", cfg, res, mounted,
                        (size_t)(fractions[k] * (double)largest) + 1);
        char journal[4300], saved[4300];
        snprintf(journal, sizeof journal, "%s/journal.jsonl", dir);
        snprintf(saved, sizeof saved, "%s/experiment.cfg", dir);
        if (r.code != 0) {
            stopped++;
            CHECK_CODE(r, 5);
            CU_ASSERT(contains(r.err, "write failed: "));
            if (exists(journal)) /* what to do next */
                CU_ASSERT(contains(r.err, "dsnn-host resume"));
        }
        run_free(&r);
        if (exists(journal))
            CU_ASSERT(read_jsonl(journal, g_objs, MAX_LINES) >= 0); /* every line whole */
        if (mounted) /* room made */
            CU_ASSERT(mount("tmpfs", res, "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
                            "size=64m,mode=0755") == 0);
        if (exists(journal) && exists(saved)) {
            r = host("resume", dir, "--quiet", NULL);
            CHECK_CODE(r, 0);
        } else { /* stopped before the experiment existed: it is run again (no --overwrite) */
            r = host("run", cfg, "--results", res, "--quiet", NULL);
            CHECK_CODE(r, 0);
        }
        run_free(&r);
        check_like_reference(ref_dir, dir);
        if (mounted)
            CU_ASSERT(umount(res) == 0);
    }
    CU_ASSERT(stopped >= 6); /* the larger limits may let a run through */
    if (!mounted_runs)
        fprintf(stderr, "\n  (no tmpfs could be mounted: a file size limit was used instead)\n");
}

static void test_disk_full(void)
{
    disk_full("df", NULL);
}

static void test_disk_full_no_checkpoints(void)
{
    disk_full("dfn", " checkpoint_freq = 0;");
}

/* ---- kill -9 at random moments ---- */

/* Runs (or resumes) the experiment of cfg in res; with kill_at > 0 the process (host or trial)
 * that makes the kill_at-th file write of this run dies of SIGKILL in its middle
 * (DSNN_TEST_KILL_AT_WRITE), with kill_at < 0 the host gets SIGKILL -kill_at milliseconds after
 * it started. */
static struct run run_killed(const char *cfg, const char *res, const char *dir, int kill_at)
{
    char saved[4300];
    snprintf(saved, sizeof saved, "%s/experiment.cfg", dir);
    const char *args_run[] = {"run", cfg, "--results", res, "--quiet", NULL};
    const char *args_resume[] = {"resume", dir, "--quiet", NULL};
    char counter[4200], var[4300];
    snprintf(counter, sizeof counter, "%s", tpath("km.writes"));
    unlink(counter);
    snprintf(var, sizeof var, "%d:%s", kill_at, counter);
    if (kill_at > 0)
        setenv("DSNN_TEST_KILL_AT_WRITE", var, 1);
    struct proc p;
    host_start(&p, exists(saved) ? args_resume : args_run);
    unsetenv("DSNN_TEST_KILL_AT_WRITE");
    if (kill_at < 0) {
        sleep_ms(-kill_at);
        kill(p.pid, SIGKILL);
    }
    return host_wait(&p, 60);
}

static void test_kill9_many(void)
{
    struct cfg_spec s = {.name = "kmref", .epochs = EPOCHS, .search = GRID3, .model = k_sgd_model,
                         .experiment_extra = " max_failures = 1000;"};
    const char *cfg = write_cfg("kmref.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_kmref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    char ref[4096];
    snprintf(ref, sizeof ref, "%s", tpath("res_kmref/kmref"));
    s.name = "km";
    char cfg_km[4096];
    snprintf(cfg_km, sizeof cfg_km, "%s", write_cfg("km.cfg", &s));
    srand(20261204);
    int kills = 0, torn = 0, runs = 0, experiments = 0, killed_trials = 0;
    while (kills < 36 && runs < 400) {
        char res[4096], dir[4200];
        snprintf(res, sizeof res, "%s", tpath("res_km%d", experiments));
        snprintf(dir, sizeof dir, "%s/km", res);
        bool done = false;
        while (!done && runs < 400) {
            /* mostly in the middle of a write; every fourth at a moment in time */
            const int at = runs % 4 == 3 ? -(1 + rand() % 60) : 1 + rand() % 30;
            r = run_killed(cfg_km, res, dir, at);
            runs++;
            if (r.code == 128 + SIGKILL) {
                kills++;
            } else {
                CHECK_CODE(r, 0);
                done = r.code == 0;
            }
            torn += strstr(r.err, "its last line was cut short") != NULL;
            run_free(&r);
        }
        CU_ASSERT_FATAL(done);
        check_like_reference(ref, dir);
        int n = read_journal(dir);
        for (int i = 0; i < n; i++)
            killed_trials += strcmp(jstr(&g_objs[i], "event"), "trial_failed") == 0 &&
                             strstr(jstr(&g_objs[i], "error"), "signal 9") != NULL;
        experiments++;
    }
    fprintf(stderr, "\n  %d kill(s) -9 of the host in %d runs of %d experiment(s); %d torn journal "
                    "line(s) repaired, %d trial process(es) killed while writing\n",
            kills, runs, experiments, torn, killed_trials);
    CU_ASSERT(kills >= 30);
    CU_ASSERT(torn >= 1);
    CU_ASSERT(killed_trials >= 1);
}

/* The moment between experiment.cfg's rename and the journal's creation, made exactly: a results
 * directory holding experiment.cfg only resumes to the uninterrupted run's results. */
static void test_killed_before_journal(void)
{
    struct cfg_spec s = {.name = "kbref", .epochs = EPOCHS, .search = GRID3, .model = k_sgd_model};
    const char *cfg = write_cfg("kbref.cfg", &s);
    struct run r = host("run", cfg, "--results", tpath("res_kbref"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    s.name = "kb";
    char *text = NULL;
    {
        static char buf[16384];
        make_cfg(buf, sizeof buf, &s);
        text = buf;
    }
    CU_ASSERT_FATAL(mkdir(tpath("res_kb"), 0755) == 0 && mkdir(tpath("res_kb/kb"), 0755) == 0);
    CU_ASSERT_FATAL(write_text(tpath("res_kb/kb/experiment.cfg"), text));
    r = host("resume", tpath("res_kb/kb"), "--quiet", NULL);
    CHECK_CODE(r, 0);
    run_free(&r);
    char ref[4096];
    snprintf(ref, sizeof ref, "%s", tpath("res_kbref/kbref"));
    check_like_reference(ref, tpath("res_kb/kb"));
}

static CU_TestInfo tests[] = {
    {"a full disk: exit 5, results intact, resume", test_disk_full},
    {"the same without checkpoints (journal and results fill it)", test_disk_full_no_checkpoints},
    {"kill -9 at random moments and in writes, resume each time", test_kill9_many},
    {"killed before the journal was created: resume", test_killed_before_journal},
    CU_TEST_INFO_NULL,
};

DSNN_TEST_MAIN("crash consistency: a full disk, kill -9", tests)
