/* Evaluating matches, as the unified test format says: numbers by value across int32, int64 and
 * double; arrays element by element with the same length; documents with the same keys, except
 * that a root-level actual document may hold more; and the $$ operators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unified.h"

const char *ux_value_json(const bson_value_t *v, char *buf, size_t size)
{
    bson_t tmp = BSON_INITIALIZER;
    BSON_APPEND_VALUE(&tmp, "v", v);
    char *s = bson_as_relaxed_extended_json(&tmp, NULL);
    size_t n = s ? strlen(s) : 0;
    /* '{ "v" : X }' -> 'X' */
    if (s && n > 10) {
        snprintf(buf, size, "%.*s", (int) (n - 10), s + 8);
        if (n - 10 >= size && size > 4) memcpy(buf + size - 4, "...", 4);
    } else snprintf(buf, size, "?");
    bson_free(s);
    bson_destroy(&tmp);
    return buf;
}

static bool is_number(bson_type_t t)
{
    return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE;
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

static bool doc_of(const bson_value_t *v, bson_t *out)
{
    if (v->value_type != BSON_TYPE_DOCUMENT && v->value_type != BSON_TYPE_ARRAY) return false;
    return bson_init_static(out, v->value.v_doc.data, v->value.v_doc.data_len);
}

static bool fail(char *why, size_t size, const char *path, const char *fmt, const bson_value_t *e,
                 const bson_value_t *a)
{
    char eb[300], ab[300];
    snprintf(why, size, "%s: %s (expected %s, actual %s)", path && *path ? path : "(root)", fmt,
             e ? ux_value_json(e, eb, sizeof eb) : "-", a ? ux_value_json(a, ab, sizeof ab) : "(absent)");
    return false;
}

/* The single key of an operator document ({"$$type": ...}), or NULL. */
static const char *operator_of(const bson_value_t *e, bson_value_t *arg)
{
    bson_t d;
    bson_iter_t it;
    if (e->value_type != BSON_TYPE_DOCUMENT || !doc_of(e, &d) || bson_count_keys(&d) != 1) return NULL;
    if (!bson_iter_init(&it, &d) || !bson_iter_next(&it)) return NULL;
    const char *k = bson_iter_key(&it);
    if (strncmp(k, "$$", 2) != 0) return NULL;
    *arg = *bson_iter_value(&it);
    return k;
}

static const struct {
    const char *name;
    bson_type_t type;
} k_types[] = {
    {"double", BSON_TYPE_DOUBLE}, {"string", BSON_TYPE_UTF8}, {"object", BSON_TYPE_DOCUMENT},
    {"array", BSON_TYPE_ARRAY}, {"binData", BSON_TYPE_BINARY}, {"undefined", BSON_TYPE_UNDEFINED},
    {"objectId", BSON_TYPE_OID}, {"bool", BSON_TYPE_BOOL}, {"date", BSON_TYPE_DATE_TIME},
    {"null", BSON_TYPE_NULL}, {"regex", BSON_TYPE_REGEX}, {"dbPointer", BSON_TYPE_DBPOINTER},
    {"javascript", BSON_TYPE_CODE}, {"symbol", BSON_TYPE_SYMBOL}, {"javascriptWithScope", BSON_TYPE_CODEWSCOPE},
    {"int", BSON_TYPE_INT32}, {"timestamp", BSON_TYPE_TIMESTAMP}, {"long", BSON_TYPE_INT64},
    {"decimal", BSON_TYPE_DECIMAL128}, {"minKey", BSON_TYPE_MINKEY}, {"maxKey", BSON_TYPE_MAXKEY},
};

static bool type_is(const char *name, bson_type_t t)
{
    if (!strcmp(name, "number"))
        return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE || t == BSON_TYPE_DECIMAL128;
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (!strcmp(k_types[i].name, name)) return k_types[i].type == t;
    return false;
}

static bool hex_equal(const char *hex, const bson_value_t *a)
{
    if (a->value_type != BSON_TYPE_BINARY) return false;
    size_t n = strlen(hex);
    if (n != 2 * (size_t) a->value.v_binary.data_len) return false;
    for (size_t i = 0; i < a->value.v_binary.data_len; i++) {
        unsigned b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1 || b != a->value.v_binary.data[i]) return false;
    }
    return true;
}

