/* mqload end to end: the built binary against FerretDB (both engines), merge, thresholds, exit
 * codes, and against the stub server with a fixed reply delay. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/merge.h"
#include "support/mqload_run.h"
#include "tf.h"

static void check_clean_run(const char *path)
{
    mqload_result_t r;
    tf_mqload_result(path, &r);
    uint64_t sub = r.submitted, comp = r.completed, ok = r.ok, errs = r.errors, secs = r.n_seconds;
    mqload_result_free(&r);
    ASSERT_EQ(sub, comp);
    ASSERT_GT(ok, 0);
    ASSERT_EQ(errs, 0);
    ASSERT_GE(secs, 2);
}

static void e2e_engine(const char *engine, const char *json)
{
    const char *uri = tf_server_uri("plain");
    char args[2048], out[65536];
    snprintf(args, sizeof args, "--uri '%s' --db %s --engine %s -d 2 --warmup 0.3 -c 4 --seed 200 --mix find=80,update=20 "
             "--seed-rng 1 --json '%s' --no-progress", uri, tf_unique("mqload"), engine, json);
    int rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "throughput");
    check_clean_run(json);
}


TEST("/mqload/e2e/mqc", mqload_e2e_mqc)
{
    tf_mqload_need();
    char json[512];
    snprintf(json, sizeof json, "%s/mqc.json", tf_tmpdir());
    e2e_engine("mqc", json);
}

TEST("/mqload/e2e/mongoc", mqload_e2e_mongoc)
{
    tf_mqload_need();
    char json[512];
    snprintf(json, sizeof json, "%s/mongoc.json", tf_tmpdir());
    e2e_engine("mongoc", json);
}

TEST("/mqload/e2e/merge", mqload_e2e_merge)
{
    tf_mqload_need();
    const char *uri = tf_server_uri("plain");
    const char *dir = tf_tmpdir();
    char f1[600], f2[600], merged[600], args[4096], out[65536];
    snprintf(f1, sizeof f1, "%s/a.json", dir);
    snprintf(f2, sizeof f2, "%s/b.json", dir);
    snprintf(merged, sizeof merged, "%s/merged.json", dir);
    snprintf(args, sizeof args, "--uri '%s' --op command -d 1.5 --warmup 0 -c 2 -q --json '%s'", uri, f1);
    int rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    snprintf(args, sizeof args, "--uri '%s' --op command --db other -d 1 --warmup 0 -c 2 -q --json '%s'", uri, f2);
    rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    /* Another database is another workload: merge must refuse it. */
    snprintf(args, sizeof args, "merge '%s' '%s' --json '%s'", f1, f2, merged);
    rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 1, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "different workloads");
    /* The same run twice is the same workload: everything doubles exactly. */
    snprintf(args, sizeof args, "merge '%s' '%s' --json '%s' --html '%s.html' -q", f1, f1, merged, merged);
    rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    mqload_result_t a, m;
    tf_mqload_result(f1, &a);
    tf_mqload_result(merged, &m);
    uint64_t ac = a.completed, mc = m.completed, ms = m.submitted, at = a.hist->total, mt = m.hist->total;
    size_t an = a.n_seconds, mn = m.n_seconds;
    uint64_t a0 = a.timeline[0].ops, m0 = m.timeline[0].ops;
    bool same = true;
    for (size_t i = 0; i < MQLOAD_HIST_BUCKETS; i++) same = same && m.hist->counts[i] == 2 * a.hist->counts[i];
    mqload_result_free(&a);
    mqload_result_free(&m);
    ASSERT_GT(ac, 0);
    ASSERT_EQ(mc, 2 * ac);
    ASSERT_EQ(ms, mc);
    ASSERT_EQ(mt, 2 * at);
    ASSERT_EQ(mn, an);
    ASSERT_EQ(m0, 2 * a0);
    ASSERT(same);
}

TEST("/mqload/e2e/threshold_exit_2", mqload_e2e_threshold)
{
    tf_mqload_need();
    const char *uri = tf_server_uri("plain");
    char args[2048], out[65536];
    snprintf(args, sizeof args, "--uri '%s' --op command -d 1 --warmup 0 -c 2 -q --threshold 'p50<1ns,ops>0'", uri);
    int rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 2, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "threshold p50<1ns violated");
    ASSERT(strstr(out, "ops>0") == NULL);
}

TEST("/mqload/e2e/usage_errors_exit_1", mqload_e2e_usage_errors)
{
    tf_mqload_need();
    char out[16384], path[512];
    static const char *const cases[] = {"--bogus", "-c", "--rate=-5", "--workload /nonexistent.json", "merge",
                                        "merge /nonexistent.json", "--uri 'mongodb://a:b:c@'"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = tf_mqload(NULL, cases[i], out, sizeof out);
        ASSERT_MSG(rc == 1, "'%s' exited %d: %s", cases[i], rc, out);
        ASSERT_STR_CONTAINS(out, "mqload");
    }
    snprintf(path, sizeof path, "%s/bad.json", tf_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("{\"operations\": [ {\"op\": ", f);
    fclose(f);
    char args[1024];
    snprintf(args, sizeof args, "--workload '%s'", path);
    ASSERT_EQ(tf_mqload(NULL, args, out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "invalid Extended JSON");
    ASSERT_EQ(tf_mqload(NULL, "--help", out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "usage: mqload");
}

/* Starts build/tests/stubd on a free port; returns its pid and port. */
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
    return pid;
}

TEST("/mqload/e2e/stub_fixed_delay", mqload_e2e_stub_fixed_delay)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/build/tests/stubd", tf_src_dir());
    if (access(bin, X_OK) != 0) snprintf(bin, sizeof bin, "%s/tests/stubd", tf_build_dir());
    if (access(bin, X_OK) != 0) SKIP("the stub server (build/tests/stubd) is not built");
    tf_mqload_need();
    int port = 0;
    pid_t pid = start_stub(bin, 20000, &port);
    if (port <= 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        FAIL("stubd printed no port");
    }
    char args[2048], out[65536], json[600];
    snprintf(json, sizeof json, "%s/stub.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --op find -d 2 --warmup 0.3 -c 8 "
             "--json '%s' -q", port, json);
    int rc = tf_mqload(NULL, args, out, sizeof out);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    mqload_result_t r;
    tf_mqload_result(json, &r);
    double p50 = mqload_hist_quantile(r.hist, 0.5) / 1e3;
    uint64_t sub = r.submitted, comp = r.completed, ok = r.ok;
    mqload_result_free(&r);
    ASSERT_EQ(sub, comp);
    ASSERT_GT(ok, 0);
    /* 20 ms of server delay, plus a little of our own: p50 lands close above it. */
    ASSERT_MSG(p50 >= 19800 && p50 <= 26000, "p50 %.0f us for a 20000 us delay", p50);
}
