/* failproxy: mongod's failCommand fail point in front of any server (see failproxy.c). */
#ifndef MQC_FAILPROXY_H
#define MQC_FAILPROXY_H

/* Starts (once per target and process; four targets at most) a proxy on a free 127.0.0.1 port in
 * front of target_uri (a single "mongodb://host:port/" with a numeric IPv4 host), with a fail point
 * of its own. Returns its URI (static storage), or NULL when target_uri is not of that form or the
 * socket cannot be set up. */
const char *failproxy_start(const char *target_uri);

#endif
