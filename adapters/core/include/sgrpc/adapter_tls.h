/*
 * TLS for the adapter core: turns a <sgrpc/tls.h> session into the
 * core's byte filter (sgrpc_ac_filter), and gives server handlers the
 * peer's certificate. Library libsgrpc-adapter-tls (target
 * sgrpc_adapter_tls); it depends on the core and on libsgrpc-tls (the
 * seam), not on any TLS library. <sgrpc/adapter_tls_openssl.h> has a
 * ready-made filter factory over OpenSSL.
 *
 * Any TLS implementation plugs in the same way: write a
 * sgrpc_ac_filter_factory that makes a session and hands it to
 * sgrpc_ac_tls_filter, then set that factory as make_filter of a server
 * (sgrpc_ac_server_opts) or channel (sgrpc_ac_channel_opts, or the
 * epoll adapter's option structs).
 */
#ifndef SGRPC_ADAPTER_TLS_H
#define SGRPC_ADAPTER_TLS_H

#include <sgrpc/adapter.h>
#include <sgrpc/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Fills *f with a filter over tls, which it takes over (freed with the
 * connection, or at once when this fails). Transport bytes go through
 * sgrpc_tls_feed / sgrpc_tls_plain_read, engine bytes through
 * sgrpc_tls_write / sgrpc_tls_out_copy; any SGRPC_ERR_TLS_* (handshake,
 * verification, alert, close_notify) breaks the stream, so the core sends
 * the pending alert, closes the connection and its calls end UNAVAILABLE.
 * Returns 1 (the factory's "install it"), SGRPC_ERR_INVALID_ARGUMENT or
 * SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_ac_tls_filter(sgrpc_tls *tls, sgrpc_ac_filter *f);

/** The TLS session of a connection whose filter came from
 *  sgrpc_ac_tls_filter, or NULL (plain connection, other filter). Valid
 *  while the connection is (for the whole of an event callback). */
SGRPC_EXTERN sgrpc_tls *sgrpc_ac_conn_tls(const sgrpc_ac_conn *c);

/**
 * The peer's certificate on a TLS connection (a server handler sees the
 * client's under mutual TLS). Pointers are borrowed from the session:
 * valid until the connection is freed, so for the whole of any event
 * callback of a call on it. Returns 0, SGRPC_ERR_INVALID_STATE (no TLS
 * session, or handshake not done), or SGRPC_ERR_TLS_NO_PEER_CERT.
 */
SGRPC_EXTERN int sgrpc_ac_conn_peer_cert(const sgrpc_ac_conn *c, sgrpc_tls_peer *peer);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_ADAPTER_TLS_H */
