/* wire: the MongoDB wire protocol codec (OP_MSG, and OP_QUERY/OP_REPLY for a first hello).
 *
 * The reader is the attack surface of the client: every byte a server (or anything pretending
 * to be one) sends passes through mqc_wire_decode before any other code looks at it. It checks
 * the structure only (lengths, section kinds, the trailing NUL of every document); the content
 * of documents is left to bson_iter, which bounds-checks every element against the document's
 * length (fuzzed in tests/fuzz/fuzz_wire.c). A full bson_validate per reply would cost a walk of
 * every byte, for nothing bson_iter does not already refuse. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

/* ---- little-endian helpers ------------------------------------------------------------ */

static inline uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline int32_t rd_i32(const uint8_t *p) { return (int32_t) rd_u32(p); }

static inline int64_t rd_i64(const uint8_t *p)
{
    return (int64_t) ((uint64_t) rd_u32(p) | (uint64_t) rd_u32(p + 4) << 32);
}

static inline void wr_u32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 4); /* one store: byte by byte, the compiler builds the word with shifts */
    return;
#endif
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static __attribute__((noreturn, format(printf, 1, 2))) void wire_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mqc wire: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ---- growable buffer ------------------------------------------------------------------ */

void mqc_buf_init(mqc_buf_t *b) { memset(b, 0, sizeof *b); }

