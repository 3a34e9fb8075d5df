/* write: every write of documents. insert_one ... delete_many and bulk writes as a list of
 * write models, sent as insert/update/delete commands with the models in a kind-1 document
 * sequence, split by the server's limits, and the replies folded into one result named as the
 * CRUD spec names it; and the findAndModify family (find_one_and_update/replace/delete). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conn.h"
#include "handles.h"
#include "hotcmd.h"
#include "op.h"
#include "reply.h"

static const bson_t *or_empty(const bson_t *b, bson_t *empty)
{
    if (b) return b;
    bson_init(empty);
    return empty;
}

/* the same order as reply.h's mqc_write_kind_t, which the replies are folded with */
typedef enum { W_INSERT = MQC_WRITE_INSERT, W_UPDATE = MQC_WRITE_UPDATE, W_DELETE = MQC_WRITE_DELETE } wkind_t;

static const char *const kind_cmd[] = {"insert", "update", "delete"};
static const char *const kind_seq[] = {"documents", "updates", "deletes"};

/* The models live in an array grown with realloc, so each holds its document by pointer: a
 * bson_t that outgrew libbson's inline buffer points into its own struct and cannot move. */
typedef struct {
    wkind_t kind;
    bson_t *doc; /* insert: the document; update: {q, u, multi, upsert...}; delete: {q, limit...} */
} wmodel_t;

struct mqc_bulk {
    mqc_client_t *client;
    char db[64];
    char *coll;
    bson_t opts;
    bool ordered;
    wmodel_t *models;
    size_t n, cap;
    bool report_inserted_id; /* insert_one */
    mqc_error_t invalid;     /* first invalid model: reported at execute */
    bool has_invalid;
    bool multi;              /* holds an updateMany or deleteMany: not a retryable write */
};

typedef struct {
    mqc_bulk_t *bulk;
    size_t next;             /* first model not yet sent */
    size_t batch_start, batch_n;
    mqc_write_result_t res;  /* counts and errors of the replies so far (reply.c) */
    bool unacked;
    bson_t wc_opts;          /* {writeConcern: ...} resolved once */
    size_t txn_batch;        /* the batch (its first model) op->txn_number belongs to */
} exec_t;

mqc_bulk_t *mqc_collection_bulk_new(mqc_collection_t *coll, const bson_t *opts)
{
    mqc_bulk_t *b = calloc(1, sizeof *b);
    bson_iter_t it;
    if (!b) abort();
    b->client = coll->client;
    snprintf(b->db, sizeof b->db, "%s", coll->db);
    b->coll = strdup(coll->name);
    b->ordered = true;
    if (opts) bson_copy_to(opts, &b->opts);
    else bson_init(&b->opts);
    if (opts && bson_iter_init_find(&it, opts, "ordered")) b->ordered = bson_iter_as_bool(&it);
    return b;
}

void mqc_bulk_destroy(mqc_bulk_t *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) bson_destroy(b->models[i].doc);
    free(b->models);
    bson_destroy(&b->opts);
    free(b->coll);
    free(b);
}

static wmodel_t *add_model(mqc_bulk_t *b, wkind_t kind)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->models = realloc(b->models, b->cap * sizeof *b->models);
        if (!b->models) abort();
    }
    wmodel_t *m = &b->models[b->n++];
    m->kind = kind;
    m->doc = bson_new();
    return m;
}

static bool invalid(mqc_bulk_t *b, mqc_error_t *error, const char *msg)
{
    mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "%s", msg);
    if (!b->has_invalid) {
        mqc_error_set(&b->invalid, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "%s", msg);
        b->has_invalid = true;
    }
    return false;
}

bool mqc_bulk_insert(mqc_bulk_t *b, const bson_t *doc, mqc_error_t *error)
{
    bson_iter_t it;
    if (!doc) return invalid(b, error, "insert: no document");
    wmodel_t *m = add_model(b, W_INSERT);
    /* The CRUD spec has drivers add _id, first, so that the application learns it. */
    if (!bson_iter_init_find(&it, doc, "_id")) {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(m->doc, "_id", &oid);
        bson_concat(m->doc, doc);
    } else {
        bson_concat(m->doc, doc);
    }
    return true;
}

/* An update document must start with an operator, or be a pipeline (array keys "0", "1"...). */
static bool is_pipeline(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_next(&it) && strcmp(bson_iter_key(&it), "0") == 0;
}

