/* reselect: ops waiting for a server select again, once each, when the topology says it
 * changed (from the loop: a zero-delay timer, since "changed" comes from inside the topology's
 * update) or when the seed list arrived. Kept out of op.c, which it calls (mqc_op_dispatch) and
 * which does not call it: the client starts the watch. */
#include "op.h"
#include "topology.h"

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_client_t *client = w->data;
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_guard_enter(q->guard);
    mqc_op_wake_selecting(client);
    mqc_guard_leave(q->guard);
}

/* The topology changed (called from inside its update): waiting ops look again, from the loop. */
static void on_topology_changed(void *ctx)
{
    mqc_client_t *client = ctx;
    mqc_ops_t *q = mqc_ops_of(client);
    if (!mqc_list_empty(&q->selecting) && !ev_is_active(&q->wake)) {
        ev_timer_set(&q->wake, 0., 0.);
        ev_timer_start(q->loop, &q->wake);
    }
}

void mqc_ops_watch_topology(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    ev_init(&q->wake, on_wake);
    q->wake.data = client;
    q->topology.changed = on_topology_changed;
    q->topology.ctx = client;
    mqc_topology_subscribe(*q->topo, &q->topology);
}

void mqc_op_wake_selecting(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    size_t n = 0;
    for (mqc_link_t *l = q->selecting.next; l != &q->selecting; l = l->next) n++;
    /* Ops that still find nothing go back to the end of the list: look at each once. */
    while (n-- > 0 && !q->closing) {
        mqc_link_t *l = mqc_list_pop_front(&q->selecting);
        if (!l) break;
        mqc_op_t *op = mqc_container_of(l, mqc_op_t, qlink);
        op->selecting = false;
        mqc_op_dispatch(op);
    }
}

