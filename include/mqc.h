/* mqc: an asynchronous MongoDB client for C on libev.
 *
 * One client belongs to one libev loop and is used from that loop's thread only (for several
 * threads, make one loop and one client per thread). Operations are submitted without blocking;
 * each ends in exactly one callback.
 *
 * GUARANTEES
 *  - Every submitted operation gets exactly one callback: a reply, or an error (server, write,
 *    network, timeout, cancellation, shutdown). This holds on disconnect and on client destroy:
 *    pending operations then fail with MQC_ERROR_SHUTDOWN.
 *  - A callback never runs inside the call that submitted the operation: it always comes from
 *    the loop. So a handle returned by a submit call can be added to a gather or cancelled.
 *  - Code inside a callback may submit operations, cancel them, destroy cursors, gathers and the
 *    client itself; memory is released after the callback returns.
 *  - The loop is never blocked: host names are resolved on a helper thread, sockets are
 *    non-blocking, and no call sleeps.
 *  - A connection whose reply is overdue, truncated, malformed, of the wrong size or that answers
 *    a request never sent is closed and never reused; its operation gets a clear error and the
 *    pool opens another connection when one is needed.
 *
 * OWNERSHIP
 *  Documents passed in (const bson_t *) are copied or encoded before the call returns: the
 *  caller keeps them. Documents passed to callbacks are valid only during the callback. Handles
 *  marked "owned by the caller" are freed with their _destroy function, which accepts NULL. */
#ifndef MQC_H
#define MQC_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libmqc is built with -fvisibility=hidden: what this header declares is its ABI, and only that
 * is exported (scripts/check-install fails on any other exported symbol). */
#pragma GCC visibility push(default)

struct ev_loop;

#define MQC_VERSION_MAJOR 0
#define MQC_VERSION_MINOR 1
#define MQC_VERSION_PATCH 0
/* The same as a string, "0.1.0". These three lines are the only place the version is written:
 * the Makefile reads them (for the library's file name and mqc.pc). */
#define MQC_VERSION_STR_(x) #x
#define MQC_VERSION_STR(x) MQC_VERSION_STR_(x)
#define MQC_VERSION                                                                          \
    MQC_VERSION_STR(MQC_VERSION_MAJOR) "." MQC_VERSION_STR(MQC_VERSION_MINOR) "."          \
    MQC_VERSION_STR(MQC_VERSION_PATCH)
/* The library's version, e.g. "0.1.0". Static storage. */
const char *mqc_version(void);

typedef struct mqc_client mqc_client_t;
typedef struct mqc_database mqc_database_t;
typedef struct mqc_collection mqc_collection_t;
typedef struct mqc_op mqc_op_t;
typedef struct mqc_cursor mqc_cursor_t;
typedef struct mqc_gather mqc_gather_t;
typedef struct mqc_bulk mqc_bulk_t;

/* ---- errors ---------------------------------------------------------------------------- */

typedef enum {
    MQC_ERROR_NONE = 0,
    MQC_ERROR_CLIENT,          /* invalid argument or use; code is an mqc_client_code_t */
    MQC_ERROR_URI,             /* connection string rejected */
    MQC_ERROR_RESOLVE,         /* host name did not resolve; code is the getaddrinfo code */
    MQC_ERROR_NETWORK,         /* connect, read or write failed, or the peer hung up; code is errno or 0 */
    MQC_ERROR_PROTOCOL,        /* malformed or unexpected reply: the connection was closed */
    MQC_ERROR_TIMEOUT,         /* the operation's deadline passed; code is an mqc_timeout_code_t */
    MQC_ERROR_CANCELLED,       /* mqc_op_cancel, a fail-fast gather, or a cursor destroyed */
    MQC_ERROR_SHUTDOWN,        /* the client was destroyed with the operation pending */
    MQC_ERROR_OVERLOADED,      /* the wait queue is full (see mqc_client_set_max_pending) */
    MQC_ERROR_SELECTION,       /* no suitable server (e.g. no primary) within the deadline */
    MQC_ERROR_SERVER,          /* the command failed on the server (ok: 0); code and code_name from it */
    MQC_ERROR_WRITE,           /* a write error: code and message of the first writeErrors entry */
    MQC_ERROR_WRITE_CONCERN,   /* a write concern error */
    MQC_ERROR_TLS,             /* TLS handshake or verification failed */
    MQC_ERROR_AUTH,            /* authentication failed */
} mqc_error_domain_t;

