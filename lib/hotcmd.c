/* hotcmd: hot commands from prebuilt bytes (see hotcmd.h). The layouts below are BSON's: an
 * element is its type byte, its key as a C string, then its value; a string value is its length
 * (with the NUL) as int32, the bytes, a NUL; a document value is the document's bytes. */
#include <string.h>

#include "hotcmd.h"

bool mqc_hotcmd_off;

/* The constant runs of the commands, element headers included. */
static const uint8_t FIND_KEY[] = {0x02, 'f', 'i', 'n', 'd', 0};
static const uint8_t FILTER_KEY[] = {0x03, 'f', 'i', 'l', 't', 'e', 'r', 0};
/* limit: 1 (int32), singleBatch: true */
static const uint8_t FIND_ONE_TAIL[] = {0x10, 'l', 'i', 'm', 'i', 't', 0, 1, 0, 0, 0,
                                        0x08, 's', 'i', 'n', 'g', 'l', 'e', 'B', 'a', 't', 'c', 'h', 0, 1};
static const uint8_t RC_KEY[] = {0x03, 'r', 'e', 'a', 'd', 'C', 'o', 'n', 'c', 'e', 'r', 'n', 0};
static const uint8_t DB_KEY[] = {0x02, '$', 'd', 'b', 0};
static const uint8_t ORDERED_KEY[] = {0x08, 'o', 'r', 'd', 'e', 'r', 'e', 'd', 0};
static const uint8_t EMPTY_DOC[] = {5, 0, 0, 0, 0};

/* The keys mqc_copy_passthrough_opts never copies (cmd.c's `ours`). */
static const char *const OURS[] = {"timeoutMS", "readPreference", "readConcern", "writeConcern", "session", "$db",
                                   NULL};
/* What find_one does not send from opts: its own three, and what it takes elsewhere or ignores. */
static const char *const FIND_ONE_QUIET[] = {"timeoutMS", "writeConcern", "session", "$db", "limit", "batchSize",
                                             "singleBatch", NULL};

static bool in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return true;
    return false;
}

/* Whether every key of opts is in a or b. */
static bool opts_within(const bson_t *opts, const char *const *a, const char *const *b)
{
    bson_iter_t it;
    if (!opts || opts->len <= 5) return true;
    if (!bson_iter_init(&it, opts)) return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!in_list(k, a) && !in_list(k, b)) return false;
    }
    return true;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

/* put for the few bytes of a name or a key filter: from 4 to 32 bytes, two fixed-size copies
 * that overlap (inline, and never reading past src + n) instead of a call to memcpy. */
static inline __attribute__((always_inline)) uint8_t *put_short(uint8_t *p, const void *src, size_t n)
{
    const uint8_t *s = src;
    if (n >= 16 && n <= 32) {
        memcpy(p, s, 16);
        memcpy(p + n - 16, s + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        memcpy(p, s, 8);
        memcpy(p + n - 8, s + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(p, s, 4);
        memcpy(p + n - 4, s + n - 4, 4);
    } else {
        memcpy(p, s, n);
    }
    return p + n;
}

static uint8_t *put_i32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 4); /* one store */
    return p + 4;
#endif
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
    return p + 4;
}

/* A string value: int32 length with the NUL, the bytes, the NUL. */
static inline __attribute__((always_inline)) uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    p = put_i32(p, (uint32_t) (n + 1));
    p = put_short(p, s, n);
    *p++ = 0;
    return p;
}

/* Sizes are checked against what a bson_t can hold before anything is written. */
#define HOT_MAX ((size_t) INT32_MAX)

bool mqc_hotcmd_find_one(bson_t *cmd, const char *coll, const char *db, const bson_t *filter, const bson_t *opts,
                         const bson_t *rc)
{
    if (!coll || !db) return false;
    return mqc_hotcmd_find_one_n(cmd, coll, strlen(coll), db, strlen(db), filter, opts, rc);
}

