/* mqload's outputs for other tools, checked by those tools' own implementations: the HdrHistogram
 * log decoded by PyPI's hdrhistogram, the metrics scraped by a real Prometheus, the HTML report
 * rendered by headless Chromium; and the CSV, YCSB summary and --percentiles against the JSON. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/args.h"
#include "../cli/hlog.h"
#include "../cli/html.h"
#include "../cli/merge.h"
#include "../cli/metrics.h"
#include "../cli/workload.h"
#include "../cli/xopts.h"
#include "tf.h"
#include "support/mqload_run.h"

static void tool_paths(char *mqload, char *stubd, size_t n)
{
    snprintf(mqload, n, "%s/mqload", tf_build_dir());
    if (access(mqload, X_OK) != 0) SKIP("%s is not built", mqload);
    snprintf(stubd, n, "%s/tests/stubd", tf_build_dir());
    if (access(stubd, X_OK) != 0) snprintf(stubd, n, "%s/build/tests/stubd", tf_src_dir());
    if (access(stubd, X_OK) != 0) SKIP("the stub server (tests/stubd) is not built");
}

static const char *python(void) { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

/* Starts stubd (reply delay delay_us, and a fault option when fault is not NULL) on a free port;
 * returns its pid. */
static pid_t start_stub_fault(const char *bin, int delay_us, const char *fault, const char *fault_arg, int *port)
{
    int fds[2];
    ASSERT(pipe(fds) == 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        char d[32];
        snprintf(d, sizeof d, "%d", delay_us);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (fault) execl(bin, bin, "--port", "0", "--delay-us", d, fault, fault_arg, (char *) NULL);
        else execl(bin, bin, "--port", "0", "--delay-us", d, (char *) NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[128] = "";
    size_t n = 0;
    while (n + 1 < sizeof line && read(fds[0], line + n, 1) == 1 && line[n] != '\n') n++;
    line[n] = 0;
    close(fds[0]);
    *port = atoi(line);
    if (*port <= 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        FAIL("stubd printed no port");
    }
    return pid;
}

static void stop_stub(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ASSERT_MSG(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t) n + 1);
    ASSERT_NOT_NULL(b);
    size_t got = fread(b, 1, (size_t) n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

TEST("/mqload/outputs/percentiles_parse", mqload_outputs_percentiles_parse)
{
    double q[MQLOAD_MAX_PERCENTILES];
    size_t n = 0;
    ASSERT(mqload_parse_percentiles("99.9,p50,95", q, MQLOAD_MAX_PERCENTILES, &n));
    ASSERT_EQ(n, 3);
    ASSERT(q[0] == 0.5 && q[1] == 0.95 && q[2] == 0.999);
    const char *bad[] = {"", "0", "100", "50,", "abc", "50;90", "-5", "p", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_MSG(!mqload_parse_percentiles(bad[i], q, MQLOAD_MAX_PERCENTILES, &n), "'%s' accepted", bad[i]);
    char label[24];
    mqload_percentile_label(0.999, false, label, sizeof label);
    ASSERT_STR_EQ(label, "p99.9");
    mqload_percentile_label(0.999, true, label, sizeof label);
    ASSERT_STR_EQ(label, "p99_9");

    mqload_config_t cfg;
    mqload_config_init(&cfg);
    char err[512];
    char *argv1[] = {"mqload", "--percentiles", "50,99.5", "--hlog", "a.hlog", "--csv=a.csv", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 6, argv1, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    ASSERT_EQ(cfg.x.n_pcts, 2);
    ASSERT_STR_EQ(cfg.x.hlog, "a.hlog");
    ASSERT_STR_EQ(cfg.x.csv, "a.csv");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv2[] = {"mqload", "--percentiles", "50,101", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 3, argv2, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "--percentiles");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv3[] = {"mqload", "--hlog", "x", "--csv", "x", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 5, argv3, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "same file");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv4[] = {"mqload", "--metrics-listen", "nohostport", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 3, argv4, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "HOST:PORT");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv5[] = {"mqload", "--op", "find", "--fieldcount", "3", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 5, argv5, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "--preset ycsb");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv6[] = {"mqload", "--preset", "ycsb-a", "--phase", "run", "--recordcount", "100", "--seed", "50", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 9, argv6, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "drop --seed");
    mqload_config_free(&cfg);
    mqload_config_init(&cfg);
    char *argv7[] = {"mqload", "--preset", "ycsb-a", "--phase", "load", "--recordcount", "100", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 7, argv7, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    ASSERT(!cfg.seed_set);
    ASSERT_EQ(cfg.requests, 100);
    ASSERT_EQ(cfg.keys, 100);
    mqload_config_free(&cfg);
}

static size_t b64_decode(const char *in, uint8_t *out, size_t max)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *in && *in != '='; in++) {
        const char *p = strchr(A, *in);
        ASSERT_MSG(p != NULL, "bad base64 character %c", *in);
        acc = acc << 6 | (uint32_t) (p - A);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            ASSERT(n < max);
            out[n++] = (uint8_t) (acc >> bits);
        }
    }
    return n;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3]; }

/* A histogram with gaps encodes, byte for byte, to what HdrHistogram's V2 format says: outer
 * cookie, a zlib stream of one stored block with a correct Adler-32, the header (2 significant
 * digits, lowest 1, highest 2^43, ratio 1.0) and ZigZag LEB128 counts with zero runs negative. */
TEST("/mqload/outputs/hdr_encoding", mqload_outputs_hdr_encoding)
{
    mqload_sparse_t s;
    mqload_sparse_init(&s);
    ASSERT(mqload_sparse_push(&s, 5, 3));     /* 5 empty buckets (0..4), then 3 */
    ASSERT(mqload_sparse_push(&s, 300, 1));   /* 294 empty (6..299), then 1 */
    s.total = 4, s.min_ns = 5, s.max_ns = 300;
    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    mqload_hdr_encode(&s, &sb);
    uint8_t b[512];
    size_t n = b64_decode(sb.s, b, sizeof b);
    mqload_sb_free(&sb);
    mqload_sparse_free(&s);
    ASSERT_EQ(be32(b), 0x1c849314u);
    ASSERT_EQ(be32(b + 4), n - 8);
    const uint8_t *z = b + 8;
    ASSERT(z[0] == 0x78 && z[1] == 0x01);
    ASSERT_EQ(z[2], 1); /* final stored block */
    size_t len = (size_t) z[3] | (size_t) z[4] << 8, nlen = (size_t) z[5] | (size_t) z[6] << 8;
    ASSERT_EQ(len ^ 0xffff, nlen);
    ASSERT_EQ(8 + 2 + 5 + len + 4, n);
    const uint8_t *raw = z + 7;
    uint32_t a = 1, c = 0;
    for (size_t i = 0; i < len; i++) a = (a + raw[i]) % 65521, c = (c + a) % 65521;
    ASSERT_EQ(be32(raw + len), (c << 16) | a);
    ASSERT_EQ(be32(raw), 0x1c849313u);
    const uint8_t counts[] = {9, 6, 0xcb, 0x04, 2}; /* zigzag: -5 -> 9, 3 -> 6, -294 -> 587, 1 -> 2 */
    ASSERT_EQ(be32(raw + 4), sizeof counts);
    ASSERT_EQ(be32(raw + 8), 0);  /* normalizing index offset */
    ASSERT_EQ(be32(raw + 12), 2); /* significant digits */
    ASSERT_EQ(be32(raw + 16), 0);
    ASSERT_EQ(be32(raw + 20), 1); /* lowest discernible value */
    ASSERT_EQ(be32(raw + 24), 1u << 11);
    ASSERT_EQ(be32(raw + 28), 0); /* highest trackable 2^43 */
    ASSERT_EQ(be32(raw + 32), 0x3ff00000u);
    ASSERT_EQ(be32(raw + 36), 0); /* 1.0 */
    ASSERT_EQ(len, 40 + sizeof counts);
    ASSERT(!memcmp(raw + 40, counts, sizeof counts));
}

/* The last row of HistogramLogProcessor's -csv output: its Total_Count and Total_50% (ms). */
static bool java_hlog_totals(const char *java, const char *jar, const char *hlog, const char *tag, const char *outbase,
                             unsigned long long *count, double *p50_ms)
{
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' -cp '%s' org.HdrHistogram.HistogramLogProcessor -i '%s' -csv %s%s -o '%s' 2>&1", java, jar,
             hlog, tag ? "-tag " : "", tag ? tag : "", outbase);
    if (tf_sh(cmd, out, sizeof out) != 0) {
        tf_note("%s", out);
        return false;
    }
    char *csv = slurp(outbase), *last = NULL;
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n"))
        if (line[0] >= '0' && line[0] <= '9') last = line;
    bool ok = false;
    if (last) {
        double f[12];
        ok = sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6]) == 7;
        *count = (unsigned long long) f[5];
        *p50_ms = f[6];
    }
    free(csv);
    return ok;
}

