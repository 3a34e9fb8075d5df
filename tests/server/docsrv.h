/* docsrv: the scripted server (srv.h) in its document-keeping mode (in memory, the server's loop on
 * a thread of its own), for the property tests and the API fuzz target. It answers insert, update, delete, find,
 * getMore, killCursors, aggregate ($match, $sort on _id, $skip, $limit, $group counting),
 * findAndModify, drop and ping, and it is as strict as MongoDB about the limits it announces:
 *  - a message longer than maxMessageSizeBytes closes the connection (MongoDB does the same);
 *  - a write command with more than maxWriteBatchSize statements fails with InvalidLength (16);
 *  - a command body over maxBsonObjectSize + 16 KiB fails with BSONObjectTooLarge (10334), and so
 *    does each inserted document over maxBsonObjectSize (as a write error);
 *  - a duplicate _id is a write error DuplicateKey (11000); an ordered write stops at it;
 *  - a reply batch stays within maxBsonObjectSize (one document at least), as MongoDB's does.
 * It uses libbson only, not mqc's codec, so that it checks mqc. It announces no sessions (a
 * standalone), so retryable writes stay off; a client that sends lsids anyway meets MongoDB's
 * session rules in the core (srv.c), as in every mode. */
#ifndef MQC_DOCSRV_H
#define MQC_DOCSRV_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct docsrv docsrv_t;

typedef struct {
    int32_t max_bson;     /* maxBsonObjectSize (default 16 MiB) */
    int32_t max_message;  /* maxMessageSizeBytes (default 48,000,000) */
    int32_t max_batch;    /* maxWriteBatchSize (default 100,000) */
} docsrv_limits_t;

typedef struct {
    uint64_t commands;          /* other than hello */
    uint64_t write_batches;     /* insert/update/delete commands */
    uint64_t max_statements;    /* the most statements one write command carried */
    uint64_t max_message;       /* the longest message received */
    uint64_t limit_errors;      /* InvalidLength / BSONObjectTooLarge / oversize messages */
    uint64_t getmores;
    uint64_t cursors_open;      /* cursors alive now */
} docsrv_stats_t;

/* limits NULL: MongoDB's defaults. */
docsrv_t *docsrv_start(const docsrv_limits_t *limits);
void docsrv_stop(docsrv_t *s);
/* The scripted server underneath (srv.h; fakesrv_server says what for). */
struct srv *docsrv_server(docsrv_t *s);
/* "mongodb://127.0.0.1:PORT/?" plus extra. Static storage per call (8 slots). */
const char *docsrv_uri(const docsrv_t *s, const char *extra);
docsrv_stats_t docsrv_stats(docsrv_t *s);
/* Documents of namespace "db.coll" now, sorted by _id, as copies into an array the caller frees
 * with docsrv_free_docs. */
bson_t **docsrv_docs(docsrv_t *s, const char *ns, size_t *n);
void docsrv_free_docs(bson_t **docs, size_t n);
/* The ordering of _id values (MongoDB's: numbers < strings < documents < ... < ObjectIds ...). */
int docsrv_compare_values(const bson_value_t *a, const bson_value_t *b);

#endif