static bool first_key_is_operator(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$';
}

static void append_model_opts(bson_t *dst, const bson_t *opts)
{
    static const char *const keys[] = {"upsert", "arrayFilters", "collation", "hint", "sort", NULL};
    bson_iter_t it;
    if (!opts) return;
    for (const char *const *k = keys; *k; k++)
        if (bson_iter_init_find(&it, opts, *k)) bson_append_iter(dst, *k, -1, &it);
}

static bool add_update(mqc_bulk_t *b, const bson_t *filter, const bson_t *update, const bson_t *opts, bool multi,
                       bool replace, mqc_error_t *error)
{
    if (!filter || !update) return invalid(b, error, "update: filter and update are required");
    bool pipe = !replace && is_pipeline(update);
    if (replace && first_key_is_operator(update))
        return invalid(b, error, "replace_one: the replacement must not contain update operators");
    if (!replace && !pipe && !first_key_is_operator(update))
        return invalid(b, error, "update: the update must contain update operators ($set, ...) or be a pipeline");
    wmodel_t *m = add_model(b, W_UPDATE);
    BSON_APPEND_DOCUMENT(m->doc, "q", filter);
    if (pipe) BSON_APPEND_ARRAY(m->doc, "u", update);
    else BSON_APPEND_DOCUMENT(m->doc, "u", update);
    BSON_APPEND_BOOL(m->doc, "multi", multi);
    b->multi |= multi;
    append_model_opts(m->doc, opts);
    return true;
}

bool mqc_bulk_update_one(mqc_bulk_t *b, const bson_t *f, const bson_t *u, const bson_t *o, mqc_error_t *e)
{
    return add_update(b, f, u, o, false, false, e);
}
bool mqc_bulk_update_many(mqc_bulk_t *b, const bson_t *f, const bson_t *u, const bson_t *o, mqc_error_t *e)
{
    return add_update(b, f, u, o, true, false, e);
}
bool mqc_bulk_replace_one(mqc_bulk_t *b, const bson_t *f, const bson_t *r, const bson_t *o, mqc_error_t *e)
{
    return add_update(b, f, r, o, false, true, e);
}

static bool add_delete(mqc_bulk_t *b, const bson_t *filter, const bson_t *opts, int limit, mqc_error_t *error)
{
    static const char *const keys[] = {"collation", "hint", NULL};
    bson_iter_t it;
    if (!filter) return invalid(b, error, "delete: no filter");
    wmodel_t *m = add_model(b, W_DELETE);
    BSON_APPEND_DOCUMENT(m->doc, "q", filter);
    BSON_APPEND_INT32(m->doc, "limit", limit);
    b->multi |= limit == 0;
    for (const char *const *k = keys; opts && *k; k++)
        if (bson_iter_init_find(&it, opts, *k)) bson_append_iter(m->doc, *k, -1, &it);
    return true;
}

bool mqc_bulk_delete_one(mqc_bulk_t *b, const bson_t *f, const bson_t *o, mqc_error_t *e)
{
    return add_delete(b, f, o, 1, e);
}
bool mqc_bulk_delete_many(mqc_bulk_t *b, const bson_t *f, const bson_t *o, mqc_error_t *e)
{
    return add_delete(b, f, o, 0, e);
}

/* ---- execution ---------------------------------------------------------------------------- */

static size_t run_length(const mqc_bulk_t *b, size_t from)
{
    size_t i = from;
    while (i < b->n && b->models[i].kind == b->models[from].kind) i++;
    return i - from;
}

