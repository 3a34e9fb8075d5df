/* docsrv_eval: what docsrv does to documents: comparing values, matching filters, applying
 * updates. Pure functions over libbson, no locking, no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docsrv.h"
#include "docsrv_eval.h"

/* ---- values and matching ------------------------------------------------------------------- */

int docsrv_type_rank(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_MINKEY: return 1;
    case BSON_TYPE_UNDEFINED: case BSON_TYPE_NULL: return 2;
    case BSON_TYPE_INT32: case BSON_TYPE_INT64: case BSON_TYPE_DOUBLE: case BSON_TYPE_DECIMAL128: return 3;
    case BSON_TYPE_UTF8: case BSON_TYPE_SYMBOL: return 4;
    case BSON_TYPE_DOCUMENT: return 5;
    case BSON_TYPE_ARRAY: return 6;
    case BSON_TYPE_BINARY: return 7;
    case BSON_TYPE_OID: return 8;
    case BSON_TYPE_BOOL: return 9;
    case BSON_TYPE_DATE_TIME: return 10;
    case BSON_TYPE_TIMESTAMP: return 11;
    case BSON_TYPE_REGEX: return 12;
    case BSON_TYPE_MAXKEY: return 14;
    default: return 13;
    }
}

static double num(const bson_value_t *v)
{
    switch (v->value_type) {
    case BSON_TYPE_INT32: return v->value.v_int32;
    case BSON_TYPE_INT64: return (double) v->value.v_int64;
    case BSON_TYPE_DOUBLE: return v->value.v_double;
    default: return 0;
    }
}

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

int docsrv_compare_values(const bson_value_t *a, const bson_value_t *b)
{
    int ra = docsrv_type_rank(a->value_type), rb = docsrv_type_rank(b->value_type);
    if (ra != rb) return ra < rb ? -1 : 1;
    switch (ra) {
    case 3:
        if (a->value_type == BSON_TYPE_INT64 && b->value_type == BSON_TYPE_INT64)
            return (a->value.v_int64 > b->value.v_int64) - (a->value.v_int64 < b->value.v_int64);
        return (num(a) > num(b)) - (num(a) < num(b));
    case 4: return cmp_bytes((const uint8_t *) a->value.v_utf8.str, a->value.v_utf8.len,
                             (const uint8_t *) b->value.v_utf8.str, b->value.v_utf8.len);
    case 5: case 6: return cmp_bytes(a->value.v_doc.data, a->value.v_doc.data_len, b->value.v_doc.data, b->value.v_doc.data_len);
    case 7: return cmp_bytes(a->value.v_binary.data, a->value.v_binary.data_len, b->value.v_binary.data, b->value.v_binary.data_len);
    case 8: return memcmp(a->value.v_oid.bytes, b->value.v_oid.bytes, 12);
    case 9: return a->value.v_bool - b->value.v_bool;
    case 10: return (a->value.v_datetime > b->value.v_datetime) - (a->value.v_datetime < b->value.v_datetime);
    default: return 0;
    }
}

bool docsrv_get_field(const bson_t *doc, const char *key, bson_value_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key)) return false;
    *out = *bson_iter_value(&it);
    return true;
}

static bool match_ops(const bson_t *doc, const char *key, const bson_value_t *have, bool present, bson_iter_t *ops)
{
    while (bson_iter_next(ops)) {
        const char *op = bson_iter_key(ops);
        const bson_value_t *want = bson_iter_value(ops);
        int c = present ? docsrv_compare_values(have, want) : -2;
        bool same_rank = present && docsrv_type_rank(have->value_type) == docsrv_type_rank(want->value_type);
        if (!strcmp(op, "$eq") && !(present && c == 0)) return false;
        if (!strcmp(op, "$ne") && present && c == 0) return false;
        if (!strcmp(op, "$gt") && !(same_rank && c > 0)) return false;
        if (!strcmp(op, "$gte") && !(same_rank && c >= 0)) return false;
        if (!strcmp(op, "$lt") && !(same_rank && c < 0)) return false;
        if (!strcmp(op, "$lte") && !(same_rank && c <= 0)) return false;
        if (!strcmp(op, "$exists") && bson_iter_as_bool(ops) != present) return false;
        if (!strcmp(op, "$in")) {
            bson_iter_t in;
            bool any = false;
            if (!BSON_ITER_HOLDS_ARRAY(ops) || !bson_iter_recurse(ops, &in)) return false;
            while (!any && bson_iter_next(&in)) any = present && docsrv_compare_values(have, bson_iter_value(&in)) == 0;
            if (!any) return false;
        }
    }
    (void) doc;
    (void) key;
    return true;
}

bool docsrv_matches(const bson_t *doc, const bson_t *filter)
{
    bson_iter_t it;
    if (!filter || !bson_iter_init(&it, filter)) return true;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!strcmp(key, "$and") || !strcmp(key, "$or")) {
            bool is_and = key[1] == 'a', any = false;
            bson_iter_t sub;
            if (!bson_iter_recurse(&it, &sub)) return false;
            while (bson_iter_next(&sub)) {
                uint32_t l;
                const uint8_t *d;
                bson_t f;
                bson_iter_document(&sub, &l, &d);
                if (!d || !bson_init_static(&f, d, l)) return false;
                bool m = docsrv_matches(doc, &f);
                if (is_and && !m) return false;
                any |= m;
            }
            if (!is_and && !any) return false;
            continue;
        }
        bson_value_t have;
        bool present = docsrv_get_field(doc, key, &have);
        bson_iter_t ops;
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &ops) && bson_iter_next(&ops) &&
            bson_iter_key(&ops)[0] == '$') {
            bson_iter_recurse(&it, &ops);
            if (!match_ops(doc, key, &have, present, &ops)) return false;
        } else if (!present || docsrv_compare_values(&have, bson_iter_value(&it)) != 0 ||
                   (BSON_ITER_HOLDS_NULL(&it) && !present)) {
            return false;
        }
    }
    return true;
}

