/* mqload's histogram: accuracy against exact percentiles, exact merge, JSON round trip. */
#include <math.h>
#include <stdlib.h>

#include "../cli/hist.h"
#include "../cli/merge.h"
#include "../cli/report.h"
#include "../cli/rng.h"
#include "tf.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted v. */
static uint64_t exact_q(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t) ceil(q * (double) n);
    if (rank < 1) rank = 1;
    return v[rank - 1];
}

TEST("/mqload/hist/index_layout", mqload_hist_index_layout)
{
    /* Buckets tile the value range without gaps, and each is within 1/128 of its lower bound. */
    for (uint32_t i = 0; i + 1 < MQLOAD_HIST_BUCKETS; i++) {
        ASSERT_EQ(mqload_hist_bucket_low(i) + mqload_hist_bucket_width(i), mqload_hist_bucket_low(i + 1));
        ASSERT_EQ(mqload_hist_index(mqload_hist_bucket_low(i)), i);
        ASSERT_EQ(mqload_hist_index(mqload_hist_bucket_low(i + 1) - 1), i);
        if (i >= MQLOAD_HIST_SUB_COUNT) ASSERT_LE(mqload_hist_bucket_width(i) * 128, mqload_hist_bucket_low(i));
    }
    /* One hour fits below the top bucket. */
    ASSERT_LT(mqload_hist_index(3600ull * 1000000000ull), MQLOAD_HIST_BUCKETS - 1);
    ASSERT_EQ(mqload_hist_index(UINT64_MAX), MQLOAD_HIST_BUCKETS - 1);
}

static void check_accuracy(uint64_t *v, size_t n)
{
    mqload_hist_t *h = mqload_hist_new();
    for (size_t i = 0; i < n; i++) mqload_hist_record(h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    static const double qs[] = {0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        double want = (double) exact_q(v, n, qs[k]), got = mqload_hist_quantile(h, qs[k]);
        double rel = fabs(got - want) / want;
        ASSERT_MSG(rel <= 0.01, "q=%g: histogram %g vs exact %g (relative error %g)", qs[k], got, want, rel);
    }
    ASSERT_EQ(mqload_hist_quantile(h, 0), v[0]);
    ASSERT_EQ(mqload_hist_quantile(h, 1), v[n - 1]);
    ASSERT_EQ(h->total, n);
    mqload_hist_destroy(h);
}

TEST("/mqload/hist/accuracy_log_uniform", mqload_hist_accuracy_log_uniform)
{
    /* Log-uniform from 1 us to 1 hour: every scale the histogram promises. */
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 42, 1);
    for (size_t i = 0; i < n; i++) v[i] = (uint64_t) (1e3 * pow(10, mqload_rng_double(&rng) * log10(3.6e9)));
    check_accuracy(v, n);
    free(v);
}

TEST("/mqload/hist/accuracy_narrow", mqload_hist_accuracy_narrow)
{
    /* A tight cluster (the usual latency shape) and exact small values. */
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof *v);
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 7, 2);
    for (size_t i = 0; i < n; i++) v[i] = 250000 + mqload_rng_below(&rng, 20000) + (i % 1000 == 0 ? 5000000 : 0);
    check_accuracy(v, n);
    for (size_t i = 0; i < n; i++) v[i] = 1 + i % 100;
    check_accuracy(v, n);
    free(v);
}

