/* select: server selection over a topology description, after the Server Selection and Max
 * Staleness specifications (source/server-selection/server-selection.md,
 * source/max-staleness/max-staleness.md). Pure logic: the waiting for a suitable server (and the
 * immediate checks it requests) belongs to the client.
 *
 *   suitable servers (by topology type, operation, read preference: mode, then staleness, then
 *   tag sets; deprioritized servers left out unless nothing else is suitable)
 *   -> latency window (fastest average RTT + localThresholdMS)
 *   -> two servers drawn at random from the window, the one with fewer operations in progress
 *      ("power of two choices", the spec's operationCount rule). */
#ifndef MQC_SELECT_H
#define MQC_SELECT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"
#include "sdam.h"
#include "uri.h"   /* mqc_read_mode_t */

/* idleWritePeriodMS and smallestMaxStalenessSeconds of the Max Staleness spec. */
#define MQC_IDLE_WRITE_PERIOD_MS 10000
#define MQC_SMALLEST_MAX_STALENESS_S 90
#define MQC_LOCAL_THRESHOLD_MS_DEFAULT 15

typedef struct {
    mqc_read_mode_t mode;
    const bson_t *tag_sets;           /* an array of documents (borrowed); NULL or empty: [{}] */
    int64_t max_staleness_seconds;    /* -1: no maximum */
} mqc_read_pref_t;

/* {mode: primary}, no tags, no maximum staleness. */
void mqc_read_pref_init(mqc_read_pref_t *rp);
/* The spec's mode names, in camel case ("secondaryPreferred"); case-insensitive parse. */
const char *mqc_read_mode_name(mqc_read_mode_t mode);
bool mqc_read_mode_from_name(const char *name, mqc_read_mode_t *mode);

/* Checks rp against the topology: tag sets or maxStalenessSeconds with mode primary, a negative
 * maxStalenessSeconds other than -1, and, for replica sets, maxStalenessSeconds below 90 s or
 * below (heartbeatFrequencyMS + 10 s). Returns false with error (MQC_ERROR_CLIENT,
 * MQC_CLIENT_INVALID_ARG). */
bool mqc_read_pref_validate(const mqc_read_pref_t *rp, const mqc_sdam_desc_t *td, mqc_error_t *error);

typedef struct {
    bool write;                       /* a write: primary, mongos, standalone only */
    const mqc_read_pref_t *read_pref; /* reads; NULL: primary */
    int64_t local_threshold_ms;       /* < 0: the default, 15 */
    const char *const *deprioritized; /* addresses tried already (a retry), or NULL */
    size_t n_deprioritized;
} mqc_select_opts_t;

void mqc_select_opts_init(mqc_select_opts_t *opts);

/* The suitable servers and those of them in the latency window. suitable and window are arrays
 * of td->n_servers entries (either may be NULL); they receive pointers into td, valid until the
 * next update of td. Returns false with error for an invalid read preference or an incompatible
 * topology (wire versions); true otherwise, with *n_window 0 when nothing is suitable now. */
bool mqc_select_suitable(const mqc_sdam_desc_t *td, const mqc_select_opts_t *opts,
                         mqc_sdam_server_t **suitable, size_t *n_suitable, mqc_sdam_server_t **window,
                         size_t *n_window, mqc_error_t *error);

/* A uniform 32-bit random number; the caller's (tests seed it for determinism). */
typedef uint32_t (*mqc_rand_fn)(void *ud);

/* A small PRNG (xorshift64*) usable as mqc_rand_fn with ud = &state. */
typedef struct {
    uint64_t s;
} mqc_rand_t;
void mqc_rand_seed(mqc_rand_t *r, uint64_t seed);
uint32_t mqc_rand_next(void *r);

/* Of two servers drawn at random from window[0..n-1], the one with the smaller
 * operation_count (the first drawn on a tie). NULL when n is 0. */
mqc_sdam_server_t *mqc_select_from_window(mqc_sdam_server_t *const *window, size_t n, mqc_rand_fn rand_fn,
                                          void *rand_ud);

/* The whole algorithm: suitable, window, choice; the chosen server's operation_count is
 * incremented (call mqc_select_done when the operation ends, whatever its outcome). Returns NULL
 * with error set for an invalid request, NULL with error cleared when no server is suitable yet
 * (wait for the topology to change and try again). */
mqc_sdam_server_t *mqc_select_server(const mqc_sdam_desc_t *td, const mqc_select_opts_t *opts,
                                     mqc_rand_fn rand_fn, void *rand_ud, mqc_error_t *error);
void mqc_select_done(mqc_sdam_server_t *server);

/* Staleness of a secondary in ms (the spec's formulas; 0 for other types and topologies). */
int64_t mqc_select_staleness_ms(const mqc_sdam_desc_t *td, const mqc_sdam_server_t *server);

#endif
