/* Server selection beyond the spec files: validation messages, operation counts, the local
 * threshold, compatibility errors, staleness arithmetic, deprioritized fallback. */
#include "common.h"
#include "sdam.h"
#include "select.h"
#include "tf.h"

/* A replica set a (primary, 10 ms), b (secondary, 12 ms, dc=ny), c (secondary, 40 ms, dc=sf). */
static void rs3(mqc_sdam_desc_t *td)
{
    const char *seeds[] = {"a", "b", "c"};
    mqc_error_t err;
    ASSERT(mqc_sdam_desc_init(td, MQC_TOPOLOGY_UNKNOWN, NULL, seeds, 3, NULL, &err));
    td->type = MQC_TOPOLOGY_RS_WITH_PRIMARY;
    static const struct {
        mqc_server_type_t t;
        double rtt;
        const char *dc;
        int64_t lwd;
    } def[] = {{MQC_SERVER_RS_PRIMARY, 10, "ny", 100000},
               {MQC_SERVER_RS_SECONDARY, 12, "ny", 100000},
               {MQC_SERVER_RS_SECONDARY, 40, "sf", 1000}};
    for (size_t i = 0; i < 3; i++) {
        mqc_sd_t *sd = &td->servers[i]->sd;
        sd->type = def[i].t;
        sd->has_rtt = true;
        sd->rtt_ms = def[i].rtt;
        sd->max_wire_version = 21;
        sd->has_last_write = true;
        sd->last_write_date_ms = def[i].lwd;
        sd->last_update_ms = 500;
        BSON_APPEND_UTF8(&sd->tags, "dc", def[i].dc);
    }
    mqc_sdam_recompute(td);
}

TEST("/select/validate", select_validate)
{
    mqc_sdam_desc_t td;
    mqc_read_pref_t rp;
    mqc_error_t err;
    rs3(&td);
    mqc_read_pref_init(&rp);
    ASSERT(mqc_read_pref_validate(&rp, &td, &err));
    rp.max_staleness_seconds = 120;
    ASSERT(!mqc_read_pref_validate(&rp, &td, &err));
    ASSERT_STR_CONTAINS(err.message, "primary");
    rp.mode = MQC_READ_SECONDARY;
    ASSERT(mqc_read_pref_validate(&rp, &td, &err));
    /* heartbeatFrequencyMS 120 s: the floor is 130 s */
    td.heartbeat_frequency_ms = 120000;
    ASSERT(!mqc_read_pref_validate(&rp, &td, &err));
    ASSERT_STR_CONTAINS(err.message, "at least 130");
    rp.max_staleness_seconds = -2;
    ASSERT(!mqc_read_pref_validate(&rp, &td, &err));
    /* tags with mode primary */
    bson_t tags = BSON_INITIALIZER, one = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&one, "dc", "ny");
    BSON_APPEND_DOCUMENT(&tags, "0", &one);
    mqc_read_pref_init(&rp);
    rp.tag_sets = &tags;
    ASSERT(!mqc_read_pref_validate(&rp, &td, &err));
    ASSERT_STR_CONTAINS(err.message, "tag sets");
    bson_destroy(&one);
    bson_destroy(&tags);
    mqc_read_mode_t m;
    ASSERT(mqc_read_mode_from_name("SecondaryPreferred", &m));
    ASSERT_EQ(m, MQC_READ_SECONDARY_PREFERRED);
    ASSERT_STR_EQ(mqc_read_mode_name(m), "secondaryPreferred");
    ASSERT(!mqc_read_mode_from_name("sideways", &m));
    mqc_sdam_desc_cleanup(&td);
}

TEST("/select/window_and_counts", select_window_and_counts)
{
    mqc_sdam_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t o;
    mqc_error_t err;
    mqc_sdam_server_t *win[3];
    size_t n;
    rs3(&td);
    mqc_read_pref_init(&rp);
    rp.mode = MQC_READ_NEAREST;
    mqc_select_opts_init(&o);
    o.read_pref = &rp;
    ASSERT(mqc_select_suitable(&td, &o, NULL, NULL, win, &n, &err));
    ASSERT_EQ(n, 2); /* a and b: c is 30 ms slower than a */
    o.local_threshold_ms = 0;
    ASSERT(mqc_select_suitable(&td, &o, NULL, NULL, win, &n, &err));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(win[0]->sd.address, "a:27017");
    o.local_threshold_ms = 100;
    /* With a and b busy, c (idle) wins every draw that includes it, never loses one. */
    td.servers[0]->operation_count = 5;
    td.servers[1]->operation_count = 5;
    mqc_rand_t rng;
    mqc_rand_seed(&rng, 1);
    int c_hits = 0;
    for (int i = 0; i < 300; i++) {
        mqc_sdam_server_t *s = mqc_select_server(&td, &o, mqc_rand_next, &rng, &err);
        ASSERT_NOT_NULL(s);
        if (s == td.servers[2]) c_hits++;
        mqc_select_done(s);
    }
    ASSERT_GT(c_hits, 150); /* expected 2/3 */
    /* selection increments, done decrements */
    mqc_sdam_server_t *s = mqc_select_server(&td, &o, mqc_rand_next, &rng, &err);
    uint32_t before = s->operation_count;
    mqc_select_done(s);
    ASSERT_EQ(s->operation_count, before - 1);
    mqc_sdam_desc_cleanup(&td);
}

