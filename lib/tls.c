/* TLS client sessions over OpenSSL on a non-blocking socket. See tls.h. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

struct mqc_tls_ctx {
    SSL_CTX *ssl;
    bool verify_chain;
    bool verify_host;
};

struct mqc_tls {
    SSL *ssl;
    bool verify_chain;
    bool handshake_done;
    bool failed;             /* after a fatal error OpenSSL forbids SSL_shutdown */
    char host[256];
};

/* ---- a socket BIO that never raises SIGPIPE ----------------------------------------------
 * OpenSSL's own socket BIO writes with write(2), which kills a process that does not ignore
 * SIGPIPE when the peer has gone. A library must not require that of its host, so the bytes go
 * through send(MSG_NOSIGNAL) here. */

typedef struct {
    int fd;
    bool eof;
} fd_bio_t;

static BIO_METHOD *fd_bio_method;
static pthread_once_t fd_bio_once = PTHREAD_ONCE_INIT;

static int fd_bio_write(BIO *b, const char *data, int len)
{
    fd_bio_t *f = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(f->fd, data, (size_t) len, MSG_NOSIGNAL);
        if (n >= 0) return (int) n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
        return -1;
    }
}

static int fd_bio_read(BIO *b, char *data, int len)
{
    fd_bio_t *f = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = recv(f->fd, data, (size_t) len, 0);
        if (n > 0) return (int) n;
        if (n == 0) {
            f->eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
        return -1;
    }
}

static long fd_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    fd_bio_t *f = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;             /* unbuffered */
    case BIO_CTRL_EOF: return f && f->eof;     /* tells OpenSSL an EOF from an error */
    default: return 0;
    }
}

static int fd_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int fd_bio_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static void fd_bio_init_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mqc socket");
    if (m && BIO_meth_set_write(m, fd_bio_write) && BIO_meth_set_read(m, fd_bio_read) &&
        BIO_meth_set_ctrl(m, fd_bio_ctrl) && BIO_meth_set_create(m, fd_bio_create) &&
        BIO_meth_set_destroy(m, fd_bio_destroy)) {
        fd_bio_method = m;   /* lives as long as the process: shared by every session */
        return;
    }
    BIO_meth_free(m);
}

static BIO *fd_bio_new(int fd)
{
    pthread_once(&fd_bio_once, fd_bio_init_method);
    if (!fd_bio_method) return NULL;
    fd_bio_t *f = calloc(1, sizeof *f);
    BIO *b = f ? BIO_new(fd_bio_method) : NULL;
    if (!b) {
        free(f);
        return NULL;
    }
    f->fd = fd;
    BIO_set_data(b, f);
    return b;
}

/* ---- errors ----------------------------------------------------------------------------- */

/* The root cause in OpenSSL's error queue (its earliest entry), as text; clears the queue. */
static const char *ossl_reason(char *buf, size_t size)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, size, "unknown error");
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r) snprintf(buf, size, "%s", r);
        else ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

/* ---- context ---------------------------------------------------------------------------- */

/* Hands the key password to OpenSSL. Without a password it returns nothing, which matters: the
 * default callback would prompt on the terminal. */
static int password_cb(char *buf, int size, int rwflag, void *ud)
{
    const char *pw = ud;
    if (!pw) return 0;
    size_t n = strlen(pw);
    if (n > (size_t) size) return -1;
    memcpy(buf, pw, n);
    return (int) n;
}

