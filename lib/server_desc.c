/* server_desc: one server's description from a hello reply, and the operations on descriptions
 * the topology's update rules use (copy, compare, address sets; see server_desc.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_desc.h"

/* ---- names ------------------------------------------------------------------------------ */

static const char *const server_type_names[] = {
    [MQC_SERVER_UNKNOWN] = "Unknown",         [MQC_SERVER_STANDALONE] = "Standalone",
    [MQC_SERVER_MONGOS] = "Mongos",           [MQC_SERVER_POSSIBLE_PRIMARY] = "PossiblePrimary",
    [MQC_SERVER_RS_PRIMARY] = "RSPrimary",    [MQC_SERVER_RS_SECONDARY] = "RSSecondary",
    [MQC_SERVER_RS_ARBITER] = "RSArbiter",    [MQC_SERVER_RS_OTHER] = "RSOther",
    [MQC_SERVER_RS_GHOST] = "RSGhost",        [MQC_SERVER_LOAD_BALANCER] = "LoadBalancer",
};
#define N_SERVER_TYPES (sizeof server_type_names / sizeof server_type_names[0])

const char *mqc_server_type_name(mqc_server_type_t type)
{
    return (size_t) type < N_SERVER_TYPES ? server_type_names[type] : "Invalid";
}

bool mqc_server_type_from_name(const char *name, mqc_server_type_t *type)
{
    for (size_t i = 0; i < N_SERVER_TYPES; i++)
        if (name && !strcmp(name, server_type_names[i])) {
            *type = (mqc_server_type_t) i;
            return true;
        }
    return false;
}

bool mqc_server_type_is_data_bearing(mqc_server_type_t type)
{
    return type == MQC_SERVER_STANDALONE || type == MQC_SERVER_MONGOS || type == MQC_SERVER_RS_PRIMARY ||
           type == MQC_SERVER_RS_SECONDARY || type == MQC_SERVER_LOAD_BALANCER;
}

/* ---- small helpers ---------------------------------------------------------------------- */

bool mqc_sdam_normalize_address(const char *address, char *out, size_t out_size)
{
    size_t len = address ? strlen(address) : 0;
    if (len == 0 || len + 1 > out_size) return false;
    for (size_t i = 0; i <= len; i++) out[i] = (char) tolower((unsigned char) address[i]);
    /* A port is present after the last ':' unless that colon is inside an IPv6 literal. */
    const char *colon = strrchr(out, ':');
    const char *bracket = strrchr(out, ']');
    bool has_port = colon && (!bracket || colon > bracket) && (out[0] == '[' || strchr(out, ':') == colon);
    if (!has_port) {
        if (out[0] != '[' && colon) return true; /* bare IPv6 literal: leave as given */
        if (len + sizeof ":27017" > out_size) return false;
        memcpy(out + len, ":27017", sizeof ":27017");
    }
    return true;
}

static char *dup_lower(const char *s)
{
    if (!s) return NULL;
    char *d = bson_strdup(s);
    for (char *p = d; *p; p++) *p = (char) tolower((unsigned char) *p);
    return d;
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strset_cleanup(mqc_strset_t *s)
{
    for (size_t i = 0; i < s->n; i++) bson_free(s->v[i]);
    bson_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void strset_copy(mqc_strset_t *dst, const mqc_strset_t *src)
{
    dst->n = src->n;
    dst->v = src->n ? bson_malloc(src->n * sizeof *dst->v) : NULL;
    for (size_t i = 0; i < src->n; i++) dst->v[i] = bson_strdup(src->v[i]);
}

bool mqc_strset_contains(const mqc_strset_t *s, const char *addr)
{
    return s->n && bsearch(&addr, s->v, s->n, sizeof *s->v, cmp_str_ptr) != NULL;
}

static bool strset_equal(const mqc_strset_t *a, const mqc_strset_t *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i])) return false;
    return true;
}