static bool bulk_encode(mqc_op_t *op, const mqc_server_caps_t *caps, mqc_buf_t *buf, int32_t rid,
                        bool *unacked, mqc_error_t *error)
{
    exec_t *x = op->impl;
    mqc_bulk_t *b = x->bulk;
    static const char *const handled[] = {"ordered", "upsert", "arrayFilters", "collation", "hint", "sort", NULL};
    size_t run = run_length(b, x->next);
    wkind_t kind = b->models[x->next].kind;
    bson_t body;
    bson_init(&body);
    /* Without options that reach the body: from prebuilt bytes (hotcmd.c), the same bytes. */
    if (!mqc_hotcmd_write_body(&body, kind_cmd[kind], b->coll, b->db, b->ordered, &b->opts, handled, &x->wc_opts)) {
        bson_append_utf8(&body, kind_cmd[kind], -1, b->coll, -1);
        BSON_APPEND_BOOL(&body, "ordered", b->ordered);
        mqc_copy_passthrough_opts(&body, &b->opts, handled);
        bson_concat(&body, &x->wc_opts);
        BSON_APPEND_UTF8(&body, "$db", b->db);
    }
    /* Each batch is its own retryable write on the op's session; its retry (same x->next)
     * reuses the number. lsid and txnNumber join the body in mqc_op_msg_body. */
    if (op->txn_ok && (op->txn_number == 0 || x->txn_batch != x->next)) {
        mqc_op_next_txn(op);
        x->txn_batch = x->next;
    }

    size_t sizes_small[64], *sizes = run <= 64 ? sizes_small : malloc(run * sizeof *sizes);
    if (!sizes) abort();
    for (size_t i = 0; i < run; i++) sizes[i] = b->models[x->next + i].doc->len;
    size_t fit = mqc_wire_batch_fit(sizes, run, 0, body.len + MQC_SESSION_EXT_MAX, strlen(kind_seq[kind]),
                                    &caps->limits);
    if (sizes != sizes_small) free(sizes);
    if (fit == 0) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_TOO_LARGE,
                      "%s: document %zu is %u bytes, beyond the server's maxBsonObjectSize (%d)",
                      kind_cmd[kind], x->next, b->models[x->next].doc->len,
                      caps->limits.max_bson_object_size);
        bson_destroy(&body);
        return false;
    }
    *unacked = x->unacked;
    mqc_wire_msg_begin(buf, rid, x->unacked ? MQC_MSG_MORE_TO_COME : 0);
    mqc_op_msg_body(op, buf, &body);
    mqc_wire_msg_seq_begin(buf, kind_seq[kind]);
    for (size_t i = 0; i < fit; i++)
        mqc_wire_msg_seq_add(buf, bson_get_data(b->models[x->next + i].doc), b->models[x->next + i].doc->len);
    mqc_wire_msg_seq_end(buf);
    mqc_wire_msg_end(buf);
    bson_destroy(&body);
    x->batch_start = x->next;
    x->batch_n = fit;
    op->name = kind_cmd[kind];
    return true;
}

/* The bulk's result, handed back to op (which finishes the op and frees out->tmp). */
static mqc_step_t finish_result(mqc_op_t *op, mqc_op_outcome_t *out)
{
    exec_t *x = op->impl;
    bson_t *r = &out->tmp;
    bson_init(r);
    if (x->unacked) {
        BSON_APPEND_BOOL(r, "acknowledged", false);
    } else {
        BSON_APPEND_INT64(r, "insertedCount", x->res.inserted);
        BSON_APPEND_INT64(r, "matchedCount", x->res.matched);
        BSON_APPEND_INT64(r, "modifiedCount", x->res.modified);
        BSON_APPEND_INT64(r, "deletedCount", x->res.deleted);
        BSON_APPEND_INT64(r, "upsertedCount", x->res.upserted);
        BSON_APPEND_DOCUMENT(r, "upsertedIds", &x->res.upserted_ids);
        if (x->bulk->report_inserted_id && x->res.inserted == 1) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, x->bulk->models[0].doc, "_id"))
                bson_append_iter(r, "insertedId", -1, &it);
        }
        if (x->res.n_write_errors) BSON_APPEND_ARRAY(r, "writeErrors", &x->res.write_errors);
        if (x->res.n_wc_errors) BSON_APPEND_ARRAY(r, "writeConcernErrors", &x->res.wc_errors);
    }
    out->tmp_used = true;
    out->reply = r;
    out->error = NULL;
    if (x->res.has_error) {
        out->err = x->res.first_error;
        out->error = &out->err;
    }
    return MQC_STEP_DONE;
}

static mqc_step_t bulk_on_reply(mqc_op_t *op, const bson_t *reply, mqc_op_outcome_t *out)
{
    exec_t *x = op->impl;
    mqc_bulk_t *b = x->bulk;
    if (!out->ok) {
        /* The whole command failed: what earlier batches did stays in the result. */
        x->res.first_error = out->err;
        x->res.has_error = true;
        return finish_result(op, out);
    }
    wkind_t kind = b->models[x->batch_start].kind;
    bool stop = mqc_write_result_fold(&x->res, (mqc_write_kind_t) kind, x->batch_start, x->batch_n, reply) &&
                b->ordered;
    x->next = x->batch_start + x->batch_n;
    if (stop || x->next >= b->n) return finish_result(op, out);
    return MQC_STEP_AGAIN;
}

