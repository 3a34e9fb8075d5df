/* TLS: a CA, server and client certificates made with OpenSSL at run time, a blocking OpenSSL
 * echo server on 127.0.0.1 in a thread, and the client driven non-blocking with poll(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "tf.h"
#include "tls.h"

#define KEY_PASSWORD "k3y-pa55word"

/* ---- certificates ----------------------------------------------------------------------- */

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ASSERT_NOT_NULL(ext);
    ASSERT(X509_add_ext(cert, ext, -1));
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long serial,
                       const char *san, bool ca, bool client)
{
    X509 *c = X509_new();
    ASSERT(X509_set_version(c, 2));
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *) "mqc tests", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(c, key);
    X509 *iss = issuer ? issuer : c;
    if (ca) {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, iss, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
    }
    if (san) add_ext(c, iss, NID_subject_alt_name, san);
    ASSERT(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return c;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key, const char *password)
{
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    ASSERT(PEM_write_X509(f, cert));
    if (key)
        ASSERT(PEM_write_PrivateKey(f, key, password ? EVP_aes_256_cbc() : NULL, NULL, 0, NULL,
                                    (void *) password));
    fclose(f);
}

static struct {
    bool made;
    const char *dir;       /* tf_tmpdir's string: kept, so it stays reachable until exit */
    char ca[600], server_dns[600], server_ip[600], client[600], other_ca[600];
} certs;

/* Makes the files once per run: ca.pem, server-dns.pem (SAN localhost only), server-ip.pem
 * (SAN 127.0.0.1), client.pem (encrypted key), other-ca.pem (a CA that signed nothing). */
static void make_certs(void)
{
    if (certs.made) return;
    certs.dir = tf_tmpdir();
    snprintf(certs.ca, sizeof certs.ca, "%s/ca.pem", certs.dir);
    snprintf(certs.server_dns, sizeof certs.server_dns, "%s/server-dns.pem", certs.dir);
    snprintf(certs.server_ip, sizeof certs.server_ip, "%s/server-ip.pem", certs.dir);
    snprintf(certs.client, sizeof certs.client, "%s/client.pem", certs.dir);
    snprintf(certs.other_ca, sizeof certs.other_ca, "%s/other-ca.pem", certs.dir);
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
    EVP_PKEY *srv_key = EVP_EC_gen("P-256"), *cli_key = EVP_EC_gen("P-256");
    ASSERT(ca_key && other_key && srv_key && cli_key);
    X509 *ca = make_cert(ca_key, "mqc test CA", NULL, NULL, 1, NULL, true, false);
    X509 *other = make_cert(other_key, "mqc other CA", NULL, NULL, 2, NULL, true, false);
    X509 *dns = make_cert(srv_key, "localhost", ca, ca_key, 3, "DNS:localhost", false, false);
    X509 *ip = make_cert(srv_key, "127.0.0.1", ca, ca_key, 4, "IP:127.0.0.1", false, false);
    X509 *cli = make_cert(cli_key, "client", ca, ca_key, 5, NULL, false, true);
    write_pem(certs.ca, ca, NULL, NULL);
    write_pem(certs.other_ca, other, NULL, NULL);
    write_pem(certs.server_dns, dns, srv_key, NULL);
    write_pem(certs.server_ip, ip, srv_key, NULL);
    write_pem(certs.client, cli, cli_key, KEY_PASSWORD);
    X509 *all[] = {ca, other, dns, ip, cli};
    for (size_t i = 0; i < 5; i++) X509_free(all[i]);
    EVP_PKEY *keys[] = {ca_key, other_key, srv_key, cli_key};
    for (size_t i = 0; i < 4; i++) EVP_PKEY_free(keys[i]);
    certs.made = true;
}

/* ---- the echo server -------------------------------------------------------------------- */

typedef struct {
    int lfd;
    int port;
    SSL_CTX *ctx;          /* NULL: a plain TCP server that answers garbage */
    pthread_t thread;
    bool handshake_ok;
    char client_subject[256];
} server_t;

static void *server_main(void *arg)
{
    server_t *s = arg;
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) return NULL;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (!s->ctx) {
        static const char junk[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
        if (send(fd, junk, sizeof junk - 1, MSG_NOSIGNAL) < 0) { /* the client may be gone */ }
        close(fd);
        return NULL;
    }
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        s->handshake_ok = true;
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (peer) {
            X509_NAME_oneline(X509_get_subject_name(peer), s->client_subject, sizeof s->client_subject);
            X509_free(peer);
        }
        char buf[16384];
        int n;
        while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) {
            if (n == 3 && memcmp(buf, "bye", 3) == 0) break;   /* end the session cleanly */
            if (SSL_write(ssl, buf, n) != n) break;
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    return NULL;
}