void mqc_buf_free(mqc_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void mqc_buf_reserve(mqc_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra) return;
    if (extra > SIZE_MAX / 2 - b->len) wire_abort("buffer of %zu bytes cannot grow by %zu", b->len, extra);
    size_t cap = b->cap ? b->cap * 2 : 256;
    if (cap < b->len + extra) cap = b->len + extra;
    /* realloc keeps the whole old block, spare capacity included: the encoder relies on that
     * (see enc_state_t). */
    uint8_t *p = realloc(b->data, cap);
    if (!p) wire_abort("out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
}

void mqc_buf_append(mqc_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return;
    mqc_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void mqc_buf_reset(mqc_buf_t *b) { b->len = 0; }

static void buf_append_u32(mqc_buf_t *b, uint32_t v)
{
    uint8_t tmp[4];
    wr_u32(tmp, v);
    mqc_buf_append(b, tmp, 4);
}

static void buf_append_u8(mqc_buf_t *b, uint8_t v) { mqc_buf_append(b, &v, 1); }

/* ---- CRC-32C -------------------------------------------------------------------------- */

/* Slicing-by-8 over the reflected Castagnoli polynomial: eight table lookups per 8 input bytes.
 * The tables are built once (pthread_once: clients may live on several threads). */
#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&crc_once, crc_init);
    while (len >= 8) {
        uint32_t lo = crc ^ rd_u32(p), hi = rd_u32(p + 4);
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
              crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* SSE4.2 has CRC-32C as an instruction (8 bytes per step): about ten times the tables. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t) c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

static bool crc_hw;
static pthread_once_t crc_hw_once = PTHREAD_ONCE_INIT;
static void crc_hw_init(void) { crc_hw = __builtin_cpu_supports("sse4.2"); }
#endif

uint32_t mqc_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    pthread_once(&crc_hw_once, crc_hw_init);
    if (crc_hw) return ~crc32c_hw(~crc, data, len);
#endif
    return ~crc32c_sw(~crc, data, len);
}

uint32_t mqc_crc32c_portable(uint32_t crc, const void *data, size_t len) { return ~crc32c_sw(~crc, data, len); }

/* ---- decoding ------------------------------------------------------------------------- */

#define PROTO(error, ...) mqc_error_set(error, MQC_ERROR_PROTOCOL, 0, __VA_ARGS__)

/* The first checks, on as little as the 4-byte length: they run before the body is awaited, so
 * a hostile length never makes the caller buffer anything. */
static inline __attribute__((always_inline)) mqc_wire_rc_t check_header(const uint8_t *data, size_t len,
                                                                     int32_t max_message, mqc_error_t *error)
{
    if (len < 4) return MQC_WIRE_NEED_MORE;
    int32_t length = rd_i32(data);
    if (length < MQC_WIRE_HEADER_LEN) {
        PROTO(error, "message length %d is below the %d-byte header", length, MQC_WIRE_HEADER_LEN);
        return MQC_WIRE_ERROR;
    }
    if (length > max_message) {
        PROTO(error, "message length %d exceeds maxMessageSizeBytes %d", length, max_message);
        return MQC_WIRE_ERROR;
    }
    if (len < MQC_WIRE_HEADER_LEN) return MQC_WIRE_NEED_MORE;
    int32_t opcode = rd_i32(data + 12);
    if (opcode == MQC_OP_MSG || opcode == MQC_OP_REPLY) return MQC_WIRE_MSG;
    if (opcode == MQC_OP_COMPRESSED)
        PROTO(error, "OP_COMPRESSED message received, but compression was not negotiated");
    else
        PROTO(error, "opcode %d is not OP_MSG (2013) or OP_REPLY (1)", opcode);
    return MQC_WIRE_ERROR;
}

/* One BSON document at p with avail bytes left in its section: the length fits, is at least 5,
 * and the last byte is the document's terminating NUL. */
static inline __attribute__((always_inline)) bool check_doc(const uint8_t *p, size_t avail, const char *where,
                                                            size_t *doc_len, mqc_error_t *error)
{
    if (avail < 4) {
        PROTO(error, "%s: %zu byte(s) left, too few for a BSON document length", where, avail);
        return false;
    }
    int32_t n = rd_i32(p);
    if (n < 5) {
        PROTO(error, "%s: BSON document length %d is below the minimum of 5", where, n);
        return false;
    }
    if ((size_t) n > avail) {
        PROTO(error, "%s: BSON document length %d overruns its section (%zu bytes left)", where, n, avail);
        return false;
    }
    if (p[n - 1] != 0) {
        PROTO(error, "%s: BSON document of %d bytes does not end with a NUL byte", where, n);
        return false;
    }
    *doc_len = (size_t) n;
    return true;
}

static bool body_view(mqc_wire_msg_t *msg, const uint8_t *p, size_t len, mqc_error_t *error)
{
    /* Cannot fail after check_doc (length and trailing NUL are what it checks), but a false
     * here must not become a view of garbage. */
    if (!bson_init_static(&msg->body, p, len)) {
        PROTO(error, "BSON document of %zu bytes is malformed", len);
        return false;
    }
    return true;
}

/* Kind-1 section at p (after its kind byte), end - p bytes left before the sections' end. */
static bool decode_seq(mqc_wire_msg_t *msg, const uint8_t *p, size_t left, size_t *used, mqc_error_t *error)
{
    if (msg->n_seqs == MQC_WIRE_MAX_SEQS) {
        PROTO(error, "OP_MSG has more than %d document sequences", MQC_WIRE_MAX_SEQS);
        return false;
    }
    if (left < 4) {
        PROTO(error, "OP_MSG kind-1 section truncated: %zu byte(s) left for its 4-byte size", left);
        return false;
    }
    int32_t size = rd_i32(p);
    if (size < 5) {
        PROTO(error, "OP_MSG kind-1 section size %d is too small for a size and an identifier", size);
        return false;
    }
    if ((size_t) size > left) {
        PROTO(error, "OP_MSG kind-1 section of %d bytes overruns the message (%zu bytes left)", size, left);
        return false;
    }
    const uint8_t *id = p + 4, *end = p + size;
    const uint8_t *nul = memchr(id, 0, (size_t) (end - id));
    if (!nul) {
        PROTO(error, "OP_MSG kind-1 section identifier is not NUL-terminated within its %d bytes", size);
        return false;
    }
    if (nul == id) {
        PROTO(error, "OP_MSG kind-1 section has an empty identifier");
        return false;
    }
    for (size_t i = 0; i < msg->n_seqs; i++)
        if (strcmp(msg->seqs[i].identifier, (const char *) id) == 0) {
            PROTO(error, "OP_MSG has two document sequences named \"%.64s\"", (const char *) id);
            return false;
        }
    mqc_wire_seq_t *seq = &msg->seqs[msg->n_seqs];
    seq->identifier = (const char *) id;
    seq->docs = nul + 1;
    seq->len = (size_t) (end - seq->docs);
    seq->count = 0;
    for (const uint8_t *d = seq->docs; d < end;) {
        size_t n;
        if (!check_doc(d, (size_t) (end - d), "OP_MSG document sequence", &n, error)) return false;
        d += n;
        seq->count++;
    }
    msg->n_seqs++;
    *used = (size_t) size;
    return true;
}

static bool decode_op_msg(const uint8_t *m, size_t len, bool verify_crc, mqc_wire_msg_t *msg, mqc_error_t *error)
{
    if (len < MQC_WIRE_HEADER_LEN + 4) {
        PROTO(error, "OP_MSG of %zu bytes is too short for its flagBits", len);
        return false;
    }
    msg->flags = rd_u32(m + 16);
    /* The low 16 bits are "required": a flag we do not know changes the meaning of the message.
     * Unknown high bits are optional and ignored, as the specification asks. */
    uint32_t unknown = msg->flags & 0xFFFFu & ~(uint32_t) (MQC_MSG_CHECKSUM_PRESENT | MQC_MSG_MORE_TO_COME);
    if (unknown) {
        PROTO(error, "OP_MSG has unknown required flag bits 0x%04x", unknown);
        return false;
    }
    size_t end = len;
    if (msg->flags & MQC_MSG_CHECKSUM_PRESENT) {
        if (len < MQC_WIRE_HEADER_LEN + 4 + 4) {
            PROTO(error, "OP_MSG of %zu bytes is too short for flagBits and its checksum", len);
            return false;
        }
        end -= 4;
        if (verify_crc) {
            uint32_t want = rd_u32(m + end), got = mqc_crc32c(0, m, end);
            if (want != got) {
                PROTO(error, "OP_MSG checksum mismatch: message says 0x%08x, bytes give 0x%08x", want, got);
                return false;
            }
        }
    }
    bool have_body = false;
    size_t off = MQC_WIRE_HEADER_LEN + 4;
    /* Sections run up to the checksum (or the end): whatever does not parse as a section there
     * is an error, so there can be no trailing bytes. */
    while (off < end) {
        uint8_t kind = m[off++];
        size_t used;
        if (kind == 0) {
            if (have_body) {
                PROTO(error, "OP_MSG has more than one kind-0 section");
                return false;
            }
            if (!check_doc(m + off, end - off, "OP_MSG kind-0 section", &used, error)) return false;
            if (!body_view(msg, m + off, used, error)) return false;
            have_body = true;
        } else if (kind == 1) {
            if (!decode_seq(msg, m + off, end - off, &used, error)) return false;
        } else {
            PROTO(error, "OP_MSG section kind %u is unknown", kind);
            return false;
        }
        off += used;
    }
    if (!have_body) {
        PROTO(error, "OP_MSG has no kind-0 section (body)");
        return false;
    }
    return true;
}

#define OP_REPLY_PREFIX (MQC_WIRE_HEADER_LEN + 20)

static bool decode_op_reply(const uint8_t *m, size_t len, mqc_wire_msg_t *msg, mqc_error_t *error)
{
    if (len < OP_REPLY_PREFIX) {
        PROTO(error, "OP_REPLY of %zu bytes is shorter than its %d-byte header and prefix", len, OP_REPLY_PREFIX);
        return false;
    }
    msg->flags = rd_u32(m + 16);
    msg->cursor_id = rd_i64(m + 20);
    msg->number_returned = rd_i32(m + 32);
    if (msg->number_returned < 1) {
        PROTO(error, "OP_REPLY numberReturned is %d: a command reply needs one document", msg->number_returned);
        return false;
    }
    /* numberReturned is checked against the bytes, document by document: a huge count in a small
     * message fails at the first missing document, after at most len / 5 steps. */
    size_t off = OP_REPLY_PREFIX;
    for (int32_t i = 0; i < msg->number_returned; i++) {
        size_t n;
        if (off == len) {
            PROTO(error, "OP_REPLY numberReturned is %d but the message holds %d document(s)",
                  msg->number_returned, i);
            return false;
        }
        if (!check_doc(m + off, len - off, "OP_REPLY", &n, error)) return false;
        if (i == 0 && !body_view(msg, m + off, n, error)) return false;
        off += n;
    }
    if (off != len) {
        PROTO(error, "OP_REPLY has %zu trailing byte(s) after its %d document(s)", len - off, msg->number_returned);
        return false;
    }
    return true;
}

mqc_wire_rc_t mqc_wire_decode(const uint8_t *data, size_t len, int32_t max_message, bool verify_crc,
                              mqc_wire_msg_t *msg, size_t *consumed, mqc_error_t *error)
{
    if (max_message <= 0) max_message = MQC_WIRE_DEFAULT_MAX_MESSAGE;
    mqc_wire_rc_t rc = check_header(data, len, max_message, error);
    if (rc != MQC_WIRE_MSG) return rc;
    size_t mlen = (size_t) rd_i32(data);
    if (len < mlen) return MQC_WIRE_NEED_MORE;
    msg->hdr.length = rd_i32(data);
    msg->hdr.request_id = rd_i32(data + 4);
    msg->hdr.response_to = rd_i32(data + 8);
    msg->hdr.opcode = rd_i32(data + 12);
    msg->flags = 0;
    msg->n_seqs = 0;
    msg->cursor_id = 0;
    msg->number_returned = 0;
    bool ok = msg->hdr.opcode == MQC_OP_MSG ? decode_op_msg(data, mlen, verify_crc, msg, error)
                                            : decode_op_reply(data, mlen, msg, error);
    if (!ok) return MQC_WIRE_ERROR;
    *consumed = mlen;
    return MQC_WIRE_MSG;
}

/* The length and opcode checks alone, for the reader (lib/wire_reader.c), which runs them as
 * soon as a length prefix has arrived. */
mqc_wire_rc_t mqc_wire_check_header(const uint8_t *data, size_t len, int32_t max_message, mqc_error_t *error)
{
    return check_header(data, len, max_message, error);
}

/* ---- encoding ------------------------------------------------------------------------- */

/* mqc_buf_t holds only data/len/cap, yet seq_end and end must find where their sequence and
 * message start. The offsets ride in the buffer's spare capacity, just past len: every encoder
 * call loads them from there, appends, and stores them again past the new len (mqc_buf_reserve
 * uses realloc, which keeps spare bytes). Nothing else appends to the buffer between begin and
 * end, so they cannot be overwritten. The magic word catches calls outside begin/end. */
#define ENC_MAGIC 0x4D51434Du /* "MQCM" */

typedef struct {
    uint32_t magic;
    uint32_t flags;
    size_t msg;   /* offset of the message header */
    size_t seq;   /* offset of the open kind-1 section's kind byte, or SIZE_MAX */
} enc_state_t;

static enc_state_t enc_load(const mqc_buf_t *b, const char *fn)
{
    enc_state_t st;
    if (b->cap - b->len < sizeof st) wire_abort("%s outside mqc_wire_msg_begin/_end", fn);
    memcpy(&st, b->data + b->len, sizeof st);
    if (st.magic != ENC_MAGIC) wire_abort("%s outside mqc_wire_msg_begin/_end", fn);
    return st;
}

static void enc_store(mqc_buf_t *b, const enc_state_t *st)
{
    mqc_buf_reserve(b, sizeof *st);
    memcpy(b->data + b->len, st, sizeof *st);
}

void mqc_wire_msg_begin(mqc_buf_t *b, int32_t request_id, uint32_t flags)
{
    enc_state_t st = {ENC_MAGIC, flags, b->len, SIZE_MAX};
    /* One reservation for the header, flagBits and the state: this runs for every request. */
    if (b->cap - b->len < MQC_WIRE_HEADER_LEN + 4 + sizeof st) mqc_buf_reserve(b, MQC_WIRE_HEADER_LEN + 4 + sizeof st);
    uint8_t *p = b->data + b->len;
    wr_u32(p, 0); /* messageLength, patched by _end */
    wr_u32(p + 4, (uint32_t) request_id);
    wr_u32(p + 8, 0); /* responseTo */
    wr_u32(p + 12, MQC_OP_MSG);
    wr_u32(p + 16, flags);
    b->len += MQC_WIRE_HEADER_LEN + 4;
    memcpy(b->data + b->len, &st, sizeof st);
}

void mqc_wire_msg_body_raw(mqc_buf_t *b, const uint8_t *bson, size_t len)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_body");
    if (st.seq != SIZE_MAX) wire_abort("mqc_wire_msg_body inside a document sequence");
    buf_append_u8(b, 0);
    mqc_buf_append(b, bson, len);
    enc_store(b, &st);
}

