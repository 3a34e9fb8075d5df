// fuzz-sources: lib/reply.c lib/common.c lib/hotcmd.c
// fuzz-options: -max_len=16384
/* libFuzzer target for the replies that carry data back (lib/reply.c, used by cursor.c and
 * bulk.c): cursor batches (firstBatch/nextBatch, id, ns) and write results (n, nModified,
 * upserted, writeErrors, writeConcernError).
 *
 * Input: byte 0: bit 0 the reply is Extended JSON (else raw BSON), bits 1-2 the write kind
 * (3: a cursor reply); byte 1: batch_start; byte 2: batch_n; then the reply.
 * Checks: a cursor reply's collected documents are as many as the batch's document elements and
 * each one walks; ns splits only into a terminated db and a non-empty collection; a write
 * result's counts stay non-negative after two folds, and every writeErrors index it reports is
 * -1 or inside [batch_start, batch_start + batch_n). Raw replies, valid BSON or not (as long as
 * their length and last byte are what the wire decoder lets through), also go through the hot
 * path's hand walk (lib/hotcmd.c: the reply scan and find_one's document), which must agree with
 * libbson's iterators (tests/support/hotref.h). ASan/UBSan (signed overflow) catch the rest. */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "reply.h"
#include "../support/hotref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_reply: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static void cursor_reply(const bson_t *reply)
{
    mqc_cursor_reply_t cr;
    if (!mqc_cursor_reply_parse(reply, &cr)) return;
    if (cr.ns) {
        char db[64];
        char *coll = NULL;
        if (mqc_ns_split(cr.ns, cr.ns_len, db, sizeof db, &coll)) {
            CHECK(strlen(db) > 0 && strlen(db) < sizeof db && coll && strlen(coll) > 0);
            CHECK(strlen(db) + 1 + strlen(coll) == cr.ns_len);
            free(coll);
        }
    }
    if (!cr.has_batch) return;
    size_t expect = 0;
    bson_iter_t copy = cr.batch;
    while (bson_iter_next(&copy))
        if (BSON_ITER_HOLDS_DOCUMENT(&copy)) expect++;
    bson_t *docs = NULL;
    size_t cap = 0;
    size_t n = mqc_batch_collect(&cr.batch, &docs, &cap);
    CHECK(n <= expect && n <= cap);
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        CHECK(bson_iter_init(&it, &docs[i]));
        while (bson_iter_next(&it)) (void) bson_iter_key(&it);
    }
    free(docs);
}

static void write_reply(const bson_t *reply, mqc_write_kind_t kind, size_t start, size_t n)
{
    mqc_write_result_t r;
    mqc_hotcmd_reply_t scan; /* op.c's scan, which writes fold from */
    mqc_hotcmd_reply_scan(reply, &scan);
    mqc_write_result_init(&r);
    mqc_write_result_fold(&r, kind, start, n, reply, NULL);
    mqc_write_result_fold(&r, kind, start + n, n, reply, &scan); /* the next batch, same reply */
    CHECK(r.inserted >= 0 && r.matched >= 0 && r.modified >= 0 && r.deleted >= 0 && r.upserted >= 0);
    bson_iter_t it, f;
    uint32_t count = 0;
    CHECK(bson_iter_init(&it, &r.write_errors));
    while (bson_iter_next(&it)) {
        CHECK(BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &f) && bson_iter_find(&f, "index"));
        int64_t i = bson_iter_as_int64(&f);
        CHECK(i == -1 || (i >= (int64_t) start && i < (int64_t) (start + 2 * n)));
        count++;
    }
    CHECK(count == r.n_write_errors);
    CHECK(!r.has_error || r.n_write_errors + r.n_wc_errors > 0);
    if (r.n_write_errors) CHECK(r.has_error && r.first_error.domain == MQC_ERROR_WRITE);
    CHECK(bson_validate(&r.upserted_ids, BSON_VALIDATE_NONE, NULL));
    /* the one-pass scan (lib/hotcmd.c) folds what libbson's look-ups alone fold */
    mqc_write_result_t l;
    mqc_write_result_init(&l);
    mqc_hotcmd_off = true;
    mqc_write_result_fold(&l, kind, start, n, reply, NULL);
    mqc_write_result_fold(&l, kind, start + n, n, reply, NULL);
    mqc_hotcmd_off = false;
    CHECK(l.inserted == r.inserted && l.matched == r.matched && l.modified == r.modified && l.deleted == r.deleted &&
          l.upserted == r.upserted && l.n_write_errors == r.n_write_errors && l.n_wc_errors == r.n_wc_errors &&
          l.has_error == r.has_error);
    CHECK(bson_equal(&l.upserted_ids, &r.upserted_ids) && bson_equal(&l.write_errors, &r.write_errors) &&
          bson_equal(&l.wc_errors, &r.wc_errors));
    CHECK(!r.has_error || (l.first_error.code == r.first_error.code &&
                           strcmp(l.first_error.message, r.first_error.message) == 0));
    mqc_write_result_cleanup(&l);
    mqc_write_result_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    uint8_t cfg = data[0];
    size_t start = data[1], n = data[2];
    data += 3, size -= 3;
    bson_t doc, *owned = NULL;
    if (cfg & 1) {
        bson_error_t be;
        if (!(owned = bson_new_from_json(data, (ssize_t) size, &be))) return 0;
    } else {
        if (!bson_init_static(&doc, data, size)) return 0;
        const char *why;
        if (!hotref_agree(&doc, &why)) {
            fprintf(stderr, "fuzz_reply: the hand walk differs from libbson on %s\n", why);
            abort();
        }
        if (!bson_validate(&doc, BSON_VALIDATE_NONE, NULL)) return 0;
    }
    const bson_t *reply = owned ? owned : &doc;
    unsigned kind = (cfg >> 1) & 3;
    if (kind == 3) cursor_reply(reply);
    else write_reply(reply, (mqc_write_kind_t) kind, start, n);
    if (owned) bson_destroy(owned);
    return 0;
}