static mqc_step_t bulk_on_sent(mqc_op_t *op, mqc_op_outcome_t *out)
{
    exec_t *x = op->impl;
    x->next = x->batch_start + x->batch_n;
    if (x->next >= x->bulk->n) return finish_result(op, out);
    return MQC_STEP_AGAIN;
}

static void bulk_exec_destroy(mqc_op_t *op)
{
    exec_t *x = op->impl;
    if (!x) return;
    mqc_bulk_destroy(x->bulk);
    mqc_write_result_cleanup(&x->res);
    bson_destroy(&x->wc_opts);
    free(x);
}

static const mqc_op_vt_t bulk_vt = {"bulk", bulk_encode, bulk_on_reply, bulk_on_sent, bulk_exec_destroy, NULL, -1};

mqc_op_t *mqc_bulk_execute(mqc_bulk_t *b, mqc_reply_cb cb, void *ud)
{
    exec_t *x = calloc(1, sizeof *x);
    if (!x) abort();
    x->bulk = b;
    mqc_write_result_init(&x->res);
    bson_init(&x->wc_opts);
    mqc_apply_write_concern(b->client, &x->wc_opts, &b->opts, &x->unacked);
    mqc_op_t *op = mqc_op_new(b->client, &bulk_vt, b->n ? kind_cmd[b->models[0].kind] : "bulk", b->db, cb, ud);
    op->impl = x;
    op->is_write = true;
    /* The retryable writes specification excludes multi-document statements (updateMany,
     * deleteMany): a server refuses them with a txnNumber, and a retry could apply them twice.
     * As other drivers do, such a bulk is not retryable as a whole. */
    op->retry = x->unacked || b->multi ? MQC_RETRY_NONE : MQC_RETRY_WRITE;
    op->no_session = x->unacked; /* the sessions specification: no implicit session for w: 0 */
    mqc_op_set_timeout_from(op, &b->opts);
    if (b->has_invalid) mqc_op_fail_early(op, b->invalid.domain, b->invalid.code, "%s", b->invalid.message);
    else if (b->n == 0) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "a bulk write needs at least one operation");
    return mqc_op_submit(op);
}

/* ---- the CRUD spec's single writes, as one-model bulks ------------------------------------ */

#define BULK_ONE(add_call)                                      \
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, opts);        \
    mqc_error_t ignored;                                        \
    (void) (add_call);                                          \
    return mqc_bulk_execute(b, cb, ud)

mqc_op_t *mqc_collection_insert_one(mqc_collection_t *coll, const bson_t *doc, const bson_t *opts,
                                    mqc_reply_cb cb, void *ud)
{
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, opts);
    mqc_error_t ignored;
    b->report_inserted_id = true;
    mqc_bulk_insert(b, doc, &ignored);
    return mqc_bulk_execute(b, cb, ud);
}

mqc_op_t *mqc_collection_insert_many(mqc_collection_t *coll, const bson_t *const *docs, size_t n,
                                     const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, opts);
    mqc_error_t ignored;
    if (!docs && n) invalid(b, &ignored, "insert_many: no documents");
    for (size_t i = 0; docs && i < n; i++) mqc_bulk_insert(b, docs[i], &ignored);
    return mqc_bulk_execute(b, cb, ud);
}

mqc_op_t *mqc_collection_update_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *update,
                                    const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    BULK_ONE(add_update(b, filter, update, opts, false, false, &ignored));
}

mqc_op_t *mqc_collection_update_many(mqc_collection_t *coll, const bson_t *filter, const bson_t *update,
                                     const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    BULK_ONE(add_update(b, filter, update, opts, true, false, &ignored));
}

mqc_op_t *mqc_collection_replace_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *replacement,
                                     const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    BULK_ONE(add_update(b, filter, replacement, opts, false, true, &ignored));
}

mqc_op_t *mqc_collection_delete_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                    mqc_reply_cb cb, void *ud)
{
    BULK_ONE(add_delete(b, filter, opts, 1, &ignored));
}

