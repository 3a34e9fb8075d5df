/* Write models of every size, against the scripted server. A bson_t that outgrew libbson's
 * 120-byte inline buffer points into its own struct; the bulk once kept its models' bson_t by
 * value in an array grown with realloc, so the 9th model (the first growth) left every earlier
 * one dangling: valgrind and ASan saw an invalid read in bulk_encode, and an array big enough to
 * be mmap'd (a few thousand models) crashed the plain build. Each test here failed before. */
#include <stdlib.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "tf.h"

typedef struct {
    int calls;
    mqc_error_t error;
    bool failed;
} res_t;

static void on_res(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    res_t *r = ud;
    r->calls++;
    r->failed = error != NULL;
    if (error) r->error = *error;
}

/* A document of about `size` bytes: past the inline buffer from 121 on. */
static bson_t *doc_of(int i, size_t size)
{
    bson_t *d = bson_new();
    char *pad = malloc(size + 1);
    memset(pad, 'a' + i % 26, size);
    pad[size] = '\0';
    BSON_APPEND_INT32(d, "_id", i);
    BSON_APPEND_UTF8(d, "pad", pad);
    free(pad);
    return d;
}

static void insert_many_sized(int n, size_t size)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, fakesrv_uri(s, NULL), &err);
    ASSERT_MSG(c, "%s", err.message);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t **docs = calloc((size_t) n, sizeof *docs);
    for (int i = 0; i < n; i++) docs[i] = doc_of(i, size);
    res_t r = {0};
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, (size_t) n, NULL, on_res, &r);
    ASSERT(mqc_client_run_until_idle(c, 60));
    ASSERT_EQ(r.calls, 1);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    for (int i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/sizes/insert_many_9x300", bulk_sizes_9x300) { insert_many_sized(9, 300); }
TEST("/bulk/sizes/insert_many_17x121", bulk_sizes_17x121) { insert_many_sized(17, 121); }
TEST("/bulk/sizes/insert_many_5000x250", bulk_sizes_5000x250) { insert_many_sized(5000, 250); }

/* Update and delete models carry their filter and update in the same array. */
TEST("/bulk/sizes/mixed_models_past_inline", bulk_sizes_mixed)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, fakesrv_uri(s, NULL), &err);
    ASSERT_MSG(c, "%s", err.message);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
    for (int i = 0; i < 3000; i++) {
        bson_t *f = doc_of(i, 200);
        bson_t *u = BCON_NEW("$set", "{", "pad", BCON_UTF8("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), "}");
        switch (i % 4) {
        case 0: ASSERT(mqc_bulk_insert(b, f, &err)); break;
        case 1: ASSERT(mqc_bulk_update_one(b, f, u, NULL, &err)); break;
        case 2: ASSERT(mqc_bulk_replace_one(b, f, f, NULL, &err)); break;
        default: ASSERT(mqc_bulk_delete_one(b, f, NULL, &err)); break;
        }
        bson_destroy(f);
        bson_destroy(u);
    }
    res_t r = {0};
    mqc_bulk_execute(b, on_res, &r);
    ASSERT(mqc_client_run_until_idle(c, 60));
    ASSERT_EQ(r.calls, 1);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
