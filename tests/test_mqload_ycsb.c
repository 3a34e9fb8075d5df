/* YCSB fidelity: the hotspot and exponential key generators, the record shape (fieldcount,
 * fieldlength) and the separate load and run phases against a real server. */
#include <math.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/keydist.h"
#include "../cli/merge.h"
#include "../cli/template.h"
#include "../cli/ycsb.h"
#include "tf.h"
#include "support/mqload_run.h"

#define N 10000
#define DRAWS 200000

TEST("/mqload/keydist/hotspot", mqload_keydist_hotspot)
{
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 7, 1);
    mqload_keydist_t d;
    ASSERT_EQ(mqload_keydist_parse("hotspot"), MQLOAD_KEYS_HOTSPOT);
    mqload_keydist_init(&d, MQLOAD_KEYS_HOTSPOT, N);
    uint64_t hot = 0, cold_lo = 0, cold_hi = 0;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = mqload_keydist_next(&d, &rng, N - 1);
        ASSERT_LT(k, N);
        if (k < N / 5) hot++;
        else if (k < 6 * N / 10) cold_lo++;
        else cold_hi++;
    }
    /* 80% of the draws on the lowest 20% of keys; the other 20% spread evenly over the rest. */
    double f = (double) hot / DRAWS;
    ASSERT_MSG(f > 0.79 && f < 0.81, "hot fraction %.4f", f);
    double ratio = (double) cold_lo / (double) cold_hi;
    ASSERT_MSG(ratio > 0.95 && ratio < 1.05, "cold halves %llu vs %llu", (unsigned long long) cold_lo, (unsigned long long) cold_hi);
    /* A key space of one is all hot. */
    mqload_keydist_init(&d, MQLOAD_KEYS_HOTSPOT, 1);
    for (int i = 0; i < 100; i++) ASSERT_EQ(mqload_keydist_next(&d, &rng, 0), 0);
}

TEST("/mqload/keydist/exponential", mqload_keydist_exponential)
{
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 9, 1);
    mqload_keydist_t d;
    ASSERT_EQ(mqload_keydist_parse("exponential"), MQLOAD_KEYS_EXPONENTIAL);
    ASSERT_STR_EQ(mqload_keydist_name(MQLOAD_KEYS_EXPONENTIAL), "exponential");
    mqload_keydist_init(&d, MQLOAD_KEYS_EXPONENTIAL, N);
    uint64_t within = 0, newest_tenth = 0;
    uint64_t latest = N - 1;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = mqload_keydist_next(&d, &rng, latest);
        ASSERT_LE(k, latest);
        if (latest - k < (uint64_t) (N * MQLOAD_EXPONENTIAL_FRAC)) within++;
        if (latest - k < N / 10) newest_tenth++;
    }
    /* YCSB's parameters: 95% of the distances within 0.857 n; those reaching below key 0 (3%)
     * are drawn again, as YCSB does, so the shares are conditional on distance <= n - 1. */
    double gamma = -log(0.05) / (N * MQLOAD_EXPONENTIAL_FRAC), inside = 1 - exp(-gamma * (N - 1));
    double f = (double) within / DRAWS, g = (double) newest_tenth / DRAWS;
    double want_f = 0.95 / inside, want_g = (1 - exp(-gamma * N / 10)) / inside;
    ASSERT_MSG(fabs(f - want_f) < 0.005, "within fraction %.4f, expected %.4f", f, want_f);
    ASSERT_MSG(fabs(g - want_g) < 0.01, "newest tenth %.4f, expected %.4f", g, want_g);
    /* It follows the newest key as inserts move it. */
    uint64_t k = mqload_keydist_next(&d, &rng, 3 * N);
    ASSERT_LE(k, 3 * N);
}

/* YCSB's update writes one field chosen at random (writeallfields=false), fieldlength characters. */
TEST("/mqload/ycsb/update_one_random_field", mqload_ycsb_update_field)
{
    bson_t upd = BSON_INITIALIZER;
    mqload_ycsb_update(&upd, 4, 150);
    char err[256];
    mqload_template_t *t = mqload_template_compile(&upd, false, err, sizeof err);
    ASSERT_MSG(t != NULL, "%s", err);
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 3, 1);
    mqload_tctx_t ctx = {.rng = &rng, .key = 1, .lane = 0, .lanes = 1};
    int hits[4] = {0};
    bson_t out = BSON_INITIALIZER;
    for (int i = 0; i < 4000; i++) {
        mqload_template_eval(t, &ctx, &out);
        bson_iter_t it, set;
        ASSERT(bson_iter_init_find(&it, &out, "$set") && bson_iter_recurse(&it, &set));
        int n = 0;
        while (bson_iter_next(&set)) {
            uint32_t len = 0;
            const char *k = bson_iter_key(&set);
            ASSERT_MSG(!strncmp(k, "field", 5) && k[5] >= '0' && k[5] <= '3' && !k[6], "field %s", k);
            ASSERT(BSON_ITER_HOLDS_UTF8(&set));
            bson_iter_utf8(&set, &len);
            ASSERT_EQ(len, 150);
            hits[k[5] - '0']++;
            n++;
        }
        ASSERT_EQ(n, 1);
    }
    for (int f = 0; f < 4; f++) ASSERT_MSG(hits[f] > 850 && hits[f] < 1150, "field%d chosen %d times of 4000", f, hits[f]);
    bson_destroy(&out);
    bson_destroy(&upd);
    mqload_template_destroy(t);
}