bool mqc_hotcmd_find_one_n(bson_t *cmd, const char *coll, size_t coll_n, const char *db, size_t db_n,
                           const bson_t *filter, const bson_t *opts, const bson_t *rc)
{
    /* An initialised bson_t is empty exactly when it is 5 bytes long (bson_empty without its
     * call into libbson: this runs for every find_one). */
    if (mqc_hotcmd_off || !cmd || !coll || !db || cmd->len != 5) return false;
    if (!opts_within(opts, FIND_ONE_QUIET, NULL)) return false;
    const uint8_t *f = filter ? bson_get_data(filter) : EMPTY_DOC;
    size_t f_n = filter ? filter->len : sizeof EMPTY_DOC;
    bool with_rc = rc && rc->len > 5;
    size_t total = 4 + sizeof FIND_KEY + 4 + coll_n + 1 + sizeof FILTER_KEY + f_n + sizeof FIND_ONE_TAIL +
                   (with_rc ? sizeof RC_KEY + rc->len : 0) + sizeof DB_KEY + 4 + db_n + 1 + 1;
    if (total > HOT_MAX) return false;
    uint8_t *p = bson_reserve_buffer(cmd, (uint32_t) total);
    if (!p) return false;
    p = put_i32(p, (uint32_t) total);
    p = put(p, FIND_KEY, sizeof FIND_KEY);
    p = put_str(p, coll, coll_n);
    p = put(p, FILTER_KEY, sizeof FILTER_KEY);
    p = put_short(p, f, f_n);
    p = put(p, FIND_ONE_TAIL, sizeof FIND_ONE_TAIL);
    if (with_rc) {
        p = put(p, RC_KEY, sizeof RC_KEY);
        p = put(p, bson_get_data(rc), rc->len);
    }
    p = put(p, DB_KEY, sizeof DB_KEY);
    p = put_str(p, db, db_n);
    *p = 0;
    return true;
}

bool mqc_hotcmd_write_body(bson_t *body, const char *name, const char *coll, const char *db, bool ordered,
                           const bson_t *opts, const char *const *handled, const bson_t *wc)
{
    if (mqc_hotcmd_off || !body || !name || !coll || !db || !bson_empty(body)) return false;
    if (!opts_within(opts, OURS, handled)) return false;
    size_t name_n = strlen(name), coll_n = strlen(coll), db_n = strlen(db);
    /* wc's elements, without its length and terminating NUL (bson_concat's bytes) */
    size_t wc_n = wc && wc->len > 5 ? wc->len - 5 : 0;
    size_t total = 4 + 1 + name_n + 1 + 4 + coll_n + 1 + sizeof ORDERED_KEY + 1 + wc_n + sizeof DB_KEY + 4 + db_n +
                   1 + 1;
    if (total > HOT_MAX) return false;
    uint8_t *p = bson_reserve_buffer(body, (uint32_t) total);
    if (!p) return false;
    p = put_i32(p, (uint32_t) total);
    *p++ = 0x02;
    p = put(p, name, name_n + 1);
    p = put_str(p, coll, coll_n);
    p = put(p, ORDERED_KEY, sizeof ORDERED_KEY);
    *p++ = ordered ? 1 : 0;
    if (wc_n) p = put(p, bson_get_data(wc) + 4, wc_n);
    p = put(p, DB_KEY, sizeof DB_KEY);
    p = put_str(p, db, db_n);
    *p = 0;
    return true;
}

/* ---- replies, walked by hand ------------------------------------------------------------
 *
 * The walk below reads an element exactly as libbson's bson_iter_next does (the same checks,
 * in the same order, so that it stops where libbson's iteration stops, on corrupt bytes too):
 * what dispatch and find_one look at then costs one pass with no iterator set up, no function
 * call per element and no strcmp per key. The few types it does not size by hand (binary,
 * regex, DBPointer, code with scope, and unknown ones) make it give up: the caller then asks
 * libbson, as before. tests/test_hotcmd.c compares both on mutated and hostile replies. */

enum { EL_NEXT, EL_END, EL_UNSURE };

typedef struct {
    const uint8_t *key; /* not NUL-terminated for the caller: key_n bytes */
    size_t key_n;
    size_t val;         /* offset of the value in the document */
    uint8_t type;
} hot_el_t;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
#endif
}

