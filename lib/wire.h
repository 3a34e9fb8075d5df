/* wire: the MongoDB wire protocol, bytes in and bytes out. Never touches a socket.
 *
 * Reader: the connection reads straight into the reader's buffer (mqc_wire_reader_space /
 * _commit), then asks for whole messages (mqc_wire_reader_next). The 4-byte length is checked
 * before anything else: below 16 or above the limit is an error before the body is looked at.
 * Encoder: builds OP_MSG (body section + kind-1 document sequences) and the legacy OP_QUERY used
 * for a first hello, into a growable buffer. See source/message/OP_MSG.md in the specifications. */
#ifndef MQC_WIRE_H
#define MQC_WIRE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"

#define MQC_OP_REPLY 1
#define MQC_OP_QUERY 2004
#define MQC_OP_COMPRESSED 2012
#define MQC_OP_MSG 2013

#define MQC_MSG_CHECKSUM_PRESENT (1u << 0)
#define MQC_MSG_MORE_TO_COME (1u << 1)
#define MQC_MSG_EXHAUST_ALLOWED (1u << 16)

#define MQC_WIRE_HEADER_LEN 16
#define MQC_WIRE_DEFAULT_MAX_MESSAGE (48 * 1000 * 1000)
#define MQC_WIRE_DEFAULT_MAX_BSON (16 * 1024 * 1024)
#define MQC_WIRE_DEFAULT_MAX_BATCH 100000
#define MQC_WIRE_MAX_SEQS 4

/* A growable byte buffer. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} mqc_buf_t;

void mqc_buf_init(mqc_buf_t *b);
void mqc_buf_free(mqc_buf_t *b);
void mqc_buf_reserve(mqc_buf_t *b, size_t extra); /* aborts on OOM */
void mqc_buf_append(mqc_buf_t *b, const void *p, size_t n);
void mqc_buf_reset(mqc_buf_t *b);                 /* len = 0, keeps memory */

typedef struct {
    int32_t length;
    int32_t request_id;
    int32_t response_to;
    int32_t opcode;
} mqc_wire_header_t;

typedef struct {
    const char *identifier;      /* NUL-terminated, points into the reader's buffer */
    const uint8_t *docs;         /* concatenated BSON documents */
    size_t len;
    size_t count;                /* number of documents (each validated for length) */
} mqc_wire_seq_t;

/* One decoded message: a view into the reader's buffer, valid until the next call on the reader
 * that feeds it (space/commit/feed) or the next mqc_wire_reader_next. */
typedef struct {
    mqc_wire_header_t hdr;
    uint32_t flags;              /* OP_MSG flagBits (OP_REPLY: responseFlags) */
    bson_t body;                 /* OP_MSG kind-0 section, OP_REPLY first document (static view) */
    size_t n_seqs;               /* OP_MSG kind-1 sections */
    mqc_wire_seq_t seqs[MQC_WIRE_MAX_SEQS];
    int64_t cursor_id;           /* OP_REPLY only */
    int32_t number_returned;     /* OP_REPLY only */
} mqc_wire_msg_t;

typedef enum {
    MQC_WIRE_ERROR = -1,         /* the stream is broken: close the connection; error says why */
    MQC_WIRE_NEED_MORE = 0,      /* no whole message buffered yet */
    MQC_WIRE_MSG = 1,            /* *msg holds a message */
} mqc_wire_rc_t;

/* A read buffer shared by the readers of one loop (lib/conn.c: one per client), offered to one
 * reader at a time: see mqc_wire_reader_offer. busy is the offerer's: set while a reader holds
 * the offer, or while a message read into it is still in use. */
typedef struct {
    uint8_t *buf;                /* allocated on first use */
    size_t cap;
    bool busy;
} mqc_wire_shared_t;

void mqc_wire_shared_free(mqc_wire_shared_t *shared);

/* The reader's state: public only so that a connection can embed it; the fields are wire.c's. */
typedef struct mqc_wire_reader {
    uint8_t *buf;                /* own, or the shared one while lent */
    size_t cap;
    size_t start;                /* first byte not yet returned as (part of) a message */
    size_t end;                  /* first free byte */
    mqc_wire_shared_t *shared;   /* offered, else NULL */
    mqc_wire_shared_t *lender;   /* buf is lender->buf (lent); kept, unused, when withdrawn empty */
    mqc_error_t *error;          /* why the reader failed: repeated by every later call */
    int32_t max_message;
    unsigned small_streak;       /* messages in a row that used under 1/8 of the buffer */
    bool verify_crc;
    bool failed;
} mqc_wire_reader_t;

/* max_message: largest accepted messageLength (the server's maxMessageSizeBytes; <= 0 means
 * MQC_WIRE_DEFAULT_MAX_MESSAGE). Owned by the caller. */
