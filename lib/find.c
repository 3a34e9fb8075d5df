/* find: the CRUD calls that read documents: find and aggregate (cursors), find_one,
 * count_documents, estimated_document_count and distinct; their commands are built here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cursor.h"
#include "handles.h"
#include "hotcmd.h"
#include "op.h"

static const bson_t *or_empty(const bson_t *b, bson_t *empty)
{
    if (b) return b;
    bson_init(empty);
    return empty;
}

static void build_find(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                    bson_t *cmd)
{
    static const char *const handled[] = {"limit", "singleBatch", "batchSize", NULL};
    bson_t empty;
    bson_iter_t it;
    int64_t limit = 0, batch = -1;
    bson_append_utf8(cmd, "find", -1, coll->name, -1);
    BSON_APPEND_DOCUMENT(cmd, "filter", or_empty(filter, &empty));
    mqc_copy_passthrough_opts(cmd, opts, handled);
    /* A negative limit means "one batch of at most |limit|", as the legacy drivers had it. */
    bool single = opts && bson_iter_init_find(&it, opts, "singleBatch") && bson_iter_as_bool(&it);
    if (opts && bson_iter_init_find(&it, opts, "limit") && BSON_ITER_HOLDS_NUMBER(&it)) {
        limit = bson_iter_as_int64(&it);
        if (limit < 0) {
            limit = -limit;
            single = true;
        }
        if (limit) BSON_APPEND_INT64(cmd, "limit", limit);
    }
    if (opts && bson_iter_init_find(&it, opts, "batchSize")) {
        batch = BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
        /* A batch as large as the limit would leave the cursor open for one empty getMore: one
         * more lets the server see the end and close it (the CRUD specification's advice). */
        if (batch > 0 && limit > 0 && batch == limit && !single) BSON_APPEND_INT64(cmd, "batchSize", limit + 1);
        else bson_append_iter(cmd, "batchSize", -1, &it);
    }
    if (single) BSON_APPEND_BOOL(cmd, "singleBatch", true);
    mqc_apply_read_opts(client, cmd, opts);
    BSON_APPEND_UTF8(cmd, "$db", coll->db);
}

static void build_aggregate(mqc_client_t *client, const mqc_collection_t *coll, const bson_t *pipeline,
                         const bson_t *opts, bson_t *cmd)
{
    static const char *const handled[] = {"batchSize", NULL};
    bson_iter_t it;
    bson_t cursor;
    bson_append_utf8(cmd, "aggregate", -1, coll->name, -1);
    if (pipeline && bson_iter_init_find(&it, pipeline, "pipeline") && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_append_iter(cmd, "pipeline", -1, &it);
    } else {
        bson_t empty;
        BSON_APPEND_ARRAY(cmd, "pipeline", or_empty(pipeline, &empty));
    }
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "cursor", &cursor);
    if (opts && bson_iter_init_find(&it, opts, "batchSize") && BSON_ITER_HOLDS_NUMBER(&it))
        BSON_APPEND_INT32(&cursor, "batchSize", (int32_t) bson_iter_as_int64(&it));
    bson_append_document_end(cmd, &cursor);
    mqc_copy_passthrough_opts(cmd, opts, handled);
    mqc_apply_read_opts(client, cmd, opts);
    BSON_APPEND_UTF8(cmd, "$db", coll->db);
}

/* ---- cursors: find and aggregate ------------------------------------------------------------ */

mqc_cursor_t *mqc_collection_find(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts, mqc_batch_cb cb,
                                  void *ud)
{
    bson_t cmd;
    bson_init(&cmd);
    build_find(coll->client, coll, filter, opts, &cmd);
    return mqc_cursor_start(coll->client, coll->db, coll->name, &cmd, opts, true, cb, ud);
}

/* True when a stage of the aggregate command's pipeline writes ($out, $merge): the retryable
 * reads specification excludes such an aggregate, since a retry after a lost reply could write
 * twice. */
static bool pipeline_writes(const bson_t *cmd)
{
    bson_iter_t f, it, stage;
    if (!bson_iter_init_find(&f, cmd, "pipeline") || !BSON_ITER_HOLDS_ARRAY(&f) || !bson_iter_recurse(&f, &it))
        return false;
    while (bson_iter_next(&it))
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &stage) && bson_iter_next(&stage) &&
            (!strcmp(bson_iter_key(&stage), "$out") || !strcmp(bson_iter_key(&stage), "$merge")))
            return true;
    return false;
}

