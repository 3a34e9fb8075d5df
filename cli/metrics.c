/* metrics: the /metrics endpoint (metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hist.h"

struct mqload_metrics {
    mqload_run_t *run;
    int fd;
    pthread_t tid;
    _Atomic int stop;
    pthread_mutex_t lock;     /* cum, seen: the render may run on a test's thread */
    mqload_hist_t *cum;       /* measured latencies of every published second */
    int64_t *seen;            /* per engine thread: the last published second merged */
    mqload_hist_t *last;      /* the newest second of every thread, for the percentile gauges */
    int64_t last_sec;
    bool running;             /* the thread was started */
    _Atomic int final;        /* mqload_metrics_final was called: cum is the result's */
};

/* Latency histogram bounds (seconds): Prometheus' defaults, widened towards the short end. */
static const double LE[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
static const double GAUGE_PCTS[] = {0.5, 0.9, 0.99, 0.999};

static void absorb(mqload_metrics_t *m)
{
    mqload_run_t *run = m->run;
    if (atomic_load(&m->final)) return;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < run->n_stats; i++) {
        mqload_tstats_t *s = &run->stats[i];
        pthread_mutex_lock(&s->pub_lock);
        if (s->pub_sec > m->seen[i]) {
            mqload_hist_add_sparse(m->cum, &s->pub_hist);
            m->seen[i] = s->pub_sec;
            if (s->pub_sec > m->last_sec) {
                mqload_hist_init(m->last);
                m->last_sec = s->pub_sec;
            }
            if (s->pub_sec == m->last_sec) mqload_hist_add_sparse(m->last, &s->pub_hist);
        }
        pthread_mutex_unlock(&s->pub_lock);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Values <= le: whole buckets whose highest value is <= le (bucket edges are within 0.8% of le). */
static uint64_t count_le(const mqload_hist_t *h, double le_ns)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < MQLOAD_HIST_BUCKETS; i++) {
        if (!h->counts[i]) continue;
        if ((double) (mqload_hist_bucket_low(i) + mqload_hist_bucket_width(i) - 1) > le_ns) break;
        n += h->counts[i];
    }
    return n;
}

static void esc_label(mqload_strbuf_t *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') mqload_sb_printf(o, "\\%c", *s);
        else if (*s == '\n') mqload_sb_puts(o, "\\n");
        else mqload_sb_printf(o, "%c", *s);
    }
}

static void family(mqload_strbuf_t *o, bool om, const char *name, const char *type, const char *help)
{
    /* OpenMetrics names a counter family without _total; the 0.0.4 format names it as its sample. */
    bool counter = !strcmp(type, "counter");
    mqload_sb_printf(o, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, counter && !om ? "_total" : "", help, name,
                     counter && !om ? "_total" : "", type);
}