/* YCSB's two phases: load inserts records 0..recordcount-1 (measured, [INSERT]), each with
 * fieldcount fields of fieldlength characters; run reads and updates them without seeding. */
TEST("/mqload/ycsb/load_then_run", mqload_ycsb_load_run)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/mqload", tf_build_dir());
    if (access(path, X_OK) != 0) SKIP("%s is not built", path);
    const char *uri = tf_server_uri("plain");
    const char *db = tf_unique("ycsb");
    char args[4096], out[65536], json[1024];
    /* Bad use first: a phase without the record count, a field option without a preset. */
    ASSERT_EQ(tf_mqload(NULL, "--preset ycsb-a --phase load", out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "--recordcount");
    ASSERT_EQ(tf_mqload(NULL, "--op find --fieldlength 5", out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "--preset ycsb");

    /* 300 records of 3 fields x 150 bytes (past libbson's inline buffer), 2 threads, 40 in flight. */
    snprintf(json, sizeof json, "%s/load.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri '%s' --db %s --preset ycsb-a --phase load --recordcount 300 --fieldcount 3 "
             "--fieldlength 150 -c 40 -t 2 --warmup 0 --no-progress -q --json '%s' --ycsb-summary -", uri, db, json);
    int rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "load exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "[INSERT], Operations, 300");
    ASSERT_STR_CONTAINS(out, "[INSERT], Return=OK, 300");
    /* The load phase inserts the keys itself: no "without --seed" warning. */
    ASSERT_MSG(!strstr(out, "warning: --preset"), "load phase warned: %s", out);
    mqload_result_t r;
    tf_mqload_result(json, &r);
    uint64_t sub = r.submitted, ok = r.ok;
    mqload_result_free(&r);
    ASSERT_EQ(sub, 300);
    ASSERT_EQ(ok, 300);

    mongoc_client_t *mc = mongoc_client_new(uri);
    ASSERT_NOT_NULL(mc);
    mongoc_collection_t *coll = mongoc_client_get_collection(mc, db, "bench");
    bson_error_t err;
    bson_t empty = BSON_INITIALIZER;
    int64_t n = mongoc_collection_count_documents(coll, &empty, NULL, NULL, NULL, &err);
    ASSERT_MSG(n == 300, "%lld documents after the load (%s)", (long long) n, err.message);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &empty, NULL, NULL);
    const bson_t *doc;
    bool seen[300] = {false};
    size_t docs = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        size_t fields = 0;
        int64_t id = -1;
        ASSERT(bson_iter_init(&it, doc));
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            if (!strcmp(k, "_id")) id = bson_iter_as_int64(&it);
            else {
                uint32_t len = 0;
                ASSERT_MSG(!strncmp(k, "field", 5) && BSON_ITER_HOLDS_UTF8(&it), "field %s", k);
                bson_iter_utf8(&it, &len);
                ASSERT_EQ(len, 150);
                fields++;
            }
        }
        ASSERT_EQ(fields, 3);
        ASSERT_MSG(id >= 0 && id < 300 && !seen[id], "_id %lld", (long long) id);
        seen[id] = true;
        docs++;
    }
    ASSERT_MSG(!mongoc_cursor_error(cur, &err), "%s", err.message);
    mongoc_cursor_destroy(cur);
    ASSERT_EQ(docs, 300);

    /* Run: 120 operations of ycsb-b over the loaded records (FerretDB over SQLite reads ~25/s of
     * them here), hotspot keys; nothing seeded or dropped. */
    snprintf(json, sizeof json, "%s/run.json", tf_tmpdir());
    snprintf(args, sizeof args, "--uri '%s' --db %s --preset ycsb-b --phase run --recordcount 300 --operationcount 120 "
             "--fieldlength 150 --key-dist hotspot -c 16 --warmup 0 --no-progress -q --json '%s'", uri, db, json);
    rc = tf_mqload(NULL, args, out, sizeof out);
    ASSERT_MSG(rc == 0, "run exit %d: %s", rc, out);
    ASSERT_MSG(!strstr(out, "warning: --preset"), "run phase warned: %s", out); /* it reads what the load left */
    tf_mqload_result(json, &r);
    uint64_t rok = r.ok, rerr = r.errors;
    mqload_result_free(&r);
    ASSERT_EQ(rok, 120);
    ASSERT_EQ(rerr, 0);
    n = mongoc_collection_count_documents(coll, &empty, NULL, NULL, NULL, &err);
    ASSERT_MSG(n == 300, "%lld documents after the run phase", (long long) n);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(mc);
}
