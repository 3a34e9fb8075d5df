/* SCRAM: the auth specification's conversations (fixed nonces), the MongoDB command layer, the
 * salted-password cache, and every way a server can make the conversation fail. */
#include <stdlib.h>

#include "common.h"
#include "scram.h"
#include "tf.h"

/* The auth spec's example conversations ("SCRAM-SHA-1" and "SCRAM-SHA-256" sections). */
#define SHA1_NONCE "fyko+d2lbbFgONRv9qkxdawL"
#define SHA1_FIRST "n,,n=user,r=" SHA1_NONCE
#define SHA1_SFIRST "r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000"
#define SHA1_FINAL "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,p=MC2T8BvbmWRckDw8oWl5IVghwCY="
#define SHA1_SFINAL "v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0="

#define SHA256_NONCE "rOprNGfwEbeRWgbNEkqO"
#define SHA256_FIRST "n,,n=user,r=" SHA256_NONCE
#define SHA256_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define SHA256_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SHA256_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static char *as_str(const uint8_t *p, size_t n)
{
    static char buf[1024];
    ASSERT_LT(n, sizeof buf);
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

static const uint8_t *u8(const char *s) { return (const uint8_t *) s; }

static mqc_scram_t *new_conv(mqc_scram_mech_t mech, const char *user, const char *pw, const char *nonce,
                             mqc_scram_cache_t *cache)
{
    mqc_error_t e;
    mqc_scram_t *s = mqc_scram_new(mech, user, pw, cache, &e);
    ASSERT_MSG(s != NULL, "mqc_scram_new: %s", e.message);
    ASSERT(mqc_scram_set_client_nonce(s, nonce, &e));
    return s;
}

/* Runs the raw conversation and checks each message against the vector. */
static void run_vector(mqc_scram_mech_t mech, const char *pw, const char *nonce, const char *first,
                       const char *sfirst, const char *final, const char *sfinal, mqc_scram_cache_t *cache)
{
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_t *s = new_conv(mech, "user", pw, nonce, cache);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT_STR_EQ(as_str(out, n), first);
    bool ok = mqc_scram_handle_server_first(s, u8(sfirst), strlen(sfirst), &out, &n, &e);
    ASSERT_MSG(ok, "server-first: %s", e.message);
    ASSERT_STR_EQ(as_str(out, n), final);
    ok = mqc_scram_handle_server_final(s, u8(sfinal), strlen(sfinal), &e);
    mqc_scram_destroy(s);
    ASSERT_MSG(ok, "server-final: %s", e.message);
}

TEST("/scram/vector/sha1", scram_vector_sha1)
{
    run_vector(MQC_SCRAM_SHA_1, "pencil", SHA1_NONCE, SHA1_FIRST, SHA1_SFIRST, SHA1_FINAL, SHA1_SFINAL, NULL);
}

TEST("/scram/vector/sha256", scram_vector_sha256)
{
    run_vector(MQC_SCRAM_SHA_256, "pencil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST, SHA256_FINAL,
               SHA256_SFINAL, NULL);
}

TEST("/scram/vector/sha256_saslprep_password", scram_vector_sha256_saslprep)
{
    /* "pen\u00ADcil" prepares to "pencil": same proof. NBSP in the middle would not. */
    run_vector(MQC_SCRAM_SHA_256, "pen\xC2\xAD" "cil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST,
               SHA256_FINAL, SHA256_SFINAL, NULL);
    mqc_error_t e;
    mqc_scram_t *s = mqc_scram_new(MQC_SCRAM_SHA_256, "user", "pen\x07" "cil", NULL, &e);
    ASSERT_NULL(s);
    ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
    ASSERT_STR_CONTAINS(e.message, "SCRAM-SHA-256");
    ASSERT_STR_CONTAINS(e.message, "\"user\"");
    ASSERT_STR_CONTAINS(e.message, "prohibited");
    ASSERT(strstr(e.message, "pen") == NULL);
}

TEST("/scram/vector/sha1_no_saslprep", scram_vector_sha1_no_saslprep)
{
    /* SCRAM-SHA-1 must not SASLprep: a soft hyphen changes the proof. */
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_1, "user", "pen\xC2\xAD" "cil", SHA1_NONCE, NULL);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT(mqc_scram_handle_server_first(s, u8(SHA1_SFIRST), strlen(SHA1_SFIRST), &out, &n, &e));
    bool differs = strcmp(as_str(out, n), SHA1_FINAL) != 0;
    mqc_scram_destroy(s);
    ASSERT(differs);
}

