/* progress.c - progress output of dsnn-host run / resume (see progress.h). */
#include "progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void dsnn_progress_init(struct dsnn_progress *p, bool quiet, int table, const char *metric)
{
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->metric = metric;
    if (table < 0) {
        const char *term = getenv("TERM");
        table = isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0;
    }
    p->table = !quiet && table;
    p->t0 = mono_s();
    p->last_draw = -1e9;
}

void dsnn_progress_epoch(struct dsnn_progress *p, const char *trial_id, const char *params,
                         long long epochs, const struct dsnn_metrics *m)
{
    if (p->quiet || p->table)
        return;
    static const char *const shown[] = {"train_loss", "train_acc", "val_loss", "val_acc",
                                        "noise_acc", "learning_rate"};
    double v;
    int epoch = dsnn_metrics_get(m, "training_iteration", &v) ? (int)v : 0;
    printf("[%s %s] epoch %d/%lld", trial_id, params && params[0] ? params : "-", epoch, epochs);
    for (size_t i = 0; i < DSNN_COUNT_OF(shown); i++)
        if (dsnn_metrics_get(m, shown[i], &v))
            printf("  %s %.4g", shown[i], v);
    if (dsnn_metrics_get(m, "time_this_epoch_s", &v))
        printf("  (%.1f s)", v);
    printf("\n");
    fflush(stdout);
}

static void terminal_size(int *cols, int *rows)
{
    struct winsize ws;
    *cols = 100;
    *rows = 30;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 && ws.ws_row > 5) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
}

/* Prints s cut to width columns (ASCII), then clears to the end of the line. */
static void put_line(const char *s, int width)
{
    printf("%.*s\033[K\n", width > 1 ? width - 1 : 1, s);
}

static void fmt_num(char *buf, size_t size, double v)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.4f", v);
}

void dsnn_progress_clear(struct dsnn_progress *p)
{
    if (!p->table || p->drawn == 0)
        return;
    printf("\033[%dA\r\033[J", p->drawn);
    fflush(stdout);
    p->drawn = 0;
}

void dsnn_progress_table(struct dsnn_progress *p, const struct dsnn_progress_row *rows, size_t n,
                         const char *footer, bool force)
{
    if (!p->table)
        return;
    double now = mono_s();
    if (!force && now - p->last_draw < 1.0)
        return;
    p->last_draw = now;
    int cols, term_rows;
    terminal_size(&cols, &term_rows);
    size_t max_rows = term_rows > 6 ? (size_t)term_rows - 4 : 2;
    if (p->drawn)
        printf("\033[%dA\r", p->drawn);
    int drawn = 0;
    char line[1024], last[32], best[32], metric[64];
    snprintf(metric, sizeof metric, "%s last/best", p->metric);
    snprintf(line, sizeof line, "%-12s %-11s %9s %21s %8s  %s", "trial", "status", "epoch", metric,
             "time_s", "params");
    put_line(line, cols);
    drawn++;
    size_t shown = n > max_rows ? max_rows - 1 : n;
    for (size_t i = 0; i < shown; i++) {
        const struct dsnn_progress_row *r = &rows[i];
        char ep[32], lb[80];
        snprintf(ep, sizeof ep, "%d/%d", r->epochs_done, r->epochs);
        fmt_num(last, sizeof last, r->last);
        fmt_num(best, sizeof best, r->best);
        snprintf(lb, sizeof lb, "%s / %s", last, best);
        snprintf(line, sizeof line, "%-12s %-11s %9s %21s %8.1f  %s", r->trial_id, r->status, ep,
                 lb, r->seconds, r->params && r->params[0] ? r->params : "-");
        put_line(line, cols);
        drawn++;
    }
    if (shown < n) {
        snprintf(line, sizeof line, "... and %zu more trial(s)", n - shown);
        put_line(line, cols);
        drawn++;
    }
    double el = now - p->t0;
    snprintf(line, sizeof line, "%s  [%02d:%02d:%02d]", footer ? footer : "", (int)(el / 3600),
             (int)fmod(el / 60, 60), (int)fmod(el, 60));
    put_line(line, cols);
    drawn++;
    if (drawn < p->drawn)
        printf("\033[J");
    p->drawn = drawn;
    fflush(stdout);
}

void dsnn_progress_end(struct dsnn_progress *p)
{
    p->drawn = 0; /* the last table stays */
    fflush(stdout);
}