void mqc_wire_msg_body(mqc_buf_t *b, const bson_t *body)
{
    mqc_wire_msg_body_raw(b, bson_get_data(body), body->len);
}

void mqc_wire_msg_body_ext(mqc_buf_t *b, const bson_t *body, const uint8_t *ext, size_t ext_len)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_body");
    if (st.seq != SIZE_MAX) wire_abort("mqc_wire_msg_body inside a document sequence");
    size_t blen = body->len, len = blen + ext_len;
    if (len > INT32_MAX) wire_abort("body of %zu bytes", len);
    /* One reservation and straight copies: this runs for every operation with a session. */
    if (b->cap - b->len < 1 + len + sizeof st) mqc_buf_reserve(b, 1 + len + sizeof st);
    uint8_t *p = b->data + b->len;
    p[0] = 0; /* section kind 0 */
    wr_u32(p + 1, (uint32_t) len);
    memcpy(p + 5, bson_get_data(body) + 4, blen - 5);
    memcpy(p + blen, ext, ext_len);
    p[len] = 0;
    b->len += 1 + len;
    memcpy(b->data + b->len, &st, sizeof st); /* reserved above: enc_store without its check */
}

size_t mqc_wire_msg_command(mqc_buf_t *b, int32_t request_id, uint32_t flags, const bson_t *body, const uint8_t *ext,
                            size_t ext_len)
{
    /* begin + body_ext + end in one: one reservation, the header written with its length, no
     * encoder state to store and load (every command without an encoder of its own passes
     * here). The bytes are those of the three calls. */
    size_t blen = body->len, len = blen + ext_len, crc = flags & MQC_MSG_CHECKSUM_PRESENT ? 4 : 0;
    if (len > INT32_MAX - (MQC_WIRE_HEADER_LEN + 4 + 1 + 4)) wire_abort("body of %zu bytes", len);
    size_t total = MQC_WIRE_HEADER_LEN + 4 + 1 + len + crc;
    if (b->cap - b->len < total) mqc_buf_reserve(b, total);
    uint8_t *p = b->data + b->len;
    wr_u32(p, (uint32_t) total);
    wr_u32(p + 4, (uint32_t) request_id);
    wr_u32(p + 8, 0); /* responseTo */
    wr_u32(p + 12, MQC_OP_MSG);
    wr_u32(p + 16, flags);
    p[20] = 0; /* section kind 0 */
    wr_u32(p + 21, (uint32_t) len);
    memcpy(p + 25, bson_get_data(body) + 4, blen - 5);
    if (ext_len >= 32 && ext_len <= 64) {
        /* A session's elements (36 or 55 bytes): two fixed 32-byte copies that overlap, inline,
         * rather than a call to memcpy. */
        memcpy(p + 20 + blen, ext, 32);
        memcpy(p + 20 + len - 32, ext + ext_len - 32, 32);
    } else if (ext_len) {
        memcpy(p + 20 + blen, ext, ext_len);
    }
    p[20 + len] = 0;
    if (crc) wr_u32(p + total - 4, mqc_crc32c(0, p, total - 4));
    b->len += total;
    return total;
}

