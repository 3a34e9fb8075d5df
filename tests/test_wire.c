/* Tests of lib/wire.c: the codec, the reader's checks and buffer management, batch splitting. */
#include <bson/bson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"
#include "tf.h"
#include "wire.h"

/* ---- helpers -------------------------------------------------------------------------- */

static void put_u32(mqc_buf_t *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24)};
    mqc_buf_append(b, t, 4);
}

static void put_u8(mqc_buf_t *b, uint8_t v) { mqc_buf_append(b, &v, 1); }

static void put_doc(mqc_buf_t *b, const bson_t *d) { mqc_buf_append(b, bson_get_data(d), d->len); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void set_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

/* A hand-made message: header with a placeholder length, fixed by raw_done. */
static void raw_hdr(mqc_buf_t *b, int32_t opcode)
{
    mqc_buf_reset(b);
    put_u32(b, 0);
    put_u32(b, 11);
    put_u32(b, 22);
    put_u32(b, (uint32_t) opcode);
}

static void raw_done(mqc_buf_t *b) { set_u32(b->data, (uint32_t) b->len); }

static void mkdoc(bson_t *d, int i)
{
    bson_init(d);
    BSON_APPEND_INT32(d, "i", i);
    BSON_APPEND_UTF8(d, "s", "some text");
}

/* Decodes b alone with a fresh reader; returns the rc and, on error, the message. */
static mqc_wire_rc_t decode_once(const mqc_buf_t *b, char *errmsg, size_t errlen)
{
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_error_clear(&err);
    mqc_wire_reader_feed(r, b->data, b->len);
    mqc_wire_rc_t rc = mqc_wire_reader_next(r, &msg, &err);
    if (rc == MQC_WIRE_ERROR) {
        ASSERT_EQ(err.domain, MQC_ERROR_PROTOCOL);
        snprintf(errmsg, errlen, "%s", err.message);
    } else {
        errmsg[0] = 0;
    }
    mqc_wire_reader_destroy(r);
    return rc;
}

#define ASSERT_DECODE_ERROR(b, needle)                                                  \
    do {                                                                                \
        char em_[sizeof(((mqc_error_t *) 0)->message)];                                                                  \
        ASSERT_EQ(decode_once((b), em_, sizeof em_), MQC_WIRE_ERROR);                   \
        ASSERT_STR_CONTAINS(em_, needle);                                               \
    } while (0)

/* Touches every element of a document, recursively: what a caller may do with a reply. */
static size_t walk(const bson_t *doc, int depth)
{
    bson_iter_t it;
    size_t n = 0;
    if (depth > 100 || !bson_iter_init(&it, doc)) return n;
    while (bson_iter_next(&it)) {
        n++;
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t sub;
            if (BSON_ITER_HOLDS_DOCUMENT(&it)) bson_iter_document(&it, &len, &data);
            else bson_iter_array(&it, &len, &data);
            if (data && bson_init_static(&sub, data, len)) n += walk(&sub, depth + 1);
        } else if (BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t len;
            const char *s = bson_iter_utf8(&it, &len);
            for (uint32_t i = 0; i < len; i++) n += (unsigned char) s[i] == 0xFF;
        }
    }
    return n;
}

/* ---- CRC-32C -------------------------------------------------------------------------- */

TEST("/wire/crc32c/vectors", wire_crc32c_vectors)
{
    ASSERT_EQ(mqc_crc32c(0, "123456789", 9), 0xE3069283u);
    ASSERT_EQ(mqc_crc32c(0, "", 0), 0u);
    /* RFC 3720 (iSCSI) B.4 vectors. */
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    ASSERT_EQ(mqc_crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xFF, sizeof buf);
    ASSERT_EQ(mqc_crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t) i;
    ASSERT_EQ(mqc_crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t) (31 - i);
    ASSERT_EQ(mqc_crc32c(0, buf, 32), 0x113FDB5Cu);
    /* Incremental: any split gives the same value (exercises the 8-byte and byte loops). */
    for (size_t k = 0; k <= 9; k++)
        ASSERT_EQ(mqc_crc32c(mqc_crc32c(0, "123456789", k), "123456789" + k, 9 - k), 0xE3069283u);
}

/* Bit by bit, from the definition: the reference for both implementations. */
static uint32_t crc32c_ref(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

TEST("/wire/crc32c/reference", wire_crc32c_reference)
{
    uint8_t buf[1031];
    uint32_t seed = 7;
    for (size_t i = 0; i < sizeof buf; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t) (seed >> 16);
    }
    /* Every length and misalignment up to a few words, then longer runs. */
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len + off <= 64; len++) {
            ASSERT_EQ(mqc_crc32c(0, buf + off, len), crc32c_ref(buf + off, len));
            ASSERT_EQ(mqc_crc32c_portable(0, buf + off, len), crc32c_ref(buf + off, len));
        }
    ASSERT_EQ(mqc_crc32c(0, buf, sizeof buf), crc32c_ref(buf, sizeof buf));
    ASSERT_EQ(mqc_crc32c_portable(0, buf, sizeof buf), crc32c_ref(buf, sizeof buf));
    ASSERT_EQ(mqc_crc32c(mqc_crc32c(0, buf, 333), buf + 333, sizeof buf - 333), crc32c_ref(buf, sizeof buf));
    ASSERT_EQ(mqc_crc32c_portable(mqc_crc32c_portable(0, buf, 333), buf + 333, sizeof buf - 333),
              crc32c_ref(buf, sizeof buf));
    ASSERT_EQ(mqc_crc32c_portable(0, "123456789", 9), 0xE3069283u);
}

/* ---- buffer --------------------------------------------------------------------------- */

TEST("/wire/buf/basics", wire_buf_basics)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    ASSERT_EQ(b.len, 0);
    for (int i = 0; i < 1000; i++) mqc_buf_append(&b, "abc", 3);
    ASSERT_EQ(b.len, 3000);
    ASSERT_GE(b.cap, 3000);
    ASSERT(memcmp(b.data + 2997, "abc", 3) == 0);
    size_t cap = b.cap;
    mqc_buf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_EQ(b.cap, cap);
    mqc_buf_reserve(&b, cap + 1);
    ASSERT_GE(b.cap, cap + 1);
    mqc_buf_free(&b);
    ASSERT_NULL(b.data);
    mqc_buf_free(&b);
}

/* ---- round trips ---------------------------------------------------------------------- */