/* ---- updates ------------------------------------------------------------------------------- */

/* doc with $set / $inc / $unset applied (a new document), or a replacement keeping _id. NULL with
 * *code set when the update is not one this server does. */
bson_t *docsrv_apply_update(const bson_t *doc, const bson_t *u, bool *is_pipeline, int *code)
{
    bson_iter_t it;
    bson_t *out = bson_new();
    *is_pipeline = false;
    if (bson_iter_init(&it, u) && bson_iter_next(&it) && bson_iter_key(&it)[0] != '$') {
        bson_iter_t id;
        if (bson_iter_init_find(&id, doc, "_id")) bson_append_iter(out, "_id", 3, &id);
        bson_iter_init(&it, u);
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), "_id")) bson_append_iter(out, NULL, 0, &it);
        return out;
    }
    bson_t set, unset, inc;
    bson_init(&set), bson_init(&unset), bson_init(&inc);
    bson_iter_init(&it, u);
    while (bson_iter_next(&it)) {
        bson_iter_t f;
        const char *op = bson_iter_key(&it);
        bson_t *dst = !strcmp(op, "$set") ? &set : !strcmp(op, "$unset") ? &unset : !strcmp(op, "$inc") ? &inc : NULL;
        if (!dst || !bson_iter_recurse(&it, &f)) {
            *code = 9; /* FailedToParse */
            bson_destroy(out), bson_destroy(&set), bson_destroy(&unset), bson_destroy(&inc);
            return NULL;
        }
        while (bson_iter_next(&f)) bson_append_iter(dst, NULL, 0, &f);
    }
    /* fields in place (MongoDB keeps a $set field where it was), new ones at the end */
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        bson_iter_t v;
        if (bson_iter_init_find(&v, &unset, k)) continue;
        if (bson_iter_init_find(&v, &set, k)) bson_append_iter(out, k, -1, &v);
        else if (bson_iter_init_find(&v, &inc, k)) {
            if (BSON_ITER_HOLDS_INT32(&it) && BSON_ITER_HOLDS_INT32(&v))
                BSON_APPEND_INT32(out, k, bson_iter_int32(&it) + bson_iter_int32(&v));
            else if (BSON_ITER_HOLDS_DOUBLE(&it) || BSON_ITER_HOLDS_DOUBLE(&v))
                BSON_APPEND_DOUBLE(out, k, bson_iter_as_double(&it) + bson_iter_as_double(&v));
            else BSON_APPEND_INT64(out, k, bson_iter_as_int64(&it) + bson_iter_as_int64(&v));
        } else bson_append_iter(out, k, -1, &it);
    }
    const bson_t *adds[] = {&set, &inc};
    for (int a = 0; a < 2; a++) {
        bson_iter_init(&it, adds[a]);
        while (bson_iter_next(&it)) {
            bson_iter_t v;
            if (!bson_iter_init_find(&v, doc, bson_iter_key(&it))) bson_append_iter(out, NULL, 0, &it);
        }
    }
    bson_destroy(&set), bson_destroy(&unset), bson_destroy(&inc);
    return out;
}

/* The document an upsert inserts: the filter's equality fields, then the update. */
bson_t *docsrv_upsert_doc(const bson_t *q, const bson_t *u, int *code)
{
    bson_t base;
    bson_iter_t it;
    bool pipe;
    bson_init(&base);
    if (bson_iter_init_find(&it, q, "_id") && !(BSON_ITER_HOLDS_DOCUMENT(&it))) bson_append_iter(&base, "_id", 3, &it);
    else {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(&base, "_id", &oid);
    }
    bson_iter_init(&it, q);
    while (bson_iter_next(&it))
        if (strcmp(bson_iter_key(&it), "_id") && bson_iter_key(&it)[0] != '$' && !BSON_ITER_HOLDS_DOCUMENT(&it))
            bson_append_iter(&base, NULL, 0, &it);
    bson_t *out = docsrv_apply_update(&base, u, &pipe, code);
    bson_destroy(&base);
    return out;
}


/* MongoDB's unique index equates 1, 1L and 1.0: numbers hash by value, the rest by bytes. */
uint64_t docsrv_id_hash(const bson_value_t *v)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t) docsrv_type_rank(v->value_type);
    const uint8_t *p = NULL;
    size_t n = 0;
    double d;
    switch (v->value_type) {
    case BSON_TYPE_INT32: case BSON_TYPE_INT64: case BSON_TYPE_DOUBLE:
        d = v->value_type == BSON_TYPE_DOUBLE ? v->value.v_double
            : v->value_type == BSON_TYPE_INT32 ? v->value.v_int32 : (double) v->value.v_int64;
        d = d == 0 ? 0 : d; /* -0 == 0 */
        p = (const uint8_t *) &d, n = sizeof d;
        break;
    case BSON_TYPE_UTF8: p = (const uint8_t *) v->value.v_utf8.str, n = v->value.v_utf8.len; break;
    case BSON_TYPE_OID: p = v->value.v_oid.bytes, n = 12; break;
    case BSON_TYPE_DOCUMENT: case BSON_TYPE_ARRAY: p = v->value.v_doc.data, n = v->value.v_doc.data_len; break;
    case BSON_TYPE_BINARY: p = v->value.v_binary.data, n = v->value.v_binary.data_len; break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h | 1; /* 0 marks an empty slot */
}