static bool match_doc_in(ux_run_t *run, const bson_t *e, const bson_t *a, bool root, const char *path, char *why,
                         size_t size);

/* An operator that judges absence as well as presence: a == NULL when the key is absent. */
static bool match_op(ux_run_t *run, const char *op, const bson_value_t *arg, const bson_value_t *a, bool root,
                     const char *path, char *why, size_t size, bool *handled)
{
    *handled = true;
    if (!strcmp(op, "$$exists")) {
        bool want = arg->value_type == BSON_TYPE_BOOL ? arg->value.v_bool : true;
        if (want != (a != NULL)) return fail(why, size, path, want ? "should exist" : "should not exist", NULL, a);
        return true;
    }
    if (!strcmp(op, "$$unsetOrMatches")) {
        if (!a) return true;
        return ux_match(run, arg, a, root, path, why, size);
    }
    if (!a) return fail(why, size, path, "missing", arg, NULL);
    if (!strcmp(op, "$$type")) {
        if (arg->value_type == BSON_TYPE_UTF8) {
            if (type_is(arg->value.v_utf8.str, a->value_type)) return true;
        } else {
            bson_t arr;
            bson_iter_t it;
            if (doc_of(arg, &arr) && bson_iter_init(&it, &arr))
                while (bson_iter_next(&it))
                    if (BSON_ITER_HOLDS_UTF8(&it) && type_is(bson_iter_utf8(&it, NULL), a->value_type)) return true;
        }
        return fail(why, size, path, "wrong type", arg, a);
    }
    if (!strcmp(op, "$$matchesEntity")) {
        ux_entity_t *ent = arg->value_type == BSON_TYPE_UTF8 ? ux_entity(run, arg->value.v_utf8.str) : NULL;
        if (!ent || ent->kind != ENT_VALUE) return fail(why, size, path, "no such value entity", arg, a);
        return ux_match(run, &ent->value, a, root, path, why, size);
    }
    if (!strcmp(op, "$$matchesHexBytes")) {
        if (arg->value_type == BSON_TYPE_UTF8 && hex_equal(arg->value.v_utf8.str, a)) return true;
        return fail(why, size, path, "bytes differ", arg, a);
    }
    if (!strcmp(op, "$$lte")) {
        if (!is_number(arg->value_type) || !is_number(a->value_type)) return fail(why, size, path, "$$lte of a non-number", arg, a);
        if (num(a) <= num(arg)) return true;
        return fail(why, size, path, "greater than", arg, a);
    }
    if (!strcmp(op, "$$matchAsDocument") || !strcmp(op, "$$matchAsRoot")) {
        bson_t ed;
        bson_error_t err;
        bool as_root = !strcmp(op, "$$matchAsRoot");
        if (!doc_of(arg, &ed)) return fail(why, size, path, "operator wants a document", arg, a);
        if (as_root) {
            if (a->value_type != BSON_TYPE_DOCUMENT) return fail(why, size, path, "not a document", arg, a);
            return ux_match(run, arg, a, true, path, why, size);
        }
        const char *js = a->value_type == BSON_TYPE_UTF8 ? a->value.v_utf8.str : NULL;
        while (js && (*js == ' ' || *js == '\t' || *js == '\n' || *js == '\r')) js++;
        if (!js || *js != '{') return fail(why, size, path, "not a JSON object string", arg, a);
        bson_t *parsed = bson_new_from_json((const uint8_t *) a->value.v_utf8.str, a->value.v_utf8.len, &err);
        if (!parsed) return fail(why, size, path, "not parseable as JSON", arg, a);
        bson_value_t pv = {.value_type = BSON_TYPE_DOCUMENT};
        pv.value.v_doc.data = (uint8_t *) bson_get_data(parsed);
        pv.value.v_doc.data_len = parsed->len;
        (void) ed;
        bool ok = ux_match(run, arg, &pv, false, path, why, size);
        bson_destroy(parsed);
        return ok;
    }
    if (!strcmp(op, "$$sessionLsid")) {
        ux_entity_t *ent = arg->value_type == BSON_TYPE_UTF8 ? ux_entity(run, arg->value.v_utf8.str) : NULL;
        if (ent && ent->kind == ENT_SESSION) {
            snprintf(why, size, SKIP_MQC "explicit sessions");
            return false;
        }
        if (!ent || ent->kind != ENT_VALUE) return fail(why, size, path, "no such session", arg, a);
        return ux_match(run, &ent->value, a, false, path, why, size);
    }
    *handled = false;
    return false;
}

