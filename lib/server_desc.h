/* server_desc: one server's description (the Server Discovery and Monitoring specification's
 * ServerDescription), made from one hello outcome, and what the topology's update rules (sdam.h)
 * do with descriptions: copy, compare, read address sets. Pure logic, like sdam.
 *
 * Addresses are "host:port", host in lower case ("[::1]:27017" for IPv6). */
#ifndef MQC_SERVER_DESC_H
#define MQC_SERVER_DESC_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQC_SDAM_ADDR_MAX 272
#define MQC_SDAM_ERROR_MAX 256

typedef enum {
    MQC_SERVER_UNKNOWN = 0,
    MQC_SERVER_STANDALONE,
    MQC_SERVER_MONGOS,
    MQC_SERVER_POSSIBLE_PRIMARY,
    MQC_SERVER_RS_PRIMARY,
    MQC_SERVER_RS_SECONDARY,
    MQC_SERVER_RS_ARBITER,
    MQC_SERVER_RS_OTHER,
    MQC_SERVER_RS_GHOST,
    MQC_SERVER_LOAD_BALANCER,
} mqc_server_type_t;

/* The spec's names ("RSPrimary", ...). Static storage. */
const char *mqc_server_type_name(mqc_server_type_t type);
/* From the spec's names; false when name is not one. */
bool mqc_server_type_from_name(const char *name, mqc_server_type_t *type);

/* A sorted set of addresses (hosts, passives, arbiters). */
typedef struct {
    char **v;
    size_t n;
} mqc_strset_t;

/* Whether addr (normalised) is in s. */
bool mqc_strset_contains(const mqc_strset_t *s, const char *addr);

typedef struct {
    bool set;
    bson_oid_t process_id;
    int64_t counter;
} mqc_sdam_topo_version_t;

/* -1 when tv1 < tv2 or either is unset or their processIds differ (the second is then assumed
 * newer), 0 when equal, 1 when tv1 > tv2. */
int mqc_sdam_topo_version_compare(const mqc_sdam_topo_version_t *tv1, const mqc_sdam_topo_version_t *tv2);
/* Reads {processId: ObjectId, counter: int} from doc's "topologyVersion"; unset when absent. */
void mqc_sdam_topo_version_from_doc(const bson_t *doc, mqc_sdam_topo_version_t *tv);

/* One server's description, made from one hello outcome. Owns its strings. */
typedef struct mqc_sd {
    char address[MQC_SDAM_ADDR_MAX];
    mqc_server_type_t type;
    char error[MQC_SDAM_ERROR_MAX];    /* "" when none */
    bool has_rtt;
    double rtt_ms;                     /* moving average (see mqc_rtt_update) */
    int64_t last_update_ms;            /* the caller's monotonic clock, in ms */
    bool has_last_write;
    int64_t last_write_date_ms;        /* lastWrite.lastWriteDate, ms since the epoch */
    int32_t min_wire_version, max_wire_version;
    char *me;                          /* NULL when absent; lower case */
    char *set_name;                    /* NULL when absent */
    char *primary;                     /* NULL when absent; lower case */
    mqc_strset_t hosts, passives, arbiters;
    bson_t tags;                       /* empty when none */
    bool has_set_version;
    int64_t set_version;
    bool has_election_id;
    bson_oid_t election_id;
    int64_t session_timeout_minutes;   /* logicalSessionTimeoutMinutes, -1 when absent */
    mqc_sdam_topo_version_t topology_version;
    int32_t max_bson_object_size;      /* defaults 16 MiB, 48 MB, 100000 when absent */
    int32_t max_message_size_bytes;
    int32_t max_write_batch_size;
} mqc_sd_t;

/* A default description of type Unknown for address, with an error message (may be NULL). */
void mqc_sd_init_unknown(mqc_sd_t *sd, const char *address, const char *error);
/* Parses a hello (or legacy isMaster) reply received at now_ms after rtt_ms (< 0: none). A reply
 * without ok: 1 gives an Unknown description carrying its errmsg. */
void mqc_sd_init_from_hello(mqc_sd_t *sd, const char *address, const bson_t *reply, double rtt_ms,
                            int64_t now_ms);
void mqc_sd_copy(mqc_sd_t *dst, const mqc_sd_t *src);
void mqc_sd_cleanup(mqc_sd_t *sd);
/* The spec's "Server Description Equality": the fields marked (=). */
bool mqc_sd_equal(const mqc_sd_t *a, const mqc_sd_t *b);
/* Data-bearing: Standalone, Mongos, RSPrimary, RSSecondary, LoadBalancer. */
bool mqc_server_type_is_data_bearing(mqc_server_type_t type);

/* Writes address normalised ("Host" -> "host:27017") into out; false when it does not fit or
 * is empty. */
bool mqc_sdam_normalize_address(const char *address, char *out, size_t out_size);

/* RTT moving average, alpha 0.2; the first sample (has_avg false) sets it. */
double mqc_rtt_update(bool has_avg, double avg_ms, double sample_ms);

#endif
