/* Small shared pieces of the library: error setting, monotonic time, intrusive lists. */
#ifndef MQC_COMMON_H
#define MQC_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "mqc.h"

/* Sets *error (when error is non-NULL): domain, code, printf-style message; clears labels and
 * code_name. The message is truncated to fit. */
void mqc_error_set(mqc_error_t *error, uint32_t domain, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Clears error (no domain, code, labels, codeName or message). Only the fields and the two
 * strings' first bytes: an error is 520 bytes and every dispatch clears one, while whoever sets
 * one writes its message with its terminator and nobody reads past that. */
static inline void mqc_error_clear(mqc_error_t *error)
{
    if (!error) return;
    error->domain = 0;
    error->code = 0;
    error->labels = 0;
    error->code_name[0] = 0;
    error->message[0] = 0;
}
/* Fills *error from a server reply with ok: 0 (code, codeName, errmsg, errorLabels). */
void mqc_error_from_reply(mqc_error_t *error, uint32_t domain, const bson_t *reply);
/* Checks a command reply: ok:1 -> true; else error (SERVER) filled. Inline: every reply
 * passes here. */
static inline bool mqc_reply_ok(const bson_t *reply, mqc_error_t *error)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, reply, "ok") && bson_iter_as_bool(&it)) return true;
    mqc_error_from_reply(error, MQC_ERROR_SERVER, reply);
    return false;
}
/* Adds the retryable-read label when code is one the retryable reads spec lists. */
bool mqc_error_code_is_retryable(int32_t code);
/* Spec classifications of server error codes (SDAM "not writable primary" / "node is recovering"). */
bool mqc_error_code_is_not_primary(int32_t code);
bool mqc_error_code_is_recovering(int32_t code);

/* Microseconds on a monotonic clock: a clock read (~17 ns on a VM, 9 of them were a fifth of
 * what a find cost). For durations that must be precise, and only when they are used. */
int64_t mqc_now_us(void);
/* The loop's time in microseconds: mqc_now_us read once per loop iteration (the first call in
 * an iteration of ev_run reads it, the others of that iteration get the same value; outside
 * ev_run every call reads it). What an operation's deadlines, the pool's idle times and waits,
 * and sessions go by: they need milliseconds, not a clock read each (there were 9 per find).
 * Stale by the work done since it was read (µs, or a long application callback, which delays
 * libev's timers the same way). Monotonic, as mqc_now_us: not libev's ev_now, which follows
 * steps of the wall clock, so that an absolute deadline stays right across one. */
int64_t mqc_loop_us(struct ev_loop *loop);

/* Intrusive doubly linked list. */
typedef struct mqc_link {
    struct mqc_link *prev, *next;
} mqc_link_t;

static inline void mqc_list_init(mqc_link_t *head) { head->prev = head->next = head; }
static inline bool mqc_list_empty(const mqc_link_t *head) { return head->next == head; }
static inline bool mqc_link_linked(const mqc_link_t *l) { return l->next != NULL && l->next != l; }
static inline void mqc_list_push_back(mqc_link_t *head, mqc_link_t *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}
static inline void mqc_list_push_front(mqc_link_t *head, mqc_link_t *l)
{
    l->next = head->next;
    l->prev = head;
    head->next->prev = l;
    head->next = l;
}
static inline void mqc_list_remove(mqc_link_t *l)
{
    if (!l->next) return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
}
static inline mqc_link_t *mqc_list_pop_front(mqc_link_t *head)
{
    if (mqc_list_empty(head)) return NULL;
    mqc_link_t *l = head->next;
    mqc_list_remove(l);
    return l;
}
#define mqc_container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

#endif
