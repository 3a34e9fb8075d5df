/* Tests of the wire reader reading into a shared buffer (mqc_wire_reader_offer, lib/wire.c), as
 * connections do: every split of a stream across two reads, several messages per read, messages
 * larger than the shared buffer, and a second reader (or the same one) reading while a message
 * in the shared buffer is still in use, as a callback that runs the loop does. The documents are
 * above bson_t's 120-byte inline size. */
#include <bson/bson.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "tf.h"
#include "wire.h"

#define SHARED 65536 /* lib/wire.c's SHARED_SIZE */

/* An OP_MSG reply whose body is {i: rid, s: <len bytes of 'a' + rid>}. */
static void build_reply(mqc_buf_t *b, int32_t rid, size_t len)
{
    bson_t body;
    char *s = malloc(len + 1);
    memset(s, 'a' + rid % 26, len);
    s[len] = '\0';
    bson_init(&body);
    BSON_APPEND_INT32(&body, "i", rid);
    BSON_APPEND_UTF8(&body, "s", s);
    mqc_wire_msg_begin(b, rid, 0);
    mqc_wire_msg_body(b, &body);
    mqc_wire_msg_end(b);
    bson_destroy(&body);
    free(s);
}

/* Whether msg is build_reply's message rid of len bytes of text. */
static bool reply_is(const mqc_wire_msg_t *msg, int32_t rid, size_t len)
{
    bson_iter_t it;
    uint32_t n = 0;
    if (msg->hdr.request_id != rid) return false;
    if (!bson_iter_init_find(&it, &msg->body, "i") || bson_iter_int32(&it) != rid) return false;
    if (!bson_iter_init_find(&it, &msg->body, "s") || !BSON_ITER_HOLDS_UTF8(&it)) return false;
    const char *s = bson_iter_utf8(&it, &n);
    if (n != len) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] != 'a' + rid % 26) return false;
    return true;
}

/* One read as a connection does it: space (at least 512 bytes, as lib/conn.c asks), then at most
 * len bytes of data copied in. Returns the bytes taken. */
static size_t read_some(mqc_wire_reader_t *r, const uint8_t *data, size_t len)
{
    size_t avail;
    uint8_t *p = mqc_wire_reader_space(r, 512, &avail);
    size_t n = len < avail ? len : avail;
    memcpy(p, data, n);
    mqc_wire_reader_commit(r, n);
    return n;
}

/* Takes every whole message, checking they are rids next.. of len bytes; returns how many. */
static int take_all(mqc_wire_reader_t *r, int32_t *next, size_t len)
{
    mqc_wire_msg_t msg;
    mqc_error_t err;
    mqc_wire_rc_t rc;
    int n = 0;
    while ((rc = mqc_wire_reader_next(r, &msg, &err)) == MQC_WIRE_MSG) {
        if (!reply_is(&msg, *next, len)) return -1;
        (*next)++;
        n++;
    }
    return rc == MQC_WIRE_NEED_MORE ? n : -1;
}

TEST("/wire/shared/split_at_every_byte", wire_shared_split_every_byte)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    for (int32_t i = 1; i <= 3; i++) build_reply(&b, i, 200);
    size_t one = b.len / 3;
    mqc_wire_shared_t sh = {0};
    for (size_t k = 0; k <= b.len; k++) {
        mqc_wire_reader_t r;
        mqc_wire_reader_init(&r, 0);
        int32_t next = 1;
        /* First wake-up: the first k bytes (in as many reads as they take). */
        mqc_wire_reader_offer(&r, &sh);
        for (size_t off = 0; off < k;) off += read_some(&r, b.data + off, k - off);
        ASSERT_EQ(take_all(&r, &next, 200), (int) (k / one));
        mqc_wire_reader_offer(&r, NULL);
        mqc_wire_reader_idle(&r);
        /* What is left of a split message is all the connection owns in between. */
        ASSERT_EQ(mqc_wire_reader_pending(&r), k % one);
        if (k % one == 0) ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
        else ASSERT_GE(mqc_wire_reader_capacity(&r), one);
        /* Second wake-up: the rest. */
        mqc_wire_reader_offer(&r, &sh);
        for (size_t off = k; off < b.len;) off += read_some(&r, b.data + off, b.len - off);
        ASSERT_EQ(take_all(&r, &next, 200), (int) (3 - k / one));
        mqc_wire_reader_offer(&r, NULL);
        mqc_wire_reader_idle(&r);
        ASSERT_EQ(next, 4);
        ASSERT_EQ(mqc_wire_reader_pending(&r), 0);
        ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
        mqc_wire_reader_cleanup(&r);
    }
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
}

