/* mqload tells the truth (issue 17): a fixed rate it cannot keep is reported as such with exit 3
 * and every scheduled operation accounted for; a server killed mid-run exits 4 with success-only
 * latencies; mistakes are found before any traffic; stages are reported one by one; the live
 * line shows errors per second, the time left and the warmup. Against stubd (tests/server/). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/merge.h"
#include "../cli/precheck.h"
#include "../cli/sched.h"
#include "../cli/template.h"
#include "chaos_stub.h"
#include "support/mqload_run.h"
#include "tf.h"

static char g_out[1 << 17];

/* -R 10000 -c 8 against replies held 2 ms: at most ~4000/s can be sent. Before the fix: exit 0,
 * 7,275 of 40,000 sent and the rest nowhere, 0 operations in the first second. */
TEST("/mqload/honest/rate_shortfall", mqload_honest_rate_shortfall)
{
    tf_mqload_need();
    chaos_stub_t s;
    const char *const extra[] = {"--delay-us", "2000", NULL};
    chaos_stub_start(&s, 0, extra);
    char args[2048], json[600];
    snprintf(json, sizeof json, "%s/shortfall.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --op find -R 10000 -c 8 -d 2 "
             "--warmup 0.5 --json '%s' --no-progress", s.port, json);
    int rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    chaos_stub_stop(&s);
    ASSERT_MSG(rc == 3, "exit %d (a shortfall exits 3): %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "target rate was not reached");
    ASSERT_STR_CONTAINS(g_out, "SHORTFALL");
    mqload_result_t r;
    tf_mqload_result(json, &r);
    tf_note("scheduled %llu sent %llu unsent %llu late %llu backlog %llu p50 %.0f us, first second %llu ops",
            (unsigned long long) r.scheduled, (unsigned long long) r.submitted, (unsigned long long) r.unsent,
            (unsigned long long) r.late, (unsigned long long) r.max_backlog, mqload_hist_quantile(r.hist, 0.5) / 1e3,
            (unsigned long long) (r.n_seconds ? r.timeline[0].ops : 0));
    ASSERT(r.open_loop);
    ASSERT_DBL_NEAR(r.target_rate, 10000, 1e-9);
    /* Every operation of the schedule is accounted for: 10000/s for 2 s, sent or not. */
    ASSERT_GE(r.scheduled, 19990);
    ASSERT_LE(r.scheduled, 20000);
    ASSERT_EQ(r.submitted + r.unsent, r.scheduled);
    ASSERT_EQ(r.submitted, r.completed);
    ASSERT_GT(r.unsent, 5000); /* the server takes 4000/s at most */
    ASSERT_GT(r.late, r.submitted / 2);
    ASSERT_GT(r.max_backlog, 1000);
    ASSERT_EQ(r.lag->total, r.submitted);
    ASSERT_GT(r.unsent_wait_ns, 500000000ull); /* 6000 behind per second: the oldest unsent waited long */
    /* Waiting for a free slot counts in the latency: far above the 2 ms the server takes. */
    ASSERT_GT(mqload_hist_quantile(r.hist, 0.5), 50e6);
    ASSERT_GE(r.n_seconds, 2);
    ASSERT_GT(r.timeline[0].ops, 0); /* the first second counts what completed in it (it was 0: the warmup backlog) */
    ASSERT_GT(r.timeline[1].ops, 0);
    uint64_t sent = 0, late = 0;
    for (size_t i = 0; i < r.n_seconds; i++) sent += r.timeline[i].sent, late += r.timeline[i].late;
    ASSERT_EQ(sent, r.submitted); /* each second says what was sent in it */
    ASSERT_EQ(late, r.late);
    mqload_result_free(&r);
    /* Merged results keep the verdict: the schedule's counts add up. */
    snprintf(args, sizeof args, "merge '%s' '%s' -q", json, json);
    rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    ASSERT_MSG(rc == 3, "merge exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "target rate was not reached");
}

/* A rate the server keeps: all sent, none late beyond noise, exit 0. */
TEST("/mqload/honest/rate_kept", mqload_honest_rate_kept)
{
    tf_mqload_need();
    chaos_stub_t s;
    const char *const extra[] = {"--delay-us", "2000", NULL};
    chaos_stub_start(&s, 0, extra);
    char args[2048], json[600];
    snprintf(json, sizeof json, "%s/kept.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --op find -R 300 -d 1.5 "
             "--warmup 0.3 --json '%s' --no-progress", s.port, json);
    int rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    chaos_stub_stop(&s);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "schedule   target 300.0 ops/s");
    mqload_result_t r;
    tf_mqload_result(json, &r);
    ASSERT_EQ(r.unsent, 0);
    ASSERT_EQ(r.scheduled, 450);
    ASSERT_EQ(r.submitted, 450);
    ASSERT(!mqload_result_shortfall(&r));
    ASSERT_GT(r.timeline[0].ops, 0);
    mqload_result_free(&r);
}

static void kill_later(const chaos_stub_t *s, char *prefix, size_t n)
{
    snprintf(prefix, n, "(sleep 1; kill -9 %d) & ", (int) s->pid);
}

/* The server dies 1 s into a 3 s run. Before the fix: exit 0, failures in the percentiles, the
 * error kind without a message. */
TEST("/mqload/honest/server_killed", mqload_honest_server_killed)
{
    tf_mqload_need();
    chaos_stub_t s;
    chaos_stub_start(&s, 0, NULL);
    char args[2048], json[600], prefix[128];
    snprintf(json, sizeof json, "%s/killed.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --mix find=80,insert=20 -c 8 -d 3 "
             "--warmup 0.2 --json '%s' --no-progress", s.port, json);
    kill_later(&s, prefix, sizeof prefix);
    int rc = tf_mqload(prefix, args, g_out, sizeof g_out);
    waitpid(s.pid, NULL, 0);
    ASSERT_MSG(rc == 4, "exit %d (more errors than --max-error-rate exits 4): %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "more than --max-error-rate 5%");
    ASSERT_STR_CONTAINS(g_out, "\nfailed          count");
    ASSERT_STR_CONTAINS(g_out, "network: ");
    mqload_result_t r;
    tf_mqload_result(json, &r);
    tf_note("ok %llu errors %llu", (unsigned long long) r.ok, (unsigned long long) r.errors);
    ASSERT_GT(r.ok, 0);
    ASSERT_GT(r.errors, r.completed / 20);
    /* The table is the successful operations'; the failures have their own histogram. */
    ASSERT_EQ(r.hist->total, r.ok);
    ASSERT_EQ(r.err_hist->total, r.errors);
    for (size_t i = 0; i < r.n_ops; i++) {
        ASSERT_EQ(r.ops[i].hist->total, r.ops[i].ok);
        ASSERT_EQ(r.ops[i].err_hist->total, r.ops[i].errors);
    }
    for (size_t i = 0; i < r.n_seconds; i++) ASSERT_EQ(r.timeline[i].hist.total, r.timeline[i].ok);
    /* A second with failures only shows no latency in the JSON (null), not a fast one. */
    bool all_failed_second = false;
    for (size_t i = 0; i < r.n_seconds; i++) all_failed_second |= r.timeline[i].ok == 0 && r.timeline[i].errors > 0;
    if (all_failed_second) {
        FILE *jf = fopen(json, "r");
        static char jbuf[8 << 20];
        size_t jn = fread(jbuf, 1, sizeof jbuf - 1, jf);
        fclose(jf);
        jbuf[jn] = 0;
        ASSERT_STR_CONTAINS(jbuf, "\"p50_us\":null");
    }
    ASSERT_GT(r.n_errs, 0);
    for (size_t i = 0; i < r.n_errs; i++) ASSERT_MSG(r.errs[i].message[0], "error kind %s has no message", r.errs[i].kind);
    mqload_result_free(&r);
    /* Merged, the verdict holds (and the first messages travel through the JSON). */
    snprintf(args, sizeof args, "merge '%s' '%s'", json, json);
    rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    ASSERT_MSG(rc == 4, "merge exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "network: ");
    /* Adjustable: 100 turns it off. */
    chaos_stub_start(&s, 0, NULL);
    /* With hundreds in flight and inserts past libbson's inline buffer. */
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --preset ycsb-a -c 300 -d 2 "
             "--warmup 0.2 -q --max-error-rate 100 --json '%s'", s.port, json);
    kill_later(&s, prefix, sizeof prefix);
    rc = tf_mqload(prefix, args, g_out, sizeof g_out);
    waitpid(s.pid, NULL, 0);
    ASSERT_MSG(rc == 0, "exit %d with --max-error-rate 100: %s", rc, g_out);
    tf_mqload_result(json, &r);
    ASSERT_GT(r.errors, 0);
    ASSERT_EQ(r.hist->total, r.ok);
    ASSERT_EQ(r.err_hist->total, r.errors);
    ASSERT_EQ(r.submitted, r.completed);
    mqload_result_free(&r);
}

/* Mistakes found before any traffic: the URI points at a closed port, so a message about the
 * server would mean the check came too late. */
TEST("/mqload/honest/checked_before_traffic", mqload_honest_checked_before_traffic)
{
    tf_mqload_need();
    const char *dir = tf_tmpdir();
    char bad_json[600], keys[600], tmpl[600], ok_ops[600];
    snprintf(bad_json, sizeof bad_json, "%s/bad.json", dir);
    snprintf(keys, sizeof keys, "%s/keys.json", dir);
    snprintf(tmpl, sizeof tmpl, "%s/tmpl.json", dir);
    snprintf(ok_ops, sizeof ok_ops, "%s/ok_ops.json", dir);
    FILE *f = fopen(bad_json, "w");
    fputs("{\n  \"name\": \"x\",\n  \"keys\": 5,,\n}\n", f);
    fclose(f);
    f = fopen(keys, "w");
    fputs("{\"keys\": -5, \"operations\": [{\"op\": \"find\"}]}", f);
    fclose(f);
    f = fopen(tmpl, "w");
    fputs("{\"operations\": [{\"op\": \"find\", \"filter\": {\"n\": {\"$randint\": [1, 5]}}}]}", f);
    fclose(f);
    f = fopen(ok_ops, "w");
    fputs("{\"operations\": [{\"op\": \"find\", \"filter\": {\"n\": {\"$eq\": 5}, \"m\": {\"$in\": [1]}}}]}", f);
    fclose(f);
    static const struct {
        const char *args, *want, *not_want;
    } cases[] = {
        {"--threshold 'fnd.p99<5ms'", "no operation named 'fnd' (the workload has: find)", NULL},
        {"--json /nonexistent/x.json", "--json /nonexistent/x.json: the directory /nonexistent does not exist", NULL},
        {"--html /nonexistent/x.html", "--html /nonexistent/x.html", NULL},
        {"--uri mongodb://127.0.0.1:28111:99", "more than one ':PORT'", NULL},
        {"--uri mongodb://127.0.0.1:12a", "the port must be a number in 1..65535", NULL},
        {"--uri 'mongodb://[::1'", "mqload: --uri: host '[::1': an IPv6 address opened with '[' is not closed", "ERROR"},
        {"--workload BAD", "line 3 column 13", NULL},
        {"--workload KEYS", "\"keys\" must be a positive integer", "unknown"},
        {"--workload TMPL", "unknown template operator '$randint' (did you mean $randInt?", NULL},
        {"--stages 10s", "--stages: stage 1 '10s': expected DUR:TARGET", NULL},
        {"--stages 10s:1k,", "a stage is missing", NULL},
        {"--concurrency-stages 1s:2.5", "is not a count of operations in flight", NULL},
        {"--max-error-rate 150", "--max-error-rate: expected a percentage", NULL},
        {"--stages 1s:10 -d 5", "no --duration or --requests with them", NULL},
        {"--stages 1s:10 --concurrency-stages 1s:2", "give one of them", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[2048], arg[1024];
        snprintf(arg, sizeof arg, "%s", cases[i].args);
        if (!strcmp(arg, "--workload BAD")) snprintf(arg, sizeof arg, "--workload '%s'", bad_json);
        if (!strcmp(arg, "--workload KEYS")) snprintf(arg, sizeof arg, "--workload '%s'", keys);
        if (!strcmp(arg, "--workload TMPL")) snprintf(arg, sizeof arg, "--workload '%s'", tmpl);
        bool own_uri = strstr(arg, "--uri") != NULL;
        snprintf(a, sizeof a, "%s %s -d 1", own_uri ? "" : "--uri mongodb://127.0.0.1:1", arg);
        int rc = tf_mqload(NULL, a, g_out, sizeof g_out);
        ASSERT_MSG(rc == 1, "'%s' exited %d: %s", a, rc, g_out);
        ASSERT_STR_CONTAINS(g_out, cases[i].want);
        ASSERT_MSG(!strstr(g_out, "cannot use the server"), "'%s' reached the server before failing: %s", a, g_out);
        if (cases[i].not_want) ASSERT_MSG(!strstr(g_out, cases[i].not_want), "'%s' printed '%s': %s", a, cases[i].not_want, g_out);
    }
    /* Real operators near a generator's name stay operators; a YCSB preset without --seed warns. */
    char a[2048];
    snprintf(a, sizeof a, "--uri mongodb://127.0.0.1:1 --workload '%s' -d 1", ok_ops);
    ASSERT_EQ(tf_mqload(NULL, a, g_out, sizeof g_out), 1);
    ASSERT_STR_CONTAINS(g_out, "cannot use the server");
    ASSERT_EQ(tf_mqload(NULL, "--uri mongodb://127.0.0.1:1 --preset ycsb-b -d 1", g_out, sizeof g_out), 1);
    ASSERT_STR_CONTAINS(g_out, "warning: --preset ycsb-b reads and updates keys 0..9999, which only --seed inserts");
}

/* --stages ramps the arrival rate; each stage is counted on its own. */
TEST("/mqload/honest/stages", mqload_honest_stages)
{
    tf_mqload_need();
    chaos_stub_t s;
    chaos_stub_start(&s, 0, NULL);
    char args[2048], json[600];
    snprintf(json, sizeof json, "%s/stages.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --op find --stages 1s:200,1s:400,0.5s:0 "
             "--json '%s' --progress", s.port, json);
    int rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "stages (arrival rate)");
    ASSERT_STR_CONTAINS(g_out, "/3 -> "); /* the live line names the stage and its target */
    ASSERT_STR_CONTAINS(g_out, "  stage     duration");
    ASSERT_STR_CONTAINS(g_out, "\n  3             0.5s            400->0");
    mqload_result_t r;
    tf_mqload_result(json, &r);
    ASSERT_EQ(r.n_stages, 3);
    ASSERT_STR_EQ(r.stage_kind, "rate");
    /* 0 -> 200/s over 1 s: 100 operations; 200 -> 400 over 1 s: 300; 400 -> 0 over 0.5 s: 100. */
    ASSERT_EQ(r.stages[0].scheduled, 100);
    ASSERT_EQ(r.stages[1].scheduled, 300);
    ASSERT_EQ(r.stages[2].scheduled, 100);
    ASSERT_DBL_NEAR(r.stages[1].from, 200, 1e-9);
    ASSERT_DBL_NEAR(r.stages[1].to, 400, 1e-9);
    ASSERT_EQ(r.scheduled, 500);
    for (size_t i = 0; i < 3; i++) ASSERT_EQ(r.stages[i].ok + r.stages[i].errors, r.stages[i].submitted);
    mqload_result_free(&r);
    /* The closed-loop form ramps the operations in flight. */
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --op find --concurrency-stages "
             "0.5s:4,0.5s:8 --json '%s' --no-progress", s.port, json);
    rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    chaos_stub_stop(&s);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "stages (concurrency)");
    tf_mqload_result(json, &r);
    ASSERT_EQ(r.n_stages, 2);
    ASSERT_STR_EQ(r.stage_kind, "concurrency");
    ASSERT_GT(r.stages[0].ok, 0);
    ASSERT_GT(r.stages[1].ok, 0);
    ASSERT_EQ(r.stages[0].ok + r.stages[1].ok + r.stages[0].errors + r.stages[1].errors, r.completed);
    mqload_result_free(&r);
}

