/* SASLprep: RFC 4013 section 3 examples, the auth specification's SCRAM-SHA-256 cases, and NFKC
 * cases that exercise each part of the normaliser (checked against CPython's ucd_3_2_0). */
#include <stdlib.h>

#include "common.h"
#include "saslprep.h"
#include "tf.h"

static void expect_prep(const char *in, const char *want)
{
    mqc_error_t e;
    mqc_error_clear(&e);
    size_t n = 0;
    char *got = mqc_saslprep(in, strlen(in), 0, &n, &e);
    ASSERT_MSG(got != NULL, "SASLprep failed: %s", e.message);
    ASSERT_EQ(n, strlen(want));
    char copy[256];
    snprintf(copy, sizeof copy, "%s", got);
    mqc_saslprep_free(got);
    ASSERT_STR_EQ(copy, want);
}

static void expect_fail(const char *in, size_t len, unsigned flags, const char *why)
{
    mqc_error_t e;
    mqc_error_clear(&e);
    char *got = mqc_saslprep(in, len, flags, NULL, &e);
    if (got) {
        mqc_saslprep_free(got);
        FAIL("SASLprep accepted input that should fail with \"%s\"", why);
    }
    ASSERT_EQ(e.domain, MQC_ERROR_CLIENT);
    ASSERT_STR_CONTAINS(e.message, why);
}

TEST("/saslprep/rfc4013_examples", saslprep_rfc4013_examples)
{
    expect_prep("I\xC2\xAD" "X", "IX");             /* SOFT HYPHEN mapped to nothing */
    expect_prep("user", "user");
    expect_prep("USER", "USER");                     /* no case folding */
    expect_prep("\xC2\xAA", "a");                    /* U+00AA: NFKC */
    expect_prep("\xE2\x85\xA8", "IX");               /* U+2168 ROMAN NUMERAL NINE: NFKC */
    expect_fail("\x07", 1, 0, "prohibited");         /* U+0007: prohibited */
    expect_fail("\xD8\xA7" "1", 3, 0, "right-to-left"); /* U+0627 U+0031: bidi rule */
}

TEST("/saslprep/auth_spec_passwords", saslprep_auth_spec_passwords)
{
    /* The auth spec's SCRAM-SHA-256 users "IX" and "\u2168": both password forms must agree. */
    expect_prep("IX", "IX");
    expect_prep("I\xC2\xAD" "X", "IX");
    expect_prep("\xE2\x85\xA3", "IV");               /* U+2163 ROMAN NUMERAL FOUR */
    expect_prep("I\xC2\xAD" "V", "IV");
    expect_prep("", "");
}

TEST("/saslprep/mapping", saslprep_mapping)
{
    expect_prep("a\xC2\xA0" "b", "a b");             /* U+00A0 NBSP -> space (C.1.2) */
    expect_prep("a\xE3\x80\x80" "b", "a b");         /* U+3000 IDEOGRAPHIC SPACE */
    expect_prep("a\xE2\x80\x8B" "b", "ab");          /* U+200B ZERO WIDTH SPACE -> nothing (B.1) */
    expect_prep("\xEF\xBB\xBF" "x\xEF\xB8\x8F", "x"); /* U+FEFF, U+FE0F -> nothing */
    expect_prep("a b", "a b");                       /* ASCII space is allowed */
}

TEST("/saslprep/nfkc", saslprep_nfkc)
{
    expect_prep("\xEF\xAC\x81", "fi");               /* U+FB01 ligature: compatibility */
    expect_prep("\xE2\x84\xAB", "\xC3\x85");         /* U+212B ANGSTROM -> U+00C5: singleton */
    expect_prep("e\xCC\x81", "\xC3\xA9");            /* e + U+0301 -> U+00E9: composition */
    /* U+1EAD from either order of its two marks: canonical reordering, then composition */
    expect_prep("a\xCC\xA3\xCC\x82", "\xE1\xBA\xAD");
    expect_prep("a\xCC\x82\xCC\xA3", "\xE1\xBA\xAD");
    /* Hangul L V T -> U+AC01, and U+AC01 stays itself */
    expect_prep("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81");
    expect_prep("\xEA\xB0\x81", "\xEA\xB0\x81");
    /* U+0958 is a composition exclusion: it stays decomposed as U+0915 U+093C */
    expect_prep("\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC");
    /* U+0344 (non-starter decomposition) -> U+0308 U+0301, no recomposition */
    expect_prep("\xCD\x84", "\xCC\x88\xCC\x81");
    /* e + U+0301 + U+0327: the cedilla (class 202) sorts first, composes to U+0229, acute stays */
    expect_prep("e\xCC\x81\xCC\xA7", "\xC8\xA9\xCC\x81");
}

