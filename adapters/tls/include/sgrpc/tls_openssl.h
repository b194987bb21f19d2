/** @file
 * sgrpc TLS over OpenSSL (libsgrpc-tls-openssl, target sgrpc_tls_openssl).
 *
 * An implementation of the <sgrpc/tls.h> filter on OpenSSL 1.1.1 or 3.x
 * with two memory BIOs: no socket is ever given to OpenSSL. What it
 * enforces, whatever the options say:
 *  - TLS 1.2 or newer;
 *  - ALPN "h2" on both sides: a server rejects a ClientHello without ALPN
 *    or without "h2" (alert no_application_protocol), a client fails when
 *    the server did not choose "h2" (SGRPC_ERR_TLS_ALPN);
 *  - a client always verifies the server's chain, and its name unless
 *    skip_hostname_check is set.
 *
 * A context (sgrpc_tls_openssl_ctx) holds what is loaded once: CAs,
 * certificate and key, protocol settings. Sessions (one per connection)
 * are made from it. A context is used by one thread at a time, like a
 * loop; its sessions keep a reference, so it may be deleted while they
 * live.
 */
#ifndef SGRPC_TLS_OPENSSL_H
#define SGRPC_TLS_OPENSSL_H

#include <sgrpc/tls.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of sgrpc_tls_openssl_options this header describes. */
#define SGRPC_TLS_OPENSSL_OPTIONS_VERSION 1

/** Server policy for client certificates. */
typedef enum {
  /** Do not ask for a client certificate. */
  SGRPC_TLS_CLIENT_CERT_NONE = 0,
  /** Ask; verify it against the CAs when one is sent; accept none. */
  SGRPC_TLS_CLIENT_CERT_OPTIONAL = 1,
  /** Mutual TLS: a verified client certificate is required
   *  (SGRPC_ERR_TLS_NO_PEER_CERT / SGRPC_ERR_TLS_VERIFY otherwise). */
  SGRPC_TLS_CLIENT_CERT_REQUIRE = 2
} sgrpc_tls_client_cert_mode;

/**
 * Options of a context. Fill with sgrpc_tls_openssl_options_default, then
 * set fields. Strings are copied or used during sgrpc_tls_openssl_ctx_new
 * only; nothing is kept by pointer.
 */
typedef struct sgrpc_tls_openssl_options {
  /** Set by _default to SGRPC_TLS_OPENSSL_OPTIONS_VERSION. */
  uint32_t version;
  /** Nonzero for a server context. */
  int is_server;

  /* --- trust: verifies the peer (server's chain on a client; client
   *     certificates on a server). --- */
  /** PEM file with one or more CA certificates, or NULL. */
  const char *ca_file;
  /** Directory of hashed CA certificates (c_rehash layout), or NULL. */
  const char *ca_dir;
  /** Nonzero: also trust the system's default CA paths. Default: 1 on
   *  a client when neither ca_file nor ca_dir is given, else 0. Set by
   *  _default to -1 meaning "that automatic choice". */
  int use_default_ca;

  /* --- our identity: required on a server; on a client it is the
   *     client certificate for mutual TLS. --- */
  /** PEM certificate chain file (leaf first), or NULL. */
  const char *cert_file;
  /** PEM private key file, or NULL. */
  const char *key_file;

  /* --- client only --- */
  /** Name of the server: sent as SNI (unless it is an IP literal) and
   *  checked against the certificate's SAN (DNS or IP) / CN. Usually the
   *  host of the channel's target. Can also be given per session. */
  const char *server_name;
  /** When set, used instead of server_name for both SNI and the name
   *  check (gRPC's ssl_target_name_override), e.g. to reach a test
   *  server by 127.0.0.1 with a certificate for "foo.test.google.fr". */
  const char *target_name_override;
  /** Nonzero: verify the chain but not the name. Only for tests. */
  int skip_hostname_check;

  /* --- server only --- */
  /** whether a client certificate is asked for and required */
  sgrpc_tls_client_cert_mode client_cert;

  /* --- protocol --- */
  /** Lowest and highest version as 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3);
   *  0 for defaults (TLS 1.2 and the library's highest). A minimum below
   *  TLS 1.2 is an error (SGRPC_ERR_TLS_CONFIG). */
  int min_version;
  int max_version; /**< highest version, as min_version */
  /** ALPN protocol offered (client) or accepted (server). Default "h2".
   *  sgrpc speaks only h2: this exists so tests can show that a peer
   *  that does not negotiate h2 is refused. */
  const char *alpn;

  /* --- resources --- */
  /** Allocator for the filter's own memory (session struct, buffers,
   *  peer information); NULL for libc. Copied. OpenSSL's own
   *  allocations use OpenSSL's global allocator. */
  const sgrpc_mem *mem;
  /** Ciphertext kept before feed stops taking input. Default 64 KiB. */
  size_t max_buffered_input;
  /** Ciphertext waiting for the socket before write stops taking
   *  plaintext. Default 64 KiB. */
  size_t max_buffered_output;
} sgrpc_tls_openssl_options;