TEST("/wire/roundtrip/body", wire_roundtrip_body)
{
    mqc_buf_t b;
    bson_t cmd;
    mqc_buf_init(&b);
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "hello", 1);
    BSON_APPEND_UTF8(&cmd, "$db", "admin");
    mqc_wire_msg_begin(&b, 77, 0);
    mqc_wire_msg_body(&b, &cmd);
    size_t total = mqc_wire_msg_end(&b);
    ASSERT_EQ(total, b.len);
    ASSERT_EQ(total, 16 + 4 + 1 + cmd.len);
    ASSERT_EQ(get_u32(b.data), total);
    ASSERT_EQ(get_u32(b.data + 12), MQC_OP_MSG);

    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, b.data, b.len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.length, (int32_t) total);
    ASSERT_EQ(msg.hdr.request_id, 77);
    ASSERT_EQ(msg.hdr.response_to, 0);
    ASSERT_EQ(msg.hdr.opcode, MQC_OP_MSG);
    ASSERT_EQ(msg.flags, 0);
    ASSERT_EQ(msg.n_seqs, 0);
    ASSERT(bson_equal(&msg.body, &cmd));
    ASSERT_EQ(mqc_wire_reader_pending(r), 0);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
    mqc_wire_reader_destroy(r);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

TEST("/wire/roundtrip/sequences", wire_roundtrip_sequences)
{
    mqc_buf_t b;
    bson_t cmd, docs[3];
    mqc_buf_init(&b);
    mqc_buf_append(&b, "prefix", 6); /* messages are appended at b->len */
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", "coll");
    BSON_APPEND_UTF8(&cmd, "$db", "db");
    for (int i = 0; i < 3; i++) mkdoc(&docs[i], i);
    mqc_wire_msg_begin(&b, 5, MQC_MSG_MORE_TO_COME);
    mqc_wire_msg_seq_begin(&b, "documents");
    for (int i = 0; i < 3; i++) mqc_wire_msg_seq_add(&b, bson_get_data(&docs[i]), docs[i].len);
    mqc_wire_msg_seq_end(&b);
    mqc_wire_msg_body(&b, &cmd); /* sections may come in any order */
    mqc_wire_msg_seq_begin(&b, "updates");
    mqc_wire_msg_seq_end(&b); /* an empty sequence */
    size_t total = mqc_wire_msg_end(&b);
    ASSERT_EQ(total + 6, b.len);
    /* A second message in the same buffer, with a raw body. */
    mqc_wire_msg_begin(&b, 6, 0);
    mqc_wire_msg_body_raw(&b, bson_get_data(&cmd), cmd.len);
    size_t total2 = mqc_wire_msg_end(&b);
    ASSERT_EQ(6 + total + total2, b.len);

    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, b.data + 6, b.len - 6);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 5);
    ASSERT_EQ(msg.flags, MQC_MSG_MORE_TO_COME);
    ASSERT(bson_equal(&msg.body, &cmd));
    ASSERT_EQ(msg.n_seqs, 2);
    ASSERT_STR_EQ(msg.seqs[0].identifier, "documents");
    ASSERT_EQ(msg.seqs[0].count, 3);
    ASSERT_STR_EQ(msg.seqs[1].identifier, "updates");
    ASSERT_EQ(msg.seqs[1].count, 0);
    ASSERT_EQ(msg.seqs[1].len, 0);
    const uint8_t *p = msg.seqs[0].docs;
    for (int i = 0; i < 3; i++) {
        bson_t d;
        ASSERT(bson_init_static(&d, p, get_u32(p)));
        ASSERT(bson_equal(&d, &docs[i]));
        p += d.len;
    }
    ASSERT(p == msg.seqs[0].docs + msg.seqs[0].len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 6);
    ASSERT(bson_equal(&msg.body, &cmd));
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
    mqc_wire_reader_destroy(r);
    for (int i = 0; i < 3; i++) bson_destroy(&docs[i]);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

static void build_checksummed(mqc_buf_t *b, bson_t *cmd)
{
    bson_init(cmd);
    BSON_APPEND_INT32(cmd, "ping", 1);
    BSON_APPEND_INT32(cmd, "value", 0x01020304);
    mqc_buf_init(b);
    mqc_wire_msg_begin(b, 9, MQC_MSG_CHECKSUM_PRESENT);
    mqc_wire_msg_body(b, cmd);
    mqc_wire_msg_end(b);
}

TEST("/wire/roundtrip/checksum", wire_roundtrip_checksum)
{
    mqc_buf_t b;
    bson_t cmd;
    build_checksummed(&b, &cmd);
    ASSERT_EQ(b.len, 16 + 4 + 1 + cmd.len + 4);
    ASSERT_EQ(get_u32(b.data + b.len - 4), mqc_crc32c(0, b.data, b.len - 4));
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, b.data, b.len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.flags, MQC_MSG_CHECKSUM_PRESENT);
    ASSERT(bson_equal(&msg.body, &cmd));
    mqc_wire_reader_destroy(r);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

TEST("/wire/reader/checksum_bad", wire_reader_checksum_bad)
{
    mqc_buf_t b;
    bson_t cmd;
    build_checksummed(&b, &cmd);
    /* Change a byte of the int32 value: the structure stays valid, only the checksum tells. */
    uint8_t *v = memmem(b.data, b.len, "\x04\x03\x02\x01", 4);
    ASSERT_NOT_NULL(v);
    v[0] ^= 0x40;
    ASSERT_DECODE_ERROR(&b, "checksum mismatch");
    /* With verification off the message is accepted, checksum bytes excluded from sections. */
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_reader_set_verify_crc(r, false);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, b.data, b.len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.body.len, cmd.len);
    mqc_wire_reader_destroy(r);
    /* Checksum flag on a message too short to hold one. */
    raw_hdr(&b, MQC_OP_MSG);
    put_u32(&b, MQC_MSG_CHECKSUM_PRESENT);
    put_u8(&b, 0);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "too short for flagBits and its checksum");
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

TEST("/wire/query/command", wire_query_command)
{
    mqc_buf_t b;
    bson_t cmd;
    mqc_buf_init(&b);
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "isMaster", 1);
    mqc_wire_query_command(&b, 42, "admin", &cmd);
    ASSERT_EQ(b.len, 16 + 4 + 11 + 4 + 4 + cmd.len);
    ASSERT_EQ(get_u32(b.data), b.len);
    ASSERT_EQ(get_u32(b.data + 4), 42);
    ASSERT_EQ(get_u32(b.data + 8), 0);
    ASSERT_EQ(get_u32(b.data + 12), MQC_OP_QUERY);
    ASSERT_EQ(get_u32(b.data + 16), 0);
    ASSERT(memcmp(b.data + 20, "admin.$cmd", 11) == 0);
    ASSERT_EQ(get_u32(b.data + 31), 0);
    ASSERT_EQ((int32_t) get_u32(b.data + 35), -1);
    ASSERT(memcmp(b.data + 39, bson_get_data(&cmd), cmd.len) == 0);
    /* Our own reader refuses OP_QUERY: servers never send it. */
    ASSERT_DECODE_ERROR(&b, "opcode 2004 is not OP_MSG");
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

