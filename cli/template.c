/* template: compile Extended JSON templates into a tree; evaluate per operation (template.h). */
#include "template.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <sys/time.h>

typedef enum {
    T_LITERAL,  /* a value, copied */
    T_DOC,      /* a document with at least one generator below */
    T_ARRAY,
    T_RANDINT,
    T_RANDDOUBLE,
    T_SEQ,
    T_RANDSTRING,
    T_CHOOSE,
    T_NOW,
    T_KEY,
} tkind_t;

typedef struct tnode {
    tkind_t kind;
    bson_value_t lit;           /* T_LITERAL */
    int64_t lo, hi;             /* RANDINT, RANDSTRING lengths */
    double dlo, dhi;            /* RANDDOUBLE */
    int64_t seq_start, seq_step;
    uint64_t seq_count;         /* per-thread state */
    char *buf;                  /* RANDSTRING scratch of hi + 1 bytes */
    size_t n;
    struct tnode **kids;        /* DOC, ARRAY, CHOOSE */
    char **keys;                /* DOC */
    double *cum;                /* CHOOSE: cumulative weights, NULL for uniform */
} tnode_t;

/* A template in which only $key varies (the default filters, `{_id: {$gte: key}}` pipelines) or
 * nothing does is kept as its encoded bytes with the key's places: evaluating it is a copy and an
 * 8-byte patch per $key, where the tree walk appends through libbson (~400 instructions per find). */
#define FIXED_KEYS 4

struct mqload_template {
    tnode_t *root;              /* a T_DOC/T_ARRAY or a T_LITERAL holding a document/array */
    bool is_array;
    bool uses_key;
    uint8_t *fixed;             /* the bytes (the last key rendered), NULL when anything else varies */
    uint32_t fixed_len;
    bson_t fixed_doc;           /* over fixed: what mqload_template_render hands out */
    uint32_t key_at[FIXED_KEYS]; /* offsets of the $key values (int64, little-endian) */
    size_t n_keys;
};

static const char ALNUM[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void node_free(tnode_t *n)
{
    if (!n) return;
    if (n->kind == T_LITERAL) bson_value_destroy(&n->lit);
    for (size_t i = 0; i < n->n; i++) {
        node_free(n->kids[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->kids);
    free(n->keys);
    free(n->cum);
    free(n->buf);
    free(n);
}

static tnode_t *node_new(tkind_t kind)
{
    tnode_t *n = calloc(1, sizeof *n);
    if (!n) abort();
    n->kind = kind;
    return n;
}

static void errf(char *errmsg, size_t errsize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *errmsg, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errmsg && errsize) vsnprintf(errmsg, errsize, fmt, ap);
    va_end(ap);
}

static tnode_t *compile_value(const bson_iter_t *it, bool *uses_key, char *err, size_t esz);
static void eval_into(tnode_t *n, mqload_tctx_t *ctx, bson_t *out, const char *key, int klen);

static bool iter_int64(const bson_iter_t *it, int64_t *out)
{
    if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) {
        *out = bson_iter_as_int64(it);
        return true;
    }
    if (BSON_ITER_HOLDS_DOUBLE(it)) {
        double d = bson_iter_double(it);
        /* range first: converting a double outside int64 is undefined (fuzz_template found it) */
        if (!(d >= -0x1p63 && d < 0x1p63) || d != (double) (int64_t) d) return false;
        *out = (int64_t) d;
        return true;
    }
    return false;
}

/* Reads [a, b] (two numbers) from an array iterator. */
static bool read_pair(const bson_iter_t *it, double *a, double *b, bool integers, int64_t *ia, int64_t *ib)
{
    bson_iter_t ch;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &ch)) return false;
    int got = 0;
    while (bson_iter_next(&ch)) {
        if (got == 2) return false;
        if (integers) {
            if (!iter_int64(&ch, got ? ib : ia)) return false;
        } else {
            if (!BSON_ITER_HOLDS_NUMBER(&ch)) return false;
            *(got ? b : a) = bson_iter_as_double(&ch);
        }
        got++;
    }
    return got == 2;
}

