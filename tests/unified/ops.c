/* The operations of the unified test format, each through mqc's public API, and the checks of
 * their results (expectResult, expectError, saveResultAsEntity). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <time.h>

#include "unified.h"
#include "../spec/spec.h"

/* ---- waiting for results ---------------------------------------------------------------------- */

typedef struct {
    bool done;
    bson_t *reply;                /* copy of the reply, or NULL */
    mqc_error_t err;
    bool has_err;
    bson_t **docs;                /* cursor documents */
    size_t n, cap;
} res_t;

static void res_free(res_t *r)
{
    if (r->reply) bson_destroy(r->reply);
    for (size_t i = 0; i < r->n; i++) bson_destroy(r->docs[i]);
    free(r->docs);
}

static void on_reply(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    res_t *r = ud;
    r->done = true;
    if (reply) r->reply = bson_copy(reply);
    if (error) {
        r->err = *error;
        r->has_err = true;
    }
}

static void push_doc(res_t *r, const bson_t *d)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        if (!(r->docs = realloc(r->docs, r->cap * sizeof *r->docs))) abort();
    }
    r->docs[r->n++] = bson_copy(d);
}

/* Drains a cursor: every batch, then done. */
static void on_batch_all(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    res_t *r = ud;
    if (error) {
        r->err = *error;
        r->has_err = r->done = true;
        return;
    }
    for (size_t i = 0; i < n; i++) push_doc(r, &docs[i]);
    if (!mqc_cursor_more(c) || !mqc_cursor_next(c)) r->done = true;
}

/* Runs the loop until *done; an operation that never ends is a failure of mqc (every operation
 * ends in one callback), reported by the caller as a missing result, not a hung run. */
static void wait_for(mqc_client_t *client, bool *done)
{
    for (int i = 0; i < 300 && !*done; i++) mqc_client_run_until_idle(client, 0.1);
}

/* ---- cursor entities -------------------------------------------------------------------------- */

struct ux_cursor {
    mqc_client_t *client;
    mqc_cursor_t *cursor;
    res_t r;                      /* documents not yet iterated are r.docs[head..n-1] */
    size_t head;
    bool batch_pending;
};

static void on_batch_one(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    struct ux_cursor *uc = ud;
    uc->batch_pending = false;
    if (error) {
        uc->r.err = *error;
        uc->r.has_err = true;
        return;
    }
    for (size_t i = 0; i < n; i++) push_doc(&uc->r, &docs[i]);
}

void ux_cursor_free(struct ux_cursor *c)
{
    if (!c) return;
    mqc_cursor_destroy(c->cursor);
    /* A batch still asked for calls back (cancelled) from the loop: not into freed memory. */
    for (int i = 0; i < 300 && c->batch_pending; i++) mqc_client_run_until_idle(c->client, 0.1);
    if (c->batch_pending) return; /* leaked rather than written after free */
    res_free(&c->r);
    free(c);
}

static struct ux_cursor *cursor_wrap(mqc_client_t *client)
{
    struct ux_cursor *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->client = client;
    c->batch_pending = true;
    return c;
}

static void cursor_wait(struct ux_cursor *c)
{
    for (int i = 0; i < 300 && c->batch_pending; i++) mqc_client_run_until_idle(c->client, 0.1);
}

/* ---- helpers ---------------------------------------------------------------------------------- */

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

static bool bad(call_t *c, const char *fmt, const char *what)
{
    char m[512];
    snprintf(m, sizeof m, fmt, what);
    return ux_set(&c->run->v, 1, "%s: %s", c->name, m);
}

static bool lacks(call_t *c, const char *feature)
{
    c->skip = true;
    return ux_set(&c->run->v, 2, SKIP_MQC "%s", feature);
}

static bool arg_doc(call_t *c, const char *key, bson_t *out, bool required)
{
    if (spec_sub(c->args, key, out)) return true;
    if (required) bad(c, "argument \"%s\" is missing or not a document", key);
    return false;
}

/* opts: every argument but the ones named (which the call takes apart itself). */
static bool opts_from_args(call_t *c, bson_t *opts, const char *const *taken)
{
    bson_iter_t it;
    bson_init(opts);
    if (!bson_iter_init(&it, c->args)) return true;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        bool skip = false;
        for (const char *const *t = taken; t && *t; t++)
            if (!strcmp(*t, k)) skip = true;
        if (skip) continue;
        if (!strcmp(k, "session")) {
            bson_destroy(opts);
            return lacks(c, "explicit sessions");
        }
        if (!strcmp(k, "rawData")) {
            bson_destroy(opts);
            return lacks(c, "the rawData option (left out for servers before 8.2)");
        }
        if (!strcmp(k, "timeoutMode") || !strcmp(k, "cursorType")) {
            bson_destroy(opts);
            return lacks(c, k);
        }
        if (!strcmp(k, "returnDocument")) {
            const char *v = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (strcmp(v, "Before") && strcmp(v, "After")) {
                bson_destroy(opts);
                return bad(c, "returnDocument \"%s\" is neither Before nor After", v);
            }
            BSON_APPEND_UTF8(opts, "returnDocument", !strcmp(v, "After") ? "after" : "before");
            continue;
        }
        bson_append_iter(opts, k, -1, &it);
    }
    /* The handle's options (collectionOptions, databaseOptions); runCommand takes none of them. */
    if (c->obj && c->obj->defaults && strcmp(c->name, "runCommand") && strcmp(c->name, "runCursorCommand") &&
        strcmp(c->name, "createCommandCursor") && bson_iter_init(&it, c->obj->defaults))
        while (bson_iter_next(&it))
            if (!bson_has_field(opts, bson_iter_key(&it))) bson_append_iter(opts, bson_iter_key(&it), -1, &it);
    return true;
}

static void set_result_doc(call_t *c, const bson_t *d)
{
    c->result.value_type = BSON_TYPE_DOCUMENT;
    c->result.value.v_doc.data = bson_malloc(d->len);
    memcpy(c->result.value.v_doc.data, bson_get_data(d), d->len);
    c->result.value.v_doc.data_len = d->len;
    c->has_result = true;
}

