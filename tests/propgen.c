/* propgen: see propgen.h. */
#include "propgen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pg_seed(pg_rng_t *r, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

void pg_from_bytes(pg_rng_t *r, const uint8_t *data, size_t len)
{
    memset(r, 0, sizeof *r);
    r->data = data;
    r->len = len;
}

uint64_t pg_next(pg_rng_t *r)
{
    if (r->data) {
        uint64_t v = 0;
        for (int i = 0; i < 4; i++) v = v << 8 | (r->pos < r->len ? r->data[r->pos++] : 0);
        return v * 0x9E3779B97F4A7C15ull;
    }
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s * 0x2545F4914F6CDD1Dull;
}

uint32_t pg_below(pg_rng_t *r, uint32_t n) { return n ? (uint32_t) ((pg_next(r) >> 32) % n) : 0; }

size_t pg_size(pg_rng_t *r, size_t lo, size_t hi)
{
    if (hi <= lo) return lo;
    double f = (double) pg_below(r, 1u << 20) / (double) (1u << 20);
    size_t v = (size_t) exp(log((double) lo + 1) + f * (log((double) hi + 1) - log((double) lo + 1))) - 1;
    return v < lo ? lo : v > hi ? hi : v;
}

/* valid UTF-8: ASCII, 2-, 3- and 4-byte characters, no NUL */
static void rand_utf8(pg_rng_t *r, char *buf, size_t max)
{
    size_t n = 0, want = pg_below(r, (uint32_t) max);
    while (n + 4 < max && n < want) {
        uint32_t k = pg_below(r, 10), cp;
        if (k < 6) buf[n++] = (char) (' ' + pg_below(r, 95));
        else if (k < 8) cp = 0x80 + pg_below(r, 0x780), buf[n++] = (char) (0xC0 | cp >> 6), buf[n++] = (char) (0x80 | (cp & 63));
        else if (k < 9) {
            cp = 0x800 + pg_below(r, 0xD000 - 0x800);
            buf[n++] = (char) (0xE0 | cp >> 12), buf[n++] = (char) (0x80 | (cp >> 6 & 63)), buf[n++] = (char) (0x80 | (cp & 63));
        } else {
            cp = 0x10000 + pg_below(r, 0xFFFFF);
            buf[n++] = (char) (0xF0 | cp >> 18), buf[n++] = (char) (0x80 | (cp >> 12 & 63));
            buf[n++] = (char) (0x80 | (cp >> 6 & 63)), buf[n++] = (char) (0x80 | (cp & 63));
        }
    }
    buf[n] = '\0';
}

static double rand_double(pg_rng_t *r, pg_types_t types)
{
    switch (pg_below(r, 6)) {
    case 0: return (double) (int32_t) pg_next(r);
    case 1: return ldexp((double) (pg_next(r) >> 11), (int) pg_below(r, 200) - 100) * (pg_below(r, 2) ? 1 : -1);
    case 2: return types == PG_TYPES_ALL ? -0.0 : 0.5;
    case 3: return types == PG_TYPES_ALL ? INFINITY : 1e300;
    case 4: return 0.1 * (double) pg_below(r, 1000);
    default: return 1.7976931348623157e308;
    }
}

static void value_in(pg_rng_t *r, bson_t *out, const char *key, int depth, pg_types_t types, bool in_array);

static void rand_fields(pg_rng_t *r, bson_t *d, int depth, pg_types_t types, bool array)
{
    uint32_t n = pg_below(r, depth > 0 ? 6 : 3);
    for (uint32_t i = 0; i < n; i++) {
        char key[32];
        if (array) snprintf(key, sizeof key, "%u", i);
        else snprintf(key, sizeof key, "k%u_%c%u", i, 'a' + (char) pg_below(r, 26), pg_below(r, 100));
        value_in(r, d, key, depth - 1, types, array);
    }
}

void pg_value(pg_rng_t *r, bson_t *out, const char *key, int depth, pg_types_t types)
{
    value_in(r, out, key, depth, types, false);
}

