/* select: suitable servers, latency window and the power-of-two choice (see select.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "select.h"

void mqc_read_pref_init(mqc_read_pref_t *rp)
{
    rp->mode = MQC_READ_PRIMARY;
    rp->tag_sets = NULL;
    rp->max_staleness_seconds = -1;
}

static const char *const mode_names[] = {
    [MQC_READ_PRIMARY] = "primary",
    [MQC_READ_PRIMARY_PREFERRED] = "primaryPreferred",
    [MQC_READ_SECONDARY] = "secondary",
    [MQC_READ_SECONDARY_PREFERRED] = "secondaryPreferred",
    [MQC_READ_NEAREST] = "nearest",
};

const char *mqc_read_mode_name(mqc_read_mode_t mode)
{
    return (size_t) mode < sizeof mode_names / sizeof mode_names[0] ? mode_names[mode] : "invalid";
}

bool mqc_read_mode_from_name(const char *name, mqc_read_mode_t *mode)
{
    for (size_t i = 0; name && i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (!strcasecmp(name, mode_names[i])) {
            *mode = (mqc_read_mode_t) i;
            return true;
        }
    return false;
}

/* True when tag_sets holds a tag set that is not empty. */
static bool has_tags(const bson_t *tag_sets)
{
    bson_iter_t it;
    if (!tag_sets || !bson_iter_init(&it, tag_sets)) return false;
    while (bson_iter_next(&it)) {
        uint32_t len = 0;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) return true;
        bson_iter_document(&it, &len, &data);
        if (len > 5) return true;
    }
    return false;
}

bool mqc_read_pref_validate(const mqc_read_pref_t *rp, const mqc_sdam_desc_t *td, mqc_error_t *error)
{
    int64_t ms = rp->max_staleness_seconds;
    if (rp->mode == MQC_READ_PRIMARY && has_tags(rp->tag_sets)) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG,
                      "read preference mode primary cannot be combined with tag sets");
        return false;
    }
    if (ms == -1) return true;
    if (ms < 0) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG,
                      "maxStalenessSeconds must be positive or -1, got %" PRId64, ms);
        return false;
    }
    if (rp->mode == MQC_READ_PRIMARY) {
        mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG,
                      "read preference mode primary cannot be combined with maxStalenessSeconds");
        return false;
    }
    if (td->type == MQC_TOPOLOGY_RS_NO_PRIMARY || td->type == MQC_TOPOLOGY_RS_WITH_PRIMARY) {
        int64_t floor_s = (td->heartbeat_frequency_ms + MQC_IDLE_WRITE_PERIOD_MS + 999) / 1000;
        if (floor_s < MQC_SMALLEST_MAX_STALENESS_S) floor_s = MQC_SMALLEST_MAX_STALENESS_S;
        if (ms < MQC_SMALLEST_MAX_STALENESS_S ||
            ms * 1000 < td->heartbeat_frequency_ms + MQC_IDLE_WRITE_PERIOD_MS) {
            mqc_error_set(error, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG,
                          "maxStalenessSeconds %" PRId64 " is too small: at least %" PRId64
                          " s with heartbeatFrequencyMS %" PRId64,
                          ms, floor_s, td->heartbeat_frequency_ms);
            return false;
        }
    }
    return true;
}

void mqc_select_opts_init(mqc_select_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->local_threshold_ms = -1;
}

/* ---- filters ---------------------------------------------------------------------------- */

static bool available(const mqc_sdam_server_t *s)
{
    return s->sd.type != MQC_SERVER_UNKNOWN && s->sd.type != MQC_SERVER_POSSIBLE_PRIMARY;
}

int64_t mqc_select_staleness_ms(const mqc_sdam_desc_t *td, const mqc_sdam_server_t *server)
{
    const mqc_sd_t *s = &server->sd;
    if (s->type != MQC_SERVER_RS_SECONDARY) return 0;
    if (td->type == MQC_TOPOLOGY_RS_WITH_PRIMARY) {
        const mqc_sdam_server_t *p = mqc_sdam_primary(td);
        if (p)
            return (s->last_update_ms - s->last_write_date_ms) -
                   (p->sd.last_update_ms - p->sd.last_write_date_ms) + td->heartbeat_frequency_ms;
    }
    /* Without a primary, measured against the most advanced secondary. */
    int64_t max_lwd = s->last_write_date_ms;
    for (size_t i = 0; i < td->n_servers; i++) {
        const mqc_sd_t *o = &td->servers[i]->sd;
        if (o->type == MQC_SERVER_RS_SECONDARY && o->last_write_date_ms > max_lwd) max_lwd = o->last_write_date_ms;
    }
    return max_lwd - s->last_write_date_ms + td->heartbeat_frequency_ms;
}

