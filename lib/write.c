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
 * bson_t that outgrew libbson's inline buffer points into its own struct and cannot move. The
 * document is ours (aligned_alloc, bson_init: bson_destroy frees a grown buffer but not the struct), so
 * that a free-listed bulk keeps it and drops only a buffer grown too large. */
typedef struct {
    wkind_t kind;
    uint32_t grown;    /* kept in a free bulk: the most doc's grown buffer held (0: inline) */
    bson_t *doc;       /* insert: the document; update: {q, u, multi, upsert...}; delete: {q, limit...} */
} wmodel_t;

/* A bulk and its execution in one allocation. A single write is a bulk of one, so the client
 * keeps freed bulks (mqc_ops_t.free_bulks) with their model array, model documents, collection
 * name buffer and result buffer: a steady stream of writes allocates nothing. */
struct mqc_bulk {
    mqc_client_t *client;
    mqc_bulk_t *next_free;      /* in the client's free-list */
    wmodel_t *models;           /* [0, n) in use; [n, cap) NULL or an empty document kept */
    size_t n, cap;
    char *coll;
    size_t coll_cap;
    const char *invalid;        /* the first invalid model's message (static): reported at execute */
    bool has_opts;              /* opts is initialised: the caller's options were not empty */
    bool ordered;
    bool report_inserted_id;    /* insert_one */
    bool multi;                 /* holds an updateMany or deleteMany: not a retryable write */
    bool unacked;
    uint8_t id_type;            /* insert_one: its _id's type (0: not known, the result is built the
                                 * generic way), value offset and length (0 for null, minKey...) */
    uint32_t id_off, id_len;
    char db[64];
    /* execution */
    size_t next;                /* first model not yet sent */
    size_t batch_start, batch_n;
    size_t txn_batch;           /* the batch (its first model) op->txn_number belongs to */
    bson_t opts;
    bson_t wc_opts;             /* {writeConcern: ...} resolved once */
    bson_t result_view;         /* the result in result_buf, when it fits */
    mqc_write_result_t res;     /* counts and errors of the replies so far (reply.c) */
    uint8_t result_buf[256];
};

/* A freed bulk keeps its model array up to this many models, and their documents' grown buffers
 * up to this many bytes in all (a larger one gives them back). */
#define MODELS_KEEP 8
#define DOCS_KEEP 4096

static const bson_t *opts_of(const mqc_bulk_t *b) { return b->has_opts ? &b->opts : NULL; }

static void bulk_free(mqc_bulk_t *b)
{
    for (size_t i = 0; i < b->cap; i++) {
        if (!b->models[i].doc) continue;
        bson_destroy(b->models[i].doc);
        free(b->models[i].doc);
    }
    free(b->models);
    if (b->has_opts) bson_destroy(&b->opts);
    free(b->coll);
    free(b);
}

static mqc_bulk_t *bulk_get(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_bulk_t *b = q->free_bulks;
    if (b) {
        q->free_bulks = b->next_free;
        q->n_free_bulks--;
    } else {
        /* aligned: libbson declares bson_t 128-byte aligned (the struct's are) */
        b = aligned_alloc(_Alignof(mqc_bulk_t), sizeof *b);
        if (!b) abort();
        memset(b, 0, sizeof *b);
    }
    b->client = client;
    b->next_free = NULL;
    b->n = 0;
    b->invalid = NULL;
    b->has_opts = b->multi = b->unacked = b->report_inserted_id = false;
    b->ordered = true;
    b->id_type = 0;
    b->id_len = 0;
    return b;
}

/* Back to the client's free-list (an executed bulk: its op is being freed, so the client is
 * alive), emptied of this write's documents. */
