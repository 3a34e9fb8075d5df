/* Shared pieces of the unified runner's operations (ops_common.c, ops_crud.c, ops.c). */
#ifndef MQC_UNIFIED_OPS_H
#define MQC_UNIFIED_OPS_H

#include "unified.h"

/* What one operation produced: its reply or error, and a cursor's documents. */
typedef struct {
    bool done;
    bson_t *reply;                /* copy of the reply, or NULL */
    mqc_error_t err;
    bool has_err;
    bson_t **docs;                /* cursor documents */
    size_t n, cap;
} res_t;

/* A cursor entity: documents not yet iterated are r.docs[head..n-1]. */
struct ux_cursor {
    mqc_client_t *client;
    mqc_cursor_t *cursor;
    res_t r;                      /* documents not yet iterated are r.docs[head..n-1] */
    size_t head;
    bool batch_pending;
};

/* One operation being run. */
typedef struct {
    ux_run_t *run;
    const bson_t *args;
    ux_entity_t *obj;
    const char *name;
    res_t *r;                     /* heap: an op that never ends may still write into it */
    bson_value_t result;          /* what expectResult compares, when has_result */
    bool has_result;
    bool skip;                    /* the verdict is a skip already set */
    struct ux_cursor *new_cursor; /* createFindCursor, createCommandCursor */
    mqc_collection_t *new_coll;   /* createCollection: the collection, for saveResultAsEntity */
} call_t;

void uxo_res_free(res_t *r);
/* Callbacks that fill a res_t (ud): a reply, every batch of a cursor, one batch (ud: ux_cursor). */
void uxo_on_reply(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud);
void uxo_on_batch_all(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud);
void uxo_on_batch_one(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud);
void uxo_push_doc(res_t *r, const bson_t *d);
/* Runs client's loop until *done, 30 s at most. */
void uxo_wait_for(mqc_client_t *client, bool *done);
struct ux_cursor *uxo_cursor_wrap(mqc_client_t *client);
void uxo_cursor_wait(struct ux_cursor *c);
/* Verdicts: a malformed operation (fail), a feature mqc lacks (skip). Both return false. */
bool uxo_bad(call_t *c, const char *fmt, const char *what);
bool uxo_lacks(call_t *c, const char *feature);
bool uxo_arg_doc(call_t *c, const char *key, bson_t *out, bool required);
/* The call's options: its arguments but those in taken, then the handle's defaults. */
bool uxo_opts_from_args(call_t *c, bson_t *opts, const char *const *taken);
void uxo_set_result_doc(call_t *c, const bson_t *d);
void uxo_set_result_docs(call_t *c, bson_t **docs, size_t n);
void uxo_set_result_field(call_t *c, const bson_t *d, const char *key);
/* ops_crud.c: an operation on a collection. */
bool uxo_collection_op(call_t *c, mqc_collection_t *coll);

#endif
