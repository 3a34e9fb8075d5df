// fuzz-sources: lib/sdam.c lib/server_desc.c lib/common.c
// fuzz-options: -max_len=16384
/* libFuzzer target for hello (and legacy isMaster) replies: mqc_sd_init_from_hello, then the
 * description applied to topologies of every starting type.
 *
 * Input: byte 0 selects the starting topology type and whether the reply is given as raw BSON or
 * as Extended JSON (the seeds are JSON, which mutates into useful documents quickly); the rest is
 * the reply. Checks: parsing any document gives a description whose strings are terminated and
 * whose sizes are positive; a copy is equal to the original (mqc_sd_equal); applying it (twice,
 * the second time must change nothing the spec's equality sees) never crashes and leaves the
 * topology's servers with consistent addresses. ASan/UBSan catch the rest. */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sdam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_hello: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static const char *const ADDRESS = "a:27017";

static void apply(mqc_sdam_topo_type_t type, const mqc_sd_t *sd)
{
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_error_t err = {0};
    const char *seeds[] = {ADDRESS, "b:27017"};
    size_t n = type == MQC_TOPOLOGY_SINGLE || type == MQC_TOPOLOGY_LOAD_BALANCED ? 1 : 2;
    mqc_sdam_changes_init(&ch);
    const char *set = type == MQC_TOPOLOGY_RS_NO_PRIMARY ? "rs" : NULL;
    CHECK(mqc_sdam_desc_init(&td, type, set, seeds, n, &ch, &err));
    mqc_sdam_apply_sd(&td, sd, &ch);
    mqc_sdam_apply_sd(&td, sd, &ch); /* the same reply again: must be harmless */
    for (size_t i = 0; i < td.n_servers; i++) CHECK(memchr(td.servers[i]->sd.address, 0, MQC_SDAM_ADDR_MAX));
    CHECK(memchr(td.compatibility_error, 0, sizeof td.compatibility_error));
    (void) mqc_sdam_primary(&td);
    mqc_sdam_desc_cleanup(&td);
    mqc_sdam_changes_cleanup(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t cfg = data[0];
    data++, size--;
    bson_t doc;
    bson_t *owned = NULL;
    if (cfg & 1) {
        bson_error_t be;
        owned = bson_new_from_json(data, (ssize_t) size, &be);
        if (!owned) return 0;
    } else {
        /* the reader hands over documents it has only length-checked: validate as it does */
        if (!bson_init_static(&doc, data, size) || !bson_validate(&doc, BSON_VALIDATE_NONE, NULL)) return 0;
    }
    const bson_t *reply = owned ? owned : &doc;

    mqc_sd_t sd, copy;
    mqc_sd_init_from_hello(&sd, ADDRESS, reply, (cfg & 2) ? 1.5 : -1, 1000);
    CHECK(memchr(sd.address, 0, sizeof sd.address) && memchr(sd.error, 0, sizeof sd.error));
    CHECK(sd.max_bson_object_size > 0 && sd.max_message_size_bytes > 0 && sd.max_write_batch_size > 0);
    mqc_sd_copy(&copy, &sd);
    CHECK(mqc_sd_equal(&sd, &copy));
    mqc_sd_cleanup(&copy);

    static const mqc_sdam_topo_type_t types[] = {MQC_TOPOLOGY_UNKNOWN, MQC_TOPOLOGY_SINGLE,
                                                MQC_TOPOLOGY_SHARDED, MQC_TOPOLOGY_RS_NO_PRIMARY};
    apply(types[(cfg >> 2) & 3], &sd);
    mqc_sd_cleanup(&sd);
    if (owned) bson_destroy(owned);
    return 0;
}
