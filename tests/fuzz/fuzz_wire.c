// fuzz-sources: lib/wire.c lib/wire_reader.c lib/common.c
// fuzz-options: -max_len=8192
/* libFuzzer target for the wire reader (lib/wire.c).
 *
 * Input: two configuration bytes, then the bytes a "server" sends.
 *   byte 0: bit 0 verify checksums, bit 1 the default maxMessageSizeBytes (else 16 KiB), bit 2 feed with
 *           _feed instead of _space/_commit, bit 3 also render bodies as extended JSON,
 *           bit 4 take messages only now and then (several reads buffered, as a connection
 *           draining its socket does), bit 5 shrink the reader after each message, bit 6 read
 *           into a shared buffer offered for each wake-up (reads until messages are taken), as
 *           lib/conn.c's on_rio does, bit 7 with it, withdraw the offer after each message (the
 *           connection reading again from the message's callback): the message must not change
 *   byte 1: seed of the chunk sizes the stream is cut into
 * The stream is given to a reader in those chunks, taking messages after each one until it needs
 * more or fails. Every message is walked with bson_iter (recursively), re-encoded with the encoder
 * and decoded again (must give the same sections), and the first result is compared with the
 * stateless decoder run on the whole input at once. Any difference aborts. */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz_wire: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

static volatile size_t sink;

/* Reads every value the way a caller would; bson_iter must keep it within the document. */
static void walk(const bson_t *doc, int depth)
{
    bson_iter_t it;
    if (depth > 64 || !bson_iter_init(&it, doc)) return;
    while (bson_iter_next(&it)) {
        uint32_t len = 0;
        const uint8_t *p = NULL;
        bson_t sub;
        sink += strlen(bson_iter_key(&it));
        switch (bson_iter_type(&it)) {
        case BSON_TYPE_DOCUMENT:
            bson_iter_document(&it, &len, &p);
            if (p && bson_init_static(&sub, p, len)) walk(&sub, depth + 1);
            break;
        case BSON_TYPE_ARRAY:
            bson_iter_array(&it, &len, &p);
            if (p && bson_init_static(&sub, p, len)) walk(&sub, depth + 1);
            break;
        case BSON_TYPE_UTF8: {
            const char *s = bson_iter_utf8(&it, &len);
            for (uint32_t i = 0; i < len; i++) sink += (unsigned char) s[i];
            break;
        }
        case BSON_TYPE_BINARY: {
            bson_subtype_t st;
            bson_iter_binary(&it, &st, &len, &p);
            for (uint32_t i = 0; i < len; i++) sink += p[i];
            break;
        }
        case BSON_TYPE_CODE: {
            const char *s = bson_iter_code(&it, &len);
            for (uint32_t i = 0; i < len; i++) sink += (unsigned char) s[i];
            break;
        }
        case BSON_TYPE_SYMBOL: {
            const char *s = bson_iter_symbol(&it, &len);
            for (uint32_t i = 0; i < len; i++) sink += (unsigned char) s[i];
            break;
        }
        case BSON_TYPE_CODEWSCOPE: {
            uint32_t slen = 0;
            const uint8_t *scope = NULL;
            const char *s = bson_iter_codewscope(&it, &len, &slen, &scope);
            for (uint32_t i = 0; s && i < len; i++) sink += (unsigned char) s[i];
            if (scope && bson_init_static(&sub, scope, slen)) walk(&sub, depth + 1);
            break;
        }
        case BSON_TYPE_REGEX: {
            const char *opts = NULL;
            const char *re = bson_iter_regex(&it, &opts);
            sink += strlen(re) + strlen(opts);
            break;
        }
        case BSON_TYPE_DBPOINTER: {
            const char *coll = NULL;
            const bson_oid_t *oid = NULL;
            bson_iter_dbpointer(&it, &len, &coll, &oid);
            for (uint32_t i = 0; coll && i < len; i++) sink += (unsigned char) coll[i];
            if (oid) sink += oid->bytes[11];
            break;
        }
        case BSON_TYPE_OID: sink += bson_iter_oid(&it)->bytes[11]; break;
        case BSON_TYPE_DOUBLE: sink += (size_t) (bson_iter_double(&it) != 0); break;
        case BSON_TYPE_INT32: sink += (size_t) bson_iter_int32(&it); break;
        case BSON_TYPE_INT64: sink += (size_t) bson_iter_int64(&it); break;
        case BSON_TYPE_BOOL: sink += bson_iter_bool(&it); break;
        case BSON_TYPE_DATE_TIME: sink += (size_t) bson_iter_date_time(&it); break;
        case BSON_TYPE_TIMESTAMP: {
            uint32_t t, i;
            bson_iter_timestamp(&it, &t, &i);
            sink += t + i;
            break;
        }
        case BSON_TYPE_DECIMAL128: {
            bson_decimal128_t dec;
            if (bson_iter_decimal128(&it, &dec)) sink += (size_t) dec.low;
            break;
        }
        default: break;
        }
        /* What op.c does with replies: numbers by name, as_int64/as_bool on anything. */
        sink += (size_t) bson_iter_as_int64(&it) + bson_iter_as_bool(&it);
    }
}

