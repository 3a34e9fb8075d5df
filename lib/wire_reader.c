/* wire_reader: the wire reader, the bytes a server sends into whole messages (decoded by
 * mqc_wire_decode, lib/wire.c). The connection reads into a buffer the reader hands out
 * (mqc_wire_reader_space / _commit), its own or its client's shared one, then asks for messages
 * (mqc_wire_reader_next, inline in wire.h with the other calls made for every message). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

#define PROTO(error, ...) mqc_error_set(error, MQC_ERROR_PROTOCOL, 0, __VA_ARGS__)

static inline int32_t rd_i32(const uint8_t *p)
{
    return (int32_t) ((uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
}

static __attribute__((noreturn, format(printf, 1, 2))) void reader_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mqc: wire reader: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- reader --------------------------------------------------------------------------- */

/* The buffer starts at READER_INITIAL and grows to the size of the message being read as soon
 * as its length is known, so a large reply arrives in few reads and one allocation. Unconsumed
 * bytes may exceed one message only by READER_SLACK (plus the caller's minimum): a peer that
 * streams faster than the caller takes messages puts the reader in error instead of growing it
 * without bound. A buffer above READER_SHRINK_ABOVE is given back after a few small messages, so
 * that one huge reply does not pin memory on every pooled connection (a cursor of large batches
 * keeps its buffer).
 *
 * A shared buffer (mqc_wire_shared_t, one per loop) offered to the reader replaces its own while
 * nothing is pending: a connection then owns read memory only while a message is split across
 * reads (or larger than the shared buffer), and an idle one owns none. When the offer is
 * withdrawn, what is still pending is copied into the reader's own buffer, never left behind. */
#define READER_INITIAL 1024
#define READER_SLACK (1024 * 1024)
#define READER_SHRINK_ABOVE (1024 * 1024)
#define READER_SHRINK_STREAK 4
#define SHARED_SIZE (64 * 1024)

void mqc_wire_reader_init(mqc_wire_reader_t *r, int32_t max_message)
{
    memset(r, 0, sizeof *r);
    mqc_wire_reader_set_max(r, max_message);
    r->verify_crc = true;
}

void mqc_wire_reader_cleanup(mqc_wire_reader_t *r)
{
    if (!r->lender) free(r->buf);
    free(r->error);
    memset(r, 0, sizeof *r);
}

mqc_wire_reader_t *mqc_wire_reader_new(int32_t max_message)
{
    mqc_wire_reader_t *r = malloc(sizeof *r);
    if (!r) reader_abort("out of memory");
    mqc_wire_reader_init(r, max_message);
    return r;
}

void mqc_wire_reader_destroy(mqc_wire_reader_t *r)
{
    if (!r) return;
    mqc_wire_reader_cleanup(r);
    free(r);
}

void mqc_wire_reader_set_max(mqc_wire_reader_t *r, int32_t max_message)
{
    r->max_message = max_message > 0 ? max_message : MQC_WIRE_DEFAULT_MAX_MESSAGE;
}

void mqc_wire_reader_set_verify_crc(mqc_wire_reader_t *r, bool verify) { r->verify_crc = verify; }

size_t mqc_wire_reader_pending(const mqc_wire_reader_t *r) { return r->end - r->start; }

size_t mqc_wire_reader_capacity(const mqc_wire_reader_t *r) { return r->lender ? 0 : r->cap; }

/* The error is kept apart (allocated on failure): 516 bytes every connection would carry. */
static void reader_fail(mqc_wire_reader_t *r, const mqc_error_t *error)
{
    if (!r->error && !(r->error = malloc(sizeof *r->error))) reader_abort("out of memory");
    *r->error = *error;
    r->failed = true;
}

static void reader_realloc(mqc_wire_reader_t *r, size_t cap)
{
    uint8_t *p = realloc(r->buf, cap);
    if (!p) reader_abort("out of memory growing the reader to %zu bytes", cap);
    r->buf = p;
    r->cap = cap;
}

static void reader_compact(mqc_wire_reader_t *r)
{
    if (r->start == 0) return;
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
}