/* Reads an array of addresses, normalised, sorted and without duplicates. */
static void strset_from_iter(mqc_strset_t *s, const bson_iter_t *it)
{
    bson_iter_t ch;
    char buf[MQC_SDAM_ADDR_MAX];
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &ch)) return;
    while (bson_iter_next(&ch)) {
        if (!BSON_ITER_HOLDS_UTF8(&ch)) continue;
        if (!mqc_sdam_normalize_address(bson_iter_utf8(&ch, NULL), buf, sizeof buf)) continue;
        s->v = bson_realloc(s->v, (s->n + 1) * sizeof *s->v);
        s->v[s->n++] = bson_strdup(buf);
    }
    if (s->n > 1) qsort(s->v, s->n, sizeof *s->v, cmp_str_ptr);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w && !strcmp(s->v[w - 1], s->v[i])) {
            bson_free(s->v[i]);
            continue;
        }
        s->v[w++] = s->v[i];
    }
    s->n = w;
}

double mqc_rtt_update(bool has_avg, double avg_ms, double sample_ms)
{
    if (!has_avg) return sample_ms;
    return 0.2 * sample_ms + 0.8 * avg_ms;
}

/* ---- topologyVersion -------------------------------------------------------------------- */

int mqc_sdam_topo_version_compare(const mqc_sdam_topo_version_t *tv1, const mqc_sdam_topo_version_t *tv2)
{
    if (!tv1 || !tv2 || !tv1->set || !tv2->set) return -1;
    if (!bson_oid_equal(&tv1->process_id, &tv2->process_id)) return -1;
    if (tv1->counter == tv2->counter) return 0;
    return tv1->counter < tv2->counter ? -1 : 1;
}

void mqc_sdam_topo_version_from_doc(const bson_t *doc, mqc_sdam_topo_version_t *tv)
{
    bson_iter_t it, ch;
    memset(tv, 0, sizeof *tv);
    if (!doc || !bson_iter_init_find(&it, doc, "topologyVersion") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &ch))
        return;
    bool has_pid = false, has_counter = false;
    while (bson_iter_next(&ch)) {
        if (!strcmp(bson_iter_key(&ch), "processId") && BSON_ITER_HOLDS_OID(&ch)) {
            bson_oid_copy(bson_iter_oid(&ch), &tv->process_id);
            has_pid = true;
        } else if (!strcmp(bson_iter_key(&ch), "counter") && BSON_ITER_HOLDS_NUMBER(&ch)) {
            tv->counter = bson_iter_as_int64(&ch);
            has_counter = true;
        }
    }
    tv->set = has_pid && has_counter;
}

/* ---- server descriptions ---------------------------------------------------------------- */

void mqc_sd_init_unknown(mqc_sd_t *sd, const char *address, const char *error)
{
    memset(sd, 0, sizeof *sd);
    if (!mqc_sdam_normalize_address(address, sd->address, sizeof sd->address))
        snprintf(sd->address, sizeof sd->address, "%s", address ? address : "");
    sd->type = MQC_SERVER_UNKNOWN;
    if (error) snprintf(sd->error, sizeof sd->error, "%s", error);
    bson_init(&sd->tags);
    sd->session_timeout_minutes = -1;
    sd->max_bson_object_size = 16 * 1024 * 1024;
    sd->max_message_size_bytes = 48000000;
    sd->max_write_batch_size = 100000;
}

static bool iter_true(const bson_iter_t *it) { return bson_iter_as_bool(it); }

/* A size limit from a hello reply: kept only when it is a positive int32 (a double is range
 * checked before conversion). Anything else leaves the default: a zero or negative (or wrapped)
 * maxMessageSizeBytes would later make every message "too large" (fuzz_hello found this). */
static void positive_i32(const bson_iter_t *it, int32_t *out)
{
    if (BSON_ITER_HOLDS_DOUBLE(it)) {
        double d = bson_iter_double(it);
        if (d >= 1 && d <= INT32_MAX) *out = (int32_t) d;
        return;
    }
    int64_t v = bson_iter_as_int64(it);
    if (v >= 1 && v <= INT32_MAX) *out = (int32_t) v;
}