/* The live line: errors per second beside operations per second, the time left, the warmup. */
TEST("/mqload/honest/live_line", mqload_honest_live_line)
{
    tf_mqload_need();
    chaos_stub_t s;
    chaos_stub_start(&s, 0, NULL);
    char args[2048];
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' -R 200 -d 2 --warmup 1.5 --progress",
             s.port);
    int rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    chaos_stub_stop(&s);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, g_out);
    ASSERT_STR_CONTAINS(g_out, "[warmup, 0.");  /* 0.5 s of warmup left at the first line, give or take a tick */
    ASSERT_STR_CONTAINS(g_out, " err/s ");
    ASSERT_STR_CONTAINS(g_out, "s left]");
}

/* The schedule's arithmetic: intended times and counts agree, ramps hold the right number. */
TEST("/mqload/sched/times_and_counts", mqload_sched_times_and_counts)
{
    mqload_config_t cfg;
    mqload_config_init(&cfg);
    cfg.rate = 1000;
    mqload_sched_t s;
    mqload_sched_init_rate(&s, &cfg, 4, 0); /* 250/s per share */
    ASSERT_EQ(mqload_sched_time(&s, 0), 0);
    ASSERT_EQ(mqload_sched_time(&s, 250), 1000000000);
    ASSERT_EQ(mqload_sched_count_before(&s, 1000000000), 250);
    ASSERT_EQ(mqload_sched_count_before(&s, 1000000001), 251);
    cfg.rate = 0;
    cfg.stages_kind = MQLOAD_STAGES_RATE;
    cfg.warmup_s = 0;
    char err[200];
    ASSERT(mqload_parse_stages("2s:1k,1s:1k,2s:0", false, cfg.stages, MQLOAD_MAX_STAGE_ARGS, &cfg.n_stages, err, sizeof err));
    mqload_sched_init_rate(&s, &cfg, 1, 0);
    /* 0 -> 1000 over 2 s: 1000 ops; then 1000 flat: 1000; then 1000 -> 0 over 2 s: 1000. */
    ASSERT_EQ(mqload_sched_count_before(&s, 2000000000), 1000);
    ASSERT_EQ(mqload_sched_count_before(&s, 3000000000), 2000);
    ASSERT_EQ(mqload_sched_count_before(&s, 5000000000), 3000);
    ASSERT_EQ(mqload_sched_time(&s, 3000), INT64_MAX);
    /* Half the ramp's operations are due at 1/sqrt(2) of its time. */
    int64_t t500 = mqload_sched_time(&s, 500);
    ASSERT_MSG(llabs(t500 - (int64_t) (2e9 / sqrt(2))) < 1000, "op 500 due at %lld ns", (long long) t500);
    int64_t prev = -1;
    for (uint64_t k = 0; k < 3000; k++) {
        int64_t t = mqload_sched_time(&s, k);
        ASSERT_GE(t, prev);
        ASSERT_GE(mqload_sched_count_before(&s, t + 1), k + 1);
        ASSERT_LE(mqload_sched_count_before(&s, t), k);
        prev = t;
    }
    ASSERT_EQ(mqload_sched_stage_at(&s, 2500000000), 1);
    mqload_config_free(&cfg);
}