/* ---- reader: incremental input -------------------------------------------------------- */

static void build_seq_msg(mqc_buf_t *b, int32_t rid)
{
    bson_t cmd, d;
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", "c");
    BSON_APPEND_INT32(&cmd, "rid", rid);
    mqc_wire_msg_begin(b, rid, 0);
    mqc_wire_msg_body(b, &cmd);
    mqc_wire_msg_seq_begin(b, "documents");
    for (int i = 0; i < 2; i++) {
        mkdoc(&d, i);
        mqc_wire_msg_seq_add(b, bson_get_data(&d), d.len);
        bson_destroy(&d);
    }
    mqc_wire_msg_seq_end(b);
    mqc_wire_msg_end(b);
    bson_destroy(&cmd);
}

TEST("/wire/reader/bytewise", wire_reader_bytewise)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_seq_msg(&b, 3);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    for (size_t i = 0; i < b.len; i++) {
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
        size_t avail;
        uint8_t *p = mqc_wire_reader_space(r, 1, &avail);
        ASSERT_GE(avail, 1);
        *p = b.data[i];
        mqc_wire_reader_commit(r, 1);
        ASSERT_EQ(mqc_wire_reader_pending(r), i + 1 < b.len ? i + 1 : b.len);
    }
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 3);
    ASSERT_EQ(msg.n_seqs, 1);
    ASSERT_EQ(msg.seqs[0].count, 2);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
    mqc_wire_reader_destroy(r);
    mqc_buf_free(&b);
}

TEST("/wire/reader/two_messages", wire_reader_two_messages)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_seq_msg(&b, 1);
    size_t one = b.len;
    build_seq_msg(&b, 2);
    build_seq_msg(&b, 3);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    /* Two whole messages and half of the third in one feed. */
    mqc_wire_reader_feed(r, b.data, 2 * one + one / 2);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 1);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 2);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
    ASSERT_EQ(mqc_wire_reader_pending(r), one / 2);
    mqc_wire_reader_feed(r, b.data + 2 * one + one / 2, one - one / 2);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.request_id, 3);
    ASSERT_EQ(mqc_wire_reader_pending(r), 0);
    mqc_wire_reader_destroy(r);
    mqc_buf_free(&b);
}

/* ---- reader: the length prefix -------------------------------------------------------- */

/* Feeds only the 4 length bytes: the error must come without waiting for the rest. */
static void expect_length_error(int32_t max, int32_t length, const char *needle)
{
    uint8_t four[4];
    set_u32(four, (uint32_t) length);
    mqc_wire_reader_t *r = mqc_wire_reader_new(max);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, four, 4);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_EQ(err.domain, MQC_ERROR_PROTOCOL);
    ASSERT_STR_CONTAINS(err.message, needle);
    mqc_wire_reader_destroy(r);
}

TEST("/wire/reader/length_below_header", wire_reader_length_below_header)
{
    expect_length_error(0, 0, "message length 0 is below the 16-byte header");
    expect_length_error(0, 5, "message length 5 is below the 16-byte header");
    expect_length_error(0, 15, "message length 15 is below the 16-byte header");
    expect_length_error(0, -1, "message length -1 is below the 16-byte header");
    expect_length_error(0, INT32_MIN, "is below the 16-byte header");
}

TEST("/wire/reader/length_16", wire_reader_length_16)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    raw_hdr(&b, MQC_OP_MSG);
    raw_done(&b);
    ASSERT_EQ(b.len, 16);
    ASSERT_DECODE_ERROR(&b, "OP_MSG of 16 bytes is too short for its flagBits");
    raw_hdr(&b, MQC_OP_REPLY);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "OP_REPLY of 16 bytes is shorter than its 36-byte");
    mqc_buf_free(&b);
}

TEST("/wire/reader/length_above_max", wire_reader_length_above_max)
{
    expect_length_error(0, 60000000, "message length 60000000 exceeds maxMessageSizeBytes 48000000");
    expect_length_error(0, MQC_WIRE_DEFAULT_MAX_MESSAGE + 1, "exceeds maxMessageSizeBytes 48000000");
    expect_length_error(1000, 1001, "message length 1001 exceeds maxMessageSizeBytes 1000");
    expect_length_error(1000, INT32_MAX, "exceeds maxMessageSizeBytes 1000");
    /* Exactly the maximum is fine: the reader waits for the body. */
    uint8_t four[4];
    set_u32(four, 1000);
    mqc_wire_reader_t *r = mqc_wire_reader_new(1000);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, four, 4);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
    /* set_max applies to the next look at the header. */
    mqc_wire_reader_set_max(r, 999);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "exceeds maxMessageSizeBytes 999");
    mqc_wire_reader_destroy(r);
}

TEST("/wire/reader/length_error_in_space", wire_reader_length_error_in_space)
{
    /* A caller that keeps reading without asking for messages: space() sees the bad length and
     * does not grow the buffer for it. */
    uint8_t four[4];
    set_u32(four, 0x7FFFFFFF);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_reader_feed(r, four, 4);
    size_t avail;
    mqc_wire_reader_space(r, 16384, &avail);
    ASSERT_LE(mqc_wire_reader_capacity(r), 65536);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "message length 2147483647 exceeds");
    mqc_wire_reader_destroy(r);
}