/* Back from the shared buffer to an own one, with what is pending: sized for the whole message
 * when its length is known and valid (space() checks it again), else READER_INITIAL. */
static void reader_take_back(mqc_wire_reader_t *r)
{
    size_t pending = r->end - r->start, cap = pending;
    const uint8_t *src = r->buf + r->start;
    mqc_error_t e;
    r->lender = NULL;
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
    if (pending == 0 || r->failed) return;
    if (pending >= 4 && mqc_wire_check_header(src, pending, r->max_message, &e) != MQC_WIRE_ERROR &&
        (size_t) rd_i32(src) > cap)
        cap = (size_t) rd_i32(src);
    reader_realloc(r, cap > READER_INITIAL ? cap : READER_INITIAL);
    memcpy(r->buf, src, pending);
    r->end = pending;
}

void mqc_wire_reader_offer_slow(mqc_wire_reader_t *r, mqc_wire_shared_t *shared)
{
    (void) shared;
    reader_take_back(r);
}

/* An own buffer above the shared size waits for the next large message (see shared_space). */
void mqc_wire_reader_idle_slow(mqc_wire_reader_t *r)
{
    if (r->cap > SHARED_SIZE) return;
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
}

void mqc_wire_shared_free(mqc_wire_shared_t *shared)
{
    free(shared->buf);
    shared->buf = NULL;
    shared->cap = 0;
}

/* In error, the data no longer matters: hand out a scratch area that commit discards. */
static uint8_t *reader_scratch(mqc_wire_reader_t *r, size_t min, size_t *avail)
{
    if (r->lender) reader_take_back(r);
    r->start = r->end = 0;
    if (r->cap < min) reader_realloc(r, min);
    *avail = r->cap;
    return r->buf;
}

/* Reading into the shared buffer: nothing pending (the common case, where it is taken), or a
 * rest that still fits with the next read (compacted to its front). false: it does not fit. */
static bool shared_space(mqc_wire_reader_t *r, size_t min)
{
    mqc_wire_shared_t *sh = r->shared;
    size_t pending = r->end - r->start;
    if (!r->lender) {
        /* An own buffer above the shared one is kept for the next large message, until a few
         * small ones in a row say the large ones are over. */
        if (pending > 0 || (r->cap > SHARED_SIZE && r->small_streak < READER_SHRINK_STREAK)) return false;
        if (!sh->buf) {
            if (!(sh->buf = malloc(SHARED_SIZE))) reader_abort("out of memory");
            sh->cap = SHARED_SIZE;
        }
        if (r->buf) free(r->buf);
        r->buf = sh->buf;
        r->cap = sh->cap;
        r->start = r->end = 0;
        r->lender = sh;
        return min <= r->cap;
    }
    size_t need = min;
    if (pending >= 4) {
        size_t mlen = (size_t) rd_i32(r->buf + r->start); /* checked by the caller */
        if (mlen > pending && mlen - pending > need) need = mlen - pending;
    }
    if (pending + need > r->cap) return false;
    if (r->cap - r->end < need) reader_compact(r);
    return true;
}