/* The offset of the first NUL in d[o, len), len when there is none: eight bytes a step while
 * eight remain (a word has a zero byte where (v - 0x01..) & ~v & 0x80.. has a bit, and its
 * lowest such bit is its first zero byte; borrows only make bits above that one). */
static inline __attribute__((always_inline)) size_t nul_at(const uint8_t *d, size_t o, size_t len)
{
    while (o + 8 <= len) {
        uint64_t v = le64(d + o);
        uint64_t z = (v - 0x0101010101010101u) & ~v & 0x8080808080808080u;
        if (z) return o + (size_t) (__builtin_ctzll(z) >> 3);
        o += 8;
    }
    while (o < len && d[o]) o++;
    return o;
}

/* The element at *pos of d (len bytes, the length libbson would iterate): EL_NEXT and *pos past
 * it, EL_END where bson_iter_next returns false (the terminator or corrupt bytes), EL_UNSURE
 * for a type not read here. The key is searched before the type byte is read: in a document
 * shorter than 5 bytes there is no type byte to read. */
static inline __attribute__((always_inline)) int el_value(const uint8_t *d, size_t len, size_t p, size_t o,
                                                        size_t *pos, hot_el_t *e)
{
    size_t next;
    if (o >= len) return EL_END;
    e->key = d + p + 1;
    e->key_n = o - p - 1;
    e->val = ++o;
    e->type = d[p];
    switch (e->type) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DATE_TIME:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_INT64: next = o + 8; break;
    case BSON_TYPE_INT32: next = o + 4; break;
    case BSON_TYPE_OID: next = o + 12; break;
    case BSON_TYPE_DECIMAL128: next = o + 16; break;
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_MAXKEY:
    case BSON_TYPE_MINKEY: next = o; break;
    case BSON_TYPE_BOOL:
        if (o >= len || d[o] > 1) return EL_END;
        next = o + 1;
        break;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_CODE:
    case BSON_TYPE_SYMBOL: {
        if (o + 4 >= len) return EL_END;
        size_t l = le32(d + o);
        if (l > len - (o + 4)) return EL_END;
        next = o + 4 + l;
        if (l == 0 || next >= len || d[next - 1]) return EL_END; /* its NUL counted and there */
        break;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        if (o + 4 >= len) return EL_END;
        size_t l = le32(d + o);
        if (l > len - o) return EL_END;
        next = o + l;
        break;
    }
    case BSON_TYPE_EOD: return EL_END;
    default: return EL_UNSURE;
    }
    if (next >= len) return EL_END;
    *pos = next;
    return EL_NEXT;
}

static inline __attribute__((always_inline)) int el_next(const uint8_t *d, size_t len, size_t *pos, hot_el_t *e)
{
    return el_value(d, len, *pos, nul_at(d, *pos + 1, len), pos, e);
}

/* Whether the element at p has the key k (n bytes with its NUL): where it does, its NUL is at
 * p + n, the first one after p (k has no other), which is what nul_at would find; a key that
 * ends beyond len would end the walk there (EL_END) in any case. Spares nul_at and key_is for
 * the keys a reply is expected to hold. */
static inline __attribute__((always_inline)) bool key_at(const uint8_t *d, size_t len, size_t p, const char *k,
                                                         size_t n)
{
    return p + 1 + n <= len && memcmp(d + p + 1, k, n) == 0;
}

static bool key_is(const hot_el_t *e, const char *k, size_t n)
{
    return e->key_n == n && memcmp(e->key, k, n) == 0;
}

/* bson_iter_as_bool of a value el_next has checked is inside the document. */
static bool el_as_bool(const uint8_t *d, const hot_el_t *e)
{
    const uint8_t *v = d + e->val;
    switch (e->type) {
    case BSON_TYPE_BOOL: return v[0] != 0;
    case BSON_TYPE_DOUBLE: {
        uint64_t u = le64(v);
        double x;
        memcpy(&x, &u, sizeof x);
        return !(x == 0.0); /* NaN is true, -0.0 false: as libbson */
    }
    case BSON_TYPE_INT64: return le64(v) != 0;
    case BSON_TYPE_INT32: return le32(v) != 0;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED: return false;
    default: return true;
    }
}

