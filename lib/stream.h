/* stream: one non-blocking byte stream to a server, plain or TLS: connecting with fallback over
 * a list of addresses (or a Unix socket path), the socket options every connection of mqc
 * gets, the TLS handshake, and reads and writes. It knows nothing of messages or commands;
 * the caller owns the event watchers and waits for the direction a call asks for. Used by the
 * pool's connections (lib/conn.c) and the server monitor (lib/heartbeat.c). */
#ifndef MQC_STREAM_H
#define MQC_STREAM_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "tls.h"

typedef struct mqc_stream {
    int fd;                      /* -1: none */
    bool read_wants_write;       /* a TLS read needs the socket writable (key update) */
    mqc_tls_t *tls;              /* after mqc_stream_tls_start */
    const char *peer;            /* "host:port" for error messages; not owned */
} mqc_stream_t;

void mqc_stream_init(mqc_stream_t *s, const char *peer);
/* Closes the socket (and the TLS session over it). The stream can connect again. */
void mqc_stream_close(mqc_stream_t *s);

/* Starts a non-blocking connect to *ai, else to the addresses after it; *ai is left at the one
 * connecting. 0: in progress (or done): wait for writability, then mqc_stream_connected. Else
 * no address could even start: the errno of the last attempt. */
int mqc_stream_connect(mqc_stream_t *s, struct addrinfo **ai);
/* The same for a Unix socket path; ENAMETOOLONG when the path does not fit. */
int mqc_stream_connect_unix(mqc_stream_t *s, const char *path);
/* Whether a connect just started is already done (poll, no wait): loopback and Unix sockets
 * connect at once, and the caller goes on now instead of an event-loop iteration later. */
bool mqc_stream_connect_done(const mqc_stream_t *s);
/* The socket became writable: 0 connected; else the socket's error, and the stream is closed
 * (the caller may go on with the next address). */
int mqc_stream_connected(mqc_stream_t *s);

/* TLS over the connected socket: start, then step on readiness (1 done, 0 wait for *want,
 * -1 failed with error set). Never a fallback to plaintext. */
bool mqc_stream_tls_start(mqc_stream_t *s, mqc_tls_ctx_t *ctx, const char *host, mqc_error_t *error);
int mqc_stream_tls_step(mqc_stream_t *s, int *want, mqc_error_t *error);

/* > 0 bytes moved; 0 would block (after a read, read_wants_write says whether writability is
 * what it waits for); -1 closed or failed, error set with the NETWORK label. */
ssize_t mqc_stream_read(mqc_stream_t *s, uint8_t *buf, size_t len, mqc_error_t *error);
ssize_t mqc_stream_write(mqc_stream_t *s, const uint8_t *buf, size_t len, mqc_error_t *error);
/* TLS may hold decrypted bytes that poll will not announce. */
bool mqc_stream_has_buffered(const mqc_stream_t *s);

#endif
