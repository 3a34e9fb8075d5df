/* SCRAM-SHA-1 and SCRAM-SHA-256 for MongoDB: messages, proofs, and the saslStart/saslContinue
 * commands. The salted-password cache is lib/scram_cache.c. See scram.h. */
#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "saslprep.h"
#include "scram_cache.h"

#define HASH_MAX MQC_SCRAM_HASH_MAX
#define NONCE_MAX 128

typedef enum {
    ST_INIT = 0,               /* nothing sent */
    ST_FIRST_SENT,             /* client-first made: expecting server-first */
    ST_KEYS,                   /* server-first checked: waiting for the keys (deferred cache) */
    ST_FINAL_SENT,             /* client-final made: expecting server-final */
    ST_VERIFIED,               /* server signature checked, the server has not said done yet */
    ST_DONE,
    ST_FAILED,
} state_t;

struct mqc_scram {
    mqc_scram_mech_t mech;
    const EVP_MD *md;
    size_t hlen;
    char *user;
    char *secret;              /* the prepared password, until the salt arrives; wiped */
    size_t secret_len;
    mqc_scram_cache_t *cache;
    char fixed_nonce[NONCE_MAX + 1];
    char nonce[NONCE_MAX + 1];
    char *first_bare;          /* "n=<user>,r=<nonce>" */
    uint8_t server_signature[HASH_MAX];
    uint8_t *out;              /* the last message made */
    size_t out_len;
    int64_t conversation_id;
    bool conversation_id_is_32;
    state_t state;
    /* the checked server-first message, kept until the keys are known */
    uint8_t *server_first;
    size_t server_first_len;
    size_t snonce_off, snonce_len;   /* the server's nonce, within server_first */
    uint8_t salt[256];
    size_t salt_len;
    uint32_t iterations;
    uint8_t cache_id[32];            /* the credential's id, once get_keys has made it */
};

typedef enum { KEYS_READY, KEYS_DERIVE, KEYS_WAIT, KEYS_FAILED } keys_t;

/* ---- small helpers ---------------------------------------------------------------------- */

static void wipe_free(void *p, size_t n)
{
    if (!p) return;
    OPENSSL_cleanse(p, n);
    free(p);
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of in into out (room for 4 * ceil(n / 3) + 1). Returns the length. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) in[i] << 16;
        if (i + 1 < n) v |= (uint32_t) in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = b64_chars[(v >> 18) & 63];
        out[o++] = b64_chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (padded, no whitespace) of in[0..n-1] into out (room for n / 4 * 3). Returns the
 * decoded length, or -1. */
static long b64_decode(const char *in, size_t n, uint8_t *out)
{
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        bool last = i + 4 == n;
        for (int k = 0; k < 4; k++) v[k] = b64_value((unsigned char) in[i + k]);
        if (v[0] < 0 || v[1] < 0) return -1;
        if (v[2] < 0 && !(last && in[i + 2] == '=' && in[i + 3] == '=')) return -1;
        if (v[3] < 0 && !(last && in[i + 3] == '=')) return -1;
        /* Canonical form only: the bits padding leaves over must be zero. */
        if ((v[2] < 0 && (v[1] & 15)) || (v[2] >= 0 && v[3] < 0 && (v[2] & 3))) return -1;
        out[o++] = (uint8_t) (v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) out[o++] = (uint8_t) ((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) out[o++] = (uint8_t) ((v[2] & 3) << 6 | v[3]);
    }
    return (long) o;
}