typedef enum {
    MQC_CLIENT_INVALID_ARG = 1,
    MQC_CLIENT_TOO_LARGE,      /* a document beyond the server's maxBsonObjectSize */
    MQC_CLIENT_CURSOR_STATE,   /* mqc_cursor_next while a batch is pending or after the end */
    MQC_CLIENT_UNSUPPORTED,
} mqc_client_code_t;

typedef enum {
    MQC_TIMEOUT_OPERATION = 1, /* timeoutMS for the whole operation */
    MQC_TIMEOUT_WAIT_QUEUE,    /* no connection became available in time */
    MQC_TIMEOUT_CONNECT,       /* connectTimeoutMS while opening the connection it waited for */
    MQC_TIMEOUT_SOCKET,        /* socketTimeoutMS: the reply was overdue */
} mqc_timeout_code_t;

/* Error labels (server's errorLabels and ours), as bits of mqc_error_t.labels. */
#define MQC_LABEL_RETRYABLE_WRITE   (1u << 0)
#define MQC_LABEL_TRANSIENT_TXN     (1u << 1)
#define MQC_LABEL_NETWORK           (1u << 2)
#define MQC_LABEL_RETRYABLE_READ    (1u << 3)  /* set by mqc for codes the retryable-reads spec lists */
#define MQC_LABEL_NO_WRITES_PERFORMED (1u << 4)

typedef struct mqc_error {
    uint32_t domain;           /* mqc_error_domain_t */
    int32_t code;              /* the server's code for SERVER/WRITE/WRITE_CONCERN, else per domain */
    uint32_t labels;           /* MQC_LABEL_* */
    char code_name[64];        /* the server's codeName when it gave one, else "" */
    char message[440];         /* one line, never contains a password */
} mqc_error_t;

/* A short name of the domain ("network", "timeout", ...). Static storage. */
const char *mqc_error_domain_name(uint32_t domain);
/* True when error is set (non-NULL with a domain other than NONE). */
bool mqc_error_is_set(const mqc_error_t *error);

/* ---- callbacks ------------------------------------------------------------------------- */

/* The end of an operation. Exactly one of reply/error describes it, except for write errors,
 * where the reply (the write result) comes with the error of the first failure.
 *  - reply: valid only during the callback; NULL when an error left nothing to show, and for
 *    mqc_collection_find_one when no document matched (error NULL then).
 *  - op: valid during the callback (it may be passed to mqc_op_* getters); freed afterwards.
 *  - ud: the user's pointer given at submission. */
typedef void (*mqc_reply_cb)(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud);

/* ---- client ---------------------------------------------------------------------------- */

/* Creates a client for the connection string uri ("mongodb://host[:port][,...]/?options").
 * loop: the application's libev loop, or NULL for a loop the client creates and owns (run it with
 * mqc_client_run_until_idle). Nothing is connected yet: connections open on first use (or for
 * minPoolSize). Returns NULL with error set (MQC_ERROR_URI) for a bad URI. Owned by the caller.
 * Recognised options beyond libmongoc's parser: minPoolSize, maxConnecting, maxIdleTimeMS,
 * waitQueueTimeoutMS, timeoutMS, maxPendingOperations. */
mqc_client_t *mqc_client_new_from_uri(struct ev_loop *loop, const char *uri, mqc_error_t *error);

/* Destroys the client: every pending operation fails with MQC_ERROR_SHUTDOWN (callbacks run
 * before this returns, or, when called from inside a callback, before the loop iteration ends),
 * every connection is closed and the owned loop, if any, is destroyed. Cursors still held by the
 * application become inert: they must still be destroyed. Before the connections close, the
 * client's pooled server sessions are ended (endSessions, best effort) when a server has an idle
 * connection: this runs the loop for up to 1 s (batches of 10,000 sessions go at once; a reply on
 * loopback takes well under a millisecond). Accepts NULL. */