mqc_tls_ctx_t *mqc_tls_ctx_new(const mqc_tls_options_t *opts, mqc_error_t *error)
{
    char why[256];
    mqc_tls_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    c->ssl = SSL_CTX_new(TLS_client_method());
    if (!c->ssl) {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "TLS context: %s", ossl_reason(why, sizeof why));
        free(c);
        return NULL;
    }
    c->verify_chain = !opts->allow_invalid_certs;
    c->verify_host = c->verify_chain && !opts->allow_invalid_hostnames;
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(c->ssl, c->verify_chain ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);

    if (opts->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ssl, opts->ca_file, NULL) != 1) {
            mqc_error_set(error, MQC_ERROR_TLS, 0, "cannot load tlsCAFile \"%s\": %s", opts->ca_file,
                          ossl_reason(why, sizeof why));
            goto fail;
        }
    } else if (c->verify_chain && SSL_CTX_set_default_verify_paths(c->ssl) != 1) {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "cannot load the system CA store: %s",
                      ossl_reason(why, sizeof why));
        goto fail;
    }

    if (opts->cert_key_file) {
        const char *f = opts->cert_key_file;
        SSL_CTX_set_default_passwd_cb(c->ssl, password_cb);
        SSL_CTX_set_default_passwd_cb_userdata(c->ssl, (void *) opts->cert_key_password);
        bool ok = SSL_CTX_use_certificate_chain_file(c->ssl, f) == 1;
        if (!ok) {
            mqc_error_set(error, MQC_ERROR_TLS, 0, "cannot load the certificate from tlsCertificateKeyFile \"%s\": %s",
                          f, ossl_reason(why, sizeof why));
        } else if (SSL_CTX_use_PrivateKey_file(c->ssl, f, SSL_FILETYPE_PEM) != 1) {
            ok = false;
            mqc_error_set(error, MQC_ERROR_TLS, 0, "cannot load the private key from tlsCertificateKeyFile \"%s\"%s: %s",
                          f, opts->cert_key_password ? " (wrong tlsCertificateKeyFilePassword?)" : "",
                          ossl_reason(why, sizeof why));
        } else if (SSL_CTX_check_private_key(c->ssl) != 1) {
            ok = false;
            mqc_error_set(error, MQC_ERROR_TLS, 0, "tlsCertificateKeyFile \"%s\": the key does not match the certificate: %s",
                          f, ossl_reason(why, sizeof why));
        }
        /* The password was needed for the key only: drop OpenSSL's pointer to it. */
        SSL_CTX_set_default_passwd_cb_userdata(c->ssl, NULL);
        if (!ok) goto fail;
    }
    return c;
fail:
    SSL_CTX_free(c->ssl);
    free(c);
    return NULL;
}

void mqc_tls_ctx_destroy(mqc_tls_ctx_t *ctx)
{
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

bool mqc_tls_ctx_client_subject(const mqc_tls_ctx_t *ctx, char *out, size_t out_size)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx->ssl);
    if (!cert || out_size == 0) return false;
    BIO *mem = BIO_new(BIO_s_mem());
    if (!mem) return false;
    bool ok = X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0;
    char *data;
    long n = BIO_get_mem_data(mem, &data);
    ok = ok && n >= 0 && (size_t) n < out_size;
    if (ok) {
        memcpy(out, data, (size_t) n);
        out[n] = 0;
    }
    BIO_free(mem);
    return ok;
}

/* ---- sessions --------------------------------------------------------------------------- */

static bool is_ip_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

mqc_tls_t *mqc_tls_new(mqc_tls_ctx_t *ctx, int fd, const char *host, mqc_error_t *error)
{
    char why[256];
    mqc_tls_t *t = calloc(1, sizeof *t);
    if (!t) {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "out of memory");
        return NULL;
    }
    snprintf(t->host, sizeof t->host, "%s", host);
    t->verify_chain = ctx->verify_chain;
    ERR_clear_error();
    BIO *bio = NULL;
    t->ssl = SSL_new(ctx->ssl);
    if (!t->ssl || !(bio = fd_bio_new(fd))) goto fail;
    SSL_set_bio(t->ssl, bio, bio);
    SSL_set_connect_state(t->ssl);
    bool ip = is_ip_address(host);
    /* SNI carries names only (RFC 6066 forbids literal addresses). */
    if (!ip && SSL_set_tlsext_host_name(t->ssl, host) != 1) goto fail;
    if (ctx->verify_host) {
        if (ip) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1) goto fail;
        } else {
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set1_host(t->ssl, host) != 1) goto fail;
        }
    }
    return t;
fail:
    mqc_error_set(error, MQC_ERROR_TLS, 0, "TLS session for %s: %s", host, ossl_reason(why, sizeof why));
    SSL_free(t->ssl);
    free(t);
    return NULL;
}