static void bulk_release(mqc_bulk_t *b)
{
    mqc_ops_t *q = mqc_ops_of(b->client);
    if (q->closing || q->n_free_bulks + 1 > MQC_FREE_LIST_MAX) {
        bulk_free(b);
        return;
    }
    if (b->has_opts) bson_destroy(&b->opts);
    b->has_opts = false;
    if (b->cap > MODELS_KEEP) {
        for (size_t i = 0; i < b->cap; i++) {
            if (!b->models[i].doc) continue;
            bson_destroy(b->models[i].doc);
            free(b->models[i].doc);
        }
        free(b->models);
        b->models = NULL;
        b->cap = 0;
    } else {
        /* A reinit keeps a buffer that outgrew the inline one, and a later small document does
         * not shrink it: what a model keeps is the most its document held since it grew. */
        size_t kept = 0;
        for (size_t i = 0; i < b->cap; i++) {
            wmodel_t *m = &b->models[i];
            if (!m->doc) continue;
            if (m->doc->len > 120 && m->doc->len > m->grown) m->grown = m->doc->len; /* past the inline 120 */
            kept += m->grown;
            if (m->grown && kept > DOCS_KEEP) {
                bson_destroy(m->doc); /* the grown buffer only: the struct is ours */
                bson_init(m->doc);
                kept -= m->grown;
                m->grown = 0;
            } else {
                bson_reinit(m->doc);
            }
        }
    }
    b->next_free = q->free_bulks;
    q->free_bulks = b;
    q->n_free_bulks++;
}

void mqc_bulk_free_list_drain(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_bulk_t *b;
    while ((b = q->free_bulks)) {
        q->free_bulks = b->next_free;
        bulk_free(b);
    }
    q->n_free_bulks = 0;
}

mqc_bulk_t *mqc_collection_bulk_new(mqc_collection_t *coll, const bson_t *opts)
{
    mqc_bulk_t *b = bulk_get(coll->client);
    bson_iter_t it;
    /* as snprintf into db did: a longer name is cut (MongoDB's database names are shorter) */
    size_t db_n = strlen(coll->db), coll_n = strlen(coll->name) + 1;
    if (db_n >= sizeof b->db) db_n = sizeof b->db - 1;
    memcpy(b->db, coll->db, db_n);
    b->db[db_n] = 0;
    if (coll_n > b->coll_cap) {
        free(b->coll);
        b->coll_cap = coll_n < 64 ? 64 : coll_n;
        b->coll = malloc(b->coll_cap);
        if (!b->coll) abort();
    }
    memcpy(b->coll, coll->name, coll_n);
    /* Empty options are no options: what reads them (write concern, timeoutMS, the body's
     * passthrough keys) is skipped at once. */
    if (opts && !bson_empty(opts)) {
        bson_copy_to(opts, &b->opts);
        b->has_opts = true;
        if (bson_iter_init_find(&it, opts, "ordered")) b->ordered = bson_iter_as_bool(&it);
    }
    return b;
}

void mqc_bulk_destroy(mqc_bulk_t *b)
{
    /* Never executed: the application may destroy it after the client, so not to the free-list. */
    if (b) bulk_free(b);
}

static wmodel_t *add_model(mqc_bulk_t *b, wkind_t kind)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        b->models = realloc(b->models, cap * sizeof *b->models);
        if (!b->models) abort();
        memset(b->models + b->cap, 0, (cap - b->cap) * sizeof *b->models);
        b->cap = cap;
    }
    wmodel_t *m = &b->models[b->n++];
    m->kind = kind;
    if (!m->doc) {
        m->doc = aligned_alloc(_Alignof(bson_t), sizeof *m->doc);
        if (!m->doc) abort();
        bson_init(m->doc);
    }
    return m;
}

static bool invalid(mqc_bulk_t *b, mqc_error_t *error, const char *msg)
{
    mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "%s", msg);
    if (!b->invalid) b->invalid = msg;
    return false;
}

/* ---- model documents, written as the generic appends would write them --------------------- */

/* The model documents are written from their parts' bytes (the layouts are BSON's, as in
 * hotcmd.c): the same bytes as libbson's appends, which run instead when mqc_hotcmd_off is set
 * (tests compare the two) or the buffer cannot be had. NULL: build them the generic way. */