void mqc_wire_msg_seq_begin(mqc_buf_t *b, const char *identifier)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_seq_begin");
    if (st.seq != SIZE_MAX) wire_abort("mqc_wire_msg_seq_begin inside a document sequence");
    st.seq = b->len;
    buf_append_u8(b, 1);
    buf_append_u32(b, 0); /* size, patched by _seq_end */
    mqc_buf_append(b, identifier, strlen(identifier) + 1);
    enc_store(b, &st);
}

void mqc_wire_msg_seq_add(mqc_buf_t *b, const uint8_t *bson, size_t len)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_seq_add");
    if (st.seq == SIZE_MAX) wire_abort("mqc_wire_msg_seq_add outside a document sequence");
    mqc_buf_append(b, bson, len);
    enc_store(b, &st);
}

void mqc_wire_msg_seq_end(mqc_buf_t *b)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_seq_end");
    if (st.seq == SIZE_MAX) wire_abort("mqc_wire_msg_seq_end without mqc_wire_msg_seq_begin");
    size_t size = b->len - (st.seq + 1);
    if (size > INT32_MAX) wire_abort("document sequence of %zu bytes", size);
    wr_u32(b->data + st.seq + 1, (uint32_t) size);
    st.seq = SIZE_MAX;
    enc_store(b, &st);
}