const char *mqc_scram_mech_name(mqc_scram_mech_t mech)
{
    return mech == MQC_SCRAM_SHA_1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

bool mqc_scram_mech_from_name(const char *name, mqc_scram_mech_t *out)
{
    if (!name) return false;
    if (!strcmp(name, "SCRAM-SHA-1")) *out = MQC_SCRAM_SHA_1;
    else if (!strcmp(name, "SCRAM-SHA-256")) *out = MQC_SCRAM_SHA_256;
    else return false;
    return true;
}

mqc_scram_mech_t mqc_scram_mech_negotiate(const bson_t *hello_reply)
{
    bson_iter_t it, ch;
    if (hello_reply && bson_iter_init_find(&it, hello_reply, "saslSupportedMechs") &&
        BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ch))
        while (bson_iter_next(&ch))
            if (BSON_ITER_HOLDS_UTF8(&ch) && !strcmp(bson_iter_utf8(&ch, NULL), "SCRAM-SHA-256"))
                return MQC_SCRAM_SHA_256;
    return MQC_SCRAM_SHA_1;
}

void mqc_scram_append_sasl_supported_mechs(bson_t *hello, const char *db, const char *user)
{
    char *v = bson_strdup_printf("%s.%s", db, user);
    BSON_APPEND_UTF8(hello, "saslSupportedMechs", v);
    bson_free(v);
}

/* Sets an MQC_ERROR_AUTH error naming the mechanism and user, and ends the conversation. */
__attribute__((format(printf, 4, 5)))
static void fail(mqc_scram_t *s, mqc_error_t *error, int32_t code, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s->state = ST_FAILED;
    mqc_error_set(error, MQC_ERROR_AUTH, code, "%s authentication failed for user \"%s\": %s",
                  mqc_scram_mech_name(s->mech), s->user, why);
}

/* Copies a server-sent value for an error message: printable ASCII only, bounded. */
static void printable(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) dst[o++] = src[i] >= 0x20 && src[i] < 0x7F ? (char) src[i] : '?';
    dst[o] = 0;
}

static void set_out(mqc_scram_t *s, uint8_t *msg, size_t len)
{
    wipe_free(s->out, s->out_len);
    s->out = msg;
    s->out_len = len;
}

/* ---- keys: from the cache, from PBKDF2, or deferred (lib/scram_cache.c) ---------------- */

/* ClientKey and ServerKey for the server-first's salt and iteration count: from the cache, or
 * from PBKDF2 now, or (deferred cache) KEYS_DERIVE / KEYS_WAIT for the caller to arrange. */
static keys_t get_keys(mqc_scram_t *s, uint8_t *client_key, uint8_t *server_key, mqc_error_t *error)
{
    mqc_scram_cache_t *c = s->cache;
    if (!s->secret) {
        fail(s, error, 0, "the conversation cannot restart after the password was used");
        return KEYS_FAILED;
    }
    if (c) {
        if (!mqc_scram_cache_id(c, (int) s->mech, s->user, s->secret, s->secret_len, s->salt, s->salt_len,
                                s->iterations, s->cache_id)) {
            fail(s, error, 0, "HMAC failed");
            return KEYS_FAILED;
        }
        switch (mqc_scram_cache_lookup(c, s->cache_id, client_key, server_key, s->hlen)) {
        case MQC_SCRAM_CACHE_HIT: return KEYS_READY;
        case MQC_SCRAM_CACHE_PENDING: return KEYS_WAIT;
        default: break;
        }
        if (mqc_scram_cache_is_deferred(c)) {
            mqc_scram_cache_reserve(c, s->cache_id);
            return KEYS_DERIVE;
        }
    }
    if (!mqc_scram_pbkdf2_keys(s->md, s->hlen, s->secret, s->secret_len, s->salt, s->salt_len, s->iterations,
                               client_key, server_key)) {
        fail(s, error, 0, "key derivation failed");
        return KEYS_FAILED;
    }
    if (c) mqc_scram_cache_put(c, s->cache_id, client_key, server_key, s->hlen);
    return KEYS_READY;
}

mqc_scram_kdf_t *mqc_scram_kdf_take(mqc_scram_t *s)
{
    if (s->state != ST_KEYS || !s->secret || !s->cache) return NULL;
    return mqc_scram_kdf_new(s->md, s->hlen, s->secret, s->secret_len, s->salt, s->salt_len, s->iterations,
                             s->cache_id);
}