TEST("/wire/shared/several_messages_per_read", wire_shared_several_per_read)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    for (int32_t i = 1; i <= 50; i++) build_reply(&b, i, 300);
    mqc_wire_shared_t sh = {0};
    mqc_wire_reader_t r;
    mqc_wire_reader_init(&r, 0);
    mqc_wire_reader_offer(&r, &sh);
    ASSERT_EQ(read_some(&r, b.data, b.len), b.len);
    int32_t next = 1;
    ASSERT_EQ(take_all(&r, &next, 300), 50);
    mqc_wire_reader_offer(&r, NULL);
    ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
    ASSERT_NOT_NULL(sh.buf);
    ASSERT_EQ(sh.cap, SHARED);
    mqc_wire_reader_cleanup(&r);
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
}

TEST("/wire/shared/message_larger_than_the_buffer", wire_shared_larger)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_reply(&b, 1, 3 * SHARED);
    size_t big = b.len;
    for (int32_t i = 2; i <= 10; i++) build_reply(&b, i, 150);
    mqc_wire_shared_t sh = {0};
    mqc_wire_reader_t r;
    mqc_wire_reader_init(&r, 0);
    mqc_wire_reader_offer(&r, &sh);
    /* The first read fills the shared buffer; the next moves the message to a buffer of its
     * own, of its size, and reads the rest there. */
    size_t off = read_some(&r, b.data, big);
    ASSERT_EQ(off, SHARED);
    ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
    off += read_some(&r, b.data + off, big - off);
    ASSERT_EQ(off, big);
    ASSERT_EQ(mqc_wire_reader_capacity(&r), big);
    int32_t next = 1;
    ASSERT_EQ(take_all(&r, &next, 3 * SHARED), 1);
    /* Small messages after it: read into the reader's own large buffer, which is given back
     * after a few of them. */
    for (int32_t i = 2; i <= 10; i++) {
        size_t one = (b.len - big) / 9;
        ASSERT_EQ(read_some(&r, b.data + off, one), one);
        off += one;
        ASSERT_EQ(take_all(&r, &next, 150), 1);
    }
    ASSERT_EQ(next, 11);
    ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
    mqc_wire_reader_offer(&r, NULL);
    mqc_wire_reader_cleanup(&r);
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
}

/* A message taken from the shared buffer stays intact while other readers read (the offerer
 * offers them nothing while it is in use: lib/conn.c's on_rio), and while its own reader reads
 * again with the offer withdrawn (its connection reused from the reply's callback). */
TEST("/wire/shared/message_in_use_while_others_read", wire_shared_nested)
{
    mqc_buf_t b, other;
    mqc_buf_init(&b);
    mqc_buf_init(&other);
    build_reply(&b, 1, 400);
    build_reply(&b, 2, 400);
    size_t one = b.len / 2;
    build_reply(&other, 7, 400);
    mqc_wire_shared_t sh = {0};
    mqc_wire_reader_t a, c;
    mqc_wire_reader_init(&a, 0);
    mqc_wire_reader_init(&c, 0);

    /* Outer: a reads message 1 and half of message 2 into the shared buffer. */
    sh.busy = true;
    mqc_wire_reader_offer(&a, &sh);
    ASSERT_EQ(read_some(&a, b.data, one + one / 2), one + one / 2);
    mqc_wire_msg_t m1;
    mqc_error_t err;
    ASSERT_EQ(mqc_wire_reader_next(&a, &m1, &err), MQC_WIRE_MSG);
    ASSERT(reply_is(&m1, 1, 400));
    ASSERT(m1.body.len > 120);
    bson_t *copy = bson_copy(&m1.body);

    /* Nested: another reader is offered nothing (busy) and reads into its own buffer. */
    mqc_wire_reader_offer(&c, sh.busy ? NULL : &sh);
    ASSERT_EQ(read_some(&c, other.data, other.len), other.len);
    int32_t next = 7;
    ASSERT_EQ(take_all(&c, &next, 400), 1);
    mqc_wire_reader_offer(&c, NULL);
    /* Nested, the same reader: the offer withdrawn, the half message moves to its own buffer,
     * and the rest joins it there. */
    mqc_wire_reader_offer(&a, NULL);
    ASSERT_EQ(mqc_wire_reader_pending(&a), one / 2);
    ASSERT_EQ(read_some(&a, b.data + one + one / 2, one - one / 2), one - one / 2);
    next = 2;
    ASSERT_EQ(take_all(&a, &next, 400), 1);
    mqc_wire_reader_offer(&a, NULL);

    /* Back outside: message 1 is untouched. */
    ASSERT(reply_is(&m1, 1, 400));
    ASSERT(bson_equal(&m1.body, copy));
    ASSERT_EQ(take_all(&a, &next, 400), 0);
    mqc_wire_reader_offer(&a, NULL);
    sh.busy = false;

    bson_destroy(copy);
    mqc_wire_reader_cleanup(&a);
    mqc_wire_reader_cleanup(&c);
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
    mqc_buf_free(&other);
}

