/* Transport and the TLS/AUTH steps of a connection. */
#include "conn_secure.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

ssize_t mqc_conn_io_read(mqc_conn_t *c, uint8_t *buf, size_t len, mqc_error_t *error)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n > 0) return n;
        if (n == 0) {
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the connection",
                          c->server->host.host_and_port);
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "reading from %s failed: %s",
                      c->server->host.host_and_port, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

ssize_t mqc_conn_io_write(mqc_conn_t *c, const uint8_t *buf, size_t len, mqc_error_t *error)
{
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n == 0 ? 0 : n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "writing to %s failed: %s",
                      c->server->host.host_and_port, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

bool mqc_conn_io_has_buffered(const mqc_conn_t *c) { (void) c; return false; }
bool mqc_conn_io_wants_write(const mqc_conn_t *c) { (void) c; return false; }

void mqc_conn_tls_start(mqc_conn_t *c)
{
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_TLS, MQC_CLIENT_UNSUPPORTED, "TLS is not available in this build");
    mqc_conn_fail_now(c, &err);
}

void mqc_conn_tls_step(mqc_conn_t *c) { (void) c; }

bool mqc_conn_auth_needed(const mqc_conn_t *c) { return c->client->uri.username != NULL; }
void mqc_conn_auth_add_to_hello(mqc_conn_t *c, bson_t *hello) { (void) c; (void) hello; }

void mqc_conn_auth_start(mqc_conn_t *c, const bson_t *hello_reply)
{
    (void) hello_reply;
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_AUTH, MQC_CLIENT_UNSUPPORTED, "authentication is not available in this build");
    mqc_conn_fail_now(c, &err);
}

void mqc_conn_auth_reply(mqc_conn_t *c, const bson_t *reply) { (void) c; (void) reply; }
void mqc_conn_secure_free(mqc_conn_t *c) { (void) c; }