/* T ⊆ S: every tag of the read preference's set is on the server with the same value. */
static bool tags_match(const bson_t *server_tags, const bson_iter_t *tag_set)
{
    bson_iter_t t, s;
    if (!BSON_ITER_HOLDS_DOCUMENT(tag_set) || !bson_iter_recurse(tag_set, &t)) return false;
    while (bson_iter_next(&t)) {
        if (!bson_iter_init_find(&s, server_tags, bson_iter_key(&t))) return false;
        if (!BSON_ITER_HOLDS_UTF8(&t) || !BSON_ITER_HOLDS_UTF8(&s)) return false;
        if (strcmp(bson_iter_utf8(&t, NULL), bson_iter_utf8(&s, NULL))) return false;
    }
    return true;
}

/* Keeps the candidates matching the first tag set that matches any; none if no set does. */
static size_t filter_tags(mqc_sdam_server_t **c, size_t n, const bson_t *tag_sets)
{
    bson_iter_t it;
    if (!tag_sets || bson_count_keys(tag_sets) == 0 || !bson_iter_init(&it, tag_sets)) return n;
    while (bson_iter_next(&it)) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (tags_match(&c[i]->sd.tags, &it)) w++;
        if (!w) continue;
        w = 0;
        for (size_t i = 0; i < n; i++)
            if (tags_match(&c[i]->sd.tags, &it)) c[w++] = c[i];
        return w;
    }
    return 0;
}

static size_t filter_staleness(const mqc_sdam_desc_t *td, mqc_sdam_server_t **c, size_t n,
                               int64_t max_staleness_s)
{
    if (max_staleness_s <= 0) return n;
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (mqc_select_staleness_ms(td, c[i]) <= max_staleness_s * 1000) c[w++] = c[i];
    return w;
}

static bool deprioritized(const mqc_select_opts_t *o, const mqc_sdam_server_t *s)
{
    for (size_t i = 0; i < o->n_deprioritized; i++)
        if (o->deprioritized[i] && !strcmp(o->deprioritized[i], s->sd.address)) return true;
    return false;
}

/* Secondaries (and the primary for nearest), then staleness, then tags. */
static size_t rs_eligible(const mqc_sdam_desc_t *td, const mqc_read_pref_t *rp, bool with_primary,
                          bool skip_depr, const mqc_select_opts_t *o, mqc_sdam_server_t **out)
{
    size_t n = 0;
    for (size_t i = 0; i < td->n_servers; i++) {
        mqc_sdam_server_t *s = td->servers[i];
        if (skip_depr && deprioritized(o, s)) continue;
        if (s->sd.type == MQC_SERVER_RS_SECONDARY || (with_primary && s->sd.type == MQC_SERVER_RS_PRIMARY))
            out[n++] = s;
    }
    n = filter_staleness(td, out, n, rp->max_staleness_seconds);
    return filter_tags(out, n, rp->tag_sets);
}

static size_t find_suitable(const mqc_sdam_desc_t *td, const mqc_select_opts_t *o, const mqc_read_pref_t *rp,
                            bool skip_depr, mqc_sdam_server_t **out)
{
    size_t n = 0;
    mqc_sdam_server_t *primary = NULL;
    switch (td->type) {
    case MQC_TOPOLOGY_UNKNOWN:
        return 0;
    case MQC_TOPOLOGY_SINGLE:
    case MQC_TOPOLOGY_SHARDED:
    case MQC_TOPOLOGY_LOAD_BALANCED:
        /* Read preference does not choose here: it is passed on to the mongos. */
        for (size_t i = 0; i < td->n_servers; i++) {
            mqc_sdam_server_t *s = td->servers[i];
            if (skip_depr && deprioritized(o, s)) continue;
            if (td->type == MQC_TOPOLOGY_SINGLE ? available(s)
                : td->type == MQC_TOPOLOGY_SHARDED ? s->sd.type == MQC_SERVER_MONGOS
                                                   : s->sd.type == MQC_SERVER_LOAD_BALANCER)
                out[n++] = s;
        }
        return n;
    case MQC_TOPOLOGY_RS_NO_PRIMARY:
    case MQC_TOPOLOGY_RS_WITH_PRIMARY:
        for (size_t i = 0; i < td->n_servers; i++)
            if (td->servers[i]->sd.type == MQC_SERVER_RS_PRIMARY && !(skip_depr && deprioritized(o, td->servers[i])))
                primary = td->servers[i];
        if (o->write || rp->mode == MQC_READ_PRIMARY) {
            if (primary) out[n++] = primary;
            return n;
        }
        switch (rp->mode) {
        case MQC_READ_PRIMARY_PREFERRED:
            if (primary) {
                out[0] = primary;
                return 1;
            }
            return rs_eligible(td, rp, false, skip_depr, o, out);
        case MQC_READ_SECONDARY_PREFERRED:
            n = rs_eligible(td, rp, false, skip_depr, o, out);
            if (!n && primary) out[n++] = primary;
            return n;
        case MQC_READ_NEAREST:
            return rs_eligible(td, rp, true, skip_depr, o, out);
        default:
            return rs_eligible(td, rp, false, skip_depr, o, out);
        }
    }
    return 0;
}

