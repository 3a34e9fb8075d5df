/* The salted-password cache and the derivation that fills it. See scram_cache.h and scram.h. */
#include "scram_cache.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 8

typedef struct {
    bool used;
    bool pending;              /* reserved: its keys are being derived off the loop */
    uint8_t id[32];            /* HMAC-SHA-256 under the cache's key of the whole credential */
    uint8_t client_key[MQC_SCRAM_HASH_MAX];
    uint8_t server_key[MQC_SCRAM_HASH_MAX];
    uint64_t last_use;
} cache_entry_t;

struct mqc_scram_cache {
    uint8_t key[32];
    cache_entry_t e[CACHE_SLOTS];
    uint64_t tick;
    uint64_t pbkdf2_runs;
    bool deferred;             /* misses derive off the loop (mqc_scram_cache_set_deferred) */
};

/* A derivation of ClientKey and ServerKey, self-contained so that it can run on any thread. */
struct mqc_scram_kdf {
    const EVP_MD *md;
    size_t hlen;
    char *secret;
    size_t secret_len;
    uint8_t salt[256];
    size_t salt_len;
    uint32_t iterations;
    uint8_t id[32];
    uint8_t client_key[MQC_SCRAM_HASH_MAX];
    uint8_t server_key[MQC_SCRAM_HASH_MAX];
    bool ok;
};

static void wipe_free(void *p, size_t n)
{
    if (!p) return;
    OPENSSL_cleanse(p, n);
    free(p);
}

mqc_scram_cache_t *mqc_scram_cache_new(void)
{
    mqc_scram_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (RAND_bytes(c->key, sizeof c->key) != 1) {
        free(c);
        return NULL;
    }
    return c;
}

void mqc_scram_cache_destroy(mqc_scram_cache_t *cache) { wipe_free(cache, sizeof *cache); }

uint64_t mqc_scram_cache_pbkdf2_runs(const mqc_scram_cache_t *cache) { return cache ? cache->pbkdf2_runs : 0; }

void mqc_scram_cache_set_deferred(mqc_scram_cache_t *cache, bool deferred) { cache->deferred = deferred; }

bool mqc_scram_cache_is_deferred(const mqc_scram_cache_t *c) { return c->deferred; }

static void put_len(EVP_MAC_CTX *m, const void *p, size_t n)
{
    uint8_t b[4] = {(uint8_t) (n >> 24), (uint8_t) (n >> 16), (uint8_t) (n >> 8), (uint8_t) n};
    EVP_MAC_update(m, b, 4);
    EVP_MAC_update(m, p, n);
}

/* Every field length-prefixed, so that no two credentials share a string. */
bool mqc_scram_cache_id(const mqc_scram_cache_t *c, int mech, const char *user, const char *secret,
                        size_t secret_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                        uint8_t id[32])
{
    bool ok = false;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t n = 0;
    uint8_t mech8 = (uint8_t) mech;
    if (m && EVP_MAC_init(m, c->key, sizeof c->key, params)) {
        put_len(m, &mech8, 1);
        put_len(m, user, strlen(user));
        put_len(m, secret, secret_len);
        put_len(m, salt, salt_len);
        put_len(m, &iterations, sizeof iterations);
        ok = EVP_MAC_final(m, id, &n, 32) && n == 32;
    }
    EVP_MAC_CTX_free(m);
    EVP_MAC_free(mac);
    return ok;
}

static cache_entry_t *cache_find(mqc_scram_cache_t *c, const uint8_t id[32])
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (c->e[i].used && CRYPTO_memcmp(c->e[i].id, id, 32) == 0) return &c->e[i];
    return NULL;
}

mqc_scram_cache_lookup_t mqc_scram_cache_lookup(mqc_scram_cache_t *c, const uint8_t id[32], uint8_t *client_key,
                                                uint8_t *server_key, size_t hlen)
{
    cache_entry_t *e = cache_find(c, id);
    if (!e) return MQC_SCRAM_CACHE_MISS;
    if (e->pending) return MQC_SCRAM_CACHE_PENDING;
    memcpy(client_key, e->client_key, hlen);
    memcpy(server_key, e->server_key, hlen);
    e->last_use = ++c->tick;
    return MQC_SCRAM_CACHE_HIT;
}

/* A slot for a new entry: a free one, else the least recently used of those not being derived,
 * else the least recently used (its derivation will insert it again when it ends). */