TEST("/mqload/hist/merge_exact", mqload_hist_merge_exact)
{
    mqload_hist_t *a = mqload_hist_new(), *b = mqload_hist_new(), *all = mqload_hist_new(), *m = mqload_hist_new();
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 3, 3);
    for (int i = 0; i < 30000; i++) {
        uint64_t x = (uint64_t) (1e3 * pow(10, mqload_rng_double(&rng) * 6));
        mqload_hist_record(i % 3 ? a : b, x);
        mqload_hist_record(all, x);
    }
    mqload_hist_merge(m, a);
    mqload_hist_merge(m, b);
    ASSERT_EQ(m->total, all->total);
    ASSERT_EQ(m->min_ns, all->min_ns);
    ASSERT_EQ(m->max_ns, all->max_ns);
    ASSERT(memcmp(m->counts, all->counts, sizeof m->counts) == 0);
    /* The sparse form merges exactly too. */
    mqload_sparse_t sa, sb;
    mqload_sparse_init(&sa);
    mqload_sparse_init(&sb);
    mqload_sparse_from_hist(&sa, a);
    mqload_sparse_from_hist(&sb, b);
    mqload_sparse_merge(&sa, &sb);
    mqload_hist_t *fromsp = mqload_hist_new();
    mqload_hist_add_sparse(fromsp, &sa);
    ASSERT(memcmp(fromsp->counts, all->counts, sizeof all->counts) == 0);
    ASSERT_EQ(sa.total, all->total);
    for (double q = 0.05; q < 1; q += 0.05) ASSERT_DBL_NEAR(mqload_hist_quantile(fromsp, q), mqload_hist_quantile(all, q), 0);
    mqload_sparse_free(&sa);
    mqload_sparse_free(&sb);
    mqload_hist_destroy(a);
    mqload_hist_destroy(b);
    mqload_hist_destroy(all);
    mqload_hist_destroy(m);
    mqload_hist_destroy(fromsp);
}

static void fill_result(mqload_result_t *r, uint64_t seed, double start)
{
    mqload_rng_t rng;
    mqload_rng_seed(&rng, seed, 9);
    snprintf(r->tool_version, sizeof r->tool_version, "0.1.0");
    snprintf(r->engine, sizeof r->engine, "mqc");
    snprintf(r->workload_id, sizeof r->workload_id, "00112233aabbccdd");
    snprintf(r->workload_name, sizeof r->workload_name, "op:find");
    snprintf(r->uri_redacted, sizeof r->uri_redacted, "mongodb://127.0.0.1:27017");
    BSON_APPEND_UTF8(&r->config, "engine", "mqc");
    r->start_unix = start;
    r->duration_s = 3;
    int op = mqload_result_op(r, "find", "find");
    for (int i = 0; i < 5000; i++) {
        uint64_t x = 1000 + mqload_rng_below(&rng, 1000000);
        bool err = i % 100 == 0;
        mqload_hist_record(r->hist, x);
        mqload_hist_record(r->ops[op].hist, x);
        mqload_second_t *s = mqload_result_second(r, (size_t) (i % 3));
        mqload_sparse_t one;
        mqload_sparse_init(&one);
        mqload_sparse_push(&one, mqload_hist_index(x), 1);
        one.total = 1, one.min_ns = one.max_ns = x, one.sum_ns = (double) x;
        mqload_sparse_merge(&s->hist, &one);
        mqload_sparse_free(&one);
        s->ops++;
        r->submitted++, r->completed++;
        if (err) s->errors++, r->errors++, r->ops[op].errors++, mqload_result_add_error(r, "timeout:operation", 1);
        else s->ok++, r->ok++, r->ops[op].ok++;
    }
    r->conns_opened = 4;
}

TEST("/mqload/hist/json_round_trip", mqload_hist_json_round_trip)
{
    mqload_result_t a, back;
    mqload_result_init(&a);
    fill_result(&a, 1, 1700000000.25);
    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    mqload_report_json(&a, &sb);
    char err[512];
    ASSERT_MSG(mqload_result_from_json(&back, sb.s, sb.len, err, sizeof err), "parse: %s", err);
    ASSERT(memcmp(back.hist->counts, a.hist->counts, sizeof a.hist->counts) == 0);
    ASSERT_EQ(back.hist->total, a.hist->total);
    ASSERT_EQ(back.hist->min_ns, a.hist->min_ns);
    ASSERT_EQ(back.hist->max_ns, a.hist->max_ns);
    ASSERT_DBL_NEAR(back.hist->sum_ns, a.hist->sum_ns, 0);
    ASSERT_EQ(back.submitted, a.submitted);
    ASSERT_EQ(back.errors, a.errors);
    ASSERT_EQ(back.n_ops, 1);
    ASSERT(memcmp(back.ops[0].hist->counts, a.ops[0].hist->counts, sizeof a.hist->counts) == 0);
    ASSERT_EQ(back.n_seconds, 3);
    ASSERT_EQ(back.timeline[1].ops, a.timeline[1].ops);
    ASSERT_EQ(back.timeline[2].hist.n, a.timeline[2].hist.n);
    ASSERT_EQ(back.n_errs, 1);
    ASSERT_EQ(back.errs[0].count, 50);
    ASSERT_STR_EQ(back.workload_id, a.workload_id);
    ASSERT_DBL_NEAR(back.start_unix, a.start_unix, 1e-6);
    mqload_sb_free(&sb);
    mqload_result_free(&a);
    mqload_result_free(&back);
}