uint8_t *mqc_wire_reader_space(mqc_wire_reader_t *r, size_t min, size_t *avail)
{
    /* The common case first: nothing pending, the shared buffer offered and already ours. */
    if (r->end == 0 && r->lender && r->lender == r->shared && min <= r->cap && !r->failed) {
        *avail = r->cap;
        return r->buf;
    }
    if (min == 0) min = 1;
    if (min > INT32_MAX) reader_abort("space for %zu bytes asked of the reader", min);
    if (r->failed) return reader_scratch(r, min, avail);
    size_t pending = r->end - r->start, need = min;
    bool length_known = false;
    mqc_error_t e;
    if (pending >= 4) {
        if (mqc_wire_check_header(r->buf + r->start, pending, r->max_message, &e) == MQC_WIRE_ERROR) {
            reader_fail(r, &e);
            return reader_scratch(r, min, avail);
        }
        size_t mlen = (size_t) rd_i32(r->buf + r->start);
        length_known = true;
        if (mlen > pending && mlen - pending > need) need = mlen - pending;
    }
    if (r->shared) {
        /* Lent another buffer (tests), with nothing pending (else the offer took it back). */
        if (r->lender && r->lender != r->shared) reader_take_back(r);
        if (shared_space(r, min)) {
            *avail = r->cap - r->end;
            return r->buf + r->end;
        }
    }
    if (r->lender) { /* the rest does not fit the shared buffer; or nothing pending, not offered */
        reader_take_back(r);
        pending = r->end - r->start;
    }
    size_t limit = (size_t) r->max_message + READER_SLACK + min;
    if (pending + need > limit) {
        PROTO(&e, "%zu bytes arrived ahead of the messages taken from the reader (limit: "
              "maxMessageSizeBytes %d + %d)", pending, r->max_message, READER_SLACK);
        reader_fail(r, &e);
        return reader_scratch(r, min, avail);
    }
    if (r->start > 0 && (r->cap - r->end < need || r->start >= r->cap / 2)) reader_compact(r);
    if (r->cap > READER_SHRINK_ABOVE && r->small_streak >= READER_SHRINK_STREAK && pending + need <= r->cap / 8) {
        reader_compact(r);
        size_t cap = pending + need > READER_INITIAL ? pending + need : READER_INITIAL;
        reader_realloc(r, cap);
        r->small_streak = 0;
    }
    if (r->cap - r->end < need) {
        reader_compact(r);
        size_t cap = r->end + need;
        /* Without a known length, double (few reallocs while a header trickles in); with one,
         * take exactly what the message needs. */
        if (!length_known && cap < r->cap * 2) cap = r->cap * 2 < limit ? r->cap * 2 : limit;
        if (cap < READER_INITIAL) cap = READER_INITIAL;
        reader_realloc(r, cap);
    }
    *avail = r->cap - r->end;
    return r->buf + r->end;
}

void mqc_wire_reader_commit_overrun(const mqc_wire_reader_t *r, size_t n)
{
    reader_abort("commit of %zu bytes, %zu were handed out", n, r->cap - r->end);
}

void mqc_wire_reader_feed(mqc_wire_reader_t *r, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        size_t avail, chunk = len < 65536 ? len : 65536;
        uint8_t *dst = mqc_wire_reader_space(r, chunk, &avail);
        size_t n = len < avail ? len : avail;
        memcpy(dst, p, n);
        mqc_wire_reader_commit(r, n);
        p += n;
        len -= n;
    }
}

/* mqc_wire_reader_next past its inline test for nothing pending. */
mqc_wire_rc_t mqc_wire_reader_take(mqc_wire_reader_t *r, mqc_wire_msg_t *msg, mqc_error_t *error)
{
    if (r->failed) {
        if (error) *error = *r->error;
        return MQC_WIRE_ERROR;
    }
    size_t used = 0;
    mqc_error_t local;
    mqc_error_t *e = error ? error : &local;
    mqc_wire_rc_t rc = mqc_wire_decode(r->buf + r->start, r->end - r->start, r->max_message, r->verify_crc, msg,
                                       &used, e);
    if (rc == MQC_WIRE_ERROR) {
        reader_fail(r, e);
        return rc;
    }
    if (rc == MQC_WIRE_MSG) {
        r->start += used;
        /* Nothing left: the next read starts at the front, no memmove needed. The message stays
         * valid: its bytes are not touched until the caller asks for space. */
        if (r->start == r->end) r->start = r->end = 0;
        if (used <= r->cap / 8) r->small_streak++;
        else r->small_streak = 0;
    }
    return rc;
}

void mqc_wire_reader_shrink(mqc_wire_reader_t *r)
{
    size_t pending = r->end - r->start;
    if (r->lender || r->cap <= READER_INITIAL || pending > READER_INITIAL / 2) return;
    reader_compact(r);
    if (pending == 0 && !r->failed) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
        return;
    }
    reader_realloc(r, READER_INITIAL);
}