/* ---- conversation ----------------------------------------------------------------------- */

mqc_scram_t *mqc_scram_new(mqc_scram_mech_t mech, const char *user, const char *password,
                           mqc_scram_cache_t *cache, mqc_error_t *error)
{
    if (mech != MQC_SCRAM_SHA_1 && mech != MQC_SCRAM_SHA_256) {
        mqc_error_set(error, MQC_ERROR_AUTH, 0, "unknown SCRAM mechanism %d", (int) mech);
        return NULL;
    }
    if (!user || !*user) {
        mqc_error_set(error, MQC_ERROR_AUTH, 0, "%s requires a user name", mqc_scram_mech_name(mech));
        return NULL;
    }
    if (!password) {
        mqc_error_set(error, MQC_ERROR_AUTH, 0, "%s authentication for user \"%s\" requires a password",
                      mqc_scram_mech_name(mech), user);
        return NULL;
    }
    mqc_scram_t *s = calloc(1, sizeof *s);
    if (!s || !(s->user = strdup(user))) {
        free(s);
        mqc_error_set(error, MQC_ERROR_AUTH, 0, "out of memory");
        return NULL;
    }
    s->mech = mech;
    s->md = mech == MQC_SCRAM_SHA_1 ? EVP_sha1() : EVP_sha256();
    s->hlen = (size_t) EVP_MD_get_size(s->md);
    s->cache = cache;
    if (mech == MQC_SCRAM_SHA_1) {
        /* MongoDB's SCRAM-SHA-1 hashes HEX(MD5(user ":mongo:" password)), without SASLprep. */
        uint8_t d[16];
        unsigned dn = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) &&
                  EVP_DigestUpdate(ctx, user, strlen(user)) && EVP_DigestUpdate(ctx, ":mongo:", 7) &&
                  EVP_DigestUpdate(ctx, password, strlen(password)) && EVP_DigestFinal_ex(ctx, d, &dn);
        EVP_MD_CTX_free(ctx);
        s->secret = malloc(33);
        if (!ok || dn != 16 || !s->secret) {
            OPENSSL_cleanse(d, sizeof d);
            fail(s, error, 0, "MD5 is not available");
            mqc_scram_destroy(s);
            return NULL;
        }
        for (int i = 0; i < 16; i++) {
            s->secret[2 * i] = "0123456789abcdef"[d[i] >> 4];
            s->secret[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
        }
        s->secret[32] = 0;
        s->secret_len = 32;
        OPENSSL_cleanse(d, sizeof d);
    } else {
        mqc_error_t e;
        s->secret = mqc_saslprep(password, strlen(password), 0, &s->secret_len, &e);
        if (!s->secret) {
            fail(s, error, 0, "the password: %s", e.message);
            mqc_scram_destroy(s);
            return NULL;
        }
    }
    return s;
}

void mqc_scram_destroy(mqc_scram_t *s)
{
    if (!s) return;
    wipe_free(s->secret, s->secret_len);
    free(s->user);
    free(s->first_bare);
    free(s->server_first);
    wipe_free(s->out, s->out_len);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

mqc_scram_mech_t mqc_scram_get_mech(const mqc_scram_t *s) { return s->mech; }

static bool nonce_ok(const char *p, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) p[i] < 0x21 || (unsigned char) p[i] > 0x7E || p[i] == ',') return false;
    return true;
}

bool mqc_scram_set_client_nonce(mqc_scram_t *s, const char *nonce, mqc_error_t *error)
{
    if (!nonce || strlen(nonce) > NONCE_MAX || !nonce_ok(nonce, strlen(nonce))) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "invalid SCRAM nonce");
        return false;
    }
    snprintf(s->fixed_nonce, sizeof s->fixed_nonce, "%s", nonce);
    return true;
}

