/* catalog: the calls that read or change what a server holds rather than the documents in it
 * (estimatedDocumentCount, listings of databases, collections and indexes, index and collection
 * DDL, renames) and runCursorCommand. Each builds one command; listings become cursors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cursor.h"
#include "handles.h"
#include "op.h"

static bool has(const bson_t *opts, const char *key, bson_iter_t *it)
{
    return opts && bson_iter_init_find(it, opts, key);
}

/* {cursor: {batchSize}} from opts' batchSize, as listCollections/listIndexes/aggregate take it. */
static void append_cursor_opt(bson_t *cmd, const bson_t *opts)
{
    bson_iter_t it;
    bson_t cur;
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "cursor", &cur);
    if (has(opts, "batchSize", &it) && BSON_ITER_HOLDS_NUMBER(&it))
        BSON_APPEND_INT32(&cur, "batchSize", (int32_t) bson_iter_as_int64(&it));
    bson_append_document_end(cmd, &cur);
}

static mqc_op_t *submit(mqc_client_t *client, const char *db, bson_t *cmd, const bson_t *opts, uint8_t retry,
                        mqc_cmd_result_fn result, mqc_reply_cb cb, void *ud)
{
    BSON_APPEND_UTF8(cmd, "$db", db);
    mqc_op_t *op = mqc_cmd_op_take(client, db, cmd, cb, ud);
    ((mqc_cmd_impl_t *) op->impl)->result = result;
    op->retry = retry;
    mqc_op_set_timeout_from(op, opts);
    return op;
}

/* ---- listings ------------------------------------------------------------------------------ */

mqc_cursor_t *mqc_database_list_collections(mqc_database_t *database, const bson_t *filter, const bson_t *opts,
                                            mqc_batch_cb cb, void *ud)
{
    static const char *const handled[] = {"batchSize", NULL};
    mqc_client_t *client = mqc_database_get_client(database);
    const char *db = mqc_database_get_name(database);
    bson_t cmd;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "listCollections", 1);
    if (filter) BSON_APPEND_DOCUMENT(&cmd, "filter", filter);
    append_cursor_opt(&cmd, opts);
    mqc_copy_passthrough_opts(&cmd, opts, handled);
    mqc_cursor_t *c = mqc_cursor_open(client, db, "$cmd.listCollections", &cmd, opts, true, NULL, cb, ud);
    return c;
}

mqc_cursor_t *mqc_client_list_databases(mqc_client_t *client, const bson_t *filter, const bson_t *opts,
                                        mqc_batch_cb cb, void *ud)
{
    static const char *const handled[] = {"batchSize", NULL};
    bson_t cmd;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "listDatabases", 1);
    if (filter) BSON_APPEND_DOCUMENT(&cmd, "filter", filter);
    mqc_copy_passthrough_opts(&cmd, opts, handled);
    return mqc_cursor_open(client, "admin", "$cmd.listDatabases", &cmd, opts, true, "databases", cb, ud);
}

mqc_cursor_t *mqc_collection_list_indexes(mqc_collection_t *coll, const bson_t *opts, mqc_batch_cb cb, void *ud)
{
    static const char *const handled[] = {"batchSize", NULL};
    bson_t cmd;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "listIndexes", -1, coll->name, -1);
    append_cursor_opt(&cmd, opts);
    mqc_copy_passthrough_opts(&cmd, opts, handled);
    return mqc_cursor_open(coll->client, coll->db, coll->name, &cmd, opts, true, NULL, cb, ud);
}

mqc_cursor_t *mqc_database_run_cursor_command(mqc_database_t *database, const bson_t *command, const bson_t *opts,
                                              mqc_batch_cb cb, void *ud)
{
    mqc_client_t *client = mqc_database_get_client(database);
    const char *db = mqc_database_get_name(database);
    bson_t cmd;
    bson_init(&cmd);
    if (command) bson_copy_to_excluding_noinit(command, &cmd, "$db", NULL);
    /* The collection a getMore names comes from the reply's ns; until then, the command's value. */
    bson_iter_t it;
    const char *coll = "$cmd";
    if (command && bson_iter_init(&it, command) && bson_iter_next(&it) && BSON_ITER_HOLDS_UTF8(&it))
        coll = bson_iter_utf8(&it, NULL);
    /* A command the caller wrote may write (aggregate with $out): never retried. */
    mqc_cursor_t *c = mqc_cursor_open(client, db, coll, &cmd, opts, false, NULL, cb, ud);
    /* runCursorCommand's maxTimeMS is the getMores' (the command carries its own). */
    if (opts && bson_iter_init_find(&it, opts, "maxTimeMS") && BSON_ITER_HOLDS_NUMBER(&it))
        mqc_cursor_set_getmore_max_time(c, bson_iter_as_int64(&it));
    return c;
}

