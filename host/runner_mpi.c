/* runner_mpi.c - trials farmed over MPI ranks (Open MPI: mpirun, or Slurm's srun).
 *
 * Started as `mpirun -np N dsnn-host ... run CFG` (or resume DIR) with N > 1, rank 0 is the host
 * of a local run: the search strategy, the journal, the progress display, result.json. It starts
 * no trial process itself: each trial goes to a slot of a worker rank (ranks 1..N-1, each with
 * experiment.parallel slots). The worker forks the trial process exactly as a local host does
 * (rn_spawn_child: the same process, pipe protocol and checkpoints) and relays the bytes of its
 * pipes over MPI; on rank 0 a relay thread feeds them into a pipe pair per remote slot, so that
 * the scheduler of runner.c reads and writes a remote trial as it does a local one. Only the
 * process handling differs (rn_trial_kill, rn_trial_wait). A trial's numbers do not depend on
 * where it runs, so an experiment over N ranks equals the local run (experiment.threads fixed).
 *
 * The trial processes of the workers write their checkpoints and log.txt into the trial folders:
 * the results directory must be one shared directory (the same path on every node: NFS, Lustre
 * ...); rank 0 writes everything else. Every rank needs the plugins and the data at the same
 * paths.
 *
 * Messages (MPI_COMM_WORLD; every one starts with a uint32 slot number on the worker):
 *   rank 0 -> worker: CFG (the experiment's snapshot, once), START (a trial: index, id, folder,
 *   seed, configuration hash, attempt, result lines so far, its parameters, the checkpoint it
 *   starts from with its payload), BYTES (to the trial process's pipe), KILL (a signal), STOP.
 *   worker -> rank 0: BYTES (from the trial process's pipe), EXIT (its wait status), FAIL (the
 *   worker cannot run trials: the job is aborted with the message).
 * Every send is non-blocking (MPI_Isend, its buffer kept until it completes) and both sides keep
 * receiving while sends are pending, so that two large messages crossing cannot deadlock.
 * Only the relay thread of rank 0 (or the worker's main loop) calls MPI after MPI_Init
 * (MPI_THREAD_SERIALIZED). A rank that dies ends the MPI job (MPI's default); `resume` then
 * continues from the journal and checkpoints as after a kill -9 of a local host. */
#include "runner_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The size of the job this process was started in, from the launcher's environment (0: not
 * started by an MPI launcher). Read before MPI_Init, and without MPI support at all. */
static long launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < DSNN_COUNT_OF(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    const char *procid = getenv("SLURM_PROCID"), *ntasks = getenv("SLURM_STEP_NUM_TASKS");
    if (procid && ntasks && *ntasks)
        return strtol(ntasks, NULL, 10);
    return 0;
}

#ifndef DSNN_HAVE_MPI

int dsnn_mpi_init(int *argc, char ***argv, struct dsnn_error *err)
{
    (void)argc, (void)argv;
    long n = launcher_size();
    if (n > 1)
        return dsnn_error_set(err, DSNN_ERR_INVALID,
                              "started as one of %ld MPI processes (mpirun / srun), but this "
                              "dsnn-host was built without MPI: install libopenmpi-dev and "
                              "rebuild (cmake finds it; -DDSNN_MPI=OFF disables it), or run "
                              "it without mpirun",
                              n),
               -1;
    return 0;
}
int dsnn_mpi_rank(void) { return 0; }
int dsnn_mpi_size(void) { return 1; }
void dsnn_mpi_finalize(void) {}
void dsnn_mpi_abort(int code) { (void)code; }
int dsnn_mpi_worker(const struct dsnn_registry *reg, struct dsnn_error *err)
{
    (void)reg, (void)err;
    return DSNN_EXIT_OK;
}
bool rn_mpi_active(void) { return false; }
bool rn_mpi_prepare(struct experiment *ex)
{
    (void)ex;
    return false;
}
int rn_mpi_pick(struct experiment *ex, struct trial *t)
{
    (void)ex, (void)t;
    return 0;
}
bool rn_mpi_spawn(struct experiment *ex, struct trial *t, const struct child_start *cs)
{
    (void)ex, (void)t, (void)cs;
    return false;
}
void rn_mpi_kill(struct trial *t, int sig) { (void)t, (void)sig; }
void rn_mpi_kill_all(int sig) { (void)sig; }
int rn_mpi_wait(struct trial *t)
{
    (void)t;
    return 0;
}

