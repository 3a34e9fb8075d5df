// fuzz-sources: cli/workload.c cli/template.c cli/keydist.c cli/args.c lib/uri_redact.c lib/common.c cli/xopts.c cli/parse.c cli/ycsb.c
// fuzz-options: -max_len=4096
/* libFuzzer target for mqload's workloads and templates (cli/workload.c, cli/template.c).
 *
 * Input: byte 0 chooses the path, the rest is Extended JSON.
 *   bit 0 set: a whole --workload file (written to a memfd and loaded as mqload does), then a
 *              thread instance draws 16 operations and a seeding document;
 *   bit 0 clear: one template (bit 1: an array) compiled and evaluated 8 times.
 * Checks: loading either succeeds or fails with a message; every rendered document is valid
 * BSON; a constant template renders the same bytes every time; a template evaluated by copying
 * bytes (only $key varies) renders the tree's bytes. ASan/UBSan catch the rest. */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../cli/workload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz_template: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static void check_doc(const bson_t *b)
{
    CHECK(bson_validate(b, BSON_VALIDATE_NONE, NULL));
}

static void run_workload(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_workload", 0);
        CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t) size);

    mqload_config_t cfg;
    mqload_config_init(&cfg);
    cfg.workload_file = strdup(path);
    mqload_workload_t wl;
    char err[512] = "";
    if (!mqload_workload_load(&wl, &cfg, err, sizeof err)) {
        CHECK(err[0]);
        mqload_config_free(&cfg);
        return;
    }
    CHECK(wl.n_ops > 0 && wl.n_ops <= MQLOAD_MAX_OPS);
    mqload_wl_thread_t t;
    CHECK(mqload_wl_thread_init(&t, &wl, 7, 1, 3, err, sizeof err)); /* the probe passed: so must this */
    mqload_opinst_t oi;
    mqload_opinst_init(&oi);
    for (int i = 0; i < 16; i++) {
        mqload_wl_next(&t, &oi);
        CHECK(oi.op < wl.n_ops);
        check_doc(oi.filter), check_doc(oi.document), check_doc(oi.update);
        check_doc(oi.pipeline), check_doc(oi.command), check_doc(oi.options);
        if (oi.type == MQLOAD_OP_RMW) mqload_wl_rmw_update(&t, &oi), check_doc(oi.update);
    }
    bson_t seed = BSON_INITIALIZER;
    mqload_wl_seed_doc(&t, 42, &seed);
    check_doc(&seed);
    bson_destroy(&seed);
    bson_t norm = BSON_INITIALIZER;
    mqload_workload_to_bson(&wl, &norm);
    check_doc(&norm);
    bson_destroy(&norm);
    mqload_opinst_free(&oi);
    mqload_wl_thread_free(&t);
    mqload_workload_free(&wl);
    mqload_config_free(&cfg);
}

static void run_template(const uint8_t *data, size_t size, bool is_array)
{
    bson_error_t be;
    bson_t *src = bson_new_from_json(data, (ssize_t) size, &be);
    if (!src) return;
    char err[256] = "";
    mqload_template_t *t = mqload_template_compile(src, is_array, err, sizeof err);
    if (!t) {
        CHECK(err[0]);
        bson_destroy(src);
        return;
    }
    mqload_rng_t rng;
    mqload_rng_seed(&rng, 1, 2);
    mqload_tctx_t ctx = {.rng = &rng, .key = 5, .lane = 1, .lanes = 2};
    bson_t first = BSON_INITIALIZER, out = BSON_INITIALIZER;
    mqload_template_eval(t, &ctx, &first);
    check_doc(&first);
    for (int i = 0; i < 7; i++) {
        ctx.key = i;
        mqload_template_eval(t, &ctx, &out);
        check_doc(&out);
        if (mqload_template_is_constant(t))
            CHECK(out.len == first.len && memcmp(bson_get_data(&out), bson_get_data(&first), out.len) == 0);
    }
    (void) mqload_template_uses_key(t);
    if (mqload_template_is_fixed(t)) { /* the copied bytes are the tree's, whatever the key */
        bson_t tree = BSON_INITIALIZER;
        for (int i = 0; i < 4; i++) {
            ctx.key = i == 0 ? INT64_MIN : i == 1 ? -1 : i == 2 ? INT64_MAX : 0x0102030405060708;
            mqload_template_eval(t, &ctx, &out);
            mqload_template_eval_tree(t, &ctx, &tree);
            CHECK(out.len == tree.len && memcmp(bson_get_data(&out), bson_get_data(&tree), out.len) == 0);
        }
        bson_destroy(&tree);
    }
    bson_destroy(&first);
    bson_destroy(&out);
    mqload_template_destroy(t);
    bson_destroy(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) run_workload(data + 1, size - 1);
    else run_template(data + 1, size - 1, (data[0] & 2) != 0);
    return 0;
}