/* The libbson way, for what the hand walk does not read. */
/* Out of line: its iterator would give the hand walk a 128-byte aligned frame. */
static __attribute__((noinline)) void reply_scan_iter(const bson_t *reply, mqc_hotcmd_reply_t *out)
{
    bson_iter_t it;
    bool seen_ok = false, seen_cursor = false;
    memset(out, 0, sizeof *out);
    if (!bson_iter_init(&it, reply)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!seen_ok && k[0] == 'o' && k[1] == 'k' && k[2] == 0) {
            seen_ok = true;
            out->ok = bson_iter_as_bool(&it);
        } else if (!seen_cursor && k[0] == 'c' && strcmp(k, "cursor") == 0) {
            seen_cursor = true;
            if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
                out->has_cursor = true;
                bson_iter_document(&it, &out->cursor_len, &out->cursor);
            }
        } else if (!out->has_wce && k[0] == 'w' && strcmp(k, "writeConcernError") == 0) {
            out->has_wce = true;
        }
    }
}

/* A top-level element of a reply, for mqc_hotcmd_write_reply_t: the first of each key. */
static inline __attribute__((always_inline)) void write_key(const uint8_t *d, const hot_el_t *e,
                                                           mqc_hotcmd_write_reply_t *w)
{
    switch (e->key_n) {
    case 1:
        if (!w->n && e->key[0] == 'n') w->n = d + e->val, w->n_type = e->type;
        break;
    case 8: w->upserted = w->upserted || key_is(e, "upserted", 8); break;
    case 9:
        if (!w->n_modified && key_is(e, "nModified", 9)) w->n_modified = d + e->val, w->n_modified_type = e->type;
        break;
    case 11: w->write_errors = w->write_errors || key_is(e, "writeErrors", 11); break;
    case 17: w->wce = w->wce || key_is(e, "writeConcernError", 17); break;
    default: break;
    }
}

/* find_one's document while the scan is at the cursor, when the cursor starts with its batch
 * (first_doc_walk's first step, which then ends the walk): the same answer, one pass. */
static inline __attribute__((always_inline)) void cursor_batch(mqc_hotcmd_reply_t *out)
{
    hot_el_t e, f;
    size_t pos = 4, first = 4, o;
    const uint8_t *c = out->cursor;
    if (key_at(c, out->cursor_len, 4, "firstBatch", 11)) o = 4 + 11;
    else if (key_at(c, out->cursor_len, 4, "nextBatch", 10)) o = 4 + 10;
    else return; /* another first key: the caller's walk finds the batch, or that there is none */
    if (el_value(c, out->cursor_len, 4, o, &pos, &e) != EL_NEXT || e.type != BSON_TYPE_ARRAY) return;
    const uint8_t *batch = c + e.val;
    uint32_t batch_len = le32(batch);
    out->batch_seen = true;
    /* its first element, "0" */
    o = key_at(batch, batch_len, 4, "0", 2) ? 4 + 2 : nul_at(batch, 5, batch_len);
    if (el_value(batch, batch_len, 4, o, &first, &f) == EL_NEXT && f.type == BSON_TYPE_DOCUMENT) {
        out->doc = batch + f.val;
        out->doc_len = le32(batch + f.val);
    }
}

