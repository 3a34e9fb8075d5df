/* SASLprep (RFC 4013): map, NFKC, prohibit, bidi, unassigned. See saslprep.h. */
#include "saslprep.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "saslprep_tables.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Hangul syllables compose and decompose by arithmetic (Unicode chapter 3.12). */
enum {
    SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7,
    LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT,
};

/* The longest full decomposition of one code point (U+FDFA) is 18 code points. */
#define MAX_EXPANSION 18

static bool in_ranges(const mqc_sp_range_t *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first) hi = mid;
        else if (cp > r[mid].last) lo = mid + 1;
        else return true;
    }
    return false;
}

static uint8_t ccc_of(uint32_t cp)
{
    size_t lo = 0, hi = N_OF(mqc_sp_ccc);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < mqc_sp_ccc[mid].first) hi = mid;
        else if (cp > mqc_sp_ccc[mid].last) lo = mid + 1;
        else return mqc_sp_ccc[mid].ccc;
    }
    return 0;
}

static const mqc_sp_decomp_t *decomp_of(uint32_t cp)
{
    size_t lo = 0, hi = N_OF(mqc_sp_decomp);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < mqc_sp_decomp[mid].cp) hi = mid;
        else if (cp > mqc_sp_decomp[mid].cp) lo = mid + 1;
        else return &mqc_sp_decomp[mid];
    }
    return NULL;
}

/* The primary composite of (a, b), or 0 when there is none. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = N_OF(mqc_sp_comp);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const mqc_sp_comp_t *c = &mqc_sp_comp[mid];
        if (a < c->first || (a == c->first && b < c->second)) hi = mid;
        else if (a > c->first || b > c->second) lo = mid + 1;
        else return c->composite;
    }
    return 0;
}

size_t mqc_saslprep_nfkc(const uint32_t *cps, size_t n, uint32_t *out, size_t out_cap)
{
    size_t len = 0;
    /* 1. Full compatibility decomposition. */
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        const mqc_sp_decomp_t *d;
        if (cp >= SBASE && cp < SBASE + SCOUNT) {
            uint32_t s = cp - SBASE, t = TBASE + s % TCOUNT;
            if (len + 3 > out_cap) return (size_t) -1;
            out[len++] = LBASE + s / NCOUNT;
            out[len++] = VBASE + (s % NCOUNT) / TCOUNT;
            if (t != TBASE) out[len++] = t;
        } else if ((d = decomp_of(cp)) != NULL) {
            if (len + d->len > out_cap) return (size_t) -1;
            memcpy(out + len, mqc_sp_decomp_data + d->off, d->len * sizeof *out);
            len += d->len;
        } else {
            if (len + 1 > out_cap) return (size_t) -1;
            out[len++] = cp;
        }
    }
    /* 2. Canonical ordering: a stable sort of each run of non-starters by combining class. */
    for (size_t i = 1; i < len; i++) {
        uint8_t c = ccc_of(out[i]);
        if (c == 0) continue;
        for (size_t j = i; j > 0; j--) {
            uint8_t p = ccc_of(out[j - 1]);
            if (p == 0 || p <= c) break;
            uint32_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    }
    /* 3. Canonical composition, in place: a character joins the last starter unless something
     * between them blocks it (a starter, or a class at least its own). */
    size_t w = 0;
    long starter = -1;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = out[i];
        uint8_t c = ccc_of(cp);
        if (starter >= 0) {
            bool adjacent = (size_t) starter == w - 1;
            uint32_t comp;
            if ((adjacent || ccc_of(out[w - 1]) < c) && (comp = compose_pair(out[starter], cp)) != 0) {
                out[starter] = comp;
                continue;
            }
        }
        if (c == 0) starter = (long) w;
        out[w++] = cp;
    }
    return w;
}

