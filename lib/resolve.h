/* resolve: host names resolved off the loop thread. One worker thread per resolver runs
 * getaddrinfo; results come back to the loop through an ev_async. Numeric addresses never reach
 * the thread (see mqc_resolve_numeric). */
#ifndef MQC_RESOLVE_H
#define MQC_RESOLVE_H

#include <ev.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mqc_resolver mqc_resolver_t;

/* Called on the loop thread. res (owned by the callee: freeaddrinfo) is NULL on failure, with
 * gai_code the getaddrinfo error. */
typedef void (*mqc_resolve_cb)(void *ctx, struct addrinfo *res, int gai_code);

mqc_resolver_t *mqc_resolver_new(struct ev_loop *loop);
/* Joins the worker; pending requests are dropped without callbacks (the caller is going away). */
void mqc_resolver_destroy(mqc_resolver_t *r);
/* Queues a lookup of host:port (TCP). The callback follows from the loop. Returns false on OOM. */
bool mqc_resolver_lookup(mqc_resolver_t *r, const char *host, uint16_t port, mqc_resolve_cb cb, void *ctx);
/* Cancels queued lookups for ctx: their callbacks will not be called. */
void mqc_resolver_cancel(mqc_resolver_t *r, void *ctx);
/* Resolves a numeric IPv4/IPv6 address without blocking; NULL when host is not numeric. */
struct addrinfo *mqc_resolve_numeric(const char *host, uint16_t port);

#endif