static void bson_payload(const bson_t *doc, const char *want)
{
    bson_iter_t it;
    const uint8_t *p;
    uint32_t n;
    bson_subtype_t st;
    ASSERT(bson_iter_init_find(&it, doc, "payload") && BSON_ITER_HOLDS_BINARY(&it));
    bson_iter_binary(&it, &st, &n, &p);
    ASSERT_EQ(st, BSON_SUBTYPE_BINARY);
    ASSERT_STR_EQ(as_str(p, n), want);
}

static bson_t *reply_doc(int32_t conv, const char *payload, bool done, bool with_ok)
{
    bson_t *r = bson_new();
    BSON_APPEND_INT32(r, "conversationId", conv);
    bson_append_binary(r, "payload", -1, BSON_SUBTYPE_BINARY, u8(payload), (uint32_t) strlen(payload));
    BSON_APPEND_BOOL(r, "done", done);
    if (with_ok) BSON_APPEND_DOUBLE(r, "ok", 1.0);
    return r;
}

static int32_t int_field(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    ASSERT_MSG(bson_iter_init_find(&it, doc, key), "no %s", key);
    return (int32_t) bson_iter_as_int64(&it);
}

TEST("/scram/commands/short_conversation", scram_commands_short)
{
    mqc_error_t e;
    bson_t cmd, next;
    bson_iter_t it, ch;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    ASSERT(bson_iter_init(&it, &cmd) && bson_iter_next(&it));
    ASSERT_STR_EQ(bson_iter_key(&it), "saslStart");    /* the command name comes first */
    ASSERT_EQ(int_field(&cmd, "saslStart"), 1);
    ASSERT_EQ(int_field(&cmd, "autoAuthorize"), 1);
    ASSERT(bson_iter_init_find(&it, &cmd, "mechanism"));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "SCRAM-SHA-256");
    ASSERT(bson_iter_init_find(&it, &cmd, "options") && bson_iter_recurse(&it, &ch) &&
           bson_iter_find(&ch, "skipEmptyExchange") && bson_iter_as_bool(&ch));
    bson_payload(&cmd, SHA256_FIRST);
    bson_destroy(&cmd);

    bson_t *r1 = reply_doc(7, SHA256_SFIRST, false, true);
    ASSERT_EQ(mqc_scram_reply(s, r1, &next, &e), MQC_SCRAM_SEND);
    ASSERT(bson_iter_init(&it, &next) && bson_iter_next(&it));
    ASSERT_STR_EQ(bson_iter_key(&it), "saslContinue");
    ASSERT_EQ(int_field(&next, "conversationId"), 7);
    ASSERT(bson_iter_init_find(&it, &next, "conversationId") && BSON_ITER_HOLDS_INT32(&it));
    bson_payload(&next, SHA256_FINAL);
    bson_destroy(&next);

    bson_t *r2 = reply_doc(7, SHA256_SFINAL, true, true);
    mqc_scram_result_t rc = mqc_scram_reply(s, r2, &next, &e);
    ASSERT_MSG(rc == MQC_SCRAM_DONE, "rc %d: %s", (int) rc, e.message);
    bson_destroy(r1);
    bson_destroy(r2);
    mqc_scram_destroy(s);
}