bool mqc_scram_client_first(mqc_scram_t *s, const uint8_t **out, size_t *out_len, mqc_error_t *error)
{
    if (s->fixed_nonce[0]) {
        snprintf(s->nonce, sizeof s->nonce, "%s", s->fixed_nonce);
    } else {
        uint8_t r[24];
        if (RAND_bytes(r, sizeof r) != 1) {
            fail(s, error, 0, "no random bytes for the nonce");
            return false;
        }
        b64_encode(r, sizeof r, s->nonce);
    }
    /* saslname: '=' and ',' escaped (RFC 5802 section 5.1); no SASLprep of user names. */
    size_t ulen = strlen(s->user), n = 0;
    char *bare = malloc(ulen * 3 + strlen(s->nonce) + 8);
    if (!bare) {
        fail(s, error, 0, "out of memory");
        return false;
    }
    n += (size_t) sprintf(bare, "n=");
    for (size_t i = 0; i < ulen; i++) {
        if (s->user[i] == '=') n += (size_t) sprintf(bare + n, "=3D");
        else if (s->user[i] == ',') n += (size_t) sprintf(bare + n, "=2C");
        else bare[n++] = s->user[i];
    }
    n += (size_t) sprintf(bare + n, ",r=%s", s->nonce);
    free(s->first_bare);
    s->first_bare = bare;
    uint8_t *msg = malloc(n + 4);
    if (!msg) {
        fail(s, error, 0, "out of memory");
        return false;
    }
    /* "n,,": no channel binding (the auth spec forbids advertising it), no authzid. */
    memcpy(msg, "n,,", 3);
    memcpy(msg + 3, bare, n + 1);
    set_out(s, msg, n + 3);
    s->state = ST_FIRST_SENT;
    *out = s->out;
    *out_len = s->out_len;
    return true;
}

/* Reads "<name>=<value>" at *p, value up to the next ',' or end; moves *p past the ','. */
static bool attr(const char **p, const char *end, char name, const char **val, size_t *vlen)
{
    const char *q = *p;
    if (end - q < 2 || q[0] != name || q[1] != '=') return false;
    q += 2;
    const char *v = q;
    while (q < end && *q != ',') q++;
    *val = v;
    *vlen = (size_t) (q - v);
    *p = q < end ? q + 1 : q;
    return true;
}

static bool server_error(mqc_scram_t *s, const uint8_t *in, size_t n, mqc_error_t *error)
{
    if (n >= 2 && in[0] == 'e' && in[1] == '=') {
        char v[160];
        size_t k = 2;
        while (k < n && in[k] != ',') k++;
        printable(v, sizeof v, in + 2, k - 2);
        fail(s, error, 0, "server error \"%s\"", v);
        return true;
    }
    return false;
}

