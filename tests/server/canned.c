/* canned: the benchmark's mode of the scripted server (canned.h). */
#include "canned.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A batch stops growing here, well below the BSON limit, as a real server's batches do. */
#define MAX_BATCH_BYTES (4 * 1024 * 1024)
#define DEFAULT_FIRST_BATCH 101

/* --- cursors -------------------------------------------------------------------------------- */

struct canned_cursor {
    int64_t id; /* 0: free slot */
    int64_t next, end;
    char ns[128];
};
typedef struct canned_cursor cursor_t;

/* The id carries the slot in its low 32 bits and a generation above, so a lookup is O(1) and an
 * old id never finds a reused slot. */
static cursor_t *cursor_new(canned_t *m, const char *ns, int64_t next, int64_t end)
{
    size_t slot;
    if (m->cursor_free_len) {
        slot = m->cursor_free[--m->cursor_free_len];
    } else {
        if (m->cursors_len == m->cursors_cap) {
            m->cursors_cap = m->cursors_cap ? m->cursors_cap * 2 : 64;
            m->cursors = realloc(m->cursors, m->cursors_cap * sizeof *m->cursors);
            m->cursor_free = realloc(m->cursor_free, m->cursors_cap * sizeof *m->cursor_free);
            if (!m->cursors || !m->cursor_free) abort();
        }
        slot = m->cursors_len++;
    }
    m->cursor_gen = (m->cursor_gen % 0x7ffffffeu) + 1;
    cursor_t *cur = &m->cursors[slot];
    cur->id = (int64_t) ((uint64_t) m->cursor_gen << 32 | (uint64_t) slot);
    cur->next = next;
    cur->end = end;
    bson_strncpy(cur->ns, ns, sizeof cur->ns);
    m->cursors_opened++;
    m->cursors_open++;
    return cur;
}

static cursor_t *cursor_find(canned_t *m, int64_t id)
{
    uint64_t slot = (uint64_t) id & 0xffffffffu;
    if (id <= 0 || slot >= m->cursors_len || m->cursors[slot].id != id) return NULL;
    return &m->cursors[slot];
}

static void cursor_free(canned_t *m, cursor_t *cur)
{
    m->cursor_free[m->cursor_free_len++] = (size_t) (cur - m->cursors);
    cur->id = 0;
    m->cursors_open--;
}

static void reply_hello(const canned_t *m, bson_t *r, const srv_req_t *rq)
{
    BSON_APPEND_BOOL(r, "ismaster", true);
    BSON_APPEND_BOOL(r, "isWritablePrimary", true);
    if (m->mongos) BSON_APPEND_UTF8(r, "msg", "isdbgrid");
    if (m->set_name) {
        bson_t hosts;
        BSON_APPEND_UTF8(r, "setName", m->set_name);
        BSON_APPEND_INT32(r, "setVersion", 1);
        BSON_APPEND_BOOL(r, "secondary", false);
        BSON_APPEND_ARRAY_BEGIN(r, "hosts", &hosts);
        BSON_APPEND_UTF8(&hosts, "0", m->me);
        bson_append_array_end(r, &hosts);
        BSON_APPEND_UTF8(r, "primary", m->me);
        BSON_APPEND_UTF8(r, "me", m->me);
    }
    srv_append_hello_tail(r, rq, SRV_MAX_BSON_SIZE, SRV_MAX_MESSAGE_SIZE, SRV_MAX_WRITE_BATCH, true);
}

/* The canned document number i of every collection. */
static void append_doc(bson_t *arr, uint32_t index, int64_t i)
{
    const char *key;
    char kbuf[16];
    bson_uint32_to_string(index, &key, kbuf, sizeof kbuf);
    bson_t d;
    bson_append_document_begin(arr, key, -1, &d);
    BSON_APPEND_INT64(&d, "_id", i);
    BSON_APPEND_INT64(&d, "n", i * 7);
    BSON_APPEND_UTF8(&d, "s", "stubd canned document");
    BSON_APPEND_DOUBLE(&d, "x", (double) i * 0.5);
    bson_append_document_end(arr, &d);
}