static void set_result_docs(call_t *c, bson_t **docs, size_t n)
{
    bson_t arr = BSON_INITIALIZER;
    char key[24];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_DOCUMENT(&arr, key, docs[i]);
    }
    set_result_doc(c, &arr);
    c->result.value_type = BSON_TYPE_ARRAY;
    bson_destroy(&arr);
}

static void set_result_field(call_t *c, const bson_t *d, const char *key)
{
    bson_iter_t it;
    if (d && bson_iter_init_find(&it, d, key)) {
        bson_value_copy(bson_iter_value(&it), &c->result);
        c->has_result = true;
    } else {
        c->result.value_type = BSON_TYPE_NULL;
        c->has_result = true;
    }
}

/* ---- write results ------------------------------------------------------------------------------ */

static void id_of(const bson_t *doc, bson_t *ids, size_t i)
{
    bson_iter_t it;
    char key[24];
    snprintf(key, sizeof key, "%zu", i);
    if (bson_iter_init_find(&it, doc, "_id")) bson_append_iter(ids, key, -1, &it);
}

/* A copy of doc with an ObjectId _id first when it has none (what the library adds). */
static bson_t *with_id(const bson_t *doc)
{
    bson_t *d = bson_new();
    if (!bson_has_field(doc, "_id")) {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(d, "_id", &oid);
    }
    bson_concat(d, doc);
    return d;
}

/* The CRUD spec's result of a write from mqc's normalised reply. */
static void write_result(call_t *c, const bson_t *reply, const char *kind, const bson_t *ids)
{
    bson_t out = BSON_INITIALIZER;
    bson_iter_t it, u;
    if (!reply) return;
    if (!strcmp(kind, "insertOne")) {
        if (ids && bson_iter_init_find(&it, ids, "0")) bson_append_iter(&out, "insertedId", -1, &it);
    } else if (!strcmp(kind, "delete")) {
        if (bson_iter_init_find(&it, reply, "deletedCount")) bson_append_iter(&out, "deletedCount", -1, &it);
    } else {
        static const char *const counts[] = {"insertedCount", "matchedCount", "modifiedCount", "deletedCount",
                                             "upsertedCount", NULL};
        bool bulk = !strcmp(kind, "bulk") || !strcmp(kind, "insertMany");
        for (int i = 0; counts[i]; i++)
            if (bson_iter_init_find(&it, reply, counts[i])) bson_append_iter(&out, counts[i], -1, &it);
        if (bulk && ids) BSON_APPEND_DOCUMENT(&out, "insertedIds", ids);
        if (bson_iter_init_find(&it, reply, "upsertedIds") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            if (bulk) bson_append_iter(&out, "upsertedIds", -1, &it);
            else if (bson_iter_recurse(&it, &u) && bson_iter_next(&u)) bson_append_iter(&out, "upsertedId", -1, &u);
        } else if (bulk) {
            bson_t empty = BSON_INITIALIZER;
            BSON_APPEND_DOCUMENT(&out, "upsertedIds", &empty);
        }
    }
    set_result_doc(c, &out);
    bson_destroy(&out);
}

/* ---- collection operations --------------------------------------------------------------------- */

static bool op_bulk(call_t *c, mqc_collection_t *coll)
{
    static const char *const taken[] = {"requests", NULL};
    bson_t reqs, opts, ids = BSON_INITIALIZER;
    bson_iter_t it;
    if (!arg_doc(c, "requests", &reqs, true) || !opts_from_args(c, &opts, taken)) return false;
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, &opts);
    bson_destroy(&opts);
    size_t i = 0;
    bool ok = true;
    bson_iter_init(&it, &reqs);
    while (ok && bson_iter_next(&it)) {
        bson_t req, a, filter, upd, o;
        bson_iter_t k;
        mqc_error_t err;
        if (!spec_sub_iter(&it, &req) || !bson_iter_init(&k, &req) || !bson_iter_next(&k) || !spec_sub_iter(&k, &a)) {
            ok = bad(c, "%s", "malformed request");
            break;
        }
        const char *kind = bson_iter_key(&k);
        static const char *const own[] = {"filter", "update", "replacement", "document", NULL};
        bson_init(&o);
        bson_iter_t ai;
        bson_iter_init(&ai, &a);
        while (bson_iter_next(&ai)) {
            bool skip = false;
            for (const char *const *t = own; *t; t++)
                if (!strcmp(*t, bson_iter_key(&ai))) skip = true;
            if (!skip) bson_append_iter(&o, bson_iter_key(&ai), -1, &ai);
        }
        bool has_f = spec_sub(&a, "filter", &filter);
        if (!strcmp(kind, "insertOne")) {
            bson_t doc;
            if (!spec_sub(&a, "document", &doc)) ok = bad(c, "%s", "insertOne without document");
            else {
                bson_t *d = with_id(&doc);
                id_of(d, &ids, i);
                ok = mqc_bulk_insert(b, d, &err);
                bson_destroy(d);
            }
        } else if (!has_f) ok = bad(c, "%s without filter", kind);
        else if (!strcmp(kind, "updateOne") || !strcmp(kind, "updateMany")) {
            if (!spec_sub(&a, "update", &upd)) ok = bad(c, "%s without update", kind);
            else ok = (!strcmp(kind, "updateOne") ? mqc_bulk_update_one : mqc_bulk_update_many)(b, &filter, &upd, &o, &err);
        } else if (!strcmp(kind, "replaceOne")) {
            if (!spec_sub(&a, "replacement", &upd)) ok = bad(c, "%s without replacement", kind);
            else ok = mqc_bulk_replace_one(b, &filter, &upd, &o, &err);
        } else if (!strcmp(kind, "deleteOne")) ok = mqc_bulk_delete_one(b, &filter, &o, &err);
        else if (!strcmp(kind, "deleteMany")) ok = mqc_bulk_delete_many(b, &filter, &o, &err);
        else ok = bad(c, "unknown bulk request %s", kind);
        if (!ok && !c->run->v.rc) {
            /* The library refused the request: a client error, as a driver raises it. */
            c->r->err = err;
            c->r->has_err = c->r->done = true;
            bson_destroy(&o);
            mqc_bulk_destroy(b);
            bson_destroy(&ids);
            return true;
        }
        bson_destroy(&o);
        i++;
    }
    if (!ok) {
        mqc_bulk_destroy(b);
        bson_destroy(&ids);
        return false;
    }
    mqc_bulk_execute(b, on_reply, c->r);
    wait_for(mqc_collection_get_client(coll), &c->r->done);
    write_result(c, c->r->reply, "bulk", &ids);
    bson_destroy(&ids);
    return true;
}

