/* reply: cursor batches and write results out of server replies (see reply.h). */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hotcmd.h"

bool mqc_cursor_reply_parse(const bson_t *reply, mqc_cursor_reply_t *out)
{
    bson_iter_t it, cur;
    memset(out, 0, sizeof *out);
    if (!bson_iter_init_find(&it, reply, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &cur))
        return false;
    while (bson_iter_next(&cur)) {
        const char *k = bson_iter_key(&cur);
        if (!strcmp(k, "id")) {
            /* a double id is not an id: as_int64 would convert it (UB when out of range) */
            if (BSON_ITER_HOLDS_INT64(&cur) || BSON_ITER_HOLDS_INT32(&cur)) out->id = bson_iter_as_int64(&cur);
        } else if (!strcmp(k, "ns") && BSON_ITER_HOLDS_UTF8(&cur)) {
            out->ns = bson_iter_utf8(&cur, &out->ns_len);
        } else if ((!strcmp(k, "firstBatch") || !strcmp(k, "nextBatch")) && BSON_ITER_HOLDS_ARRAY(&cur) &&
                   !out->has_batch) {
            out->batch = cur;
            out->has_batch = bson_iter_recurse(&cur, &out->batch);
        }
    }
    return true;
}

bool mqc_ns_split(const char *ns, size_t len, char *db_out, size_t db_size, char **coll_out)
{
    const char *dot = ns ? memchr(ns, '.', len) : NULL;
    if (!dot || memchr(ns, 0, len)) return false;
    size_t dl = (size_t) (dot - ns), cl = len - dl - 1;
    if (dl == 0 || cl == 0 || dl >= db_size) return false;
    char *coll = malloc(cl + 1);
    if (!coll) abort();
    memcpy(coll, dot + 1, cl);
    coll[cl] = 0;
    memcpy(db_out, ns, dl);
    db_out[dl] = 0;
    *coll_out = coll;
    return true;
}

size_t mqc_batch_collect(bson_iter_t *batch, bson_t **docs, size_t *cap)
{
    /* Count first, then grow once: a static bson_t points into itself, so initialised entries
     * must never be moved by a realloc. */
    bson_iter_t count_it = *batch;
    size_t want = 0, n = 0;
    while (bson_iter_next(&count_it))
        if (BSON_ITER_HOLDS_DOCUMENT(&count_it)) want++;
    if (want > *cap) {
        free(*docs);
        *cap = want;
        *docs = malloc(*cap * sizeof **docs);
        if (!*docs) abort();
    }
    while (n < want && bson_iter_next(batch)) {
        uint32_t len;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(batch)) continue;
        bson_iter_document(batch, &len, &data);
        if (bson_init_static(&(*docs)[n], data, len)) n++;
    }
    return n;
}

void mqc_write_result_init(mqc_write_result_t *r)
{
    /* Not the whole struct: its error alone is 512 bytes, read only when has_error. */
    r->inserted = r->matched = r->modified = r->deleted = r->upserted = 0;
    r->n_write_errors = r->n_wc_errors = 0;
    r->has_error = false;
    r->first_error.domain = 0;
    r->first_error.code = 0;
    r->first_error.message[0] = 0;
    bson_init(&r->upserted_ids);
    bson_init(&r->write_errors);
    bson_init(&r->wc_errors);
}

void mqc_write_result_cleanup(mqc_write_result_t *r)
{
    bson_destroy(&r->upserted_ids);
    bson_destroy(&r->write_errors);
    bson_destroy(&r->wc_errors);
}

/* An integer count from the server; doubles and out-of-range values count as 0. */
static int64_t count_of(const bson_iter_t *it)
{
    if (!BSON_ITER_HOLDS_INT32(it) && !BSON_ITER_HOLDS_INT64(it)) {
        if (!BSON_ITER_HOLDS_DOUBLE(it)) return 0;
        double d = bson_iter_double(it);
        return d >= 0 && d < 9.2e18 ? (int64_t) d : 0;
    }
    int64_t v = bson_iter_as_int64(it);
    return v > 0 ? v : 0;
}

static int64_t get_count(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) ? count_of(&it) : 0;
}

/* count_of for a value the one-pass scan found (mqc_hotcmd_write_scan): v is inside the reply. */
static int64_t count_raw(uint8_t type, const uint8_t *v)
{
    uint32_t u32;
    uint64_t u64;
    if (!v) return 0;
    if (type == BSON_TYPE_INT32) {
        memcpy(&u32, v, 4);
        int32_t i = (int32_t) BSON_UINT32_FROM_LE(u32);
        return i > 0 ? i : 0;
    }
    if (type != BSON_TYPE_INT64 && type != BSON_TYPE_DOUBLE) return 0;
    memcpy(&u64, v, 8);
    u64 = BSON_UINT64_FROM_LE(u64);
    if (type == BSON_TYPE_INT64) {
        int64_t i = (int64_t) u64;
        return i > 0 ? i : 0;
    }
    double d;
    memcpy(&d, &u64, sizeof d);
    return d >= 0 && d < 9.2e18 ? (int64_t) d : 0;
}