void mqload_metrics_render(mqload_metrics_t *m, bool om, mqload_strbuf_t *o)
{
    mqload_run_t *run = m->run;
    absorb(m);
    uint64_t sub = 0, comp = 0, errs = 0;
    for (size_t i = 0; i < run->n_stats; i++) {
        mqload_tstats_t *s = &run->stats[i];
        sub += atomic_load_explicit(&s->a_submitted, memory_order_relaxed);
        comp += atomic_load_explicit(&s->a_completed, memory_order_relaxed);
        errs += atomic_load_explicit(&s->a_errors, memory_order_relaxed);
    }
    int64_t now = mqload_now_ns();
    family(o, om, "mqload_run_info", "gauge", "The run: workload, engine and mode (value 1).");
    mqload_sb_puts(o, "mqload_run_info{workload=\"");
    esc_label(o, run->wl->name);
    mqload_sb_printf(o, "\",engine=\"%s\",mode=\"%s\"} 1\n", run->cfg->engine == MQLOAD_ENGINE_MONGOC ? "mongoc" : "mqc",
                     run->cfg->open_loop ? "open-loop" : "closed-loop");
    family(o, om, "mqload_operations_submitted", "counter", "Operations submitted, warmup included.");
    mqload_sb_printf(o, "mqload_operations_submitted_total %llu\n", (unsigned long long) sub);
    family(o, om, "mqload_operations_completed", "counter", "Operations completed (successes and failures), warmup included.");
    mqload_sb_printf(o, "mqload_operations_completed_total %llu\n", (unsigned long long) comp);
    family(o, om, "mqload_operation_errors", "counter", "Measured operations that failed.");
    mqload_sb_printf(o, "mqload_operation_errors_total %llu\n", (unsigned long long) errs);
    family(o, om, "mqload_measured_operations", "counter",
           "Operations completed in the measured window, by operation and result (ok or error).");
    for (size_t k = 0; k < run->wl->n_ops && k < MQLOAD_RESULT_MAX_OPS; k++) {
        uint64_t ok = 0, bad = 0;
        for (size_t i = 0; i < run->n_stats; i++) {
            ok += atomic_load_explicit(&run->stats[i].a_op_ok[k], memory_order_relaxed);
            bad += atomic_load_explicit(&run->stats[i].a_op_err[k], memory_order_relaxed);
        }
        for (int e = 0; e < 2; e++) {
            mqload_sb_puts(o, "mqload_measured_operations_total{op=\"");
            esc_label(o, run->wl->ops[k].name);
            mqload_sb_printf(o, "\",type=\"%s\",result=\"%s\"} %llu\n", mqload_op_type_name(run->wl->ops[k].type),
                             e ? "error" : "ok", (unsigned long long) (e ? bad : ok));
        }
    }
    family(o, om, "mqload_operations_in_flight", "gauge", "Operations submitted and not yet completed.");
    mqload_sb_printf(o, "mqload_operations_in_flight %llu\n", (unsigned long long) (sub >= comp ? sub - comp : 0));
    if (run->cfg->rate > 0) {
        family(o, om, "mqload_target_rate", "gauge", "The fixed arrival rate asked for (--rate), operations per second.");
        mqload_sb_printf(o, "mqload_target_rate %.6g\n", run->cfg->rate);
    }
    family(o, om, "mqload_measuring", "gauge", "1 inside the measured window, 0 in warmup or after it.");
    mqload_sb_printf(o, "mqload_measuring %d\n",
                     now >= run->measure_ns && now < run->end_ns && !atomic_load(&run->stop) && !atomic_load(&m->final));
    family(o, om, "mqload_elapsed_seconds", "gauge", "Seconds since the measured window opened (negative in warmup).");
    mqload_sb_printf(o, "mqload_elapsed_seconds %.3f\n", (double) (now - run->measure_ns) / 1e9);

    pthread_mutex_lock(&m->lock);
    family(o, om, "mqload_latency_seconds", "histogram",
           "Latency of successful measured operations (failures are counted apart, in "
           "mqload_measured_operations_total with result error), complete up to the last full second.");
    for (size_t i = 0; i < sizeof LE / sizeof LE[0]; i++)
        mqload_sb_printf(o, "mqload_latency_seconds_bucket{le=\"%g\"} %llu\n", LE[i],
                         (unsigned long long) count_le(m->cum, LE[i] * 1e9));
    mqload_sb_printf(o, "mqload_latency_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long) m->cum->total);
    mqload_sb_printf(o, "mqload_latency_seconds_count %llu\n", (unsigned long long) m->cum->total);
    mqload_sb_printf(o, "mqload_latency_seconds_sum %.9f\n", m->cum->sum_ns / 1e9);
    family(o, om, "mqload_latency_last_second_seconds", "gauge",
           "Latency percentiles of the successful measured operations of the last full second.");
    for (size_t i = 0; i < sizeof GAUGE_PCTS / sizeof GAUGE_PCTS[0]; i++)
        mqload_sb_printf(o, "mqload_latency_last_second_seconds{percentile=\"%g\"} %.9f\n", GAUGE_PCTS[i] * 100,
                         mqload_hist_quantile(m->last, GAUGE_PCTS[i]) / 1e9);
    pthread_mutex_unlock(&m->lock);
    if (om) mqload_sb_puts(o, "# EOF\n");
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        p += w, n -= (size_t) w;
    }
}