TEST("/scram/commands/extra_empty_exchange", scram_commands_extra_empty)
{
    /* Old servers and FerretDB --test-enable-new-auth answer done: false after the server-final
     * message: one more empty saslContinue, whose reply says done. */
    mqc_error_t e;
    bson_t cmd, next;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *r1 = reply_doc(1, SHA1_SFIRST, false, true), *r2 = reply_doc(1, SHA1_SFINAL, false, true);
    bson_t *r3 = reply_doc(1, "", true, true);
    ASSERT_EQ(mqc_scram_reply(s, r1, &next, &e), MQC_SCRAM_SEND);
    bson_destroy(&next);
    ASSERT_EQ(mqc_scram_reply(s, r2, &next, &e), MQC_SCRAM_SEND);
    bson_payload(&next, "");
    ASSERT_EQ(int_field(&next, "conversationId"), 1);
    bson_destroy(&next);
    ASSERT_EQ(mqc_scram_reply(s, r3, &next, &e), MQC_SCRAM_DONE);
    mqc_scram_destroy(s);

    /* A server that still says done: false after the empty exchange is an error. */
    s = new_conv(MQC_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *r4 = reply_doc(1, "", false, true);
    ASSERT_EQ(mqc_scram_reply(s, r1, &next, &e), MQC_SCRAM_SEND);
    bson_destroy(&next);
    ASSERT_EQ(mqc_scram_reply(s, r2, &next, &e), MQC_SCRAM_SEND);
    bson_destroy(&next);
    ASSERT_EQ(mqc_scram_reply(s, r4, &next, &e), MQC_SCRAM_FAILED);
    ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
    mqc_scram_destroy(s);
    bson_destroy(r1);
    bson_destroy(r2);
    bson_destroy(r3);
    bson_destroy(r4);
}

TEST("/scram/commands/speculative", scram_commands_speculative)
{
    mqc_error_t e;
    bson_t doc, next;
    bson_iter_t it;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_speculative(s, "admin", &doc, &e));
    ASSERT_EQ(int_field(&doc, "saslStart"), 1);
    ASSERT(bson_iter_init_find(&it, &doc, "db"));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "admin");
    bson_payload(&doc, SHA256_FIRST);
    bson_destroy(&doc);
    /* The hello reply's speculativeAuthenticate: a saslStart reply without "ok". */
    bson_t *spec = reply_doc(3, SHA256_SFIRST, false, false);
    ASSERT_EQ(mqc_scram_reply(s, spec, &next, &e), MQC_SCRAM_SEND);
    bson_payload(&next, SHA256_FINAL);
    bson_destroy(&next);
    bson_t *fin = reply_doc(3, SHA256_SFINAL, true, true);
    ASSERT_EQ(mqc_scram_reply(s, fin, &next, &e), MQC_SCRAM_DONE);
    bson_destroy(spec);
    bson_destroy(fin);
    mqc_scram_destroy(s);
}

TEST("/scram/commands/restart_uses_new_nonce", scram_commands_restart)
{
    /* No speculativeAuthenticate in the hello reply: saslStart restarts with a fresh nonce. */
    mqc_error_t e;
    bson_t a, b;
    mqc_scram_t *s = mqc_scram_new(MQC_SCRAM_SHA_256, "user", "pencil", NULL, &e);
    ASSERT_NOT_NULL(s);
    ASSERT(mqc_scram_speculative(s, "admin", &a, &e));
    ASSERT(mqc_scram_sasl_start(s, &b, &e));
    bson_iter_t ia, ib;
    const uint8_t *pa, *pb;
    uint32_t na, nb;
    bson_subtype_t st;
    ASSERT(bson_iter_init_find(&ia, &a, "payload") && bson_iter_init_find(&ib, &b, "payload"));
    bson_iter_binary(&ia, &st, &na, &pa);
    bson_iter_binary(&ib, &st, &nb, &pb);
    bool same = na == nb && memcmp(pa, pb, na) == 0;
    ASSERT_EQ(na, strlen("n,,n=user,r=") + 32);   /* 24 random bytes in base64 */
    bson_destroy(&a);
    bson_destroy(&b);
    mqc_scram_destroy(s);
    ASSERT(!same);
}

TEST("/scram/commands/server_error_reply", scram_commands_server_error)
{
    mqc_error_t e;
    bson_t cmd, next;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "alice", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *r = BCON_NEW("ok", BCON_DOUBLE(0), "errmsg", BCON_UTF8("Authentication failed."), "code",
                         BCON_INT32(18), "codeName", BCON_UTF8("AuthenticationFailed"));
    ASSERT_EQ(mqc_scram_reply(s, r, &next, &e), MQC_SCRAM_FAILED);
    ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
    ASSERT_EQ(e.code, 18);
    ASSERT_STR_EQ(e.code_name, "AuthenticationFailed");
    ASSERT_STR_EQ(e.message, "SCRAM-SHA-256 authentication failed for user \"alice\": Authentication failed.");
    bson_destroy(r);
    mqc_scram_destroy(s);
}