TEST("/wire/reader/garbage", wire_reader_garbage)
{
    const char *http = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, http, strlen(http));
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "exceeds maxMessageSizeBytes");
    mqc_wire_reader_destroy(r);

    /* A plausible length followed by junk: the opcode is refused from the 16th byte on. */
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t) (i * 37 + 11);
    set_u32(junk, 64);
    r = mqc_wire_reader_new(0);
    mqc_wire_reader_feed(r, junk, 16);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "is not OP_MSG (2013) or OP_REPLY (1)");
    mqc_wire_reader_destroy(r);

    /* Random bytes, random chunking: never a crash, never a message out of nothing valid. */
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        uint8_t blob[300];
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        n = 1 + (seed >> 16) % sizeof blob;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            blob[i] = (uint8_t) (seed >> 16);
        }
        /* Half the rounds get a length that fits, to reach the section parser. */
        if (round & 1) set_u32(blob, (uint32_t) n);
        if ((round & 3) == 1 && n >= 16) set_u32(blob + 12, MQC_OP_MSG);
        if ((round & 3) == 3 && n >= 16) set_u32(blob + 12, MQC_OP_REPLY);
        r = mqc_wire_reader_new(0);
        mqc_wire_rc_t rc = MQC_WIRE_NEED_MORE;
        for (size_t off = 0; off < n && rc != MQC_WIRE_ERROR;) {
            seed = seed * 1103515245u + 12345u;
            size_t chunk = 1 + (seed >> 16) % 40;
            if (chunk > n - off) chunk = n - off;
            mqc_wire_reader_feed(r, blob + off, chunk);
            off += chunk;
            while ((rc = mqc_wire_reader_next(r, &msg, &err)) == MQC_WIRE_MSG) walk(&msg.body, 0);
        }
        mqc_wire_reader_destroy(r);
    }
}

/* ---- reader: OP_MSG structure --------------------------------------------------------- */

static void msg_head(mqc_buf_t *b, uint32_t flags)
{
    raw_hdr(b, MQC_OP_MSG);
    put_u32(b, flags);
}

TEST("/wire/reader/bad_section_kind", wire_reader_bad_section_kind)
{
    mqc_buf_t b;
    bson_t d;
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 7);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "OP_MSG section kind 7 is unknown");
    bson_destroy(&d);
    mqc_buf_free(&b);
}

TEST("/wire/reader/body_count", wire_reader_body_count)
{
    mqc_buf_t b;
    bson_t d;
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    msg_head(&b, 0); /* flags only, no section */
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "OP_MSG has no kind-0 section");
    msg_head(&b, 0); /* a sequence but no body */
    put_u8(&b, 1);
    put_u32(&b, 4 + 2 + d.len);
    mqc_buf_append(&b, "x", 2);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "OP_MSG has no kind-0 section");
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 0);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "more than one kind-0 section");
    bson_destroy(&d);
    mqc_buf_free(&b);
}

static void put_seq(mqc_buf_t *b, const char *id, const bson_t *d, int ndocs)
{
    put_u8(b, 1);
    put_u32(b, (uint32_t) (4 + strlen(id) + 1 + (size_t) ndocs * d->len));
    mqc_buf_append(b, id, strlen(id) + 1);
    for (int i = 0; i < ndocs; i++) put_doc(b, d);
}

TEST("/wire/reader/sequences_limits", wire_reader_sequences_limits)
{
    mqc_buf_t b;
    bson_t d;
    char em[sizeof(((mqc_error_t *) 0)->message)];
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    /* MQC_WIRE_MAX_SEQS sequences are fine, one more is not. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    for (int i = 0; i < MQC_WIRE_MAX_SEQS; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        put_seq(&b, id, &d, i);
    }
    raw_done(&b);
    ASSERT_EQ(decode_once(&b, em, sizeof em), MQC_WIRE_MSG);
    put_seq(&b, "extra", &d, 1);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "more than 4 document sequences");
    /* Identifiers: unique, non-empty. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_seq(&b, "documents", &d, 1);
    put_seq(&b, "documents", &d, 2);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "two document sequences named \"documents\"");
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_seq(&b, "", &d, 1);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "empty identifier");
    bson_destroy(&d);
    mqc_buf_free(&b);
}

TEST("/wire/reader/sequence_overrun", wire_reader_sequence_overrun)
{
    mqc_buf_t b;
    bson_t d;
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    /* The section's size runs past the message. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    put_u32(&b, 4 + 10 + d.len + 1);
    mqc_buf_append(&b, "documents", 10);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "kind-1 section of");
    ASSERT_DECODE_ERROR(&b, "overruns the message");
    /* A document runs past its section (though not past the message). */
    msg_head(&b, 0);
    put_u8(&b, 1);
    put_u32(&b, 4 + 10 + d.len - 1);
    mqc_buf_append(&b, "documents", 10);
    put_doc(&b, &d);
    put_u8(&b, 0);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "overruns its section");
    /* Size too small to hold anything, truncated size field, negative size. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    put_u32(&b, 4);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "kind-1 section size 4 is too small");
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    put_u32(&b, (uint32_t) -20);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "kind-1 section size -20 is too small");
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    mqc_buf_append(&b, "\x09\x00", 2);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "kind-1 section truncated");
    /* Identifier without its NUL inside the section. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    put_u32(&b, 4 + 9);
    mqc_buf_append(&b, "documents", 9);
    put_u8(&b, 0); /* a NUL, but outside the section: still an error */
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "identifier is not NUL-terminated");
    bson_destroy(&d);
    mqc_buf_free(&b);
}

TEST("/wire/reader/document_checks", wire_reader_document_checks)
{
    mqc_buf_t b;
    bson_t d;
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    /* Body length past the end of the message. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    raw_done(&b);
    set_u32(b.data + 21, d.len + 1);
    ASSERT_DECODE_ERROR(&b, "overruns its section");
    /* Last byte not NUL. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    raw_done(&b);
    b.data[b.len - 1] = 1;
    ASSERT_DECODE_ERROR(&b, "does not end with a NUL byte");
    /* Lengths below 5. */
    for (uint32_t n = 0; n < 5; n++) {
        msg_head(&b, 0);
        put_u8(&b, 0);
        put_u32(&b, n);
        put_u8(&b, 0);
        raw_done(&b);
        ASSERT_DECODE_ERROR(&b, "is below the minimum of 5");
    }
    /* Fewer than 4 bytes left for a length. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_u8(&b, 5);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "too few for a BSON document length");
    /* Trailing bytes after the body: parsed as a section, so refused. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 0);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "more than one kind-0 section");
    msg_head(&b, 0);
    put_u8(&b, 0);
    put_doc(&b, &d);
    put_u8(&b, 1);
    put_u8(&b, 1);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "kind-1 section truncated");
    /* The smallest valid message: empty body document. */
    msg_head(&b, 0);
    put_u8(&b, 0);
    mqc_buf_append(&b, "\x05\x00\x00\x00\x00", 5);
    raw_done(&b);
    char em[sizeof(((mqc_error_t *) 0)->message)];
    ASSERT_EQ(decode_once(&b, em, sizeof em), MQC_WIRE_MSG);
    bson_destroy(&d);
    mqc_buf_free(&b);
}

