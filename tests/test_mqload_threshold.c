/* mqload's --threshold: parsing, checking, messages. */
#include "../cli/threshold.h"
#include "tf.h"

/* A result of 1000 ops: latencies 1..1000 us, 10 errors, over 2 s. */
static void make_result(mqload_result_t *r)
{
    mqload_result_init(r);
    int op = mqload_result_op(r, "find", "find");
    for (uint64_t i = 1; i <= 1000; i++) {
        mqload_hist_record(r->hist, i * 1000);
        mqload_hist_record(r->ops[op].hist, i * 1000);
    }
    r->completed = r->submitted = 1000;
    r->errors = r->ops[op].errors = 10;
    r->ok = r->ops[op].ok = 990;
    r->duration_s = 2;
}

static bool check(const mqload_result_t *r, const char *expr, mqload_strbuf_t *msg)
{
    char err[256];
    mqload_threshold_t *t = mqload_threshold_parse(expr, err, sizeof err);
    ASSERT_MSG(t != NULL, "parse %s: %s", expr, err);
    msg->len = 0;
    msg->s[0] = 0;
    bool ok = mqload_threshold_check(t, r, msg);
    mqload_threshold_free(t);
    return ok;
}

TEST("/mqload/threshold/check", mqload_threshold_check_cases)
{
    mqload_result_t r;
    mqload_strbuf_t m;
    make_result(&r);
    mqload_sb_init(&m);
    ASSERT(check(&r, "p99<1ms", &m));
    ASSERT(check(&r, "p99 < 995us, p50<=0.51ms", &m));
    ASSERT(check(&r, "p50>400us,max<=1s,min>=999ns,mean<600us", &m));
    ASSERT(check(&r, "errors<2%,errors<=10,ops>=1000,ok==990,throughput>499", &m));
    ASSERT(check(&r, "find.p99<1ms,find.errors<1.5%", &m));
    ASSERT(check(&r, "p99.9<=1.01ms,p99_99<2ms,p95<960us", &m));
    ASSERT(!check(&r, "p99<5ms,p50<100us", &m));
    ASSERT_STR_CONTAINS(m.s, "threshold p50<100us violated");
    ASSERT(strstr(m.s, "p99<5ms") == NULL);
    ASSERT(!check(&r, "errors<0.1%", &m));
    ASSERT_STR_CONTAINS(m.s, "1.0000%");
    ASSERT(!check(&r, "ops>10000", &m));
    ASSERT_STR_CONTAINS(m.s, "measured 1000");
    ASSERT(!check(&r, "throughput>5k", &m));
    ASSERT(!check(&r, "insert.p99<1s", &m));
    ASSERT_STR_CONTAINS(m.s, "no operation named 'insert'");
    mqload_result_free(&r);
    /* Nothing measured: a latency bound cannot pass. */
    mqload_result_init(&r);
    ASSERT(!check(&r, "p99<1s", &m));
    mqload_result_free(&r);
    mqload_sb_free(&m);
}

TEST("/mqload/threshold/parse_errors", mqload_threshold_parse_errors)
{
    static const char *const bad[] = {"", "p99", "p99<", "p99<5parsecs", "latency<5ms", "p99=5ms", "<5", "errors<5x",
                                      "ops>many"};
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        mqload_threshold_t *t = mqload_threshold_parse(bad[i], err, sizeof err);
        ASSERT_MSG(t == NULL, "accepted '%s'", bad[i]);
        ASSERT(err[0]);
    }
}