void mqc_tls_destroy(mqc_tls_t *t)
{
    if (!t) return;
    if (t->handshake_done && !t->failed) {
        /* One non-blocking attempt at close_notify; the peer's answer is not awaited. */
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    SSL_free(t->ssl);
    free(t);
}

/* Sets *want for a retryable result; else fills error and returns false. */
static bool would_block(mqc_tls_t *t, int rc, int *want)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ: *want = MQC_TLS_WANT_READ; return true;
    case SSL_ERROR_WANT_WRITE: *want = MQC_TLS_WANT_WRITE; return true;
    default: *want = MQC_TLS_WANT_NONE; return false;
    }
}

int mqc_tls_handshake(mqc_tls_t *t, int *want, mqc_error_t *error)
{
    char why[256];
    *want = MQC_TLS_WANT_NONE;
    if (t->handshake_done) return 1;
    if (t->failed) {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "TLS handshake with %s already failed", t->host);
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->handshake_done = true;
        return 1;
    }
    int saved_errno = errno;
    int kind = SSL_get_error(t->ssl, rc);
    if (would_block(t, rc, want)) return 0;
    t->failed = true;
    long v = SSL_get_verify_result(t->ssl);
    if (t->verify_chain && v != X509_V_OK) {
        ERR_clear_error();
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            mqc_error_set(error, MQC_ERROR_TLS, (int32_t) v, "TLS handshake with %s failed: %s", t->host,
                          X509_verify_cert_error_string(v));
        else
            mqc_error_set(error, MQC_ERROR_TLS, (int32_t) v,
                          "TLS handshake with %s failed: certificate verify failed: %s", t->host,
                          X509_verify_cert_error_string(v));
    } else if (kind == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        mqc_error_set(error, MQC_ERROR_TLS, saved_errno, "TLS handshake with %s failed: %s", t->host,
                      saved_errno ? strerror(saved_errno) : "the server closed the connection");
    } else {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "TLS handshake with %s failed: %s", t->host,
                      ossl_reason(why, sizeof why));
    }
    return -1;
}

/* Fills error for a failed read or write. */
static void io_error(mqc_tls_t *t, int rc, int saved_errno, const char *verb, mqc_error_t *error)
{
    char why[256];
    int kind = SSL_get_error(t->ssl, rc);
    unsigned long e = ERR_peek_error();
    t->failed = true;
    if (kind == SSL_ERROR_SYSCALL && e == 0) {
        if (saved_errno)
            mqc_error_set(error, MQC_ERROR_NETWORK, saved_errno, "%s %s failed: %s", verb, t->host,
                          strerror(saved_errno));
        else
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the connection", t->host);
        if (error) error->labels |= MQC_LABEL_NETWORK;
    } else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the connection without TLS close_notify", t->host);
        if (error) error->labels |= MQC_LABEL_NETWORK;
    } else {
        mqc_error_set(error, MQC_ERROR_TLS, 0, "TLS error %s %s: %s", verb, t->host, ossl_reason(why, sizeof why));
        if (error) error->labels |= MQC_LABEL_NETWORK;
    }
}

ssize_t mqc_tls_read(mqc_tls_t *t, void *buf, size_t len, int *want, mqc_error_t *error)
{
    *want = MQC_TLS_WANT_NONE;
    if (len == 0) return 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int) len);
    if (rc > 0) return rc;
    int saved_errno = errno;
    if (SSL_get_error(t->ssl, rc) == SSL_ERROR_ZERO_RETURN) return 0;
    if (would_block(t, rc, want)) return -1;
    io_error(t, rc, saved_errno, "reading from", error);
    return -1;
}

ssize_t mqc_tls_write(mqc_tls_t *t, const void *buf, size_t len, int *want, mqc_error_t *error)
{
    *want = MQC_TLS_WANT_NONE;
    if (len == 0) return 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int) len);
    if (rc > 0) return rc;
    int saved_errno = errno;
    if (would_block(t, rc, want)) return -1;
    io_error(t, rc, saved_errno, "writing to", error);
    return -1;
}

size_t mqc_tls_pending(const mqc_tls_t *t)
{
    int n = SSL_pending(t->ssl);
    return n > 0 ? (size_t) n : 0;
}