TEST("/saslprep/nfkc_longest_expansion", saslprep_nfkc_longest_expansion)
{
    uint32_t in[1] = {0xFDFA}, out[32];
    size_t n = mqc_saslprep_nfkc(in, 1, out, 32);
    ASSERT_EQ(n, 18);
    ASSERT_EQ(out[0], 0x635);
    ASSERT_EQ(out[17], 0x645);
    ASSERT_EQ(mqc_saslprep_nfkc(in, 1, out, 17), (size_t) -1);
}

TEST("/saslprep/prohibited", saslprep_prohibited)
{
    expect_fail("a\x7F", 2, 0, "prohibited");                /* C.2.1 DEL */
    expect_fail("a\xC2\x80", 3, 0, "prohibited");            /* C.2.2 U+0080 */
    expect_fail("\xEE\x80\x80", 3, 0, "prohibited");         /* C.3 private use U+E000 */
    expect_fail("\xEF\xB7\x90", 3, 0, "prohibited");         /* C.4 non-character U+FDD0 */
    expect_fail("\xEF\xBF\xBD", 3, 0, "prohibited");         /* C.6 U+FFFD */
    expect_fail("\xE2\xBF\xB0", 3, 0, "prohibited");         /* C.7 U+2FF0 */
    expect_fail("a\xE2\x80\x8E", 4, 0, "prohibited");        /* C.8 U+200E LRM */
    expect_fail("\xF3\xA0\x80\x81", 4, 0, "prohibited");     /* C.9 U+E0001 tag */
    expect_fail("a\0b", 3, 0, "prohibited");                 /* NUL */
}

TEST("/saslprep/unassigned", saslprep_unassigned)
{
    /* U+0221 and U+1F600 were unassigned in Unicode 3.2 */
    expect_fail("\xC8\xA1", 2, 0, "unassigned");
    expect_fail("\xF0\x9F\x98\x80", 4, 0, "unassigned");
    mqc_error_t e;
    char *got = mqc_saslprep("\xF0\x9F\x98\x80", 4, MQC_SASLPREP_ALLOW_UNASSIGNED, NULL, &e);
    ASSERT_NOT_NULL(got);
    bool same = strcmp(got, "\xF0\x9F\x98\x80") == 0;
    mqc_saslprep_free(got);
    ASSERT(same);
}

TEST("/saslprep/bidi", saslprep_bidi)
{
    /* U+0627 U+0628: all right-to-left: fine */
    expect_prep("\xD8\xA7\xD8\xA8", "\xD8\xA7\xD8\xA8");
    /* U+0627 1 U+0628: digits (EN) inside RTL text are allowed */
    expect_prep("\xD8\xA7" "1" "\xD8\xA8", "\xD8\xA7" "1" "\xD8\xA8");
    expect_fail("1\xD8\xA7", 3, 0, "right-to-left");        /* does not start with RandALCat */
    expect_fail("\xD8\xA7" "a\xD8\xA8", 5, 0, "mixes");     /* L inside RTL text */
}

TEST("/saslprep/invalid_utf8", saslprep_invalid_utf8)
{
    expect_fail("\xC3", 1, 0, "UTF-8");                      /* truncated */
    expect_fail("\xC0\xAF", 2, 0, "UTF-8");                  /* overlong '/' */
    expect_fail("\xE0\x80\xAF", 3, 0, "UTF-8");              /* overlong, 3 bytes */
    expect_fail("\xED\xA0\x80", 3, 0, "UTF-8");              /* surrogate U+D800 */
    expect_fail("\xF4\x90\x80\x80", 4, 0, "UTF-8");          /* beyond U+10FFFF */
    expect_fail("\x80", 1, 0, "UTF-8");                      /* lone continuation byte */
    expect_fail("\xFF", 1, 0, "UTF-8");
}

TEST("/saslprep/error_hides_input", saslprep_error_hides_input)
{
    const char *secret = "hunter2\x07secret";
    mqc_error_t e;
    ASSERT_NULL(mqc_saslprep(secret, strlen(secret), 0, NULL, &e));
    ASSERT(strstr(e.message, "hunter2") == NULL);
    ASSERT(strstr(e.message, "secret") == NULL);
}