/* The URI's host list, strictly (libmongoc 1.23 alone takes "h:1:2" as port 1 and "h:12a" as 12). */
TEST("/mqload/precheck/uri_hosts", mqload_precheck_uri_hosts)
{
    static const char *const good[] = {
        "mongodb://127.0.0.1", "mongodb://127.0.0.1:27017/", "mongodb://h1:1,h2:65535,h3/?replicaSet=rs",
        "mongodb://u:p%40ss@[::1]:27017/db?tls=false", "mongodb://[fe80::1%25eth0]", "mongodb://%2Ftmp%2Fm.sock",
        "mongodb+srv://cluster0.example.com/?appName=x", "mongodb://user@host:1?x=1",
    };
    static const char *const bad[] = {
        "mongodb://127.0.0.1:28111:99", "mongodb://[::1", "mongodb://h:12a", "mongodb://h:0", "mongodb://h:65536",
        "mongodb://h1,,h2", "mongodb://", "mongodb://:27017", "mongodb://[::1]x", "mongodb://[]",
        "mongodb+srv://a.example.com:27017", "mongodb+srv://a.example.com,b.example.com", "http://h",
    };
    char err[300];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ASSERT_MSG(mqload_uri_check(good[i], err, sizeof err), "%s refused: %s", good[i], err);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ASSERT_MSG(!mqload_uri_check(bad[i], err, sizeof err), "%s accepted", bad[i]);
        ASSERT_MSG(!strncmp(err, "--uri: ", 7), "%s: message '%s'", bad[i], err);
    }
    /* The password never shows: the host list is all a message quotes. */
    ASSERT(!mqload_uri_check("mongodb://u:s3cret@h:1:2", err, sizeof err));
    ASSERT_MSG(!strstr(err, "s3cret"), "%s", err);
    ASSERT(!mqload_uri_check("mongodb://u:s3/cret@h:1:2", err, sizeof err));
    ASSERT_MSG(!strstr(err, "s3") && !strstr(err, "cret"), "%s", err);
}