static void walk_msg(const mqc_wire_msg_t *msg, bool json)
{
    walk(&msg->body, 0);
    if (json && msg->body.len < 4096) {
        char *s = bson_as_relaxed_extended_json(&msg->body, NULL);
        if (s) sink += strlen(s);
        bson_free(s);
    }
    for (size_t i = 0; i < msg->n_seqs; i++) {
        const mqc_wire_seq_t *seq = &msg->seqs[i];
        size_t off = 0, count = 0;
        sink += strlen(seq->identifier);
        while (off < seq->len) {
            bson_t d;
            uint32_t dlen;
            memcpy(&dlen, seq->docs + off, 4);
            dlen = BSON_UINT32_FROM_LE(dlen);
            CHECK(dlen <= seq->len - off);
            CHECK(bson_init_static(&d, seq->docs + off, dlen));
            walk(&d, 0);
            off += dlen;
            count++;
        }
        CHECK(off == seq->len);
        CHECK(count == seq->count);
    }
}

/* Encodes msg again as OP_MSG and decodes the result: the same body and sequences must come back. */
static void round_trip(const mqc_wire_msg_t *msg)
{
    mqc_buf_t b;
    mqc_wire_msg_t back;
    mqc_error_t err;
    size_t used = 0;
    uint32_t flags = msg->hdr.opcode == MQC_OP_MSG ? msg->flags : 0;
    mqc_buf_init(&b);
    mqc_wire_msg_begin(&b, msg->hdr.request_id, flags);
    for (size_t i = 0; i < msg->n_seqs; i++) {
        mqc_wire_msg_seq_begin(&b, msg->seqs[i].identifier);
        if (msg->seqs[i].len) mqc_wire_msg_seq_add(&b, msg->seqs[i].docs, msg->seqs[i].len);
        mqc_wire_msg_seq_end(&b);
    }
    mqc_wire_msg_body(&b, &msg->body);
    size_t total = mqc_wire_msg_end(&b);
    CHECK(total == b.len);
    mqc_wire_rc_t rc = mqc_wire_decode(b.data, b.len, INT32_MAX, true, &back, &used, &err);
    if (rc != MQC_WIRE_MSG) {
        fprintf(stderr, "fuzz_wire: re-encoded message refused: %s\n", err.message);
        abort();
    }
    CHECK(used == b.len);
    CHECK(back.flags == flags);
    CHECK(back.hdr.request_id == msg->hdr.request_id);
    CHECK(back.body.len == msg->body.len);
    CHECK(memcmp(bson_get_data(&back.body), bson_get_data(&msg->body), msg->body.len) == 0);
    CHECK(back.n_seqs == msg->n_seqs);
    for (size_t i = 0; i < msg->n_seqs; i++) {
        CHECK(strcmp(back.seqs[i].identifier, msg->seqs[i].identifier) == 0);
        CHECK(back.seqs[i].len == msg->seqs[i].len && back.seqs[i].count == msg->seqs[i].count);
        CHECK(msg->seqs[i].len == 0 || memcmp(back.seqs[i].docs, msg->seqs[i].docs, msg->seqs[i].len) == 0);
    }
    mqc_buf_free(&b);
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t cfg = size > 0 ? data[0] : 0;
    uint32_t seed = size > 1 ? data[1] * 2654435761u + 1 : 1;
    const uint8_t *in = size > 2 ? data + 2 : data + size;
    size_t len = size > 2 ? size - 2 : 0;
    bool verify = cfg & 1, use_feed = cfg & 4, json = cfg & 8, lazy = cfg & 16, shrink = cfg & 32;
    bool shared = cfg & 64, nested = cfg & 128;
    mqc_wire_shared_t sh = {0};
    bool awake = false;
    /* The default maximum makes the reader allocate up to 48 MB for a hostile length, which
     * costs ASan a shadow fill per run: keep that to the runs that ask for it. */
    int32_t max = (cfg & 2) ? 0 : 16384;

    /* The CPU's CRC-32C and the table code agree. */
    CHECK(mqc_crc32c(cfg, in, len) == mqc_crc32c_portable(cfg, in, len));

    /* The stateless decoder on the whole input: the reference for the first message. */
    mqc_wire_msg_t ref;
    mqc_error_t ref_err;
    size_t ref_used = 0;
    mqc_wire_rc_t ref_rc = mqc_wire_decode(in, len, max, verify, &ref, &ref_used, &ref_err);
    if (ref_rc == MQC_WIRE_MSG) {
        CHECK(ref_used >= MQC_WIRE_HEADER_LEN && ref_used <= len);
        walk_msg(&ref, json);
        round_trip(&ref);
    }
    if (ref_rc == MQC_WIRE_ERROR) CHECK(ref_err.domain == MQC_ERROR_PROTOCOL && ref_err.message[0]);

    mqc_wire_reader_t *r = mqc_wire_reader_new(max);
    mqc_wire_reader_set_verify_crc(r, verify);
    mqc_wire_rc_t rc = MQC_WIRE_NEED_MORE, first_rc = MQC_WIRE_NEED_MORE;
    size_t nmsgs = 0, off = 0, taken = 0;
    while (off < len && rc != MQC_WIRE_ERROR) {
        uint32_t x = next_rand(&seed);
        size_t chunk = (x & 3) == 0 ? 1 : (x & 3) == 1 ? 1 + (x >> 8) % 16 : 1 + (x >> 8) % 4096;
        if (chunk > len - off) chunk = len - off;
        if (shared && !awake) {
            mqc_wire_reader_offer(r, &sh);
            awake = true;
        }
        if (use_feed) {
            mqc_wire_reader_feed(r, in + off, chunk);
        } else {
            size_t avail;
            uint8_t *p = mqc_wire_reader_space(r, 1 + (x >> 20) % 16384, &avail);
            if (chunk > avail) chunk = avail;
            memcpy(p, in + off, chunk);
            mqc_wire_reader_commit(r, chunk);
        }
        off += chunk;
        if (lazy && off < len && (x >> 28) != 0) continue;
        mqc_wire_msg_t msg;
        mqc_error_t err;
        while ((rc = mqc_wire_reader_next(r, &msg, &err)) == MQC_WIRE_MSG) {
            if (nmsgs == 0) {
                /* Same message as the decoder found in the whole input. */
                CHECK(ref_rc == MQC_WIRE_MSG);
                CHECK(msg.hdr.length == ref.hdr.length && msg.body.len == ref.body.len);
                CHECK(memcmp(bson_get_data(&msg.body), bson_get_data(&ref.body), ref.body.len) == 0);
                first_rc = MQC_WIRE_MSG;
            }
            nmsgs++;
            taken += (size_t) msg.hdr.length;
            walk_msg(&msg, json);
            round_trip(&msg);
            if (nested) {
                uint8_t *copy = malloc(msg.body.len);
                CHECK(copy);
                memcpy(copy, bson_get_data(&msg.body), msg.body.len);
                mqc_wire_reader_offer(r, NULL);
                CHECK(memcmp(copy, bson_get_data(&msg.body), msg.body.len) == 0);
                free(copy);
            }
            if (shrink) mqc_wire_reader_shrink(r); /* the message is no longer used */
        }
        mqc_wire_reader_offer(r, NULL); /* the wake-up ends */
        mqc_wire_reader_idle(r);
        awake = false;
        if (rc == MQC_WIRE_ERROR) {
            CHECK(err.domain == MQC_ERROR_PROTOCOL && err.message[0]);
            if (nmsgs == 0) first_rc = MQC_WIRE_ERROR;
            /* Sticky. */
            CHECK(mqc_wire_reader_next(r, &msg, NULL) == MQC_WIRE_ERROR);
        }
    }
    if (nmsgs == 0) CHECK(first_rc == ref_rc);
    if (rc != MQC_WIRE_ERROR) CHECK(taken + mqc_wire_reader_pending(r) == len);
    mqc_wire_reader_destroy(r);
    mqc_wire_shared_free(&sh);
    return 0;
}