static bool collection_op(call_t *c, mqc_collection_t *coll)
{
    const char *n = c->name;
    mqc_client_t *client = mqc_collection_get_client(coll);
    bson_t filter, doc, upd, opts, pipeline;
    bool has_filter = arg_doc(c, "filter", &filter, false);
    if (!strcmp(n, "insertOne")) {
        static const char *const taken[] = {"document", NULL};
        if (!arg_doc(c, "document", &doc, true) || !opts_from_args(c, &opts, taken)) return false;
        bson_t *d = with_id(&doc), ids = BSON_INITIALIZER;
        id_of(d, &ids, 0);
        mqc_collection_insert_one(coll, d, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "insertOne", &ids);
        bson_destroy(d);
        bson_destroy(&ids);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "insertMany")) {
        static const char *const taken[] = {"documents", NULL};
        bson_t docs, ids = BSON_INITIALIZER;
        bson_iter_t it;
        if (!arg_doc(c, "documents", &docs, true) || !opts_from_args(c, &opts, taken)) return false;
        size_t k = bson_count_keys(&docs), i = 0;
        bson_t **v = calloc(k + 1, sizeof *v);
        bson_iter_init(&it, &docs);
        while (bson_iter_next(&it)) {
            bson_t d;
            if (!spec_sub_iter(&it, &d)) continue;
            v[i] = with_id(&d);
            id_of(v[i], &ids, i);
            i++;
        }
        mqc_collection_insert_many(coll, (const bson_t *const *) v, i, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "insertMany", &ids);
        for (size_t j = 0; j < i; j++) bson_destroy(v[j]);
        free(v);
        bson_destroy(&ids);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "updateOne") || !strcmp(n, "updateMany") || !strcmp(n, "replaceOne")) {
        static const char *const taken[] = {"filter", "update", "replacement", NULL};
        bool repl = !strcmp(n, "replaceOne");
        bson_iter_t it;
        if (!has_filter) return bad(c, "%s", "no filter");
        if (repl ? !arg_doc(c, "replacement", &upd, true) : !(bson_iter_init_find(&it, c->args, "update") &&
                                                               spec_sub_iter(&it, &upd)))
            return repl ? false : bad(c, "%s", "no update");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (repl) mqc_collection_replace_one(coll, &filter, &upd, &opts, on_reply, c->r);
        else (!strcmp(n, "updateOne") ? mqc_collection_update_one : mqc_collection_update_many)(coll, &filter, &upd, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "update", NULL);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "deleteOne") || !strcmp(n, "deleteMany")) {
        static const char *const taken[] = {"filter", NULL};
        if (!has_filter) return bad(c, "%s", "no filter");
        if (!opts_from_args(c, &opts, taken)) return false;
        (!strcmp(n, "deleteOne") ? mqc_collection_delete_one : mqc_collection_delete_many)(coll, &filter, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "delete", NULL);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "bulkWrite")) return op_bulk(c, coll);
    if (!strcmp(n, "find") || !strcmp(n, "createFindCursor") || !strcmp(n, "findOne")) {
        static const char *const taken[] = {"filter", NULL};
        if (!has_filter) return bad(c, "%s", "no filter");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "findOne")) {
            mqc_collection_find_one(coll, &filter, &opts, on_reply, c->r);
            wait_for(client, &c->r->done);
            if (c->r->reply) set_result_doc(c, c->r->reply);
            else c->has_result = true, c->result.value_type = BSON_TYPE_NULL;
        } else if (!strcmp(n, "find")) {
            mqc_cursor_t *cur = mqc_collection_find(coll, &filter, &opts, on_batch_all, c->r);
            wait_for(client, &c->r->done);
            mqc_cursor_destroy(cur);
            set_result_docs(c, c->r->docs, c->r->n);
        } else {
            struct ux_cursor *uc = cursor_wrap(client);
            uc->cursor = mqc_collection_find(coll, &filter, &opts, on_batch_one, uc);
            cursor_wait(uc);
            bson_destroy(&opts);
            if (uc->r.has_err) {
                c->r->err = uc->r.err;
                c->r->has_err = c->r->done = true;
                ux_cursor_free(uc);
                return true;
            }
            /* The cursor becomes an entity through saveResultAsEntity (the caller). */
            c->r->done = true;
            c->new_cursor = uc;
            return true;
        }
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "aggregate")) {
        static const char *const taken[] = {"pipeline", NULL};
        if (!arg_doc(c, "pipeline", &pipeline, true) || !opts_from_args(c, &opts, taken)) return false;
        mqc_cursor_t *cur = mqc_collection_aggregate(coll, &pipeline, &opts, on_batch_all, c->r);
        wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "countDocuments") || !strcmp(n, "estimatedDocumentCount")) {
        static const char *const taken[] = {"filter", NULL};
        bool est = !strcmp(n, "estimatedDocumentCount");
        if (!est && !has_filter) return bad(c, "%s", "no filter");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (est) mqc_collection_estimated_document_count(coll, &opts, on_reply, c->r);
        else mqc_collection_count_documents(coll, &filter, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        set_result_field(c, c->r->reply, "count");
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "distinct")) {
        static const char *const taken[] = {"filter", "fieldName", NULL};
        const char *field = spec_str(c->args, "fieldName");
        if (!field) return bad(c, "%s", "no fieldName");
        if (!opts_from_args(c, &opts, taken)) return false;
        mqc_collection_distinct(coll, field, has_filter ? &filter : NULL, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        set_result_field(c, c->r->reply, "values");
        bson_destroy(&opts);
        return true;
    }
    if (!strncmp(n, "findOneAnd", 10)) {
        static const char *const taken[] = {"filter", "update", "replacement", NULL};
        bson_iter_t it;
        if (!has_filter) return bad(c, "%s", "no filter");
        if (!strcmp(n, "findOneAndUpdate") && !(bson_iter_init_find(&it, c->args, "update") && spec_sub_iter(&it, &upd)))
            return bad(c, "%s", "no update");
        if (!strcmp(n, "findOneAndReplace") && !arg_doc(c, "replacement", &upd, true)) return false;
        if (!opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "findOneAndUpdate")) mqc_collection_find_one_and_update(coll, &filter, &upd, &opts, on_reply, c->r);
        else if (!strcmp(n, "findOneAndReplace")) mqc_collection_find_one_and_replace(coll, &filter, &upd, &opts, on_reply, c->r);
        else if (!strcmp(n, "findOneAndDelete")) mqc_collection_find_one_and_delete(coll, &filter, &opts, on_reply, c->r);
        else {
            bson_destroy(&opts);
            return bad(c, "%s", "unknown findOneAnd operation");
        }
        wait_for(client, &c->r->done);
        set_result_field(c, c->r->reply, "value");
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createIndex")) {
        static const char *const taken[] = {"keys", "maxTimeMS", "commitQuorum", "comment", NULL};
        bson_t keys, cmd_opts = BSON_INITIALIZER;
        bson_iter_t it;
        if (!arg_doc(c, "keys", &keys, true) || !opts_from_args(c, &opts, taken)) return false;
        for (const char *const *k = taken + 1; *k; k++)
            if (bson_iter_init_find(&it, c->args, *k)) bson_append_iter(&cmd_opts, *k, -1, &it);
        mqc_collection_create_index(coll, &keys, &opts, &cmd_opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        set_result_field(c, c->r->reply, "name");
        bson_destroy(&opts);
        bson_destroy(&cmd_opts);
        return true;
    }
    if (!strcmp(n, "dropIndex") || !strcmp(n, "dropIndexes")) {
        static const char *const taken[] = {"name", NULL};
        const char *name = spec_str(c->args, "name");
        if (!strcmp(n, "dropIndex") && !name) return bad(c, "%s", "no name");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "dropIndex")) mqc_collection_drop_index(coll, name, &opts, on_reply, c->r);
        else mqc_collection_drop_indexes(coll, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        if (c->r->reply) set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "listIndexes") || !strcmp(n, "listIndexNames")) {
        if (!opts_from_args(c, &opts, NULL)) return false;
        mqc_cursor_t *cur = mqc_collection_list_indexes(coll, &opts, on_batch_all, c->r);
        wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (!strcmp(n, "listIndexNames")) {
            bson_t arr = BSON_INITIALIZER;
            char key[24];
            for (size_t i = 0; i < c->r->n; i++) {
                bson_iter_t it;
                snprintf(key, sizeof key, "%zu", i);
                if (bson_iter_init_find(&it, c->r->docs[i], "name")) bson_append_iter(&arr, key, -1, &it);
            }
            set_result_doc(c, &arr);
            c->result.value_type = BSON_TYPE_ARRAY;
            bson_destroy(&arr);
        } else set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "rename")) {
        static const char *const taken[] = {"to", NULL};
        const char *to = spec_str(c->args, "to");
        if (!to) return bad(c, "%s", "no \"to\"");
        if (!opts_from_args(c, &opts, taken)) return false;
        mqc_collection_rename(coll, NULL, to, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        if (c->r->reply) set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "drop")) {
        if (!opts_from_args(c, &opts, NULL)) return false;
        mqc_collection_drop(coll, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return lacks(c, "change streams");
    if (!strcmp(n, "count")) return lacks(c, "the deprecated count helper (countDocuments is there)");
    if (!strcmp(n, "mapReduce")) return lacks(c, "mapReduce");
    if (strstr(n, "SearchIndex")) return lacks(c, "Atlas search index helpers");
    if (!strcmp(n, "modifyCollection")) return lacks(c, "a collMod helper");
    return bad(c, "%s is not an operation of a collection", n);
}

/* ---- database, client and cursor operations ----------------------------------------------------- */

static void names_of(call_t *c, const char *field)
{
    bson_t arr = BSON_INITIALIZER;
    char key[24];
    for (size_t i = 0; i < c->r->n; i++) {
        bson_iter_t it;
        snprintf(key, sizeof key, "%zu", i);
        if (bson_iter_init_find(&it, c->r->docs[i], field)) bson_append_iter(&arr, key, -1, &it);
    }
    set_result_doc(c, &arr);
    c->result.value_type = BSON_TYPE_ARRAY;
    bson_destroy(&arr);
}

static bool database_op(call_t *c, mqc_database_t *db)
{
    const char *n = c->name;
    mqc_client_t *client = mqc_database_get_client(db);
    bson_t opts, cmd, filter;
    if (!strcmp(n, "runCommand")) {
        static const char *const taken[] = {"command", "commandName", NULL};
        if (!arg_doc(c, "command", &cmd, true) || !opts_from_args(c, &opts, taken)) return false;
        mqc_database_command(db, &cmd, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        if (c->r->reply) set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "runCursorCommand") || !strcmp(n, "createCommandCursor") || !strcmp(n, "aggregate")) {
        static const char *const taken[] = {"command", "commandName", "pipeline", NULL};
        bson_t built = BSON_INITIALIZER;
        if (!strcmp(n, "aggregate")) {
            bson_t pipeline, cur;
            bson_iter_t it;
            if (!arg_doc(c, "pipeline", &pipeline, true)) return false;
            BSON_APPEND_INT32(&built, "aggregate", 1);
            BSON_APPEND_ARRAY(&built, "pipeline", &pipeline);
            BSON_APPEND_DOCUMENT_BEGIN(&built, "cursor", &cur);
            if (bson_iter_init_find(&it, c->args, "batchSize")) bson_append_iter(&cur, "batchSize", -1, &it);
            bson_append_document_end(&built, &cur);
            static const char *const pass[] = {"allowDiskUse", "comment", "let", "maxTimeMS", "hint", "collation", NULL};
            for (const char *const *k = pass; *k; k++)
                if (bson_iter_init_find(&it, c->args, *k)) bson_append_iter(&built, *k, -1, &it);
        } else if (!arg_doc(c, "command", &cmd, true)) return false;
        else bson_concat(&built, &cmd);
        if (!opts_from_args(c, &opts, taken)) {
            bson_destroy(&built);
            return false;
        }
        if (!strcmp(n, "createCommandCursor")) {
            struct ux_cursor *uc = cursor_wrap(client);
            uc->cursor = mqc_database_run_cursor_command(db, &built, &opts, on_batch_one, uc);
            cursor_wait(uc);
            if (uc->r.has_err) {
                c->r->err = uc->r.err;
                c->r->has_err = true;
                ux_cursor_free(uc);
            } else c->new_cursor = uc;
            c->r->done = true;
        } else {
            mqc_cursor_t *cur = mqc_database_run_cursor_command(db, &built, &opts, on_batch_all, c->r);
            wait_for(client, &c->r->done);
            mqc_cursor_destroy(cur);
            set_result_docs(c, c->r->docs, c->r->n);
        }
        bson_destroy(&built);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createCollection") || !strcmp(n, "dropCollection")) {
        static const char *const taken[] = {"collection", NULL};
        const char *name = spec_str(c->args, "collection");
        if (!name) return bad(c, "%s", "no collection");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "createCollection")) mqc_database_create_collection(db, name, &opts, on_reply, c->r);
        else mqc_database_drop_collection(db, name, &opts, on_reply, c->r);
        wait_for(client, &c->r->done);
        if (!strcmp(n, "createCollection") && c->r->done && !c->r->has_err) c->new_coll = mqc_database_get_collection(db, name);
        bson_destroy(&opts);
        return true;
    }
    if (!strncmp(n, "listCollection", 14)) {
        static const char *const taken[] = {"filter", NULL};
        bool names = !strcmp(n, "listCollectionNames");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (names) BSON_APPEND_BOOL(&opts, "nameOnly", true);
        mqc_cursor_t *cur = mqc_database_list_collections(db, arg_doc(c, "filter", &filter, false) ? &filter : NULL,
                                                          &opts, on_batch_all, c->r);
        wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (names) names_of(c, "name");
        else set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return lacks(c, "change streams");
    if (!strcmp(n, "modifyCollection")) return lacks(c, "a collMod helper");
    return bad(c, "%s is not an operation of a database", n);
}

