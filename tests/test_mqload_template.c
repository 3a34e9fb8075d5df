/* mqload's templates and key distributions. */
#include <math.h>
#include <ctype.h>
#include <stdlib.h>

#include "../cli/args.h"
#include "../cli/keydist.h"
#include "../cli/template.h"
#include "../cli/workload.h"
#include "tf.h"

static mqload_template_t *compile_json(const char *json, char *err, size_t esz)
{
    bson_error_t be;
    bson_t *b = bson_new_from_json((const uint8_t *) json, -1, &be);
    ASSERT_MSG(b != NULL, "bad test JSON: %s", be.message);
    mqload_template_t *t = mqload_template_compile(b, false, err, esz);
    bson_destroy(b);
    return t;
}

TEST("/mqload/template/generators", mqload_template_generators)
{
    char err[256];
    mqload_template_t *t = compile_json(
        "{\"_id\": {\"$key\": {}}, \"i\": {\"$randInt\": [5, 7]}, \"big\": {\"$randInt\": [0, 10000000000]},"
        " \"s\": {\"$randString\": 12}, \"c\": {\"$choose\": [\"a\", {\"$randInt\": [100, 100]}]},"
        " \"n\": {\"$now\": {}}, \"q\": {\"$seq\": {}}, \"d\": {\"$randDouble\": [0.5, 1.5]},"
        " \"const\": {\"x\": [1, 2, {\"$gt\": 3}]}, \"nested\": {\"a\": [{\"$seq\": {\"start\": 100, \"step\": 10}}]}}",
        err, sizeof err);
    ASSERT_MSG(t != NULL, "compile: %s", err);
    ASSERT(!mqload_template_is_constant(t));
    ASSERT(mqload_template_uses_key(t));
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 1, 1);
    mqload_tctx_t ctx = {.rng = &rng, .key = 77, .lane = 1, .lanes = 4};
    bson_t out = BSON_INITIALIZER;
    bool seen_a = false, seen_100 = false;
    for (int round = 0; round < 200; round++) {
        mqload_template_eval(t, &ctx, &out);
        bson_iter_t it;
        ASSERT(bson_iter_init_find(&it, &out, "_id") && BSON_ITER_HOLDS_INT64(&it) && bson_iter_int64(&it) == 77);
        ASSERT(bson_iter_init_find(&it, &out, "i") && BSON_ITER_HOLDS_INT32(&it));
        ASSERT(bson_iter_int32(&it) >= 5 && bson_iter_int32(&it) <= 7);
        ASSERT(bson_iter_init_find(&it, &out, "big") && BSON_ITER_HOLDS_INT64(&it));
        ASSERT(bson_iter_init_find(&it, &out, "s") && BSON_ITER_HOLDS_UTF8(&it));
        uint32_t len;
        const char *s = bson_iter_utf8(&it, &len);
        ASSERT_EQ(len, 12);
        for (uint32_t i = 0; i < len; i++) ASSERT(isalnum((unsigned char) s[i]));
        ASSERT(bson_iter_init_find(&it, &out, "c"));
        if (BSON_ITER_HOLDS_UTF8(&it)) seen_a = true;
        else if (BSON_ITER_HOLDS_INT32(&it) && bson_iter_int32(&it) == 100) seen_100 = true;
        else FAIL("$choose gave something else");
        ASSERT(bson_iter_init_find(&it, &out, "n") && BSON_ITER_HOLDS_DATE_TIME(&it));
        /* $seq: lane + lanes * n */
        ASSERT(bson_iter_init_find(&it, &out, "q") && bson_iter_int64(&it) == 1 + 4 * round);
        ASSERT(bson_iter_init_find(&it, &out, "d") && bson_iter_double(&it) >= 0.5 && bson_iter_double(&it) < 1.5);
        bson_iter_t n;
        ASSERT(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "nested.a.0", &n));
        ASSERT_EQ(bson_iter_int64(&n), 100 + 10 * (1 + 4 * round));
        ASSERT(bson_iter_init(&it, &out) && bson_iter_find_descendant(&it, "const.x.2.$gt", &n));
        ASSERT_EQ(bson_iter_int32(&n), 3);
    }
    ASSERT(seen_a && seen_100);
    bson_destroy(&out);
    mqload_template_destroy(t);
}