/* Runs to the server-first message and expects it to fail with a message containing why. */
static void expect_first_fails(mqc_scram_mech_t mech, const char *nonce, const char *sfirst, size_t len,
                               const char *why)
{
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_t *s = new_conv(mech, "user", "pencil", nonce, NULL);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    bool ok = mqc_scram_handle_server_first(s, u8(sfirst), len, &out, &n, &e);
    mqc_scram_destroy(s);
    ASSERT_MSG(!ok, "accepted server-first \"%s\"", sfirst);
    ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
    ASSERT_STR_CONTAINS(e.message, mqc_scram_mech_name(mech));
    ASSERT_STR_CONTAINS(e.message, "\"user\"");
    ASSERT_STR_CONTAINS(e.message, why);
    ASSERT(strstr(e.message, "pencil") == NULL);
}

#define FIRST_FAILS(mech, nonce, msg, why) expect_first_fails(mech, nonce, msg, strlen(msg), why)

TEST("/scram/reject/bad_nonce", scram_reject_bad_nonce)
{
    FIRST_FAILS(MQC_SCRAM_SHA_256, SHA256_NONCE, "r=XXprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "nonce");
    /* the server must add to the nonce, not echo it */
    FIRST_FAILS(MQC_SCRAM_SHA_256, SHA256_NONCE, "r=" SHA256_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
    /* a truncated client nonce */
    FIRST_FAILS(MQC_SCRAM_SHA_256, SHA256_NONCE, "r=rOprNG,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "nonce");
}

TEST("/scram/reject/low_iteration_count", scram_reject_low_iterations)
{
    FIRST_FAILS(MQC_SCRAM_SHA_256, SHA256_NONCE, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095",
                "iteration count 4095 is below the minimum of 4096");
    FIRST_FAILS(MQC_SCRAM_SHA_1, SHA1_NONCE, "r=" SHA1_NONCE "x,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=1", "below the minimum");
}

TEST("/scram/reject/server_error", scram_reject_server_error)
{
    FIRST_FAILS(MQC_SCRAM_SHA_256, SHA256_NONCE, "e=other-error", "server error \"other-error\"");
    /* e= in the server-final message */
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_1, "user", "pencil", SHA1_NONCE, NULL);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT(mqc_scram_handle_server_first(s, u8(SHA1_SFIRST), strlen(SHA1_SFIRST), &out, &n, &e));
    bool ok = mqc_scram_handle_server_final(s, u8("e=invalid-proof"), 15, &e);
    mqc_scram_destroy(s);
    ASSERT(!ok);
    ASSERT_STR_CONTAINS(e.message, "server error \"invalid-proof\"");
}

TEST("/scram/reject/malformed_server_first", scram_reject_malformed_first)
{
    const mqc_scram_mech_t M = MQC_SCRAM_SHA_256;
    const char *N = SHA256_NONCE;
    FIRST_FAILS(M, N, "", "malformed");
    FIRST_FAILS(M, N, "r=", "malformed");
    FIRST_FAILS(M, N, "s=W22ZaJ0SNY7soEsUEjb6gQ==,r=" SHA256_NONCE "x,i=4096", "malformed");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x", "salt");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=,i=4096", "salt");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096", "salt");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "salt");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==", "iteration count");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "iteration count");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x", "iteration count");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "iteration count");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=04096", "iteration count");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999", "iteration count");
    FIRST_FAILS(M, N, "m=ext,r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension");
    FIRST_FAILS(M, N, "r=" SHA256_NONCE "x y,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "malformed");
    static const char nul[] = "r=" SHA256_NONCE "x\0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    expect_first_fails(M, N, nul, sizeof nul - 1, "NUL");
}

