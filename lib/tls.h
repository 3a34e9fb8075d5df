/* tls: non-blocking TLS client sessions on a connected socket, with OpenSSL.
 *
 * One context per client (certificates and settings, built from the URI's tls* options), one
 * session per connection. The socket stays the caller's: it must be non-blocking, the caller
 * polls it for the direction a call asks for (*want) and closes it after mqc_tls_destroy.
 * Verification is on unless the options turn it off; there is no plaintext fallback: a failed
 * handshake is an error, never a reason to talk without TLS.
 *
 *   mqc_tls_ctx_t *ctx = mqc_tls_ctx_new(&opts, &err);          once per client
 *   mqc_tls_t *t = mqc_tls_new(ctx, fd, "db.example.com", &err); after connect()
 *   while ((rc = mqc_tls_handshake(t, &want, &err)) == 0) wait for want on fd;
 *   n = mqc_tls_read(t, buf, len, &want, &err);  ... also drain while mqc_tls_pending(t) > 0
 *
 * Not thread-safe per session; a context may be shared by sessions on one thread. */
#ifndef MQC_TLS_H
#define MQC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mqc.h"

/* The connection-string options, by their spec names. tlsInsecure sets both allow_* flags. */
typedef struct {
    const char *ca_file;             /* tlsCAFile (PEM); NULL: the system's default CA store */
    const char *cert_key_file;       /* tlsCertificateKeyFile: PEM with certificate and key; NULL: none */
    const char *cert_key_password;   /* tlsCertificateKeyFilePassword, for an encrypted key; NULL: none */
    bool allow_invalid_certs;        /* tlsAllowInvalidCertificates: no chain (nor host) verification */
    bool allow_invalid_hostnames;    /* tlsAllowInvalidHostnames: chain verified, host name not */
} mqc_tls_options_t;

typedef struct mqc_tls_ctx mqc_tls_ctx_t;
typedef struct mqc_tls mqc_tls_t;

/* Which readiness a call waits for. */
enum {
    MQC_TLS_WANT_NONE = 0,
    MQC_TLS_WANT_READ = 1,
    MQC_TLS_WANT_WRITE = 2,
};

/* Builds a context: TLS 1.2 or later, peer verification as the options say, the CA file or the
 * system store, the client certificate and key. opts is read during the call only (the key
 * password is used to decrypt the key and not kept). Returns NULL with error set (MQC_ERROR_TLS;
 * the message names the file and OpenSSL's reason, never the password). Owned by the caller. */
mqc_tls_ctx_t *mqc_tls_ctx_new(const mqc_tls_options_t *opts, mqc_error_t *error);
/* Frees the context. Sessions hold their own reference: they may outlive it. Accepts NULL. */
void mqc_tls_ctx_destroy(mqc_tls_ctx_t *ctx);
/* The RFC 2253 subject of the client certificate (the MONGODB-X509 user name) into out, or
 * false when the context has no certificate or out is too small. */
bool mqc_tls_ctx_client_subject(const mqc_tls_ctx_t *ctx, char *out, size_t out_size);

/* A session on the connected non-blocking socket fd, checking the certificate against host (a
 * name: SNI and host name check; an IPv4/IPv6 address without brackets: IP check, no SNI).
 * Returns NULL with error set. Owned by the caller; fd is not taken over. */
mqc_tls_t *mqc_tls_new(mqc_tls_ctx_t *ctx, int fd, const char *host, mqc_error_t *error);
/* Sends close_notify when the session is healthy (best effort, never blocks) and frees it.
 * Accepts NULL. */
void mqc_tls_destroy(mqc_tls_t *t);

/* Steps the handshake: 1 done; 0 call again when the socket is ready for *want; -1 failed with
 * error set (MQC_ERROR_TLS), e.g. "TLS handshake with db:27017 failed: certificate verify failed:
 * unable to get local issuer certificate" or "...: hostname mismatch". */
int mqc_tls_handshake(mqc_tls_t *t, int *want, mqc_error_t *error);

/* Reads up to len decrypted bytes: > 0 bytes read; 0 the peer closed the session cleanly
 * (close_notify); -1 with *want set: would block, call again when ready for *want (a read may
 * need writability during renegotiation or key update); -1 with *want == MQC_TLS_WANT_NONE:
 * failed with error set (MQC_ERROR_NETWORK for the socket or an EOF without close_notify,
 * MQC_ERROR_TLS for the protocol). */
ssize_t mqc_tls_read(mqc_tls_t *t, void *buf, size_t len, int *want, mqc_error_t *error);
/* Writes up to len bytes: > 0 bytes taken (may be fewer than len); -1 with *want: would block,
 * call again with the same bytes (at least the same first byte and length); -1 with *want ==
 * MQC_TLS_WANT_NONE: failed with error set. */
ssize_t mqc_tls_write(mqc_tls_t *t, const void *buf, size_t len, int *want, mqc_error_t *error);
/* Decrypted bytes buffered inside the session, which polling the socket will not announce:
 * read them before waiting. */
size_t mqc_tls_pending(const mqc_tls_t *t);

#endif