#else /* DSNN_HAVE_MPI */

#include <fcntl.h>
#include <mpi.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum tag { TAG_CFG = 1, TAG_START, TAG_BYTES, TAG_KILL, TAG_STOP, TAG_EXIT, TAG_FAIL };

static int g_rank, g_size = 1;
static bool g_inited;

/* ---- messages: a growing byte buffer, and a reader over one ---- */

struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct wbuf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void put_u64(struct wbuf *b, uint64_t v) { put(b, &v, sizeof v); }
static void put_str(struct wbuf *b, const char *s)
{
    uint64_t n = s ? strlen(s) : 0;
    put_u64(b, n);
    put(b, s ? s : "", (size_t)n);
}

struct rbuf {
    const unsigned char *p;
    size_t len, at;
    bool bad;
};

static void get(struct rbuf *r, void *out, size_t n)
{
    if (r->bad || r->len - r->at < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p + r->at, n);
    r->at += n;
}
static uint64_t get_u64(struct rbuf *r)
{
    uint64_t v;
    get(r, &v, sizeof v);
    return v;
}
/* A string of the message, copied (malloc'd, NUL-terminated; NULL if the message is short). */
static char *get_str(struct rbuf *r)
{
    uint64_t n = get_u64(r);
    if (r->bad || n > r->len - r->at) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p + r->at, (size_t)n);
    s[n] = '\0';
    r->at += (size_t)n;
    return s;
}

/* ---- non-blocking sends ---- */

struct pending {
    MPI_Request req;
    unsigned char *buf;
};
static struct pending *g_out;
static size_t g_n_out, g_cap_out;

/* Sends slot + payload (copied) to rank `to` with tag, without blocking. */
static void send_msg(int to, int tag, uint32_t slot, const void *payload, size_t n)
{
    if (g_n_out == g_cap_out) {
        size_t cap = g_cap_out ? g_cap_out * 2 : 16;
        struct pending *q = realloc(g_out, cap * sizeof *q);
        if (!q) {
            fprintf(stderr, "dsnn-host (rank %d): out of memory\n", g_rank);
            MPI_Abort(MPI_COMM_WORLD, DSNN_EXIT_IO);
        }
        g_out = q;
        g_cap_out = cap;
    }
    unsigned char *buf = malloc(sizeof slot + n);
    if (!buf || n > (size_t)INT32_MAX - sizeof slot) {
        fprintf(stderr, "dsnn-host (rank %d): a message of %zu bytes: out of memory\n", g_rank, n);
        MPI_Abort(MPI_COMM_WORLD, DSNN_EXIT_IO);
    }
    memcpy(buf, &slot, sizeof slot);
    if (n)
        memcpy(buf + sizeof slot, payload, n);
    struct pending *p = &g_out[g_n_out++];
    p->buf = buf;
    MPI_Isend(buf, (int)(sizeof slot + n), MPI_BYTE, to, tag, MPI_COMM_WORLD, &p->req);
}

/* Frees the buffers of completed sends; returns how many are still pending. */
static size_t progress_sends(void)
{
    size_t k = 0;
    for (size_t i = 0; i < g_n_out; i++) {
        int done = 0;
        MPI_Test(&g_out[i].req, &done, MPI_STATUS_IGNORE);
        if (done)
            free(g_out[i].buf);
        else
            g_out[k++] = g_out[i];
    }
    g_n_out = k;
    return k;
}

/* Receives the next message from `from` (MPI_ANY_SOURCE) if one is there: *buf (malloc'd, after
 * the slot number), *n, *slot, *tag, *source. false: none waiting. */