/* Starts a server with cert_file (NULL: plain junk server); client_ca: require a client
 * certificate signed by it. */
static void server_start(server_t *s, const char *cert_file, const char *client_ca)
{
    memset(s, 0, sizeof *s);
    if (cert_file) {
        s->ctx = SSL_CTX_new(TLS_server_method());
        ASSERT(SSL_CTX_use_certificate_chain_file(s->ctx, cert_file) == 1);
        ASSERT(SSL_CTX_use_PrivateKey_file(s->ctx, cert_file, SSL_FILETYPE_PEM) == 1);
        if (client_ca) {
            ASSERT(SSL_CTX_load_verify_locations(s->ctx, client_ca, NULL) == 1);
            SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    }
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    ASSERT_EQ(bind(s->lfd, (struct sockaddr *) &a, sizeof a), 0);
    ASSERT_EQ(listen(s->lfd, 4), 0);
    ASSERT_EQ(getsockname(s->lfd, (struct sockaddr *) &a, &alen), 0);
    s->port = ntohs(a.sin_port);
    ASSERT_EQ(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
}

/* ---- the client, non-blocking ----------------------------------------------------------- */

static int connect_nb(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    ASSERT_EQ(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    return fd;
}

static void wait_for(int fd, int want)
{
    struct pollfd p = {.fd = fd, .events = want == MQC_TLS_WANT_WRITE ? POLLOUT : POLLIN};
    ASSERT_EQ(poll(&p, 1, 10000), 1);
}

/* Connects and runs the handshake; returns its result with *t (to destroy) and *fd (to close). */
static int client_handshake(const mqc_tls_options_t *o, int port, const char *host, mqc_tls_ctx_t **ctx,
                            mqc_tls_t **t, int *fd, mqc_error_t *e)
{
    int want, rc;
    mqc_error_clear(e);
    *ctx = mqc_tls_ctx_new(o, e);
    ASSERT_MSG(*ctx != NULL, "ctx: %s", e->message);
    *fd = connect_nb(port);
    *t = mqc_tls_new(*ctx, *fd, host, e);
    ASSERT_MSG(*t != NULL, "session: %s", e->message);
    int rounds = 0;
    while ((rc = mqc_tls_handshake(*t, &want, e)) == 0) {
        ASSERT(want == MQC_TLS_WANT_READ || want == MQC_TLS_WANT_WRITE);
        wait_for(*fd, want);
        rounds++;
    }
    tf_note("handshake: rc %d after %d waits", rc, rounds);
    return rc;
}

static void client_done(mqc_tls_ctx_t *ctx, mqc_tls_t *t, int fd)
{
    mqc_tls_destroy(t);
    mqc_tls_ctx_destroy(ctx);
    close(fd);
}

/* Sends len bytes and reads them back, interleaving both directions as a loop would. */
static void echo(mqc_tls_t *t, int fd, size_t len)
{
    uint8_t *out = malloc(len), *in = malloc(len);
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t) (i * 7 + 3);
    size_t sent = 0, got = 0;
    int wwant = 0, rwant = 0, partial = 0;
    mqc_error_t e;
    while (got < len) {
        if (sent < len) {
            ssize_t n = mqc_tls_write(t, out + sent, len - sent, &wwant, &e);
            ASSERT_MSG(n > 0 || wwant != MQC_TLS_WANT_NONE, "write: %s", e.message);
            if (n > 0) {
                if ((size_t) n < len - sent) partial++;
                sent += (size_t) n;
            }
        }
        ssize_t n = mqc_tls_read(t, in + got, len - got, &rwant, &e);
        ASSERT_MSG(n != 0, "peer closed early");
        ASSERT_MSG(n > 0 || rwant != MQC_TLS_WANT_NONE, "read: %s", e.message);
        if (n > 0) {
            got += (size_t) n;
            while (mqc_tls_pending(t) > 0 && got < len) {
                n = mqc_tls_read(t, in + got, len - got, &rwant, &e);
                ASSERT_GT(n, 0);
                got += (size_t) n;
            }
            continue;
        }
        struct pollfd p = {.fd = fd, .events = 0};
        p.events |= rwant == MQC_TLS_WANT_WRITE ? POLLOUT : POLLIN;
        if (sent < len && wwant == MQC_TLS_WANT_WRITE) p.events |= POLLOUT;
        ASSERT_EQ(poll(&p, 1, 10000), 1);
    }
    bool same = memcmp(in, out, len) == 0;
    free(in);
    free(out);
    tf_note("echoed %zu bytes, %d partial writes", len, partial);
    ASSERT(same);
}

TEST("/tls/verify/with_ca", tls_verify_with_ca)
{
    make_certs();
    server_t s;
    server_start(&s, certs.server_dns, NULL);
    mqc_tls_options_t o = {.ca_file = certs.ca};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
    ASSERT_MSG(rc == 1, "handshake: %s", e.message);
    echo(t, fd, 5);
    echo(t, fd, 1 << 20);   /* more than socket buffers hold: partial writes and WANT_WRITE */
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT(s.handshake_ok);
}

TEST("/tls/verify/without_ca_fails", tls_verify_without_ca)
{
    make_certs();
    /* the system store does not know the test CA; nor does an unrelated CA file */
    const char *cas[2] = {NULL, certs.other_ca};
    for (int i = 0; i < 2; i++) {
        server_t s;
        server_start(&s, certs.server_dns, NULL);
        mqc_tls_options_t o = {.ca_file = cas[i]};
        mqc_tls_ctx_t *ctx;
        mqc_tls_t *t;
        int fd;
        mqc_error_t e;
        int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
        client_done(ctx, t, fd);
        server_stop(&s);
        ASSERT_EQ(rc, -1);
        ASSERT_EQ(e.domain, MQC_ERROR_TLS);
        ASSERT_STR_EQ(e.message, "TLS handshake with localhost failed: certificate verify failed: "
                                 "unable to get local issuer certificate");
        ASSERT(!s.handshake_ok);
    }
}

TEST("/tls/verify/allow_invalid_certificates", tls_verify_allow_invalid)
{
    make_certs();
    server_t s;
    server_start(&s, certs.server_dns, NULL);
    /* no CA and a name the certificate does not carry: both unchecked */
    mqc_tls_options_t o = {.allow_invalid_certs = true};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "wrong.example", &ctx, &t, &fd, &e);
    ASSERT_MSG(rc == 1, "handshake: %s", e.message);
    echo(t, fd, 100);
    client_done(ctx, t, fd);
    server_stop(&s);
}

static void hostname_case(const char *cert, const char *host, bool allow_invalid_hostnames, const char *want_error)
{
    server_t s;
    server_start(&s, cert, NULL);
    mqc_tls_options_t o = {.ca_file = certs.ca, .allow_invalid_hostnames = allow_invalid_hostnames};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, host, &ctx, &t, &fd, &e);
    if (rc == 1) echo(t, fd, 10);
    client_done(ctx, t, fd);
    server_stop(&s);
    if (want_error) {
        ASSERT_EQ(rc, -1);
        ASSERT_EQ(e.domain, MQC_ERROR_TLS);
        ASSERT_STR_CONTAINS(e.message, want_error);
    } else {
        ASSERT_MSG(rc == 1, "handshake with %s: %s", host, e.message);
    }
}