static uint8_t *model_bytes(bson_t *doc, size_t total)
{
    if (mqc_hotcmd_off || total > INT32_MAX || !bson_empty(doc)) return NULL;
    uint8_t *p = bson_reserve_buffer(doc, (uint32_t) total);
    if (!p) return NULL;
    uint32_t le = BSON_UINT32_TO_LE((uint32_t) total);
    memcpy(p, &le, 4);
    p[total - 1] = 0;
    return p + 4;
}

/* An embedded document element: type, key (n bytes with its NUL), the document's bytes. */
static uint8_t *put_doc(uint8_t *p, uint8_t type, const char *key, size_t n, const bson_t *doc)
{
    *p++ = type;
    memcpy(p, key, n);
    memcpy(p + n, bson_get_data(doc), doc->len);
    return p + n + doc->len;
}

/* The first key of doc, or "" when it has none. */
static const char *first_key(const bson_t *doc)
{
    bson_iter_t it;
    return bson_iter_init(&it, doc) && bson_iter_next(&it) ? bson_iter_key(&it) : "";
}

/* Finds doc's "_id" (usually its first key: looked at before the general search). */
static bool find_id(bson_iter_t *it, const bson_t *doc)
{
    if (!bson_iter_init(it, doc) || !bson_iter_next(it)) return false;
    const char *k = bson_iter_key(it);
    if (k[0] == '_' && k[1] == 'i' && k[2] == 'd' && k[3] == 0) return true;
    return bson_iter_find(it, "_id");
}

bool mqc_bulk_insert(mqc_bulk_t *b, const bson_t *doc, mqc_error_t *error)
{
    bson_iter_t it;
    if (!doc) return invalid(b, error, "insert: no document");
    wmodel_t *m = add_model(b, W_INSERT);
    bool first = b->n == 1 && b->report_inserted_id;
    uint8_t *p;
    /* The CRUD spec has drivers add _id, first, so that the application learns it. */
    if (!find_id(&it, doc)) {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        if ((p = model_bytes(m->doc, doc->len + 1 + 4 + sizeof oid))) {
            *p++ = BSON_TYPE_OID;
            memcpy(p, "_id", 4);
            memcpy(p + 4, &oid, sizeof oid);
            memcpy(p + 4 + sizeof oid, bson_get_data(doc) + 4, doc->len - 5);
        } else {
            BSON_APPEND_OID(m->doc, "_id", &oid);
            bson_concat(m->doc, doc);
        }
        if (first) b->id_type = BSON_TYPE_OID, b->id_off = 4 + 1 + 4, b->id_len = sizeof oid;
        return true;
    }
    if ((p = model_bytes(m->doc, doc->len))) memcpy(p, bson_get_data(doc) + 4, doc->len - 5);
    else bson_concat(m->doc, doc);
    if (first) {
        /* where the value is, for the result's insertedId: the document's bytes are m's */
        const uint8_t *data = bson_get_data(doc);
        const uint8_t *val = (const uint8_t *) bson_iter_key(&it) + 4;
        bson_iter_t nx = it;
        const uint8_t *end = bson_iter_next(&nx) ? (const uint8_t *) bson_iter_key(&nx) - 1 : data + doc->len - 1;
        b->id_type = (uint8_t) bson_iter_type(&it);
        b->id_off = (uint32_t) (val - data);
        b->id_len = (uint32_t) (end - val);
    }
    return true;
}

static void append_model_opts(bson_t *dst, const bson_t *opts)
{
    static const char *const keys[] = {"upsert", "arrayFilters", "collation", "hint", "sort", NULL};
    bson_iter_t it;
    if (!opts || bson_empty(opts)) return;
    for (const char *const *k = keys; *k; k++)
        if (bson_iter_init_find(&it, opts, *k)) bson_append_iter(dst, *k, -1, &it);
}