TEST("/scram/reject/wrong_server_signature", scram_reject_wrong_signature)
{
    static const char *bad[] = {
        "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",  /* one bit off */
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=",  /* non-canonical base64 (padding bits) */
        "v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0=",                 /* SHA-1 length */
        "v=",
        "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mqc_error_t e;
        const uint8_t *out;
        size_t n;
        mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
        ASSERT(mqc_scram_client_first(s, &out, &n, &e));
        ASSERT(mqc_scram_handle_server_first(s, u8(SHA256_SFIRST), strlen(SHA256_SFIRST), &out, &n, &e));
        bool ok = mqc_scram_handle_server_final(s, u8(bad[i]), strlen(bad[i]), &e);
        mqc_scram_destroy(s);
        ASSERT_MSG(!ok, "accepted server-final \"%s\"", bad[i]);
        ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
        ASSERT_STR_CONTAINS(e.message, "SCRAM-SHA-256 authentication failed for user \"user\"");
        if (i == 0) ASSERT_STR_CONTAINS(e.message, "signature is wrong");
    }
}

TEST("/scram/reject/protocol_order", scram_reject_protocol_order)
{
    mqc_error_t e;
    bson_t cmd, next;
    /* done: true before the proof was sent */
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *r = reply_doc(1, SHA256_SFIRST, true, true);
    ASSERT_EQ(mqc_scram_reply(s, r, &next, &e), MQC_SCRAM_FAILED);
    ASSERT_STR_CONTAINS(e.message, "before the client's proof");
    bson_destroy(r);
    /* a reply after failure */
    r = reply_doc(1, SHA256_SFINAL, true, true);
    ASSERT_EQ(mqc_scram_reply(s, r, &next, &e), MQC_SCRAM_FAILED);
    mqc_scram_destroy(s);
    /* no payload, no conversationId */
    s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *np = BCON_NEW("conversationId", BCON_INT32(1), "done", BCON_BOOL(false), "ok", BCON_INT32(1));
    ASSERT_EQ(mqc_scram_reply(s, np, &next, &e), MQC_SCRAM_FAILED);
    ASSERT_STR_CONTAINS(e.message, "payload");
    mqc_scram_destroy(s);
    s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    bson_t *nc = BCON_NEW("payload", BCON_BIN(BSON_SUBTYPE_BINARY, u8(SHA256_SFIRST), strlen(SHA256_SFIRST)),
                          "done", BCON_BOOL(false), "ok", BCON_INT32(1));
    ASSERT_EQ(mqc_scram_reply(s, nc, &next, &e), MQC_SCRAM_FAILED);
    ASSERT_STR_CONTAINS(e.message, "conversationId");
    mqc_scram_destroy(s);
    /* a reply before anything was sent */
    s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, NULL);
    ASSERT_EQ(mqc_scram_reply(s, r, &next, &e), MQC_SCRAM_FAILED);
    mqc_scram_destroy(s);
    bson_destroy(r);
    bson_destroy(np);
    bson_destroy(nc);
}

TEST("/scram/username_escaping", scram_username_escaping)
{
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "a=b,c==", "pw", "abc", NULL);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT_STR_EQ(as_str(out, n), "n,,n=a=3Db=2Cc=3D=3D,r=abc");
    mqc_scram_destroy(s);
    /* user names are not SASLprep'd: U+2168 stays as it is */
    s = new_conv(MQC_SCRAM_SHA_256, "\xE2\x85\xA8", "pw", "abc", NULL);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT_STR_EQ(as_str(out, n), "n,,n=\xE2\x85\xA8,r=abc");
    mqc_scram_destroy(s);
    /* an empty user is refused */
    ASSERT_NULL(mqc_scram_new(MQC_SCRAM_SHA_1, "", "pw", NULL, &e));
    ASSERT_EQ(e.domain, MQC_ERROR_AUTH);
    /* an injected nonce must be printable and free of ',' */
    s = mqc_scram_new(MQC_SCRAM_SHA_1, "u", "pw", NULL, &e);
    ASSERT_NOT_NULL(s);
    bool comma = mqc_scram_set_client_nonce(s, "a,b", &e), space = mqc_scram_set_client_nonce(s, "a b", &e);
    mqc_scram_destroy(s);
    ASSERT(!comma && !space);
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