TEST("/wire/reader/flags", wire_reader_flags)
{
    mqc_buf_t b;
    bson_t d;
    char em[sizeof(((mqc_error_t *) 0)->message)];
    mqc_buf_init(&b);
    mkdoc(&d, 1);
    for (uint32_t bit = 2; bit < 16; bit++) {
        msg_head(&b, 1u << bit);
        put_u8(&b, 0);
        put_doc(&b, &d);
        raw_done(&b);
        char want[64];
        snprintf(want, sizeof want, "unknown required flag bits 0x%04x", 1u << bit);
        ASSERT_DECODE_ERROR(&b, want);
    }
    /* Optional bits (the high 16) are ignored; moreToCome is known. */
    msg_head(&b, MQC_MSG_EXHAUST_ALLOWED | (1u << 30) | MQC_MSG_MORE_TO_COME);
    put_u8(&b, 0);
    put_doc(&b, &d);
    raw_done(&b);
    ASSERT_EQ(decode_once(&b, em, sizeof em), MQC_WIRE_MSG);
    bson_destroy(&d);
    mqc_buf_free(&b);
}

/* ---- reader: opcodes ------------------------------------------------------------------ */

static void build_reply(mqc_buf_t *b, int32_t number_returned, int ndocs, const bson_t *d)
{
    raw_hdr(b, MQC_OP_REPLY);
    put_u32(b, 8);                  /* responseFlags: AwaitCapable */
    put_u32(b, 0x55667788);         /* cursorID, low */
    put_u32(b, 0x11223344);         /* cursorID, high */
    put_u32(b, 0);                  /* startingFrom */
    put_u32(b, (uint32_t) number_returned);
    for (int i = 0; i < ndocs; i++) put_doc(b, d);
    raw_done(b);
}

TEST("/wire/reader/op_reply", wire_reader_op_reply)
{
    mqc_buf_t b;
    bson_t d;
    mqc_buf_init(&b);
    mkdoc(&d, 9);
    build_reply(&b, 1, 1, &d);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, b.data, b.len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT_EQ(msg.hdr.opcode, MQC_OP_REPLY);
    ASSERT_EQ(msg.hdr.request_id, 11);
    ASSERT_EQ(msg.hdr.response_to, 22);
    ASSERT_EQ(msg.flags, 8);
    ASSERT_EQ(msg.cursor_id, 0x1122334455667788LL);
    ASSERT_EQ(msg.number_returned, 1);
    ASSERT_EQ(msg.n_seqs, 0);
    ASSERT(bson_equal(&msg.body, &d));
    mqc_wire_reader_destroy(r);
    char em[sizeof(((mqc_error_t *) 0)->message)];
    build_reply(&b, 3, 3, &d);
    ASSERT_EQ(decode_once(&b, em, sizeof em), MQC_WIRE_MSG);

    build_reply(&b, 0, 0, &d);
    ASSERT_DECODE_ERROR(&b, "numberReturned is 0");
    build_reply(&b, -3, 1, &d);
    ASSERT_DECODE_ERROR(&b, "numberReturned is -3");
    build_reply(&b, 2, 1, &d);
    ASSERT_DECODE_ERROR(&b, "numberReturned is 2 but the message holds 1 document(s)");
    build_reply(&b, INT32_MAX, 2, &d);
    ASSERT_DECODE_ERROR(&b, "holds 2 document(s)");
    build_reply(&b, 1, 2, &d);
    ASSERT_DECODE_ERROR(&b, "trailing byte(s) after its 1 document(s)");
    build_reply(&b, 1, 1, &d);
    b.data[b.len - 1] = 7;
    ASSERT_DECODE_ERROR(&b, "OP_REPLY: BSON document of");
    build_reply(&b, 1, 0, &d);
    put_u8(&b, 1);
    raw_done(&b);
    ASSERT_DECODE_ERROR(&b, "too few for a BSON document length");
    bson_destroy(&d);
    mqc_buf_free(&b);
}

TEST("/wire/reader/opcodes", wire_reader_opcodes)
{
    /* Refused from the header alone, before the body arrives. */
    const int32_t bad[] = {MQC_OP_COMPRESSED, MQC_OP_QUERY, 2001, 2005, 0, -1, 2014};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t hdr[16];
        set_u32(hdr, 100000);
        set_u32(hdr + 4, 1);
        set_u32(hdr + 8, 2);
        set_u32(hdr + 12, (uint32_t) bad[i]);
        mqc_wire_reader_t *r = mqc_wire_reader_new(0);
        mqc_wire_msg_t msg;
        mqc_error_t err;
        mqc_wire_reader_feed(r, hdr, 15);
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
        mqc_wire_reader_feed(r, hdr + 15, 1);
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
        if (bad[i] == MQC_OP_COMPRESSED)
            ASSERT_STR_CONTAINS(err.message, "OP_COMPRESSED message received, but compression was not negotiated");
        else
            ASSERT_STR_CONTAINS(err.message, "is not OP_MSG (2013) or OP_REPLY (1)");
        mqc_wire_reader_destroy(r);
    }
}

TEST("/wire/reader/sticky_error", wire_reader_sticky_error)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_reader_feed(r, "\x03\x00\x00\x00", 4);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "message length 3");
    build_seq_msg(&b, 1);
    for (int i = 0; i < 3; i++) {
        mqc_wire_reader_feed(r, b.data, b.len);
        size_t avail;
        uint8_t *p = mqc_wire_reader_space(r, 100, &avail);
        ASSERT_GE(avail, 100);
        memset(p, 0, 100);
        mqc_wire_reader_commit(r, 100);
        mqc_error_clear(&err);
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
        ASSERT_STR_CONTAINS(err.message, "message length 3 is below the 16-byte header");
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, NULL), MQC_WIRE_ERROR);
    }
    mqc_wire_reader_destroy(r);
    mqc_buf_free(&b);
}

/* ---- reader: inputs at the end of a guarded page -------------------------------------- */

/* For each message and each truncation of it, the bytes end exactly where the readable memory
 * ends: any read past them faults. Both the decoder (which works on the caller's bytes) and the
 * reader (fed from there) are run. */