bool mqc_select_suitable(const mqc_sdam_desc_t *td, const mqc_select_opts_t *opts,
                         mqc_sdam_server_t **suitable, size_t *n_suitable, mqc_sdam_server_t **window,
                         size_t *n_window, mqc_error_t *error)
{
    mqc_read_pref_t primary;
    mqc_read_pref_init(&primary);
    const mqc_read_pref_t *rp = opts->read_pref && !opts->write ? opts->read_pref : &primary;
    if (n_suitable) *n_suitable = 0;
    if (n_window) *n_window = 0;
    if (!td->compatible) {
        mqc_error_set(error, MQC_ERROR_SELECTION, 0, "%s", td->compatibility_error);
        return false;
    }
    if (!mqc_read_pref_validate(rp, td, error)) return false;
    mqc_sdam_server_t *stack[16];
    mqc_sdam_server_t **buf = td->n_servers <= 16 ? stack : bson_malloc(td->n_servers * sizeof *buf);
    size_t n = find_suitable(td, opts, rp, opts->n_deprioritized > 0, buf);
    if (!n && opts->n_deprioritized) n = find_suitable(td, opts, rp, false, buf);
    if (suitable) memcpy(suitable, buf, n * sizeof *buf);
    if (n_suitable) *n_suitable = n;
    double lo = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || buf[i]->sd.rtt_ms < lo) lo = buf[i]->sd.rtt_ms;
    int64_t threshold = opts->local_threshold_ms < 0 ? MQC_LOCAL_THRESHOLD_MS_DEFAULT : opts->local_threshold_ms;
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i]->sd.rtt_ms <= lo + (double) threshold) {
            if (window) window[w] = buf[i];
            w++;
        }
    if (n_window) *n_window = w;
    if (buf != stack) bson_free(buf);
    return true;
}

/* ---- choice ----------------------------------------------------------------------------- */

void mqc_rand_seed(mqc_rand_t *r, uint64_t seed) { r->s = seed ? seed : 0x9e3779b97f4a7c15ull; }

uint32_t mqc_rand_next(void *ud)
{
    mqc_rand_t *r = ud;
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t) ((r->s * 0x2545f4914f6cdd1dull) >> 32);
}

/* Uniform in [0, n) without modulo bias. */
static size_t draw(size_t n, mqc_rand_fn rand_fn, void *ud)
{
    uint32_t limit = UINT32_MAX - (uint32_t) ((((uint64_t) UINT32_MAX) + 1) % n);
    uint32_t x;
    do x = rand_fn(ud);
    while (x > limit);
    return x % n;
}

mqc_sdam_server_t *mqc_select_from_window(mqc_sdam_server_t *const *window, size_t n, mqc_rand_fn rand_fn,
                                          void *rand_ud)
{
    if (n == 0) return NULL;
    if (n == 1) return window[0];
    size_t i = draw(n, rand_fn, rand_ud);
    size_t j = draw(n - 1, rand_fn, rand_ud);
    if (j >= i) j++;
    return window[j]->operation_count < window[i]->operation_count ? window[j] : window[i];
}

mqc_sdam_server_t *mqc_select_server(const mqc_sdam_desc_t *td, const mqc_select_opts_t *opts,
                                     mqc_rand_fn rand_fn, void *rand_ud, mqc_error_t *error)
{
    mqc_error_clear(error);
    if (td->n_servers == 0) return NULL;
    mqc_sdam_server_t *stack[16];
    mqc_sdam_server_t **win = td->n_servers <= 16 ? stack : bson_malloc(td->n_servers * sizeof *win);
    size_t n = 0;
    mqc_sdam_server_t *s = NULL;
    if (mqc_select_suitable(td, opts, NULL, NULL, win, &n, error)) {
        s = mqc_select_from_window(win, n, rand_fn, rand_ud);
        if (s) s->operation_count++;
    }
    if (win != stack) bson_free(win);
    return s;
}

void mqc_select_done(mqc_sdam_server_t *server)
{
    if (server && server->operation_count > 0) server->operation_count--;
}