mqc_cursor_t *mqc_collection_aggregate(mqc_collection_t *coll, const bson_t *pipeline, const bson_t *opts,
                                       mqc_batch_cb cb, void *ud)
{
    bson_t cmd;
    bson_init(&cmd);
    build_aggregate(coll->client, coll, pipeline, opts, &cmd);
    return mqc_cursor_start(coll->client, coll->db, coll->name, &cmd, opts, !pipeline_writes(&cmd), cb, ud);
}

/* ---- one result: find_one, count_documents, estimated_document_count, distinct ------------- */

/* A command op taking over a command that already holds "$db". */
static mqc_op_t *op_for(mqc_collection_t *coll, bson_t *cmd, const bson_t *opts, mqc_cmd_result_fn result,
                        mqc_reply_cb cb, void *ud)
{
    mqc_op_t *op = mqc_cmd_op_take(coll->client, coll->db, cmd, cb, ud);
    mqc_cmd_impl_t *impl = op->impl;
    impl->result = result;
    op->retry = MQC_RETRY_READ; /* count, distinct; findAndModify turns it into a write */
    mqc_op_set_timeout_from(op, opts);
    return op;
}

/* batch inside the cursor document `cursor` (an iterator on it) */
static bool cursor_first_batch(const bson_iter_t *cursor, bson_iter_t *batch)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(cursor) || !bson_iter_recurse(cursor, batch)) return false;
    while (bson_iter_next(batch)) {
        const char *k = bson_iter_key(batch);
        if ((!strcmp(k, "firstBatch") || !strcmp(k, "nextBatch")) && BSON_ITER_HOLDS_ARRAY(batch))
            return bson_iter_recurse(batch, batch);
    }
    return false;
}

static bool reply_first_batch(const bson_t *reply, bson_iter_t *batch)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, reply, "cursor") && cursor_first_batch(&it, batch);
}

static bool bad_reply(mqc_cmd_result_t *r, const char *what)
{
    mqc_error_set(&r->error, MQC_ERROR_PROTOCOL, 0, "%s: the server's reply has no %s", r->name, what);
    return false;
}

/* find_one's result: the first document of the first batch, or none. */
static bool find_one_result(mqc_cmd_result_t *r)
{
    const uint8_t *data;
    uint32_t len;
    /* The reply was scanned once on arrival (op.c), the batch most often seen by that scan. */
    if (!mqc_hotcmd_scan_first_doc(r->reply, r->scan, &data, &len))
        return bad_reply(r, "cursor.firstBatch");
    r->result = data && bson_init_static(r->view, data, len) ? r->view : NULL;
    return true;
}

/* find_one's command the generic way, for what hotcmd.c does not write (the same bytes when
 * both do). Out of line: its bson_t would give every find_one a 128-byte aligned frame. */
static __attribute__((noinline)) void build_find_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                                     bson_t *cmd)
{
    static const char *const drop[] = {"limit", "batchSize", "singleBatch", NULL};
    bson_t empty;
    bson_append_utf8(cmd, "find", 4, coll->name, -1);
    BSON_APPEND_DOCUMENT(cmd, "filter", or_empty(filter, &empty));
    mqc_copy_passthrough_opts(cmd, opts, drop);
    BSON_APPEND_INT32(cmd, "limit", 1);
    BSON_APPEND_BOOL(cmd, "singleBatch", true);
    mqc_apply_read_opts(coll->client, cmd, opts);
    BSON_APPEND_UTF8(cmd, "$db", coll->db);
}

mqc_op_t *mqc_collection_find_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts, mqc_reply_cb cb,
                                  void *ud)
{
    /* Built in one pass: this is the hot path of key lookups. Plain ones (no options that reach
     * the command) are written from prebuilt bytes (hotcmd.c), the same bytes as build_find_one. */
    mqc_cmd_impl_t *impl = mqc_cmd_impl_get(coll->client);
    bson_t *cmd = &impl->cmd;
    if (!mqc_hotcmd_find_one_n(cmd, coll->name, coll->name_len, coll->db, coll->db_len, filter, opts,
                               &mqc_ops_of(coll->client)->uri->read_concern))
        build_find_one(coll, filter, opts, cmd);
    impl->result = find_one_result;
    /* Both builders start the command with "find" (mqc_cmd_op_adopt_named's op, made here
     * with the db's length the handle knows). */
    mqc_op_t *op = mqc_op_new_n(coll->client, &mqc_cmd_vt, "find", coll->db, coll->db_len, cb, ud);
    op->impl = impl;
    op->retry = MQC_RETRY_READ;
    if (opts && opts->len > 5) mqc_op_set_timeout_from(op, opts); /* nothing to read in {} */
    return mqc_op_submit(op);
}