static void add_sat(int64_t *acc, int64_t v)
{
    if (v <= 0) return;
    *acc = *acc > INT64_MAX - v ? INT64_MAX : *acc + v;
}

/* A model index of the batch as an index of the whole bulk, -1 when the server's is out of range. */
static int64_t bulk_index(const bson_iter_t *it, size_t batch_start, size_t batch_n)
{
    if (!BSON_ITER_HOLDS_INT32(it) && !BSON_ITER_HOLDS_INT64(it)) return -1;
    int64_t i = bson_iter_as_int64(it);
    return i >= 0 && (uint64_t) i < batch_n ? (int64_t) (batch_start + (size_t) i) : -1;
}

static bool fold_write_errors(mqc_write_result_t *r, size_t batch_start, size_t batch_n, const bson_t *reply)
{
    bson_iter_t it, arr;
    bool any = false;
    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return false;
    while (bson_iter_next(&arr)) {
        bson_t we, out;
        uint32_t len;
        const uint8_t *data;
        char key[16];
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) continue;
        bson_iter_document(&arr, &len, &data);
        if (!bson_init_static(&we, data, len)) continue;
        bson_iter_t f;
        int64_t index = -1;
        if (bson_iter_init_find(&f, &we, "index")) index = bulk_index(&f, batch_start, batch_n);
        snprintf(key, sizeof key, "%u", r->n_write_errors++);
        BSON_APPEND_DOCUMENT_BEGIN(&r->write_errors, key, &out);
        BSON_APPEND_INT64(&out, "index", index);
        if (bson_iter_init(&f, &we))
            while (bson_iter_next(&f))
                if (strcmp(bson_iter_key(&f), "index") != 0) bson_append_iter(&out, NULL, 0, &f);
        bson_append_document_end(&r->write_errors, &out);
        if (!r->has_error) {
            mqc_error_from_reply(&r->first_error, MQC_ERROR_WRITE, &we);
            r->has_error = true;
        }
        any = true;
    }
    return any;
}

bool mqc_write_result_fold(mqc_write_result_t *r, mqc_write_kind_t kind, size_t batch_start, size_t batch_n,
                           const bson_t *reply, const mqc_hotcmd_reply_t *scan)
{
    bson_iter_t it, arr;
    /* One pass (op.c's scan of every reply, else our own) finds the counts and which of the
     * rarer keys are there (three to five lookups with libbson cost ~1,100 instructions a
     * write); libbson reads those keys, or everything when the pass met a type it does not read. */
    mqc_hotcmd_write_reply_t w;
    bool hot = scan && scan->write_seen && !mqc_hotcmd_off;
    if (hot) w = scan->write;
    else hot = mqc_hotcmd_write_scan(reply, &w);
    int64_t n = hot ? count_raw(w.n_type, w.n) : get_count(reply, "n");
    if (kind == MQC_WRITE_INSERT) {
        add_sat(&r->inserted, n);
    } else if (kind == MQC_WRITE_DELETE) {
        add_sat(&r->deleted, n);
    } else {
        int64_t ups = 0;
        if ((!hot || w.upserted) && bson_iter_init_find(&it, reply, "upserted") && BSON_ITER_HOLDS_ARRAY(&it) &&
            bson_iter_recurse(&it, &arr))
            while (bson_iter_next(&arr)) {
                bson_iter_t idx, id;
                if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &idx) || !bson_iter_find(&idx, "index") ||
                    !bson_iter_recurse(&arr, &id) || !bson_iter_find(&id, "_id"))
                    continue;
                ups++;
                int64_t i = bulk_index(&idx, batch_start, batch_n);
                if (i < 0) continue;
                char key[24];
                snprintf(key, sizeof key, "%lld", (long long) i);
                bson_append_iter(&r->upserted_ids, key, -1, &id);
            }
        add_sat(&r->upserted, ups);
        add_sat(&r->matched, n - ups);
        add_sat(&r->modified, hot ? count_raw(w.n_modified_type, w.n_modified) : get_count(reply, "nModified"));
    }
    bool had_write_errors = (!hot || w.write_errors) && fold_write_errors(r, batch_start, batch_n, reply);
    if ((!hot || w.wce) && bson_iter_init_find(&it, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        char key[16];
        snprintf(key, sizeof key, "%u", r->n_wc_errors++);
        bson_append_iter(&r->wc_errors, key, -1, &it);
        if (!r->has_error) {
            bson_t wce;
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&wce, data, len)) {
                mqc_error_from_reply(&r->first_error, MQC_ERROR_WRITE_CONCERN, &wce);
                r->has_error = true;
            }
        }
    }
    return had_write_errors;
}