TEST("/tls/hostname/mismatch", tls_hostname_mismatch)
{
    make_certs();
    /* the certificate names only "localhost": an address or another name must not pass */
    hostname_case(certs.server_dns, "127.0.0.1", false, "TLS handshake with 127.0.0.1 failed: IP address mismatch");
    hostname_case(certs.server_dns, "wrong.example", false, "TLS handshake with wrong.example failed: hostname mismatch");
    hostname_case(certs.server_dns, "LOCALHOST", false, NULL);   /* names compare without case */
    hostname_case(certs.server_ip, "127.0.0.1", false, NULL);    /* an IP SAN matches the address */
    hostname_case(certs.server_ip, "localhost", false, "hostname mismatch");
}

TEST("/tls/hostname/allow_invalid_hostnames", tls_hostname_allow_invalid)
{
    make_certs();
    hostname_case(certs.server_dns, "127.0.0.1", true, NULL);
    hostname_case(certs.server_dns, "wrong.example", true, NULL);
    /* the chain is still verified */
    server_t s;
    server_start(&s, certs.server_dns, NULL);
    mqc_tls_options_t o = {.ca_file = certs.other_ca, .allow_invalid_hostnames = true};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT_EQ(rc, -1);
    ASSERT_STR_CONTAINS(e.message, "certificate verify failed");
}

TEST("/tls/client_certificate", tls_client_certificate)
{
    make_certs();
    server_t s;
    server_start(&s, certs.server_dns, certs.ca);
    mqc_tls_options_t o = {.ca_file = certs.ca, .cert_key_file = certs.client, .cert_key_password = KEY_PASSWORD};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
    ASSERT_MSG(rc == 1, "handshake: %s", e.message);
    echo(t, fd, 10);
    char subject[256];
    ASSERT(mqc_tls_ctx_client_subject(ctx, subject, sizeof subject));
    ASSERT_STR_EQ(subject, "CN=client,O=mqc tests");
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT(s.handshake_ok);
    ASSERT_STR_CONTAINS(s.client_subject, "CN=client");
}