/* The document answering {_id: v}: the same fields, with the client's own _id value. */
static void append_doc_for_id(bson_t *arr, const bson_iter_t *id)
{
    bson_t d;
    int64_t i = srv_iter_int64(id, 0);
    bson_append_document_begin(arr, "0", 1, &d);
    bson_append_iter(&d, "_id", 3, id);
    BSON_APPEND_INT64(&d, "n", i * 7);
    BSON_APPEND_UTF8(&d, "s", "stubd canned document");
    BSON_APPEND_DOUBLE(&d, "x", (double) i * 0.5);
    bson_append_document_end(arr, &d);
}

/* Appends the batch [*next, end) up to `batch` documents (< 0: no count limit) and the byte cap. */
static void append_batch(bson_t *cursor, const char *field, int64_t *next, int64_t end, int64_t batch)
{
    bson_t arr;
    uint32_t k = 0;
    bson_append_array_begin(cursor, field, -1, &arr);
    while (*next < end && (batch < 0 || (int64_t) k < batch) && arr.len < MAX_BATCH_BYTES) {
        append_doc(&arr, k++, *next);
        (*next)++;
    }
    bson_append_array_end(cursor, &arr);
}

/* A filter that names one _id by value ({_id: 5}, not {_id: {$gt: 5}}) finds one document. */
static bool filter_id(const bson_iter_t *filter, bson_iter_t *id)
{
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(filter) || !bson_iter_recurse(filter, &f)) return false;
    if (!bson_iter_find(&f, "_id")) return false;
    if (BSON_ITER_HOLDS_DOCUMENT(&f)) {
        bson_iter_t sub;
        if (bson_iter_recurse(&f, &sub) && bson_iter_next(&sub) && bson_iter_key(&sub)[0] == '$') return false;
    }
    *id = f;
    return true;
}

/* Builds {cursor: {firstBatch, id, ns}, ok: 1} for find and aggregate. */
static void reply_cursor(canned_t *m, bson_t *r, const srv_req_t *rq, const char *coll, const bson_iter_t *id,
                         int64_t skip, int64_t limit, int64_t batch, bool single_batch)
{
    char ns[128];
    bson_t cur, arr;
    int64_t cursor_id = 0;
    snprintf(ns, sizeof ns, "%s.%s", rq->db, coll);
    bson_append_document_begin(r, "cursor", 6, &cur);
    if (id) {
        bson_append_array_begin(&cur, "firstBatch", 10, &arr);
        append_doc_for_id(&arr, id);
        bson_append_array_end(&cur, &arr);
    } else {
        int64_t next = skip < 0 ? 0 : skip, end = m->docs;
        if (limit < 0) {
            limit = -limit;
            single_batch = true;
        }
        if (limit > 0 && next + limit < end) end = next + limit;
        if (next > end) next = end;
        /* No batchSize: 101 documents, or everything for a single batch; batchSize 0 asks for an
         * empty first batch and a cursor (a single batch of nothing would be useless: all). */
        if (batch < 0 || (batch == 0 && single_batch)) batch = single_batch ? -1 : DEFAULT_FIRST_BATCH;
        append_batch(&cur, "firstBatch", &next, end, batch);
        if (next < end && !single_batch) cursor_id = cursor_new(m, ns, next, end)->id;
    }
    BSON_APPEND_INT64(&cur, "id", cursor_id);
    BSON_APPEND_UTF8(&cur, "ns", ns);
    bson_append_document_end(r, &cur);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static void cmd_find(canned_t *m, bson_t *r, const srv_req_t *rq, bson_iter_t *it)
{
    const char *coll = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : "stub";
    int64_t skip = 0, limit = 0, batch = -1;
    bool single = false, by_id = false;
    bson_iter_t f, id;
    bson_iter_init(&f, &rq->body);
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (!strcmp(k, "filter")) by_id = filter_id(&f, &id);
        else if (!strcmp(k, "skip")) skip = srv_iter_int64(&f, 0);
        else if (!strcmp(k, "limit")) limit = srv_iter_int64(&f, 0);
        else if (!strcmp(k, "batchSize")) batch = srv_iter_int64(&f, -1);
        else if (!strcmp(k, "singleBatch")) single = bson_iter_as_bool(&f);
    }
    reply_cursor(m, r, rq, coll, by_id ? &id : NULL, skip, limit, batch, single);
}

