/* app: the run command (app.h). */
#include "app.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "engine.h"
#include "frame.h"
#include "histfmt.h"
#include "html.h"
#include "metrics.h"
#include "outputs.h"
#include "precheck.h"
#include "redact.h"
#include "series.h"
#include "mqc.h"
#include "report.h"
#include "threshold.h"
#include "workload.h"

/* The only process-wide state: what the SIGINT handler can touch. */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void) sig;
    g_interrupted++;
    if (g_interrupted >= 3) _exit(130); /* a third Ctrl-C: the user really wants out */
}

typedef struct {
    bool (*prepare)(mqload_run_t *, char *, size_t);
    bool (*check)(mqload_run_t *, char *, size_t);
    bool (*seed)(mqload_run_t *, char *, size_t);
    bool (*start)(mqload_run_t *, char *, size_t);
    void (*join)(mqload_run_t *);
    void (*cleanup)(mqload_run_t *);
} engine_ops_t;

static const engine_ops_t ENGINES[] = {
    [MQLOAD_ENGINE_MQC] = {mqload_mqc_prepare, mqload_mqc_check, mqload_mqc_seed, mqload_mqc_start, mqload_mqc_join,
                           mqload_mqc_cleanup},
    [MQLOAD_ENGINE_MONGOC] = {mqload_mongoc_prepare, mqload_mongoc_check, mqload_mongoc_seed, mqload_mongoc_start,
                              mqload_mongoc_join, mqload_mongoc_cleanup},
};

static void config_bson(const mqload_config_t *cfg, const mqload_workload_t *wl, const mqload_run_t *run, bson_t *b)
{
    BSON_APPEND_UTF8(b, "engine", cfg->engine == MQLOAD_ENGINE_MONGOC ? "mongoc" : "mqc");
    if (cfg->server_label) BSON_APPEND_UTF8(b, "server", cfg->server_label);
    BSON_APPEND_UTF8(b, "mode", cfg->open_loop ? "open-loop" : "closed-loop");
    if (cfg->rate > 0) BSON_APPEND_DOUBLE(b, "rate", cfg->rate);
    if (cfg->stages_kind) {
        bson_t arr, st;
        char key[24];
        BSON_APPEND_UTF8(b, "stages_kind", cfg->stages_kind == MQLOAD_STAGES_RATE ? "rate" : "concurrency");
        BSON_APPEND_ARRAY_BEGIN(b, "stages", &arr);
        for (size_t i = 0; i < cfg->n_stages; i++) {
            snprintf(key, sizeof key, "%zu", i);
            BSON_APPEND_DOCUMENT_BEGIN(&arr, key, &st);
            BSON_APPEND_DOUBLE(&st, "duration_s", cfg->stages[i].dur_s);
            BSON_APPEND_DOUBLE(&st, "target", cfg->stages[i].target);
            bson_append_document_end(&arr, &st);
        }
        bson_append_array_end(b, &arr);
    }
    BSON_APPEND_DOUBLE(b, "max_error_rate", cfg->max_error_rate);
    if (cfg->open_loop && !cfg->concurrency_set) /* no -c: the cap is the engine's default, say which */
        BSON_APPEND_INT64(b, "concurrency", cfg->engine == MQLOAD_ENGINE_MONGOC ? (int64_t) run->n_stats
                                                                                 : (int64_t) cfg->threads * MQLOAD_OPEN_LOOP_DEFAULT_CAP);
    else BSON_APPEND_INT32(b, "concurrency", (int32_t) cfg->concurrency);
    if (cfg->workers > 1) BSON_APPEND_INT32(b, "concurrency_total", (int32_t) cfg->concurrency_total);
    BSON_APPEND_INT32(b, "threads", (int32_t) (cfg->engine == MQLOAD_ENGINE_MONGOC ? run->n_stats : cfg->threads));
    if (cfg->connections) BSON_APPEND_INT32(b, "connections", (int32_t) cfg->connections);
    if (cfg->requests) BSON_APPEND_INT64(b, "requests", (int64_t) cfg->requests);
    if (cfg->requests && cfg->workers > 1) BSON_APPEND_INT64(b, "requests_total", (int64_t) cfg->requests_total);
    else BSON_APPEND_DOUBLE(b, "duration_s", cfg->duration_s);
    BSON_APPEND_DOUBLE(b, "warmup_s", cfg->warmup_s);
    BSON_APPEND_UTF8(b, "db", wl->db);
    BSON_APPEND_UTF8(b, "collection", wl->collection);
    BSON_APPEND_UTF8(b, "workload", wl->name);
    BSON_APPEND_UTF8(b, "key_dist", mqload_keydist_name((mqload_keydist_kind_t) wl->key_dist));
    BSON_APPEND_INT64(b, "keys", (int64_t) wl->keys);
    if (cfg->seed_set) BSON_APPEND_INT64(b, "seed", (int64_t) cfg->seed_docs);
    BSON_APPEND_INT64(b, "rng_seed", (int64_t) run->rng_seed);
    if (cfg->timeout_s > 0) BSON_APPEND_DOUBLE(b, "timeout_s", cfg->timeout_s);
    if (cfg->workers > 1) {
        BSON_APPEND_INT32(b, "worker_index", (int32_t) cfg->worker_index);
        BSON_APPEND_INT32(b, "workers", (int32_t) cfg->workers);
    }
    if (cfg->start_at > 0) {
        /* merge reads these three to tell which workers started late. */
        BSON_APPEND_DOUBLE(b, "start_at", cfg->start_at);
        BSON_APPEND_DOUBLE(b, "start_tolerance_s", cfg->start_tolerance_s);
        BSON_APPEND_DOUBLE(b, "start_late_s", run->start_late_s);
    }
    if (cfg->threshold) BSON_APPEND_UTF8(b, "threshold", cfg->threshold); /* the HTML report shows each condition */
    bson_t d;
    BSON_APPEND_DOCUMENT_BEGIN(b, "workload_def", &d);
    mqload_workload_to_bson(wl, &d);
    bson_append_document_end(b, &d);
}