/* One run against the stub server writes every format; each agrees with the JSON result. */
TEST("/mqload/outputs/hlog_csv_ycsb", mqload_outputs_hlog_csv_ycsb)
{
    char mq[1024], stubd[1024];
    tool_paths(mq, stubd, sizeof mq);
    char venv_py[1200];
    const char *cache = getenv("MQC_CACHE");
    const char *home = getenv("HOME");
    if (cache && *cache) snprintf(venv_py, sizeof venv_py, "%s/pyvenv/bin/python", cache);
    else snprintf(venv_py, sizeof venv_py, "%s/.cache/mqc/pyvenv/bin/python", home && *home ? home : "/tmp");
    int port = 0;
    /* Error 11000 on every 400th command: failures beside the successes (under 1%, exit 0), so that
     * every output is seen to hold the successful operations' latencies and count the failures apart. */
    pid_t stub = start_stub_fault(stubd, 300, "--fault-error", "11000:@400", &port);
    const char *d = tf_tmpdir();
    char cmd[8192], out[65536];
    /* Hundreds in flight, a mix, a second thread: the per-second intervals come from several threads. */
    snprintf(cmd, sizeof cmd,
             "'%s' --uri 'mongodb://127.0.0.1:%d/?directConnection=true' --mix find=80,update=20 -d 2.5 --warmup 0.3 "
             "-c 200 -t 2 --no-progress --json '%s/r.json' --hlog '%s/r.hlog' --csv '%s/r.csv' --ycsb-summary '%s/r.ycsb' "
             "--percentiles 50,95,99,99.9 2>&1",
             mq, port, d, d, d, d);
    int rc = tf_sh(cmd, out, sizeof out);
    stop_stub(stub);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "p95");
    ASSERT_STR_CONTAINS(out, "p99.9");
    ASSERT_STR_CONTAINS(out, "\nfailed "); /* the failed operations' own rows, with the same percentile columns */

    mqload_result_t r;
    tf_mqload_result(strcat(strcpy(cmd, d), "/r.json"), &r);
    uint64_t completed = r.completed, ok = r.ok, errors = r.errors, find_count = r.ops[0].ok, find_errors = r.ops[0].errors;
    double p50_us = mqload_hist_quantile(r.hist, 0.5) / 1e3;
    double p99_us = mqload_hist_quantile(r.ops[0].hist, 0.99) / 1e3;
    size_t secs = r.n_seconds;
    mqload_result_free(&r);
    ASSERT_GT(completed, 1000);
    ASSERT_GT(errors, 0);

    /* CSV: one row per timeline second, the ops column adds up to the completed count. */
    snprintf(cmd, sizeof cmd, "%s/r.csv", d);
    char *csv = slurp(cmd);
    const char *hdr = "second,unix_time,ops,ok,errors,mean_us,p50_us,p95_us,p99_us,p99_9_us,max_us\n";
    ASSERT_MSG(!strncmp(csv, hdr, strlen(hdr)), "CSV header: %.120s", csv);
    uint64_t sum = 0, sum_ok = 0, sum_err = 0;
    size_t rows = 0;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        unsigned long long ops = 0, sok = 0, serr = 0;
        size_t sec = 0;
        double unix_t = 0;
        ASSERT(sscanf(line + 1, "%zu,%lf,%llu,%llu,%llu,", &sec, &unix_t, &ops, &sok, &serr) == 5);
        ASSERT_EQ(sec, rows);
        ASSERT_EQ(ops, sok + serr);
        sum += ops, sum_ok += sok, sum_err += serr, rows++;
    }
    free(csv);
    ASSERT_EQ(rows, secs);
    ASSERT_EQ(sum, completed);
    ASSERT_EQ(sum_ok, ok);
    ASSERT_EQ(sum_err, errors);

    /* YCSB: its names and its 99thPercentileLatency(us) line, equal to the JSON's p99. */
    snprintf(cmd, sizeof cmd, "%s/r.ycsb", d);
    char *y = slurp(cmd);
    ASSERT_STR_CONTAINS(y, "[OVERALL], RunTime(ms), ");
    ASSERT_STR_CONTAINS(y, "[OVERALL], Throughput(ops/sec), ");
    ASSERT_STR_CONTAINS(y, "[UPDATE], Operations, ");
    ASSERT_STR_CONTAINS(y, "[READ], 95thPercentileLatency(us), ");
    ASSERT_STR_CONTAINS(y, "[READ], 99.9thPercentileLatency(us), ");
    /* As YCSB's DBWrapper: [READ] counts the successes, the failures are measured as [READ-FAILED]. */
    char yl[160];
    snprintf(yl, sizeof yl, "[READ], Operations, %llu\n", (unsigned long long) find_count);
    ASSERT_STR_CONTAINS(y, yl);
    snprintf(yl, sizeof yl, "[READ], Return=ERROR, %llu\n", (unsigned long long) find_errors);
    if (find_errors) {
        ASSERT_STR_CONTAINS(y, yl);
        snprintf(yl, sizeof yl, "[READ-FAILED], Operations, %llu\n", (unsigned long long) find_errors);
        ASSERT_STR_CONTAINS(y, yl);
    }
    char *p = strstr(y, "[READ], 99thPercentileLatency(us), ");
    ASSERT_NOT_NULL(p);
    double yp99 = atof(p + strlen("[READ], 99thPercentileLatency(us), "));
    free(y);
    ASSERT_MSG(yp99 >= p99_us - 1 && yp99 <= p99_us + 1, "YCSB p99 %.0f us, JSON %.3f us", yp99, p99_us);

    /* The hlog, decoded by HdrHistogram's Python implementation. */
    if (access(venv_py, X_OK) != 0) SKIP("no venv with hdrhistogram at %s: run scripts/install-deps", venv_py);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/tools/hlog_check.py' '%s/r.hlog' '%s/r.json' 2>&1", venv_py, tf_src_dir(), d, d);
    rc = tf_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    if (rc == 77) SKIP("%s", out);
    ASSERT_MSG(rc == 0, "hlog_check exit %d:\n%s", rc, out);

    /* HdrHistogram's own HistogramLogProcessor, when install-deps could fetch it (Java, Maven). */
    char jar[1200];
    snprintf(jar, sizeof jar, "%s/.m2/repository/org/hdrhistogram/HdrHistogram/2.2.2/HdrHistogram-2.2.2.jar", home ? home : "/root");
    if (access("/usr/bin/java", X_OK) == 0 && access(jar, R_OK) == 0) {
        unsigned long long jc = 0, jf = 0;
        double jp50 = 0, jfp50 = 0;
        char base[700];
        snprintf(base, sizeof base, "%s/java-all", d);
        snprintf(cmd, sizeof cmd, "%s/r.hlog", d);
        ASSERT_MSG(java_hlog_totals("/usr/bin/java", jar, cmd, NULL, base, &jc, &jp50), "HistogramLogProcessor failed");
        snprintf(base, sizeof base, "%s/java-find", d);
        ASSERT_MSG(java_hlog_totals("/usr/bin/java", jar, cmd, "find", base, &jf, &jfp50), "HistogramLogProcessor -tag find failed");
        tf_note("HistogramLogProcessor: Total_Count %llu (report %llu), find %llu (report %llu), Total_50%% %.3f ms (report %.3f ms)",
                jc, (unsigned long long) ok, jf, (unsigned long long) find_count, jp50, p50_us / 1e3);
        ASSERT_EQ(jc, ok);
        ASSERT_EQ(jf, find_count);
        /* Its 50% is the top of the bucket holding the report's p50 (buckets are <= 0.8% wide). */
        ASSERT_MSG(jp50 * 1e3 >= p50_us - 0.5 && jp50 * 1e3 <= p50_us * 1.008 + 0.5, "p50 %.3f ms vs %.3f ms", jp50, p50_us / 1e3);
    } else {
        tf_note("no Java HdrHistogram 2.2.2 (%s): HistogramLogProcessor not run", jar);
    }

    /* mqload merge writes the same formats from merged results: the run twice, every count doubled. */
    snprintf(cmd, sizeof cmd, "'%s' merge '%s/r.json' '%s/r.json' --json '%s/m.json' --hlog '%s/m.hlog' --ycsb-summary - -q 2>&1",
             mq, d, d, d, d);
    rc = tf_sh(cmd, out, sizeof out);
    ASSERT_MSG(rc == 0, "merge exit %d: %s", rc, out);
    char want[96];
    snprintf(want, sizeof want, "[OVERALL], Throughput(ops/sec), ");
    ASSERT_STR_CONTAINS(out, want);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/tools/hlog_check.py' '%s/m.hlog' '%s/m.json' 2>&1", venv_py, tf_src_dir(), d, d);
    rc = tf_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    ASSERT_MSG(rc == 0, "hlog_check of the merged log exit %d:\n%s", rc, out);
    snprintf(want, sizeof want, "count %llu (report: %llu successful, %llu failed", (unsigned long long) (2 * ok),
             (unsigned long long) (2 * ok), (unsigned long long) (2 * errors));
    ASSERT_STR_CONTAINS(out, want);
}

