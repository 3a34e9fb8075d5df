/* uri: the connection string, parsed by libmongoc's mongoc_uri_t (it owns the connection-string
 * specification), with the options libmongoc drops or ignores read on top, and every value mqc
 * uses resolved to its default. */
#ifndef MQC_URI_H
#define MQC_URI_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqc.h"

typedef struct {
    char host[256];          /* name or address, without brackets; a path for a Unix socket */
    uint16_t port;
    bool is_unix;
    char host_and_port[272]; /* "host:port" ("[::1]:27017" for IPv6) or the socket path */
} mqc_uri_host_t;

typedef enum {
    MQC_READ_PRIMARY = 0,
    MQC_READ_PRIMARY_PREFERRED,
    MQC_READ_SECONDARY,
    MQC_READ_SECONDARY_PREFERRED,
    MQC_READ_NEAREST,
} mqc_read_mode_t;

typedef struct mqc_uri {
    void *mongoc_uri;            /* mongoc_uri_t *, owned */
    char *original;              /* as given (contains the password: never print it) */
    char *redacted;              /* password replaced by "***" */

    size_t n_hosts;
    mqc_uri_host_t *hosts;
    char *replica_set;           /* NULL when absent */
    bool direct_connection;      /* directConnection=true */
    bool direct_connection_set;
    bool load_balanced;
    bool load_balanced_set;      /* loadBalanced given (a TXT record's value must then not apply) */

    /* mongodb+srv (lib/seedlist.c): hosts stays empty until the SRV lookup fills it */
    char *srv_host;              /* the name to look up, NULL for mongodb:// */
    char *srv_service_name;      /* srvServiceName, "mongodb" by default (NULL without srv_host) */
    int32_t srv_max_hosts;       /* srvMaxHosts, 0: no limit */

    /* pool and timing; -1 where "unset" matters */
    int32_t max_pool_size;       /* 100 */
    int32_t min_pool_size;       /* 0 */
    int32_t max_connecting;      /* 2 */
    int64_t max_idle_time_ms;    /* 0 */
    int64_t wait_queue_timeout_ms; /* 0 */
    int64_t connect_timeout_ms;  /* 10000 */
    int64_t socket_timeout_ms;   /* 0: none */
    int64_t server_selection_timeout_ms; /* 30000 */
    int64_t heartbeat_frequency_ms;      /* 10000 */
    int64_t local_threshold_ms;  /* 15 */
    int64_t timeout_ms;          /* -1: unset */
    int64_t max_pending;         /* maxPendingOperations, 0: no limit */
    bool retry_reads;            /* true */
    bool retry_writes;           /* true */
    char *appname;               /* NULL when absent */

    /* concerns and preference, as documents ready to put in commands; empty when default */
    bson_t write_concern;        /* {w, j, wtimeout} */
    bool write_concern_unacknowledged; /* w=0 (and not j) */
    bson_t read_concern;         /* {level} */
    mqc_read_mode_t read_mode;
    bson_t read_tags;            /* array of tag sets, empty when none */
    int64_t max_staleness_seconds; /* -1: none */

    /* credentials (username NULL when none) */
    char *username;
    char *password;              /* wiped and freed by mqc_uri_cleanup */
    bool password_taken;         /* decoded by mqc, libmongoc saw 'x's (lib/uri.c take_secrets) */
    bool tls_key_password_taken; /* the same for tlsCertificateKeyFilePassword */
    char *auth_source;           /* resolved: the URI's authSource, else the database, else "admin" */
    bool auth_source_given;      /* authSource was in the URI (a TXT record's must then not apply) */
    char *auth_mechanism;        /* NULL: negotiate */
    bson_t auth_mechanism_properties;

    /* TLS */
    bool tls;
    char *tls_ca_file;
    char *tls_certificate_key_file;
    char *tls_certificate_key_file_password; /* wiped on cleanup */
    bool tls_allow_invalid_certificates;
    bool tls_allow_invalid_hostnames;

    char *database;              /* the path's database, NULL when absent */

    /* Warnings of mqc's own (libmongoc logs its own through mongoc_log): count and the first. */
    unsigned n_warnings;
    char warning[160];
} mqc_uri_t;

/* Parses uri into *out (zeroed first). On failure returns false with error (MQC_ERROR_URI, the
 * message naming the problem and never the password) and leaves *out empty. */
bool mqc_uri_parse(mqc_uri_t *out, const char *uri, mqc_error_t *error);
/* Frees everything; passwords are overwritten before they are freed. Accepts an empty uri. */
void mqc_uri_cleanup(mqc_uri_t *uri);

#endif
