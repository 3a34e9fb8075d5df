/* The operations of the unified test format, each through mqc's public API, and the checks of
 * their results (expectResult, expectError, saveResultAsEntity). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <time.h>

#include "ops.h"
#include "../spec/spec.h"

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
    uxo_set_result_doc(c, &arr);
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
        if (!uxo_arg_doc(c, "command", &cmd, true) || !uxo_opts_from_args(c, &opts, taken)) return false;
        mqc_database_command(db, &cmd, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        if (c->r->reply) uxo_set_result_doc(c, c->r->reply);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "runCursorCommand") || !strcmp(n, "createCommandCursor") || !strcmp(n, "aggregate")) {
        static const char *const taken[] = {"command", "commandName", "pipeline", NULL};
        bson_t built = BSON_INITIALIZER;
        if (!strcmp(n, "aggregate")) {
            bson_t pipeline, cur;
            bson_iter_t it;
            if (!uxo_arg_doc(c, "pipeline", &pipeline, true)) return false;
            BSON_APPEND_INT32(&built, "aggregate", 1);
            BSON_APPEND_ARRAY(&built, "pipeline", &pipeline);
            BSON_APPEND_DOCUMENT_BEGIN(&built, "cursor", &cur);
            if (bson_iter_init_find(&it, c->args, "batchSize")) bson_append_iter(&cur, "batchSize", -1, &it);
            bson_append_document_end(&built, &cur);
            static const char *const pass[] = {"allowDiskUse", "comment", "let", "maxTimeMS", "hint", "collation", NULL};
            for (const char *const *k = pass; *k; k++)
                if (bson_iter_init_find(&it, c->args, *k)) bson_append_iter(&built, *k, -1, &it);
        } else if (!uxo_arg_doc(c, "command", &cmd, true)) return false;
        else bson_concat(&built, &cmd);
        if (!uxo_opts_from_args(c, &opts, taken)) {
            bson_destroy(&built);
            return false;
        }
        if (!strcmp(n, "createCommandCursor")) {
            struct ux_cursor *uc = uxo_cursor_wrap(client);
            uc->cursor = mqc_database_run_cursor_command(db, &built, &opts, uxo_on_batch_one, uc);
            uxo_cursor_wait(uc);
            if (uc->r.has_err) {
                c->r->err = uc->r.err;
                c->r->has_err = true;
                ux_cursor_free(uc);
            } else c->new_cursor = uc;
            c->r->done = true;
        } else {
            mqc_cursor_t *cur = mqc_database_run_cursor_command(db, &built, &opts, uxo_on_batch_all, c->r);
            uxo_wait_for(client, &c->r->done);
            mqc_cursor_destroy(cur);
            uxo_set_result_docs(c, c->r->docs, c->r->n);
        }
        bson_destroy(&built);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createCollection") || !strcmp(n, "dropCollection")) {
        static const char *const taken[] = {"collection", NULL};
        const char *name = spec_str(c->args, "collection");
        if (!name) return uxo_bad(c, "%s", "no collection");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (!strcmp(n, "createCollection")) mqc_database_create_collection(db, name, &opts, uxo_on_reply, c->r);
        else mqc_database_drop_collection(db, name, &opts, uxo_on_reply, c->r);
        uxo_wait_for(client, &c->r->done);
        if (!strcmp(n, "createCollection") && c->r->done && !c->r->has_err) c->new_coll = mqc_database_get_collection(db, name);
        bson_destroy(&opts);
        return true;
    }
    if (!strncmp(n, "listCollection", 14)) {
        static const char *const taken[] = {"filter", NULL};
        bool names = !strcmp(n, "listCollectionNames");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (names) BSON_APPEND_BOOL(&opts, "nameOnly", true);
        mqc_cursor_t *cur = mqc_database_list_collections(db, uxo_arg_doc(c, "filter", &filter, false) ? &filter : NULL,
                                                          &opts, uxo_on_batch_all, c->r);
        uxo_wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (names) names_of(c, "name");
        else uxo_set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return uxo_lacks(c, "change streams");
    if (!strcmp(n, "modifyCollection")) return uxo_lacks(c, "a collMod helper");
    return uxo_bad(c, "%s is not an operation of a database", n);
}

static bool client_op(call_t *c, mqc_client_t *client)
{
    const char *n = c->name;
    bson_t opts, filter;
    if (!strncmp(n, "listDatabase", 12)) {
        static const char *const taken[] = {"filter", NULL};
        bool names = !strcmp(n, "listDatabaseNames");
        if (!uxo_opts_from_args(c, &opts, taken)) return false;
        if (names) BSON_APPEND_BOOL(&opts, "nameOnly", true);
        mqc_cursor_t *cur = mqc_client_list_databases(client, uxo_arg_doc(c, "filter", &filter, false) ? &filter : NULL,
                                                      &opts, uxo_on_batch_all, c->r);
        uxo_wait_for(client, &c->r->done);
        mqc_cursor_destroy(cur);
        if (names) names_of(c, "name");
        else uxo_set_result_docs(c, c->r->docs, c->r->n);
        bson_destroy(&opts);
        return true;
    }
    if (!strcmp(n, "createChangeStream")) return uxo_lacks(c, "change streams");
    if (!strcmp(n, "clientBulkWrite")) return uxo_lacks(c, "client-level bulk write (bulkWrite command)");
    if (!strcmp(n, "close")) return uxo_lacks(c, "closing a client entity in the runner");
    return uxo_bad(c, "%s is not an operation of a client", n);
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
                uxo_set_result_doc(c, uc->r.docs[uc->head++]);
                break;
            }
            if (uc->r.has_err) {
                c->r->err = uc->r.err;
                c->r->has_err = true;
                break;
            }
            if (!uc->cursor || !mqc_cursor_more(uc->cursor)) {
                if (once) break;
                return uxo_bad(c, "%s", "the cursor is exhausted");
            }
            uc->batch_pending = true;
            if (!mqc_cursor_next(uc->cursor)) return uxo_bad(c, "%s", "getMore could not be sent");
            uxo_cursor_wait(uc);
            if (once && uc->head == uc->r.n && !uc->r.has_err) break;
        }
        c->r->done = true;
        return true;
    }
    return uxo_bad(c, "%s is not an operation of a cursor", n);
}

/* ---- testRunner operations ----------------------------------------------------------------------- */

