/* scram_cache: the salted-password cache (mqc_scram_cache_t) and the derivation that fills it
 * (mqc_scram_kdf_t), below lib/scram.c: the conversation uses the cache, the cache knows nothing
 * of conversations. What may run on another thread (mqc_scram_kdf_run, mqc_scram_pbkdf2_keys)
 * sits apart from what belongs to the loop. */
#ifndef MQC_SCRAM_CACHE_H
#define MQC_SCRAM_CACHE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- salted-password cache ------------------------------------------------------------
 * Owned by the client (one per client, used from the loop thread only: not thread-safe).
 * Entries hold the ClientKey and ServerKey of one (mechanism, user, password, salt, iteration
 * count); they are found by a keyed HMAC of those (the key is random per cache, so the cache
 * holds nothing that could be checked against a password guess offline without it), so a pool
 * opening many connections runs PBKDF2 once per credential. */
typedef struct mqc_scram_cache mqc_scram_cache_t;

/* Returns a new empty cache (owned by the caller), or NULL when out of memory. */
mqc_scram_cache_t *mqc_scram_cache_new(void);
/* Wipes every entry and frees the cache. Accepts NULL. */
void mqc_scram_cache_destroy(mqc_scram_cache_t *cache);
/* How many times PBKDF2 ran for conversations using this cache (for tests and stats). */
uint64_t mqc_scram_cache_pbkdf2_runs(const mqc_scram_cache_t *cache);
/* Deferred: a conversation that misses the cache does not run PBKDF2 itself (5-10 ms at the
 * servers' iteration counts: far too long for an event loop); mqc_scram_reply returns
 * MQC_SCRAM_DERIVE, and the caller runs the derivation elsewhere (mqc_scram_kdf_*). The first
 * conversation to miss reserves the entry; others for the same credential get MQC_SCRAM_WAIT
 * until it is stored, so PBKDF2 still runs once per credential. */
void mqc_scram_cache_set_deferred(mqc_scram_cache_t *cache, bool deferred);

/* ---- derivation off the loop (see scram.h: mqc_scram_kdf_take) ------------------------- */
typedef struct mqc_scram_kdf mqc_scram_kdf_t;

/* PBKDF2 and the keys; touches only k, so it runs on any thread. Wipes k's password copy. */
void mqc_scram_kdf_run(mqc_scram_kdf_t *k);
/* Puts the keys in the cache (or, when run failed or never ran, drops the reservation so that
 * the next conversation derives again), then wipes and frees k. Accepts NULL. */
void mqc_scram_kdf_store(mqc_scram_cache_t *cache, mqc_scram_kdf_t *k);
/* Wipes and frees k without storing (the cache is going away). Accepts NULL. */
void mqc_scram_kdf_free(mqc_scram_kdf_t *k);

/* ---- for lib/scram.c ------------------------------------------------------------------ */

#define MQC_SCRAM_HASH_MAX 32  /* SHA-256; SHA-1 is 20 */

typedef enum {
    MQC_SCRAM_CACHE_MISS = 0,
    MQC_SCRAM_CACHE_HIT,       /* the keys were copied out */
    MQC_SCRAM_CACHE_PENDING,   /* reserved: a derivation is running for it */
} mqc_scram_cache_lookup_t;

/* The id of a credential under the cache's random key (HMAC-SHA-256 of every field,
 * length-prefixed). False when HMAC fails. */
bool mqc_scram_cache_id(const mqc_scram_cache_t *c, int mech, const char *user, const char *secret,
                        size_t secret_len, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                        uint8_t id[32]);
mqc_scram_cache_lookup_t mqc_scram_cache_lookup(mqc_scram_cache_t *c, const uint8_t id[32], uint8_t *client_key,
                                                uint8_t *server_key, size_t hlen);
bool mqc_scram_cache_is_deferred(const mqc_scram_cache_t *c);
/* Marks id as being derived (evicting the least recently used entry when full). */
void mqc_scram_cache_reserve(mqc_scram_cache_t *c, const uint8_t id[32]);
/* Stores the keys for id (its reservation, if any, ends) and counts one PBKDF2 run. */
void mqc_scram_cache_put(mqc_scram_cache_t *c, const uint8_t id[32], const uint8_t *client_key,
                         const uint8_t *server_key, size_t hlen);

/* PBKDF2 and then ClientKey and ServerKey (hlen bytes each). Touches only its arguments. */
bool mqc_scram_pbkdf2_keys(const EVP_MD *md, size_t hlen, const char *secret, size_t secret_len,
                           const uint8_t *salt, size_t salt_len, uint32_t iterations, uint8_t *client_key,
                           uint8_t *server_key);
/* A derivation holding copies of its inputs (aborts when out of memory: a reservation must end
 * in mqc_scram_kdf_store). */
mqc_scram_kdf_t *mqc_scram_kdf_new(const EVP_MD *md, size_t hlen, const char *secret, size_t secret_len,
                                   const uint8_t *salt, size_t salt_len, uint32_t iterations, const uint8_t id[32]);

#endif