/* The live line: the last interval's operations and errors per second, the window's time (or the
 * warmup's, labelled as such) and what is left, what is in flight and, in an open loop, how many
 * due operations wait for a free slot. */
static void progress_line(mqload_run_t *run, int64_t now, uint64_t *last_completed, uint64_t *last_errors, int64_t *last_ns,
                          bool tty)
{
    uint64_t sub = 0, comp = 0, errs = 0, backlog = 0;
    mqload_sparse_t merged;
    mqload_sparse_init(&merged);
    int64_t sec = -1;
    for (size_t i = 0; i < run->n_stats; i++) {
        mqload_tstats_t *s = &run->stats[i];
        sub += atomic_load_explicit(&s->a_submitted, memory_order_relaxed);
        comp += atomic_load_explicit(&s->a_completed, memory_order_relaxed);
        errs += atomic_load_explicit(&s->a_errors, memory_order_relaxed);
        backlog += atomic_load_explicit(&s->a_backlog, memory_order_relaxed);
        pthread_mutex_lock(&s->pub_lock);
        if (s->pub_sec > sec) sec = s->pub_sec;
        pthread_mutex_unlock(&s->pub_lock);
    }
    /* p50/p99 of the last full second: the threads' published histograms of that second. */
    for (size_t i = 0; i < run->n_stats && sec >= 0; i++) {
        mqload_tstats_t *s = &run->stats[i];
        pthread_mutex_lock(&s->pub_lock);
        if (s->pub_sec == sec) mqload_sparse_merge(&merged, &s->pub_hist);
        pthread_mutex_unlock(&s->pub_lock);
    }
    mqload_hist_t *h = mqload_hist_new();
    mqload_hist_add_sparse(h, &merged);
    char p50[24] = "-", p99[24] = "-";
    if (h->total) {
        mqload_fmt_latency(mqload_hist_quantile(h, 0.5), p50, sizeof p50);
        mqload_fmt_latency(mqload_hist_quantile(h, 0.99), p99, sizeof p99);
    }
    double dt = (double) (now - *last_ns) / 1e9;
    double rate = dt > 0 ? (double) (comp - *last_completed) / dt : 0;
    double erate = dt > 0 ? (double) (errs - *last_errors) / dt : 0;
    double el = (double) (now - run->measure_ns) / 1e9;
    char when[128], behind[40] = "";
    if (el < 0) snprintf(when, sizeof when, "warmup, %.1fs left", -el);
    else if (run->cfg->requests) snprintf(when, sizeof when, "%6.1fs of -n %llu", el, (unsigned long long) run->cfg->requests);
    else {
        double left = run->cfg->duration_s - el;
        if (left < 0) left = 0;
        snprintf(when, sizeof when, left < 10 ? "%6.1fs, %.1fs left" : "%6.1fs, %.0fs left", el, left);
    }
    if (run->cfg->open_loop && backlog) snprintf(behind, sizeof behind, "  behind %llu", (unsigned long long) backlog);
    if (run->cfg->stages_kind && el >= 0) {
        /* Which stage, and the target it is heading for. */
        const mqload_config_t *cfg = run->cfg;
        double t = 0;
        size_t i = 0;
        while (i + 1 < cfg->n_stages && el >= t + cfg->stages[i].dur_s) t += cfg->stages[i++].dur_s;
        size_t len = strlen(when);
        snprintf(when + len, sizeof when - len, ", stage %zu/%zu -> %g%s", i + 1, cfg->n_stages, cfg->stages[i].target,
                 cfg->stages_kind == MQLOAD_STAGES_RATE ? "/s" : " in flight");
    }
    fprintf(stderr, "%s[%s] %8.0f ops/s %6.0f err/s  in flight %5llu%s  p50 %8s  p99 %8s  errors %llu%s",
            tty ? "\r\033[K" : "", when, rate, erate, (unsigned long long) (sub - comp), behind, p50, p99,
            (unsigned long long) errs, tty ? "" : "\n");
    fflush(stderr);
    *last_completed = comp;
    *last_errors = errs;
    *last_ns = now;
    mqload_hist_destroy(h);
    mqload_sparse_free(&merged);
}