void mqc_sd_init_from_hello(mqc_sd_t *sd, const char *address, const bson_t *reply, double rtt_ms,
                            int64_t now_ms)
{
    bson_iter_t it;
    mqc_sd_init_unknown(sd, address, NULL);
    sd->last_update_ms = now_ms;
    if (!reply || !bson_iter_init_find(&it, reply, "ok") || !BSON_ITER_HOLDS_NUMBER(&it) ||
        bson_iter_as_double(&it) != 1.0) {
        const char *msg = "hello failed";
        if (reply && bson_iter_init_find(&it, reply, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
            msg = bson_iter_utf8(&it, NULL);
        snprintf(sd->error, sizeof sd->error, "%s", msg);
        return;
    }
    if (rtt_ms >= 0) {
        sd->has_rtt = true;
        sd->rtt_ms = rtt_ms;
    }
    bool primary = false, have_writable = false, secondary = false, arbiter = false, hidden = false,
         isdbgrid = false, ghost = false;
    bson_iter_init(&it, reply);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "isWritablePrimary")) {
            primary = iter_true(&it);
            have_writable = true;
        } else if (!strcmp(k, "ismaster")) {
            /* hello's isWritablePrimary wins over the legacy field, in any order */
            if (!have_writable) primary = iter_true(&it);
        } else if (!strcmp(k, "secondary")) secondary = iter_true(&it);
        else if (!strcmp(k, "arbiterOnly")) arbiter = iter_true(&it);
        else if (!strcmp(k, "hidden")) hidden = iter_true(&it);
        else if (!strcmp(k, "isreplicaset")) ghost = iter_true(&it);
        else if (!strcmp(k, "msg") && BSON_ITER_HOLDS_UTF8(&it))
            isdbgrid = !strcmp(bson_iter_utf8(&it, NULL), "isdbgrid");
        else if (!strcmp(k, "setName") && BSON_ITER_HOLDS_UTF8(&it)) {
            bson_free(sd->set_name);
            sd->set_name = bson_strdup(bson_iter_utf8(&it, NULL));
        } else if (!strcmp(k, "setVersion") && BSON_ITER_HOLDS_NUMBER(&it)) {
            sd->has_set_version = true;
            sd->set_version = bson_iter_as_int64(&it);
        } else if (!strcmp(k, "electionId") && BSON_ITER_HOLDS_OID(&it)) {
            sd->has_election_id = true;
            bson_oid_copy(bson_iter_oid(&it), &sd->election_id);
        } else if ((!strcmp(k, "primary") || !strcmp(k, "me")) && BSON_ITER_HOLDS_UTF8(&it)) {
            char buf[MQC_SDAM_ADDR_MAX];
            if (!mqc_sdam_normalize_address(bson_iter_utf8(&it, NULL), buf, sizeof buf)) continue;
            char **dst = k[0] == 'p' ? &sd->primary : &sd->me;
            bson_free(*dst);
            *dst = dup_lower(buf);
        } else if (!strcmp(k, "hosts")) strset_from_iter(&sd->hosts, &it);
        else if (!strcmp(k, "passives")) strset_from_iter(&sd->passives, &it);
        else if (!strcmp(k, "arbiters")) strset_from_iter(&sd->arbiters, &it);
        else if (!strcmp(k, "tags") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t view;
            bson_iter_document(&it, &len, &data);
            bson_reinit(&sd->tags);
            if (bson_init_static(&view, data, len)) bson_concat(&sd->tags, &view);
        } else if (!strcmp(k, "lastWrite") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_t ch;
            if (bson_iter_recurse(&it, &ch) && bson_iter_find(&ch, "lastWriteDate")) {
                if (BSON_ITER_HOLDS_DATE_TIME(&ch)) {
                    sd->has_last_write = true;
                    sd->last_write_date_ms = bson_iter_date_time(&ch);
                } else if (BSON_ITER_HOLDS_NUMBER(&ch)) {
                    sd->has_last_write = true;
                    sd->last_write_date_ms = bson_iter_as_int64(&ch);
                }
            }
        } else if (!strcmp(k, "minWireVersion") && BSON_ITER_HOLDS_NUMBER(&it))
            sd->min_wire_version = (int32_t) bson_iter_as_int64(&it);
        else if (!strcmp(k, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&it))
            sd->max_wire_version = (int32_t) bson_iter_as_int64(&it);
        else if (!strcmp(k, "logicalSessionTimeoutMinutes") && BSON_ITER_HOLDS_NUMBER(&it))
            sd->session_timeout_minutes = bson_iter_as_int64(&it);
        else if (!strcmp(k, "maxBsonObjectSize") && BSON_ITER_HOLDS_NUMBER(&it))
            positive_i32(&it, &sd->max_bson_object_size);
        else if (!strcmp(k, "maxMessageSizeBytes") && BSON_ITER_HOLDS_NUMBER(&it))
            positive_i32(&it, &sd->max_message_size_bytes);
        else if (!strcmp(k, "maxWriteBatchSize") && BSON_ITER_HOLDS_NUMBER(&it))
            positive_i32(&it, &sd->max_write_batch_size);
    }
    mqc_sdam_topo_version_from_doc(reply, &sd->topology_version);

    /* The spec's ServerType table. A ghost reports no setName; a hidden member is never usable
     * even when it says secondary. */
    if (isdbgrid) sd->type = MQC_SERVER_MONGOS;
    else if (ghost) sd->type = MQC_SERVER_RS_GHOST;
    else if (sd->set_name) {
        if (hidden) sd->type = MQC_SERVER_RS_OTHER;
        else if (primary) sd->type = MQC_SERVER_RS_PRIMARY;
        else if (secondary) sd->type = MQC_SERVER_RS_SECONDARY;
        else if (arbiter) sd->type = MQC_SERVER_RS_ARBITER;
        else sd->type = MQC_SERVER_RS_OTHER;
    } else sd->type = MQC_SERVER_STANDALONE;
}