/* Strict UTF-8 (no overlongs, surrogates or values past U+10FFFF). Returns the number of code
 * points, or (size_t) -1. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *out)
{
    size_t n = 0, i = 0;
    while (i < len) {
        unsigned char b = s[i];
        uint32_t cp;
        size_t k;
        if (b < 0x80) { cp = b; k = 0; }
        else if (b >= 0xC2 && b <= 0xDF) { cp = b & 0x1F; k = 1; }
        else if (b >= 0xE0 && b <= 0xEF) { cp = b & 0x0F; k = 2; }
        else if (b >= 0xF0 && b <= 0xF4) { cp = b & 0x07; k = 3; }
        else return (size_t) -1;
        if (len - i - 1 < k) return (size_t) -1;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return (size_t) -1;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (size_t) -1;
        out[n++] = cp;
        i += k + 1;
    }
    return n;
}

static size_t utf8_encode(const uint32_t *cps, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        if (c < 0x80) {
            out[o++] = (char) c;
        } else if (c < 0x800) {
            out[o++] = (char) (0xC0 | (c >> 6));
            out[o++] = (char) (0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[o++] = (char) (0xE0 | (c >> 12));
            out[o++] = (char) (0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char) (0x80 | (c & 0x3F));
        } else {
            out[o++] = (char) (0xF0 | (c >> 18));
            out[o++] = (char) (0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char) (0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char) (0x80 | (c & 0x3F));
        }
    }
    out[o] = 0;
    return o;
}

static void wipe_free(void *p, size_t size)
{
    if (!p) return;
    OPENSSL_cleanse(p, size);
    free(p);
}

char *mqc_saslprep(const char *in, size_t len, unsigned flags, size_t *out_len, mqc_error_t *error)
{
    const char *why = NULL;
    char *result = NULL;
    size_t cap = len + 1;
    if (cap > SIZE_MAX / (sizeof(uint32_t) * MAX_EXPANSION)) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "SASLprep: input too long");
        return NULL;
    }
    uint32_t *cps = malloc(cap * sizeof *cps);
    uint32_t *norm = malloc(cap * MAX_EXPANSION * sizeof *norm);
    if (!cps || !norm) {
        why = "out of memory";
        goto done;
    }
    size_t n = utf8_decode((const unsigned char *) in, len, cps);
    if (n == (size_t) -1) {
        why = "invalid UTF-8";
        goto done;
    }
    /* 1. Mapping (RFC 4013 section 2.1). */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_ranges(mqc_sp_map_to_nothing, N_OF(mqc_sp_map_to_nothing), cps[i])) continue;
        cps[m++] = in_ranges(mqc_sp_non_ascii_space, N_OF(mqc_sp_non_ascii_space), cps[i]) ? 0x20 : cps[i];
    }
    /* 2. Normalisation (NFKC). */
    size_t k = mqc_saslprep_nfkc(cps, m, norm, cap * MAX_EXPANSION);
    if (k == (size_t) -1) {
        why = "normalisation overflow";
        goto done;
    }
    /* 3. Prohibited output, unassigned code points; 4. bidi (RFC 3454 section 6). */
    bool has_ral = false, has_l = false;
    for (size_t i = 0; i < k; i++) {
        uint32_t cp = norm[i];
        if (in_ranges(mqc_sp_prohibited, N_OF(mqc_sp_prohibited), cp)) {
            why = "contains a prohibited character";
            goto done;
        }
        if (!(flags & MQC_SASLPREP_ALLOW_UNASSIGNED) &&
            in_ranges(mqc_sp_unassigned, N_OF(mqc_sp_unassigned), cp)) {
            why = "contains a code point unassigned in Unicode 3.2";
            goto done;
        }
        if (in_ranges(mqc_sp_randalcat, N_OF(mqc_sp_randalcat), cp)) has_ral = true;
        if (in_ranges(mqc_sp_lcat, N_OF(mqc_sp_lcat), cp)) has_l = true;
    }
    if (has_ral) {
        if (has_l) {
            why = "mixes right-to-left and left-to-right characters";
            goto done;
        }
        if (!in_ranges(mqc_sp_randalcat, N_OF(mqc_sp_randalcat), norm[0]) ||
            !in_ranges(mqc_sp_randalcat, N_OF(mqc_sp_randalcat), norm[k - 1])) {
            why = "right-to-left text must start and end with a right-to-left character";
            goto done;
        }
    }
    result = malloc(k * 4 + 1);
    if (!result) {
        why = "out of memory";
        goto done;
    }
    size_t olen = utf8_encode(norm, k, result);
    if (out_len) *out_len = olen;
done:
    wipe_free(cps, cps ? cap * sizeof *cps : 0);
    wipe_free(norm, norm ? cap * MAX_EXPANSION * sizeof *norm : 0);
    if (why) mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "SASLprep: %s", why);
    return result;
}

void mqc_saslprep_free(char *s)
{
    if (!s) return;
    wipe_free(s, strlen(s) + 1);
}