bool ux_match(ux_run_t *run, const bson_value_t *e, const bson_value_t *a, bool root, const char *path, char *why,
              size_t size)
{
    bson_value_t arg;
    const char *op = operator_of(e, &arg);
    if (op) {
        bool handled;
        bool ok = match_op(run, op, &arg, a, root, path, why, size, &handled);
        if (handled) return ok;
        return fail(why, size, path, "unknown operator", e, a);
    }
    if (!a) return fail(why, size, path, "missing", e, NULL);
    if (is_number(e->value_type) && is_number(a->value_type)) {
        if (num(e) == num(a)) return true;
        return fail(why, size, path, "numbers differ", e, a);
    }
    if (e->value_type != a->value_type) return fail(why, size, path, "types differ", e, a);
    if (e->value_type == BSON_TYPE_DOCUMENT) {
        bson_t ed, ad;
        doc_of(e, &ed);
        doc_of(a, &ad);
        return match_doc_in(run, &ed, &ad, root, path, why, size);
    }
    if (e->value_type == BSON_TYPE_ARRAY) {
        bson_t ed, ad;
        bson_iter_t ei, ai;
        doc_of(e, &ed);
        doc_of(a, &ad);
        if (bson_count_keys(&ed) != bson_count_keys(&ad)) return fail(why, size, path, "array lengths differ", e, a);
        bson_iter_init(&ei, &ed);
        bson_iter_init(&ai, &ad);
        int i = 0;
        while (bson_iter_next(&ei) && bson_iter_next(&ai)) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%d]", path, i++);
            /* The documents of a root-level array (find's result) are root-level too. */
            if (!ux_match(run, bson_iter_value(&ei), bson_iter_value(&ai), root, sub, why, size)) return false;
        }
        return true;
    }
    /* Scalars: compare the BSON bytes of the values. */
    bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
    BSON_APPEND_VALUE(&x, "v", e);
    BSON_APPEND_VALUE(&y, "v", a);
    bool eq = x.len == y.len && !memcmp(bson_get_data(&x), bson_get_data(&y), x.len);
    bson_destroy(&x);
    bson_destroy(&y);
    return eq ? true : fail(why, size, path, "values differ", e, a);
}

static bool match_doc_in(ux_run_t *run, const bson_t *e, const bson_t *a, bool root, const char *path, char *why,
                         size_t size)
{
    bson_iter_t ei, ai;
    if (!bson_iter_init(&ei, e)) return fail(why, size, path, "bad expected document", NULL, NULL);
    while (bson_iter_next(&ei)) {
        const char *k = bson_iter_key(&ei);
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", k);
        bool present = bson_iter_init_find(&ai, a, k);
        if (!ux_match(run, bson_iter_value(&ei), present ? bson_iter_value(&ai) : NULL, false, sub, why, size))
            return false;
    }
    if (!root) {
        if (!bson_iter_init(&ai, a)) return true;
        while (bson_iter_next(&ai))
            if (!bson_has_field(e, bson_iter_key(&ai))) {
                char sub[512];
                snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", bson_iter_key(&ai));
                return fail(why, size, sub, "unexpected field", NULL, bson_iter_value(&ai));
            }
    }
    return true;
}

bool ux_match_doc(ux_run_t *run, const bson_t *expected, const bson_t *actual, bool root, char *why, size_t why_size)
{
    return match_doc_in(run, expected, actual, root, "", why, why_size);
}