static bool client_op(call_t *c, mqc_client_t *client)
{
    const char *n = c->name;
    bson_t opts, filter;
    if (!strncmp(n, "listDatabase", 12)) {
        static const char *const taken[] = {"filter", NULL};
        bool names = !strcmp(n, "listDatabaseNames");
        if (!opts_from_args(c, &opts, taken)) return false;
        if (names) BSON_APPEND_BOOL(&opts, "nameOnly", true);
        mqc_cursor_t *cur = mqc_client_list_databases(client, arg_doc(c, "filter", &filter, false) ? &filter : NULL,
                                                      &opts, on_batch_all, c->r);
        wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (names) names_of(c, "name");
        else set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return lacks(c, "change streams");
    if (!strcmp(n, "clientBulkWrite")) return lacks(c, "client-level bulk write (bulkWrite command)");
    if (!strcmp(n, "close")) return lacks(c, "closing a client entity in the runner");
    return bad(c, "%s is not an operation of a client", n);
}

static bool cursor_op(call_t *c, struct ux_cursor *uc)
{
    const char *n = c->name;
    if (!strcmp(n, "close")) {
        mqc_cursor_destroy(uc->cursor);
        uc->cursor = NULL;
        c->r->done = true;
        return true;
    }
    if (!strcmp(n, "iterateUntilDocumentOrError") || !strcmp(n, "iterateOnce")) {
        bool once = !strcmp(n, "iterateOnce");
        for (;;) {
            if (uc->head < uc->r.n) {
                set_result_doc(c, uc->r.docs[uc->head++]);
                break;
            }
            if (uc->r.has_err) {
                c->r->err = uc->r.err;
                c->r->has_err = true;
                break;
            }
            if (!uc->cursor || !mqc_cursor_more(uc->cursor)) {
                if (once) break;
                return bad(c, "%s", "the cursor is exhausted");
            }
            uc->batch_pending = true;
            if (!mqc_cursor_next(uc->cursor)) return bad(c, "%s", "getMore could not be sent");
            cursor_wait(uc);
            if (once && uc->head == uc->r.n && !uc->r.has_err) break;
        }
        c->r->done = true;
        return true;
    }
    return bad(c, "%s is not an operation of a cursor", n);
}

/* ---- testRunner operations ----------------------------------------------------------------------- */

static ux_entity_t *client_arg(call_t *c)
{
    const char *id = spec_str(c->args, "client");
    ux_entity_t *e = id ? ux_entity(c->run, id) : NULL;
    if (!e || e->kind != ENT_CLIENT) {
        bad(c, "no client entity \"%s\"", id ? id : "(none)");
        return NULL;
    }
    if (e->lacks) {
        lacks(c, e->lacks);
        return NULL;
    }
    return e;
}

static bool list_has(call_t *c, const char *db, const char *coll, const char *index, bool *found)
{
    res_t r = {0};
    mqc_cursor_t *cur;
    if (index) {
        mqc_collection_t *h = mqc_client_get_collection(c->run->internal, db, coll);
        cur = mqc_collection_list_indexes(h, NULL, on_batch_all, &r);
        mqc_collection_destroy(h);
    } else {
        mqc_database_t *h = mqc_client_get_database(c->run->internal, db);
        cur = mqc_database_list_collections(h, NULL, NULL, on_batch_all, &r);
        mqc_database_destroy(h);
    }
    wait_for(c->run->internal, &r.done);
    mqc_cursor_destroy(cur);
    *found = false;
    for (size_t i = 0; i < r.n; i++) {
        const char *nm = spec_str(r.docs[i], "name");
        if (nm && !strcmp(nm, index ? index : coll)) *found = true;
    }
    bool ok = !r.has_err || (index && r.err.code == 26);
    if (!ok) ux_set(&c->run->v, 1, "%s: listing: %s", c->name, r.err.message);
    res_free(&r);
    return ok;
}

static int count_events(ux_client_t *uc, const bson_t *want, ux_run_t *run)
{
    int k = 0;
    bson_iter_t wi;
    bson_t wb;
    if (!bson_iter_init(&wi, want) || !bson_iter_next(&wi)) return 0;
    bool has_body = spec_sub_iter(&wi, &wb);
    for (size_t i = 0; i < uc->n_events; i++) {
        bson_iter_t ai;
        bson_t ab;
        char why[256];
        bson_iter_init(&ai, uc->events[i]);
        bson_iter_next(&ai);
        if (strcmp(bson_iter_key(&ai), bson_iter_key(&wi))) continue;
        if (has_body && spec_sub_iter(&ai, &ab) && !ux_match_doc(run, &wb, &ab, true, why, sizeof why)) continue;
        k++;
    }
    return k;
}

static bool runner_op(call_t *c)
{
    const char *n = c->name;
    ux_entity_t *e;
    c->r->done = true;
    if (!strcmp(n, "failPoint")) {
        bson_t fp, reply;
        mqc_error_t err;
        if (!(e = client_arg(c)) || !arg_doc(c, "failPoint", &fp, true)) return false;
        const char *name = spec_str(&fp, "configureFailPoint");
        if (!name) return bad(c, "%s", "failPoint without configureFailPoint");
        if (!ux_command(e->client, "admin", &fp, &reply, &err)) {
            bson_destroy(&reply);
            return ux_set(&c->run->v, 1, "failPoint %s: %s", name, err.message);
        }
        bson_destroy(&reply);
        if (c->run->n_failpoints < UX_MAX_FAILPOINTS)
            snprintf(c->run->failpoints[c->run->n_failpoints++], sizeof c->run->failpoints[0], "%s", name);
        return true;
    }
    if (!strcmp(n, "targetedFailPoint") || !strncmp(n, "assertSession", 13) || strstr(n, "LsidOnLastTwoCommands"))
        return lacks(c, "explicit sessions");
    if (!strcmp(n, "assertCollectionExists") || !strcmp(n, "assertCollectionNotExists") ||
        !strcmp(n, "assertIndexExists") || !strcmp(n, "assertIndexNotExists")) {
        const char *db = spec_str(c->args, "databaseName"), *coll = spec_str(c->args, "collectionName");
        const char *idx = strstr(n, "Index") ? spec_str(c->args, "indexName") : NULL;
        bool found, want = !strstr(n, "NotExists");
        if (!db || !coll || (strstr(n, "Index") && !idx)) return bad(c, "%s", "missing names");
        if (!list_has(c, db, coll, idx, &found)) return false;
        if (found != want)
            return ux_set(&c->run->v, 1, "%s: %s.%s%s%s %s", n, db, coll, idx ? " index " : "", idx ? idx : "",
                          found ? "exists" : "does not exist");
        return true;
    }
    if (!strcmp(n, "assertNumberConnectionsCheckedOut")) {
        bson_iter_t it;
        if (!(e = client_arg(c))) return false;
        if (!bson_iter_init_find(&it, c->args, "connections") || !BSON_ITER_HOLDS_NUMBER(&it))
            return bad(c, "%s", "no connections count");
        if (bson_iter_as_int64(&it) != e->uc->checked_out)
            return ux_set(&c->run->v, 1, "%s: %" PRId64 " connections checked out, expected %" PRId64, n,
                          e->uc->checked_out, bson_iter_as_int64(&it));
        return true;
    }
    if (!strcmp(n, "createEntities")) {
        bson_t arr;
        if (!arg_doc(c, "entities", &arr, true)) return false;
        return ux_create_entities(c->run, &arr);
    }
    if (!strcmp(n, "wait")) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, c->args, "ms")) return bad(c, "%s", "no ms");
        struct timespec ts = {bson_iter_as_int64(&it) / 1000, (bson_iter_as_int64(&it) % 1000) * 1000000};
        nanosleep(&ts, NULL);
        for (size_t i = 0; i < c->run->n_ents; i++)
            if (c->run->ents[i].kind == ENT_CLIENT) mqc_client_run_until_idle(c->run->ents[i].client, 0.01);
        return true;
    }
    if (!strcmp(n, "waitForEvent") || !strcmp(n, "assertEventCount")) {
        bson_t ev;
        bson_iter_t it;
        if (!(e = client_arg(c)) || !arg_doc(c, "event", &ev, true)) return false;
        if (!bson_iter_init_find(&it, c->args, "count")) return bad(c, "%s", "no count");
        int want = (int) bson_iter_as_int64(&it);
        bson_iter_t k;
        bson_iter_init(&k, &ev);
        bson_iter_next(&k);
        if (strncmp(bson_iter_key(&k), "command", 7) && strncmp(bson_iter_key(&k), "pool", 4) &&
            strncmp(bson_iter_key(&k), "connection", 10))
            return lacks(c, "SDAM events in the runner");
        if (!strcmp(n, "waitForEvent")) {
            for (int i = 0; i < 1000 && count_events(e->uc, &ev, c->run) < want; i++)
                mqc_client_run_until_idle(e->client, 0.01);
            if (count_events(e->uc, &ev, c->run) < want) return ux_set(&c->run->v, 1, "waitForEvent: timed out");
            return true;
        }
        int got = count_events(e->uc, &ev, c->run);
        if (got != want) return ux_set(&c->run->v, 1, "assertEventCount: %d events, expected %d", got, want);
        return true;
    }
    if (!strcmp(n, "runOnThread") || !strcmp(n, "waitForThread")) return lacks(c, "threads in the runner");
    if (!strcmp(n, "loop")) return lacks(c, "the loop operation in the runner");
    if (strstr(n, "Topology") || !strcmp(n, "waitForPrimaryChange")) return lacks(c, "SDAM events in the runner");
    return bad(c, "%s is not an operation of the test runner", n);
}

