/* docsrv_eval: docsrv's document logic (docsrv_eval.c), private to docsrv.c. */
#ifndef MQC_DOCSRV_EVAL_H
#define MQC_DOCSRV_EVAL_H

#include <bson/bson.h>
#include <stdbool.h>

/* MongoDB's order of types (numbers together, then strings, documents...), 1..14. */
int docsrv_type_rank(bson_type_t t);
/* The value of doc's top-level field key (pointing into doc). */
bool docsrv_get_field(const bson_t *doc, const char *key, bson_value_t *out);
/* Top-level equality, $eq/$ne/$gt/$gte/$lt/$lte/$in/$exists, $and/$or. NULL filter: all. */
bool docsrv_matches(const bson_t *doc, const bson_t *filter);
/* doc with u applied: $set (in place, new fields at the end, as MongoDB), $inc, $unset, or a
 * replacement keeping _id. A new document, or NULL with *code set (unsupported update). */
bson_t *docsrv_apply_update(const bson_t *doc, const bson_t *u, bool *is_pipeline, int *code);
/* The document an upsert inserts: _id and equality fields of q, then u applied. */
bson_t *docsrv_upsert_doc(const bson_t *q, const bson_t *u, int *code);
/* A hash of an _id for the unique index: 1, 1L and 1.0 hash alike (MongoDB equates them). Never 0. */
uint64_t docsrv_id_hash(const bson_value_t *v);

#endif