/* ---- indexes ------------------------------------------------------------------------------- */

/* The server's default name of an index: "<field>_<value>" joined by '_' ("a_1_b_-1"). */
static void default_index_name(const bson_t *keys, char *out, size_t size)
{
    bson_iter_t it;
    size_t n = 0;
    out[0] = '\0';
    if (!bson_iter_init(&it, keys)) return;
    while (bson_iter_next(&it) && n < size) {
        char val[64];
        if (BSON_ITER_HOLDS_UTF8(&it)) snprintf(val, sizeof val, "%s", bson_iter_utf8(&it, NULL));
        else if (BSON_ITER_HOLDS_NUMBER(&it)) {
            double d = bson_iter_as_double(&it);
            if (d == (double) (int64_t) d) snprintf(val, sizeof val, "%" PRId64, (int64_t) d);
            else snprintf(val, sizeof val, "%g", d);
        } else snprintf(val, sizeof val, "%s", "1");
        n += (size_t) snprintf(out + n, size - n, "%s%s_%s", n ? "_" : "", bson_iter_key(&it), val);
    }
}

static bool index_result(mqc_cmd_result_t *r)
{
    /* createIndex answers with the one name the request carries. */
    bson_iter_t it;
    bson_init(r->tmp);
    if (bson_iter_init(&it, r->cmd) && bson_iter_find_descendant(&it, "indexes.0.name", &it) &&
        BSON_ITER_HOLDS_UTF8(&it))
        bson_append_iter(r->tmp, "name", -1, &it);
    bson_concat(r->tmp, r->reply);
    r->result = r->tmp;
    return true;
}

mqc_op_t *mqc_collection_create_indexes(mqc_collection_t *coll, const bson_t *const *models, size_t n,
                                        const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    bson_t cmd, arr, idx;
    bson_iter_t it;
    bool unacked;
    const char *bad = n ? NULL : "no index given";
    bson_init(&cmd);
    bson_append_utf8(&cmd, "createIndexes", -1, coll->name, -1);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    for (size_t i = 0; i < n; i++) {
        char key[24], name[512];
        snprintf(key, sizeof key, "%zu", i);
        if (!models[i] || !bson_iter_init_find(&it, models[i], "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bad = "an index model without a \"key\" document";
            continue;
        }
        BSON_APPEND_DOCUMENT_BEGIN(&arr, key, &idx);
        bson_concat(&idx, models[i]);
        if (!bson_iter_init_find(&it, models[i], "name")) {
            bson_t keys;
            uint32_t len;
            const uint8_t *data;
            bson_iter_init_find(&it, models[i], "key");
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&keys, data, len)) default_index_name(&keys, name, sizeof name);
            else name[0] = '\0';
            BSON_APPEND_UTF8(&idx, "name", name);
        }
        bson_append_document_end(&arr, &idx);
    }
    bson_append_array_end(&cmd, &arr);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(coll->client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(coll->client, coll->db, &cmd, opts, MQC_RETRY_NONE, n == 1 ? index_result : NULL, cb, ud);
    if (bad) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "createIndexes: %s", bad);
    return mqc_op_submit(op);
}

mqc_op_t *mqc_collection_create_index(mqc_collection_t *coll, const bson_t *keys, const bson_t *index_opts,
                                      const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    bson_t model = BSON_INITIALIZER;
    if (keys) BSON_APPEND_DOCUMENT(&model, "key", keys);
    if (index_opts) bson_concat(&model, index_opts);
    const bson_t *models[] = {&model};
    mqc_op_t *op = mqc_collection_create_indexes(coll, models, 1, opts, cb, ud);
    bson_destroy(&model);
    return op;
}

mqc_op_t *mqc_collection_drop_index(mqc_collection_t *coll, const char *name, const bson_t *opts, mqc_reply_cb cb,
                                    void *ud)
{
    bson_t cmd;
    bool unacked;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "dropIndexes", -1, coll->name, -1);
    bson_append_utf8(&cmd, "index", -1, name ? name : "", -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(coll->client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(coll->client, coll->db, &cmd, opts, MQC_RETRY_NONE, NULL, cb, ud);
    /* "*" would drop every index: that is mqc_collection_drop_indexes, said out loud. */
    if (!name || !*name || !strcmp(name, "*"))
        mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "dropIndex: no index name (or \"*\")");
    return mqc_op_submit(op);
}