static int fail_setup(const mqload_config_t *cfg, const char *msg)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", msg);
    mqload_scrub_secret(cfg->uri, buf);
    fprintf(stderr, "mqload: %s\n", buf);
    if (cfg->json_framed) {
        /* Whoever collects the logs learns that this worker has no result, and why. */
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        mqload_frame_failed(&sb, cfg->worker_index, 1, buf);
        fputs(sb.s, stdout);
        fflush(stdout);
        mqload_sb_free(&sb);
    }
    return 1;
}

static double wall_now(void)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    return (double) rt.tv_sec + (double) rt.tv_nsec / 1e9;
}

/* Sleeps (no busy wait) until wall-clock time `until`; a clock step while asleep is followed. */
static void sleep_until_wall(double until)
{
    struct timespec ts;
    ts.tv_sec = (time_t) until;
    ts.tv_nsec = (long) ((until - (double) ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

/* Key lanes per worker: the most engine threads any worker runs, so that every worker computes the
 * same lane layout even when the concurrency (mongoc's thread count) is split unevenly. */
static uint64_t lanes_per_worker(const mqload_config_t *cfg)
{
    if (cfg->engine == MQLOAD_ENGINE_MQC || cfg->workers <= 1) return mqload_engine_threads(cfg);
    mqload_config_t first = *cfg;
    first.concurrency = (uint32_t) mqload_share(cfg->concurrency_total, cfg->workers, 0);
    return mqload_engine_threads(&first);
}

int mqload_run_main(int argc, char **argv)
{
    mqload_config_t cfg;
    mqload_workload_t wl;
    mqload_run_t run;
    char err[2048] = "";
    int rc = 0;
    memset(&run, 0, sizeof run);
    memset(&wl, 0, sizeof wl);
    mqload_config_init(&cfg);
    mqload_mongoc_log_quiet(); /* libmongoc parses URIs: its log lines speak as mqload's */
    mqload_args_rc_t arc = mqload_args_parse(&cfg, argc, argv, stdout, err, sizeof err);
    if (arc != MQLOAD_ARGS_RUN) {
        if (arc == MQLOAD_ARGS_ERROR) rc = fail_setup(&cfg, err);
        mqload_config_free(&cfg);
        return rc;
    }
    mqload_threshold_t *th = NULL;
    if (cfg.threshold && !(th = mqload_threshold_parse(cfg.threshold, err, sizeof err))) {
        char m[2100];
        snprintf(m, sizeof m, "--threshold: %s", err);
        rc = fail_setup(&cfg, m);
        mqload_config_free(&cfg);
        return rc;
    }
    if (!mqload_workload_load(&wl, &cfg, err, sizeof err)) {
        rc = fail_setup(&cfg, err);
        mqload_threshold_free(th);
        mqload_config_free(&cfg);
        return rc;
    }
    /* Everything that can be checked without the server, before any traffic: a mistake found
     * after the run would cost the run. */
    const char *names[MQLOAD_MAX_OPS];
    for (size_t i = 0; i < wl.n_ops; i++) names[i] = wl.ops[i].name;
    if (!mqload_uri_check(cfg.uri, err, sizeof err) || (th && !mqload_threshold_check_ops(th, names, wl.n_ops, err, sizeof err)) ||
        !mqload_output_check("--json", cfg.json_out, err, sizeof err) || !mqload_output_check("--html", cfg.html_out, err, sizeof err)) {
        rc = fail_setup(&cfg, err);
        mqload_workload_free(&wl);
        mqload_threshold_free(th);
        mqload_config_free(&cfg);
        return rc;
    }
    /* --phase load inserts the records itself, and --phase run is meant for what a load phase left. */
    if (cfg.preset && !strncmp(cfg.preset, "ycsb", 4) && !cfg.seed_set && !cfg.x.phase_set)
        fprintf(stderr, "mqload: warning: --preset %s reads and updates keys 0..%llu, which only --seed inserts; without "
                        "--seed they exist only if an earlier run seeded %s.%s (add --seed %llu)\n",
                cfg.preset, (unsigned long long) (wl.keys ? wl.keys - 1 : 0), wl.db, wl.collection, (unsigned long long) wl.keys);

    if (!mqload_outputs_writable(&cfg, err, sizeof err)) {
        rc = fail_setup(&cfg, err);
        mqload_workload_free(&wl);
        mqload_threshold_free(th);
        mqload_config_free(&cfg);
        return rc;
    }

    /* Bound now, so that a port in use fails before any traffic (seeding included). */
    mqload_metrics_t *metrics = NULL;
    if (cfg.x.metrics_listen) {
        int mport = 0;
        if (!(metrics = mqload_metrics_listen(cfg.x.metrics_listen, &mport, err, sizeof err))) {
            rc = fail_setup(&cfg, err);
            mqload_workload_free(&wl);
            mqload_threshold_free(th);
            mqload_config_free(&cfg);
            return rc;
        }
        if (!cfg.quiet) {
            const char *colon = strrchr(cfg.x.metrics_listen, ':');
            int hl = (int) (colon - cfg.x.metrics_listen);
            fprintf(stderr, "mqload: metrics at http://%.*s:%d/metrics\n", hl ? hl : 7, hl ? cfg.x.metrics_listen : "0.0.0.0", mport);
        }
    }
    const engine_ops_t *eng = &ENGINES[cfg.engine];
    run.cfg = &cfg;
    run.wl = &wl;
    mqc_uri_redact(cfg.uri, run.uri_redacted, sizeof run.uri_redacted);
    uint32_t per_thread = cfg.connections;
    if (!per_thread) {
        uint64_t c = cfg.open_loop && !cfg.concurrency_set ? 100 : (cfg.concurrency + cfg.threads - 1) / cfg.threads;
        if (cfg.stages_kind == MQLOAD_STAGES_CONCURRENCY) {
            double most = cfg.concurrency_set ? cfg.concurrency_total : 0;
            for (size_t i = 0; i < cfg.n_stages; i++)
                if (cfg.stages[i].target > most) most = cfg.stages[i].target;
            c = (uint64_t) ceil(most / cfg.workers / cfg.threads);
        }
        per_thread = (uint32_t) (c ? c : 1);
    }
    run.uri = mqload_uri_with_pool(cfg.uri, per_thread, cfg.connections != 0);
    if (cfg.rng_seed_set) run.rng_seed = cfg.rng_seed;
    else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        run.rng_seed = (uint64_t) tv.tv_sec * 1000003u ^ (uint64_t) tv.tv_usec ^ ((uint64_t) getpid() << 32);
    }
    /* Lanes: every engine thread of every worker inserts its own keys. */
    run.lanes = lanes_per_worker(&cfg) * cfg.workers;
    run.lane0 = lanes_per_worker(&cfg) * cfg.worker_index;
    bool prepared = eng->prepare(&run, err, sizeof err);
    if (!prepared || !eng->check(&run, err, sizeof err) || (cfg.seed_set && !eng->seed(&run, err, sizeof err))) {
        rc = fail_setup(&cfg, err);
        goto done;
    }

    if (metrics && !mqload_metrics_serve(metrics, &run, err, sizeof err)) {
        rc = fail_setup(&cfg, err);
        goto done;
    }

    /* Timing: a short head start so that every thread is ready at t0. */
    const int64_t head_ns = 20 * 1000000;
    int64_t now = mqload_now_ns();
    if (cfg.start_at > 0) {
        /* --start-at: the measured window opens at that wall-clock moment in every worker and the
         * warmup runs just before it. Wake up a head start early, then map the wall clock onto the
         * monotonic one (both read now, microseconds apart). */
        double wake = cfg.start_at - cfg.warmup_s - (double) head_ns / 1e9, wait = wake - wall_now();
        if (wait > 0) {
            if (!cfg.quiet)
                fprintf(stderr, "mqload: worker %u of %u waiting %.1fs for --start-at %.3f%s\n", cfg.worker_index, cfg.workers,
                        wait + (double) head_ns / 1e9 + cfg.warmup_s, cfg.start_at, cfg.warmup_s > 0 ? " (warmup first)" : "");
            sleep_until_wall(wake);
        }
        now = mqload_now_ns();
        double now_unix = wall_now();
        run.measure_ns = now + (int64_t) ((cfg.start_at - now_unix) * 1e9);
        run.t0_ns = run.measure_ns - (int64_t) (cfg.warmup_s * 1e9);
        if (run.t0_ns < now + head_ns) run.t0_ns = now + head_ns; /* late: a shorter warmup, or none */
        /* A worker that comes after the start keeps the common second grid (its first seconds are
         * empty, which is what happened) and says how late it was. */
        run.start_late_s = run.t0_ns > run.measure_ns ? (double) (run.t0_ns - run.measure_ns) / 1e9 : 0;
        run.start_unix = cfg.start_at;
        if (run.start_late_s > cfg.start_tolerance_s)
            fprintf(stderr, "mqload: worker %u started %.3fs after --start-at (tolerance %.3fs)\n", cfg.worker_index,
                    run.start_late_s, cfg.start_tolerance_s);
    } else {
        run.t0_ns = now + head_ns;
        run.measure_ns = run.t0_ns + (int64_t) (cfg.warmup_s * 1e9);
        run.start_unix = wall_now() + (double) (run.measure_ns - now) / 1e9;
    }
    run.end_ns = cfg.requests ? INT64_MAX : run.measure_ns + (int64_t) (cfg.duration_s * 1e9);

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* worker threads inherit this: signals come to main */
    bool started = eng->start(&run, err, sizeof err);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!started) fprintf(stderr, "mqload: %s\n", err), rc = 1;

    bool tty = isatty(2);
    bool progress = !cfg.quiet && (cfg.progress == 1 || (cfg.progress == -1 && tty));
    int64_t next_progress = run.t0_ns + 1000000000, last_ns = run.t0_ns;
    uint64_t last_completed = 0, last_errors = 0;
    bool stopped = false;
    mqload_gauges_t gauges;
    mqload_gauges_init(&gauges);
    while (atomic_load(&run.threads_done) < run.n_stats && started) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        now = mqload_now_ns();
        if (g_interrupted && !stopped) {
            stopped = true;
            atomic_store(&run.stop_ns, now);
            atomic_store(&run.stop, 1);
            if (!cfg.quiet) fprintf(stderr, "%smqload: interrupted, finishing operations in flight (up to %.1fs)\n",
                                    progress && tty ? "\n" : "", cfg.grace_s);
        }
        mqload_gauges_sample(&gauges, &run, now);
        if (progress && now >= next_progress) {
            progress_line(&run, now, &last_completed, &last_errors, &last_ns, tty);
            next_progress += 1000000000;
        }
    }
    if (progress && tty) fputc('\n', stderr);
    eng->join(&run);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    /* The result: every thread's statistics, merged exactly. */
    mqload_result_t res;
    mqload_result_init(&res);
    snprintf(res.tool_version, sizeof res.tool_version, "%s", MQC_VERSION);
    snprintf(res.engine, sizeof res.engine, "%s", cfg.engine == MQLOAD_ENGINE_MONGOC ? "mongoc" : "mqc");
    snprintf(res.uri_redacted, sizeof res.uri_redacted, "%s", run.uri_redacted);
    snprintf(res.workload_id, sizeof res.workload_id, "%s", wl.id);
    snprintf(res.workload_name, sizeof res.workload_name, "%s", wl.name);
    config_bson(&cfg, &wl, &run, &res.config);
    for (size_t i = 0; i < wl.n_ops; i++) mqload_result_op(&res, wl.ops[i].name, mqload_op_type_name(wl.ops[i].type));
    for (size_t i = 0; i < run.n_stats; i++) mqload_result_merge(&res, &run.stats[i].r, 0);
    mqload_gauges_apply(&gauges, &res);
    mqload_gauges_free(&gauges);
    res.conns_opened = run.conns_opened;
    res.interrupted = stopped;
    res.start_unix = run.start_unix;
    /* This worker's share of the targets: merging workers adds them up to the totals. */
    if (cfg.open_loop && !cfg.stages_kind) res.target_rate = cfg.rate / cfg.workers;
    for (size_t i = 0; i < res.n_stages && i < cfg.n_stages; i++) {
        res.stages[i].dur_s = cfg.stages[i].dur_s;
        double from = i ? cfg.stages[i - 1].target : cfg.stages_kind == MQLOAD_STAGES_RATE ? cfg.rate
                      : cfg.concurrency_set ? cfg.concurrency_total : 0;
        res.stages[i].from = from / cfg.workers;
        res.stages[i].to = cfg.stages[i].target / cfg.workers;
    }
    if (cfg.start_at > 0 && run.start_late_s > cfg.start_tolerance_s)
        snprintf(res.notes, sizeof res.notes, "worker %u started %.3fs after --start-at (tolerance %.3fs)", cfg.worker_index,
                 run.start_late_s, cfg.start_tolerance_s);
    int64_t stop_ns = atomic_load(&run.stop_ns), last = atomic_load(&run.last_done_ns);
    int64_t window_end = cfg.requests ? last : run.end_ns;
    if (stopped && stop_ns < window_end) window_end = stop_ns;
    res.duration_s = window_end > run.measure_ns ? (double) (window_end - run.measure_ns) / 1e9 : 0;
    mqload_result_sort_errors(&res);
    memcpy(res.pcts, cfg.x.pcts, sizeof res.pcts);
    res.n_pcts = cfg.x.n_pcts;

    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    /* A machine-readable output on stdout keeps stdout to itself: the text report goes to stderr. */
    bool json_stdout = (cfg.json_out && !strcmp(cfg.json_out, "-")) || mqload_outputs_on_stdout(&cfg.x);
    if (!cfg.quiet) {
        mqload_report_text(&res, &sb);
        fputs(sb.s, json_stdout ? stderr : stdout);
        fflush(json_stdout ? stderr : stdout);
    }
    if (cfg.json_out) {
        sb.len = 0;
        mqload_report_json(&res, &sb);
        if (!mqload_write_file(cfg.json_out, sb.s, sb.len, err, sizeof err)) fprintf(stderr, "mqload: %s\n", err), rc = 1;
    }
    if (cfg.html_out) {
        sb.len = 0;
        mqload_report_html(&res, &sb);
        if (!mqload_write_file(cfg.html_out, sb.s, sb.len, err, sizeof err)) fprintf(stderr, "mqload: %s\n", err), rc = 1;
    }
    if (!mqload_write_outputs(&cfg.x, &res, err, sizeof err)) fprintf(stderr, "mqload: %s\n", err), rc = 1;
    /* Exit status: the first of 1, 4, 3, 2, 130 that applies (docs/mqload/mqload.md); every reason is said. */
    bool th_failed = false, shortfall = mqload_result_shortfall(&res);
    bool too_many_errors = res.completed > 0 && mqload_result_error_rate(&res) > cfg.max_error_rate;
    if (th) {
        sb.len = 0;
        if (!mqload_threshold_check(th, &res, &sb)) {
            fputs(sb.s, stderr);
            th_failed = true;
        }
    }
    if (shortfall)
        fprintf(stderr, "mqload: the target rate was not reached: %llu of %llu scheduled operations sent (%.1f%%), "
                        "%.1f ops/s of %.1f; see \"schedule\" in the report (exit 3)\n",
                (unsigned long long) res.submitted, (unsigned long long) res.scheduled,
                100.0 * (double) res.submitted / (double) res.scheduled, mqload_result_achieved_rate(&res),
                res.target_rate > 0 ? res.target_rate : res.scheduled / (res.duration_s > 0 ? res.duration_s : 1));
    if (too_many_errors)
        fprintf(stderr, "mqload: %.1f%% of the operations failed, more than --max-error-rate %g%% (exit 4)\n",
                100 * mqload_result_error_rate(&res), 100 * cfg.max_error_rate);
    if (rc == 0 && too_many_errors) rc = 4;
    if (rc == 0 && shortfall) rc = 3;
    if (rc == 0 && th_failed) rc = 2;
    if (res.submitted != res.completed) {
        fprintf(stderr, "mqload: BUG: %llu operations submitted, %llu completed\n", (unsigned long long) res.submitted,
                (unsigned long long) res.completed);
        rc = 1; /* first in the order: a result that does not add up is no verdict on the server */
    }
    if (stopped && rc == 0) rc = 130;
    if (cfg.json_framed) {
        /* Last, so that the frame carries the exit status. */
        mqload_strbuf_t fr;
        mqload_sb_init(&fr);
        sb.len = 0;
        mqload_report_json(&res, &sb);
        mqload_frame_result(&fr, cfg.worker_index, sb.s, sb.len, rc);
        fputs(fr.s, stdout);
        fflush(stdout);
        mqload_sb_free(&fr);
    }
    if (metrics && cfg.x.metrics_linger_s > 0 && !stopped) {
        /* --metrics-linger: the results are out; a scraper still gets the final values. */
        mqload_metrics_final(metrics, &res);
        if (!cfg.quiet) fprintf(stderr, "mqload: serving the final metrics for %.1fs (--metrics-linger; Ctrl-C ends it)\n",
                                cfg.x.metrics_linger_s);
        struct sigaction sl, old_sl;
        memset(&sl, 0, sizeof sl);
        sl.sa_handler = on_sigint;
        sigemptyset(&sl.sa_mask);
        g_interrupted = 0;
        sigaction(SIGINT, &sl, &old_sl);
        int64_t until = mqload_now_ns() + (int64_t) (cfg.x.metrics_linger_s * 1e9);
        while (!g_interrupted && mqload_now_ns() < until) {
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
        }
        sigaction(SIGINT, &old_sl, NULL);
    }
    mqload_sb_free(&sb);
    mqload_result_free(&res);
done:
    mqload_metrics_stop(metrics);
    eng->cleanup(&run);
    for (size_t i = 0; i < run.n_stats && run.stats; i++) mqload_tstats_free(&run.stats[i]);
    free(run.stats);
    free(run.uri);
    mqload_workload_free(&wl);
    mqload_threshold_free(th);
    mqload_config_free(&cfg);
    return rc;
}
