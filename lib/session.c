/* session: the server session pool. See session.h. */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

void mqc_session_pool_init(mqc_session_pool_t *p)
{
    memset(p, 0, sizeof *p);
    mqc_list_init(&p->idle);
}

void mqc_session_pool_cleanup(mqc_session_pool_t *p)
{
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&p->idle))) free(mqc_container_of(l, mqc_session_t, link));
    p->n_idle = 0;
}

/* A random UUID (version 4, variant 1), as the specification asks of a driver-made lsid. */
static void make_uuid(uint8_t id[16])
{
    static uint64_t x;
    if (getrandom(id, 16, 0) != 16) {
        /* No entropy source: a counter-seeded generator still keeps the ids of one process
         * apart, which is what the pool needs; servers only need them unique. */
        if (x == 0) x = (uint64_t) (uintptr_t) id ^ (uint64_t) mqc_now_us();
        for (size_t i = 0; i < 16; i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
            id[i] = (uint8_t) (x >> 56);
    }
    id[6] = (uint8_t) ((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t) ((id[8] & 0x3f) | 0x80);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t) (v >> (8 * i));
}

static mqc_session_t *session_new(mqc_session_pool_t *p)
{
    mqc_session_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    /* {lsid: {id: BinData(4, UUID)}} laid out once: type, "lsid", length 30, then the
     * subdocument's one element (type 5, "id", 16 bytes, subtype 4) and its terminator. */
    uint8_t *e = s->elem;
    e[0] = 0x03;
    memcpy(e + 1, "lsid", 5);
    put32(e + 6, 30);
    e[10] = 0x05;
    memcpy(e + 11, "id", 3);
    put32(e + 14, 16);
    e[18] = 0x04;
    make_uuid(e + 19);
    e[35] = 0x00;
    p->created++;
    return s;
}

/* Stale: less than a minute left before the server may have forgotten it. */
static bool about_to_expire(const mqc_session_t *s, int64_t timeout_min, int64_t now_us)
{
    if (timeout_min < 0) return false;
    return now_us - s->last_use_us > (timeout_min - 1) * 60 * 1000000LL;
}

static void discard(mqc_session_pool_t *p, mqc_session_t *s)
{
    p->discarded++;
    free(s);
}

mqc_session_t *mqc_session_checkout(mqc_session_pool_t *p, int64_t timeout_min, int64_t now_us)
{
    mqc_session_t *s = NULL;
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&p->idle))) {
        p->n_idle--;
        s = mqc_container_of(l, mqc_session_t, link);
        if (!about_to_expire(s, timeout_min, now_us)) break;
        discard(p, s);
        s = NULL;
    }
    if (!s) s = session_new(p);
    s->pooled = false;
    s->last_use_us = now_us;
    s->timeout_min = timeout_min;
    if (++p->in_use > p->peak_in_use) p->peak_in_use = p->in_use;
    return s;
}

void mqc_session_checkin(mqc_session_pool_t *p, mqc_session_t *s, int64_t timeout_min, int64_t now_us)
{
    if (!s) return;
    p->in_use--;
    while (!mqc_list_empty(&p->idle)) {
        mqc_session_t *last = mqc_container_of(p->idle.prev, mqc_session_t, link);
        if (!about_to_expire(last, timeout_min, now_us)) break;
        mqc_list_remove(&last->link);
        p->n_idle--;
        discard(p, last);
    }
    if (s->dirty || about_to_expire(s, timeout_min, now_us)) {
        discard(p, s);
        return;
    }
    s->pooled = true;
    mqc_list_push_front(&p->idle, &s->link);
    p->n_idle++;
}

size_t mqc_session_elements(const mqc_session_t *s, int64_t txn, uint8_t *out)
{
    memcpy(out, s->elem, MQC_SESSION_LSID_ELEM);
    if (txn <= 0) return MQC_SESSION_LSID_ELEM;
    uint8_t *e = out + MQC_SESSION_LSID_ELEM;
    e[0] = 0x12;
    memcpy(e + 1, "txnNumber", 10);
    put32(e + 11, (uint32_t) (uint64_t) txn);
    put32(e + 15, (uint32_t) ((uint64_t) txn >> 32));
    return MQC_SESSION_EXT_MAX;
}

size_t mqc_session_pool_drain(mqc_session_pool_t *p, uint8_t (*ids)[16], size_t max)
{
    size_t n = 0;
    while (n < max && !mqc_list_empty(&p->idle)) {
        mqc_session_t *s = mqc_container_of(p->idle.prev, mqc_session_t, link);
        mqc_list_remove(&s->link);
        p->n_idle--;
        memcpy(ids[n++], mqc_session_id(s), 16);
        free(s);
    }
    p->ended += n;
    return n;
}