mqc_op_t *mqc_collection_drop_indexes(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    bson_t cmd;
    bool unacked;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "dropIndexes", -1, coll->name, -1);
    bson_append_utf8(&cmd, "index", -1, "*", -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(coll->client, &cmd, opts, &unacked);
    return mqc_op_submit(submit(coll->client, coll->db, &cmd, opts, MQC_RETRY_NONE, NULL, cb, ud));
}

/* ---- collections and databases ------------------------------------------------------------- */

mqc_op_t *mqc_database_create_collection(mqc_database_t *database, const char *name, const bson_t *opts,
                                         mqc_reply_cb cb, void *ud)
{
    mqc_client_t *client = mqc_database_get_client(database);
    const char *db = mqc_database_get_name(database);
    bson_t cmd;
    bool unacked;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "create", -1, name ? name : "", -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(client, db, &cmd, opts, MQC_RETRY_NONE, NULL, cb, ud);
    if (!name || !*name) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "createCollection: no name");
    return mqc_op_submit(op);
}

/* drop succeeds on a collection that does not exist (NamespaceNotFound, code 26), as every
 * driver's drop does: the caller wanted it gone and it is. */
typedef struct {
    mqc_reply_cb cb;
    void *ud;
} drop_ctx_t;

static void on_drop(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    drop_ctx_t ctx = *(drop_ctx_t *) ud;
    free(ud);
    if (error && error->domain == MQC_ERROR_SERVER && error->code == 26) {
        bson_t ok = BSON_INITIALIZER;
        BSON_APPEND_DOUBLE(&ok, "ok", 1.0);
        if (ctx.cb) ctx.cb(op, &ok, NULL, ctx.ud);
        bson_destroy(&ok);
        return;
    }
    if (ctx.cb) ctx.cb(op, reply, error, ctx.ud);
}

static mqc_op_t *drop_in(mqc_client_t *client, const char *db, const char *name, const bson_t *opts,
                         mqc_reply_cb cb, void *ud)
{
    bson_t cmd;
    bool unacked;
    drop_ctx_t *ctx = malloc(sizeof *ctx);
    if (!ctx) abort();
    ctx->cb = cb;
    ctx->ud = ud;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "drop", -1, name ? name : "", -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(client, db, &cmd, opts, MQC_RETRY_NONE, NULL, on_drop, ctx);
    if (!name || !*name) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "drop: no collection name");
    return mqc_op_submit(op);
}

mqc_op_t *mqc_database_drop_collection(mqc_database_t *database, const char *name, const bson_t *opts,
                                       mqc_reply_cb cb, void *ud)
{
    mqc_client_t *client = mqc_database_get_client(database);
    const char *db = mqc_database_get_name(database);
    mqc_op_t *op = drop_in(client, db, name, opts, cb, ud);
    return op;
}

mqc_op_t *mqc_collection_drop(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    return drop_in(coll->client, coll->db, coll->name, opts, cb, ud);
}

mqc_op_t *mqc_database_drop(mqc_database_t *database, const bson_t *opts, mqc_reply_cb cb, void *ud)
{
    mqc_client_t *client = mqc_database_get_client(database);
    const char *db = mqc_database_get_name(database);
    bson_t cmd;
    bool unacked;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "dropDatabase", 1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(client, db, &cmd, opts, MQC_RETRY_NONE, NULL, cb, ud);
    return mqc_op_submit(op);
}

mqc_op_t *mqc_collection_rename(mqc_collection_t *coll, const char *new_db, const char *new_name, const bson_t *opts,
                                mqc_reply_cb cb, void *ud)
{
    bson_t cmd;
    bool unacked;
    char *from = bson_strdup_printf("%s.%s", coll->db, coll->name);
    char *to = bson_strdup_printf("%s.%s", new_db && *new_db ? new_db : coll->db, new_name ? new_name : "");
    bson_init(&cmd);
    bson_append_utf8(&cmd, "renameCollection", -1, from, -1);
    bson_append_utf8(&cmd, "to", -1, to, -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_write_concern(coll->client, &cmd, opts, &unacked);
    mqc_op_t *op = submit(coll->client, "admin", &cmd, opts, MQC_RETRY_NONE, NULL, cb, ud);
    if (!new_name || !*new_name) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "rename: no new name");
    bson_free(from);
    bson_free(to);
    return mqc_op_submit(op);
}