TEST("/mqload/outputs/prometheus_scrape", mqload_outputs_prometheus)
{
    char mq[1024], stubd[1024], cmd[8192], out[65536];
    tool_paths(mq, stubd, sizeof mq);
    snprintf(cmd, sizeof cmd, "%s '%s/tests/tools/prom_check.py' '%s' '%s' '%s/prom' 2>&1", python(), tf_src_dir(), mq, stubd,
             tf_tmpdir());
    int rc = tf_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    if (rc == 77) SKIP("%s", out);
    ASSERT_MSG(rc == 0, "prom_check exit %d:\n%s", rc, out);
    ASSERT_STR_CONTAINS(out, "its rate matches");
}

/* The y of every vertex of the throughput area but its two base corners. */
static size_t area_ys(const char *html, double *ys, size_t max)
{
    const char *p = strstr(html, "data-series=\"total\" points=\"");
    ASSERT_NOT_NULL(p);
    p += strlen("data-series=\"total\" points=\"");
    size_t n = 0;
    double x, y;
    int used;
    while (n < max && sscanf(p, "%lf,%lf%n", &x, &y, &used) == 2) {
        ys[n++] = y;
        p += used;
        while (*p == ' ') p++;
    }
    ASSERT_GE(n, 4);
    memmove(ys, ys + 1, (n - 2) * sizeof *ys); /* drop the base corners (first and last) */
    return n - 2;
}