static void cmd_aggregate(canned_t *m, bson_t *r, const srv_req_t *rq, bson_iter_t *it)
{
    const char *coll = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : "stub";
    int64_t limit = 0, skip = 0, batch = -1;
    bool by_id = false;
    bson_iter_t f, stages, stage, id;
    if (bson_iter_init_find(&f, &rq->body, "cursor") && BSON_ITER_HOLDS_DOCUMENT(&f) &&
        bson_iter_recurse(&f, &stage) && bson_iter_find(&stage, "batchSize"))
        batch = srv_iter_int64(&stage, -1);
    /* Honour the stages a benchmark uses: $match {_id: v}, $skip, $limit. */
    if (bson_iter_init_find(&f, &rq->body, "pipeline") && BSON_ITER_HOLDS_ARRAY(&f) &&
        bson_iter_recurse(&f, &stages)) {
        while (bson_iter_next(&stages)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&stages) || !bson_iter_recurse(&stages, &stage) ||
                !bson_iter_next(&stage))
                continue;
            const char *op = bson_iter_key(&stage);
            if (!strcmp(op, "$match")) by_id = by_id || filter_id(&stage, &id);
            else if (!strcmp(op, "$limit")) limit = srv_iter_int64(&stage, 0);
            else if (!strcmp(op, "$skip")) skip = srv_iter_int64(&stage, 0);
        }
    }
    reply_cursor(m, r, rq, coll, by_id ? &id : NULL, skip, limit, batch, false);
}

static void cmd_get_more(canned_t *m, bson_t *r, const srv_req_t *rq, bson_iter_t *it)
{
    int64_t id = srv_iter_int64(it, 0), batch = -1;
    bson_iter_t f;
    if (bson_iter_init_find(&f, &rq->body, "batchSize")) batch = srv_iter_int64(&f, -1);
    if (batch == 0) batch = -1; /* getMore's batchSize 0 means "the server's choice" */
    cursor_t *cur = cursor_find(m, id);
    if (!cur) {
        char msg[96];
        snprintf(msg, sizeof msg, "cursor id %" PRId64 " not found", id);
        srv_reply_error(r, 43, "CursorNotFound", msg);
        return;
    }
    bson_t c;
    bson_append_document_begin(r, "cursor", 6, &c);
    append_batch(&c, "nextBatch", &cur->next, cur->end, batch);
    BSON_APPEND_INT64(&c, "id", cur->next < cur->end ? cur->id : 0);
    BSON_APPEND_UTF8(&c, "ns", cur->ns);
    bson_append_document_end(r, &c);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
    if (cur->next >= cur->end) cursor_free(m, cur);
}

