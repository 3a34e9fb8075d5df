// fuzz-sources: lib/scram.c lib/scram_cache.c lib/saslprep.c lib/common.c
/* libFuzzer target: everything a server (or a man in the middle) can send to the SCRAM client,
 * and SASLprep on arbitrary bytes.
 *
 * Input: one mode byte, then the data.
 *   mode & 3 == 0: raw server-first message, '\n', raw server-final message
 *   mode & 3 == 1: a sequence of BSON documents: saslStart/saslContinue replies (or a hello's
 *                  speculativeAuthenticate document first when mode & 8)
 *   mode & 3 == 2: SASLprep of the data (mode & 8: unassigned code points allowed)
 * mode & 4 selects SCRAM-SHA-256 (else SCRAM-SHA-1). The client nonce is fixed to the auth
 * spec's, so the spec's vectors in the corpus reach the end of the conversation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "saslprep.h"
#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mqc_scram_cache_t *cache;

static mqc_scram_t *start(mqc_scram_mech_t mech)
{
    mqc_error_t e;
    mqc_scram_t *s = mqc_scram_new(mech, "user", "pencil", cache, &e);
    if (!s) abort();
    if (!mqc_scram_set_client_nonce(s, mech == MQC_SCRAM_SHA_1 ? "fyko+d2lbbFgONRv9qkxdawL" : "rOprNGfwEbeRWgbNEkqO", &e))
        abort();
    return s;
}

static void raw(mqc_scram_mech_t mech, const uint8_t *d, size_t n)
{
    mqc_error_t e;
    const uint8_t *out;
    size_t out_len;
    const uint8_t *nl = memchr(d, '\n', n);
    size_t first_len = nl ? (size_t) (nl - d) : n;
    mqc_scram_t *s = start(mech);
    if (mqc_scram_client_first(s, &out, &out_len, &e) &&
        mqc_scram_handle_server_first(s, d, first_len, &out, &out_len, &e) && nl)
        mqc_scram_handle_server_final(s, nl + 1, n - first_len - 1, &e);
    mqc_scram_destroy(s);
}

static void replies(mqc_scram_mech_t mech, bool speculative, const uint8_t *d, size_t n)
{
    mqc_error_t e;
    bson_t cmd, next;
    mqc_scram_t *s = start(mech);
    bool ok = speculative ? mqc_scram_speculative(s, "admin", &cmd, &e) : mqc_scram_sasl_start(s, &cmd, &e);
    if (!ok) abort();
    bson_destroy(&cmd);
    bson_reader_t *r = bson_reader_new_from_data(d, n);
    const bson_t *doc;
    bool eof = false;
    while ((doc = bson_reader_read(r, &eof)) != NULL) {
        if (!bson_validate(doc, BSON_VALIDATE_NONE, NULL)) break;
        mqc_scram_result_t rc = mqc_scram_reply(s, doc, &next, &e);
        if (rc != MQC_SCRAM_SEND) break;
        bson_destroy(&next);
    }
    bson_reader_destroy(r);
    mqc_scram_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cache && !(cache = mqc_scram_cache_new())) abort();
    if (size < 1) return 0;
    uint8_t mode = data[0];
    mqc_scram_mech_t mech = (mode & 4) ? MQC_SCRAM_SHA_256 : MQC_SCRAM_SHA_1;
    data++;
    size--;
    switch (mode & 3) {
    case 0: raw(mech, data, size); break;
    case 1: replies(mech, mode & 8, data, size); break;
    case 2: {
        mqc_error_t e;
        char *p = mqc_saslprep((const char *) data, size, (mode & 8) ? MQC_SASLPREP_ALLOW_UNASSIGNED : 0, NULL, &e);
        mqc_saslprep_free(p);
        break;
    }
    default: break;
    }
    return 0;
}
