/* fakesrv: the scripted server (srv.h) inside the test binary, on a thread of its own, in its
 * scripted-fault mode: for timeouts, cancellation and faults. It answers the handshake (OP_QUERY
 * or OP_MSG hello) normally and every other command as its current mode says. It holds the limits
 * its hello announces (maxWriteBatchSize: InvalidLength; maxBsonObjectSize: BSONObjectTooLarge;
 * maxMessageSizeBytes: the connection is closed) and MongoDB's session rules, as MongoDB does. */
#ifndef MQC_FAKESRV_H
#define MQC_FAKESRV_H

#include <stdbool.h>
#include <stdint.h>

#include <bson/bson.h>

typedef enum {
    FAKE_OK = 0,          /* {ok: 1, n: 1, cursor: {id: 0, firstBatch: [{_id: 1}]}} */
    FAKE_DELAY,           /* the same after `arg` ms */
    FAKE_HANGUP_BEFORE,   /* close instead of replying */
    FAKE_HANGUP_MID,      /* half a reply, then close */
    FAKE_GARBAGE,         /* bytes that are no message */
    FAKE_OVERSIZE,        /* a length prefix of 100 MB */
    FAKE_WRONG_RESPONSE_TO,
    FAKE_ERROR,           /* {ok: 0, code: arg, codeName: "FakeError", errmsg} */
    FAKE_WC_ERROR,        /* {ok: 1, n: 1, writeConcernError: {code: arg, errmsg},
                           *  errorLabels: ["RetryableWriteError"]} (as a 4.4+ server labels it) */
} fake_mode_t;

typedef struct fakesrv fakesrv_t;

fakesrv_t *fakesrv_start(fake_mode_t mode, int arg);
/* Changes the mode for commands that arrive from now on; `times` > 0: only for that many
 * commands, then back to FAKE_OK. */
void fakesrv_set_mode(fakesrv_t *s, fake_mode_t mode, int arg, int times);
/* The same, but after `times` commands the mode becomes then_mode (then_arg) instead of FAKE_OK:
 * "hang up once, then answer late" scripts a retry's fate. */
void fakesrv_set_mode_then(fakesrv_t *s, fake_mode_t mode, int arg, int times, fake_mode_t then_mode, int then_arg);
/* The next `times` handshakes (hello) are answered by closing the connection. */
void fakesrv_hangup_hellos(fakesrv_t *s, int times);
/* Resets (RST, not FIN) every open connection without reading from it, and returns once they
 * are all closed: a client's idle pooled connection is then dead without its loop knowing, and
 * its next write fails at once, before any byte reaches the server. */
void fakesrv_reset_connections(fakesrv_t *s);
uint16_t fakesrv_port(const fakesrv_t *s);
/* "mongodb://127.0.0.1:PORT/?" plus extra options. Static storage per call (8 slots). */
const char *fakesrv_uri(const fakesrv_t *s, const char *extra);
int fakesrv_connections(const fakesrv_t *s);
int fakesrv_commands(const fakesrv_t *s);
/* A copy of the latest hello (hello) or other command into *out (initialised; the caller
 * destroys it); false when none came yet. */
bool fakesrv_last_command(fakesrv_t *s, bool hello, bson_t *out);
/* Fields appended to every hello reply from now on (copied; NULL: none), e.g. setName and
 * logicalSessionTimeoutMinutes to play a replica-set primary. */
void fakesrv_set_hello_extra(fakesrv_t *s, const bson_t *extra);
/* on: a hello carrying speculativeAuthenticate is answered as accepted (MONGODB-X509 style). */
void fakesrv_set_accept_speculative(fakesrv_t *s, bool on);
void fakesrv_stop(fakesrv_t *s);
/* The scripted server underneath (srv.h), for what every mode shares: dice faults, a delay for
 * every reply, the core's counters (take its lock: srv_lock). */
struct srv *fakesrv_server(fakesrv_t *s);

/* Sessions as MongoDB holds them (session_rules.h): every command's lsid is busy until its
 * reply is written; one arriving while its lsid is busy counts as an overlap (MongoDB would make
 * it wait); a txnNumber older than the highest seen on its lsid is refused with
 * TransactionTooOld (225, not retryable). */
typedef struct {
    uint64_t distinct;        /* lsids seen */
    uint64_t overlaps;
    uint64_t too_old;
    uint64_t with_lsid, without_lsid; /* commands other than hello */
    uint64_t in_progress_max; /* the most commands being processed at once */
} fakesrv_sessions_t;
void fakesrv_sessions(fakesrv_t *s, fakesrv_sessions_t *out);

/* What the hello says the server is, with logicalSessionTimeoutMinutes: 30 (replaces the hello
 * extra): a mongos (msg: isdbgrid), or the primary of replica set rs0 (setName, hosts: itself,
 * primary, me), or a plain standalone without sessions (FAKE_ROLE_STANDALONE, the default).
 * more: further hello fields (NULL: none); they replace defaults of the same name. */
typedef enum { FAKE_ROLE_STANDALONE = 0, FAKE_ROLE_MONGOS, FAKE_ROLE_PRIMARY } fake_role_t;
void fakesrv_play(fakesrv_t *s, fake_role_t role, const bson_t *more);

#endif