/* Checks the server-first message and keeps what the client-final needs from it. */
static bool check_server_first(mqc_scram_t *s, const uint8_t *in, size_t in_len, mqc_error_t *error)
{
    const char *p = (const char *) in, *end = p + in_len, *v;
    size_t vn, nlen = strlen(s->nonce);
    long salt_len;
    if (s->state != ST_FIRST_SENT) {
        fail(s, error, 0, "server-first message out of order");
        return false;
    }
    if (server_error(s, in, in_len, error)) return false;
    if (memchr(in, 0, in_len)) {
        fail(s, error, 0, "malformed server-first message (NUL byte)");
        return false;
    }
    if (in_len >= 2 && in[0] == 'm' && in[1] == '=') {
        fail(s, error, 0, "server requires an unsupported SCRAM extension");
        return false;
    }
    if (!attr(&p, end, 'r', &v, &vn) || !nonce_ok(v, vn)) {
        fail(s, error, 0, "malformed server-first message (nonce)");
        return false;
    }
    if (vn <= nlen || memcmp(v, s->nonce, nlen) != 0 || vn > 1024) {
        fail(s, error, 0, "server nonce does not extend the client nonce");
        return false;
    }
    s->snonce_off = (size_t) (v - (const char *) in);
    s->snonce_len = vn;
    if (!attr(&p, end, 's', &v, &vn) || vn == 0 || vn / 4 * 3 > sizeof s->salt ||
        (salt_len = b64_decode(v, vn, s->salt)) <= 0) {
        fail(s, error, 0, "malformed server-first message (salt)");
        return false;
    }
    s->salt_len = (size_t) salt_len;
    if (!attr(&p, end, 'i', &v, &vn) || vn == 0 || vn > 10 || (vn > 1 && v[0] == '0')) {
        fail(s, error, 0, "malformed server-first message (iteration count)");
        return false;
    }
    uint64_t it = 0;
    for (size_t i = 0; i < vn; i++) {
        if (v[i] < '0' || v[i] > '9') {
            fail(s, error, 0, "malformed server-first message (iteration count)");
            return false;
        }
        it = it * 10 + (uint64_t) (v[i] - '0');
    }
    if (it > INT32_MAX) {
        fail(s, error, 0, "malformed server-first message (iteration count)");
        return false;
    }
    s->iterations = (uint32_t) it;
    if (s->iterations < MQC_SCRAM_MIN_ITERATIONS) {
        fail(s, error, 0, "iteration count %u is below the minimum of %d", s->iterations, MQC_SCRAM_MIN_ITERATIONS);
        return false;
    }
    /* Anything after this is extensions, which a client ignores (RFC 5802 section 7). */
    free(s->server_first);
    s->server_first = malloc(in_len + 1);
    if (!s->server_first) {
        fail(s, error, 0, "out of memory");
        return false;
    }
    memcpy(s->server_first, in, in_len);
    s->server_first_len = in_len;
    s->state = ST_KEYS;
    return true;
}

/* With the keys: the proof, and the client-final message made from it. */
static bool make_final(mqc_scram_t *s, uint8_t *client_key, uint8_t *server_key, mqc_error_t *error)
{
    uint8_t stored_key[HASH_MAX], sig[HASH_MAX];
    unsigned n = 0;
    /* The password has done its work: wipe it now rather than at destroy. */
    wipe_free(s->secret, s->secret_len);
    s->secret = NULL;
    s->secret_len = 0;

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
    const char *snonce = (const char *) s->server_first + s->snonce_off;
    size_t in_len = s->server_first_len;
    size_t bare_len = strlen(s->first_bare);
    size_t wp_len = 9 + s->snonce_len;   /* "c=biws,r=" nonce */
    size_t am_len = bare_len + 1 + in_len + 1 + wp_len;
    size_t proof_b64 = 4 * ((s->hlen + 2) / 3);
    char *am = malloc(am_len + 1);
    uint8_t *msg = malloc(wp_len + 3 + proof_b64 + 1);
    bool ok = am && msg;
    if (ok) {
        memcpy(msg, "c=biws,r=", 9);
        memcpy(msg + 9, snonce, s->snonce_len);
        memcpy(am, s->first_bare, bare_len);
        am[bare_len] = ',';
        memcpy(am + bare_len + 1, s->server_first, in_len);
        am[bare_len + 1 + in_len] = ',';
        memcpy(am + bare_len + 2 + in_len, msg, wp_len);
        am[am_len] = 0;
        ok = EVP_Digest(client_key, s->hlen, stored_key, &n, s->md, NULL) &&
             HMAC(s->md, stored_key, (int) s->hlen, (uint8_t *) am, am_len, sig, &n) &&
             HMAC(s->md, server_key, (int) s->hlen, (uint8_t *) am, am_len, s->server_signature, &n);
    }
    if (ok) {
        for (size_t i = 0; i < s->hlen; i++) client_key[i] ^= sig[i];   /* ClientProof */
        memcpy(msg + wp_len, ",p=", 3);
        size_t plen = b64_encode(client_key, s->hlen, (char *) msg + wp_len + 3);
        set_out(s, msg, wp_len + 3 + plen);
        msg = NULL;
        s->state = ST_FINAL_SENT;
    } else {
        fail(s, error, 0, "computing the proof failed");
    }
    OPENSSL_cleanse(stored_key, sizeof stored_key);
    OPENSSL_cleanse(sig, sizeof sig);
    free(am);
    free(msg);
    return ok;
}

