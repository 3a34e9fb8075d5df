/* tests/support: the scripted pool connector (lib/pool.c's mqc_pool_connector_t without sockets),
 * shared by the pool's unit tests and the CMAP specification runner. A connection "establishes"
 * on the loop after `delay` seconds (0: the next loop turn), or fails to when told to.
 *
 *   tf_fakeconn_t f = {.loop = loop};
 *   f.pool = mqc_pool_new(loop, "fake:27017", &opts, &tf_fakeconn_connector, &f);
 *
 * The connector's context is the tf_fakeconn_t; pool must be set before the loop runs. */
#ifndef MQC_TESTS_SUPPORT_FAKECONN_H
#define MQC_TESTS_SUPPORT_FAKECONN_H

#include <ev.h>
#include <stdbool.h>

#include "pool.h"

typedef struct tf_fakeconn {
    struct ev_loop *loop;
    mqc_pool_t *pool;
    int opened, closed, live;       /* connections opened, closed, and open now */
    double delay;                   /* seconds before a connection establishes */
    bool fail_next;                 /* the next connection fails to establish (refused) */
    char last_close_reason[32];
    /* Called as a connection is closed, before it is freed (may be NULL). */
    void (*on_close)(struct tf_fakeconn *f, mqc_pconn_t *conn, void *ud);
    void *ud;
} tf_fakeconn_t;

extern const mqc_pool_connector_t tf_fakeconn_connector;

#endif