void mqc_client_destroy(mqc_client_t *client);

/* The loop the client runs on. Owned by the application (or by the client when it made it). */
struct ev_loop *mqc_client_get_loop(const mqc_client_t *client);

/* Runs the client's loop until no operation is pending or timeout_s seconds pass (<= 0: no
 * limit). Returns true when idle. For programs without a loop of their own, and for tests. */
bool mqc_client_run_until_idle(mqc_client_t *client, double timeout_s);

/* Limits the operations waiting for a connection (the wait queue); beyond it, a submission fails
 * at once (from the loop) with MQC_ERROR_OVERLOADED. 0: no limit (the default unless the URI sets
 * maxPendingOperations). */
void mqc_client_set_max_pending(mqc_client_t *client, size_t max_pending);

typedef enum {
    MQC_STAT_OPS_SUBMITTED = 0,
    MQC_STAT_OPS_COMPLETED,
    MQC_STAT_OPS_PENDING,
    MQC_STAT_CONNS_OPENED,     /* connections that reached the ready state */
    MQC_STAT_CONNS_CLOSED,
    MQC_STAT_CONNS_OPEN,
    MQC_STAT_CONNS_FAILED,     /* connection attempts that failed before ready */
    MQC_STAT_WAIT_QUEUE,       /* operations waiting for a connection now */
    MQC_STAT_BYTES_SENT,
    MQC_STAT_BYTES_RECEIVED,
    MQC_STAT_OPS_RETRIED,      /* operations retried (retryable reads/writes: once at most each) */
    /* Implicit server sessions (docs/library/topology.md, "Sessions"): */
    MQC_STAT_SESSIONS_CREATED, /* lsids made: distinct sessions this client used */
    MQC_STAT_SESSIONS_IN_USE,  /* lent to operations or cursors now */
    MQC_STAT_SESSIONS_PEAK,    /* the most lent at once */
    MQC_STAT_SESSIONS_DISCARDED, /* dropped after a network error or near their expiry */
    MQC_STAT_SESSIONS_ENDED,   /* sent in endSessions when the client was destroyed */
    MQC_STAT__COUNT
} mqc_stat_t;

/* A counter of the client's (monotonic unless it says "now"). */
uint64_t mqc_client_stat(const mqc_client_t *client, mqc_stat_t which);

/* Writes uri with any password replaced by "***" into out (always NUL-terminated). Returns out. */
char *mqc_uri_redact(const char *uri, char *out, size_t out_size);

/* ---- monitoring ------------------------------------------------------------------------ */

typedef enum {
    MQC_COMMAND_STARTED = 1,
    MQC_COMMAND_SUCCEEDED,
    MQC_COMMAND_FAILED,
} mqc_command_event_type_t;

/* Passed by pointer to the hooks; valid during the hook only. Fields may be added at the end.
 * As the command logging and monitoring specification has it: command_name is the command's
 * first key (an aggregate for mqc_collection_count_documents); a STARTED command includes the
 * message's document sequences as arrays (an insert's "documents"; built from a copy of the
 * message, a cost paid only while a command hook is installed); an unacknowledged write
 * ({w: 0}) SUCCEEDS with reply {ok: 1} once written; the command and reply of security-sensitive
 * commands (authentication, a hello carrying speculativeAuthenticate) are empty documents. */
typedef struct {
    mqc_command_event_type_t type;
    const char *command_name;
    const char *database;
    const bson_t *command;     /* STARTED only */
    const bson_t *reply;       /* SUCCEEDED (and FAILED when the server answered) */
    const mqc_error_t *error;  /* FAILED */
    int32_t request_id;
    uint64_t operation_id;
    uint32_t connection_id;
    const char *server;        /* "host:port" */
    int64_t duration_us;       /* SUCCEEDED/FAILED: from send to reply */
} mqc_command_event_t;

typedef enum {
    MQC_POOL_CREATED = 1,
    MQC_POOL_READY,
    MQC_POOL_CLEARED,
    MQC_POOL_CLOSED,
    MQC_CONN_CREATED,
    MQC_CONN_READY,
    MQC_CONN_CLOSED,
    MQC_CONN_CHECKOUT_STARTED,
    MQC_CONN_CHECKOUT_FAILED,
    MQC_CONN_CHECKED_OUT,
    MQC_CONN_CHECKED_IN,
} mqc_pool_event_type_t;