TEST("/mqload/precheck/output_paths", mqload_precheck_output_paths)
{
    char err[600], path[600];
    ASSERT(mqload_output_check("--json", "-", err, sizeof err));
    ASSERT(mqload_output_check("--json", NULL, err, sizeof err));
    snprintf(path, sizeof path, "%s/new-result.json", tf_tmpdir());
    ASSERT_MSG(mqload_output_check("--json", path, err, sizeof err), "%s", err);
    ASSERT_MSG(access(path, F_OK) != 0, "the check created %s", path);
    ASSERT(!mqload_output_check("--json", "/nonexistent/x.json", err, sizeof err));
    ASSERT_STR_CONTAINS(err, "--json /nonexistent/x.json: the directory /nonexistent does not exist");
    ASSERT(!mqload_output_check("--html", tf_tmpdir(), err, sizeof err));
    ASSERT_STR_CONTAINS(err, "is a directory");
    ASSERT(mqload_output_check("--json", "relative.json", err, sizeof err)); /* the working directory */
}

/* A generator's name misspelled is refused with the right one; real operators near those names pass. */
TEST("/mqload/precheck/template_typos", mqload_precheck_template_typos)
{
    static const struct { const char *json, *suggest; } typos[] = {
        {"{\"n\": {\"$randint\": [1, 5]}}", "$randInt"},
        {"{\"n\": {\"$RandString\": 5}}", "$randString"},
        {"{\"n\": {\"$randDoubel\": [0, 1]}}", "$randDouble"},
        {"{\"n\": {\"$chose\": [1, 2]}}", "$choose"},
        {"{\"n\": {\"$Now\": {}}}", "$now"},
        {"{\"a\": [{\"b\": {\"$KEY\": {}}}]}", "$key"},
    };
    static const char *const fine[] = {
        "{\"n\": {\"$eq\": 5}}", "{\"$set\": {\"n\": 1}}", "{\"n\": {\"$rand\": {}}}", "{\"n\": {\"$in\": [1, 2]}}",
        "{\"n\": {\"$gte\": {\"$randInt\": [1, 9]}}}", "{\"n\": {\"$range\": [0, 5]}}", "{\"n\": {\"$exists\": true}}",
    };
    char err[512];
    for (size_t i = 0; i < sizeof typos / sizeof typos[0]; i++) {
        bson_error_t be;
        bson_t *doc = bson_new_from_json((const uint8_t *) typos[i].json, -1, &be);
        ASSERT_NOT_NULL(doc);
        err[0] = 0;
        mqload_template_t *t = mqload_template_compile(doc, false, err, sizeof err);
        bson_destroy(doc);
        ASSERT_MSG(t == NULL, "%s compiled", typos[i].json);
        ASSERT_STR_CONTAINS(err, "unknown template operator");
        char want[64];
        snprintf(want, sizeof want, "did you mean %s?", typos[i].suggest);
        ASSERT_STR_CONTAINS(err, want);
    }
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        bson_error_t be;
        bson_t *doc = bson_new_from_json((const uint8_t *) fine[i], -1, &be);
        ASSERT_NOT_NULL(doc);
        mqload_template_t *t = mqload_template_compile(doc, false, err, sizeof err);
        bson_destroy(doc);
        ASSERT_MSG(t != NULL, "%s refused: %s", fine[i], err);
        mqload_template_destroy(t);
    }
}

