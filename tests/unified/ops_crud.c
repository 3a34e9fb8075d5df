/* The unified runner's collection operations, each through mqc's public API (CRUD, bulk writes,
 * the catalog calls on a collection), and the CRUD specification's shape of their results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "../spec/spec.h"

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
    uxo_set_result_doc(c, &out);
    bson_destroy(&out);
}

/* ---- collection operations --------------------------------------------------------------------- */

static bool op_bulk(call_t *c, mqc_collection_t *coll)
{
    static const char *const taken[] = {"requests", NULL};
    bson_t reqs, opts, ids = BSON_INITIALIZER;
    bson_iter_t it;
    if (!uxo_arg_doc(c, "requests", &reqs, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
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
            ok = uxo_bad(c, "%s", "malformed request");
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
            if (!spec_sub(&a, "document", &doc)) ok = uxo_bad(c, "%s", "insertOne without document");
            else {
                bson_t *d = with_id(&doc);
                id_of(d, &ids, i);
                ok = mqc_bulk_insert(b, d, &err);
                bson_destroy(d);
            }
        } else if (!has_f) ok = uxo_bad(c, "%s without filter", kind);
        else if (!strcmp(kind, "updateOne") || !strcmp(kind, "updateMany")) {
            if (!spec_sub(&a, "update", &upd)) ok = uxo_bad(c, "%s without update", kind);
            else ok = (!strcmp(kind, "updateOne") ? mqc_bulk_update_one : mqc_bulk_update_many)(b, &filter, &upd, &o, &err);
        } else if (!strcmp(kind, "replaceOne")) {
            if (!spec_sub(&a, "replacement", &upd)) ok = uxo_bad(c, "%s without replacement", kind);
            else ok = mqc_bulk_replace_one(b, &filter, &upd, &o, &err);
        } else if (!strcmp(kind, "deleteOne")) ok = mqc_bulk_delete_one(b, &filter, &o, &err);
        else if (!strcmp(kind, "deleteMany")) ok = mqc_bulk_delete_many(b, &filter, &o, &err);
        else ok = uxo_bad(c, "unknown bulk request %s", kind);
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
    mqc_bulk_execute(b, uxo_on_reply, c->r);
    uxo_wait_for(mqc_collection_get_client(coll), &c->r->done);
    write_result(c, c->r->reply, "bulk", &ids);
    bson_destroy(&ids);
    return true;
}

bool uxo_collection_op(call_t *c, mqc_collection_t *coll)
{
    const char *n = c->name;
    mqc_client_t *client = mqc_collection_get_client(coll);
    bson_t filter, doc, upd, opts, pipeline;
    bool has_filter = uxo_arg_doc(c, "filter", &filter, false);
    if (!strcmp(n, "insertOne")) {
        static const char *const taken[] = {"document", NULL};
        if (!uxo_arg_doc(c, "document", &doc, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
        bson_t *d = with_id(&doc), ids = BSON_INITIALIZER;
        id_of(d, &ids, 0);
        mqc_collection_insert_one(coll, d, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
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
        if (!uxo_arg_doc(c, "documents", &docs, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
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
        mqc_collection_insert_many(coll, (const bson_t *const *) v, i, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
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
        if (!has_filter) return uxo_bad(c, "%s", "no filter");
        if (repl ? !uxo_arg_doc(c, "replacement", &upd, true) : !(bson_iter_init_find(&it, c->args, "update") &&
                                                               spec_sub_iter(&it, &upd)))
            return repl ? false : uxo_bad(c, "%s", "no update");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (repl) mqc_collection_replace_one(coll, &filter, &upd, &opts, uxo_on_reply, c->r);
        else (!strcmp(n, "updateOne") ? mqc_collection_update_one : mqc_collection_update_many)(coll, &filter, &upd, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "update", NULL);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "deleteOne") || !strcmp(n, "deleteMany")) {
        static const char *const taken[] = {"filter", NULL};
        if (!has_filter) return uxo_bad(c, "%s", "no filter");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        (!strcmp(n, "deleteOne") ? mqc_collection_delete_one : mqc_collection_delete_many)(coll, &filter, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        write_result(c, c->r->reply, "delete", NULL);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "bulkWrite")) return op_bulk(c, coll);
    if (!strcmp(n, "find") || !strcmp(n, "createFindCursor") || !strcmp(n, "findOne")) {
        static const char *const taken[] = {"filter", NULL};
        if (!has_filter) return uxo_bad(c, "%s", "no filter");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "findOne")) {
            mqc_collection_find_one(coll, &filter, &opts, uxo_on_reply, c->r);
            uxo_wait_for(client, &c->r->done);
            if (c->r->reply) uxo_set_result_doc(c, c->r->reply);
            else c->has_result = true, c->result.value_type = BSON_TYPE_NULL;
        } else if (!strcmp(n, "find")) {
            mqc_cursor_t *cur = mqc_collection_find(coll, &filter, &opts, uxo_on_batch_all, c->r);
            uxo_wait_for(client, &c->r->done);
            mqc_cursor_destroy(cur);
            uxo_set_result_docs(c, c->r->docs, c->r->n);
        } else {
            struct ux_cursor *uc = uxo_cursor_wrap(client);
            uc->cursor = mqc_collection_find(coll, &filter, &opts, uxo_on_batch_one, uc);
            uxo_cursor_wait(uc);
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
        if (!uxo_arg_doc(c, "pipeline", &pipeline, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
        mqc_cursor_t *cur = mqc_collection_aggregate(coll, &pipeline, &opts, uxo_on_batch_all, c->r);
        uxo_wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        uxo_set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "countDocuments") || !strcmp(n, "estimatedDocumentCount")) {
        static const char *const taken[] = {"filter", NULL};
        bool est = !strcmp(n, "estimatedDocumentCount");
        if (!est && !has_filter) return uxo_bad(c, "%s", "no filter");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (est) mqc_collection_estimated_document_count(coll, &opts, uxo_on_reply, c->r);
        else mqc_collection_count_documents(coll, &filter, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        uxo_set_result_field(c, c->r->reply, "count");
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "distinct")) {
        static const char *const taken[] = {"filter", "fieldName", NULL};
        const char *field = spec_str(c->args, "fieldName");
        if (!field) return uxo_bad(c, "%s", "no fieldName");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        mqc_collection_distinct(coll, field, has_filter ? &filter : NULL, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        uxo_set_result_field(c, c->r->reply, "values");
        bson_destroy(&opts);
        return true;
    }
    if (!strncmp(n, "findOneAnd", 10)) {
        static const char *const taken[] = {"filter", "update", "replacement", NULL};
        bson_iter_t it;
        if (!has_filter) return uxo_bad(c, "%s", "no filter");
        if (!strcmp(n, "findOneAndUpdate") && !(bson_iter_init_find(&it, c->args, "update") && spec_sub_iter(&it, &upd)))
            return uxo_bad(c, "%s", "no update");
        if (!strcmp(n, "findOneAndReplace") && !uxo_arg_doc(c, "replacement", &upd, true)) return false;
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "findOneAndUpdate")) mqc_collection_find_one_and_update(coll, &filter, &upd, &opts, uxo_on_reply, c->r);
        else if (!strcmp(n, "findOneAndReplace")) mqc_collection_find_one_and_replace(coll, &filter, &upd, &opts, uxo_on_reply, c->r);
        else if (!strcmp(n, "findOneAndDelete")) mqc_collection_find_one_and_delete(coll, &filter, &opts, uxo_on_reply, c->r);
        else {
            bson_destroy(&opts);
            return uxo_bad(c, "%s", "unknown findOneAnd operation");
        }
        uxo_wait_for(client, &c->r->done);
        uxo_set_result_field(c, c->r->reply, "value");
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createIndex")) {
        static const char *const taken[] = {"keys", "maxTimeMS", "commitQuorum", "comment", NULL};
        bson_t keys, cmd_opts = BSON_INITIALIZER;
        bson_iter_t it;
        if (!uxo_arg_doc(c, "keys", &keys, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
        for (const char *const *k = taken + 1; *k; k++)
            if (bson_iter_init_find(&it, c->args, *k)) bson_append_iter(&cmd_opts, *k, -1, &it);
        mqc_collection_create_index(coll, &keys, &opts, &cmd_opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        uxo_set_result_field(c, c->r->reply, "name");
        bson_destroy(&opts);
        bson_destroy(&cmd_opts);
        return true;
    }
    if (!strcmp(n, "dropIndex") || !strcmp(n, "dropIndexes")) {
        static const char *const taken[] = {"name", NULL};
        const char *name = spec_str(c->args, "name");
        if (!strcmp(n, "dropIndex") && !name) return uxo_bad(c, "%s", "no name");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "dropIndex")) mqc_collection_drop_index(coll, name, &opts, uxo_on_reply, c->r);
        else mqc_collection_drop_indexes(coll, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        if (c->r->reply) uxo_set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "listIndexes") || !strcmp(n, "listIndexNames")) {
        if (!uxo_opts_from_args(c, &opts, NULL)) return false;
        mqc_cursor_t *cur = mqc_collection_list_indexes(coll, &opts, uxo_on_batch_all, c->r);
        uxo_wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (!strcmp(n, "listIndexNames")) {
            bson_t arr = BSON_INITIALIZER;
            char key[24];
            for (size_t i = 0; i < c->r->n; i++) {
                bson_iter_t it;
                snprintf(key, sizeof key, "%zu", i);
                if (bson_iter_init_find(&it, c->r->docs[i], "name")) bson_append_iter(&arr, key, -1, &it);
            }
            uxo_set_result_doc(c, &arr);
            c->result.value_type = BSON_TYPE_ARRAY;
            bson_destroy(&arr);
        } else uxo_set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "rename")) {
        static const char *const taken[] = {"to", NULL};
        const char *to = spec_str(c->args, "to");
        if (!to) return uxo_bad(c, "%s", "no \"to\"");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        mqc_collection_rename(coll, NULL, to, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        if (c->r->reply) uxo_set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "drop")) {
        if (!uxo_opts_from_args(c, &opts, NULL)) return false;
        mqc_collection_drop(coll, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return uxo_lacks(c, "change streams");
    if (!strcmp(n, "count")) return uxo_lacks(c, "the deprecated count helper (countDocuments is there)");
    if (!strcmp(n, "mapReduce")) return uxo_lacks(c, "mapReduce");
    if (strstr(n, "SearchIndex")) return uxo_lacks(c, "Atlas search index helpers");
    if (!strcmp(n, "modifyCollection")) return uxo_lacks(c, "a collMod helper");
    return uxo_bad(c, "%s is not an operation of a collection", n);
}