TEST("/scram/password_never_sent", scram_password_never_sent)
{
    /* Every byte that leaves the conversation (commands, messages, errors) is free of the password. */
    static const char pw[] = "Sup3r-S3cret-Pw";
    mqc_scram_mech_t mechs[2] = {MQC_SCRAM_SHA_1, MQC_SCRAM_SHA_256};
    for (int m = 0; m < 2; m++) {
        mqc_error_t e;
        bson_t cmd, next, spec;
        mqc_scram_t *s = mqc_scram_new(mechs[m], "user", pw, NULL, &e);
        ASSERT_NOT_NULL(s);
        ASSERT(mqc_scram_speculative(s, "admin", &spec, &e));
        ASSERT(!contains(bson_get_data(&spec), spec.len, pw));
        bson_destroy(&spec);
        ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
        ASSERT(!contains(bson_get_data(&cmd), cmd.len, pw));
        /* make a server-first for whatever nonce was chosen */
        bson_iter_t it;
        const uint8_t *p;
        uint32_t n;
        bson_subtype_t st;
        ASSERT(bson_iter_init_find(&it, &cmd, "payload"));
        bson_iter_binary(&it, &st, &n, &p);
        char sfirst[256];
        snprintf(sfirst, sizeof sfirst, "r=%sSERVER,s=rQ9ZY3MntBeuP3E1TDVC4w==,i=4096", strstr(as_str(p, n), "r=") + 2);
        bson_destroy(&cmd);
        bson_t *r1 = reply_doc(1, sfirst, false, true);
        ASSERT_EQ(mqc_scram_reply(s, r1, &next, &e), MQC_SCRAM_SEND);
        ASSERT(!contains(bson_get_data(&next), next.len, pw));
        bson_destroy(&next);
        bson_t *r2 = reply_doc(1, "v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=", true, true);
        ASSERT_EQ(mqc_scram_reply(s, r2, &next, &e), MQC_SCRAM_FAILED);
        ASSERT(!contains((const uint8_t *) e.message, strlen(e.message), pw));
        bson_destroy(r1);
        bson_destroy(r2);
        mqc_scram_destroy(s);
    }
}

TEST("/scram/cache/pbkdf2_once_per_credential", scram_cache_once)
{
    mqc_scram_cache_t *cache = mqc_scram_cache_new();
    ASSERT_NOT_NULL(cache);
    for (int i = 0; i < 50; i++)
        run_vector(MQC_SCRAM_SHA_256, "pencil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST, SHA256_FINAL,
                   SHA256_SFINAL, cache);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 1);
    /* the cached keys also serve SCRAM-SHA-1 separately */
    for (int i = 0; i < 5; i++)
        run_vector(MQC_SCRAM_SHA_1, "pencil", SHA1_NONCE, SHA1_FIRST, SHA1_SFIRST, SHA1_FINAL, SHA1_SFINAL, cache);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 2);
    /* a prepared-equal password ("pen\u00ADcil") is the same credential */
    run_vector(MQC_SCRAM_SHA_256, "pen\xC2\xAD" "cil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST,
               SHA256_FINAL, SHA256_SFINAL, cache);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 2);
    mqc_scram_cache_destroy(cache);
}