static const char *const GENERATORS[] = {"$randInt", "$randDouble", "$randString", "$seq", "$choose", "$now", "$key"};

/* MongoDB operators that lie close to a generator's name: never taken for a typo. */
static const char *const REAL_NEAR[] = {"$eq", "$ne", "$set", "$sqrt", "$exp", "$rand", "$range", "$not", "$nor", "$max",
                                        "$min", "$mod", "$pow", "$abs", "$let", "$map", "$meta", "$size", "$sum", "$sort",
                                        "$toInt", "$round", "$trunc", "$concat", "$cond", "$type", "$in", "$nin", "$gt",
                                        "$lt", "$gte", "$lte", "$and", "$or", "$inc", "$mul", "$pop", "$push", "$pull",
                                        "$slice", "$split", "$strcasecmp", "$week", "$year", "$hour", "$second", "$ln",
                                        "$log", "$log10", "$avg", "$first", "$last", "$each", "$bit", "$all", "$unset",
                                        "$rename", "$merge", "$match", "$project", "$group", "$limit", "$skip", "$count",
                                        "$out", "$sample", "$facet", "$search", "$text", "$where", "$regex", "$options",
                                        "$comment", "$exists", "$expr", "$toLong", "$toDate", "$toBool", "$isArray",
                                        "$reverseArray", "$reduce", "$filter", "$zip", "$ceil", "$floor", "$add",
                                        "$subtract", "$multiply", "$divide", "$literal", "$switch", "$ifNull", "$shift"};

/* Edit distance of a and b, case-insensitive, capped at 3. */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 3;
    int d[41][41];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int) i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int) j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = tolower((unsigned char) a[i - 1]) != tolower((unsigned char) b[j - 1]);
            int v = d[i - 1][j - 1] + c;
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            d[i][j] = v;
        }
    return d[la][lb] < 3 ? d[la][lb] : 3;
}

/* The generator k looks like a misspelling of (NULL when k is a real operator or nothing close). */
static const char *generator_lookalike(const char *k)
{
    for (size_t i = 0; i < sizeof REAL_NEAR / sizeof REAL_NEAR[0]; i++)
        if (!strcmp(k, REAL_NEAR[i])) return NULL;
    const char *best = NULL;
    int bd = 3;
    for (size_t i = 0; i < sizeof GENERATORS / sizeof GENERATORS[0]; i++) {
        int d = distance(k, GENERATORS[i]);
        /* Short names ($seq, $now, $key) are one edit from many words: only a case slip counts. */
        int allowed = strlen(GENERATORS[i]) <= 4 ? 0 : 2;
        if (d <= allowed && d < bd) best = GENERATORS[i], bd = d;
        else if (d == 0 && strcmp(k, GENERATORS[i])) best = GENERATORS[i], bd = 0;
    }
    return best;
}

