/* scram: the client side of a SCRAM-SHA-1 / SCRAM-SHA-256 conversation (RFC 5802, RFC 7677) as
 * MongoDB's auth specification profiles it, and the saslStart / saslContinue commands that carry
 * it. No I/O: the connection (lib/conn_secure.c) sends the commands this builds and feeds the
 * replies back.
 *
 *   mqc_scram_t *s = mqc_scram_new(MQC_SCRAM_SHA_256, user, password, cache, &err);
 *   mqc_scram_sasl_start(s, &cmd, &err);            send cmd to the auth source database
 *   loop: rc = mqc_scram_reply(s, &reply, &next, &err);
 *         MQC_SCRAM_SEND: send next (a saslContinue) and feed its reply;
 *         MQC_SCRAM_DONE: authenticated;  MQC_SCRAM_FAILED: err is set (MQC_ERROR_AUTH).
 *   mqc_scram_destroy(s);
 *
 * With speculative authentication the first command goes inside the hello instead
 * (mqc_scram_speculative) and the hello reply's "speculativeAuthenticate" document is fed to
 * mqc_scram_reply like a saslStart reply.
 *
 * Secrets: the password is prepared (SASLprep, or MongoDB's MD5 digest for SCRAM-SHA-1) in
 * mqc_scram_new, kept only until the server's salt arrives, and wiped then. Derived keys are
 * wiped on destroy. Errors name the mechanism and the user, never the password. */
#ifndef MQC_SCRAM_H
#define MQC_SCRAM_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"
#include "scram_cache.h"

typedef enum {
    MQC_SCRAM_SHA_1 = 1,
    MQC_SCRAM_SHA_256,
} mqc_scram_mech_t;

/* The auth spec's minimum iteration count (both mechanisms): lower counts are refused. */
#define MQC_SCRAM_MIN_ITERATIONS 4096

/* "SCRAM-SHA-1" / "SCRAM-SHA-256". Static storage. */
const char *mqc_scram_mech_name(mqc_scram_mech_t mech);
/* Parses a mechanism name (case-sensitive, as the server spells it). */
bool mqc_scram_mech_from_name(const char *name, mqc_scram_mech_t *out);
/* The mechanism to use when the URI names none, from a hello reply: SCRAM-SHA-256 when its
 * saslSupportedMechs lists it, else SCRAM-SHA-1 (the auth spec's "Default Authentication
 * Methods"; other names in the list are ignored, never an error). */
mqc_scram_mech_t mqc_scram_mech_negotiate(const bson_t *hello_reply);
/* Appends saslSupportedMechs: "<db>.<user>" to a hello command being built. */
void mqc_scram_append_sasl_supported_mechs(bson_t *hello, const char *db, const char *user);

/* ---- one conversation ----------------------------------------------------------------- */

typedef struct mqc_scram mqc_scram_t;

typedef enum {
    MQC_SCRAM_FAILED = -1,   /* error set (MQC_ERROR_AUTH); the conversation is over */
    MQC_SCRAM_SEND = 0,      /* send the command written to *next, feed its reply */
    MQC_SCRAM_DONE = 1,      /* authenticated: the server proved it knows the password */
    MQC_SCRAM_DERIVE = 2,    /* deferred cache, miss: derive the keys (mqc_scram_kdf_take), then resume */
    MQC_SCRAM_WAIT = 3,      /* deferred cache: another conversation derives these keys; resume
                              * after it has stored them (or failed) */
} mqc_scram_result_t;

/* Starts a conversation for user/password (NUL-terminated UTF-8; both copied or digested, the
 * caller keeps them). cache may be NULL (no caching) and, when given, must outlive the
 * conversation. Returns NULL with error set (MQC_ERROR_AUTH) for an empty user name or a
 * password SASLprep rejects (SCRAM-SHA-256). Owned by the caller: mqc_scram_destroy. */
mqc_scram_t *mqc_scram_new(mqc_scram_mech_t mech, const char *user, const char *password,
                           mqc_scram_cache_t *cache, mqc_error_t *error);