static bool add_update(mqc_bulk_t *b, const bson_t *filter, const bson_t *update, const bson_t *opts, bool multi,
                       bool replace, mqc_error_t *error)
{
    if (!filter || !update) return invalid(b, error, "update: filter and update are required");
    /* An update document must start with an operator, or be a pipeline (array keys "0", "1"...). */
    const char *k = first_key(update);
    bool op_first = k[0] == '$', pipe = !replace && strcmp(k, "0") == 0;
    if (replace && op_first) return invalid(b, error, "replace_one: the replacement must not contain update operators");
    if (!replace && !pipe && !op_first)
        return invalid(b, error, "update: the update must contain update operators ($set, ...) or be a pipeline");
    wmodel_t *m = add_model(b, W_UPDATE);
    uint8_t t = pipe ? BSON_TYPE_ARRAY : BSON_TYPE_DOCUMENT;
    uint8_t *p = model_bytes(m->doc, 4 + 3 + filter->len + 3 + update->len + 8 + 1);
    if (p) {
        p = put_doc(p, BSON_TYPE_DOCUMENT, "q", 2, filter);
        p = put_doc(p, t, "u", 2, update);
        *p++ = BSON_TYPE_BOOL;
        memcpy(p, "multi", 6);
        p[6] = multi;
    } else {
        BSON_APPEND_DOCUMENT(m->doc, "q", filter);
        if (pipe) BSON_APPEND_ARRAY(m->doc, "u", update);
        else BSON_APPEND_DOCUMENT(m->doc, "u", update);
        BSON_APPEND_BOOL(m->doc, "multi", multi);
    }
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
    uint8_t *p = model_bytes(m->doc, 4 + 3 + filter->len + 11 + 1);
    if (p) {
        p = put_doc(p, BSON_TYPE_DOCUMENT, "q", 2, filter);
        *p++ = BSON_TYPE_INT32;
        memcpy(p, "limit", 6);
        uint32_t le = BSON_UINT32_TO_LE((uint32_t) limit);
        memcpy(p + 6, &le, 4);
    } else {
        BSON_APPEND_DOCUMENT(m->doc, "q", filter);
        BSON_APPEND_INT32(m->doc, "limit", limit);
    }
    b->multi |= limit == 0;
    for (const char *const *k = keys; opts && !bson_empty(opts) && *k; k++)
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
    mqc_bulk_t *b = op->impl;
    static const char *const handled[] = {"ordered", "upsert", "arrayFilters", "collation", "hint", "sort", NULL};
    size_t run = run_length(b, b->next);
    wkind_t kind = b->models[b->next].kind;
    bson_t body;
    bson_init(&body);
    /* Without options that reach the body: from prebuilt bytes (hotcmd.c), the same bytes. */
    if (!mqc_hotcmd_write_body(&body, kind_cmd[kind], b->coll, b->db, b->ordered, opts_of(b), handled, &b->wc_opts)) {
        bson_append_utf8(&body, kind_cmd[kind], -1, b->coll, -1);
        BSON_APPEND_BOOL(&body, "ordered", b->ordered);
        mqc_copy_passthrough_opts(&body, opts_of(b), handled);
        bson_concat(&body, &b->wc_opts);
        BSON_APPEND_UTF8(&body, "$db", b->db);
    }
    /* Each batch is its own retryable write on the op's session; its retry (same b->next)
     * reuses the number. lsid and txnNumber join the body in mqc_op_msg_body. */
    if (op->txn_ok && (op->txn_number == 0 || b->txn_batch != b->next)) {
        mqc_op_next_txn(op);
        b->txn_batch = b->next;
    }

    size_t sizes_small[64], *sizes = run <= 64 ? sizes_small : malloc(run * sizeof *sizes);
    if (!sizes) abort();
    for (size_t i = 0; i < run; i++) sizes[i] = b->models[b->next + i].doc->len;
    size_t fit = mqc_wire_batch_fit(sizes, run, 0, body.len + MQC_SESSION_EXT_MAX, strlen(kind_seq[kind]),
                                    &caps->limits);
    if (sizes != sizes_small) free(sizes);
    if (fit == 0) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_TOO_LARGE,
                      "%s: document %zu is %u bytes, beyond the server's maxBsonObjectSize (%d)",
                      kind_cmd[kind], b->next, b->models[b->next].doc->len,
                      caps->limits.max_bson_object_size);
        bson_destroy(&body);
        return false;
    }
    *unacked = b->unacked;
    mqc_wire_msg_begin(buf, rid, b->unacked ? MQC_MSG_MORE_TO_COME : 0);
    mqc_op_msg_body(op, buf, &body);
    mqc_wire_msg_seq_begin(buf, kind_seq[kind]);
    for (size_t i = 0; i < fit; i++)
        mqc_wire_msg_seq_add(buf, bson_get_data(b->models[b->next + i].doc), b->models[b->next + i].doc->len);
    mqc_wire_msg_seq_end(buf);
    mqc_wire_msg_end(buf);
    bson_destroy(&body);
    b->batch_start = b->next;
    b->batch_n = fit;
    op->name = kind_cmd[kind];
    return true;
}

