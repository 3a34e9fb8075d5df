/* srv: the core of the scripted MongoDB server (tests/server/). One epoll loop, non-blocking
 * sockets, OP_MSG and legacy OP_QUERY framing, per-connection buffers, delayed replies in a timer
 * heap, MongoDB's session rules (session_rules.h) and fault injection. What a command answers is
 * a mode's business (a handler): canned documents for the benchmark (canned.c), scripted faults
 * (fakesrv.c), a replica set (fakers.c), documents kept in memory (docsrv.c).
 *
 * It parses with libbson only: no mqc code runs here, so that it checks mqc's codec instead of
 * agreeing with it.
 *
 * Two ways to run it: srv_run in the calling thread (the standalone stubd: no lock is ever
 * taken), or srv_start_thread, which runs the loop on a thread of its own and holds the server's
 * lock while it handles events, so that a test thread may call srv_lock, change a mode's state
 * and read counters. Handlers are called with the lock held. */
#ifndef MQC_TESTS_SRV_H
#define MQC_TESTS_SRV_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session_rules.h"

#define SRV_MAX_SEQS 8
#define SRV_MAX_LISTENERS 8
#define SRV_MAX_BSON_SIZE 16777216
#define SRV_MAX_MESSAGE_SIZE 48000000
#define SRV_MAX_WRITE_BATCH 100000

typedef struct srv srv_t;

/* Faults for commands other than hello (and endSessions). */
typedef enum {
    SRV_F_HANGUP_BEFORE,     /* close instead of replying */
    SRV_F_HANGUP_MID,        /* half the reply, then close */
    SRV_F_GARBAGE,           /* bytes that are no message */
    SRV_F_OVERSIZE,          /* a length prefix of 100 MB */
    SRV_F_WRONG_RESPONSE_TO, /* a responseTo that matches nothing */
    SRV_F_SLOW,              /* the reply slow_ns late */
    SRV_F_ERROR,             /* {ok: 0, code: error_code, codeName}, labelled as MongoDB does */
    SRV_F_COUNT
} srv_fault_kind_t;

extern const char *const srv_fault_names[SRV_F_COUNT];

/* How often a fault of one kind hits: a probability, a share of fault_rate, or every Nth. */
typedef struct {
    bool enabled;
    double prob;    /* < 0: a share of fault_rate */
    uint64_t every; /* > 0: every Nth eligible command instead of a probability */
    uint64_t seen;
    uint64_t injected;
} srv_fault_t;

typedef struct {
    uint64_t delay_ns;  /* every reply but hello's */
    uint64_t seed;      /* of the fault dice (0: a fixed one) */
    double fault_rate;  /* shared by the enabled faults that have no probability of their own */
    uint64_t slow_ns;
    int32_t error_code;
    srv_fault_t faults[SRV_F_COUNT];
    bool fault_hello;     /* hello gets faults too (not delays) */
    int32_t max_message;  /* a longer message closes its connection, as MongoDB does (0: 48,000,000) */
} srv_config_t;

typedef struct {
    const char *id;
    const uint8_t *docs; /* the documents back to back, each length checked */
    size_t len;
} srv_seq_t;

/* One command, as the handler sees it. The body and sequences point into the message; they live
 * until the handler returns. The handler may set the fields under "answer". */
typedef struct {
    int listener;        /* the index of the port it came in on (srv_listen) */
    int32_t conn_id;     /* the connection's number, from 1 */
    int32_t request_id;
    bool legacy;         /* OP_QUERY (answered with OP_REPLY) */
    bool no_reply;       /* OP_MSG moreToCome */
    bool hello;          /* hello / isMaster / ismaster */
    const char *name;    /* the command's name (the body's first key) */
    bson_iter_t first;   /* at the first field */
    bson_t body;
    char db[64];
    srv_seq_t seqs[SRV_MAX_SEQS];
    int nseqs;
    bool refused;        /* the session rules refused it: the reply is TransactionTooOld already */
    /* answer */
    int fault;           /* -1: the dice decide; else an srv_fault_kind_t this reply gets */
    uint64_t delay_ns;   /* more delay on top of the configured one */
} srv_req_t;