/* Keys, then the client-final message; or what the caller must arrange first. */
static keys_t keys_and_final(mqc_scram_t *s, mqc_error_t *error)
{
    uint8_t client_key[HASH_MAX], server_key[HASH_MAX];
    keys_t k = get_keys(s, client_key, server_key, error);
    if (k == KEYS_READY && !make_final(s, client_key, server_key, error)) k = KEYS_FAILED;
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(server_key, sizeof server_key);
    return k;
}

bool mqc_scram_handle_server_first(mqc_scram_t *s, const uint8_t *in, size_t in_len,
                                   const uint8_t **out, size_t *out_len, mqc_error_t *error)
{
    if (s->cache && mqc_scram_cache_is_deferred(s->cache)) {
        fail(s, error, 0, "a deferred cache needs mqc_scram_reply");
        return false;
    }
    if (!check_server_first(s, in, in_len, error) || keys_and_final(s, error) != KEYS_READY) return false;
    *out = s->out;
    *out_len = s->out_len;
    return true;
}

bool mqc_scram_handle_server_final(mqc_scram_t *s, const uint8_t *in, size_t in_len, mqc_error_t *error)
{
    const char *p = (const char *) in, *end = p + in_len, *v;
    size_t vn;
    uint8_t sig[HASH_MAX + 3];
    if (s->state != ST_FINAL_SENT) {
        fail(s, error, 0, "server-final message out of order");
        return false;
    }
    if (server_error(s, in, in_len, error)) return false;
    if (!attr(&p, end, 'v', &v, &vn) || vn > 4 * ((sizeof sig) / 3) || b64_decode(v, vn, sig) != (long) s->hlen) {
        fail(s, error, 0, "malformed server-final message");
        return false;
    }
    if (CRYPTO_memcmp(sig, s->server_signature, s->hlen) != 0) {
        fail(s, error, 0, "the server's signature is wrong (it does not know the password)");
        return false;
    }
    s->state = ST_VERIFIED;
    return true;
}

/* ---- MongoDB commands ------------------------------------------------------------------- */

static void append_start(mqc_scram_t *s, bson_t *cmd)
{
    bson_t opts;
    BSON_APPEND_INT32(cmd, "saslStart", 1);
    BSON_APPEND_UTF8(cmd, "mechanism", mqc_scram_mech_name(s->mech));
    bson_append_binary(cmd, "payload", -1, BSON_SUBTYPE_BINARY, s->out, (uint32_t) s->out_len);
    BSON_APPEND_INT32(cmd, "autoAuthorize", 1);
    BSON_APPEND_DOCUMENT_BEGIN(cmd, "options", &opts);
    BSON_APPEND_BOOL(&opts, "skipEmptyExchange", true);
    bson_append_document_end(cmd, &opts);
}

bool mqc_scram_sasl_start(mqc_scram_t *s, bson_t *cmd, mqc_error_t *error)
{
    const uint8_t *m;
    size_t n;
    if (!mqc_scram_client_first(s, &m, &n, error)) return false;
    bson_init(cmd);
    append_start(s, cmd);
    return true;
}

bool mqc_scram_speculative(mqc_scram_t *s, const char *db, bson_t *doc, mqc_error_t *error)
{
    if (!mqc_scram_sasl_start(s, doc, error)) return false;
    BSON_APPEND_UTF8(doc, "db", db);
    return true;
}

static void make_continue(mqc_scram_t *s, bson_t *next, const uint8_t *payload, size_t n)
{
    bson_init(next);
    BSON_APPEND_INT32(next, "saslContinue", 1);
    if (s->conversation_id_is_32) BSON_APPEND_INT32(next, "conversationId", (int32_t) s->conversation_id);
    else BSON_APPEND_INT64(next, "conversationId", s->conversation_id);
    bson_append_binary(next, "payload", -1, BSON_SUBTYPE_BINARY, payload, (uint32_t) n);
}