static uint8_t *put_i64(uint8_t *p, const char *key, size_t n, int64_t v)
{
    uint64_t le = BSON_UINT64_TO_LE((uint64_t) v);
    *p++ = BSON_TYPE_INT64;
    memcpy(p, key, n);
    memcpy(p + n, &le, 8);
    return p + n + 8;
}
#define PUT_I64(p, key, v) put_i64(p, key, sizeof key, v)

/* The result of a bulk without write errors or write concern errors, written into result_buf
 * when it fits (the same bytes as finish_result's appends): NULL when it does not. */
static const bson_t *result_inline(mqc_bulk_t *b)
{
    const mqc_write_result_t *r = &b->res;
    const bson_t *ups = &r->upserted_ids;
    bool with_id = b->report_inserted_id && r->inserted == 1;
    if (with_id && !b->id_type) return NULL;
    size_t total = 4 + 5 * 9 + sizeof "insertedCount" * 3 + sizeof "deletedCount" * 2 + 1 + sizeof "upsertedIds" +
                   ups->len + (with_id ? 1 + sizeof "insertedId" + b->id_len : 0) + 1;
    if (mqc_hotcmd_off || r->n_write_errors || r->n_wc_errors || total > sizeof b->result_buf) return NULL;
    uint8_t *p = b->result_buf + 4;
    p = PUT_I64(p, "insertedCount", r->inserted);
    p = PUT_I64(p, "matchedCount", r->matched);
    p = PUT_I64(p, "modifiedCount", r->modified);
    p = PUT_I64(p, "deletedCount", r->deleted);
    p = PUT_I64(p, "upsertedCount", r->upserted);
    p = put_doc(p, BSON_TYPE_DOCUMENT, "upsertedIds", sizeof "upsertedIds", ups);
    if (with_id) {
        *p++ = b->id_type;
        memcpy(p, "insertedId", sizeof "insertedId");
        p += sizeof "insertedId";
        memcpy(p, bson_get_data(b->models[0].doc) + b->id_off, b->id_len);
        p += b->id_len;
    }
    *p = 0;
    uint32_t le = BSON_UINT32_TO_LE((uint32_t) total);
    memcpy(b->result_buf, &le, 4);
    if (!bson_init_static(&b->result_view, b->result_buf, total)) return NULL;
    return &b->result_view;
}

/* The bulk's result, handed back to op (which finishes the op and frees out->tmp). It lives in
 * the bulk (result_buf) or in out->tmp, until the op is freed after its callback. */