/* ---- errors ------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint32_t bit;
} k_labels[] = {
    {"RetryableWriteError", MQC_LABEL_RETRYABLE_WRITE},
    {"TransientTransactionError", MQC_LABEL_TRANSIENT_TXN},
    {"NoWritesPerformed", MQC_LABEL_NO_WRITES_PERFORMED},
};

/* -1 when mqc cannot say (a label mqc_error_t has no bit for). */
static int has_label(const mqc_error_t *err, const char *name)
{
    for (size_t i = 0; i < sizeof k_labels / sizeof k_labels[0]; i++)
        if (!strcmp(k_labels[i].name, name)) return (err->labels & k_labels[i].bit) != 0;
    return -1;
}

static bool is_server_error(const mqc_error_t *err)
{
    return err->domain == MQC_ERROR_SERVER || err->domain == MQC_ERROR_WRITE || err->domain == MQC_ERROR_WRITE_CONCERN;
}

static bool check_error(call_t *c, const bson_t *ee)
{
    ux_run_t *run = c->run;
    const mqc_error_t *err = &c->r->err;
    bson_iter_t it;
    bson_t sub;
    if (!c->r->has_err) return ux_set(&run->v, 1, "%s: succeeded, an error was expected", c->name);
    const char *s;
    if (bson_iter_init_find(&it, ee, "isClientError") && bson_iter_as_bool(&it) != !is_server_error(err))
        return ux_set(&run->v, 1, "%s: isClientError %d, error %s %d %s", c->name, bson_iter_as_bool(&it),
                      mqc_error_domain_name(err->domain), err->code, err->message);
    if (bson_iter_init_find(&it, ee, "isTimeoutError") && bson_iter_as_bool(&it) != (err->domain == MQC_ERROR_TIMEOUT))
        return ux_set(&run->v, 1, "%s: isTimeoutError %d, error %s: %s", c->name, bson_iter_as_bool(&it),
                      mqc_error_domain_name(err->domain), err->message);
    if ((s = spec_str(ee, "errorContains"))) {
        char a[sizeof err->message], b[512];
        snprintf(a, sizeof a, "%s", err->message);
        snprintf(b, sizeof b, "%s", s);
        for (char *p = a; *p; p++) *p = (char) tolower((unsigned char) *p);
        for (char *p = b; *p; p++) *p = (char) tolower((unsigned char) *p);
        if (!strstr(a, b)) return ux_set(&run->v, 1, "%s: error \"%s\" does not contain \"%s\"", c->name, err->message, s);
    }
    if (bson_iter_init_find(&it, ee, "errorCode") && (!is_server_error(err) || err->code != bson_iter_as_int64(&it)))
        return ux_set(&run->v, 1, "%s: error code %d (%s: %s), expected %" PRId64, c->name, err->code,
                      mqc_error_domain_name(err->domain), err->message, bson_iter_as_int64(&it));
    if ((s = spec_str(ee, "errorCodeName")) && strcmp(s, err->code_name))
        return ux_set(&run->v, 1, "%s: error code name \"%s\" (%s), expected %s", c->name, err->code_name, err->message, s);
    for (int pass = 0; pass < 2; pass++) {
        if (!spec_sub(ee, pass ? "errorLabelsOmit" : "errorLabelsContain", &sub)) continue;
        bson_iter_init(&it, &sub);
        while (bson_iter_next(&it)) {
            const char *l = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            int h = has_label(err, l);
            if (h < 0) return lacks(c, "error labels other than RetryableWriteError, TransientTransactionError, NoWritesPerformed");
            if (h == pass) return ux_set(&run->v, 1, "%s: label %s %s (error: %s)", c->name, l, pass ? "present" : "absent", err->message);
        }
    }
    if (spec_has(ee, "errorResponse")) return lacks(c, "the server's error document in mqc_error_t (errorResponse)");
    if (spec_has(ee, "writeErrors") || spec_has(ee, "writeConcernErrors")) return lacks(c, "client bulk write errors");
    if (bson_iter_init_find(&it, ee, "expectResult")) {
        char why[1024];
        if (!c->has_result) return ux_set(&run->v, 1, "%s: no partial result with the error", c->name);
        if (!ux_match(run, bson_iter_value(&it), &c->result, true, "", why, sizeof why))
            return ux_set(&run->v, 1, "%s: partial result: %s", c->name, why);
    }
    return true;
}