typedef struct {
    mqc_pool_event_type_t type;
    const char *server;        /* "host:port" */
    uint32_t connection_id;    /* CONN_* events */
    const char *reason;        /* CONN_CLOSED: "stale", "idle", "error", "poolClosed";
                                  CHECKOUT_FAILED: "timeout", "connectionError", "poolClosed",
                                  "overloaded" */
    int64_t duration_us;       /* CONN_READY: since created; CHECKED_OUT/CHECKOUT_FAILED: since started (loop clock) */
    const mqc_error_t *error;  /* CONN_CLOSED for "error", POOL_CLEARED's cause, may be NULL */
} mqc_pool_event_t;

typedef enum {
    MQC_TOPOLOGY_SERVER_CHANGED = 1,  /* a server's description changed (type, primary, ...) */
    MQC_TOPOLOGY_CHANGED,             /* the topology type or its servers changed */
    MQC_TOPOLOGY_PRIMARY_CHANGED,     /* a different server is primary (or none) */
} mqc_topology_event_type_t;

typedef struct {
    mqc_topology_event_type_t type;
    const char *server;              /* the server concerned, or the new primary ("" for none) */
    const char *previous;            /* previous server type / primary / topology type */
    const char *current;             /* new server type / primary / topology type */
} mqc_topology_event_t;

typedef struct {
    void (*command)(const mqc_command_event_t *event, void *ud);
    void (*pool)(const mqc_pool_event_t *event, void *ud);
    void (*topology)(const mqc_topology_event_t *event, void *ud);
} mqc_monitor_t;

/* Installs monitoring hooks (copied; NULL members are not called). NULL removes them all.
 * Hooks run on the loop thread and must not block; they may not destroy the client. */
void mqc_client_set_monitor(mqc_client_t *client, const mqc_monitor_t *monitor, void *ud);

/* ---- operations: generic --------------------------------------------------------------- */

/* Runs command (its first key names it) on database db. opts (may be NULL): "timeoutMS" (int),
 * "readPreference" (document {mode, tags, maxStalenessSeconds}). The reply is the server's.
 * The command gets the client's implicit session (an lsid) when the server supports sessions,
 * unless it carries its own "lsid" (sent as given) or a writeConcern with w: 0.
 * Returns the operation's handle, never NULL (bad arguments fail through the callback). */
mqc_op_t *mqc_client_command(mqc_client_t *client, const char *db, const bson_t *command,
                             const bson_t *opts, mqc_reply_cb cb, void *ud);

/* Cancels a pending operation: its callback fires from the loop with MQC_ERROR_CANCELLED (unless
 * its result arrived first). A sent request's connection is closed (its reply would be stale).
 * op must still be valid: from submission until its callback has returned. */
void mqc_op_cancel(mqc_op_t *op);

/* Getters, valid while op is. */
mqc_client_t *mqc_op_get_client(const mqc_op_t *op);
/* The command's name ("find", "insert", ...), static or owned by op. */
const char *mqc_op_get_name(const mqc_op_t *op);
/* Microseconds from submission to completion (0 before completion), on the loop's clock (monotonic,
 * read once per loop iteration, so off by the iteration's own work; the command events' duration
 * reads the real clock). */
int64_t mqc_op_get_duration_us(const mqc_op_t *op);
/* The "host:port" of the server that answered, or NULL. Owned by op. */
const char *mqc_op_get_server(const mqc_op_t *op);

/* ---- database and collection handles --------------------------------------------------- */

/* Light handles naming a database (and collection), with read and write concern from the URI.
 * Owned by the caller; destroy them before the client. Operations already submitted do not
 * need their handle to stay alive. */
mqc_database_t *mqc_client_get_database(mqc_client_t *client, const char *db);
void mqc_database_destroy(mqc_database_t *database);
const char *mqc_database_get_name(const mqc_database_t *database);
mqc_client_t *mqc_database_get_client(const mqc_database_t *database);
mqc_op_t *mqc_database_command(mqc_database_t *database, const bson_t *command, const bson_t *opts,
                               mqc_reply_cb cb, void *ud);