/* A steady run draws a flat line to its end: operations that completed after the window closed
 * are not drawn as a second of their own, and a partial last second is drawn as a rate. */
TEST("/mqload/outputs/html_no_phantom_drop", mqload_outputs_html_no_drop)
{
    const double durations[] = {2.0, 2.5};
    const uint64_t last[] = {7, 500}; /* the third second: 7 stragglers, or half a second of load */
    for (int k = 0; k < 2; k++) {
        mqload_result_t r;
        mqload_result_init(&r);
        mqload_result_op(&r, "find", "find");
        r.duration_s = durations[k];
        for (size_t i = 0; i < 3; i++) {
            mqload_second_t *s = mqload_result_second(&r, i);
            s->ops = s->ok = i < 2 ? 1000 : last[k];
            mqload_sparse_push(&s->hist, mqload_hist_index(1000000), s->ops);
            s->hist.total = s->ops, s->hist.min_ns = s->hist.max_ns = 1000000, s->hist.sum_ns = 1e6 * (double) s->ops;
            r.completed += s->ops, r.ok += s->ops;
            mqload_hist_record(r.hist, 1000000);
        }
        r.submitted = r.completed;
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        mqload_report_html(&r, &sb);
        double ys[64];
        size_t n = area_ys(sb.s, ys, 64);
        for (size_t i = 1; i < n; i++) ASSERT_MSG(ys[i] == ys[0], "duration %.1f: vertex %zu at y %.1f, first at %.1f", durations[k], i, ys[i], ys[0]);
        if (k == 0) ASSERT_STR_CONTAINS(sb.s, "7 operations in flight when the window closed");
        mqload_sb_free(&sb);
        mqload_result_free(&r);
    }
}