TEST("/wire/reader/guard_page", wire_reader_guard_page)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t) page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(map != MAP_FAILED);
    ASSERT_EQ(mprotect(map + page, (size_t) page, PROT_NONE), 0);
    uint8_t *page_end = map + page;

    enum { N = 9 };
    mqc_buf_t msgs[N];
    mqc_wire_rc_t want[N];
    bson_t d, cmd;
    mkdoc(&d, 4);
    build_checksummed(&msgs[0], &cmd);
    want[0] = MQC_WIRE_MSG;
    for (int i = 1; i < N; i++) mqc_buf_init(&msgs[i]);
    build_seq_msg(&msgs[1], 1);
    want[1] = MQC_WIRE_MSG;
    build_reply(&msgs[2], 2, 2, &d);
    want[2] = MQC_WIRE_MSG;
    build_reply(&msgs[3], 3, 2, &d); /* numberReturned above the documents present */
    want[3] = MQC_WIRE_ERROR;
    build_seq_msg(&msgs[4], 2); /* last document's length pointing one byte past the message */
    set_u32(msgs[4].data + msgs[4].len - d.len, d.len + 1);
    want[4] = MQC_WIRE_ERROR;
    msg_head(&msgs[5], 0); /* identifier running to the very end, no NUL */
    put_u8(&msgs[5], 0);
    put_doc(&msgs[5], &d);
    put_u8(&msgs[5], 1);
    put_u32(&msgs[5], 4 + 6);
    mqc_buf_append(&msgs[5], "abcdef", 6);
    raw_done(&msgs[5]);
    want[5] = MQC_WIRE_ERROR;
    msg_head(&msgs[6], 0); /* body whose last byte (the message's last) is not NUL */
    put_u8(&msgs[6], 0);
    put_doc(&msgs[6], &d);
    raw_done(&msgs[6]);
    msgs[6].data[msgs[6].len - 1] = 'x';
    want[6] = MQC_WIRE_ERROR;
    msg_head(&msgs[7], 0); /* a section kind byte as the last byte */
    put_u8(&msgs[7], 0);
    put_doc(&msgs[7], &d);
    put_u8(&msgs[7], 1);
    raw_done(&msgs[7]);
    want[7] = MQC_WIRE_ERROR;
    build_reply(&msgs[8], 1, 1, &d); /* OP_REPLY whose document overruns by one */
    set_u32(msgs[8].data + 36, d.len + 1);
    want[8] = MQC_WIRE_ERROR;

    for (int i = 0; i < N; i++) {
        size_t len = msgs[i].len;
        ASSERT_LT(len, (size_t) page);
        for (size_t t = 0; t <= len; t++) {
            uint8_t *p = page_end - t;
            memcpy(p, msgs[i].data, t);
            mqc_wire_msg_t msg;
            mqc_error_t err;
            size_t used = 0;
            mqc_wire_rc_t rc = mqc_wire_decode(p, t, 0, true, &msg, &used, &err);
            if (t < len) ASSERT_MSG(rc == MQC_WIRE_NEED_MORE, "message %d truncated to %zu: rc %d", i, t, rc);
            else ASSERT_MSG(rc == want[i], "message %d: rc %d, want %d (%s)", i, rc, want[i], err.message);
            if (rc == MQC_WIRE_MSG) {
                ASSERT_EQ(used, len);
                walk(&msg.body, 0);
            }
            mqc_wire_reader_t *r = mqc_wire_reader_new(0);
            mqc_wire_reader_feed(r, p, t);
            ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), rc);
            mqc_wire_reader_destroy(r);
        }
    }
    for (int i = 0; i < N; i++) mqc_buf_free(&msgs[i]);
    bson_destroy(&d);
    bson_destroy(&cmd);
    munmap(map, (size_t) page * 2);
}

/* ---- reader: buffer management -------------------------------------------------------- */

/* Feeds like a connection: space(16 KiB), copy at most chunk bytes, commit. */
static void feed_like_conn(mqc_wire_reader_t *r, const uint8_t *p, size_t len, size_t chunk)
{
    while (len > 0) {
        size_t avail;
        uint8_t *dst = mqc_wire_reader_space(r, 16384, &avail);
        ASSERT_GE(avail, 16384);
        size_t n = len < avail ? len : avail;
        if (n > chunk) n = chunk;
        memcpy(dst, p, n);
        mqc_wire_reader_commit(r, n);
        p += n;
        len -= n;
    }
}

TEST("/wire/reader/growth_large", wire_reader_growth_large)
{
    mqc_buf_t b;
    bson_t cmd;
    size_t big = 10 * 1000 * 1000;
    uint8_t *blob = malloc(big);
    ASSERT_NOT_NULL(blob);
    for (size_t i = 0; i < big; i++) blob[i] = (uint8_t) (i * 7);
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "ok", 1);
    BSON_APPEND_BINARY(&cmd, "blob", BSON_SUBTYPE_BINARY, blob, (uint32_t) big);
    mqc_buf_init(&b);
    mqc_wire_msg_begin(&b, 1, 0);
    mqc_wire_msg_body(&b, &cmd);
    mqc_wire_msg_end(&b);

    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    ASSERT_EQ(mqc_wire_reader_capacity(r), 0); /* allocated on first use */
    feed_like_conn(r, b.data, 16, 16);
    ASSERT_EQ(mqc_wire_reader_capacity(r), 16384);
    /* The length is known: the next space covers the whole message at once. */
    size_t avail;
    mqc_wire_reader_space(r, 16384, &avail);
    ASSERT_GE(avail, b.len - 16);
    ASSERT_LE(mqc_wire_reader_capacity(r), b.len + 16384);
    size_t off = 16;
    while (off < b.len) {
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_NEED_MORE);
        size_t n = b.len - off < 65536 ? b.len - off : 65536;
        feed_like_conn(r, b.data + off, n, n);
        off += n;
    }
    ASSERT_LE(mqc_wire_reader_capacity(r), b.len + 16384);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT(bson_equal(&msg.body, &cmd));
    /* The message is a view into the reader's buffer, not a copy. */
    size_t avail2;
    uint8_t *space = mqc_wire_reader_space(r, 1, &avail2);
    ASSERT((const uint8_t *) bson_get_data(&msg.body) >= space - b.len &&
           (const uint8_t *) bson_get_data(&msg.body) < space + avail2);
    /* Small messages afterwards: the big buffer is given back after a few. */
    mqc_buf_t small;
    mqc_buf_init(&small);
    build_seq_msg(&small, 5);
    for (int i = 0; i < 6; i++) {
        feed_like_conn(r, small.data, small.len, small.len);
        ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
        ASSERT_EQ(msg.hdr.request_id, 5);
    }
    mqc_wire_reader_space(r, 16384, &avail);
    ASSERT_LE(mqc_wire_reader_capacity(r), 32768);
    mqc_buf_free(&small);
    mqc_wire_reader_destroy(r);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
    free(blob);
}