/* A one-key document whose key names a generator: compile it, or return NULL with *is_gen false. */
static tnode_t *compile_generator(const bson_iter_t *doc_it, bool *is_gen, bool *uses_key, char *err, size_t esz)
{
    bson_iter_t ch;
    *is_gen = false;
    if (!bson_iter_recurse(doc_it, &ch) || !bson_iter_next(&ch)) return NULL;
    const char *k = bson_iter_key(&ch);
    bson_iter_t after = ch;
    if (k[0] != '$' || bson_iter_next(&after)) return NULL;
    tnode_t *n = NULL;
    if (!strcmp(k, "$randInt")) {
        *is_gen = true;
        n = node_new(T_RANDINT);
        if (!read_pair(&ch, NULL, NULL, true, &n->lo, &n->hi) || n->lo > n->hi) {
            errf(err, esz, "$randInt needs [lo, hi] with integers lo <= hi");
            goto fail;
        }
    } else if (!strcmp(k, "$randDouble")) {
        *is_gen = true;
        n = node_new(T_RANDDOUBLE);
        if (!read_pair(&ch, &n->dlo, &n->dhi, false, NULL, NULL) || n->dlo > n->dhi) {
            errf(err, esz, "$randDouble needs [lo, hi] with numbers lo <= hi");
            goto fail;
        }
    } else if (!strcmp(k, "$seq")) {
        *is_gen = true;
        n = node_new(T_SEQ);
        n->seq_step = 1;
        if (!BSON_ITER_HOLDS_DOCUMENT(&ch)) {
            errf(err, esz, "$seq needs a document: {} or {\"start\": n, \"step\": k}");
            goto fail;
        }
        bson_iter_t o;
        bson_iter_recurse(&ch, &o);
        while (bson_iter_next(&o)) {
            int64_t v;
            if (!iter_int64(&o, &v)) {
                errf(err, esz, "$seq: %s must be an integer", bson_iter_key(&o));
                goto fail;
            }
            if (!strcmp(bson_iter_key(&o), "start")) n->seq_start = v;
            else if (!strcmp(bson_iter_key(&o), "step") && v != 0) n->seq_step = v;
            else {
                errf(err, esz, "$seq: unknown option '%s' (start, step)", bson_iter_key(&o));
                goto fail;
            }
        }
    } else if (!strcmp(k, "$randString")) {
        *is_gen = true;
        n = node_new(T_RANDSTRING);
        int64_t len;
        if (iter_int64(&ch, &len)) {
            n->lo = n->hi = len;
        } else if (!read_pair(&ch, NULL, NULL, true, &n->lo, &n->hi)) {
            errf(err, esz, "$randString needs a length n or [lo, hi]");
            goto fail;
        }
        if (n->lo < 0 || n->lo > n->hi || n->hi > 16 * 1024 * 1024) {
            errf(err, esz, "$randString: length must be in 0 .. 16777216");
            goto fail;
        }
        n->buf = malloc((size_t) n->hi + 1);
        if (!n->buf) abort();
    } else if (!strcmp(k, "$now") || !strcmp(k, "$key")) {
        *is_gen = true;
        n = node_new(k[1] == 'n' ? T_NOW : T_KEY);
        if (n->kind == T_KEY) *uses_key = true;
    } else if (!strcmp(k, "$choose")) {
        *is_gen = true;
        n = node_new(T_CHOOSE);
        bson_iter_t from, weights;
        bool have_w = false;
        if (BSON_ITER_HOLDS_ARRAY(&ch)) {
            from = ch;
        } else if (BSON_ITER_HOLDS_DOCUMENT(&ch)) {
            bson_iter_t o;
            bool have_from = false;
            bson_iter_recurse(&ch, &o);
            while (bson_iter_next(&o)) {
                if (!strcmp(bson_iter_key(&o), "from") && BSON_ITER_HOLDS_ARRAY(&o)) from = o, have_from = true;
                else if (!strcmp(bson_iter_key(&o), "weights") && BSON_ITER_HOLDS_ARRAY(&o)) weights = o, have_w = true;
                else {
                    errf(err, esz, "$choose: unknown option '%s' (from, weights)", bson_iter_key(&o));
                    goto fail;
                }
            }
            if (!have_from) {
                errf(err, esz, "$choose needs an array, or {\"from\": [...], \"weights\": [...]}");
                goto fail;
            }
        } else {
            errf(err, esz, "$choose needs an array, or {\"from\": [...], \"weights\": [...]}");
            goto fail;
        }
        bson_iter_t a;
        bson_iter_recurse(&from, &a);
        while (bson_iter_next(&a)) {
            tnode_t *kid = compile_value(&a, uses_key, err, esz);
            if (!kid) goto fail;
            n->kids = realloc(n->kids, (n->n + 1) * sizeof *n->kids);
            if (!n->kids) abort();
            n->kids[n->n++] = kid;
        }
        if (!n->n) {
            errf(err, esz, "$choose needs at least one value");
            goto fail;
        }
        if (have_w) {
            n->cum = calloc(n->n, sizeof *n->cum);
            if (!n->cum) abort();
            bson_iter_t w;
            size_t i = 0;
            double sum = 0;
            bool bad = false;
            bson_iter_recurse(&weights, &w);
            while (bson_iter_next(&w)) {
                if (i >= n->n || !BSON_ITER_HOLDS_NUMBER(&w) || bson_iter_as_double(&w) < 0) {
                    bad = true;
                    break;
                }
                sum += bson_iter_as_double(&w);
                n->cum[i++] = sum;
            }
            if (bad || i != n->n || sum <= 0) {
                errf(err, esz, "$choose: weights must be %zu non-negative numbers, not all zero", n->n);
                goto fail;
            }
        }
    } else {
        /* A query or update operator such as $set is copied as it is; a generator's name
         * misspelled ($randint) would reach the server as an operator nobody meant. */
        const char *near = generator_lookalike(k);
        if (near) {
            errf(err, esz, "unknown template operator '%s' (did you mean %s? generators: $randInt, $randDouble, "
                           "$randString, $seq, $choose, $now, $key)", k, near);
            *is_gen = true;
        }
        return NULL;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

/* Compiles the children of a document or array iterator into a DOC/ARRAY node, or a LITERAL
 * when none of them generates anything. */
static tnode_t *compile_container(const bson_iter_t *it, bool *uses_key, char *err, size_t esz)
{
    bool is_array = BSON_ITER_HOLDS_ARRAY(it);
    tnode_t *n = node_new(is_array ? T_ARRAY : T_DOC);
    bson_iter_t ch;
    bool constant = true;
    bson_iter_recurse(it, &ch);
    while (bson_iter_next(&ch)) {
        tnode_t *kid = compile_value(&ch, uses_key, err, esz);
        if (!kid) {
            node_free(n);
            return NULL;
        }
        if (kid->kind != T_LITERAL) constant = false;
        n->kids = realloc(n->kids, (n->n + 1) * sizeof *n->kids);
        n->keys = realloc(n->keys, (n->n + 1) * sizeof *n->keys);
        if (!n->kids || !n->keys) abort();
        n->kids[n->n] = kid;
        n->keys[n->n] = strdup(bson_iter_key(&ch));
        n->n++;
    }
    if (!constant) return n;
    node_free(n);
    n = node_new(T_LITERAL);
    bson_value_copy(bson_iter_value((bson_iter_t *) it), &n->lit);
    return n;
}

static tnode_t *compile_value(const bson_iter_t *it, bool *uses_key, char *err, size_t esz)
{
    if (BSON_ITER_HOLDS_DOCUMENT(it)) {
        bool is_gen;
        tnode_t *g = compile_generator(it, &is_gen, uses_key, err, esz);
        if (is_gen) return g;
    }
    if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) return compile_container(it, uses_key, err, esz);
    tnode_t *n = node_new(T_LITERAL);
    bson_value_copy(bson_iter_value((bson_iter_t *) it), &n->lit);
    return n;
}

/* True when nothing below n but $key varies. */
static bool key_only(const tnode_t *n)
{
    if (n->kind == T_LITERAL || n->kind == T_KEY) return true;
    if (n->kind != T_DOC && n->kind != T_ARRAY) return false;
    for (size_t i = 0; i < n->n; i++)
        if (!key_only(n->kids[i])) return false;
    return true;
}

/* Sets t->fixed when only $key varies. The key's places are where the tree's output with key 0
 * and with key -1 differ: every byte of an int64 is 0x00 in one and 0xff in the other, and
 * nothing else depends on the key. Two values are never adjacent (a type byte and a key's NUL
 * lie between), so each run of differing bytes is one value. */
static void fix_bytes(mqload_template_t *t)
{
    if (!key_only(t->root)) return;
    bson_t a = BSON_INITIALIZER, b = BSON_INITIALIZER;
    mqload_tctx_t ca = {.key = 0}, cb = {.key = -1};
    mqload_template_eval_tree(t, &ca, &a);
    mqload_template_eval_tree(t, &cb, &b);
    const uint8_t *pa = bson_get_data(&a), *pb = bson_get_data(&b);
    bool ok = a.len == b.len;
    size_t n = 0;
    for (uint32_t i = 0; ok && i < a.len; i++) {
        if (pa[i] == pb[i]) continue;
        uint32_t run = 0;
        while (i + run < a.len && pa[i + run] != pb[i + run]) run++;
        ok = run == 8 && n < FIXED_KEYS;
        if (ok) t->key_at[n++] = i;
        i += run - 1;
    }
    if (ok) {
        t->fixed = malloc(a.len);
        if (!t->fixed) abort();
        memcpy(t->fixed, pa, a.len);
        t->fixed_len = a.len;
        if (!bson_init_static(&t->fixed_doc, t->fixed, a.len)) abort(); /* the tree's output is a document */
        t->n_keys = n;
    }
    bson_destroy(&a);
    bson_destroy(&b);
}

mqload_template_t *mqload_template_compile_iter(const bson_iter_t *iter, char *errmsg, size_t errsize)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(iter) && !BSON_ITER_HOLDS_ARRAY(iter)) {
        errf(errmsg, errsize, "'%s' must be a document or an array", bson_iter_key(iter));
        return NULL;
    }
    mqload_template_t *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->is_array = BSON_ITER_HOLDS_ARRAY(iter);
    /* The top level is always a container: a top-level generator is not a document. */
    t->root = compile_container(iter, &t->uses_key, errmsg, errsize);
    if (!t->root) {
        free(t);
        return NULL;
    }
    fix_bytes(t);
    return t;
}