static cache_entry_t *cache_slot(mqc_scram_cache_t *c, const uint8_t id[32])
{
    cache_entry_t *best = NULL;
    for (int pass = 0; pass < 2 && !best; pass++)
        for (int i = 0; i < CACHE_SLOTS; i++) {
            cache_entry_t *e = &c->e[i];
            if (!e->used) {
                best = e;
                break;
            }
            if ((pass == 1 || !e->pending) && (!best || e->last_use < best->last_use)) best = e;
        }
    OPENSSL_cleanse(best, sizeof *best);
    best->used = true;
    memcpy(best->id, id, 32);
    best->last_use = ++c->tick;
    return best;
}

void mqc_scram_cache_reserve(mqc_scram_cache_t *c, const uint8_t id[32]) { cache_slot(c, id)->pending = true; }

void mqc_scram_cache_put(mqc_scram_cache_t *c, const uint8_t id[32], const uint8_t *client_key,
                         const uint8_t *server_key, size_t hlen)
{
    cache_entry_t *e = cache_find(c, id);
    if (!e) e = cache_slot(c, id);
    e->pending = false;
    memcpy(e->client_key, client_key, hlen);
    memcpy(e->server_key, server_key, hlen);
    e->last_use = ++c->tick;
    c->pbkdf2_runs++;
}

/* PBKDF2 is the expensive part: thousands of HMACs. */
bool mqc_scram_pbkdf2_keys(const EVP_MD *md, size_t hlen, const char *secret, size_t secret_len,
                           const uint8_t *salt, size_t salt_len, uint32_t iterations, uint8_t *client_key,
                           uint8_t *server_key)
{
    uint8_t salted[MQC_SCRAM_HASH_MAX];
    unsigned n1 = 0, n2 = 0;
    bool ok = PKCS5_PBKDF2_HMAC(secret, (int) secret_len, salt, (int) salt_len, (int) iterations, md, (int) hlen,
                                salted) == 1 &&
              HMAC(md, salted, (int) hlen, (const uint8_t *) "Client Key", 10, client_key, &n1) &&
              HMAC(md, salted, (int) hlen, (const uint8_t *) "Server Key", 10, server_key, &n2);
    OPENSSL_cleanse(salted, sizeof salted);
    return ok;
}

/* ---- derivation off the loop ------------------------------------------------------------- */

mqc_scram_kdf_t *mqc_scram_kdf_new(const EVP_MD *md, size_t hlen, const char *secret, size_t secret_len,
                                   const uint8_t *salt, size_t salt_len, uint32_t iterations, const uint8_t id[32])
{
    mqc_scram_kdf_t *k = calloc(1, sizeof *k);
    if (!k || !(k->secret = malloc(secret_len + 1)) || salt_len > sizeof k->salt) abort();
    memcpy(k->secret, secret, secret_len);
    k->secret[secret_len] = 0;
    k->secret_len = secret_len;
    k->md = md;
    k->hlen = hlen;
    memcpy(k->salt, salt, salt_len);
    k->salt_len = salt_len;
    k->iterations = iterations;
    memcpy(k->id, id, sizeof k->id);
    return k;
}

void mqc_scram_kdf_run(mqc_scram_kdf_t *k)
{
    k->ok = mqc_scram_pbkdf2_keys(k->md, k->hlen, k->secret, k->secret_len, k->salt, k->salt_len, k->iterations,
                                  k->client_key, k->server_key);
    /* The password has done its work: not kept until the loop gets round to the result. */
    OPENSSL_cleanse(k->secret, k->secret_len);
}

void mqc_scram_kdf_store(mqc_scram_cache_t *cache, mqc_scram_kdf_t *k)
{
    if (!k) return;
    if (k->ok) {
        mqc_scram_cache_put(cache, k->id, k->client_key, k->server_key, k->hlen);
    } else {
        /* Failed: the reservation goes, and the next conversation tries again. */
        cache_entry_t *e = cache_find(cache, k->id);
        if (e && e->pending) OPENSSL_cleanse(e, sizeof *e);
    }
    mqc_scram_kdf_free(k);
}

void mqc_scram_kdf_free(mqc_scram_kdf_t *k)
{
    if (!k) return;
    wipe_free(k->secret, k->secret_len + 1);
    wipe_free(k, sizeof *k);
}
