/* seedlist: mongodb+srv:// seed list discovery (the "Initial DNS Seedlist Discovery" specification).
 *
 * A mongodb+srv://NAME URI names no servers: the SRV records of _SERVICE._tcp.NAME do (SERVICE
 * is srvServiceName, "mongodb" by default), and one TXT record of NAME may add authSource,
 * replicaSet and loadBalanced. This file has three layers:
 *   - the DNS queries (mqc_seedlist_query), blocking, with glibc's resolver (res_nquery, ns_parserr:
 *     link with -lresolv);
 *   - pure rules (target names, TXT options, srvMaxHosts, option conflicts), testable without DNS;
 *   - the lookup: the queries run as a job of a worker thread (lib/worker.c), the result comes
 *     back on the loop. lib/client.c starts it for a mongodb+srv URI; until it ends operations
 *     wait as they wait for server selection.
 * SRV polling (rescanSRVIntervalMS, for mongos added or removed later) is not implemented: the
 * seed list is the one found when the client was made. */
#ifndef MQC_SEEDLIST_H
#define MQC_SEEDLIST_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqc.h"
#include "select.h"
#include "uri.h"
#include "worker.h"

/* One SRV answer: the target's name (lowercase, without the final dot) and port. */
typedef struct {
    char host[256];
    uint16_t port;
} mqc_seedlist_target_t;

/* What DNS said about a mongodb+srv name. */
typedef struct {
    size_t n_targets;
    mqc_seedlist_target_t *targets;
    size_t n_txt;              /* TXT records found (more than one is an error, found by apply) */
    char *txt;                 /* the first TXT record's strings joined, NULL when none */
} mqc_seedlist_records_t;

void mqc_seedlist_records_cleanup(mqc_seedlist_records_t *rec);

/* Blocking: SRV records of _service._tcp.host and TXT records of host. nameserver "IPv4:port"
 * sends the queries there (tests), NULL uses the system's resolver configuration. On failure
 * (no SRV record, a DNS error) false with error MQC_ERROR_RESOLVE naming the SRV name; *out is
 * then empty. A missing TXT record is no error. */
bool mqc_seedlist_query(const char *host, const char *service, const char *nameserver, mqc_seedlist_records_t *out,
                   mqc_error_t *error);

/* ---- pure rules ---------------------------------------------------------------------------- */

/* Lowercases name and drops one final '.', in place. */
void mqc_seedlist_normalize(char *name);
/* The spec's {domainname} of an SRV host name (normalized): the name without its first label
 * when it has three labels or more, else the whole name. Points into host. */
const char *mqc_seedlist_domain(const char *host);
/* May an SRV target be used for srv_host? Both normalized. The target must end with
 * "." + domain: for a name of one or two labels that means at least one more label. */
bool mqc_seedlist_target_allowed(const char *srv_host, const char *target);

/* Options of a TXT record: authSource, replicaSet, loadBalanced only. */
typedef struct {
    char *auth_source;         /* NULL when absent */
    char *replica_set;
    int load_balanced;         /* -1 absent, 0 false, 1 true */
} mqc_seedlist_txt_t;

/* Parses "key=value&key=value" (values percent-encoded). Any other option, a key without
 * value, an empty authSource or replicaSet, or loadBalanced other than true/false is an error
 * (MQC_ERROR_URI). *out is filled even on failure (clean it up). */
bool mqc_seedlist_parse_txt(const char *txt, mqc_seedlist_txt_t *out, mqc_error_t *error);
void mqc_seedlist_txt_cleanup(mqc_seedlist_txt_t *txt);

/* Keeps max_hosts of the n targets (all when max_hosts is 0 or >= n), chosen at random
 * (Fisher-Yates: the kept ones end up first, in random order). Returns how many are kept. */
size_t mqc_seedlist_pick(mqc_seedlist_target_t *targets, size_t n, int32_t max_hosts, mqc_rand_fn rand_fn, void *rand_ud);

/* Makes uri (a parsed mongodb+srv URI) what it stands for: every target checked against
 * uri->srv_host (MQC_ERROR_RESOLVE when one is not allowed), duplicates dropped, srvMaxHosts
 * applied, the TXT record's options added where the URI has none of its own, then the option
 * combinations the specs forbid rejected (MQC_ERROR_URI). uri->hosts is replaced on success
 * and untouched on failure. */
bool mqc_seedlist_apply(mqc_uri_t *uri, mqc_seedlist_records_t *rec, mqc_rand_fn rand_fn, void *rand_ud, mqc_error_t *error);

/* ---- asynchronous lookup --------------------------------------------------------------------- */

typedef struct mqc_seedlist_lookup mqc_seedlist_lookup_t;

/* Called once on the loop's thread: rec (the callee may take its contents) on success, else
 * NULL with error set. */
typedef void (*mqc_seedlist_cb)(void *ctx, mqc_seedlist_records_t *rec, const mqc_error_t *error);

/* Starts mqc_seedlist_query as a job of worker (lib/worker.c): DNS may take seconds, never on
 * the loop. The environment variable MQC_TEST_DNS ("127.0.0.1:PORT") redirects the queries: for
 * mqc's tests, which serve canned records; it is ignored in set-uid programs. NULL when the
 * job cannot be queued. */
mqc_seedlist_lookup_t *mqc_seedlist_lookup_start(mqc_worker_t *worker, const char *host, const char *service,
                                                 mqc_seedlist_cb cb, void *ctx);
/* No callback after this (the job's end is dropped on the loop, or at the worker's destroy).
 * NULL-safe. Must not be called from inside the lookup's own callback (the lookup is done then). */
void mqc_seedlist_lookup_cancel(mqc_worker_t *worker, mqc_seedlist_lookup_t *l);

#endif