/* Wipes the keys and frees. Accepts NULL. */
void mqc_scram_destroy(mqc_scram_t *s);
mqc_scram_mech_t mqc_scram_get_mech(const mqc_scram_t *s);

/* For tests: use nonce (printable ASCII without ',') instead of 24 random bytes in base64.
 * Must be called before the client-first message is made. Returns false for a bad nonce. */
bool mqc_scram_set_client_nonce(mqc_scram_t *s, const char *nonce, mqc_error_t *error);

/* The raw SCRAM messages (RFC 5802 section 7). Each returned pointer is owned by s and valid
 * until the next call on s. */

/* Makes the client-first message ("n,,n=<user>,r=<nonce>"), restarting the conversation. */
bool mqc_scram_client_first(mqc_scram_t *s, const uint8_t **out, size_t *out_len, mqc_error_t *error);
/* Checks the server-first message (nonce extends ours, salt, iteration count >= 4096, no
 * mandatory extension, or "e=" error) and makes the client-final message with the proof. */
bool mqc_scram_handle_server_first(mqc_scram_t *s, const uint8_t *in, size_t in_len,
                                   const uint8_t **out, size_t *out_len, mqc_error_t *error);
/* Checks the server-final message: "v=" must carry the expected server signature (compared in
 * constant time); "e=" is the server's error. */
bool mqc_scram_handle_server_final(mqc_scram_t *s, const uint8_t *in, size_t in_len, mqc_error_t *error);

/* ---- MongoDB commands ----------------------------------------------------------------- */

/* Initialises *cmd (the caller destroys it) with {saslStart: 1, mechanism, payload: <binary
 * client-first>, autoAuthorize: 1, options: {skipEmptyExchange: true}}, restarting the
 * conversation with a fresh nonce. Send it to the auth source database. */
bool mqc_scram_sasl_start(mqc_scram_t *s, bson_t *cmd, mqc_error_t *error);
/* Initialises *doc (the caller destroys it) with the hello's speculativeAuthenticate value:
 * the saslStart command above plus db: <auth source>. Restarts the conversation. */
bool mqc_scram_speculative(mqc_scram_t *s, const char *db, bson_t *doc, mqc_error_t *error);
/* Feeds a reply: to saslStart, to saslContinue, or the hello reply's speculativeAuthenticate
 * document (which has no "ok"). ok: 0 fails with the server's code and message. When the result
 * is MQC_SCRAM_SEND, *next has been initialised (the caller destroys it) with {saslContinue: 1,
 * conversationId, payload}. After the server's signature checks out the result is DONE when the
 * server said done: true, else SEND with an empty payload (servers without skipEmptyExchange,
 * and FerretDB, want that extra round trip), whose reply must then say done: true. */
mqc_scram_result_t mqc_scram_reply(mqc_scram_t *s, const bson_t *reply, bson_t *next, mqc_error_t *error);

/* After MQC_SCRAM_DERIVE or MQC_SCRAM_WAIT, once the derivation has been stored: continues
 * with the keys from the cache (SEND, *next initialised as by mqc_scram_reply), or WAIT again,
 * or DERIVE (the derivation failed or its entry was evicted: this conversation derives). */
mqc_scram_result_t mqc_scram_resume(mqc_scram_t *s, bson_t *next, mqc_error_t *error);

/* ---- derivation off the loop ------------------------------------------------------------
 * After MQC_SCRAM_DERIVE:  k = mqc_scram_kdf_take(s);  mqc_scram_kdf_run(k) on any thread;
 * then, on the loop thread, mqc_scram_kdf_store(cache, k) and mqc_scram_resume on every
 * conversation that got DERIVE or WAIT. The derivation is independent of s (s may be
 * destroyed meanwhile). */
/* A derivation of s's keys: copies the prepared password, the salt and the iteration count.
 * Owned by the caller (mqc_scram_kdf_store or mqc_scram_kdf_free). NULL when s has not just
 * returned MQC_SCRAM_DERIVE (aborts when out of memory: the cache's reservation must end in a
 * store). */
mqc_scram_kdf_t *mqc_scram_kdf_take(mqc_scram_t *s);

#endif