TEST("/scram/cache/distinguishes_credentials", scram_cache_distinguishes)
{
    mqc_error_t e;
    const uint8_t *out;
    size_t n;
    mqc_scram_cache_t *cache = mqc_scram_cache_new();
    run_vector(MQC_SCRAM_SHA_256, "pencil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST, SHA256_FINAL,
               SHA256_SFINAL, cache);
    /* a wrong password must not hit the right one's entry: its proof differs */
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil2", SHA256_NONCE, cache);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT(mqc_scram_handle_server_first(s, u8(SHA256_SFIRST), strlen(SHA256_SFIRST), &out, &n, &e));
    ASSERT(strcmp(as_str(out, n), SHA256_FINAL) != 0);
    mqc_scram_destroy(s);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 2);
    /* another salt, another iteration count: new entries */
    static const char *variants[] = {
        "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gA==,i=4096",
        "r=" SHA256_NONCE "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4097",
    };
    for (int i = 0; i < 2; i++) {
        s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, cache);
        ASSERT(mqc_scram_client_first(s, &out, &n, &e));
        ASSERT(mqc_scram_handle_server_first(s, u8(variants[i]), strlen(variants[i]), &out, &n, &e));
        mqc_scram_destroy(s);
    }
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 4);
    /* another user with the same password */
    s = new_conv(MQC_SCRAM_SHA_256, "user2", "pencil", SHA256_NONCE, cache);
    ASSERT(mqc_scram_client_first(s, &out, &n, &e));
    ASSERT(mqc_scram_handle_server_first(s, u8(SHA256_SFIRST), strlen(SHA256_SFIRST), &out, &n, &e));
    mqc_scram_destroy(s);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 5);
    /* more credentials than slots: still correct (eviction), the vector still verifies */
    for (int i = 0; i < 12; i++) {
        char pw[16];
        snprintf(pw, sizeof pw, "pw%d", i);
        s = new_conv(MQC_SCRAM_SHA_256, "user", pw, SHA256_NONCE, cache);
        ASSERT(mqc_scram_client_first(s, &out, &n, &e));
        ASSERT(mqc_scram_handle_server_first(s, u8(SHA256_SFIRST), strlen(SHA256_SFIRST), &out, &n, &e));
        mqc_scram_destroy(s);
    }
    run_vector(MQC_SCRAM_SHA_256, "pencil", SHA256_NONCE, SHA256_FIRST, SHA256_SFIRST, SHA256_FINAL,
               SHA256_SFINAL, cache);
    mqc_scram_cache_destroy(cache);
}

TEST("/scram/negotiate", scram_negotiate)
{
    bson_t *both = BCON_NEW("saslSupportedMechs", "[", BCON_UTF8("SCRAM-SHA-1"), BCON_UTF8("SCRAM-SHA-256"), "]");
    bson_t *one = BCON_NEW("saslSupportedMechs", "[", BCON_UTF8("SCRAM-SHA-1"), BCON_UTF8("PLAIN"), "]");
    bson_t *none = BCON_NEW("ok", BCON_INT32(1));
    ASSERT_EQ(mqc_scram_mech_negotiate(both), MQC_SCRAM_SHA_256);
    ASSERT_EQ(mqc_scram_mech_negotiate(one), MQC_SCRAM_SHA_1);
    ASSERT_EQ(mqc_scram_mech_negotiate(none), MQC_SCRAM_SHA_1);
    bson_destroy(both);
    bson_destroy(one);
    bson_destroy(none);
    mqc_scram_mech_t m;
    ASSERT(mqc_scram_mech_from_name("SCRAM-SHA-256", &m) && m == MQC_SCRAM_SHA_256);
    ASSERT(mqc_scram_mech_from_name("SCRAM-SHA-1", &m) && m == MQC_SCRAM_SHA_1);
    ASSERT(!mqc_scram_mech_from_name("PLAIN", &m));
    bson_t hello = BSON_INITIALIZER;
    bson_iter_t it;
    mqc_scram_append_sasl_supported_mechs(&hello, "admin", "\xE2\x85\xA8");
    ASSERT(bson_iter_init_find(&it, &hello, "saslSupportedMechs"));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "admin.\xE2\x85\xA8");
    bson_destroy(&hello);
}

/* ---- deferred cache: PBKDF2 off the loop ----------------------------------------------------- */

static mqc_scram_t *started(mqc_scram_cache_t *cache)
{
    mqc_error_t e;
    bson_t cmd;
    mqc_scram_t *s = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, cache);
    ASSERT(mqc_scram_sasl_start(s, &cmd, &e));
    bson_destroy(&cmd);
    return s;
}

static mqc_scram_result_t feed_first(mqc_scram_t *s, bson_t *next)
{
    mqc_error_t e = {0};
    bson_t *r = reply_doc(1, SHA256_SFIRST, false, true);
    mqc_scram_result_t rc = mqc_scram_reply(s, r, next, &e);
    bson_destroy(r);
    return rc;
}

