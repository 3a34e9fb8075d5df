/* Property tests: random documents (every BSON type, nesting, sizes from empty to
 * maxBsonObjectSize) through every public write and read API, in counts that split batches by
 * maxWriteBatchSize and maxMessageSizeBytes, hundreds in flight; the result is compared with a
 * model kept here. Against docsrv (a scripted server as strict as MongoDB about its limits,
 * announcing small ones so that splits are cheap) and against FerretDB, where libmongoc reads back
 * what mqc wrote: a differential check, not mqc checking itself.
 *
 * Seed: MQC_PROPERTY_SEED (else from the clock), printed in every failure. MQC_PROPERTY_LONG=1
 * multiplies counts and sizes (and uses FerretDB's full maxBsonObjectSize). */
#include <stdlib.h>
#include <unistd.h>

#include "server/docsrv.h"
#include "propkit.h"

/* ---- the scenario, against docsrv ------------------------------------------------------------ */

/* Small limits make splits cheap: 100 statements, 64 KiB documents, 192 KiB messages (MongoDB's
 * ratio of message to document). Every default run splits by count and by size. */
static const docsrv_limits_t small_limits = {64 * 1024, 192 * 1024, 100};

static void scenario(prop_t *p, int scale)
{
    int n0 = 150 * scale + (int) pg_below(&p->rng, 250 * (uint32_t) scale); /* past maxWriteBatchSize */
    int32_t space = n0 + 300;
    prop_insert_many(p, 0, n0, pg_below(&p->rng, 2));
    size_t max = p->max_size;
    p->max_size = 300; /* small ones: the split is by count */
    prop_insert_many(p, n0, 250, true);
    p->max_size = max;
    prop_read_back(p, false, -1);
    prop_singles(p, 300 * scale, space);          /* hundreds in flight */
    prop_bulk(p, 150 * scale + (int) pg_below(&p->rng, 100), space, true);
    prop_bulk(p, 150 * scale + (int) pg_below(&p->rng, 100), space, false);
    prop_find_and(p, 200 * scale, space);
    prop_many(p);
    prop_gather(p, 1500 * scale, space);
    prop_read_back(p, false, -1);
    prop_read_back(p, true, -1);
    prop_read_back(p, true, (int32_t) pg_below(&p->rng, 8));
    prop_count_check(p, -1);
    prop_count_check(p, (int32_t) pg_below(&p->rng, 8));
}

static void check_server_saw_splits(docsrv_t *s, const docsrv_limits_t *lim)
{
    docsrv_stats_t st = docsrv_stats(s);
    tf_note("docsrv: %llu commands, %llu write batches, at most %llu statements and %llu bytes in one, %llu getMores",
            (unsigned long long) st.commands, (unsigned long long) st.write_batches,
            (unsigned long long) st.max_statements, (unsigned long long) st.max_message, (unsigned long long) st.getmores);
    ASSERT_EQ(st.limit_errors, 0);
    ASSERT_LE(st.max_statements, lim->max_batch);
    ASSERT_LE(st.max_message, lim->max_message);
    ASSERT_GT(st.getmores, 0);
}

TEST("/property/docsrv/every_api_small_limits", property_docsrv_small)
{
    docsrv_t *s = docsrv_start(&small_limits);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, (size_t) small_limits.max_bson);
    scenario(&p, prop_long_run() ? 10 : 1);
    /* what the server holds is what the model holds */
    size_t n;
    char ns[200];
    snprintf(ns, sizeof ns, "%s.%s", p.db, p.name);
    bson_t **docs = docsrv_docs(s, ns, &n);
    prop_check(&p, docs, n, -1, "docsrv's store");
    docsrv_free_docs(docs, n);
    check_server_saw_splits(s, &small_limits);
    ASSERT_GT(docsrv_stats(s).max_message, small_limits.max_message / 2); /* size splits happened */
    ASSERT_EQ(docsrv_stats(s).max_statements, small_limits.max_batch);     /* count splits too */
    prop_close(&p);
    docsrv_stop(s);
}

/* Documents of exactly maxBsonObjectSize go (one per message when two don't fit); one byte more is
 * refused before anything is sent; {} gets an _id. MongoDB's default limits. */
