/* mqload's command line: every flag, long and short, "=value" and separate, and the errors. */
#include <math.h>
#include <stdlib.h>

#include "../cli/args.h"
#include "../cli/workload.h"
#include "tf.h"

typedef struct {
    mqload_config_t cfg;
    char err[512];
    char out[4096];
    mqload_args_rc_t rc;
} parsed_t;

/* argv from a NULL-terminated list; "mqload" is prepended. */
static void parse(parsed_t *p, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *) "mqload";
    for (size_t i = 0; args[i]; i++) argv[argc++] = (char *) args[i];
    FILE *out = fmemopen(p->out, sizeof p->out, "w");
    unsetenv("MQLOAD_URI");
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("MQLOAD_WORKERS");
    mqload_config_init(&p->cfg);
    p->rc = mqload_args_parse(&p->cfg, argc, argv, out, p->err, sizeof p->err);
    fclose(out);
}

#define PARSE(p, ...) parse(p, (const char *const[]) {__VA_ARGS__, NULL})

TEST("/mqload/args/defaults", mqload_args_defaults)
{
    parsed_t p;
    parse(&p, (const char *const[]) {NULL});
    ASSERT_EQ(p.rc, MQLOAD_ARGS_RUN);
    ASSERT_STR_EQ(p.cfg.uri, "mongodb://127.0.0.1:27017");
    ASSERT_STR_EQ(p.cfg.db, "mqload");
    ASSERT_STR_EQ(p.cfg.collection, "bench");
    ASSERT_DBL_NEAR(p.cfg.duration_s, 10, 0);
    ASSERT_DBL_NEAR(p.cfg.warmup_s, 1, 0);
    ASSERT_EQ(p.cfg.concurrency, 16);
    ASSERT_EQ(p.cfg.threads, 1);
    ASSERT_EQ(p.cfg.engine, MQLOAD_ENGINE_MQC);
    ASSERT_EQ(p.cfg.progress, -1);
    mqload_config_free(&p.cfg);
}

TEST("/mqload/args/every_flag", mqload_args_every_flag)
{
    parsed_t p;
    PARSE(&p, "--uri", "mongodb://h:1/?x=1", "--db=d1", "--collection", "c1", "-d", "2m", "--warmup=500ms", "-c", "64",
          "-R", "5k", "-t4", "-C", "8", "--mix", "find=90,update=10", "--seed", "1000", "--seed-batch=500",
          "--key-dist", "zipfian", "--seed-rng", "0x10", "--json", "-", "--html", "r.html", "--threshold", "p99<5ms",
          "--engine=mongoc", "-q", "--progress", "--timeout", "250ms", "--grace", "2s", "--worker-index", "1",
          "--workers", "3");
    ASSERT_MSG(p.rc == MQLOAD_ARGS_RUN, "rc %d: %s", p.rc, p.err);
    ASSERT_STR_EQ(p.cfg.uri, "mongodb://h:1/?x=1");
    ASSERT_STR_EQ(p.cfg.db, "d1");
    ASSERT_STR_EQ(p.cfg.collection, "c1");
    ASSERT_DBL_NEAR(p.cfg.duration_s, 120, 1e-9);
    ASSERT_DBL_NEAR(p.cfg.warmup_s, 0.5, 1e-9);
    ASSERT_EQ(p.cfg.concurrency, 21); /* worker 1 of 3: 64 = 22 + 21 + 21 */
    ASSERT_EQ(p.cfg.concurrency_total, 64);
    ASSERT_DBL_NEAR(p.cfg.rate, 5000, 0);
    ASSERT_EQ(p.cfg.threads, 4);
    ASSERT_EQ(p.cfg.connections, 8);
    ASSERT_STR_EQ(p.cfg.mix, "find=90,update=10");
    ASSERT_EQ(p.cfg.seed_docs, 1000);
    ASSERT_EQ(p.cfg.keys, 1000); /* the key space follows --seed */
    ASSERT_EQ(p.cfg.seed_batch, 500);
    ASSERT_EQ(p.cfg.key_dist, MQLOAD_KEYS_ZIPFIAN);
    ASSERT_EQ(p.cfg.rng_seed, 16);
    ASSERT_STR_EQ(p.cfg.json_out, "-");
    ASSERT_STR_EQ(p.cfg.html_out, "r.html");
    ASSERT_STR_EQ(p.cfg.threshold, "p99<5ms");
    ASSERT_EQ(p.cfg.engine, MQLOAD_ENGINE_MONGOC);
    ASSERT(p.cfg.quiet);
    ASSERT_EQ(p.cfg.progress, 1);
    ASSERT_DBL_NEAR(p.cfg.timeout_s, 0.25, 1e-9);
    ASSERT_DBL_NEAR(p.cfg.grace_s, 2, 0);
    ASSERT_EQ(p.cfg.worker_index, 1);
    ASSERT_EQ(p.cfg.workers, 3);
    mqload_config_free(&p.cfg);

    PARSE(&p, "-n", "1000", "--op", "insert", "--keys=50", "--no-progress", "--requests=2000");
    ASSERT_EQ(p.rc, MQLOAD_ARGS_RUN);
    ASSERT_EQ(p.cfg.requests, 2000);
    ASSERT_STR_EQ(p.cfg.op, "insert");
    ASSERT_EQ(p.cfg.keys, 50);
    ASSERT_EQ(p.cfg.progress, 0);
    mqload_config_free(&p.cfg);

    PARSE(&p, "--preset", "ycsb-e", "--concurrency=3", "--threads", "3", "--duration", "10", "--rate=250");
    ASSERT_EQ(p.rc, MQLOAD_ARGS_RUN);
    ASSERT_STR_EQ(p.cfg.preset, "ycsb-e");
    ASSERT_DBL_NEAR(p.cfg.duration_s, 10, 0);
    mqload_config_free(&p.cfg);

    PARSE(&p, "--workload", "/x.json");
    ASSERT_STR_EQ(p.cfg.workload_file, "/x.json");
    mqload_config_free(&p.cfg);
}