static mqc_step_t finish_result(mqc_op_t *op, mqc_op_outcome_t *out)
{
    mqc_bulk_t *b = op->impl;
    bson_t *r = &out->tmp;
    out->tmp_used = false;
    out->error = NULL;
    if (b->res.has_error) out->error = &b->res.first_error;
    if (!b->unacked && (out->reply = result_inline(b))) return MQC_STEP_DONE;
    bson_init(r);
    if (b->unacked) {
        BSON_APPEND_BOOL(r, "acknowledged", false);
    } else {
        BSON_APPEND_INT64(r, "insertedCount", b->res.inserted);
        BSON_APPEND_INT64(r, "matchedCount", b->res.matched);
        BSON_APPEND_INT64(r, "modifiedCount", b->res.modified);
        BSON_APPEND_INT64(r, "deletedCount", b->res.deleted);
        BSON_APPEND_INT64(r, "upsertedCount", b->res.upserted);
        BSON_APPEND_DOCUMENT(r, "upsertedIds", &b->res.upserted_ids);
        if (b->report_inserted_id && b->res.inserted == 1) {
            bson_iter_t it;
            if (bson_iter_init_find(&it, b->models[0].doc, "_id")) bson_append_iter(r, "insertedId", -1, &it);
        }
        if (b->res.n_write_errors) BSON_APPEND_ARRAY(r, "writeErrors", &b->res.write_errors);
        if (b->res.n_wc_errors) BSON_APPEND_ARRAY(r, "writeConcernErrors", &b->res.wc_errors);
    }
    out->tmp_used = true;
    out->reply = r;
    return MQC_STEP_DONE;
}

static mqc_step_t bulk_on_reply(mqc_op_t *op, const bson_t *reply, mqc_op_outcome_t *out)
{
    mqc_bulk_t *b = op->impl;
    if (!out->ok) {
        /* The whole command failed: what earlier batches did stays in the result. */
        b->res.first_error = out->err;
        b->res.has_error = true;
        return finish_result(op, out);
    }
    wkind_t kind = b->models[b->batch_start].kind;
    bool stop = mqc_write_result_fold(&b->res, (mqc_write_kind_t) kind, b->batch_start, b->batch_n, reply,
                                      op->reply_scan) &&
                b->ordered;
    b->next = b->batch_start + b->batch_n;
    if (stop || b->next >= b->n) return finish_result(op, out);
    return MQC_STEP_AGAIN;
}

static mqc_step_t bulk_on_sent(mqc_op_t *op, mqc_op_outcome_t *out)
{
    mqc_bulk_t *b = op->impl;
    b->next = b->batch_start + b->batch_n;
    if (b->next >= b->n) return finish_result(op, out);
    return MQC_STEP_AGAIN;
}

static void bulk_exec_destroy(mqc_op_t *op)
{
    mqc_bulk_t *b = op->impl;
    if (!b) return;
    mqc_write_result_cleanup(&b->res);
    bson_destroy(&b->wc_opts);
    bulk_release(b);
}

static const mqc_op_vt_t bulk_vt = {"bulk", bulk_encode, bulk_on_reply, bulk_on_sent, bulk_exec_destroy, NULL, -1};

mqc_op_t *mqc_bulk_execute(mqc_bulk_t *b, mqc_reply_cb cb, void *ud)
{
    b->next = b->batch_start = b->batch_n = b->txn_batch = 0;
    mqc_write_result_init(&b->res);
    bson_init(&b->wc_opts);
    mqc_apply_write_concern(b->client, &b->wc_opts, opts_of(b), &b->unacked);
    mqc_op_t *op = mqc_op_new(b->client, &bulk_vt, b->n ? kind_cmd[b->models[0].kind] : "bulk", b->db, cb, ud);
    op->impl = b;
    op->is_write = true;
    /* The retryable writes specification excludes multi-document statements (updateMany,
     * deleteMany): a server refuses them with a txnNumber, and a retry could apply them twice.
     * As other drivers do, such a bulk is not retryable as a whole. */
    op->retry = b->unacked || b->multi ? MQC_RETRY_NONE : MQC_RETRY_WRITE;
    op->no_session = b->unacked; /* the sessions specification: no implicit session for w: 0 */
    mqc_op_set_timeout_from(op, opts_of(b));
    if (b->invalid) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "%s", b->invalid);
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