mqc_wire_reader_t *mqc_wire_reader_new(int32_t max_message);
void mqc_wire_reader_destroy(mqc_wire_reader_t *r);
/* The same for a reader embedded in the caller's struct. */
void mqc_wire_reader_init(mqc_wire_reader_t *r, int32_t max_message);
void mqc_wire_reader_cleanup(mqc_wire_reader_t *r);
/* While shared is offered (non-NULL), _space reads into it whenever nothing is pending, instead
 * of the reader's own buffer (which it then frees), and goes on in it while the rest of a split
 * message fits. The messages then point into shared: the offerer keeps shared->busy set, and
 * offers it to no other reader, until they are no longer in use. Withdrawing the offer (NULL, or
 * another buffer) copies what is pending into the reader's own buffer; it must happen before
 * shared is offered to another reader or freed. Messages already taken stay where they are. */
static inline void mqc_wire_reader_offer(mqc_wire_reader_t *r, mqc_wire_shared_t *shared);
/* No message taken from the reader is in use any more: an own buffer left empty, of at most the
 * shared size (it held a split message, or a read while the shared buffer was busy), is freed,
 * so that an idle connection owns no read memory. */
static inline void mqc_wire_reader_idle(mqc_wire_reader_t *r);
void mqc_wire_reader_set_max(mqc_wire_reader_t *r, int32_t max_message);
/* Returns a writable area of at least min bytes (and *avail, its size) at the end of the
 * buffered data; compacts or grows the buffer as needed. Invalidates earlier messages. */
uint8_t *mqc_wire_reader_space(mqc_wire_reader_t *r, size_t min, size_t *avail);
/* Declares n bytes of the area returned by _space as filled. */
static inline void mqc_wire_reader_commit(mqc_wire_reader_t *r, size_t n);
/* Copies len bytes in (for tests and fuzzing; the connection uses space/commit). */
void mqc_wire_reader_feed(mqc_wire_reader_t *r, const void *buf, size_t len);
/* Bytes buffered and not yet returned as messages. */
size_t mqc_wire_reader_pending(const mqc_wire_reader_t *r);
/* Decodes the next whole message. OP_MSG and OP_REPLY are decoded and validated (section kinds,
 * BSON lengths, sequences within the message, checksum when present and verify_crc set,
 * unknown required flag bits, trailing bytes); other opcodes are MQC_WIRE_ERROR. On error the
 * reader stays in error (every later call returns MQC_WIRE_ERROR). */
static inline mqc_wire_rc_t mqc_wire_reader_next(mqc_wire_reader_t *r, mqc_wire_msg_t *msg, mqc_error_t *error);
void mqc_wire_reader_set_verify_crc(mqc_wire_reader_t *r, bool verify); /* default: true */
/* Gives back buffer memory beyond the initial 16 KiB when little is pending (say, when the
 * connection goes idle in the pool after a large reply). The reader also does this by itself
 * after a few small messages. */
void mqc_wire_reader_shrink(mqc_wire_reader_t *r);
/* Bytes allocated for the reader's own buffer (for tests and memory accounting). */
size_t mqc_wire_reader_capacity(const mqc_wire_reader_t *r);

/* The message length and opcode checks of mqc_wire_decode alone (the reader's, on a partial
 * message): MQC_WIRE_ERROR with *error when they fail, else MQC_WIRE_NEED_MORE (MQC_WIRE_MSG
 * once the 16-byte header is there). */
mqc_wire_rc_t mqc_wire_check_header(const uint8_t *data, size_t len, int32_t max_message, mqc_error_t *error);

/* The reader's decoder on its own: one message from data[0..len), nothing read beyond len.
 * MQC_WIRE_NEED_MORE when len is short of the message (after checking the length and, from 16
 * bytes on, the opcode); MQC_WIRE_MSG with *consumed = messageLength and *msg a view into data;
 * MQC_WIRE_ERROR with *error (domain MQC_ERROR_PROTOCOL). max_message <= 0 means the default. */
mqc_wire_rc_t mqc_wire_decode(const uint8_t *data, size_t len, int32_t max_message, bool verify_crc,
                              mqc_wire_msg_t *msg, size_t *consumed, mqc_error_t *error);

/* The reader's calls made for every message, inline (their slow paths in wire.c). While lent
 * with nothing pending, the reader keeps pointing at the shared buffer without using it: the next
 * offer of it goes on there at no cost, and anything else drops it (see wire.c). */
void mqc_wire_reader_offer_slow(mqc_wire_reader_t *r, mqc_wire_shared_t *shared);
void mqc_wire_reader_idle_slow(mqc_wire_reader_t *r);
__attribute__((noreturn)) void mqc_wire_reader_commit_overrun(const mqc_wire_reader_t *r, size_t n);
mqc_wire_rc_t mqc_wire_reader_take(mqc_wire_reader_t *r, mqc_wire_msg_t *msg, mqc_error_t *error);

