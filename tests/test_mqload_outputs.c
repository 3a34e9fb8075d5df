/* mqload's outputs for other tools, checked by those tools' own implementations: the HdrHistogram
 * log decoded by PyPI's hdrhistogram, the metrics scraped by a real Prometheus, the HTML report
 * rendered by headless Chromium; and the CSV, YCSB summary and --percentiles against the JSON. */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/args.h"
#include "../cli/hlog.h"
#include "../cli/merge.h"
#include "../cli/xopts.h"
#include "tf.h"

static int run_sh(const char *cmd, char *out, size_t outsz)
{
    tf_note("%s", cmd);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void tool_paths(char *mqload, char *stubd, size_t n)
{
    snprintf(mqload, n, "%s/mqload", tf_build_dir());
    if (access(mqload, X_OK) != 0) SKIP("%s is not built", mqload);
    snprintf(stubd, n, "%s/bench/stubd", tf_build_dir());
    if (access(stubd, X_OK) != 0) snprintf(stubd, n, "%s/build/bench/stubd", tf_src_dir());
    if (access(stubd, X_OK) != 0) SKIP("the stub server (bench/stubd) is not built");
}

static const char *python(void) { return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3"; }

/* Starts stubd (reply delay delay_us) on a free port; returns its pid. */
static pid_t start_stub(const char *bin, int delay_us, int *port)
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
        execl(bin, bin, "--port", "0", "--delay-us", d, (char *) NULL);
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

static void load_result(const char *path, mqload_result_t *r)
{
    char *buf = slurp(path), err[512];
    bool ok = mqload_result_from_json(r, buf, strlen(buf), err, sizeof err);
    free(buf);
    ASSERT_MSG(ok, "%s: %s", path, err);
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
}

/* An empty histogram and one with a gap encode to what HdrHistogram's V2 format says. */
TEST("/mqload/outputs/hdr_encoding", mqload_outputs_hdr_encoding)
{
    mqload_sparse_t s;
    mqload_sparse_init(&s);
    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    mqload_hdr_encode(&s, &sb);
    /* 0x1c849314 (compressed V2, word size 8), then the zlib stream's 0x78 0x01. */
    ASSERT(!strncmp(sb.s, "HISTFAAAA", 9));
    mqload_sb_free(&sb);
    mqload_sparse_free(&s);
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
    pid_t stub = start_stub(stubd, 300, &port);
    const char *d = tf_tmpdir();
    char cmd[8192], out[65536];
    /* Hundreds in flight, a mix, a second thread: the per-second intervals come from several threads. */
    snprintf(cmd, sizeof cmd,
             "'%s' --uri 'mongodb://127.0.0.1:%d/?directConnection=true' --mix find=80,update=20 -d 2.5 --warmup 0.3 "
             "-c 200 -t 2 --no-progress --json '%s/r.json' --hlog '%s/r.hlog' --csv '%s/r.csv' --ycsb-summary '%s/r.ycsb' "
             "--percentiles 50,95,99,99.9 2>&1",
             mq, port, d, d, d, d);
    int rc = run_sh(cmd, out, sizeof out);
    stop_stub(stub);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "p95");
    ASSERT_STR_CONTAINS(out, "p99.9");

    mqload_result_t r;
    load_result(strcat(strcpy(cmd, d), "/r.json"), &r);
    uint64_t completed = r.completed;
    double p99_us = mqload_hist_quantile(r.ops[0].hist, 0.99) / 1e3;
    size_t secs = r.n_seconds;
    mqload_result_free(&r);
    ASSERT_GT(completed, 1000);

    /* CSV: one row per timeline second, the ops column adds up to the completed count. */
    snprintf(cmd, sizeof cmd, "%s/r.csv", d);
    char *csv = slurp(cmd);
    const char *hdr = "second,unix_time,ops,ok,errors,mean_us,p50_us,p95_us,p99_us,p99_9_us,max_us\n";
    ASSERT_MSG(!strncmp(csv, hdr, strlen(hdr)), "CSV header: %.120s", csv);
    uint64_t sum = 0;
    size_t rows = 0;
    for (char *line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        unsigned long long ops = 0;
        size_t sec = 0;
        double unix_t = 0;
        ASSERT(sscanf(line + 1, "%zu,%lf,%llu,", &sec, &unix_t, &ops) == 3);
        ASSERT_EQ(sec, rows);
        sum += ops, rows++;
    }
    free(csv);
    ASSERT_EQ(rows, secs);
    ASSERT_EQ(sum, completed);

    /* YCSB: its names and its 99thPercentileLatency(us) line, equal to the JSON's p99. */
    snprintf(cmd, sizeof cmd, "%s/r.ycsb", d);
    char *y = slurp(cmd);
    ASSERT_STR_CONTAINS(y, "[OVERALL], RunTime(ms), ");
    ASSERT_STR_CONTAINS(y, "[OVERALL], Throughput(ops/sec), ");
    ASSERT_STR_CONTAINS(y, "[UPDATE], Operations, ");
    ASSERT_STR_CONTAINS(y, "[READ], 95thPercentileLatency(us), ");
    ASSERT_STR_CONTAINS(y, "[READ], 99.9thPercentileLatency(us), ");
    char *p = strstr(y, "[READ], 99thPercentileLatency(us), ");
    ASSERT_NOT_NULL(p);
    double yp99 = atof(p + strlen("[READ], 99thPercentileLatency(us), "));
    free(y);
    ASSERT_MSG(yp99 >= p99_us - 1 && yp99 <= p99_us + 1, "YCSB p99 %.0f us, JSON %.3f us", yp99, p99_us);

    /* The hlog, decoded by HdrHistogram's Python implementation. */
    if (access(venv_py, X_OK) != 0) SKIP("no venv with hdrhistogram at %s: run scripts/install-deps", venv_py);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/tools/hlog_check.py' '%s/r.hlog' '%s/r.json' 2>&1", venv_py, tf_src_dir(), d, d);
    rc = run_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    if (rc == 77) SKIP("%s", out);
    ASSERT_MSG(rc == 0, "hlog_check exit %d:\n%s", rc, out);
}

TEST("/mqload/outputs/prometheus_scrape", mqload_outputs_prometheus)
{
    char mq[1024], stubd[1024], cmd[8192], out[65536];
    tool_paths(mq, stubd, sizeof mq);
    snprintf(cmd, sizeof cmd, "%s '%s/tests/tools/prom_check.py' '%s' '%s' '%s/prom' 2>&1", python(), tf_src_dir(), mq, stubd,
             tf_tmpdir());
    int rc = run_sh(cmd, out, sizeof out);
    tf_note("%s", out);
    if (rc == 77) SKIP("%s", out);
    ASSERT_MSG(rc == 0, "prom_check exit %d:\n%s", rc, out);
    ASSERT_STR_CONTAINS(out, "its rate matches");
}