mqc_collection_t *mqc_client_get_collection(mqc_client_t *client, const char *db, const char *coll);
mqc_collection_t *mqc_database_get_collection(mqc_database_t *database, const char *coll);
void mqc_collection_destroy(mqc_collection_t *collection);
const char *mqc_collection_get_name(const mqc_collection_t *collection);
mqc_client_t *mqc_collection_get_client(const mqc_collection_t *collection);

/* ---- CRUD -------------------------------------------------------------------------------
 * Common opts: "timeoutMS", "comment", "writeConcern" (writes), "readConcern" and
 * "readPreference" (reads), "session" is not supported. Unknown opts are passed to the server's
 * command as they are (so new server options work), which the server may reject.
 *
 * Write results (the reply of every write op) are normalised, as the CRUD specification names
 * them: {insertedCount, matchedCount, modifiedCount, deletedCount, upsertedCount,
 * upsertedIds: {"<index>": id}, [insertedId], [writeErrors: [{index, code, errmsg}]],
 * [writeConcernErrors: [...]]}. With an unacknowledged write concern ({w: 0}) the request is
 * sent with the moreToCome bit and the callback fires once it is written (reply {acknowledged:
 * false}). */

/* Inserts doc; adds an ObjectId _id when it has none (reported as insertedId). */
mqc_op_t *mqc_collection_insert_one(mqc_collection_t *coll, const bson_t *doc, const bson_t *opts,
                                    mqc_reply_cb cb, void *ud);
/* Inserts docs[0..n-1], split into as many messages as the server's limits require.
 * opts: "ordered" (default true), "bypassDocumentValidation". */
mqc_op_t *mqc_collection_insert_many(mqc_collection_t *coll, const bson_t *const *docs, size_t n,
                                     const bson_t *opts, mqc_reply_cb cb, void *ud);
/* opts: "upsert", "arrayFilters", "collation", "hint". update must use operators ($set, ...)
 * or be a pipeline (an array); replacement must not. */