/* in_array: FerretDB 1.x refuses an array directly inside an array */
static void value_in(pg_rng_t *r, bson_t *out, const char *key, int depth, pg_types_t types, bool in_array)
{
    char s[64];
    uint8_t bin[40];
    bson_oid_t oid;
    bson_t sub;
    int kinds = types == PG_TYPES_ALL ? 22 : 14;
    int k = (int) pg_below(r, (uint32_t) kinds);
    if (depth <= 0 && (k == 2 || k == 3)) k = 0; /* no deeper nesting */
    if (k == 3 && in_array && types == PG_TYPES_FERRETDB) k = 2;
    switch (k) {
    case 0: BSON_APPEND_DOUBLE(out, key, rand_double(r, types)); break;
    case 1: rand_utf8(r, s, sizeof s); BSON_APPEND_UTF8(out, key, s); break;
    case 2: BSON_APPEND_DOCUMENT_BEGIN(out, key, &sub); rand_fields(r, &sub, depth, types, false); bson_append_document_end(out, &sub); break;
    case 3: BSON_APPEND_ARRAY_BEGIN(out, key, &sub); rand_fields(r, &sub, depth, types, true); bson_append_array_end(out, &sub); break;
    case 4: {
        static const bson_subtype_t st[] = {BSON_SUBTYPE_BINARY, BSON_SUBTYPE_UUID, BSON_SUBTYPE_MD5, BSON_SUBTYPE_USER};
        bson_subtype_t t = st[pg_below(r, 4)];
        uint32_t n = t == BSON_SUBTYPE_UUID || t == BSON_SUBTYPE_MD5 ? 16 : pg_below(r, sizeof bin);
        for (uint32_t i = 0; i < n; i++) bin[i] = (uint8_t) pg_next(r);
        bson_append_binary(out, key, -1, t, bin, n);
        break;
    }
    case 5:
        for (int i = 0; i < 12; i++) oid.bytes[i] = (uint8_t) pg_next(r);
        BSON_APPEND_OID(out, key, &oid);
        break;
    case 6: BSON_APPEND_BOOL(out, key, pg_below(r, 2)); break;
    case 7: BSON_APPEND_DATE_TIME(out, key, (int64_t) (pg_next(r) % 8000000000000ull) - 1000000000000ll); break;
    case 8: BSON_APPEND_NULL(out, key); break;
    case 9: {
        static const char *const opts[] = {"", "i", "im", "ims", "imsx", "s", "x", "mx"};
        rand_utf8(r, s, 12);
        for (char *p = s; *p; p++)
            if (*p == '\\') *p = 'b'; /* a trailing backslash is no regex */
        BSON_APPEND_REGEX(out, key, s, opts[pg_below(r, 8)]);
        break;
    }
    case 10: BSON_APPEND_INT32(out, key, (int32_t) pg_next(r)); break;
    case 11: BSON_APPEND_INT64(out, key, (int64_t) pg_next(r)); break;
    case 12: BSON_APPEND_TIMESTAMP(out, key, 1 + pg_below(r, 2000000000), 1 + pg_below(r, 1000)); break;
    case 13: BSON_APPEND_INT32(out, key, (int32_t) pg_below(r, 100)); break;
    case 14: {
        bson_decimal128_t dec = {.high = pg_next(r) & 0x7DFFFFFFFFFFFFFFull, .low = pg_next(r)};
        BSON_APPEND_DECIMAL128(out, key, &dec);
        break;
    }
    case 15: BSON_APPEND_MINKEY(out, key); break;
    case 16: BSON_APPEND_MAXKEY(out, key); break;
    case 17: BSON_APPEND_UNDEFINED(out, key); break;
    case 18: rand_utf8(r, s, 20); BSON_APPEND_SYMBOL(out, key, s); break;
    case 19: rand_utf8(r, s, 30); BSON_APPEND_CODE(out, key, s); break;
    case 20: {
        bson_t scope;
        bson_init(&scope);
        BSON_APPEND_INT32(&scope, "x", (int32_t) pg_below(r, 10));
        rand_utf8(r, s, 30);
        BSON_APPEND_CODE_WITH_SCOPE(out, key, s, &scope);
        bson_destroy(&scope);
        break;
    }
    default:
        for (int i = 0; i < 12; i++) oid.bytes[i] = (uint8_t) pg_next(r);
        rand_utf8(r, s, 16);
        BSON_APPEND_DBPOINTER(out, key, s, &oid);
        break;
    }
}

void pg_doc(pg_rng_t *r, bson_t *out, int32_t id, int32_t group, size_t size, pg_types_t types)
{
    bson_init(out);
    BSON_APPEND_INT32(out, "_id", id);
    BSON_APPEND_INT32(out, "g", group);
    BSON_APPEND_INT32(out, "n", 0);
    /* random fields, but leave room for the padding */
    for (uint32_t i = 0, n = pg_below(r, 8); i < n && out->len + 400 < size; i++) {
        char key[32];
        snprintf(key, sizeof key, "f%u", i);
        pg_value(r, out, key, 3, types);
    }
    /* pad: type (1) + "pad\0" (4) + length (4) + string + NUL (1) = 10 + strlen */
    if (size >= out->len + 10) {
        size_t n = size - out->len - 10;
        char *pad = malloc(n + 1);
        for (size_t i = 0; i < n; i++) pad[i] = (char) ('a' + (i * 7 + (size_t) id) % 26);
        pad[n] = '\0';
        bson_append_utf8(out, "pad", 3, pad, (int) n);
        free(pad);
    }
}

bool pg_equal(const bson_t *a, const bson_t *b)
{
    return a && b && a->len == b->len && memcmp(bson_get_data(a), bson_get_data(b), a->len) == 0;
}

const char *pg_show(const bson_t *doc)
{
    static char buf[2][400];
    static int slot;
    char *b = buf[slot++ % 2];
    if (!doc) return "(none)";
    char *j = bson_as_canonical_extended_json(doc, NULL);
    snprintf(b, sizeof buf[0], "%u bytes: %.300s%s", doc->len, j ? j : "?", j && strlen(j) > 300 ? "..." : "");
    bson_free(j);
    return b;
}