TEST("/select/writes_and_incompatible", select_writes_and_incompatible)
{
    mqc_sdam_desc_t td;
    mqc_select_opts_t o;
    mqc_error_t err;
    mqc_rand_t rng;
    mqc_rand_seed(&rng, 7);
    rs3(&td);
    mqc_select_opts_init(&o);
    o.write = true;
    mqc_sdam_server_t *s = mqc_select_server(&td, &o, mqc_rand_next, &rng, &err);
    ASSERT_NOT_NULL(s);
    ASSERT_STR_EQ(s->sd.address, "a:27017");
    mqc_select_done(s);
    /* a retry leaves the primary out only if something else could take a write: nothing can */
    const char *depr[] = {"a:27017"};
    o.deprioritized = depr;
    o.n_deprioritized = 1;
    s = mqc_select_server(&td, &o, mqc_rand_next, &rng, &err);
    ASSERT_NOT_NULL(s);
    ASSERT_STR_EQ(s->sd.address, "a:27017");
    mqc_select_done(s);
    /* no primary: nothing, and no error (the caller waits) */
    td.servers[0]->sd.type = MQC_SERVER_UNKNOWN;
    td.type = MQC_TOPOLOGY_RS_NO_PRIMARY;
    ASSERT_NULL(mqc_select_server(&td, &o, mqc_rand_next, &rng, &err));
    ASSERT(!mqc_error_is_set(&err));
    /* an incompatible server makes selection fail with the reason */
    td.servers[1]->sd.max_wire_version = 4;
    mqc_sdam_recompute(&td);
    ASSERT_NULL(mqc_select_server(&td, &o, mqc_rand_next, &rng, &err));
    ASSERT_EQ(err.domain, MQC_ERROR_SELECTION);
    ASSERT_STR_CONTAINS(err.message, "b:27017 reports wire version 4");
    mqc_sdam_desc_cleanup(&td);
}

TEST("/select/staleness_and_tags", select_staleness_and_tags)
{
    mqc_sdam_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t o;
    mqc_error_t err;
    mqc_sdam_server_t *suit[3];
    size_t ns;
    rs3(&td);
    /* c is 99 s behind the primary: staleness 99 s + heartbeat 10 s */
    ASSERT_EQ(mqc_select_staleness_ms(&td, td.servers[2]), 99000 + 10000);
    ASSERT_EQ(mqc_select_staleness_ms(&td, td.servers[0]), 0);
    mqc_read_pref_init(&rp);
    rp.mode = MQC_READ_SECONDARY;
    rp.max_staleness_seconds = 100;
    mqc_select_opts_init(&o);
    o.read_pref = &rp;
    ASSERT(mqc_select_suitable(&td, &o, suit, &ns, NULL, NULL, &err));
    ASSERT_EQ(ns, 1);
    ASSERT_STR_EQ(suit[0]->sd.address, "b:27017");
    /* tag sets are tried in order: the first that matches anything wins */
    bson_t *tags = bson_new_from_json((const uint8_t *) "{\"0\": {\"dc\": \"tokyo\"}, \"1\": {\"dc\": \"sf\"}, "
                                                      "\"2\": {\"dc\": \"ny\"}}", -1, NULL);
    ASSERT_NOT_NULL(tags);
    rp.max_staleness_seconds = -1;
    rp.tag_sets = tags;
    ASSERT(mqc_select_suitable(&td, &o, suit, &ns, NULL, NULL, &err));
    ASSERT_EQ(ns, 1);
    ASSERT_STR_EQ(suit[0]->sd.address, "c:27017");
    /* secondaryPreferred with no matching secondary falls back to the primary */
    bson_t *none = bson_new_from_json((const uint8_t *) "{\"0\": {\"dc\": \"tokyo\"}}", -1, NULL);
    rp.mode = MQC_READ_SECONDARY_PREFERRED;
    rp.tag_sets = none;
    ASSERT(mqc_select_suitable(&td, &o, suit, &ns, NULL, NULL, &err));
    ASSERT_EQ(ns, 1);
    ASSERT_STR_EQ(suit[0]->sd.address, "a:27017");
    bson_destroy(none);
    bson_destroy(tags);
    mqc_sdam_desc_cleanup(&td);
}

TEST("/select/rand_uniform", select_rand_uniform)
{
    /* the helper PRNG is deterministic per seed and spreads over a small range */
    mqc_rand_t a, b;
    mqc_rand_seed(&a, 42);
    mqc_rand_seed(&b, 42);
    int buckets[3] = {0};
    for (int i = 0; i < 3000; i++) {
        uint32_t x = mqc_rand_next(&a);
        ASSERT_EQ(x, mqc_rand_next(&b));
        buckets[x % 3]++;
    }
    for (int i = 0; i < 3; i++) ASSERT_GT(buckets[i], 850);
}
