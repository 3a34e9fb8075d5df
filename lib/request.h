/* request: the bytes of an operation's request for the server it goes to, as plain decisions
 * on what they are handed (it knows no op, like retry.c): the plain command's $readPreference
 * by the server's type, and the body with the session's lsid and txnNumber. op.c encodes with
 * them on its way down; op kinds with an encoder of their own use mqc_op_msg_body (op.h). */
#ifndef MQC_REQUEST_H
#define MQC_REQUEST_H

#include "sdam.h"
#include "session.h"
#include "uri.h"
#include "wire.h"

/* $readPreference by the server selection spec's rules, for a read going to a server of type
 * st in a topology of type tt: a direct connection to a replica set member that is not primary
 * reads with primaryPreferred (else the member refuses); mongos and replica set members are
 * told a non-primary mode from the URI when the command carries none. False for a standalone
 * (nothing to tell it); true otherwise: cmd may have been rewritten, and its buffer moved. */
bool mqc_request_read_pref(bson_t *cmd, const mqc_uri_t *uri, mqc_sdam_topo_type_t tt, mqc_server_type_t st);
/* The OP_MSG body: body, with session's lsid (and txnNumber when txn_number > 0) appended
 * when there is a session. */
void mqc_request_body(mqc_buf_t *buf, const bson_t *body, mqc_session_t *session, int64_t txn_number);

/* The whole OP_MSG of a command without document sequences: mqc_wire_msg_begin, the body as
 * mqc_request_body writes it, mqc_wire_msg_end, in one pass (the plain command's request). */
void mqc_request_msg_txn(mqc_buf_t *buf, int32_t request_id, uint32_t flags, const bson_t *body,
                         mqc_session_t *session, int64_t txn_number);
static inline void mqc_request_msg(mqc_buf_t *buf, int32_t request_id, uint32_t flags, const bson_t *body,
                                   mqc_session_t *session, int64_t txn_number)
{
    /* Inline but for a txnNumber: a read sends the session's own lsid bytes, no copy of them. */
    if (!session) mqc_wire_msg_command(buf, request_id, flags, body, NULL, 0);
    else if (txn_number <= 0) mqc_wire_msg_command(buf, request_id, flags, body, session->elem, MQC_SESSION_LSID_ELEM);
    else mqc_request_msg_txn(buf, request_id, flags, body, session, txn_number);
}

#endif
