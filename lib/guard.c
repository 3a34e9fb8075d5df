/* guard: see guard.h. */
#include "guard.h"

void mqc_guard_init(mqc_guard_t *g, void (*run)(void *ctx), void *ctx)
{
    g->depth = 0;
    g->requested = false;
    g->run = run;
    g->ctx = ctx;
}

bool mqc_guard_request(mqc_guard_t *g)
{
    if (g->depth > 0) {
        g->requested = true;
        return false;
    }
    g->depth++;
    return true;
}