TEST("/mqload/template/constant_and_operators", mqload_template_constant_and_operators)
{
    char err[256];
    /* Query and update operators are not generators: copied as they are. */
    mqload_template_t *t = compile_json("{\"$set\": {\"a\": 1}, \"$inc\": {\"n\": 2}}", err, sizeof err);
    ASSERT_NOT_NULL(t);
    ASSERT(mqload_template_is_constant(t));
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 1, 1);
    mqload_tctx_t ctx = {.rng = &rng};
    bson_t out = BSON_INITIALIZER;
    mqload_template_eval(t, &ctx, &out);
    char *j = bson_as_relaxed_extended_json(&out, NULL);
    ASSERT_STR_EQ(j, "{ \"$set\" : { \"a\" : 1 }, \"$inc\" : { \"n\" : 2 } }");
    bson_free(j);
    bson_destroy(&out);
    mqload_template_destroy(t);
}

TEST("/mqload/template/choose_weights", mqload_template_choose_weights)
{
    char err[256];
    mqload_template_t *t = compile_json("{\"v\": {\"$choose\": {\"from\": [1, 2], \"weights\": [9, 1]}}}", err, sizeof err);
    ASSERT_MSG(t != NULL, "%s", err);
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 5, 1);
    mqload_tctx_t ctx = {.rng = &rng};
    bson_t out = BSON_INITIALIZER;
    int ones = 0;
    for (int i = 0; i < 10000; i++) {
        bson_iter_t it;
        mqload_template_eval(t, &ctx, &out);
        bson_iter_init_find(&it, &out, "v");
        ones += bson_iter_int32(&it) == 1;
    }
    ASSERT(ones > 8700 && ones < 9300);
    bson_destroy(&out);
    mqload_template_destroy(t);
}

TEST("/mqload/template/errors", mqload_template_errors)
{
    static const char *const bad[] = {
        "{\"a\": {\"$randInt\": [3]}}",        "{\"a\": {\"$randInt\": [3, 1]}}",  "{\"a\": {\"$randInt\": \"x\"}}",
        "{\"a\": {\"$randString\": -1}}",     "{\"a\": {\"$choose\": []}}",       "{\"a\": {\"$choose\": 3}}",
        "{\"a\": {\"$seq\": {\"stride\": 2}}}", "{\"a\": {\"$choose\": {\"from\": [1], \"weights\": [1, 2]}}}",
        "{\"a\": {\"$randDouble\": [2, 1]}}",
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        mqload_template_t *t = compile_json(bad[i], err, sizeof err);
        ASSERT_MSG(t == NULL, "accepted %s", bad[i]);
        ASSERT_MSG(err[0] == '$', "no message for %s: '%s'", bad[i], err);
    }
}

TEST("/mqload/template/deterministic_seed", mqload_template_deterministic_seed)
{
    char err[256];
    mqload_template_t *t = compile_json("{\"s\": {\"$randString\": [1, 40]}, \"i\": {\"$randInt\": [0, 1000000]}}", err, sizeof err);
    mqload_rng_t r1, r2;
    mqload_rng_seed(&r1, 99, 3);
    mqload_rng_seed(&r2, 99, 3);
    mqload_tctx_t c1 = {.rng = &r1}, c2 = {.rng = &r2};
    bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
    for (int i = 0; i < 100; i++) {
        mqload_template_eval(t, &c1, &a);
        mqload_template_eval(t, &c2, &b);
        ASSERT(bson_equal(&a, &b));
    }
    bson_destroy(&a);
    bson_destroy(&b);
    mqload_template_destroy(t);
}

TEST("/mqload/keydist/uniform_zipfian_latest", mqload_keydist_shapes)
{
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 11, 1);
    enum { N = 1000, DRAWS = 200000 };
    static uint32_t hits[N];
    mqload_keydist_t d;
    /* Uniform: every key about equally often. */
    memset(hits, 0, sizeof hits);
    mqload_keydist_init(&d, MQLOAD_KEYS_UNIFORM, N);
    for (int i = 0; i < DRAWS; i++) hits[mqload_keydist_next(&d, &rng, N - 1)]++;
    uint32_t mx = 0;
    for (int i = 0; i < N; i++) mx = hits[i] > mx ? hits[i] : mx;
    ASSERT_LT(mx, 2 * DRAWS / N);
    /* Zipfian: a few hot keys take a large share, and they are not simply the smallest ids. */
    memset(hits, 0, sizeof hits);
    mqload_keydist_init(&d, MQLOAD_KEYS_ZIPFIAN, N);
    for (int i = 0; i < DRAWS; i++) {
        uint64_t k = mqload_keydist_next(&d, &rng, N - 1);
        ASSERT_LT(k, N);
        hits[k]++;
    }
    mx = 0;
    int hottest = 0;
    for (int i = 0; i < N; i++)
        if (hits[i] > mx) mx = hits[i], hottest = i;
    ASSERT_GT(mx, 10 * DRAWS / N);
    ASSERT_NE(hottest, 0);
    /* Latest: the newest keys are the most popular. */
    memset(hits, 0, sizeof hits);
    mqload_keydist_init(&d, MQLOAD_KEYS_LATEST, N);
    for (int i = 0; i < DRAWS; i++) hits[mqload_keydist_next(&d, &rng, N - 1)]++;
    ASSERT_GT(hits[N - 1], hits[N / 2] * 10);
    /* ... and follows the key space as it grows. */
    uint64_t k = mqload_keydist_next(&d, &rng, 5000);
    ASSERT_LE(k, 5000);
}