/* A real run with a mix, a fixed rate, a few server errors and a threshold, opened in headless
 * Chromium: no console errors, every chart drawn, a screenshot kept as a CI artifact. */
TEST("/mqload/outputs/html_chromium", mqload_outputs_html_chromium)
{
    char mq[1024], stubd[1024], cmd[8192], out[65536];
    tool_paths(mq, stubd, sizeof mq);
    int port = 0;
    /* Error 11000 on every 1500th command: a handful of errors among thousands of operations. */
    pid_t stub = start_stub_fault(stubd, 300, "--fault-error", "11000:@1500", &port);
    const char *d = tf_tmpdir();
    snprintf(cmd, sizeof cmd,
             "'%s' --uri 'mongodb://127.0.0.1:%d/?directConnection=true' --mix find=70,update=30 -R 1500 -d 3 --warmup 0.3 "
             "-c 300 --no-progress -q --json '%s/h.json' --html '%s/h.html' --threshold 'p99<10s,find.p50<1ns' 2>&1",
             mq, port, d, d);
    int rc = tf_sh(cmd, out, sizeof out);
    stop_stub(stub);
    ASSERT_MSG(rc == 2, "exit %d (2 expected: find.p50<1ns cannot hold): %s", rc, out);
    mqload_result_t r;
    snprintf(cmd, sizeof cmd, "%s/h.json", d);
    tf_mqload_result(cmd, &r);
    uint64_t errors = r.errors, completed = r.completed;
    mqload_result_free(&r);
    ASSERT_GT(errors, 0);
    ASSERT_MSG(errors * 100 < completed, "%llu errors of %llu: expected a handful", (unsigned long long) errors,
               (unsigned long long) completed);
    char shot[1200];
    snprintf(shot, sizeof shot, "%s/artifacts/report.png", tf_build_dir());
    snprintf(cmd, sizeof cmd,
             "%s '%s/tests/tools/html_check.py' '%s/h.html' '%s' --charts throughput,errors,latency,inflight,percentiles "
             "--series throughput:target,throughput:op:find,throughput:op:update,latency:p99:update,errors:errors,"
             "inflight:in_flight,inflight:conns_open --text Thresholds --text FAILED --text passed --text 'Workload definition' "
             "--text 'InjectedFault(11000)' --text 'stubd: injected fault' --text 'Failed operations' --text Schedule "
             "--errmarks 1 2>&1",
             python(), tf_src_dir(), d, shot);
    rc = tf_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    if (rc == 77) SKIP("%s", out);
    ASSERT_MSG(rc == 0, "html_check exit %d:\n%s", rc, out);
    ASSERT(access(shot, R_OK) == 0);
}

