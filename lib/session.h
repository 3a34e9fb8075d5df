/* session: the server session pool of the driver sessions specification (source/sessions/
 * driver-sessions.md, "Server Session Pool").
 *
 * A server session is an lsid (a UUID made here) plus what the driver must remember about it:
 * when it was last used (the server forgets it logicalSessionTimeoutMinutes later), the last
 * txnNumber given out on it (a server rejects an older one with TransactionTooOld), and whether
 * it saw a network error (then the server may still run something on it). A real server runs
 * one operation per session at a time, so a session is lent to one operation (or one cursor) at
 * a time, and given back when that is over.
 *
 * The pool is a deque, most recently returned first: checkout takes from the front (LIFO, so a
 * steady load keeps reusing the same few sessions and the count stays at the peak in flight),
 * checkin drops stale sessions from the back. In steady state neither allocates. The module
 * knows nothing of operations, servers or the loop: the caller passes the time and the
 * topology's logicalSessionTimeoutMinutes. */
#ifndef MQC_SESSION_H
#define MQC_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The bytes of the element {lsid: {id: UUID}} as it goes into a command body. */
#define MQC_SESSION_LSID_ELEM 36
/* ...and of {txnNumber: int64}. Together the most a session adds to a command. */
#define MQC_SESSION_TXN_ELEM 19
#define MQC_SESSION_EXT_MAX (MQC_SESSION_LSID_ELEM + MQC_SESSION_TXN_ELEM)

typedef struct mqc_session {
    mqc_link_t link;             /* the pool's deque while pooled */
    int64_t last_use_us;         /* when it was last sent to a server */
    int64_t txn_number;          /* the last txnNumber given out on it */
    int64_t timeout_min;         /* the logicalSessionTimeoutMinutes it was checked out with,
                                  * which its checkin goes by (mqc_session_checkin_kept) */
    bool dirty;                  /* saw a network error: discarded on checkin */
    bool pooled;
    uint8_t elem[MQC_SESSION_LSID_ELEM]; /* the lsid element, made once */
} mqc_session_t;

typedef struct {
    mqc_link_t idle;             /* front: most recently returned */
    size_t n_idle;
    uint64_t created;            /* sessions made (distinct lsids) */
    uint64_t discarded;          /* dropped: dirty, or about to expire */
    uint64_t in_use;             /* checked out now */
    uint64_t peak_in_use;
    uint64_t ended;              /* ids sent in endSessions */
} mqc_session_pool_t;

void mqc_session_pool_init(mqc_session_pool_t *p);
/* Frees every pooled session (the caller ended them first, or gave up). Every session lent out
 * must have been checked in before. */
void mqc_session_pool_cleanup(mqc_session_pool_t *p);

/* A session for one operation: the most recently used one that has more than a minute left
 * before the server would time it out (timeout_min: logicalSessionTimeoutMinutes, < 0: no
 * expiry known), else a new one. Never NULL. */
mqc_session_t *mqc_session_checkout(mqc_session_pool_t *p, int64_t timeout_min, int64_t now_us);
/* Gives it back: discarded when dirty or within a minute of expiry, else pooled in front. The
 * back of the pool is pruned of sessions about to expire first. NULL-safe. */
void mqc_session_checkin(mqc_session_pool_t *p, mqc_session_t *s, int64_t timeout_min, int64_t now_us);
/* Gives it back by the timeout it was checked out with: its user need not ask again on the
 * way up. NULL-safe. */
static inline void mqc_session_checkin_kept(mqc_session_pool_t *p, mqc_session_t *s, int64_t now_us)
{
    if (s) mqc_session_checkin(p, s, s->timeout_min, now_us);
}
/* The next txnNumber on s (each session numbers its own writes from 1). */
static inline int64_t mqc_session_next_txn(mqc_session_t *s) { return ++s->txn_number; }
/* Writes {lsid: {id}} (and {txnNumber} when txn > 0) into out (MQC_SESSION_EXT_MAX bytes);
 * returns the length. The elements go into a command body as they are (mqc_wire_msg_body_ext). */
size_t mqc_session_elements(const mqc_session_t *s, int64_t txn, uint8_t *out);
/* The 16 bytes of the session's UUID. */
static inline const uint8_t *mqc_session_id(const mqc_session_t *s) { return s->elem + 19; }

/* endSessions: takes up to max pooled sessions (oldest first: the newest are the likeliest to be
 * in the server's cache, so this order does not matter much) into ids[] (16 bytes each), frees
 * them and returns how many. The caller sends them in batches of at most 10,000
 * (MQC_SESSION_END_BATCH), the specification's limit. */
#define MQC_SESSION_END_BATCH 10000
size_t mqc_session_pool_drain(mqc_session_pool_t *p, uint8_t (*ids)[16], size_t max);

#endif