TEST("/mqload/args/env_uri", mqload_args_env_uri)
{
    mqload_config_t cfg;
    char err[256];
    char *argv[] = {(char *) "mqload"};
    setenv("MQLOAD_URI", "mongodb://envhost:2/", 1);
    mqload_config_init(&cfg);
    unsetenv("MQLOAD_URI");
    ASSERT_EQ(mqload_args_parse(&cfg, 1, argv, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    ASSERT_STR_EQ(cfg.uri, "mongodb://envhost:2/");
    mqload_config_free(&cfg);
}

TEST("/mqload/args/help_version", mqload_args_help_version)
{
    parsed_t p;
    PARSE(&p, "--help");
    ASSERT_EQ(p.rc, MQLOAD_ARGS_EXIT);
    ASSERT_STR_CONTAINS(p.out, "--concurrency");
    ASSERT_STR_CONTAINS(p.out, "--threshold");
    mqload_config_free(&p.cfg);
    PARSE(&p, "-V");
    ASSERT_EQ(p.rc, MQLOAD_ARGS_EXIT);
    ASSERT_STR_CONTAINS(p.out, "mqload 0.");
    mqload_config_free(&p.cfg);
}

TEST("/mqload/args/errors", mqload_args_errors)
{
    static const struct {
        const char *args[4];
        const char *msg;
    } cases[] = {
        {{"--bogus"}, "unknown option '--bogus'"},
        {{"-z"}, "unknown option '-z'"},
        {{"stray"}, "unexpected argument 'stray'"},
        {{"-c"}, "needs a value"},
        {{"-c", "0"}, "--concurrency"},
        {{"-c", "abc"}, "--concurrency"},
        {{"-d", "10x"}, "--duration"},
        {{"-d", "-1"}, "--duration"},
        {{"-d", "0"}, "--duration"},
        {{"-R", "0"}, "--rate"},
        {{"-t", "0"}, "--threads"},
        {{"-t", "32", "-c", "8"}, "exceeds --concurrency"},
        {{"--engine", "java"}, "--engine"},
        {{"--key-dist", "gauss"}, "--key-dist"},
        {{"--uri", "http://x"}, "--uri"},
        {{"--op", "find", "--mix", "find=1"}, "give one of them"},
        {{"--quiet=1"}, "takes no value"},
        {{"-n", "1.5"}, "--requests"},
        {{"--db", "a.b"}, "--db"},
        {{"--seed-rng", "-3"}, "--seed-rng"},
        {{"--workers", "2", "--worker-index", "2"}, "--worker-index"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        parsed_t p;
        const char *args[5] = {cases[i].args[0], cases[i].args[1], cases[i].args[2], cases[i].args[3], NULL};
        parse(&p, args);
        ASSERT_MSG(p.rc == MQLOAD_ARGS_ERROR, "case %zu (%s) accepted", i, cases[i].args[0]);
        ASSERT_STR_CONTAINS(p.err, cases[i].msg);
        mqload_config_free(&p.cfg);
    }
}

TEST("/mqload/args/durations", mqload_args_durations)
{
    double d;
    ASSERT(mqload_parse_duration("10", &d) && d == 10);
    ASSERT(mqload_parse_duration("10s", &d) && d == 10);
    ASSERT(mqload_parse_duration("500ms", &d) && fabs(d - 0.5) < 1e-12);
    ASSERT(mqload_parse_duration("2m", &d) && d == 120);
    ASSERT(mqload_parse_duration("1h", &d) && d == 3600);
    ASSERT(mqload_parse_duration("250us", &d) && fabs(d - 250e-6) < 1e-15);
    ASSERT(mqload_parse_duration("1.5s", &d) && d == 1.5);
    ASSERT(!mqload_parse_duration("", &d));
    ASSERT(!mqload_parse_duration("s", &d));
    ASSERT(!mqload_parse_duration("5 s", &d));
    ASSERT(!mqload_parse_duration("5d", &d));
    ASSERT(mqload_parse_number("1.5M", &d) && d == 1.5e6);
    ASSERT(!mqload_parse_number("nan", &d));
}

TEST("/mqload/args/workload_sources", mqload_args_workload_sources)
{
    parsed_t p;
    mqload_workload_t wl, wl2;
    char err[512];
    PARSE(&p, "--mix", "find=90,update=10");
    ASSERT(mqload_workload_load(&wl, &p.cfg, err, sizeof err));
    ASSERT_EQ(wl.n_ops, 2);
    ASSERT_STR_EQ(wl.ops[1].name, "update");
    mqload_config_free(&p.cfg);
    /* Same shares, same workload id; another mix, another id. */
    PARSE(&p, "--mix", "find=9,update=1");
    ASSERT(mqload_workload_load(&wl2, &p.cfg, err, sizeof err));
    ASSERT_STR_EQ(wl.id, wl2.id);
    mqload_workload_free(&wl2);
    mqload_config_free(&p.cfg);
    PARSE(&p, "--mix", "find=50,update=50");
    ASSERT(mqload_workload_load(&wl2, &p.cfg, err, sizeof err));
    ASSERT(strcmp(wl.id, wl2.id) != 0);
    mqload_workload_free(&wl2);
    mqload_workload_free(&wl);
    mqload_config_free(&p.cfg);

    static const char *const bad[][2] = {
        {"--mix", "find=x"}, {"--mix", "fly=1"}, {"--mix", "find=0"}, {"--op", "drop"}, {"--preset", "ycsb-z"},
        {"--workload", "/nonexistent/w.json"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PARSE(&p, bad[i][0], bad[i][1]);
        ASSERT_EQ(p.rc, MQLOAD_ARGS_RUN);
        ASSERT_MSG(!mqload_workload_load(&wl, &p.cfg, err, sizeof err), "accepted %s %s", bad[i][0], bad[i][1]);
        ASSERT(err[0]);
        mqload_config_free(&p.cfg);
    }
    static const char *const presets[] = {"ycsb-a", "ycsb-b", "ycsb-c", "ycsb-d", "ycsb-e", "ycsb-f"};
    static const size_t nops[] = {2, 2, 1, 2, 2, 2};
    for (size_t i = 0; i < 6; i++) {
        PARSE(&p, "--preset", presets[i]);
        ASSERT(mqload_workload_load(&wl, &p.cfg, err, sizeof err));
        ASSERT_EQ(wl.n_ops, nops[i]);
        ASSERT_EQ(wl.key_dist, i == 3 ? MQLOAD_KEYS_LATEST : MQLOAD_KEYS_ZIPFIAN);
        mqload_workload_free(&wl);
        mqload_config_free(&p.cfg);
    }
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tf_tmpdir(), name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

TEST("/mqload/args/workload_file", mqload_args_workload_file)
{
    parsed_t p;
    mqload_workload_t wl;
    char err[512];
    const char *path = write_tmp("w.json",
        "{\"name\": \"orders\", \"keys\": 500, \"key_dist\": \"zipfian\",\n"
        " \"document\": {\"_id\": {\"$key\": {}}, \"at\": {\"$date\": \"2024-01-01T00:00:00Z\"}, \"qty\": {\"$randInt\": [1, 9]}},\n"
        " \"operations\": [\n"
        "  {\"op\": \"find\", \"weight\": 8, \"filter\": {\"_id\": {\"$key\": {}}}},\n"
        "  {\"op\": \"aggregate\", \"weight\": 1, \"pipeline\": [{\"$match\": {\"qty\": {\"$gt\": {\"$randInt\": [1, 5]}}}}, {\"$count\": \"n\"}]},\n"
        "  {\"op\": \"command\", \"name\": \"ping\", \"weight\": 1, \"command\": {\"ping\": 1}, \"db\": \"admin\"}\n"
        " ]}");
    PARSE(&p, "--workload", path);
    ASSERT_MSG(mqload_workload_load(&wl, &p.cfg, err, sizeof err), "%s", err);
    ASSERT_STR_EQ(wl.name, "orders");
    ASSERT_EQ(wl.keys, 500);
    ASSERT_EQ(wl.n_ops, 3);
    ASSERT_STR_EQ(wl.ops[2].name, "ping");
    mqload_workload_free(&wl);
    mqload_config_free(&p.cfg);

    static const char *const bad[] = {
        "{\"operations\": [ {\"op\": \"find\" ",                              /* invalid JSON */
        "{\"operations\": []}",                                                /* empty */
        "{\"operations\": [{\"op\": \"fly\"}]}",                               /* unknown op */
        "{\"operations\": [{\"op\": \"find\", \"filter\": {\"a\": {\"$randInt\": [5, 1]}}}]}", /* bad template */
        "{\"operations\": [{\"op\": \"find\", \"colour\": 1}]}",               /* unknown field */
        "{\"operations\": [{\"op\": \"find\"}, {\"op\": \"find\"}]}",          /* duplicate names */
        "{\"operations\": [{\"op\": \"find\"}], \"extra\": 1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = write_tmp("bad.json", bad[i]);
        PARSE(&p, "--workload", path);
        ASSERT_MSG(!mqload_workload_load(&wl, &p.cfg, err, sizeof err), "accepted bad workload %zu", i);
        ASSERT_STR_CONTAINS(err, "--workload");
        mqload_config_free(&p.cfg);
    }
}