/* A template in which only $key varies is evaluated by copying its bytes, or rendered by
 * patching its own, with the key (template.c): the same bytes as walking the tree, for every kind of template the workloads and
 * tests use, with the draw's buffer reused from one template to the next as mqload does. */
TEST("/mqload/template/fixed_bytes_match_tree", mqload_template_fixed_bytes_match_tree)
{
    static const struct {
        const char *json;
        bool is_array, fixed;
    } cases[] = {
        {"{\"_id\": {\"$key\": {}}}", false, true}, /* the default filter */
        {"{\"0\": {\"$match\": {\"_id\": {\"$gte\": {\"$key\": {}}}}}, \"1\": {\"$limit\": 10}}", true, true},
        {"{\"_id\": {\"$gte\": {\"$key\": {}}}}", false, true},
        {"{\"ping\": 1}", false, true},
        {"{\"$set\": {\"a\": 1}, \"$inc\": {\"n\": 2}}", false, true},
        {"{}", false, true},
        {"{\"_id\": {\"$key\": {}}, \"tag\": \"x\", \"a\": [{\"b\": {\"$key\": {}}}, {\"$key\": {}}], \"k\": {\"$key\": {}}}", false, true},
        {"{\"_id\": {\"$key\": {}}, \"tag\": \"000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000000000000000000000000000000000\"}", false, true}, /* > 120 bytes */
        {"{\"0\": {\"$key\": {}}, \"1\": {\"$key\": {}}}", true, true},
        {"{\"a\": {\"$key\": {}}, \"b\": {\"$key\": {}}, \"c\": {\"$key\": {}}, \"d\": {\"$key\": {}}, \"e\": {\"$key\": {}}}", false, false},
        {"{\"_id\": {\"$key\": {}}, \"at\": {\"$date\": \"2024-01-01T00:00:00Z\"}, \"qty\": {\"$randInt\": [1, 9]}}", false, false},
        {"{\"$set\": {\"n\": {\"$randInt\": [0, 1000000]}}}", false, false},
        {"{\"sort\": {\"_id\": 1}, \"limit\": {\"$randInt\": [1, 100]}, \"batchSize\": 20}", false, false},
        {"{\"k\": {\"$choose\": [{\"$key\": {}}, 1]}}", false, false},
        {"{\"q\": {\"$seq\": {}}, \"s\": {\"$randString\": [0, 200]}, \"d\": {\"$randDouble\": [0, 1]}, \"_id\": {\"$key\": {}}}", false, false},
    };
    static const int64_t keys[] = {0, 1, -1, 77, INT64_MAX, INT64_MIN, 0x0102030405060708, 1099511627776};
    enum { N = sizeof cases / sizeof cases[0] };
    mqload_template_t *fast[N], *tree[N];
    char err[256];
    for (size_t i = 0; i < N; i++) {
        bson_error_t be;
        bson_t *b = bson_new_from_json((const uint8_t *) cases[i].json, -1, &be);
        ASSERT_MSG(b != NULL, "bad test JSON: %s", be.message);
        fast[i] = mqload_template_compile(b, cases[i].is_array, err, sizeof err);
        tree[i] = mqload_template_compile(b, cases[i].is_array, err, sizeof err); /* its own $seq counters */
        ASSERT_MSG(fast[i] && tree[i], "compile %s: %s", cases[i].json, err);
        ASSERT_MSG(mqload_template_is_fixed(fast[i]) == cases[i].fixed, "%s", cases[i].json);
        bson_destroy(b);
    }
    mqload_rng_t r1, r2;
    mqload_rng_seed(&r1, 3, 1);
    mqload_rng_seed(&r2, 3, 1);
    mqload_tctx_t c1 = {.rng = &r1, .lane = 1, .lanes = 2}, c2 = {.rng = &r2, .lane = 1, .lanes = 2};
    bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            for (size_t i = 0; i < N; i++) {
                c1.key = c2.key = keys[k];
                /* round 1 renders (the template's own document, patched), the others copy */
                const bson_t *got = &a;
                if (round == 1) got = mqload_template_render(fast[i], &c1, &a);
                else mqload_template_eval(fast[i], &c1, &a);
                mqload_template_eval_tree(tree[i], &c2, &b);
                ASSERT(bson_validate(got, BSON_VALIDATE_NONE, NULL));
                ASSERT_MSG(got->len == b.len && memcmp(bson_get_data(got), bson_get_data(&b), b.len) == 0,
                           "template %zu, key %lld: the copied bytes differ from the tree's", i, (long long) keys[k]);
                bson_iter_t it, d; /* and the key is where it belongs */
                if (bson_iter_init(&it, got) && bson_iter_find_descendant(&it, cases[i].is_array ? "0.$match._id.$gte" : "_id", &d) &&
                    BSON_ITER_HOLDS_INT64(&d))
                    ASSERT_EQ(bson_iter_int64(&d), keys[k]);
            }
    bson_destroy(&a);
    bson_destroy(&b);
    for (size_t i = 0; i < N; i++) mqload_template_destroy(fast[i]), mqload_template_destroy(tree[i]);
}