TEST("/wire/reader/shrink", wire_reader_shrink)
{
    mqc_buf_t b;
    bson_t cmd;
    mqc_buf_init(&b);
    bson_init(&cmd);
    uint8_t *blob = calloc(1, 300000);
    BSON_APPEND_BINARY(&cmd, "blob", BSON_SUBTYPE_BINARY, blob, 300000);
    mqc_wire_msg_begin(&b, 1, 0);
    mqc_wire_msg_body(&b, &cmd);
    mqc_wire_msg_end(&b);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    feed_like_conn(r, b.data, b.len, 65536);
    ASSERT_GE(mqc_wire_reader_capacity(r), b.len);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    mqc_wire_reader_shrink(r);
    ASSERT_EQ(mqc_wire_reader_capacity(r), 0);
    /* With a partial message pending, shrink keeps it. */
    feed_like_conn(r, b.data, b.len - 1, 65536);
    mqc_wire_reader_shrink(r);
    ASSERT_GE(mqc_wire_reader_capacity(r), b.len - 1);
    feed_like_conn(r, b.data + b.len - 1, 1, 1);
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_MSG);
    ASSERT(bson_equal(&msg.body, &cmd));
    mqc_wire_reader_destroy(r);
    free(blob);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

TEST("/wire/reader/compaction", wire_reader_compaction)
{
    /* 2,000 messages streamed in odd-sized chunks, taken as they complete: the partial message
     * left over moves to the front, the buffer never grows past its initial 16 KiB. */
    mqc_buf_t b;
    mqc_buf_init(&b);
    for (int32_t i = 0; i < 2000; i++) build_seq_msg(&b, i);
    mqc_wire_reader_t *r = mqc_wire_reader_new(0);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    int32_t next_id = 0;
    size_t off = 0, chunks[] = {777, 4093, 1, 13, 9000, 16384}, cap0 = 0;
    for (unsigned k = 0; off < b.len; k++) {
        size_t avail, n = chunks[k % 6];
        uint8_t *p = mqc_wire_reader_space(r, 1, &avail);
        if (n > avail) n = avail;
        if (n > b.len - off) n = b.len - off;
        memcpy(p, b.data + off, n);
        mqc_wire_reader_commit(r, n);
        off += n;
        mqc_wire_rc_t rc;
        while ((rc = mqc_wire_reader_next(r, &msg, &err)) == MQC_WIRE_MSG) {
            ASSERT_EQ(msg.hdr.request_id, next_id);
            bson_iter_t it;
            ASSERT(bson_iter_init_find(&it, &msg.body, "rid"));
            ASSERT_EQ(bson_iter_int32(&it), next_id);
            ASSERT_EQ(msg.seqs[0].count, 2);
            next_id++;
        }
        ASSERT_EQ(rc, MQC_WIRE_NEED_MORE);
        /* Small messages never make the buffer grow: it compacts instead. */
        if (!cap0) cap0 = mqc_wire_reader_capacity(r);
        ASSERT_EQ(mqc_wire_reader_capacity(r), cap0);
    }
    ASSERT_EQ(next_id, 2000);
    mqc_wire_reader_destroy(r);
    mqc_buf_free(&b);
}

TEST("/wire/reader/unconsumed_limit", wire_reader_unconsumed_limit)
{
    /* A peer that sends faster than messages are taken: bounded, then an error. */
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_seq_msg(&b, 1);
    mqc_wire_reader_t *r = mqc_wire_reader_new(1000);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    size_t fed = 0;
    while (fed < 4 * 1024 * 1024) {
        mqc_wire_reader_feed(r, b.data, b.len);
        fed += b.len;
        ASSERT_LE(mqc_wire_reader_capacity(r), 1000 + 1024 * 1024 + 65536);
    }
    ASSERT_EQ(mqc_wire_reader_next(r, &msg, &err), MQC_WIRE_ERROR);
    ASSERT_STR_CONTAINS(err.message, "ahead of the messages taken from the reader");
    mqc_wire_reader_destroy(r);
    mqc_buf_free(&b);
}

TEST("/wire/reader/mutations", wire_reader_mutations)
{
    /* Valid messages with random bytes changed: whatever the reader accepts, bson_iter walks
     * without reading out of bounds (ASan build). */
    mqc_buf_t b, m;
    bson_t d, cmd, sub;
    mqc_buf_init(&b);
    mqc_buf_init(&m);
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", "coll");
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "nested", &sub);
    BSON_APPEND_INT64(&sub, "n", 5);
    BSON_APPEND_UTF8(&sub, "s", "abc");
    bson_append_document_end(&cmd, &sub);
    mkdoc(&d, 3);
    mqc_wire_msg_begin(&b, 1, 0);
    mqc_wire_msg_body(&b, &cmd);
    mqc_wire_msg_seq_begin(&b, "documents");
    mqc_wire_msg_seq_add(&b, bson_get_data(&d), d.len);
    mqc_wire_msg_seq_end(&b);
    mqc_wire_msg_end(&b);
    uint32_t seed = 99;
    size_t accepted = 0;
    for (int round = 0; round < 20000; round++) {
        mqc_buf_reset(&m);
        mqc_buf_append(&m, b.data, b.len);
        int changes = 1 + round % 3;
        for (int k = 0; k < changes; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 20 + (seed >> 8) % (m.len - 20); /* keep the header: reach the body */
            seed = seed * 1103515245u + 12345u;
            m.data[at] = (uint8_t) (seed >> 16);
        }
        mqc_wire_msg_t msg;
        mqc_error_t err;
        size_t used;
        if (mqc_wire_decode(m.data, m.len, 0, false, &msg, &used, &err) == MQC_WIRE_MSG) {
            accepted++;
            walk(&msg.body, 0);
            for (size_t s = 0; s < msg.n_seqs; s++) {
                const uint8_t *p = msg.seqs[s].docs, *end = p + msg.seqs[s].len;
                while (p < end) {
                    bson_t doc;
                    ASSERT(bson_init_static(&doc, p, get_u32(p)));
                    walk(&doc, 0);
                    p += doc.len;
                }
            }
        }
    }
    tf_note("%zu of 20000 mutated messages accepted", accepted);
    ASSERT_GT(accepted, 0);
    bson_destroy(&d);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
    mqc_buf_free(&m);
}

/* ---- batch splitting ------------------------------------------------------------------ */

/* Size of the message for docs sizes[start..start+count) as mqc_wire_batch_fit counts it. */
static size_t msg_size(const size_t *sizes, size_t start, size_t count, size_t body, size_t id)
{
    size_t s = 16 + 4 + 1 + body + 1 + 4 + id + 1 + 4;
    for (size_t i = start; i < start + count; i++) s += sizes[i];
    return s;
}