mqload_template_t *mqload_template_compile(const bson_t *doc, bool is_array, char *errmsg, size_t errsize)
{
    bson_t wrap = BSON_INITIALIZER;
    bson_iter_t it;
    if (is_array) bson_append_array(&wrap, "t", 1, doc);
    else bson_append_document(&wrap, "t", 1, doc);
    bson_iter_init_find(&it, &wrap, "t");
    mqload_template_t *t = mqload_template_compile_iter(&it, errmsg, errsize);
    bson_destroy(&wrap);
    return t;
}

void mqload_template_destroy(mqload_template_t *t)
{
    if (!t) return;
    node_free(t->root);
    free(t->fixed);
    free(t);
}

bool mqload_template_is_constant(const mqload_template_t *t) { return t->root->kind == T_LITERAL; }
bool mqload_template_uses_key(const mqload_template_t *t) { return t->uses_key; }
bool mqload_template_is_fixed(const mqload_template_t *t) { return t->fixed != NULL; }


static void eval_children(tnode_t *n, mqload_tctx_t *ctx, bson_t *out)
{
    char idx[16];
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == T_ARRAY) {
            const char *k;
            size_t kl = bson_uint32_to_string((uint32_t) i, &k, idx, sizeof idx);
            eval_into(n->kids[i], ctx, out, k, (int) kl);
        } else {
            eval_into(n->kids[i], ctx, out, n->keys[i], -1);
        }
    }
}

