/* request: the bytes of an operation's request for its server. See request.h. */
#include "request.h"
#include "select.h"

/* Replaces the command's $readPreference with rp. */
static void set_read_pref(bson_t *cmd, const bson_t *rp)
{
    bson_t copy;
    bson_init(&copy);
    bson_copy_to_excluding_noinit(cmd, &copy, "$readPreference", NULL);
    BSON_APPEND_DOCUMENT(&copy, "$readPreference", rp);
    bson_destroy(cmd);
    bson_steal(cmd, &copy);
}

bool mqc_request_read_pref(bson_t *cmd, const mqc_uri_t *uri, mqc_sdam_topo_type_t tt, mqc_server_type_t st)
{
    bson_iter_t it;
    if (st == MQC_SERVER_STANDALONE) return false; /* nothing to tell a standalone (or for a write) */
    bool has = bson_iter_init_find(&it, cmd, "$readPreference");
    if (tt == MQC_TOPOLOGY_SINGLE && st != MQC_SERVER_MONGOS && st != MQC_SERVER_STANDALONE &&
        st != MQC_SERVER_UNKNOWN && st != MQC_SERVER_RS_PRIMARY) {
        bson_t rp = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&rp, "mode", "primaryPreferred");
        set_read_pref(cmd, &rp);
        bson_destroy(&rp);
    } else if (!has && uri->read_mode != MQC_READ_PRIMARY && st != MQC_SERVER_STANDALONE &&
               (tt != MQC_TOPOLOGY_SINGLE || st == MQC_SERVER_MONGOS)) {
        bson_t rp = BSON_INITIALIZER, tags;
        BSON_APPEND_UTF8(&rp, "mode", mqc_read_mode_name(uri->read_mode));
        if (!bson_empty(&uri->read_tags)) {
            bson_copy_to(&uri->read_tags, &tags);
            BSON_APPEND_ARRAY(&rp, "tags", &tags);
            bson_destroy(&tags);
        }
        if (uri->max_staleness_seconds > 0)
            BSON_APPEND_INT64(&rp, "maxStalenessSeconds", uri->max_staleness_seconds);
        set_read_pref(cmd, &rp);
        bson_destroy(&rp);
    }
    return true;
}

void mqc_request_body(mqc_buf_t *buf, const bson_t *body, mqc_session_t *session, int64_t txn_number)
{
    if (!session) {
        mqc_wire_msg_body(buf, body);
        return;
    }
    if (txn_number <= 0) {
        /* The lsid alone: the session's own bytes, not a copy of them (every read passes here). */
        mqc_wire_msg_body_ext(buf, body, session->elem, MQC_SESSION_LSID_ELEM);
        return;
    }
    uint8_t ext[MQC_SESSION_EXT_MAX];
    size_t n = mqc_session_elements(session, txn_number, ext);
    mqc_wire_msg_body_ext(buf, body, ext, n);
}

void mqc_request_msg_txn(mqc_buf_t *buf, int32_t request_id, uint32_t flags, const bson_t *body,
                         mqc_session_t *session, int64_t txn_number)
{
    uint8_t ext[MQC_SESSION_EXT_MAX];
    size_t n = mqc_session_elements(session, txn_number, ext);
    mqc_wire_msg_command(buf, request_id, flags, body, ext, n);
}