/* A draw fills the documents its operation sends and leaves the others empty, whichever operation
 * the draw before was (workload.c renders only those, and empties the rest when the op changes). */
TEST("/mqload/workload/draw_documents", mqload_workload_draw_documents)
{
    mqload_config_t cfg;
    mqload_config_init(&cfg);
    char err[512];
    char *argv[] = {"mqload", "--mix", "find,insert,update,delete,aggregate,count,command,scan,rmw", NULL};
    ASSERT_EQ(mqload_args_parse(&cfg, 3, argv, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    mqload_workload_t wl;
    ASSERT_MSG(mqload_workload_load(&wl, &cfg, err, sizeof err), "%s", err);
    mqload_wl_thread_t t;
    ASSERT_MSG(mqload_wl_thread_init(&t, &wl, 5, 0, 1, err, sizeof err), "%s", err);
    mqload_opinst_t oi;
    mqload_opinst_init(&oi);
    /* which of filter, document, update, pipeline, command, options each type sends */
    static const char *const sends[MQLOAD_OP__COUNT] = {
        [MQLOAD_OP_FIND] = "100000", [MQLOAD_OP_INSERT] = "010000", [MQLOAD_OP_UPDATE] = "101000",
        [MQLOAD_OP_DELETE] = "100000", [MQLOAD_OP_AGGREGATE] = "000100", [MQLOAD_OP_COUNT] = "100000",
        [MQLOAD_OP_COMMAND] = "000010", [MQLOAD_OP_SCAN] = "100001", [MQLOAD_OP_RMW] = "100000",
    };
    unsigned seen = 0;
    for (int i = 0; i < 2000; i++) {
        mqload_wl_next(&t, &oi);
        seen |= 1u << oi.type;
        const bson_t *docs[6] = {oi.filter, oi.document, oi.update, oi.pipeline, oi.command, oi.options};
        for (int k = 0; k < 6; k++) {
            ASSERT(bson_validate(docs[k], BSON_VALIDATE_NONE, NULL));
            ASSERT_MSG(bson_empty(docs[k]) == (sends[oi.type][k] == '0'), "%s: document %d", mqload_op_type_name(oi.type), k);
        }
        bson_iter_t it;
        if (oi.type != MQLOAD_OP_INSERT && oi.type != MQLOAD_OP_AGGREGATE && oi.type != MQLOAD_OP_COMMAND &&
            oi.type != MQLOAD_OP_SCAN)
            ASSERT(bson_iter_init_find(&it, oi.filter, "_id") && bson_iter_int64(&it) == oi.key);
        if (oi.type == MQLOAD_OP_INSERT) ASSERT(bson_iter_init_find(&it, oi.document, "_id") && bson_iter_int64(&it) == oi.key);
        if (oi.type == MQLOAD_OP_RMW && i % 2) { /* its read came back: the update of the same key */
            mqload_wl_rmw_update(&t, &oi);
            ASSERT(!bson_empty(oi.update) && bson_iter_init_find(&it, oi.update, "$set"));
        }
    }
    ASSERT_EQ(seen, (1u << MQLOAD_OP__COUNT) - 1);
    mqload_opinst_free(&oi);
    mqload_wl_thread_free(&t);
    mqload_workload_free(&wl);
    mqload_config_free(&cfg);
}