/** Fills o with the defaults described above (a client, ALPN "h2"). */
SGRPC_EXTERN void sgrpc_tls_openssl_options_default(sgrpc_tls_openssl_options *o);

/** A configured OpenSSL context shared by the sessions it makes (opaque). */
typedef struct sgrpc_tls_openssl_ctx sgrpc_tls_openssl_ctx;

/**
 * Creates a context: loads CAs, certificate and key and checks they fit.
 * Returns 0 and sets *pctx, SGRPC_ERR_INVALID_ARGUMENT (NULL or wrong
 * version), SGRPC_ERR_TLS_CONFIG (a file cannot be read or parsed, the
 * key does not match the certificate, a server without certificate, a
 * server requiring client certificates without CAs, a version below TLS
 * 1.2, an empty ALPN name), SGRPC_ERR_NOMEM. On SGRPC_ERR_TLS_CONFIG,
 * errbuf (if not NULL) receives what went wrong and OpenSSL's reason,
 * NUL-terminated and cut to errcap. (A client without any name is
 * refused later, by sgrpc_tls_openssl_new.)
 */
SGRPC_EXTERN int sgrpc_tls_openssl_ctx_new(sgrpc_tls_openssl_ctx **pctx,
                                           const sgrpc_tls_openssl_options *opts,
                                           char *errbuf, size_t errcap);

/** Drops the caller's reference; the context is freed when its last
 *  session is deleted. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_tls_openssl_ctx_del(sgrpc_tls_openssl_ctx *ctx);

/**
 * Creates one session (one connection) from ctx. server_name (client
 * only; NULL to use the context's) names the server for SNI and the name
 * check; the context's target_name_override still wins. A client session
 * queues its ClientHello at once: send it (sgrpc_tls_out_peek).
 *
 * Returns 0 and sets *ptls, SGRPC_ERR_INVALID_ARGUMENT (server_name on a
 * server), SGRPC_ERR_TLS_CONFIG (a client with no name and no
 * skip_hostname_check), SGRPC_ERR_NOMEM, SGRPC_ERR_TLS_INTERNAL.
 */
SGRPC_EXTERN int sgrpc_tls_openssl_new(sgrpc_tls **ptls, sgrpc_tls_openssl_ctx *ctx,
                                       const char *server_name);

/**
 * A ready sgrpc_tls_factory over a context: user_data is the
 * sgrpc_tls_openssl_ctx (it must outlive every server and channel using
 * it, or they must not connect again). On a client the session's name is
 * the context's server_name / target_name_override when set, else the
 * server_name given (the channel's target host; an IP literal is checked
 * against IP SANs); a client with no name at all is refused
 * (SGRPC_ERR_TLS_CONFIG) unless skip_hostname_check is set. Returns 1
 * with *ptls set, or the codes of sgrpc_tls_openssl_new.
 *
 *   sgrpc_tls_openssl_ctx *ctx;
 *   sgrpc_tls_openssl_options_default(&o);
 *   o.ca_file = "ca.pem";
 *   if (sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof err) != 0) die(err);
 *   channel_opts.make_tls = sgrpc_tls_openssl_factory;
 *   channel_opts.tls_user_data = ctx;
 */
SGRPC_EXTERN int sgrpc_tls_openssl_factory(void *ctx, const char *server_name, sgrpc_tls **ptls);

/** The OpenSSL SSL object of a session made by sgrpc_tls_openssl_new
 *  (as void *, to keep OpenSSL's headers out of this one), for what this
 *  API does not cover. NULL for any other session. Do not give it a BIO
 *  or change its state. */
SGRPC_EXTERN void *sgrpc_tls_openssl_ssl(sgrpc_tls *tls);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_TLS_OPENSSL_H */