static inline void mqc_wire_reader_offer(mqc_wire_reader_t *r, mqc_wire_shared_t *shared)
{
    /* Something pending in the shared buffer, and the offer withdrawn: it moves out. (Nothing
     * else to do, one offer and one withdrawal per read of a connection.) */
    if (r->lender && shared != r->lender && r->end != r->start) mqc_wire_reader_offer_slow(r, shared);
    r->shared = shared;
}

static inline void mqc_wire_reader_idle(mqc_wire_reader_t *r)
{
    if (!r->lender && r->buf && r->end == r->start) mqc_wire_reader_idle_slow(r);
}

static inline void mqc_wire_reader_commit(mqc_wire_reader_t *r, size_t n)
{
    if (r->failed) return;
    if (n > r->cap - r->end) mqc_wire_reader_commit_overrun(r, n);
    r->end += n;
}

static inline mqc_wire_rc_t mqc_wire_reader_next(mqc_wire_reader_t *r, mqc_wire_msg_t *msg, mqc_error_t *error)
{
    if (r->end == r->start && !r->failed) return MQC_WIRE_NEED_MORE;
    return mqc_wire_reader_take(r, msg, error);
}

/* ---- encoding -------------------------------------------------------------------------- */

/* OP_MSG into b (appended at b->len): begin, one body, any sequences, end. Between begin and
 * end nothing else may write to b: the encoder keeps its offsets in b's spare capacity, past
 * b->len (see enc_state_t in wire.c). Calls out of order abort. */
void mqc_wire_msg_begin(mqc_buf_t *b, int32_t request_id, uint32_t flags);
void mqc_wire_msg_body(mqc_buf_t *b, const bson_t *body);
/* The body may also be given as raw BSON bytes. */
void mqc_wire_msg_body_raw(mqc_buf_t *b, const uint8_t *bson, size_t len);
/* The body with ext_len bytes of whole BSON elements appended inside it (before its terminating
 * NUL, its length raised to match): how a session's lsid and txnNumber join a command without
 * copying or growing the caller's bson_t. */
void mqc_wire_msg_body_ext(mqc_buf_t *b, const bson_t *body, const uint8_t *ext, size_t ext_len);
/* A whole OP_MSG of one body (with ext as mqc_wire_msg_body_ext), appended at b->len: the
 * bytes of begin, body_ext and end, in one call. Returns the message's total length. */
size_t mqc_wire_msg_command(mqc_buf_t *b, int32_t request_id, uint32_t flags, const bson_t *body, const uint8_t *ext,
                            size_t ext_len);
void mqc_wire_msg_seq_begin(mqc_buf_t *b, const char *identifier);
void mqc_wire_msg_seq_add(mqc_buf_t *b, const uint8_t *bson, size_t len);
void mqc_wire_msg_seq_end(mqc_buf_t *b);
/* Fills messageLength; appends a CRC-32C when the checksum flag was given. Returns the message's
 * total length. */
size_t mqc_wire_msg_end(mqc_buf_t *b);

/* Legacy OP_QUERY of a command ("<db>.$cmd", numberToReturn -1), for a first hello to servers
 * that may not know OP_MSG yet. */
void mqc_wire_query_command(mqc_buf_t *b, int32_t request_id, const char *db, const bson_t *cmd);

/* CRC-32C (Castagnoli) as OP_MSG's checksum uses it. */
uint32_t mqc_crc32c(uint32_t crc, const void *data, size_t len);
/* The same with the portable table code, whatever the CPU offers (mqc_crc32c uses the SSE4.2
 * instruction when there is one): for tests. */
uint32_t mqc_crc32c_portable(uint32_t crc, const void *data, size_t len);

/* ---- write batch splitting ------------------------------------------------------------- */

typedef struct {
    int32_t max_bson_object_size;   /* from hello (maxBsonObjectSize) */
    int32_t max_message_size;       /* maxMessageSizeBytes */
    int32_t max_write_batch_size;   /* maxWriteBatchSize */
} mqc_wire_limits_t;

void mqc_wire_limits_default(mqc_wire_limits_t *lim);

/* How many of the documents sizes[start..n-1] fit in the next message whose command body is
 * body_len bytes, with the documents in one kind-1 sequence named by an identifier of id_len
 * characters: at most max_write_batch_size, and the whole message at most max_message_size
 * (counting 4 bytes for a checksum, whether or not one is sent). A later document above the
 * per-document limit ends the batch before it (the next call returns 0 for it).
 * Returns 0 when sizes[start] alone exceeds max_bson_object_size + 16 KiB (a client error),
 * else at least 1. */
size_t mqc_wire_batch_fit(const size_t *sizes, size_t n, size_t start, size_t body_len,
                          size_t id_len, const mqc_wire_limits_t *lim);

/* The next request id from a counter that starts at 1 and wraps back to 1, never 0 or below. */
static inline int32_t mqc_wire_next_request_id(int32_t *counter)
{
    int32_t id = (*counter)++;
    if (*counter <= 0) *counter = 1;
    return id;
}

#endif
