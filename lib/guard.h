/* guard: the enter/leave bracket around code that may call out (into the application, or into
 * a layer that may end what called it). A free asked for while inside is run on the way out
 * of the outermost bracket, by the callback handed to mqc_guard_init. */
#ifndef MQC_GUARD_H
#define MQC_GUARD_H

#include <stdbool.h>

typedef struct mqc_guard {
    int depth;                   /* > 0 inside a bracket */
    bool requested;              /* the end was asked for inside: run on the way out */
    void (*run)(void *ctx);      /* what ends the guarded object */
    void *ctx;
} mqc_guard_t;

void mqc_guard_init(mqc_guard_t *g, void (*run)(void *ctx), void *ctx);

static inline void mqc_guard_enter(mqc_guard_t *g) { g->depth++; }

/* Leaves a bracket; the outermost one runs a requested end (once: the guard holds itself
 * entered meanwhile, so that code run by the end cannot run it again). */
static inline void mqc_guard_leave(mqc_guard_t *g)
{
    if (--g->depth == 0 && g->requested) {
        g->depth++;
        g->run(g->ctx);
    }
}

/* Asks for the end: true when the caller is outside every bracket and must run it now itself
 * (the guard is then held entered, as above); false when it was deferred to the way out. */
bool mqc_guard_request(mqc_guard_t *g);

#endif