static ux_entity_t *client_arg(call_t *c)
{
    const char *id = spec_str(c->args, "client");
    ux_entity_t *e = id ? ux_entity(c->run, id) : NULL;
    if (!e || e->kind != ENT_CLIENT) {
        uxo_bad(c, "no client entity \"%s\"", id ? id : "(none)");
        return NULL;
    }
    if (e->lacks) {
        uxo_lacks(c, e->lacks);
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
        cur = mqc_collection_list_indexes(h, NULL, uxo_on_batch_all, &r);
        mqc_collection_destroy(h);
    } else {
        mqc_database_t *h = mqc_client_get_database(c->run->internal, db);
        cur = mqc_database_list_collections(h, NULL, NULL, uxo_on_batch_all, &r);
        mqc_database_destroy(h);
    }
    uxo_wait_for(c->run->internal, &r.done);
    mqc_cursor_destroy(cur);
    *found = false;
    for (size_t i = 0; i < r.n; i++) {
        const char *nm = spec_str(r.docs[i], "name");
        if (nm && !strcmp(nm, index ? index : coll)) *found = true;
    }
    bool ok = !r.has_err || (index && r.err.code == 26);
    if (!ok) ux_set(&c->run->v, 1, "%s: listing: %s", c->name, r.err.message);
    uxo_res_free(&r);
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
        if (!(e = client_arg(c)) || !uxo_arg_doc(c, "failPoint", &fp, true)) return false;
        const char *name = spec_str(&fp, "configureFailPoint");
        if (!name) return uxo_bad(c, "%s", "failPoint without configureFailPoint");
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
        return uxo_lacks(c, "explicit sessions");
    if (!strcmp(n, "assertCollectionExists") || !strcmp(n, "assertCollectionNotExists") ||
        !strcmp(n, "assertIndexExists") || !strcmp(n, "assertIndexNotExists")) {
        const char *db = spec_str(c->args, "databaseName"), *coll = spec_str(c->args, "collectionName");
        const char *idx = strstr(n, "Index") ? spec_str(c->args, "indexName") : NULL;
        bool found, want = !strstr(n, "NotExists");
        if (!db || !coll || (strstr(n, "Index") && !idx)) return uxo_bad(c, "%s", "missing names");
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
            return uxo_bad(c, "%s", "no connections count");
        if (bson_iter_as_int64(&it) != e->uc->checked_out)
            return ux_set(&c->run->v, 1, "%s: %" PRId64 " connections checked out, expected %" PRId64, n,
                          e->uc->checked_out, bson_iter_as_int64(&it));
        return true;
    }
    if (!strcmp(n, "createEntities")) {
        bson_t arr;
        if (!uxo_arg_doc(c, "entities", &arr, true)) return false;
        return ux_create_entities(c->run, &arr);
    }
    if (!strcmp(n, "wait")) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, c->args, "ms")) return uxo_bad(c, "%s", "no ms");
        struct timespec ts = {bson_iter_as_int64(&it) / 1000, (bson_iter_as_int64(&it) % 1000) * 1000000};
        nanosleep(&ts, NULL);
        for (size_t i = 0; i < c->run->n_ents; i++)
            if (c->run->ents[i].kind == ENT_CLIENT) mqc_client_run_until_idle(c->run->ents[i].client, 0.01);
        return true;
    }
    if (!strcmp(n, "waitForEvent") || !strcmp(n, "assertEventCount")) {
        bson_t ev;
        bson_iter_t it;
        if (!(e = client_arg(c)) || !uxo_arg_doc(c, "event", &ev, true)) return false;
        if (!bson_iter_init_find(&it, c->args, "count")) return uxo_bad(c, "%s", "no count");
        int want = (int) bson_iter_as_int64(&it);
        bson_iter_t k;
        bson_iter_init(&k, &ev);
        bson_iter_next(&k);
        if (ux_event_bit(bson_iter_key(&k)) < 0) return uxo_lacks(c, "observing that event in the runner");
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
    if (!strcmp(n, "runOnThread") || !strcmp(n, "waitForThread")) return uxo_lacks(c, "threads in the runner");
    if (!strcmp(n, "loop")) return uxo_lacks(c, "the loop operation in the runner");
    if (strstr(n, "Topology") || !strcmp(n, "waitForPrimaryChange")) return uxo_lacks(c, "SDAM events in the runner");
    return uxo_bad(c, "%s is not an operation of the test runner", n);
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
            if (h < 0) return uxo_lacks(c, "error labels other than RetryableWriteError, TransientTransactionError, NoWritesPerformed");
            if (h == pass) return ux_set(&run->v, 1, "%s: label %s %s (error: %s)", c->name, l, pass ? "present" : "absent", err->message);
        }
    }
    if (spec_has(ee, "errorResponse")) return uxo_lacks(c, "the server's error document in mqc_error_t (errorResponse)");
    if (spec_has(ee, "writeErrors") || spec_has(ee, "writeConcernErrors")) return uxo_lacks(c, "client bulk write errors");
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
        if (e->lacks) ok = uxo_lacks(&c, e->lacks);
        else if (e->kind == ENT_COLLECTION) ok = uxo_collection_op(&c, e->coll);
        else if (e->kind == ENT_DATABASE) ok = database_op(&c, e->db);
        else if (e->kind == ENT_CLIENT) ok = client_op(&c, e->client);
        else if (e->kind == ENT_CURSOR) ok = cursor_op(&c, e->cursor);
        else if (e->kind == ENT_SESSION) ok = uxo_lacks(&c, "explicit sessions");
        else ok = uxo_bad(&c, "entity %s takes no operations", obj);
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
        uxo_res_free(c.r);
        free(c.r);
    }
    return ok;
}