/* count_documents' result: {count: n} from the $group stage's one document (none: 0). */
static bool count_result(mqc_cmd_result_t *r)
{
    bson_iter_t batch, n;
    int64_t count = 0;
    if (!reply_first_batch(r->reply, &batch)) return bad_reply(r, "cursor.firstBatch");
    if (bson_iter_next(&batch) && bson_iter_recurse(&batch, &n) && bson_iter_find(&n, "n")) count = bson_iter_as_int64(&n);
    bson_init(r->tmp);
    BSON_APPEND_INT64(r->tmp, "count", count);
    r->result = r->tmp;
    return true;
}

mqc_op_t *mqc_collection_count_documents(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                         mqc_reply_cb cb, void *ud)
{
    static const char *const handled[] = {"skip", "limit", NULL};
    bson_t pipeline, stage, inner, cmd, o, empty;
    bson_iter_t it;
    bson_init(&pipeline);
    BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "0", &stage);
    BSON_APPEND_DOCUMENT(&stage, "$match", or_empty(filter, &empty));
    bson_append_document_end(&pipeline, &stage);
    int i = 1;
    char key[16];
    for (const char *const *k = handled; *k; k++)
        if (opts && bson_iter_init_find(&it, opts, *k) && BSON_ITER_HOLDS_NUMBER(&it)) {
            snprintf(key, sizeof key, "%d", i++);
            BSON_APPEND_DOCUMENT_BEGIN(&pipeline, key, &stage);
            BSON_APPEND_INT64(&stage, !strcmp(*k, "skip") ? "$skip" : "$limit", bson_iter_as_int64(&it));
            bson_append_document_end(&pipeline, &stage);
        }
    snprintf(key, sizeof key, "%d", i);
    BSON_APPEND_DOCUMENT_BEGIN(&pipeline, key, &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &inner);
    BSON_APPEND_INT32(&inner, "_id", 1);
    bson_t sum;
    BSON_APPEND_DOCUMENT_BEGIN(&inner, "n", &sum);
    BSON_APPEND_INT32(&sum, "$sum", 1);
    bson_append_document_end(&inner, &sum);
    bson_append_document_end(&stage, &inner);
    bson_append_document_end(&pipeline, &stage);
    bson_init(&o);
    mqc_copy_passthrough_opts(&o, opts, handled);
    for (const char *const *k = (const char *const[]){"readConcern", "readPreference", "timeoutMS", NULL}; *k; k++)
        if (opts && bson_iter_init_find(&it, opts, *k)) bson_append_iter(&o, *k, -1, &it);
    bson_init(&cmd);
    build_aggregate(coll->client, coll, &pipeline, &o, &cmd);
    mqc_op_t *op = op_for(coll, &cmd, &o, count_result, cb, ud);
    op->name = "count";
    bson_destroy(&pipeline);
    bson_destroy(&o);
    return mqc_op_submit(op);
}

static bool estimated_count_result(mqc_cmd_result_t *r)
{
    bson_iter_t it;
    bson_init(r->tmp);
    BSON_APPEND_INT64(r->tmp, "count", bson_iter_init_find(&it, r->reply, "n") ? bson_iter_as_int64(&it) : 0);
    r->result = r->tmp;
    return true;
}

mqc_op_t *mqc_collection_estimated_document_count(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb,
                                                  void *ud)
{
    bson_t cmd;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "count", -1, coll->name, -1);
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_read_opts(coll->client, &cmd, opts);
    BSON_APPEND_UTF8(&cmd, "$db", coll->db);
    return mqc_op_submit(op_for(coll, &cmd, opts, estimated_count_result, cb, ud));
}

mqc_op_t *mqc_collection_distinct(mqc_collection_t *coll, const char *key, const bson_t *filter, const bson_t *opts,
                                  mqc_reply_cb cb, void *ud)
{
    bson_t cmd, empty;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "distinct", -1, coll->name, -1);
    bson_append_utf8(&cmd, "key", -1, key ? key : "", -1);
    BSON_APPEND_DOCUMENT(&cmd, "query", or_empty(filter, &empty));
    mqc_copy_passthrough_opts(&cmd, opts, NULL);
    mqc_apply_read_opts(coll->client, &cmd, opts);
    BSON_APPEND_UTF8(&cmd, "$db", coll->db);
    mqc_op_t *op = op_for(coll, &cmd, opts, NULL, cb, ud);
    if (!key || !*key) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "distinct: no key");
    return mqc_op_submit(op);
}