size_t mqc_wire_msg_end(mqc_buf_t *b)
{
    enc_state_t st = enc_load(b, "mqc_wire_msg_end");
    if (st.seq != SIZE_MAX) wire_abort("mqc_wire_msg_end with a document sequence open");
    bool crc = st.flags & MQC_MSG_CHECKSUM_PRESENT;
    size_t total = b->len - st.msg + (crc ? 4 : 0);
    if (total > INT32_MAX) wire_abort("message of %zu bytes", total);
    memset(b->data + b->len, 0, sizeof st); /* a later call without begin must not find state */
    wr_u32(b->data + st.msg, (uint32_t) total);
    if (crc) buf_append_u32(b, mqc_crc32c(0, b->data + st.msg, total - 4));
    return total;
}

void mqc_wire_query_command(mqc_buf_t *b, int32_t request_id, const char *db, const bson_t *cmd)
{
    size_t start = b->len;
    buf_append_u32(b, 0); /* messageLength, patched below */
    buf_append_u32(b, (uint32_t) request_id);
    buf_append_u32(b, 0);
    buf_append_u32(b, MQC_OP_QUERY);
    buf_append_u32(b, 0); /* flags */
    mqc_buf_append(b, db, strlen(db));
    mqc_buf_append(b, ".$cmd", 6); /* with its NUL */
    buf_append_u32(b, 0);                 /* numberToSkip */
    buf_append_u32(b, (uint32_t) -1);     /* numberToReturn: one batch, close the cursor */
    mqc_buf_append(b, bson_get_data(cmd), cmd->len);
    size_t total = b->len - start;
    if (total > INT32_MAX) wire_abort("message of %zu bytes", total);
    wr_u32(b->data + start, (uint32_t) total);
}

