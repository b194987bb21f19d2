/*
 * A filter factory for the adapter core over OpenSSL: one
 * sgrpc_tls_openssl context, one session per connection. Library
 * libsgrpc-adapter-tls-openssl (target sgrpc_adapter_tls_openssl).
 *
 *   sgrpc_tls_openssl_options o;
 *   sgrpc_ac_tls_openssl *t;
 *   sgrpc_tls_openssl_options_default(&o);
 *   o.ca_file = "ca.pem";                        // client: trust
 *   if (sgrpc_ac_tls_openssl_new(&t, &o, err, sizeof err) != 0) die(err);
 *   channel_opts.make_filter = sgrpc_ac_tls_openssl_make_filter;
 *   channel_opts.filter_user_data = t;
 *
 * A server sets o.is_server, cert_file and key_file (and ca_file with
 * client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE for mutual TLS).
 */
#ifndef SGRPC_ADAPTER_TLS_OPENSSL_H
#define SGRPC_ADAPTER_TLS_OPENSSL_H

#include <sgrpc/adapter_tls.h>
#include <sgrpc/tls_openssl.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_ac_tls_openssl sgrpc_ac_tls_openssl;

/**
 * Loads a context from o (see <sgrpc/tls_openssl.h>). On a client, each
 * connection's SNI and checked name is o->server_name when set, else the
 * host of the channel's target (an IP literal is checked against IP SANs);
 * o->target_name_override wins over both. A Unix-socket channel needs
 * server_name or target_name_override. Returns 0, or the codes of
 * sgrpc_tls_openssl_ctx_new (errbuf says why).
 */
SGRPC_EXTERN int sgrpc_ac_tls_openssl_new(sgrpc_ac_tls_openssl **pt,
                                          const sgrpc_tls_openssl_options *o, char *errbuf,
                                          size_t errcap);

/** Frees the factory. Servers and channels using it must be gone or
 *  never connect again (sessions already made keep what they need).
 *  NULL is a no-op. */
SGRPC_EXTERN void sgrpc_ac_tls_openssl_del(sgrpc_ac_tls_openssl *t);

/** A sgrpc_ac_filter_factory: user_data is the sgrpc_ac_tls_openssl. */
SGRPC_EXTERN int sgrpc_ac_tls_openssl_make_filter(void *user_data, sgrpc_ac_conn *c,
                                                  sgrpc_ac_filter *f);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_ADAPTER_TLS_OPENSSL_H */