mqc_op_t *mqc_collection_update_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *update,
                                    const bson_t *opts, mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_update_many(mqc_collection_t *coll, const bson_t *filter, const bson_t *update,
                                     const bson_t *opts, mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_replace_one(mqc_collection_t *coll, const bson_t *filter,
                                     const bson_t *replacement, const bson_t *opts, mqc_reply_cb cb,
                                     void *ud);
/* opts: "collation", "hint". */
mqc_op_t *mqc_collection_delete_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                    mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_delete_many(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                     mqc_reply_cb cb, void *ud);

/* The first document matching filter (reply; NULL when none). opts as for find. */
mqc_op_t *mqc_collection_find_one(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                  mqc_reply_cb cb, void *ud);
/* Counts documents matching filter (an aggregate). Reply: {"count": <int64>}. opts: "skip",
 * "limit", "hint", "collation". */
mqc_op_t *mqc_collection_count_documents(mqc_collection_t *coll, const bson_t *filter,
                                         const bson_t *opts, mqc_reply_cb cb, void *ud);
/* Distinct values of key. Reply: the server's ({values: [...], ok: 1}). */
mqc_op_t *mqc_collection_distinct(mqc_collection_t *coll, const char *key, const bson_t *filter,
                                  const bson_t *opts, mqc_reply_cb cb, void *ud);

/* findAndModify. Reply: the server's ({lastErrorObject, value, ok}); "value" is null when no
 * document matched. opts: "sort", "projection", "upsert" (update/replace),
 * "returnDocument": "before" (default) | "after", "arrayFilters", "collation", "hint". */
mqc_op_t *mqc_collection_find_one_and_update(mqc_collection_t *coll, const bson_t *filter,
                                             const bson_t *update, const bson_t *opts,
                                             mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_find_one_and_replace(mqc_collection_t *coll, const bson_t *filter,
                                              const bson_t *replacement, const bson_t *opts,
                                              mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_find_one_and_delete(mqc_collection_t *coll, const bson_t *filter,
                                             const bson_t *opts, mqc_reply_cb cb, void *ud);

/* ---- bulk writes ----------------------------------------------------------------------- */

/* A bulk write: add operations, then execute once. opts: "ordered" (default true: stop at the
 * first write error), "writeConcern", "bypassDocumentValidation", "comment", "timeoutMS".
 * Owned by the caller until mqc_bulk_execute, which takes it over. */
mqc_bulk_t *mqc_collection_bulk_new(mqc_collection_t *coll, const bson_t *opts);
/* Each copies its documents; returns false with error set for an invalid document (e.g. an
 * update without operators). */
bool mqc_bulk_insert(mqc_bulk_t *bulk, const bson_t *doc, mqc_error_t *error);
bool mqc_bulk_update_one(mqc_bulk_t *bulk, const bson_t *filter, const bson_t *update,
                         const bson_t *opts, mqc_error_t *error);
bool mqc_bulk_update_many(mqc_bulk_t *bulk, const bson_t *filter, const bson_t *update,
                          const bson_t *opts, mqc_error_t *error);
bool mqc_bulk_replace_one(mqc_bulk_t *bulk, const bson_t *filter, const bson_t *replacement,
                          const bson_t *opts, mqc_error_t *error);
bool mqc_bulk_delete_one(mqc_bulk_t *bulk, const bson_t *filter, const bson_t *opts, mqc_error_t *error);
bool mqc_bulk_delete_many(mqc_bulk_t *bulk, const bson_t *filter, const bson_t *opts, mqc_error_t *error);
/* Submits the bulk (consumed: do not touch it again). Reply: the normalised write result. */
mqc_op_t *mqc_bulk_execute(mqc_bulk_t *bulk, mqc_reply_cb cb, void *ud);
/* Frees a bulk that was never executed. Accepts NULL. */
void mqc_bulk_destroy(mqc_bulk_t *bulk);

/* ---- cursors --------------------------------------------------------------------------- */

/* One batch of a cursor: docs[0..n_docs-1] valid only during the callback. When error is set the
 * cursor is dead. mqc_cursor_more() tells whether another batch can be asked for. Each docs[i] is
 * a view that points into itself: keep one with bson_copy(&docs[i]), never by assigning or
 * memcpy'ing the bson_t (see docs/internals/development.md, "A bson_t never moves"). */
typedef void (*mqc_batch_cb)(mqc_cursor_t *cursor, const bson_t *docs, size_t n_docs,
                             const mqc_error_t *error, void *ud);

/* find: opts "projection", "sort", "limit", "skip", "batchSize", "hint", "comment", "min",
 * "max", "maxTimeMS", "collation", "allowDiskUse", "singleBatch", "readConcern",
 * "readPreference", "timeoutMS". The first batch is requested at once; its callback follows.
 * Owned by the caller: call mqc_cursor_destroy when done (also inside a callback). */
mqc_cursor_t *mqc_collection_find(mqc_collection_t *coll, const bson_t *filter, const bson_t *opts,
                                  mqc_batch_cb cb, void *ud);
/* aggregate: pipeline is an array document ({"0": {...}, "1": {...}}) or {"pipeline": [...]}.
 * opts: "batchSize", "allowDiskUse", "hint", "comment", "let", "maxTimeMS", "readConcern",
 * "readPreference", "timeoutMS", "collation". */
mqc_cursor_t *mqc_collection_aggregate(mqc_collection_t *coll, const bson_t *pipeline,
                                       const bson_t *opts, mqc_batch_cb cb, void *ud);
/* Asks for the next batch (getMore, on the server and connection pool that opened the cursor);
 * its callback follows. Returns false (and calls nothing) when a batch is already pending or the
 * cursor is exhausted, dead or its client destroyed. */
bool mqc_cursor_next(mqc_cursor_t *cursor);
/* True until the server reported the cursor exhausted (and no error). */
bool mqc_cursor_more(const mqc_cursor_t *cursor);
/* The server's cursor id (0 when exhausted). */
int64_t mqc_cursor_id(const mqc_cursor_t *cursor);
/* Documents delivered so far. */
uint64_t mqc_cursor_count(const mqc_cursor_t *cursor);
/* Destroys the cursor: a pending batch request is cancelled (its callback fires with
 * MQC_ERROR_CANCELLED unless called from that callback), and a live server cursor is killed
 * (killCursors, in the background). Accepts NULL. */
void mqc_cursor_destroy(mqc_cursor_t *cursor);

/* ---- catalog: databases, collections, indexes ------------------------------------------
 * Common opts as for CRUD: "timeoutMS", "comment", "writeConcern" (the changes), and
 * "readPreference" (the listings); other opts go into the command as they are ("maxTimeMS",
 * "collation", ...). Listings are cursors (mqc_cursor_next for more batches, as for find); the
 * name-only forms are the "nameOnly": true option of listCollections and listDatabases (the
 * server then sends {name, type} / {name} documents only), and the "name" field of each index
 * document for listIndexes. */

/* The collection's count from its metadata (the count command without a filter): fast, and
 * possibly off after an unclean shutdown or with orphans on a sharded cluster. Reply:
 * {"count": <int64>}. opts: "maxTimeMS", "comment", "readConcern", "readPreference". A retryable
 * read. */
mqc_op_t *mqc_collection_estimated_document_count(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb,
                                                  void *ud);

/* listCollections: documents {name, type, options, info, idIndex}. filter may be NULL. opts:
 * "nameOnly", "authorizedCollections", "batchSize", "comment". Owned by the caller
 * (mqc_cursor_destroy). */
mqc_cursor_t *mqc_database_list_collections(mqc_database_t *database, const bson_t *filter, const bson_t *opts,
                                            mqc_batch_cb cb, void *ud);
/* listDatabases (on admin): documents {name, sizeOnDisk, empty}, all in one batch (the server
 * answers with an array, not a cursor). opts: "nameOnly", "authorizedDatabases", "comment". */
mqc_cursor_t *mqc_client_list_databases(mqc_client_t *client, const bson_t *filter, const bson_t *opts,
                                        mqc_batch_cb cb, void *ud);
/* listIndexes: documents {v, key, name, ...}. opts: "batchSize", "comment". A collection that
 * does not exist is an error (NamespaceNotFound) from the server. */
mqc_cursor_t *mqc_collection_list_indexes(mqc_collection_t *coll, const bson_t *opts, mqc_batch_cb cb, void *ud);

/* Runs command, a cursor-returning command such as {find: ...}, {aggregate: ...},
 * {listCollections: 1}, on database, and reads its reply as a cursor: later batches by getMore on
 * the same server. opts: "batchSize" and "comment" (for getMore; put the first batch's size in
 * the command), "timeoutMS", "readPreference". Never retried (the command may write). */
mqc_cursor_t *mqc_database_run_cursor_command(mqc_database_t *database, const bson_t *command, const bson_t *opts,
                                              mqc_batch_cb cb, void *ud);

/* createIndexes with models[0..n-1], each {key: {...}, name?, unique?, sparse?, ...} (every index
 * option the server knows). A model without "name" gets the server's default ("a_1_b_-1").
 * Reply: the server's ({createdCollectionAutomatically, numIndexesBefore, numIndexesAfter, ok}).
 * opts: "commitQuorum", "maxTimeMS", "comment", "writeConcern". */
mqc_op_t *mqc_collection_create_indexes(mqc_collection_t *coll, const bson_t *const *models, size_t n,
                                        const bson_t *opts, mqc_reply_cb cb, void *ud);
/* One index on keys with index_opts (name, unique, ...; may be NULL). Reply: the server's plus
 * "name", the index's name. */
mqc_op_t *mqc_collection_create_index(mqc_collection_t *coll, const bson_t *keys, const bson_t *index_opts,
                                      const bson_t *opts, mqc_reply_cb cb, void *ud);
/* dropIndexes of the index named name ("*" is refused: see mqc_collection_drop_indexes). */
mqc_op_t *mqc_collection_drop_index(mqc_collection_t *coll, const char *name, const bson_t *opts, mqc_reply_cb cb,
                                    void *ud);
/* Drops every index but _id's. */
mqc_op_t *mqc_collection_drop_indexes(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb, void *ud);

/* create: opts are the command's ("capped", "size", "max", "validator", "validationLevel",
 * "timeseries", "expireAfterSeconds", "clusteredIndex", "collation", "viewOn", "pipeline", ...)
 * plus "writeConcern". A collection that exists is an error from the server (NamespaceExists). */
mqc_op_t *mqc_database_create_collection(mqc_database_t *database, const char *name, const bson_t *opts,
                                         mqc_reply_cb cb, void *ud);
/* drop: succeeds (reply {ok: 1}) also when the collection does not exist. opts: "writeConcern",
 * "comment". */
mqc_op_t *mqc_database_drop_collection(mqc_database_t *database, const char *name, const bson_t *opts,
                                       mqc_reply_cb cb, void *ud);
mqc_op_t *mqc_collection_drop(mqc_collection_t *coll, const bson_t *opts, mqc_reply_cb cb, void *ud);
/* dropDatabase. */
mqc_op_t *mqc_database_drop(mqc_database_t *database, const bson_t *opts, mqc_reply_cb cb, void *ud);
/* renameCollection (run on admin) to new_db.new_name (new_db NULL: the same database). opts:
 * "dropTarget" (replace an existing target), "comment", "writeConcern". The handle keeps its old
 * name: get a new handle for the new one. */
mqc_op_t *mqc_collection_rename(mqc_collection_t *coll, const char *new_db, const char *new_name, const bson_t *opts,
                                mqc_reply_cb cb, void *ud);

/* ---- gather ---------------------------------------------------------------------------- */

typedef enum {
    MQC_GATHER_ALL = 0,        /* wait for every operation; errors reported per slot */
    MQC_GATHER_FAIL_FAST,      /* the first error cancels the rest and is the gather's error */
    MQC_GATHER_FIRST,          /* the first completion (success or error) wins; the rest are cancelled */
} mqc_gather_mode_t;

/* The end of a gather. error: NULL in ALL mode; the first error in FAIL_FAST mode; the winner's
 * error in FIRST mode. Slots are read with mqc_gather_reply/_error during the callback. */
typedef void (*mqc_gather_cb)(mqc_gather_t *gather, const mqc_error_t *error, void *ud);

/* A group of operations. Owned by the caller until mqc_gather_start (then by the library, freed
 * after its callback returns). */
mqc_gather_t *mqc_gather_new(mqc_client_t *client, mqc_gather_mode_t mode);
/* Adds a pending operation (just submitted, not in another gather) as the next slot. The op's
 * own callback, if any, still fires first. A gather's own op (from mqc_gather_start) may be
 * added: groups nest. Returns false if op is already done or grouped, or the gather started. */
bool mqc_gather_add(mqc_gather_t *gather, mqc_op_t *op);
/* Seals the gather; cb fires once every slot has finished (at once, from the loop, if empty).
 * Returns the gather's own operation handle, which can be cancelled (cancels every slot) or
 * added to another gather: there its reply is {"results": [reply|null, ...], "errors":
 * [null|{domain, code, codeName, message}, ...]}. */
mqc_op_t *mqc_gather_start(mqc_gather_t *gather, mqc_gather_cb cb, void *ud);
/* Frees a gather never started; its operations are cancelled. Accepts NULL. */
void mqc_gather_destroy(mqc_gather_t *gather);

size_t mqc_gather_size(const mqc_gather_t *gather);
/* Slot i's reply (copied when it arrived) or NULL; valid during the gather's callback. */
const bson_t *mqc_gather_reply(const mqc_gather_t *gather, size_t i);
/* Slot i's error, or NULL when it succeeded. Valid during the gather's callback. */
const mqc_error_t *mqc_gather_error(const mqc_gather_t *gather, size_t i);
/* FIRST mode: the index of the winning slot; otherwise -1. */
long mqc_gather_winner(const mqc_gather_t *gather);
/* Counts of slots that succeeded and failed (cancelled ones count as failed). */
size_t mqc_gather_ok_count(const mqc_gather_t *gather);
size_t mqc_gather_error_count(const mqc_gather_t *gather);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* MQC_H */