/* Runs one command (hello too) into reply, which is empty. Called with the server's lock held.
 * A command the session rules refused (rq->refused) comes with its reply written: the handler
 * counts it and may pick its fault, but leaves the reply alone. */
typedef void (*srv_command_fn)(void *ud, srv_t *s, srv_req_t *rq, bson_t *reply);

typedef struct {
    uint64_t accepted, open, max_open, messages, commands, replies, no_reply, bad_messages;
    uint64_t oversize_messages; /* closed: longer than max_message */
    uint64_t longest_message;
    uint64_t start_ns;
} srv_counts_t;

/* A server without listeners; cfg NULL: no delay, no faults. */
srv_t *srv_new(const srv_config_t *cfg, srv_command_fn fn, void *ud);
/* Listens on addr:port (port 0: a free one); returns the listener's index, or -1 (errno set). */
int srv_listen(srv_t *s, const char *addr, int port);
uint16_t srv_port(const srv_t *s, int listener);
/* Runs the loop in this thread until srv_quit. extra_fd (>= 0): also watched; on_extra is called
 * when it is readable (the standalone's signalfd). Returns 0, or 1 when the loop failed. */
int srv_run(srv_t *s, int extra_fd, void (*on_extra)(srv_t *s, void *ud), void *ud);
void srv_quit(srv_t *s);
/* Runs the loop on a thread of its own (for tests in the same process). */
void srv_start_thread(srv_t *s);
/* Stops the loop (and joins its thread), closes every socket and frees s. NULL is fine. */
void srv_free(srv_t *s);
/* The server's lock: a test thread holds it while it reads or changes state the loop uses. */
void srv_lock(srv_t *s);
void srv_unlock(srv_t *s);

/* With the lock held: */
const srv_counts_t *srv_counts(const srv_t *s);
const srules_t *srv_sessions(const srv_t *s);
srv_config_t *srv_config(srv_t *s);
/* Turns on faults of `kind` for the commands that come from now on: a probability (every 0), or
 * every Nth eligible command; prob < 0 and every 0: off. */
void srv_set_fault(srv_t *s, srv_fault_kind_t kind, double prob, uint64_t every);
/* Closes every connection with RST (not FIN) without reading from it. */
void srv_reset_connections(srv_t *s);

/* Helpers for handlers. */
void srv_reply_error(bson_t *reply, int32_t code, const char *code_name, const char *msg);
/* The codes of the retryable writes specification: MongoDB labels them RetryableWriteError. */
bool srv_retryable_write_code(int32_t code);
const char *srv_code_name(int32_t code);
/* MongoDB's hello fields for limits, wire versions, connectionId, localTime, ok (appended). */
void srv_append_hello_tail(bson_t *reply, const srv_req_t *rq, int32_t max_bson, int32_t max_message,
                           int32_t max_batch, bool sessions);
int64_t srv_iter_int64(const bson_iter_t *it, int64_t dflt);
uint32_t srv_get_le32(const uint8_t *p);
uint64_t srv_now_ns(void);
/* MongoDB's limits on a command, into reply (false) when one is broken: a write with more than
 * max_batch statements (or none) fails with InvalidLength (16), a body over max_bson + 16 KiB
 * with BSONObjectTooLarge (10334). */
bool srv_check_limits(const srv_req_t *rq, bson_t *reply, int32_t max_bson, int32_t max_batch);
/* The statements of a write: the body's array `field` plus the kind-1 sequences of that name. */
size_t srv_count_items(const srv_req_t *rq, const char *field);
/* "mongodb://127.0.0.1:PORT/?" plus extra, in one of 8 static buffers per thread. */
const char *srv_uri(uint16_t port, const char *prefix_opts, const char *extra);

#endif
