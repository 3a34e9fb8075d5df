/* stream: see stream.h. */
#include "stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void mqc_stream_init(mqc_stream_t *s, const char *peer)
{
    s->fd = -1;
    s->tls = NULL;
    s->read_wants_write = false;
    s->peer = peer;
}

void mqc_stream_close(mqc_stream_t *s)
{
    if (s->tls) {
        mqc_tls_destroy(s->tls);
        s->tls = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->read_wants_write = false;
}

/* Requests go out at once (no Nagle delay behind a reply we wait for); keepalive lets a peer
 * that vanished without a word (a host powered off, a dropped NAT entry) show up as an error
 * on an idle connection instead of never. */
static void set_options(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

int mqc_stream_connect(mqc_stream_t *s, struct addrinfo **ai)
{
    int last_errno = 0;
    for (; *ai; *ai = (*ai)->ai_next) {
        int fd = socket((*ai)->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        set_options(fd);
        if (connect(fd, (*ai)->ai_addr, (*ai)->ai_addrlen) == 0 || errno == EINPROGRESS) {
            s->fd = fd;
            return 0;
        }
        last_errno = errno;
        close(fd);
    }
    return last_errno ? last_errno : errno;
}

int mqc_stream_connect_unix(mqc_stream_t *s, const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun.sun_path) return ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    if (connect(fd, (struct sockaddr *) &sun, sizeof sun) == 0 || errno == EINPROGRESS) {
        s->fd = fd;
        return 0;
    }
    int e = errno;
    close(fd);
    return e;
}

bool mqc_stream_connect_done(const mqc_stream_t *s)
{
    /* At hundreds in flight an iteration lasts as long as the replies it serves, and with
     * maxConnecting opening two at a time that wait was half of the pool's ramp-up. */
    struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
    return s->fd >= 0 && poll(&pfd, 1, 0) == 1;
}

int mqc_stream_connected(mqc_stream_t *s)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr != 0) mqc_stream_close(s);
    return soerr;
}

bool mqc_stream_tls_start(mqc_stream_t *s, mqc_tls_ctx_t *ctx, const char *host, mqc_error_t *error)
{
    s->tls = mqc_tls_new(ctx, s->fd, host, error);
    return s->tls != NULL;
}

int mqc_stream_tls_step(mqc_stream_t *s, int *want, mqc_error_t *error)
{
    return mqc_tls_handshake(s->tls, want, error);
}

ssize_t mqc_stream_read(mqc_stream_t *s, uint8_t *buf, size_t len, mqc_error_t *error)
{
    if (s->tls) {
        int want = 0;
        ssize_t n = mqc_tls_read(s->tls, buf, len, &want, error);
        s->read_wants_write = false;
        if (n > 0) return n;
        if (n == 0) {
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the TLS session", s->peer);
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        if (want == MQC_TLS_WANT_NONE) {
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        s->read_wants_write = want == MQC_TLS_WANT_WRITE;
        return 0;
    }
    for (;;) {
        ssize_t n = recv(s->fd, buf, len, 0);
        if (n > 0) return n;
        if (n == 0) {
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the connection", s->peer);
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "reading from %s failed: %s", s->peer, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

ssize_t mqc_stream_write(mqc_stream_t *s, const uint8_t *buf, size_t len, mqc_error_t *error)
{
    if (s->tls) {
        int want = 0;
        ssize_t n = mqc_tls_write(s->tls, buf, len, &want, error);
        if (n > 0) return n;
        if (want == MQC_TLS_WANT_NONE) {
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        return 0;
    }
    for (;;) {
        ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "writing to %s failed: %s", s->peer, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

bool mqc_stream_has_buffered(const mqc_stream_t *s) { return s->tls && mqc_tls_pending(s->tls) > 0; }