/* ---- write batch splitting ------------------------------------------------------------ */

void mqc_wire_limits_default(mqc_wire_limits_t *lim)
{
    lim->max_bson_object_size = MQC_WIRE_DEFAULT_MAX_BSON;
    lim->max_message_size = MQC_WIRE_DEFAULT_MAX_MESSAGE;
    lim->max_write_batch_size = MQC_WIRE_DEFAULT_MAX_BATCH;
}

/* The allowance servers grant a write document above maxBsonObjectSize for command overhead
 * (the drivers' practice, e.g. an update statement's q and u around a maximal document). */
#define BSON_OVERHEAD_ALLOWANCE (16 * 1024)

size_t mqc_wire_batch_fit(const size_t *sizes, size_t n, size_t start, size_t body_len, size_t id_len,
                          const mqc_wire_limits_t *lim)
{
    if (start >= n) return 0;
    size_t max_doc = (size_t) (lim->max_bson_object_size > 0 ? lim->max_bson_object_size : MQC_WIRE_DEFAULT_MAX_BSON) +
                     BSON_OVERHEAD_ALLOWANCE;
    size_t max_msg = (size_t) (lim->max_message_size > 0 ? lim->max_message_size : MQC_WIRE_DEFAULT_MAX_MESSAGE);
    size_t max_count = (size_t) (lim->max_write_batch_size > 0 ? lim->max_write_batch_size : MQC_WIRE_DEFAULT_MAX_BATCH);
    if (sizes[start] > max_doc) return 0;
    /* header + flagBits + kind-0 section + kind-1 section head (kind, size, identifier, NUL),
     * and 4 bytes in case the message carries a checksum. */
    size_t used = MQC_WIRE_HEADER_LEN + 4 + 1 + body_len + 1 + 4 + id_len + 1 + 4;
    size_t count = 0;
    for (size_t i = start; i < n && count < max_count; i++) {
        /* A later document that is too large ends the batch: the next call reports it. */
        if (sizes[i] > max_doc) break;
        if (count > 0 && (sizes[i] > max_msg || used + sizes[i] > max_msg)) break;
        used += sizes[i];
        count++;
    }
    return count;
}
