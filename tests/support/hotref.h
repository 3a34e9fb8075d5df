/* The reply scan and find_one's document as mqc read them with libbson's iterators before
 * lib/hotcmd.c walked replies by hand: the reference the hand walk must agree with, on every
 * reply, hostile ones included (tests/test_hotcmd.c, tests/fuzz/fuzz_reply.c). */
#ifndef MQC_TEST_HOTREF_H
#define MQC_TEST_HOTREF_H

#include <bson/bson.h>
#include <stdbool.h>
#include <string.h>

#include "hotcmd.h"

typedef struct {
    bool ok, has_wce, has_cursor;
    bson_iter_t cursor; /* on the first "cursor" element when has_cursor */
} hotref_scan_t;

static inline void hotref_scan(const bson_t *reply, hotref_scan_t *out)
{
    bson_iter_t it;
    bool seen_ok = false, seen_cursor = false;
    memset(out, 0, sizeof *out);
    if (!reply || !bson_iter_init(&it, reply)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!seen_ok && strcmp(k, "ok") == 0) {
            seen_ok = true;
            out->ok = bson_iter_as_bool(&it);
        } else if (!seen_cursor && strcmp(k, "cursor") == 0) {
            seen_cursor = true;
            out->has_cursor = BSON_ITER_HOLDS_DOCUMENT(&it);
            out->cursor = it;
        } else if (!out->has_wce && strcmp(k, "writeConcernError") == 0) {
            out->has_wce = true;
        }
    }
}

/* find_one's outcome: -1 no cursor.firstBatch (an error), 0 no document, 1 a document
 * (*doc, *len: what bson_init_static accepted). cursor: the scan's, or NULL. */
static inline int hotref_find_one(const bson_t *reply, const bson_iter_t *cursor, const uint8_t **doc, uint32_t *len)
{
    bson_iter_t it, batch;
    bson_t view;
    *doc = NULL;
    *len = 0;
    if (!cursor) {
        if (!bson_iter_init_find(&it, reply, "cursor")) return -1;
        cursor = &it;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(cursor) || !bson_iter_recurse(cursor, &batch)) return -1;
    bool found = false;
    while (bson_iter_next(&batch)) {
        const char *k = bson_iter_key(&batch);
        if ((!strcmp(k, "firstBatch") || !strcmp(k, "nextBatch")) && BSON_ITER_HOLDS_ARRAY(&batch)) {
            found = bson_iter_recurse(&batch, &batch);
            break;
        }
    }
    if (!found) return -1;
    if (!bson_iter_next(&batch) || !BSON_ITER_HOLDS_DOCUMENT(&batch)) return 0;
    bson_iter_document(&batch, len, doc);
    if (!bson_init_static(&view, *doc, *len)) return 0;
    return 1;
}

/* The hand walk's answer to the same, as find.c takes it. */
static inline int hotref_hot_find_one(const bson_t *reply, const mqc_hotcmd_reply_t *scan, const uint8_t **doc,
                                      uint32_t *len)
{
    bson_t view;
    if (!mqc_hotcmd_scan_first_doc(reply, scan, doc, len)) return -1;
    if (!*doc || !bson_init_static(&view, *doc, *len)) return 0;
    return 1;
}

/* Whether the hand walk agrees with the reference on reply; what differs in *why. */
static inline bool hotref_agree(const bson_t *reply, const char **why)
{
    hotref_scan_t ref;
    mqc_hotcmd_reply_t hot;
    const uint8_t *rd, *hd;
    uint32_t rl, hl;
    hotref_scan(reply, &ref);
    mqc_hotcmd_reply_scan(reply, &hot);
    *why = NULL;
    if (hot.ok != ref.ok) *why = "ok";
    else if (hot.has_wce != ref.has_wce) *why = "writeConcernError";
    else if (hot.has_cursor != ref.has_cursor) *why = "cursor";
    if (*why) return false;
    if (ref.has_cursor) {
        uint32_t len;
        const uint8_t *data;
        bson_iter_document(&ref.cursor, &len, &data);
        if (hot.cursor != data || hot.cursor_len != len) {
            *why = "cursor bytes";
            return false;
        }
    }
    /* find_one's document, through the scan (op.c's path) and without one */
    int r = hotref_find_one(reply, ref.has_cursor ? &ref.cursor : NULL, &rd, &rl);
    int h = hotref_hot_find_one(reply, &hot, &hd, &hl);
    if (r != h || (r == 1 && (rd != hd || rl != hl))) {
        *why = "find_one document (scanned)";
        return false;
    }
    h = hotref_hot_find_one(reply, NULL, &hd, &hl);
    if (r != h || (r == 1 && (rd != hd || rl != hl))) {
        *why = "find_one document (no scan)";
        return false;
    }
    return true;
}

#endif