TEST("/scram/cache/deferred_derives_once_off_the_caller", scram_cache_deferred)
{
    mqc_error_t e;
    bson_t next;
    mqc_scram_cache_t *cache = mqc_scram_cache_new();
    mqc_scram_cache_set_deferred(cache, true);
    mqc_scram_t *a = started(cache), *b = started(cache);
    /* The first miss reserves the entry and must derive; the second waits for it. */
    ASSERT_EQ(feed_first(a, &next), MQC_SCRAM_DERIVE);
    ASSERT_EQ(feed_first(b, &next), MQC_SCRAM_WAIT);
    ASSERT_EQ(mqc_scram_resume(b, &next, &e), MQC_SCRAM_WAIT);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 0);
    mqc_scram_kdf_t *k = mqc_scram_kdf_take(a);
    ASSERT_NOT_NULL(k);
    mqc_scram_t *idle = started(cache); /* not waiting for keys: nothing to derive */
    ASSERT_NULL(mqc_scram_kdf_take(idle));
    mqc_scram_destroy(idle);
    mqc_scram_kdf_run(k);
    /* The conversation may be gone by the time its derivation ends: the keys still count. */
    mqc_scram_destroy(a);
    mqc_scram_kdf_store(cache, k);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 1);
    ASSERT_EQ(mqc_scram_resume(b, &next, &e), MQC_SCRAM_SEND);
    bson_payload(&next, SHA256_FINAL);
    bson_destroy(&next);
    bson_t *r2 = reply_doc(1, SHA256_SFINAL, true, true);
    ASSERT_EQ(mqc_scram_reply(b, r2, &next, &e), MQC_SCRAM_DONE);
    bson_destroy(r2);
    mqc_scram_destroy(b);
    /* Later conversations hit the cache at once. */
    mqc_scram_t *c = started(cache);
    ASSERT_EQ(feed_first(c, &next), MQC_SCRAM_SEND);
    bson_payload(&next, SHA256_FINAL);
    bson_destroy(&next);
    mqc_scram_destroy(c);
    /* resume without a derivation awaited is an error, not a crash */
    c = started(cache);
    ASSERT_EQ(mqc_scram_resume(c, &next, &e), MQC_SCRAM_FAILED);
    mqc_scram_destroy(c);
    mqc_scram_cache_destroy(cache);
}

TEST("/scram/cache/deferred_failed_derivation_frees_the_reservation", scram_cache_deferred_failed)
{
    mqc_error_t e;
    bson_t next;
    mqc_scram_cache_t *cache = mqc_scram_cache_new();
    mqc_scram_cache_set_deferred(cache, true);
    mqc_scram_t *a = started(cache), *b = started(cache);
    ASSERT_EQ(feed_first(a, &next), MQC_SCRAM_DERIVE);
    ASSERT_EQ(feed_first(b, &next), MQC_SCRAM_WAIT);
    /* Stored without having run (as when its thread never got to it): nothing cached, and the
     * waiter becomes the one to derive, so nobody waits forever. */
    mqc_scram_kdf_store(cache, mqc_scram_kdf_take(a));
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(cache), 0);
    ASSERT_EQ(mqc_scram_resume(b, &next, &e), MQC_SCRAM_DERIVE);
    mqc_scram_kdf_t *k = mqc_scram_kdf_take(b);
    mqc_scram_kdf_run(k);
    mqc_scram_kdf_store(cache, k);
    ASSERT_EQ(mqc_scram_resume(b, &next, &e), MQC_SCRAM_SEND);
    bson_destroy(&next);
    /* a's own resume now finds the keys too */
    ASSERT_EQ(mqc_scram_resume(a, &next, &e), MQC_SCRAM_SEND);
    bson_payload(&next, SHA256_FINAL);
    bson_destroy(&next);
    mqc_scram_destroy(a);
    mqc_scram_destroy(b);
    /* The raw API refuses a deferred cache rather than block. */
    const uint8_t *out;
    size_t n;
    mqc_scram_t *c = new_conv(MQC_SCRAM_SHA_256, "user", "pencil", SHA256_NONCE, cache);
    ASSERT(mqc_scram_client_first(c, &out, &n, &e));
    ASSERT(!mqc_scram_handle_server_first(c, u8(SHA256_SFIRST), strlen(SHA256_SFIRST), &out, &n, &e));
    mqc_scram_destroy(c);
    mqc_scram_kdf_free(NULL);
    mqc_scram_kdf_store(cache, NULL);
    mqc_scram_cache_destroy(cache);
}