static void eval_into(tnode_t *n, mqload_tctx_t *ctx, bson_t *out, const char *key, int klen)
{
    switch (n->kind) {
    case T_LITERAL:
        bson_append_value(out, key, klen, &n->lit);
        break;
    case T_DOC:
    case T_ARRAY: {
        bson_t child;
        if (n->kind == T_DOC) bson_append_document_begin(out, key, klen, &child);
        else bson_append_array_begin(out, key, klen, &child);
        eval_children(n, ctx, &child);
        if (n->kind == T_DOC) bson_append_document_end(out, &child);
        else bson_append_array_end(out, &child);
        break;
    }
    case T_RANDINT: {
        uint64_t span = (uint64_t) n->hi - (uint64_t) n->lo + 1; /* 0 means the full 2^64 range */
        int64_t v = (int64_t) ((uint64_t) n->lo + (span ? mqload_rng_below(ctx->rng, span) : mqload_rng_next(ctx->rng)));
        if (n->lo >= INT32_MIN && n->hi <= INT32_MAX) bson_append_int32(out, key, klen, (int32_t) v);
        else bson_append_int64(out, key, klen, v);
        break;
    }
    case T_RANDDOUBLE:
        bson_append_double(out, key, klen, n->dlo + (n->dhi - n->dlo) * mqload_rng_double(ctx->rng));
        break;
    case T_SEQ: {
        uint64_t lanes = ctx->lanes ? ctx->lanes : 1;
        /* unsigned arithmetic: a huge step wraps instead of overflowing (undefined; fuzz_template) */
        int64_t v = (int64_t) ((uint64_t) n->seq_start + (uint64_t) n->seq_step * (ctx->lane + lanes * n->seq_count++));
        bson_append_int64(out, key, klen, v);
        break;
    }
    case T_RANDSTRING: {
        size_t len = (size_t) n->lo;
        if (n->hi > n->lo) len += (size_t) mqload_rng_below(ctx->rng, (uint64_t) (n->hi - n->lo + 1));
        /* One draw gives ten characters (6 bits each from 62 symbols; the slight bias is harmless). */
        size_t i = 0;
        while (i < len) {
            uint64_t r = mqload_rng_next(ctx->rng);
            for (int j = 0; j < 10 && i < len; j++, r >>= 6) n->buf[i++] = ALNUM[(r & 63) % 62];
        }
        bson_append_utf8(out, key, klen, n->buf, (int) len);
        break;
    }
    case T_CHOOSE: {
        size_t i;
        if (n->cum) {
            double x = mqload_rng_double(ctx->rng) * n->cum[n->n - 1];
            for (i = 0; i + 1 < n->n && x >= n->cum[i]; i++) {}
        } else {
            i = (size_t) mqload_rng_below(ctx->rng, n->n);
        }
        eval_into(n->kids[i], ctx, out, key, klen);
        break;
    }
    case T_NOW: {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        bson_append_date_time(out, key, klen, (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000);
        break;
    }
    case T_KEY:
        bson_append_int64(out, key, klen, ctx->key);
        break;
    }
}

void mqload_template_eval(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *out)
{
    if (t->fixed) {
        /* emptied first: the reserve makes room for its size past what out holds (then sets the
         * length), so a full out would spill to the heap */
        bson_reinit(out);
        uint8_t *p = bson_reserve_buffer(out, t->fixed_len);
        if (!p) abort(); /* out is never static nor a parent in progress here */
        memcpy(p, t->fixed, t->fixed_len);
        uint64_t le = BSON_UINT64_TO_LE((uint64_t) ctx->key);
        for (size_t i = 0; i < t->n_keys; i++) memcpy(p + t->key_at[i], &le, 8);
        return;
    }
    mqload_template_eval_tree(t, ctx, out);
}

const bson_t *mqload_template_render(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *buf)
{
    if (!t->fixed) {
        mqload_template_eval_tree(t, ctx, buf);
        return buf;
    }
    uint64_t le = BSON_UINT64_TO_LE((uint64_t) ctx->key);
    for (size_t i = 0; i < t->n_keys; i++) memcpy(t->fixed + t->key_at[i], &le, 8);
    return &t->fixed_doc;
}

void mqload_template_eval_tree(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *out)
{
    bson_reinit(out);
    if (t->root->kind == T_LITERAL) {
        const bson_value_t *v = &t->root->lit;
        bson_t inner;
        if (bson_init_static(&inner, v->value.v_doc.data, v->value.v_doc.data_len)) bson_concat(out, &inner);
        return;
    }
    eval_children(t->root, ctx, out);
}