void mqc_sd_copy(mqc_sd_t *dst, const mqc_sd_t *src)
{
    *dst = *src; /* bson-ok: dst->tags is made anew by bson_copy_to below, before any use */
    dst->me = src->me ? bson_strdup(src->me) : NULL;
    dst->set_name = src->set_name ? bson_strdup(src->set_name) : NULL;
    dst->primary = src->primary ? bson_strdup(src->primary) : NULL;
    strset_copy(&dst->hosts, &src->hosts);
    strset_copy(&dst->passives, &src->passives);
    strset_copy(&dst->arbiters, &src->arbiters);
    bson_copy_to(&src->tags, &dst->tags);
}

void mqc_sd_cleanup(mqc_sd_t *sd)
{
    if (!sd) return;
    bson_free(sd->me);
    bson_free(sd->set_name);
    bson_free(sd->primary);
    strset_cleanup(&sd->hosts);
    strset_cleanup(&sd->passives);
    strset_cleanup(&sd->arbiters);
    bson_destroy(&sd->tags);
    sd->me = sd->set_name = sd->primary = NULL;
}

bool mqc_sd_equal(const mqc_sd_t *a, const mqc_sd_t *b)
{
    if (a->type != b->type || a->min_wire_version != b->min_wire_version ||
        a->max_wire_version != b->max_wire_version || !str_eq_null(a->me, b->me) ||
        !str_eq_null(a->set_name, b->set_name) || !str_eq_null(a->primary, b->primary) ||
        !strset_equal(&a->hosts, &b->hosts) || !strset_equal(&a->passives, &b->passives) ||
        !strset_equal(&a->arbiters, &b->arbiters) || !bson_equal(&a->tags, &b->tags) ||
        a->has_set_version != b->has_set_version || a->has_election_id != b->has_election_id ||
        a->session_timeout_minutes != b->session_timeout_minutes || strcmp(a->error, b->error))
        return false;
    if (a->has_set_version && a->set_version != b->set_version) return false;
    if (a->has_election_id && !bson_oid_equal(&a->election_id, &b->election_id)) return false;
    if (a->topology_version.set != b->topology_version.set) return false;
    return !a->topology_version.set || mqc_sdam_topo_version_compare(&a->topology_version, &b->topology_version) == 0;
}