/* ---- one operation ------------------------------------------------------------------------------ */

bool ux_operation_known(const char *name)
{
    static const char *const known[] = {
        "insertOne", "insertMany", "updateOne", "updateMany", "replaceOne", "deleteOne", "deleteMany", "bulkWrite",
        "find", "findOne", "createFindCursor", "aggregate", "countDocuments", "estimatedDocumentCount", "distinct",
        "findOneAndUpdate", "findOneAndReplace", "findOneAndDelete", "createIndex", "dropIndex", "dropIndexes",
        "listIndexes", "listIndexNames", "rename", "drop", "createChangeStream", "count", "mapReduce",
        "modifyCollection", "createSearchIndex", "createSearchIndexes", "dropSearchIndex", "listSearchIndexes",
        "updateSearchIndex", "runCommand", "runCursorCommand", "createCommandCursor", "createCollection",
        "dropCollection", "listCollections", "listCollectionNames", "listCollectionObjects", "listDatabases",
        "listDatabaseNames", "listDatabaseObjects", "clientBulkWrite", "close", "iterateUntilDocumentOrError",
        "iterateOnce", "failPoint", "targetedFailPoint", "assertCollectionExists", "assertCollectionNotExists",
        "assertIndexExists", "assertIndexNotExists", "assertNumberConnectionsCheckedOut", "createEntities", "wait",
        "waitForEvent", "assertEventCount", "runOnThread", "waitForThread", "loop", "recordTopologyDescription",
        "assertTopologyType", "waitForPrimaryChange", "assertSessionPinned", "assertSessionUnpinned",
        "assertSessionDirty", "assertSessionNotDirty", "assertSessionTransactionState",
        "assertSameLsidOnLastTwoCommands", "assertDifferentLsidOnLastTwoCommands", "startTransaction",
        "commitTransaction", "abortTransaction", "withTransaction", "endSession", "upload", "download",
        "downloadByName", "delete", "encrypt", "decrypt", "createDataKey", NULL};
    for (int i = 0; known[i]; i++)
        if (!strcmp(known[i], name)) return true;
    return false;
}

