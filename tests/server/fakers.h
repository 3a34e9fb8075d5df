/* fakers: the scripted server (srv.h) in its replica-set mode inside the test binary: one server
 * loop on a thread of its own, one port per member, libbson only. Every member answers hello as a member of set "rs0"
 * with the hosts list of all members, its role (primary or secondary), setVersion, electionId
 * and topologyVersion; writes on a secondary fail with NotWritablePrimary (10107, labelled
 * RetryableWriteError when the command carries a txnNumber), reads on a secondary need a
 * non-primary $readPreference. The primary can be moved (an election) or removed at any time.
 * Limits (InvalidLength, BSONObjectTooLarge, closing on an oversize message) and session rules
 * (TransactionTooOld, overlaps counted) are MongoDB's, in every member. */
#ifndef MQC_FAKERS_H
#define MQC_FAKERS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fakers fakers_t;

/* n members (<= 8) on 127.0.0.1 ports; member `primary` is primary (-1: none). */
fakers_t *fakers_start(int n, int primary);
/* Makes member i primary (-1: no primary) with a higher electionId; the others secondaries. */
void fakers_set_primary(fakers_t *rs, int i);
uint16_t fakers_port(const fakers_t *rs, int i);
/* "mongodb://127.0.0.1:PORT(of member i)/?replicaSet=rs0&" plus extra. Static storage (4 slots). */
const char *fakers_uri(const fakers_t *rs, int i, const char *extra);
/* Counters of member i: writes applied, reads answered, commands refused (not primary), and
 * writes that carried lsid + txnNumber. */
int fakers_writes(fakers_t *rs, int i);
int fakers_reads(fakers_t *rs, int i);
int fakers_refused(fakers_t *rs, int i);
int fakers_txn_writes(fakers_t *rs, int i);
/* The member index listening on port, or -1. */
int fakers_member_of(const fakers_t *rs, uint16_t port);
void fakers_stop(fakers_t *rs);
/* The scripted server underneath (srv.h; fakesrv_server says what for). */
struct srv *fakers_server(fakers_t *rs);

#endif