TEST("/tls/client_certificate_missing", tls_client_certificate_missing)
{
    /* With TLS 1.3 the client may finish its handshake before the server rejects it: the
     * failure then comes with the first read. Either way no data flows. */
    make_certs();
    server_t s;
    server_start(&s, certs.server_dns, certs.ca);
    mqc_tls_options_t o = {.ca_file = certs.ca};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
    if (rc == 1) {
        int want;
        ssize_t n = mqc_tls_write(t, "ping", 4, &want, &e);
        ASSERT(n == 4 || (n == -1 && want == MQC_TLS_WANT_NONE));
        if (n == 4) {
            char buf[8];
            while ((n = mqc_tls_read(t, buf, sizeof buf, &want, &e)) < 0 && want != MQC_TLS_WANT_NONE)
                wait_for(fd, want);
            ASSERT_LE(n, 0);
        }
        if (n < 0) tf_note("failed: %s", e.message);
    } else {
        tf_note("handshake failed: %s", e.message);
    }
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT(!s.handshake_ok);
}

TEST("/tls/ctx/bad_files", tls_ctx_bad_files)
{
    make_certs();
    mqc_error_t e;
    mqc_tls_options_t o = {.ca_file = certs.ca, .cert_key_file = certs.client, .cert_key_password = "wrong-pw"};
    ASSERT_NULL(mqc_tls_ctx_new(&o, &e));
    ASSERT_EQ(e.domain, MQC_ERROR_TLS);
    ASSERT_STR_CONTAINS(e.message, "private key");
    ASSERT_STR_CONTAINS(e.message, certs.client);
    ASSERT(strstr(e.message, "wrong-pw") == NULL);
    tf_note("%s", e.message);
    /* an encrypted key without a password fails (and never prompts on the terminal) */
    o.cert_key_password = NULL;
    ASSERT_NULL(mqc_tls_ctx_new(&o, &e));
    ASSERT_STR_CONTAINS(e.message, "private key");
    o.cert_key_file = NULL;
    o.ca_file = "/nonexistent/ca.pem";
    ASSERT_NULL(mqc_tls_ctx_new(&o, &e));
    ASSERT_STR_CONTAINS(e.message, "cannot load tlsCAFile \"/nonexistent/ca.pem\"");
    tf_note("%s", e.message);
    /* the certificate file without its key */
    o.ca_file = certs.ca;
    o.cert_key_file = certs.ca;
    ASSERT_NULL(mqc_tls_ctx_new(&o, &e));
    ASSERT_STR_CONTAINS(e.message, "private key");
}

TEST("/tls/not_a_tls_server", tls_not_a_tls_server)
{
    /* A server that answers plaintext: the handshake fails; nothing falls back to plaintext. */
    make_certs();
    server_t s;
    server_start(&s, NULL, NULL);
    mqc_tls_options_t o = {.ca_file = certs.ca};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd;
    mqc_error_t e;
    int rc = client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e);
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT_EQ(rc, -1);
    ASSERT_EQ(e.domain, MQC_ERROR_TLS);
    ASSERT_STR_CONTAINS(e.message, "TLS handshake with localhost failed");
    tf_note("%s", e.message);
}

TEST("/tls/peer_closes", tls_peer_closes)
{
    /* The server ends the session cleanly after the echo: the client reads 0. */
    make_certs();
    server_t s;
    server_start(&s, certs.server_dns, NULL);
    mqc_tls_options_t o = {.ca_file = certs.ca};
    mqc_tls_ctx_t *ctx;
    mqc_tls_t *t;
    int fd, want;
    mqc_error_t e;
    ASSERT_EQ(client_handshake(&o, s.port, "localhost", &ctx, &t, &fd, &e), 1);
    echo(t, fd, 3);
    ssize_t n = mqc_tls_write(t, "bye", 3, &want, &e);   /* the server sends close_notify, closes */
    ASSERT_EQ(n, 3);
    char buf[8];
    while ((n = mqc_tls_read(t, buf, sizeof buf, &want, &e)) < 0 && want != MQC_TLS_WANT_NONE) wait_for(fd, want);
    client_done(ctx, t, fd);
    server_stop(&s);
    ASSERT_MSG(n == 0, "read %zd: %s", n, e.message);
}
