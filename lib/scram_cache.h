/* scram_cache: the entries of the salted-password cache (mqc_scram_cache_t, declared in scram.h)
 * and the derivation that fills them, for lib/scram.c. Split from the conversation so that what
 * may run on another thread (mqc_scram_kdf_run, mqc_scram_pbkdf2_keys) sits apart from what
 * belongs to the loop. */
#ifndef MQC_SCRAM_CACHE_H
#define MQC_SCRAM_CACHE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"

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