TEST("/wire/batch_fit/count_limit", wire_batch_fit_count_limit)
{
    mqc_wire_limits_t lim;
    mqc_wire_limits_default(&lim);
    ASSERT_EQ(lim.max_bson_object_size, 16 * 1024 * 1024);
    ASSERT_EQ(lim.max_message_size, 48000000);
    ASSERT_EQ(lim.max_write_batch_size, 100000);
    size_t *sizes = malloc(250000 * sizeof *sizes);
    for (size_t i = 0; i < 250000; i++) sizes[i] = 50;
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 250000, 0, 100, 9, &lim), 100000);
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 250000, 200000, 100, 9, &lim), 50000);
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 250000, 250000, 100, 9, &lim), 0);
    lim.max_write_batch_size = 7;
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 250000, 3, 100, 9, &lim), 7);
    lim.max_write_batch_size = 0; /* unknown: the default */
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 250000, 0, 100, 9, &lim), 100000);
    free(sizes);
}

TEST("/wire/batch_fit/size_limit", wire_batch_fit_size_limit)
{
    mqc_wire_limits_t lim;
    mqc_wire_limits_default(&lim);
    size_t sizes[100];
    for (size_t i = 0; i < 100; i++) sizes[i] = 1000;
    lim.max_message_size = 10000;
    size_t k = mqc_wire_batch_fit(sizes, 100, 0, 200, 9, &lim);
    ASSERT_GE(k, 1);
    ASSERT_LE(msg_size(sizes, 0, k, 200, 9), 10000);
    ASSERT_GT(msg_size(sizes, 0, k + 1, 200, 9), 10000);
    ASSERT_EQ(k, 9);
    /* Exact boundary: a message of exactly max_message_size fits, one byte more does not. */
    size_t base = msg_size(sizes, 0, 0, 200, 9);
    lim.max_message_size = (int32_t) (base + 5 * 1000);
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 100, 0, 200, 9, &lim), 5);
    lim.max_message_size = (int32_t) (base + 5 * 1000 - 1);
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 100, 0, 200, 9, &lim), 4);
    /* The first document always goes, even when the message exceeds the limit: the server
     * answers with its own error, which is more telling than ours. */
    lim.max_message_size = 100;
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 100, 0, 200, 9, &lim), 1);
}

TEST("/wire/batch_fit/too_large", wire_batch_fit_too_large)
{
    mqc_wire_limits_t lim;
    mqc_wire_limits_default(&lim);
    size_t limit = 16 * 1024 * 1024 + 16 * 1024;
    size_t sizes[4] = {limit + 1, 10, 10, 10};
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 4, 0, 50, 9, &lim), 0);
    sizes[0] = limit; /* exactly the allowance: accepted */
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 4, 0, 50, 9, &lim), 4);
    /* A too-large document later ends the batch before it; the next call reports it. */
    size_t s2[5] = {10, 10, limit + 1, 10, 10};
    ASSERT_EQ(mqc_wire_batch_fit(s2, 5, 0, 50, 9, &lim), 2);
    ASSERT_EQ(mqc_wire_batch_fit(s2, 5, 2, 50, 9, &lim), 0);
    ASSERT_EQ(mqc_wire_batch_fit(s2, 5, 3, 50, 9, &lim), 2);
    lim.max_bson_object_size = 1000;
    size_t s3[2] = {1000 + 16 * 1024 + 1, 1};
    ASSERT_EQ(mqc_wire_batch_fit(s3, 2, 0, 50, 9, &lim), 0);
}

TEST("/wire/batch_fit/encoded_size", wire_batch_fit_encoded_size)
{
    /* What batch_fit counts is what the encoder writes (plus the checksum's 4 bytes). */
    mqc_buf_t b;
    bson_t cmd, d;
    mqc_buf_init(&b);
    bson_init(&cmd);
    BSON_APPEND_UTF8(&cmd, "insert", "coll");
    mkdoc(&d, 1);
    size_t sizes[3] = {d.len, d.len, d.len};
    mqc_wire_msg_begin(&b, 1, MQC_MSG_CHECKSUM_PRESENT);
    mqc_wire_msg_body(&b, &cmd);
    mqc_wire_msg_seq_begin(&b, "documents");
    for (int i = 0; i < 3; i++) mqc_wire_msg_seq_add(&b, bson_get_data(&d), d.len);
    mqc_wire_msg_seq_end(&b);
    size_t total = mqc_wire_msg_end(&b);
    ASSERT_EQ(total, msg_size(sizes, 0, 3, cmd.len, strlen("documents")));
    mqc_wire_limits_t lim;
    mqc_wire_limits_default(&lim);
    lim.max_message_size = (int32_t) total;
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 3, 0, cmd.len, strlen("documents"), &lim), 3);
    lim.max_message_size = (int32_t) total - 1;
    ASSERT_EQ(mqc_wire_batch_fit(sizes, 3, 0, cmd.len, strlen("documents"), &lim), 2);
    bson_destroy(&d);
    bson_destroy(&cmd);
    mqc_buf_free(&b);
}

TEST("/wire/msg_command/same_bytes", wire_msg_command_same_bytes)
{
    /* The one-call encoder writes what begin, body_ext and end write: every ext length around
     * its inline copies (a session's 36 and 55), each flag, after bytes already in the buffer. */
    static const size_t lens[] = {0, 1, 31, 32, 36, 55, 64, 65, 100};
    static const uint32_t flags[] = {0, MQC_MSG_MORE_TO_COME, MQC_MSG_CHECKSUM_PRESENT};
    uint8_t ext[100];
    for (size_t i = 0; i < sizeof ext; i++) ext[i] = (uint8_t) (0x10 ^ i); /* e.g. int32 elements */
    bson_t body;
    bson_init(&body);
    BSON_APPEND_UTF8(&body, "find", "coll");
    BSON_APPEND_INT32(&body, "limit", 1);
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            mqc_buf_t a, b;
            mqc_buf_init(&a);
            mqc_buf_init(&b);
            mqc_buf_append(&a, "xyz", 3);
            mqc_buf_append(&b, "xyz", 3);
            mqc_wire_msg_begin(&a, 7, flags[f]);
            mqc_wire_msg_body_ext(&a, &body, ext, lens[l]);
            size_t ta = mqc_wire_msg_end(&a);
            size_t tb = mqc_wire_msg_command(&b, 7, flags[f], &body, lens[l] ? ext : NULL, lens[l]);
            ASSERT_EQ(ta, tb);
            ASSERT_EQ(a.len, b.len);
            ASSERT(memcmp(a.data, b.data, a.len) == 0);
            mqc_buf_free(&a);
            mqc_buf_free(&b);
        }
    bson_destroy(&body);
}