/* An operation in flight keeps no documents of its own (a slot of 24 bytes; docs/internals/performance.md):
 * it is drawn into its thread's one set of buffers and the library copies it. A read-modify-write
 * keeps its key and filter until its write: every one of hundreds in flight over two threads, with
 * a filter and an update past libbson's 120-byte inline buffer, must send its write (two commands
 * per completed operation, nothing failed, every submitted operation completed once). */
TEST("/mqload/honest/rmw_slots", mqload_honest_rmw_slots)
{
    tf_mqload_need();
    char wl[600], json[600], args[2048];
    snprintf(wl, sizeof wl, "%s/rmw.json", tf_tmpdir());
    snprintf(json, sizeof json, "%s/rmw-result.json", tf_tmpdir());
    FILE *f = fopen(wl, "w");
    ASSERT_NOT_NULL(f);
    fprintf(f, "{\"name\": \"rmw\", \"keys\": 1000, \"operations\": [{\"op\": \"rmw\", "
               "\"filter\": {\"_id\": {\"$key\": {}}, \"tag\": \"%0150d\"}, "
               "\"update\": {\"$set\": {\"s\": {\"$randString\": 200}, \"n\": {\"$randInt\": [0, 9]}}}}]}",
            0);
    fclose(f);
    chaos_stub_t s;
    const char *const extra[] = {"--delay-us", "2000", NULL};
    chaos_stub_start(&s, 0, extra);
    snprintf(args, sizeof args, "--uri 'mongodb://127.0.0.1:%d/?directConnection=true' --workload '%s' -t 2 -c 400 "
             "-C 50 -d 1 --warmup 0 --json '%s' --no-progress", s.port, wl, json);
    int rc = tf_mqload(NULL, args, g_out, sizeof g_out);
    chaos_stub_stop(&s);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, g_out);
    mqload_result_t r;
    tf_mqload_result(json, &r);
    long long commands = chaos_stub_stat(&s, "commands"), conns = chaos_stub_stat(&s, "connections_accepted");
    tf_note("%llu read-modify-writes, %lld commands over %lld connections", (unsigned long long) r.completed, commands,
            conns);
    ASSERT_GT(r.completed, 400);
    ASSERT_EQ(r.submitted, r.completed);
    ASSERT_EQ(r.errors, 0);
    /* Each completed one sent its read and its write; besides them only the handshakes, the
     * monitors' hellos and endSessions (a few per connection). */
    ASSERT_GE(commands, (long long) (2 * r.completed));
    ASSERT_LE(commands, (long long) (2 * r.completed) + 4 * conns + 20);
    mqload_result_free(&r);
}