mqc_op_t *mqc_collection_delete_many(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                     mqc_reply_cb cb, void *ud)
{
    BULK_ONE(add_delete(b, filter, opts, 0, &ignored));
}

/* ---- findAndModify: find_one_and_update / _replace / _delete ---------------------------- */

/* findAndModify's result: the reply, failed by its writeConcernError when it has one. */
static bool fam_result(mqc_cmd_result_t *r)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, r->reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t wce;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&wce, data, len)) {
            mqc_error_from_reply(&r->error, MQC_ERROR_WRITE_CONCERN, &wce);
            return false;
        }
    }
    return true;
}

typedef enum { FAM_UPDATE, FAM_REPLACE, FAM_DELETE } fam_kind_t;

static mqc_op_t *find_and_modify(mqc_collection_t *coll, const bson_t *filter, const bson_t *update, const bson_t *opts,
                                 fam_kind_t kind, mqc_reply_cb cb, void *ud)
{
    static const char *const handled[] = {"returnDocument", "projection", NULL};
    bson_t cmd, empty;
    bson_iter_t it;
    bool unacked;
    const char *bad = NULL;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "findAndModify", -1, coll->name, -1);
    BSON_APPEND_DOCUMENT(&cmd, "query", or_empty(filter, &empty));
    if (kind == FAM_DELETE) {
        BSON_APPEND_BOOL(&cmd, "remove", true);
    } else if (!update) {
        bad = "no update document";
    } else {
        bson_iter_t f;
        bool op_first = bson_iter_init(&f, update) && bson_iter_next(&f) && bson_iter_key(&f)[0] == '$';
        bool pipe = bson_iter_init(&f, update) && bson_iter_next(&f) && !strcmp(bson_iter_key(&f), "0");
        if (kind == FAM_UPDATE && !op_first && !pipe) bad = "the update must contain update operators or be a pipeline";
        if (kind == FAM_REPLACE && op_first) bad = "the replacement must not contain update operators";
        if (pipe && kind == FAM_UPDATE) BSON_APPEND_ARRAY(&cmd, "update", update);
        else BSON_APPEND_DOCUMENT(&cmd, "update", update);
        bool after = opts && bson_iter_init_find(&it, opts, "returnDocument") && BSON_ITER_HOLDS_UTF8(&it) &&
                     strcmp(bson_iter_utf8(&it, NULL), "after") == 0;
        BSON_APPEND_BOOL(&cmd, "new", after);
    }
    if (opts && bson_iter_init_find(&it, opts, "projection")) bson_append_iter(&cmd, "fields", -1, &it);
    mqc_copy_passthrough_opts(&cmd, opts, handled);
    mqc_apply_write_concern(coll->client, &cmd, opts, &unacked);
    BSON_APPEND_UTF8(&cmd, "$db", coll->db);
    mqc_op_t *op = mqc_cmd_op_take(coll->client, coll->db, &cmd, cb, ud);
    ((mqc_cmd_impl_t *) op->impl)->result = fam_result;
    mqc_op_set_timeout_from(op, opts);
    op->is_write = true;
    /* {w: 0}: sent with moreToCome, as the other writes are; there is no document to report. */
    op->unacked = unacked;
    /* findAndModify is a retryable write (when acknowledged). */
    op->retry = unacked ? MQC_RETRY_NONE : MQC_RETRY_WRITE;
    op->no_session = unacked; /* the sessions specification: no implicit session for w: 0 */
    if (bad) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "findAndModify: %s", bad);
    return mqc_op_submit(op);
}

mqc_op_t *mqc_collection_find_one_and_update(mqc_collection_t *coll, const bson_t *filter, const bson_t *update,
                                             const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    return find_and_modify(coll, filter, update, opts, FAM_UPDATE, cb, ud);
}

mqc_op_t *mqc_collection_find_one_and_replace(mqc_collection_t *coll, const bson_t *filter,
                                              const bson_t *replacement, const bson_t *opts, mqc_reply_cb cb,
                                              void *ud)
{
    return find_and_modify(coll, filter, replacement, opts, FAM_REPLACE, cb, ud);
}

mqc_op_t *mqc_collection_find_one_and_delete(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                             mqc_reply_cb cb, void *ud)
{
    return find_and_modify(coll, filter, NULL, opts, FAM_DELETE, cb, ud);
}