/* The /metrics endpoint over HTTP: OpenMetrics when asked for, the 0.0.4 text format otherwise,
 * 404 elsewhere; counters read from the engine threads' statistics. */
static void http_get(int port, const char *path, const char *accept, char *out, size_t outsz)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT(connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%s%s\r\n", path, accept ? "Accept: " : "",
                     accept ? accept : "", accept ? "\r\n" : "");
    ASSERT(write(fd, req, (size_t) n) == n);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < outsz && (r = read(fd, out + got, outsz - 1 - got)) > 0) got += (size_t) r;
    out[got] = 0;
    close(fd);
}

TEST("/mqload/outputs/metrics_endpoint", mqload_outputs_metrics_endpoint)
{
    mqload_config_t cfg;
    mqload_config_init(&cfg);
    char err[512];
    char *argv[] = {"mqload", "--mix", "find=1,update=1", "-R", "100", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 5, argv, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    mqload_workload_t wl;
    ASSERT_MSG(mqload_workload_load(&wl, &cfg, err, sizeof err), "%s", err);
    mqload_run_t run;
    memset(&run, 0, sizeof run);
    run.cfg = &cfg;
    run.wl = &wl;
    run.n_stats = 2;
    run.stats = calloc(2, sizeof *run.stats);
    for (size_t i = 0; i < 2; i++) {
        mqload_tstats_init(&run.stats[i]);
        for (size_t k = 0; k < wl.n_ops; k++) mqload_result_op(&run.stats[i].r, wl.ops[k].name, "x");
    }
    run.measure_ns = mqload_now_ns();
    run.end_ns = run.measure_ns + 10 * 1000000000LL;
    /* Thread 0: 3 finds (one failed) and an update in second 0; thread 1: 2 updates. */
    mqload_tstats_record(&run.stats[0], 0, 1000000, NULL, 0);
    mqload_tstats_record(&run.stats[0], 0, 2000000, NULL, 0);
    mqload_tstats_record(&run.stats[0], 0, 3000000, "network", 0);
    mqload_tstats_record(&run.stats[0], 1, 4000000, NULL, 0);
    mqload_tstats_record(&run.stats[1], 1, 500000, NULL, 0);
    mqload_tstats_record(&run.stats[1], 1, 700000, NULL, 0);
    for (size_t i = 0; i < 2; i++) {
        atomic_store(&run.stats[i].a_submitted, 4);
        atomic_store(&run.stats[i].a_completed, 3);
        mqload_tstats_flush(&run.stats[i], 1); /* publishes second 0 */
    }
    int port = 0;
    mqload_metrics_t *m = mqload_metrics_listen("127.0.0.1:0", &port, err, sizeof err);
    ASSERT_MSG(m != NULL, "%s", err);
    ASSERT_GT(port, 0);
    /* A second listener on the same port fails with a message naming it. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    ASSERT(mqload_metrics_listen(addr, &port, err, sizeof err) == NULL);
    ASSERT_STR_CONTAINS(err, "cannot listen");
    ASSERT(mqload_metrics_serve(m, &run, err, sizeof err));
    static char out[65536];
    http_get(port, "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", out, sizeof out);
    tf_note("%s", out);
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 200 OK");
    ASSERT_STR_CONTAINS(out, "Content-Type: application/openmetrics-text; version=1.0.0");
    ASSERT_STR_CONTAINS(out, "# TYPE mqload_operations_completed counter\n");
    ASSERT_STR_CONTAINS(out, "mqload_operations_completed_total 6\n");
    ASSERT_STR_CONTAINS(out, "mqload_operations_in_flight 2\n");
    ASSERT_STR_CONTAINS(out, "mqload_measured_operations_total{op=\"find\",type=\"find\",result=\"ok\"} 2\n");
    ASSERT_STR_CONTAINS(out, "mqload_measured_operations_total{op=\"find\",type=\"find\",result=\"error\"} 1\n");
    ASSERT_STR_CONTAINS(out, "mqload_measured_operations_total{op=\"update\",type=\"update\",result=\"ok\"} 3\n");
    ASSERT_STR_CONTAINS(out, "mqload_operation_errors_total 1\n");
    ASSERT_STR_CONTAINS(out, "mqload_target_rate 100\n");
    /* Successful latencies 0.5, 0.7, 1, 2, 4 ms (the failed find's 3 ms is not among them): 2 at or
     * below 1 ms (the 1 ms bucket's top is above 1 ms), 5 in all. */
    ASSERT_STR_CONTAINS(out, "mqload_latency_seconds_bucket{le=\"0.001\"} 2\n");
    ASSERT_STR_CONTAINS(out, "mqload_latency_seconds_bucket{le=\"0.0025\"} 4\n");
    ASSERT_STR_CONTAINS(out, "mqload_latency_seconds_bucket{le=\"0.005\"} 5\n");
    ASSERT_STR_CONTAINS(out, "mqload_latency_seconds_count 5\n");
    size_t len = strlen(out);
    ASSERT(len > 6 && !strcmp(out + len - 6, "# EOF\n"));
    http_get(port, "/metrics", NULL, out, sizeof out);
    ASSERT_STR_CONTAINS(out, "Content-Type: text/plain; version=0.0.4");
    ASSERT_STR_CONTAINS(out, "# TYPE mqload_operations_completed_total counter\n");
    ASSERT(strstr(out, "# EOF") == NULL);
    http_get(port, "/other", NULL, out, sizeof out);
    ASSERT_STR_CONTAINS(out, "HTTP/1.1 404");
    /* --metrics-linger: after the run, the histogram is the result's, every operation in it. */
    mqload_result_t res;
    mqload_result_init(&res);
    for (int i = 0; i < 10; i++) mqload_hist_record(res.hist, 2000000);
    mqload_metrics_final(m, &res);
    http_get(port, "/metrics", NULL, out, sizeof out);
    ASSERT_STR_CONTAINS(out, "mqload_latency_seconds_count 10\n");
    ASSERT_STR_CONTAINS(out, "mqload_measuring 0\n");
    mqload_result_free(&res);
    mqload_metrics_stop(m);
    for (size_t i = 0; i < 2; i++) mqload_tstats_free(&run.stats[i]);
    free(run.stats);
    mqload_workload_free(&wl);
    mqload_config_free(&cfg);
}