TEST("/mqload/merge/files_exact", mqload_merge_files_exact)
{
    mqload_result_t a, b, m, direct;
    mqload_result_init(&a);
    mqload_result_init(&b);
    fill_result(&a, 1, 1700000000.0);
    fill_result(&b, 2, 1700000001.0); /* one second later: its second 0 is the merged second 1 */
    const char *dir = tf_tmpdir();
    char pa[512], pb[512], pc[512];
    snprintf(pa, sizeof pa, "%s/a.json", dir);
    snprintf(pb, sizeof pb, "%s/b.json", dir);
    snprintf(pc, sizeof pc, "%s/c.json", dir);
    mqload_strbuf_t sb;
    char err[1024];
    mqload_sb_init(&sb);
    mqload_report_json(&a, &sb);
    ASSERT(mqload_write_file(pa, sb.s, sb.len, err, sizeof err));
    sb.len = 0;
    mqload_report_json(&b, &sb);
    ASSERT(mqload_write_file(pb, sb.s, sb.len, err, sizeof err));
    const char *paths[] = {pa, pb};
    ASSERT_MSG(mqload_merge_files(&m, paths, 2, err, sizeof err), "merge: %s", err);
    mqload_result_init(&direct);
    mqload_result_merge(&direct, &a, 0);
    mqload_result_merge(&direct, &b, 1);
    ASSERT(memcmp(m.hist->counts, direct.hist->counts, sizeof m.hist->counts) == 0);
    ASSERT_EQ(m.completed, a.completed + b.completed);
    ASSERT_EQ(m.errors, a.errors + b.errors);
    ASSERT_EQ(m.n_seconds, 4);
    ASSERT_EQ(m.timeline[1].ops, a.timeline[1].ops + b.timeline[0].ops);
    ASSERT_EQ(m.timeline[3].ops, b.timeline[2].ops);
    ASSERT_EQ(m.runs, 2);
    ASSERT_EQ(m.conns_opened, 8);
    ASSERT_DBL_NEAR(m.duration_s, 4, 1e-6);
    ASSERT_EQ(m.errs[0].count, 100);
    mqload_result_free(&m);

    /* A different workload is refused, naming both ids. */
    snprintf(b.workload_id, sizeof b.workload_id, "ffffffffffffffff");
    sb.len = 0;
    mqload_report_json(&b, &sb);
    ASSERT(mqload_write_file(pc, sb.s, sb.len, err, sizeof err));
    const char *bad[] = {pa, pc};
    ASSERT(!mqload_merge_files(&m, bad, 2, err, sizeof err));
    ASSERT_STR_CONTAINS(err, "different workloads");
    ASSERT_STR_CONTAINS(err, "ffffffffffffffff");
    mqload_sb_free(&sb);
    mqload_result_free(&a);
    mqload_result_free(&b);
    mqload_result_free(&direct);
}

TEST("/mqload/merge/rejects_garbage", mqload_merge_rejects_garbage)
{
    mqload_result_t r;
    char err[512];
    const char *cases[] = {
        "not json",
        "{\"tool\":\"other\"}",
        "{\"tool\":\"mqload\",\"workload_id\":\"x\"}",
        "{\"tool\":\"mqload\",\"workload_id\":\"x\",\"histogram\":{\"scheme\":\"other\",\"buckets\":[]}}",
        "{\"tool\":\"mqload\",\"workload_id\":\"x\",\"histogram\":{\"scheme\":\"log-linear-ns-7\",\"count\":5,\"buckets\":[[1,2]]}}",
        "{\"tool\":\"mqload\",\"workload_id\":\"x\",\"histogram\":{\"scheme\":\"log-linear-ns-7\",\"count\":2,\"buckets\":[[5,1],[3,1]]}}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ASSERT_MSG(!mqload_result_from_json(&r, cases[i], strlen(cases[i]), err, sizeof err), "accepted case %zu", i);
}