bool ux_run_operation(ux_run_t *run, const bson_t *opdoc)
{
    call_t c = {.run = run};
    bson_t args = BSON_INITIALIZER, ee;
    bson_iter_t it;
    const char *obj = spec_str(opdoc, "object");
    c.name = spec_str(opdoc, "name");
    if (!c.name || !obj) return ux_set(&run->v, 1, "operation without name or object");
    if (!spec_sub(opdoc, "arguments", &args)) bson_init(&args);
    c.args = &args;
    bool expect_error = spec_sub(opdoc, "expectError", &ee);
    bool ignore = spec_bool(opdoc, "ignoreResultAndError", false);
    if (ignore && (expect_error || spec_has(opdoc, "expectResult") || spec_has(opdoc, "saveResultAsEntity")))
        return ux_set(&run->v, 1, "%s: ignoreResultAndError with expectations", c.name);
    if (!ux_operation_known(c.name)) return ux_set(&run->v, 1, "unsupported operation %s", c.name);
    if (strcmp(obj, "testRunner") && !ux_entity(run, obj)) return ux_set(&run->v, 1, "%s: no entity \"%s\"", c.name, obj);
    if (!(c.r = calloc(1, sizeof *c.r))) abort();
    bool ok;
    if (!strcmp(obj, "testRunner")) ok = runner_op(&c);
    else {
        ux_entity_t *e = ux_entity(run, obj);
        if (!e) return ux_set(&run->v, 1, "%s: no entity \"%s\"", c.name, obj);
        c.obj = e;
        if (e->lacks) ok = lacks(&c, e->lacks);
        else if (e->kind == ENT_COLLECTION) ok = collection_op(&c, e->coll);
        else if (e->kind == ENT_DATABASE) ok = database_op(&c, e->db);
        else if (e->kind == ENT_CLIENT) ok = client_op(&c, e->client);
        else if (e->kind == ENT_CURSOR) ok = cursor_op(&c, e->cursor);
        else if (e->kind == ENT_SESSION) ok = lacks(&c, "explicit sessions");
        else ok = bad(&c, "entity %s takes no operations", obj);
    }
    if (ok && !c.r->done && !c.skip)
        ok = ux_set(&run->v, 1, "%s: no callback within 30 s (every operation must end in one)", c.name);
    if (ok && !ignore) {
        if (expect_error) ok = check_error(&c, &ee);
        else if (c.r->has_err)
            ok = ux_set(&run->v, 1, "%s: %s error %d (%s): %s", c.name, mqc_error_domain_name(c.r->err.domain),
                        c.r->err.code, c.r->err.code_name, c.r->err.message);
        else if (bson_iter_init_find(&it, opdoc, "expectResult")) {
            char why[1024];
            bson_value_t none = {.value_type = BSON_TYPE_NULL};
            if (!ux_match(run, bson_iter_value(&it), c.has_result ? &c.result : &none, true, "", why, sizeof why))
                ok = strstr(why, SKIP_MQC) ? ux_set(&run->v, 2, "%s", strstr(why, SKIP_MQC))
                                          : ux_set(&run->v, 1, "%s: result: %s", c.name, why);
        }
    }
    const char *save = spec_str(opdoc, "saveResultAsEntity");
    if (ok && save && !c.r->has_err) {
        ux_entity_t *e = NULL;
        if (ux_entity(run, save)) ok = ux_set(&run->v, 1, "%s: entity %s exists already", c.name, save);
        else if (run->n_ents == UX_MAX_ENTITIES) ok = ux_set(&run->v, 1, "too many entities");
        else {
            e = &run->ents[run->n_ents++];
            memset(e, 0, sizeof *e);
            e->id = strdup(save);
            if (c.new_cursor) {
                e->kind = ENT_CURSOR;
                e->client = c.obj ? c.obj->client : NULL;
                e->cursor = c.new_cursor;
                c.new_cursor = NULL;
            } else if (c.new_coll) {
                e->kind = ENT_COLLECTION;
                e->client = c.obj->client;
                e->coll = c.new_coll;
                e->defaults = c.obj->defaults ? bson_copy(c.obj->defaults) : bson_new();
                c.new_coll = NULL;
            } else {
                e->kind = ENT_VALUE;
                if (c.has_result) bson_value_copy(&c.result, &e->value);
                else e->value.value_type = BSON_TYPE_NULL;
            }
        }
    }
    ux_cursor_free(c.new_cursor);
    mqc_collection_destroy(c.new_coll);
    if (c.has_result) bson_value_destroy(&c.result);
    /* An operation that never called back may still write into c.r: then it is left. */
    mqc_client_t *cl = c.obj ? c.obj->client : NULL;
    if (c.r->done || !cl || mqc_client_stat(cl, MQC_STAT_OPS_PENDING) == 0) {
        res_free(c.r);
        free(c.r);
    }
    return ok;
}