/* A reader in error while lent: later calls keep failing, with the same error, and the shared
 * buffer is left alone. */
TEST("/wire/shared/error_while_lent", wire_shared_error)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_reply(&b, 1, 200);
    b.data[12] = 0x77; /* opcode */
    mqc_wire_shared_t sh = {0};
    mqc_wire_reader_t r;
    mqc_wire_reader_init(&r, 0);
    mqc_wire_reader_offer(&r, &sh);
    read_some(&r, b.data, b.len);
    mqc_wire_msg_t msg;
    mqc_error_t e1, e2;
    ASSERT_EQ(mqc_wire_reader_next(&r, &msg, &e1), MQC_WIRE_ERROR);
    read_some(&r, b.data, b.len);
    ASSERT_EQ(mqc_wire_reader_next(&r, &msg, &e2), MQC_WIRE_ERROR);
    ASSERT_STR_EQ(e1.message, e2.message);
    ASSERT_EQ(mqc_wire_reader_next(&r, &msg, NULL), MQC_WIRE_ERROR);
    mqc_wire_reader_offer(&r, NULL);
    mqc_wire_reader_cleanup(&r);
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
}

/* A message completed in the reader's own buffer (it was split) stays valid when the offer is
 * withdrawn from inside its use; the buffer goes only once the reader is idle. */
TEST("/wire/shared/own_buffer_kept_while_its_message_is_in_use", wire_shared_own_kept)
{
    mqc_buf_t b;
    mqc_buf_init(&b);
    build_reply(&b, 1, 500);
    mqc_wire_shared_t sh = {0};
    mqc_wire_reader_t r;
    mqc_wire_reader_init(&r, 0);
    mqc_wire_reader_offer(&r, &sh);
    size_t half = read_some(&r, b.data, b.len / 2);
    mqc_wire_reader_offer(&r, NULL);
    mqc_wire_reader_idle(&r);
    ASSERT_GE(mqc_wire_reader_capacity(&r), b.len);
    mqc_wire_reader_offer(&r, &sh);
    ASSERT_EQ(read_some(&r, b.data + half, b.len - half), b.len - half);
    mqc_wire_msg_t msg;
    mqc_error_t err;
    ASSERT_EQ(mqc_wire_reader_next(&r, &msg, &err), MQC_WIRE_MSG);
    mqc_wire_reader_offer(&r, NULL); /* a nested read of the same reader begins and ends */
    mqc_wire_msg_t other;
    ASSERT_EQ(mqc_wire_reader_next(&r, &other, &err), MQC_WIRE_NEED_MORE);
    mqc_wire_reader_offer(&r, NULL);
    ASSERT(reply_is(&msg, 1, 500));
    ASSERT_GE(mqc_wire_reader_capacity(&r), b.len);
    mqc_wire_reader_idle(&r);
    ASSERT_EQ(mqc_wire_reader_capacity(&r), 0);
    mqc_wire_reader_cleanup(&r);
    mqc_wire_shared_free(&sh);
    mqc_buf_free(&b);
}