static bool recv_msg(int from, unsigned char **buf, size_t *n, uint32_t *slot, int *tag,
                     int *source)
{
    int flag = 0;
    MPI_Status s;
    MPI_Iprobe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
    if (!flag)
        return false;
    int count = 0;
    MPI_Get_count(&s, MPI_BYTE, &count);
    unsigned char *b = malloc(count > 0 ? (size_t)count : 1);
    if (!b) {
        fprintf(stderr, "dsnn-host (rank %d): out of memory\n", g_rank);
        MPI_Abort(MPI_COMM_WORLD, DSNN_EXIT_IO);
    }
    MPI_Recv(b, count, MPI_BYTE, s.MPI_SOURCE, s.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    *tag = s.MPI_TAG;
    *source = s.MPI_SOURCE;
    *slot = UINT32_MAX;
    if ((size_t)count >= sizeof *slot)
        memcpy(slot, b, sizeof *slot);
    size_t body = (size_t)count >= sizeof *slot ? (size_t)count - sizeof *slot : 0;
    memmove(b, b + ((size_t)count - body), body);
    *buf = b;
    *n = body;
    return true;
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ---- start-up ---- */

int dsnn_mpi_init(int *argc, char ***argv, struct dsnn_error *err)
{
    if (launcher_size() <= 1)
        return 0; /* a local run: MPI is not started at all */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return dsnn_error_set(err, DSNN_ERR_IO, "MPI_Init_thread failed"), -1;
    g_inited = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (provided < MPI_THREAD_SERIALIZED && g_size > 1) {
        dsnn_error_set(err, DSNN_ERR_IO,
                       "the MPI library offers no MPI_THREAD_SERIALIZED (it gave level %d)",
                       provided);
        return -1;
    }
    return g_size > 1 ? 1 : 0;
}

int dsnn_mpi_rank(void) { return g_rank; }
int dsnn_mpi_size(void) { return g_size; }
void dsnn_mpi_abort(int code)
{
    if (g_inited && g_size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
}

/* ---- rank 0: remote slots and the relay thread ---- */

struct rslot {
    int rank;      /* worker rank */
    uint32_t slot; /* its slot on that rank */
    bool busy;
    struct trial *t;
    int to_host_w;   /* the relay writes the trial's messages here (the host reads t->rfd) */
    int from_host_r; /* and reads what the host writes to t->wfd */
    int status;      /* wait status reported by the worker */
    bool exited;     /* status is set and to_host_w closed */
    int kill_sig;    /* a signal to send (0: none) */
    unsigned char *start; /* the START message waiting to be sent */
    size_t start_len;
};

static struct {
    bool active; /* rank 0 of a job with workers */
    pthread_t thread;
    bool thread_started, stop;
    pthread_mutex_t mu;
    struct rslot *slots;
    size_t n_slots;
    unsigned char *cfg; /* CFG message, sent once to every worker */
    size_t cfg_len;
    bool cfg_sent;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

bool rn_mpi_active(void) { return R.active; }

static void write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the host closed its end (the trial was reaped): dropped */
        p += w;
        n -= (size_t)w;
    }
}

static void relay_message(int tag, uint32_t slot, int source, unsigned char *buf, size_t n)
{
    if (tag == TAG_FAIL) {
        fprintf(stderr, "dsnn-host: rank %d cannot run trials: %.*s\n", source, (int)n, buf);
        MPI_Abort(MPI_COMM_WORLD, DSNN_EXIT_CONFIG);
    }
    struct rslot *s = NULL;
    pthread_mutex_lock(&R.mu);
    for (size_t i = 0; i < R.n_slots && !s; i++)
        if (R.slots[i].rank == source && R.slots[i].slot == slot && R.slots[i].busy)
            s = &R.slots[i];
    int fd = s && !s->exited ? s->to_host_w : -1;
    pthread_mutex_unlock(&R.mu);
    if (!s)
        return;
    if (tag == TAG_BYTES && fd >= 0) {
        write_all(fd, buf, n);
    } else if (tag == TAG_EXIT && n >= sizeof(int32_t)) {
        int32_t status;
        memcpy(&status, buf, sizeof status);
        pthread_mutex_lock(&R.mu);
        s->status = status;
        close(s->to_host_w);
        close(s->from_host_r);
        s->to_host_w = s->from_host_r = -1;
        s->exited = true; /* after the status: the host reads it once it sees EOF */
        pthread_mutex_unlock(&R.mu);
    }
}

static void *relay_main(void *arg)
{
    (void)arg;
    unsigned char chunk[65536];
    for (;;) {
        pthread_mutex_lock(&R.mu);
        if (!R.cfg_sent) {
            for (int r = 1; r < g_size; r++)
                send_msg(r, TAG_CFG, 0, R.cfg, R.cfg_len);
            R.cfg_sent = true;
        }
        struct pollfd fds[MAX_PARALLEL];
        size_t who[MAX_PARALLEL];
        nfds_t nf = 0;
        for (size_t i = 0; i < R.n_slots; i++) {
            struct rslot *s = &R.slots[i];
            if (!s->busy)
                continue;
            if (s->start) {
                send_msg(s->rank, TAG_START, s->slot, s->start, s->start_len);
                free(s->start);
                s->start = NULL;
            }
            if (s->kill_sig && !s->exited) {
                int32_t sig = s->kill_sig;
                send_msg(s->rank, TAG_KILL, s->slot, &sig, sizeof sig);
            }
            s->kill_sig = 0;
            if (!s->exited && s->from_host_r >= 0 && nf < MAX_PARALLEL) {
                fds[nf] = (struct pollfd){.fd = s->from_host_r, .events = POLLIN};
                who[nf++] = i;
            }
        }
        bool stop = R.stop;
        pthread_mutex_unlock(&R.mu);
        if (stop)
            break;
        int pr = poll(fds, nf, 2);
        for (nfds_t k = 0; pr > 0 && k < nf; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(fds[k].fd, chunk, sizeof chunk);
            if (got > 0) {
                pthread_mutex_lock(&R.mu);
                struct rslot *s = &R.slots[who[k]];
                send_msg(s->rank, TAG_BYTES, s->slot, chunk, (size_t)got);
                pthread_mutex_unlock(&R.mu);
            }
        }
        unsigned char *buf;
        size_t n;
        uint32_t slot;
        int tag, source;
        while (recv_msg(MPI_ANY_SOURCE, &buf, &n, &slot, &tag, &source)) {
            relay_message(tag, slot, source, buf, n);
            free(buf);
        }
        progress_sends();
    }
    for (int r = 1; r < g_size; r++)
        send_msg(r, TAG_STOP, 0, NULL, 0);
    while (progress_sends() > 0) {
        unsigned char *buf; /* keep receiving: a worker may still be sending */
        size_t n;
        uint32_t slot;
        int tag, source;
        while (recv_msg(MPI_ANY_SOURCE, &buf, &n, &slot, &tag, &source))
            free(buf);
        nap_ms(1);
    }
    return NULL;
}

/* Rank 0 of a job with workers: the slots (experiment.parallel per worker) and the experiment's
 * snapshot for the workers. Called by the runner once ex is set up. */
bool rn_mpi_prepare(struct experiment *ex)
{
    if (!g_inited || g_size < 2 || g_rank != 0)
        return false;
    size_t per = (size_t)ex->parallel, n = per * (size_t)(g_size - 1);
    if (n > MAX_PARALLEL)
        n = MAX_PARALLEL;
    R.slots = calloc(n, sizeof *R.slots);
    struct wbuf b = {0};
    put_str(&b, ex->cfg_path);
    put(&b, ex->cfg_text, ex->cfg_len);
    if (!R.slots || b.oom) {
        free(R.slots);
        free(b.p);
        return false;
    }
    /* slots interleaved over the ranks: trial k goes to rank 1 + k % (N - 1) while all are free */
    for (size_t i = 0; i < n; i++) {
        R.slots[i].rank = 1 + (int)(i % (size_t)(g_size - 1));
        R.slots[i].slot = (uint32_t)(i / (size_t)(g_size - 1));
        R.slots[i].to_host_w = R.slots[i].from_host_r = -1;
    }
    R.n_slots = n;
    R.cfg = b.p;
    R.cfg_len = b.len;
    R.active = true;
    ex->slots = (int64_t)n;
    return true;
}

int rn_mpi_pick(struct experiment *ex, struct trial *t)
{
    (void)ex;
    t->mpi_slot = -1;
    pthread_mutex_lock(&R.mu);
    for (size_t i = 0; i < R.n_slots && t->mpi_slot < 0; i++)
        if (!R.slots[i].busy)
            t->mpi_slot = (int)i;
    pthread_mutex_unlock(&R.mu);
    return t->mpi_slot >= 0 ? R.slots[t->mpi_slot].rank : -1;
}

bool rn_mpi_spawn(struct experiment *ex, struct trial *t, const struct child_start *cs)
{
    (void)ex;
    if (t->mpi_slot < 0 || (size_t)t->mpi_slot >= R.n_slots) {
        snprintf(t->error, sizeof t->error, "no free MPI slot (internal error)");
        return false;
    }
    struct wbuf b = {0};
    put_u64(&b, (uint64_t)t->index);
    put_str(&b, t->id);
    put_str(&b, t->dir);
    put_u64(&b, t->seed);
    put_u64(&b, t->cfg_hash);
    put_u64(&b, (uint64_t)t->attempts);
    put_u64(&b, (uint64_t)t->n_lines);
    put_str(&b, t->params_cfg);
    put_u64(&b, cs->have_ckpt);
    put(&b, &cs->hdr, sizeof cs->hdr);
    put_str(&b, cs->ckpt_path);
    uint64_t psize = cs->have_ckpt && cs->payload ? cs->hdr.payload_size : 0;
    put_u64(&b, psize);
    put(&b, cs->payload, (size_t)psize);
    int to_host[2] = {-1, -1}, to_child[2] = {-1, -1};
    if (b.oom || pipe(to_host) != 0 || pipe(to_child) != 0) {
        snprintf(t->error, sizeof t->error, "cannot start the trial on its MPI rank: %s",
                 b.oom ? "out of memory" : strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (to_host[i] >= 0)
                close(to_host[i]);
            if (to_child[i] >= 0)
                close(to_child[i]);
        }
        free(b.p);
        return false;
    }
    for (int i = 0; i < 2; i++) { /* rank 0 forks no trial, but the data probe and the like */
        fcntl(to_host[i], F_SETFD, FD_CLOEXEC);
        fcntl(to_child[i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_lock(&R.mu);
    struct rslot *s = &R.slots[t->mpi_slot];
    s->busy = true;
    s->exited = false;
    s->t = t;
    s->status = 0;
    s->kill_sig = 0;
    s->to_host_w = to_host[1];
    s->from_host_r = to_child[0];
    s->start = b.p;
    s->start_len = b.len;
    bool start_thread = !R.thread_started;
    R.thread_started = true;
    pthread_mutex_unlock(&R.mu);
    if (start_thread && pthread_create(&R.thread, NULL, relay_main, NULL) != 0) {
        fprintf(stderr, "dsnn-host: cannot start the MPI relay thread\n");
        MPI_Abort(MPI_COMM_WORLD, DSNN_EXIT_IO);
    }
    t->pid = 0;
    t->rfd = to_host[0];
    t->wfd = to_child[1];
    return true;
}

void rn_mpi_kill(struct trial *t, int sig)
{
    if (t->mpi_slot < 0)
        return;
    pthread_mutex_lock(&R.mu);
    R.slots[t->mpi_slot].kill_sig = sig;
    pthread_mutex_unlock(&R.mu);
}

void rn_mpi_kill_all(int sig)
{
    pthread_mutex_lock(&R.mu);
    for (size_t i = 0; i < R.n_slots; i++)
        if (R.slots[i].busy && !R.slots[i].exited)
            R.slots[i].kill_sig = sig;
    pthread_mutex_unlock(&R.mu);
}

/* After the host saw EOF on t->rfd: the worker's wait status of t's process; frees the slot. */
int rn_mpi_wait(struct trial *t)
{
    int status = 0;
    for (;;) {
        pthread_mutex_lock(&R.mu);
        struct rslot *s = &R.slots[t->mpi_slot];
        bool done = s->exited;
        if (done) {
            status = s->status;
            s->busy = false;
            s->t = NULL;
        }
        pthread_mutex_unlock(&R.mu);
        if (done)
            break;
        nap_ms(1); /* not expected: EOF comes from the close after the status */
    }
    t->mpi_slot = -1;
    return status;
}

void dsnn_mpi_finalize(void)
{
    if (!g_inited)
        return;
    if (g_rank == 0 && g_size > 1) {
        pthread_mutex_lock(&R.mu);
        R.stop = true;
        bool joined = R.thread_started;
        pthread_mutex_unlock(&R.mu);
        if (joined) {
            pthread_join(R.thread, NULL);
        } else { /* no trial ran (an error before): the workers still wait for work */
            for (int r = 1; r < g_size; r++)
                send_msg(r, TAG_STOP, 0, NULL, 0);
            while (progress_sends() > 0)
                nap_ms(1);
        }
    }
    MPI_Finalize();
    g_inited = false;
}

/* ---- worker ranks ---- */

struct wslot {
    struct trial *t; /* NULL: free */
};

static void worker_fail(const char *msg)
{
    send_msg(0, TAG_FAIL, 0, msg, strlen(msg));
    while (progress_sends() > 0)
        nap_ms(1);
    nap_ms(2000); /* rank 0 aborts the job */
}

/* A trial process that could not be started: as the process would, an error message to the host,
 * then an exit status of 1. */
static void worker_refuse(uint32_t slot, enum dsnn_status st, const char *msg)
{
    struct dsnn_error e = {.status = st};
    int w = snprintf(e.msg, sizeof e.msg, "rank %d: ", g_rank);
    size_t at = w > 0 && (size_t)w < sizeof e.msg ? (size_t)w : 0;
    size_t n = strlen(msg) < sizeof e.msg - 1 - at ? strlen(msg) : sizeof e.msg - 1 - at;
    memcpy(e.msg + at, msg, n); /* cut to fit */
    e.msg[at + n] = '\0';
    struct msg_header h = {.type = MSG_FATAL, .size = sizeof e};
    unsigned char buf[sizeof h + sizeof e];
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, &e, sizeof e);
    send_msg(0, TAG_BYTES, slot, buf, sizeof buf);
    int32_t status = 1 << 8; /* exited with status 1 */
    send_msg(0, TAG_EXIT, slot, &status, sizeof status);
}

/* The worker's list of running trials, for child_enter (which closes their pipes in a new
 * trial process). */
static void worker_list(struct experiment *ex, struct wslot *ws, size_t n)
{
    ex->n_trials = 0;
    for (size_t i = 0; i < n; i++)
        if (ws[i].t)
            ex->trials[ex->n_trials++] = ws[i].t;
}

static void worker_start(struct experiment *ex, struct wslot *ws, size_t n_ws, uint32_t slot,
                         const unsigned char *buf, size_t n)
{
    if (slot >= n_ws || ws[slot].t) {
        worker_refuse(slot, DSNN_ERR_INTERNAL, "START for a busy or unknown slot");
        return;
    }
    struct rbuf r = {.p = buf, .len = n};
    struct trial *t = calloc(1, sizeof *t);
    char *id = NULL, *dir = NULL, *params = NULL, *ckpt = NULL;
    struct child_start cs = {0};
    if (!t) {
        worker_refuse(slot, DSNN_ERR_NOMEM, "out of memory");
        return;
    }
    t->index = (int)get_u64(&r);
    id = get_str(&r);
    dir = get_str(&r);
    t->seed = get_u64(&r);
    uint64_t hash = get_u64(&r);
    t->attempts = (int)get_u64(&r);
    t->n_lines = (size_t)get_u64(&r);
    params = get_str(&r);
    cs.have_ckpt = get_u64(&r) != 0;
    get(&r, &cs.hdr, sizeof cs.hdr);
    ckpt = get_str(&r);
    uint64_t psize = get_u64(&r);
    if (!r.bad && psize <= r.len - r.at) {
        cs.payload = r.p + r.at;
        r.at += (size_t)psize;
    } else {
        r.bad = true;
    }
    struct dsnn_error err = {0};
    int code;
    enum dsnn_status st = DSNN_OK;
    if (r.bad) {
        st = dsnn_error_set(&err, DSNN_ERR_INTERNAL, "a malformed START message");
    } else {
        snprintf(t->id, sizeof t->id, "%s", id);
        snprintf(t->dir, sizeof t->dir, "%s", dir);
        snprintf(cs.ckpt_path, sizeof cs.ckpt_path, "%s", ckpt);
        t->rfd = t->wfd = -1;
        t->best_metric = t->last_metric = NAN;
        if ((st = rn_trial_set_params(ex, t, params, &err)) == DSNN_OK &&
            (st = rn_trial_config(ex, t, &code, &err)) == DSNN_OK && t->cfg_hash != hash)
            st = dsnn_error_set(&err, DSNN_ERR_CONFIG,
                                "the experiment's configuration differs from rank 0's");
    }
    free(id), free(dir), free(params), free(ckpt);
    if (st != DSNN_OK) {
        worker_refuse(slot, st, err.msg);
        rn_trial_free(t);
        return;
    }
    t->status = TRIAL_RUNNING;
    worker_list(ex, ws, n_ws);
    if (!rn_spawn_child(ex, t, &cs)) {
        worker_refuse(slot, DSNN_ERR_IO, t->error);
        rn_trial_free(t);
        return;
    }
    ws[slot].t = t;
}

static volatile sig_atomic_t g_worker_signal;
static void worker_on_signal(int sig) { g_worker_signal = sig; }

/* The experiment of a worker: rank 0's snapshot (CFG). false: rank 0 stopped before any trial
 * (STOP), or the snapshot does not set up here (*code; rank 0 is told, and aborts the job). */
static bool worker_setup(struct experiment *ex, const struct dsnn_registry *reg, char **name,
                         int *code)
{
    unsigned char *buf = NULL;
    size_t n = 0;
    uint32_t slot;
    int tag = 0, source;
    *code = DSNN_EXIT_OK;
    while (!recv_msg(0, &buf, &n, &slot, &tag, &source))
        nap_ms(2);
    if (tag != TAG_CFG) {
        free(buf);
        return false;
    }
    struct rbuf r = {.p = buf, .len = n};
    *name = get_str(&r);
    struct dsnn_error e = {0};
    enum dsnn_status st =
        !*name || r.bad ? dsnn_error_set(&e, DSNN_ERR_INTERNAL, "a malformed CFG message")
                        : rn_setup_text(ex, reg, *name, (const char *)r.p + r.at, r.len - r.at,
                                        code, &e);
    free(buf);
    if (st != DSNN_OK) {
        worker_fail(e.msg);
        return false;
    }
    ex->cfg_path = *name;
    ex->trial_threads = rn_trial_threads(ex, 0);
    return true;
}

/* The trial process of slot k ended (EOF on its pipe): its wait status to rank 0. */
static void worker_reap(struct wslot *ws, size_t k)
{
    struct trial *t = ws[k].t;
    close(t->rfd);
    close(t->wfd);
    int32_t s32 = rn_reap_process(t->pid);
    send_msg(0, TAG_EXIT, (uint32_t)k, &s32, sizeof s32);
    rn_trial_free(t);
    ws[k].t = NULL;
}

/* Relays the trial processes' pipes to rank 0 (for up to 2 ms). */
static void worker_pipes(struct wslot *ws, size_t n_ws)
{
    static unsigned char chunk[65536];
    struct pollfd fds[MAX_PARALLEL];
    size_t who[MAX_PARALLEL];
    nfds_t nf = 0;
    for (size_t i = 0; i < n_ws && nf < MAX_PARALLEL; i++)
        if (ws[i].t) {
            fds[nf] = (struct pollfd){.fd = ws[i].t->rfd, .events = POLLIN};
            who[nf++] = i;
        }
    int pr = poll(fds, nf, 2);
    for (nfds_t k = 0; pr > 0 && k < nf; k++) {
        if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
            continue;
        ssize_t got = read(ws[who[k]].t->rfd, chunk, sizeof chunk);
        if (got > 0)
            send_msg(0, TAG_BYTES, (uint32_t)who[k], chunk, (size_t)got);
        else if (!(got < 0 && errno == EINTR))
            worker_reap(ws, who[k]); /* EOF: the trial process ended */
    }
}

/* Handles rank 0's messages; false after STOP. */
static bool worker_messages(struct experiment *ex, struct wslot *ws, size_t n_ws)
{
    unsigned char *mb;
    size_t mn;
    uint32_t ms;
    int mtag, msrc;
    while (recv_msg(0, &mb, &mn, &ms, &mtag, &msrc)) {
        struct trial *t = ms < n_ws ? ws[ms].t : NULL;
        if (mtag == TAG_START) {
            worker_start(ex, ws, n_ws, ms, mb, mn);
        } else if (mtag == TAG_BYTES && t) {
            (void)rn_write_full(t->wfd, mb, mn);
        } else if (mtag == TAG_KILL && t && mn >= sizeof(int32_t)) {
            int32_t sig;
            memcpy(&sig, mb, sizeof sig);
            kill(t->pid, sig);
        } else if (mtag == TAG_STOP) {
            free(mb);
            return false;
        }
        free(mb);
    }
    return true;
}

int dsnn_mpi_worker(const struct dsnn_registry *reg, struct dsnn_error *err)
{
    (void)err;
    struct experiment ex = {.lock_fd = -1};
    char *name = NULL;
    int code;
    if (!worker_setup(&ex, reg, &name, &code)) {
        rn_experiment_release(&ex);
        free(name);
        return code;
    }
    size_t n_ws = (size_t)ex.parallel;
    struct wslot *ws = calloc(n_ws, sizeof *ws);
    ex.trials = calloc(n_ws + 1, sizeof *ex.trials);
    if (!ws || !ex.trials) {
        worker_fail("out of memory");
        return DSNN_EXIT_IO;
    }
    ex.cap_trials = n_ws + 1;
    struct sigaction sa, ign;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = worker_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    for (bool go = true; go;) {
        if (g_worker_signal) { /* as a local host: the signal goes to the trial processes */
            for (size_t i = 0; i < n_ws; i++)
                if (ws[i].t && ws[i].t->pid > 0)
                    kill(ws[i].t->pid, g_worker_signal);
            g_worker_signal = 0;
        }
        worker_pipes(ws, n_ws);
        go = worker_messages(&ex, ws, n_ws);
        progress_sends();
    }
    for (size_t i = 0; i < n_ws; i++) /* not expected: rank 0 stops when none runs */
        if (ws[i].t && ws[i].t->pid > 0) {
            kill(ws[i].t->pid, SIGKILL);
            waitpid(ws[i].t->pid, NULL, 0);
        }
    while (progress_sends() > 0)
        nap_ms(1);
    free(ws);
    ex.n_trials = 0;
    rn_experiment_release(&ex);
    free(name);
    return DSNN_EXIT_OK;
}

#endif /* DSNN_HAVE_MPI */