void mqc_hotcmd_reply_scan(const bson_t *reply, mqc_hotcmd_reply_t *out)
{
    bool seen_ok = false, seen_cursor = false;
    hot_el_t e;
    size_t pos = 4;
    int r;
    memset(out, 0, sizeof *out);
    if (!reply || reply->len < 5) return;
    const uint8_t *d = bson_get_data(reply);
    for (;;) {
        size_t len = reply->len, o;
        int k = 0; /* 1: "ok", 2: "cursor", 0: another key */
        if (key_at(d, len, pos, "ok", 3)) o = pos + 3, k = 1;
        else if (key_at(d, len, pos, "cursor", 7)) o = pos + 7, k = 2;
        else o = nul_at(d, pos + 1, len);
        if ((r = el_value(d, len, pos, o, &pos, &e)) != EL_NEXT) break;
        if (k == 1) {
            if (seen_ok) continue;
            seen_ok = true;
            out->ok = el_as_bool(d, &e);
        } else if (k == 2) {
            if (seen_cursor) continue;
            seen_cursor = true;
            if (e.type == BSON_TYPE_DOCUMENT) {
                out->has_cursor = true;
                out->cursor = d + e.val;
                out->cursor_len = le32(d + e.val);
                cursor_batch(out);
            }
        } else {
            write_key(d, &e, &out->write);
        }
    }
    out->has_wce = out->write.wce;
    if (r == EL_UNSURE) reply_scan_iter(reply, out);
    else out->write_seen = true;
}

/* The cursor document's batch, walked by hand: MQC_HOTCMD_UNSURE when an element before the
 * array is of a type el_next does not read. */
enum { MQC_HOTCMD_BATCH, MQC_HOTCMD_NO_BATCH, MQC_HOTCMD_UNSURE };

static int first_doc_walk(const uint8_t *cursor, uint32_t cursor_len, const uint8_t **doc, uint32_t *doc_len)
{
    hot_el_t e, f;
    size_t pos = 4, first = 4;
    int r;
    while ((r = el_next(cursor, cursor_len, &pos, &e)) == EL_NEXT) {
        if (e.type != BSON_TYPE_ARRAY || !(key_is(&e, "firstBatch", 10) || key_is(&e, "nextBatch", 9))) continue;
        /* bson_iter_recurse: the array's own length, inside the cursor by el_next's check */
        const uint8_t *batch = cursor + e.val;
        /* A first element libbson would not read, or not a document: no document (as before). */
        if (el_next(batch, le32(batch), &first, &f) == EL_NEXT && f.type == BSON_TYPE_DOCUMENT) {
            *doc = batch + f.val;
            *doc_len = le32(batch + f.val);
        }
        return MQC_HOTCMD_BATCH;
    }
    return r == EL_UNSURE ? MQC_HOTCMD_UNSURE : MQC_HOTCMD_NO_BATCH;
}

/* The libbson way: the first "cursor" of the reply, its first batch array, its first element. */
static __attribute__((noinline)) bool first_doc_iter(const bson_t *reply, const uint8_t **doc, uint32_t *doc_len)
{
    bson_iter_t it, batch;
    if (!bson_iter_init_find(&it, reply, "cursor") || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &batch))
        return false;
    while (bson_iter_next(&batch)) {
        const char *k = bson_iter_key(&batch);
        if ((!strcmp(k, "firstBatch") || !strcmp(k, "nextBatch")) && BSON_ITER_HOLDS_ARRAY(&batch)) {
            if (!bson_iter_recurse(&batch, &batch)) return false;
            if (bson_iter_next(&batch) && BSON_ITER_HOLDS_DOCUMENT(&batch)) bson_iter_document(&batch, doc_len, doc);
            return true;
        }
    }
    return false;
}

bool mqc_hotcmd_find_one_doc(const bson_t *reply, const uint8_t *cursor, uint32_t cursor_len, const uint8_t **doc,
                             uint32_t *doc_len)
{
    *doc = NULL;
    *doc_len = 0;
    int r = cursor ? first_doc_walk(cursor, cursor_len, doc, doc_len) : MQC_HOTCMD_UNSURE;
    if (r == MQC_HOTCMD_UNSURE) return first_doc_iter(reply, doc, doc_len);
    return r == MQC_HOTCMD_BATCH;
}

bool mqc_hotcmd_write_scan(const bson_t *reply, mqc_hotcmd_write_reply_t *out)
{
    hot_el_t e;
    size_t pos = 4;
    int r;
    memset(out, 0, sizeof *out);
    if (mqc_hotcmd_off || !reply || reply->len < 5) return false;
    const uint8_t *d = bson_get_data(reply);
    while ((r = el_next(d, reply->len, &pos, &e)) == EL_NEXT) write_key(d, &e, out);
    return r != EL_UNSURE;
}