static mqc_scram_result_t after_keys(mqc_scram_t *s, keys_t k, bson_t *next)
{
    switch (k) {
    case KEYS_READY: make_continue(s, next, s->out, s->out_len); return MQC_SCRAM_SEND;
    case KEYS_DERIVE: return MQC_SCRAM_DERIVE;
    case KEYS_WAIT: return MQC_SCRAM_WAIT;
    default: return MQC_SCRAM_FAILED;
    }
}

mqc_scram_result_t mqc_scram_resume(mqc_scram_t *s, bson_t *next, mqc_error_t *error)
{
    if (s->state != ST_KEYS) {
        fail(s, error, 0, "no key derivation was awaited");
        return MQC_SCRAM_FAILED;
    }
    return after_keys(s, keys_and_final(s, error), next);
}

mqc_scram_result_t mqc_scram_reply(mqc_scram_t *s, const bson_t *reply, bson_t *next, mqc_error_t *error)
{
    bson_iter_t it;
    const uint8_t *payload = NULL;
    uint32_t plen = 0;
    bool done = false;
    if (s->state == ST_FAILED || s->state == ST_DONE || s->state == ST_INIT || s->state == ST_KEYS) {
        fail(s, error, 0, "unexpected reply (no conversation in progress)");
        return MQC_SCRAM_FAILED;
    }
    if (bson_iter_init_find(&it, reply, "ok") && !bson_iter_as_bool(&it)) {
        mqc_error_t server;
        mqc_error_from_reply(&server, MQC_ERROR_AUTH, reply);
        fail(s, error, server.code, "%s", server.message);
        if (error) snprintf(error->code_name, sizeof error->code_name, "%s", server.code_name);
        return MQC_SCRAM_FAILED;
    }
    if (bson_iter_init_find(&it, reply, "done") && BSON_ITER_HOLDS_BOOL(&it)) done = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, reply, "conversationId") && BSON_ITER_HOLDS_NUMBER(&it)) {
        s->conversation_id = bson_iter_as_int64(&it);
        s->conversation_id_is_32 = BSON_ITER_HOLDS_INT32(&it);
    } else if (!(s->state == ST_VERIFIED && done)) {
        fail(s, error, 0, "the server's reply has no conversationId");
        return MQC_SCRAM_FAILED;
    }
    if (bson_iter_init_find(&it, reply, "payload") && BSON_ITER_HOLDS_BINARY(&it)) {
        bson_subtype_t st;
        bson_iter_binary(&it, &st, &plen, &payload);
    } else if (s->state != ST_VERIFIED) {
        fail(s, error, 0, "the server's reply has no binary payload");
        return MQC_SCRAM_FAILED;
    }

    switch (s->state) {
    case ST_FIRST_SENT:
        if (done) {
            fail(s, error, 0, "the server ended the conversation before the client's proof");
            return MQC_SCRAM_FAILED;
        }
        if (!check_server_first(s, payload, plen, error)) return MQC_SCRAM_FAILED;
        return after_keys(s, keys_and_final(s, error), next);
    case ST_FINAL_SENT:
        if (!mqc_scram_handle_server_final(s, payload, plen, error)) return MQC_SCRAM_FAILED;
        if (done) {
            s->state = ST_DONE;
            return MQC_SCRAM_DONE;
        }
        /* Verified, but the server wants the empty exchange of the longer conversation. */
        make_continue(s, next, (const uint8_t *) "", 0);
        return MQC_SCRAM_SEND;
    case ST_VERIFIED:
        if (!done) {
            fail(s, error, 0, "the server did not end the conversation after the empty exchange");
            return MQC_SCRAM_FAILED;
        }
        s->state = ST_DONE;
        return MQC_SCRAM_DONE;
    default:
        fail(s, error, 0, "unexpected reply");
        return MQC_SCRAM_FAILED;
    }
}