TEST("/property/docsrv/max_bson_object_size", property_docsrv_max_size)
{
    docsrv_t *s = docsrv_start(NULL);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, 16 * 1024 * 1024);
    const size_t max = 16 * 1024 * 1024;
    bson_t *docs[4];
    for (int i = 0; i < 4; i++) {
        bson_t tmp;
        pg_doc(&p.rng, &tmp, i, 0, i == 3 ? max + 1 : max - (size_t) i, PG_TYPES_ALL);
        docs[i] = bson_copy(&tmp);
        bson_destroy(&tmp);
        P_ASSERT(docs[i]->len == (i == 3 ? max + 1 : max - (size_t) i), "generated %u bytes", docs[i]->len);
    }
    prop_res_t r = {0};
    mqc_collection_insert_many(p.coll, (const bson_t *const *) docs, 3, NULL, prop_on_res, &r);
    prop_wait(&p);
    EXPECT_OK(r);
    ASSERT_EQ(prop_get_i(r.reply, "insertedCount"), 3);
    bson_destroy(r.reply);
    for (int i = 0; i < 3; i++) prop_model_put(&p, i, bson_copy(docs[i]));
    ASSERT_GE(docsrv_stats(s).write_batches, 2); /* 3 x 16 MiB > 48,000,000 bytes */
    prop_read_back(&p, false, -1);
    /* One byte over: MongoDB refuses it (BSONObjectTooLarge, a write error). mqc lets statements
     * through up to maxBsonObjectSize + 16 KiB (an update statement may be that large), so the
     * server says it; past that mqc refuses before sending. */
    memset(&r, 0, sizeof r);
    mqc_collection_insert_one(p.coll, docs[3], NULL, prop_on_res, &r);
    prop_wait(&p);
    ASSERT(r.failed);
    P_ASSERT((r.error.domain == MQC_ERROR_WRITE && r.error.code == 10334) ||
             (r.error.domain == MQC_ERROR_CLIENT && r.error.code == MQC_CLIENT_TOO_LARGE),
             "max + 1: %s %d: %s", mqc_error_domain_name(r.error.domain), r.error.code, r.error.message);
    if (r.reply) bson_destroy(r.reply);
    bson_t huge;
    pg_doc(&p.rng, &huge, 9, 0, max + 16 * 1024 + 1, PG_TYPES_ALL);
    uint64_t before = docsrv_stats(s).commands;
    memset(&r, 0, sizeof r);
    mqc_collection_insert_one(p.coll, &huge, NULL, prop_on_res, &r);
    prop_wait(&p);
    bson_destroy(&huge);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    ASSERT_EQ(r.error.code, MQC_CLIENT_TOO_LARGE);
    ASSERT_EQ(docsrv_stats(s).commands, before);
    if (r.reply) bson_destroy(r.reply);
    /* the empty document */
    memset(&r, 0, sizeof r);
    bson_t empty = BSON_INITIALIZER;
    mqc_collection_insert_one(p.coll, &empty, NULL, prop_on_res, &r);
    prop_wait(&p);
    EXPECT_OK(r);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_OID(&it));
    bson_t *want = bson_new();
    BSON_APPEND_OID(want, "_id", bson_iter_oid(&it));
    prop_res_t f = {0};
    mqc_collection_find_one(p.coll, want, NULL, prop_on_res, &f);
    prop_wait(&p);
    EXPECT_OK(f);
    P_ASSERT(pg_equal(f.reply, want), "got %s", pg_show(f.reply));
    bson_destroy(f.reply), bson_destroy(r.reply), bson_destroy(want);
    for (int i = 0; i < 4; i++) bson_destroy(docs[i]);
    docsrv_stats_t st = docsrv_stats(s);
    ASSERT_EQ(st.limit_errors, 1); /* the max + 1 document */
    ASSERT_LE(st.max_message, 48000000);
    prop_close(&p);
    docsrv_stop(s);
}

/* Counts past MongoDB's own maxWriteBatchSize (100,000) with its default limits: long runs only
 * (the small-limits scenario splits by count in every run). */
TEST("/property/docsrv/past_100000", property_docsrv_100000)
{
    if (!prop_long_run()) SKIP("MQC_PROPERTY_LONG=1 runs it (the default run splits against smaller limits)");
    docsrv_t *s = docsrv_start(NULL);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, 300);
    prop_insert_many(&p, 0, 100050 + (int) pg_below(&p.rng, 5000), true);
    prop_read_back(&p, false, -1);
    check_server_saw_splits(s, &(docsrv_limits_t){16 * 1024 * 1024, 48000000, 100000});
    ASSERT_GE(docsrv_stats(s).write_batches, 2);
    prop_close(&p);
    docsrv_stop(s);
}

/* Issue 14's first symptom through mqload: every YCSB preset seeds 2,000 documents of ~1 KB
 * (insert_many in batches of 1,000, the bulk path that read freed memory) and runs, here against
 * docsrv in this process. Exit 0, no errors, every preset. */
TEST("/property/docsrv/mqload_ycsb_presets", property_docsrv_mqload_ycsb)
{
    char bin[1024], cmd[2048], out[8192];
    snprintf(bin, sizeof bin, "%s/mqload", tf_build_dir());
    if (access(bin, X_OK) != 0) SKIP("%s is not built", bin);
    docsrv_t *s = docsrv_start(NULL);
    for (char preset = 'a'; preset <= 'f'; preset++) {
        snprintf(cmd, sizeof cmd, "'%s' --uri '%s' --preset ycsb-%c --seed 2000 -n 400 --warmup 0 --no-progress 2>&1",
                 bin, docsrv_uri(s, NULL), preset);
        FILE *f = popen(cmd, "r");
        ASSERT_NOT_NULL(f);
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        int rc = pclose(f);
        ASSERT_MSG(rc == 0, "ycsb-%c: exit %d:\n%s", preset, rc, out);
        ASSERT_STR_CONTAINS(out, "errors 0 (");
    }
    char ns[64];
    size_t n;
    snprintf(ns, sizeof ns, "mqload.bench"); /* mqload's default --db and --collection */
    bson_t **docs = docsrv_docs(s, ns, &n);
    tf_note("docsrv holds %zu documents of mqload's; the first is %u bytes", n, n ? docs[0]->len : 0);
    ASSERT_GE(n, 2000); /* ycsb-f, the last, seeds 2,000 and inserts none */
    ASSERT_GT(docs[0]->len, 120);
    docsrv_free_docs(docs, n);
    docsrv_stop(s);
}
