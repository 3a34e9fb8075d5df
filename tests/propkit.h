/* propkit: the model and the operations of the property tests (test_property.c against docsrv,
 * test_property_ferretdb.c against FerretDB): a model of the collection by _id, random single
 * operations, bulks, find_one_and_*, gathers, and read-backs through cursors, each checked
 * against the model. A failure names the seed (MQC_PROPERTY_SEED replays it). */
#ifndef MQC_PROPKIT_H
#define MQC_PROPKIT_H

#include "mqc.h"
#include "propgen.h"
#include "tf.h"

extern uint64_t prop_seed_used;

#define P_ASSERT(cond, ...)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            tf_note(__VA_ARGS__);                                                                            \
            FAIL("property failed: %s (seed %llu: rerun with MQC_PROPERTY_SEED=%llu)", #cond,                \
                 (unsigned long long) prop_seed_used, (unsigned long long) prop_seed_used);                                  \
        }                                                                                                    \
    } while (0)


typedef struct {
    bson_t **doc;            /* by _id (int32 0..cap-1); NULL: absent */
    size_t cap;
    pg_rng_t rng;
    pg_types_t types;
    size_t max_size;         /* the largest document to generate */
    mqc_client_t *c;
    mqc_collection_t *coll;
    char db[64], name[96];
} prop_t;

typedef struct {
    int calls;
    bson_t *reply;
    mqc_error_t error;
    bool failed;
} prop_res_t;

#define EXPECT_OK(r)                                                                                         \
    P_ASSERT((r).calls == 1 && !(r).failed, "calls %d, error %s: %s", (r).calls,                            \
             mqc_error_domain_name((r).error.domain), (r).error.message)

/* MQC_PROPERTY_LONG=1: larger counts and sizes */
bool prop_long_run(void);
/* A client on uri and a fresh collection; documents up to max_size bytes of the given types. */
void prop_open(prop_t *p, const char *uri, pg_types_t types, size_t max_size);
/* Drops the collection, destroys the client and the model. */
void prop_close(prop_t *p);
bson_t *prop_model_get(prop_t *p, int32_t id);
/* d: owned by the model from now on (NULL removes id). */
void prop_model_put(prop_t *p, int32_t id, bson_t *d);
int64_t prop_get_i(const bson_t *d, const char *k);
size_t prop_model_count(prop_t *p, int32_t group);
bson_t *prop_new_doc(prop_t *p, int32_t id);
bson_t *prop_model_set(const bson_t *doc, const char *key, const bson_value_t *v);
void prop_on_res(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud);
void prop_wait(prop_t *p);
void prop_check(prop_t *p, bson_t **got, size_t n, int32_t group, const char *what);
void prop_read_back(prop_t *p, bool aggregate, int32_t group);
void prop_count_check(prop_t *p, int32_t group);
void prop_insert_many(prop_t *p, int32_t from, int n, bool ordered);
void prop_singles(prop_t *p, int n, int32_t space);
void prop_many(prop_t *p);
void prop_bulk(prop_t *p, int n, int32_t space, bool ordered);
void prop_find_and(prop_t *p, int n, int32_t space);
void prop_gather(prop_t *p, int n, int32_t first_new);

#endif