static void serve(mqload_metrics_t *m, int fd)
{
    char req[8192];
    size_t n = 0;
    /* Read the request head, at most 2 s: a client that sends nothing is not waited for longer. */
    while (n + 1 < sizeof req) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0) return;
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0) return;
        n += (size_t) r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[n] = 0;
    char method[16] = "", path[256] = "";
    if (sscanf(req, "%15s %255s", method, path) != 2) return;
    char *q = strchr(path, '?');
    if (q) *q = 0;
    mqload_strbuf_t body, head;
    mqload_sb_init(&body);
    mqload_sb_init(&head);
    const char *status = "200 OK", *ctype = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        status = "405 Method Not Allowed";
        mqload_sb_puts(&body, "only GET /metrics\n");
    } else if (!strcmp(path, "/metrics")) {
        /* Case-insensitive look for the OpenMetrics media type in the Accept header. */
        bool om = false;
        for (char *p = req; *p; p++) *p = (char) (*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        char *acc = strstr(req, "\naccept:");
        if (acc) {
            char *eol = strchr(acc + 1, '\n');
            if (eol) *eol = 0;
            om = strstr(acc, "application/openmetrics-text") != NULL;
        }
        mqload_metrics_render(m, om, &body);
        ctype = om ? "application/openmetrics-text; version=1.0.0; charset=utf-8" : "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(path, "/")) {
        mqload_sb_puts(&body, "mqload: metrics at /metrics\n");
    } else {
        status = "404 Not Found";
        mqload_sb_puts(&body, "not found: metrics are at /metrics\n");
    }
    mqload_sb_printf(&head, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, ctype,
                     body.len);
    send_all(fd, head.s, head.len);
    if (strcmp(method, "HEAD")) send_all(fd, body.s, body.len);
    mqload_sb_free(&body);
    mqload_sb_free(&head);
}

static void *metrics_main(void *arg)
{
    mqload_metrics_t *m = arg;
    while (!atomic_load(&m->stop)) {
        struct pollfd p = {m->fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        absorb(m); /* every 100 ms: no thread's published second is missed */
        if (r <= 0) continue;
        int c = accept(m->fd, NULL, NULL);
        if (c < 0) continue;
        serve(m, c);
        close(c);
    }
    return NULL;
}

mqload_metrics_t *mqload_metrics_listen(const char *addr, int *port, char *err, size_t esz)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    snprintf(host, sizeof host, "%.*s", colon ? (int) (colon - addr) : 0, addr);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host[0] ? host : NULL, colon ? colon + 1 : "0", &hints, &ai);
    if (gai) {
        snprintf(err, esz, "--metrics-listen %s: %s", addr, gai_strerror(gai));
        return NULL;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        snprintf(err, esz, "--metrics-listen %s: cannot listen: %s", addr, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *) &ss, &sl) == 0) {
        char pbuf[16];
        if (!getnameinfo((struct sockaddr *) &ss, sl, NULL, 0, pbuf, sizeof pbuf, NI_NUMERICSERV)) *port = atoi(pbuf);
    }
    mqload_metrics_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->fd = fd;
    m->last_sec = -1;
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

bool mqload_metrics_serve(mqload_metrics_t *m, mqload_run_t *run, char *err, size_t esz)
{
    m->run = run;
    m->cum = mqload_hist_new();
    m->last = mqload_hist_new();
    m->seen = malloc((run->n_stats ? run->n_stats : 1) * sizeof *m->seen);
    if (!m->seen) abort();
    for (size_t i = 0; i < run->n_stats; i++) m->seen[i] = -1;
    /* Ctrl-C belongs to the main thread: the server thread blocks it, like the engine threads. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&m->tid, NULL, metrics_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, esz, "--metrics-listen: cannot start its thread");
        return false;
    }
    m->running = true;
    return true;
}

void mqload_metrics_final(mqload_metrics_t *m, const mqload_result_t *res)
{
    if (!m || !m->running) return;
    pthread_mutex_lock(&m->lock);
    mqload_hist_init(m->cum);
    mqload_hist_merge(m->cum, res->hist);
    atomic_store(&m->final, 1);
    pthread_mutex_unlock(&m->lock);
}

void mqload_metrics_stop(mqload_metrics_t *m)
{
    if (!m) return;
    atomic_store(&m->stop, 1);
    if (m->running) pthread_join(m->tid, NULL);
    close(m->fd);
    pthread_mutex_destroy(&m->lock);
    mqload_hist_destroy(m->cum);
    mqload_hist_destroy(m->last);
    free(m->seen);
    free(m);
}