static void cmd_kill_cursors(canned_t *m, bson_t *r, const srv_req_t *rq, bson_iter_t *it)
{
    bson_t killed, missing, empty;
    bson_iter_t f, ids;
    uint32_t nk = 0, nm = 0;
    char kbuf[16];
    const char *key;
    bson_append_array_begin(r, "cursorsKilled", -1, &killed);
    bson_t missing_tmp = BSON_INITIALIZER; /* filled in the same pass, appended after */
    if (bson_iter_init_find(&f, &rq->body, "cursors") && BSON_ITER_HOLDS_ARRAY(&f) && bson_iter_recurse(&f, &ids)) {
        while (bson_iter_next(&ids)) {
            int64_t id = srv_iter_int64(&ids, 0);
            cursor_t *cur = cursor_find(m, id);
            if (cur) {
                cursor_free(m, cur);
                bson_uint32_to_string(nk++, &key, kbuf, sizeof kbuf);
                bson_append_int64(&killed, key, -1, id);
            } else {
                bson_uint32_to_string(nm++, &key, kbuf, sizeof kbuf);
                bson_append_int64(&missing_tmp, key, -1, id);
            }
        }
    }
    bson_append_array_end(r, &killed);
    bson_append_array_begin(r, "cursorsNotFound", -1, &missing);
    bson_concat(&missing, &missing_tmp);
    bson_append_array_end(r, &missing);
    bson_destroy(&missing_tmp);
    bson_append_array_begin(r, "cursorsAlive", -1, &empty);
    bson_append_array_end(r, &empty);
    bson_append_array_begin(r, "cursorsUnknown", -1, &empty);
    bson_append_array_end(r, &empty);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static void cmd_write(bson_t *r, const srv_req_t *rq, const char *field, bool modified)
{
    int64_t n = (int64_t) srv_count_items(rq, field);
    if (n == 0 || n > SRV_MAX_WRITE_BATCH || rq->body.len > SRV_MAX_BSON_SIZE + 16 * 1024) {
        srv_check_limits(rq, r, SRV_MAX_BSON_SIZE, SRV_MAX_WRITE_BATCH); /* MongoDB's errors */
        return;
    }
    BSON_APPEND_INT32(r, "n", (int32_t) n);
    if (modified) BSON_APPEND_INT32(r, "nModified", (int32_t) n);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

static void cmd_count(canned_t *m, bson_t *r, const srv_req_t *rq)
{
    int64_t n = m->docs, skip = 0, limit = 0;
    bson_iter_t f, id;
    if (bson_iter_init_find(&f, &rq->body, "query") && filter_id(&f, &id)) n = 1;
    if (bson_iter_init_find(&f, &rq->body, "skip")) skip = srv_iter_int64(&f, 0);
    if (bson_iter_init_find(&f, &rq->body, "limit")) limit = srv_iter_int64(&f, 0);
    n = skip < n ? n - (skip > 0 ? skip : 0) : 0;
    if (limit < 0) limit = -limit;
    if (limit > 0 && limit < n) n = limit;
    BSON_APPEND_INT32(r, "n", (int32_t) n);
    BSON_APPEND_DOUBLE(r, "ok", 1.0);
}

void canned_command(void *ud, srv_t *s, srv_req_t *rq, bson_t *r)
{
    canned_t *m = ud;
    const char *name = rq->name;
    bson_iter_t *it = &rq->first;
    if (rq->refused) {
        return;
    } else if (rq->hello) {
        reply_hello(m, r, rq);
    } else if (rq->legacy) {
        /* As MongoDB 6+: OP_QUERY is for the first hello only. */
        srv_reply_error(r, 352, "UnsupportedOpQueryCommand", "OP_QUERY is only supported for hello");
    } else if (!strcmp(name, "find")) {
        cmd_find(m, r, rq, it);
    } else if (!strcmp(name, "getMore")) {
        cmd_get_more(m, r, rq, it);
    } else if (!strcmp(name, "killCursors")) {
        cmd_kill_cursors(m, r, rq, it);
    } else if (!strcmp(name, "insert")) {
        cmd_write(r, rq, "documents", false);
    } else if (!strcmp(name, "update")) {
        cmd_write(r, rq, "updates", true);
    } else if (!strcmp(name, "delete")) {
        cmd_write(r, rq, "deletes", false);
    } else if (!strcmp(name, "aggregate")) {
        cmd_aggregate(m, r, rq, it);
    } else if (!strcmp(name, "count")) {
        cmd_count(m, r, rq);
    } else if (!strcmp(name, "buildInfo") || !strcmp(name, "buildinfo")) {
        bson_t arr;
        BSON_APPEND_UTF8(r, "version", "7.0.0");
        bson_append_array_begin(r, "versionArray", -1, &arr);
        BSON_APPEND_INT32(&arr, "0", 7);
        BSON_APPEND_INT32(&arr, "1", 0);
        BSON_APPEND_INT32(&arr, "2", 0);
        BSON_APPEND_INT32(&arr, "3", 0);
        bson_append_array_end(r, &arr);
        BSON_APPEND_INT32(r, "maxBsonObjectSize", SRV_MAX_BSON_SIZE);
        BSON_APPEND_UTF8(r, "gitVersion", "stubd");
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else if (!strcmp(name, "getParameter")) {
        bson_t fcv;
        bson_append_document_begin(r, "featureCompatibilityVersion", -1, &fcv);
        BSON_APPEND_UTF8(&fcv, "version", "7.0");
        bson_append_document_end(r, &fcv);
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else if (!strcmp(name, "ping") || !strcmp(name, "endSessions") || !strcmp(name, "drop") ||
               !strcmp(name, "dropDatabase") || !strcmp(name, "create") ||
               !strcmp(name, "createIndexes") || !strcmp(name, "killAllSessions")) {
        BSON_APPEND_DOUBLE(r, "ok", 1.0);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "no such command: '%.100s'", name);
        srv_reply_error(r, 59, "CommandNotFound", msg);
    }
}

void canned_free(canned_t *m)
{
    free(m->cursors);
    free(m->cursor_free);
    m->cursors = NULL;
    m->cursor_free = NULL;
}
