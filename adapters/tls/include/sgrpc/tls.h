/** @file
 * sgrpc TLS seam: a byte filter that sits between a transport and an
 * sgrpc engine, and that any TLS library can implement.
 *
 *   socket --ciphertext--> sgrpc_tls_feed      sgrpc_tls_plain_peek --plaintext--> sgrpc_conn_recv
 *   socket <-ciphertext--  sgrpc_tls_out_peek  sgrpc_tls_write      <-plaintext--- sgrpc_conn_out_peek
 *
 * A filter follows the engine's sans-IO discipline: it never touches a
 * socket, a clock, a thread or a global; it takes bytes and gives bytes
 * back. Output is offered both borrowed (peek + consume, for writev) and
 * copied (for transports that need their own buffers, like libuv).
 *
 * This header is the whole contract. libsgrpc-tls (target sgrpc_tls)
 * holds the dispatching wrappers below, the error strings and two helpers
 * that move bytes between a filter and an engine; it depends on no TLS
 * library. <sgrpc/tls_openssl.h> is the OpenSSL implementation.
 *
 * Return codes: as in the engine, 0 or a non-negative count on success and
 * a negative code on failure: either a generic SGRPC_ERR_* from
 * <sgrpc/sgrpc.h> (INVALID_ARGUMENT, INVALID_STATE, NOMEM) or one of the
 * SGRPC_ERR_TLS_* codes below (range -600..-699). Every SGRPC_ERR_TLS_*
 * code returned by a session function is sticky: the session is over and
 * every later feed/peek/write returns the same code, but bytes already
 * queued for the socket (a TLS alert telling the peer why) can still be
 * taken with sgrpc_tls_out_peek / sgrpc_tls_out_copy and should be sent
 * before the socket is closed.
 */
#ifndef SGRPC_TLS_H
#define SGRPC_TLS_H

#include <sgrpc/sgrpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/** Error codes of the TLS seam (range -699..-600, beside the engine's SGRPC_ERR_* codes). */
typedef enum {
  /** Options are invalid, or a certificate, key or CA file could not be
   *  loaded (or the key does not match the certificate). Only returned
   *  when a context or session is created. */
  SGRPC_ERR_TLS_CONFIG = -601,
  /** The handshake failed for a reason not listed below (no common
   *  protocol version or cipher, unexpected handshake message, ...). */
  SGRPC_ERR_TLS_HANDSHAKE = -602,
  /** The peer's certificate chain did not verify (unknown CA, expired,
   *  not yet valid, bad signature, ...). */
  SGRPC_ERR_TLS_VERIFY = -603,
  /** The peer's certificate is valid but not for the expected name. */
  SGRPC_ERR_TLS_HOSTNAME = -604,
  /** The peer sent no certificate where one is required (server with
   *  client authentication required); also returned by
   *  sgrpc_tls_peer_cert when the peer has none. */
  SGRPC_ERR_TLS_NO_PEER_CERT = -605,
  /** ALPN did not select "h2": the peer offered or chose something else,
   *  or did not use ALPN at all. gRPC requires h2 over TLS. */
  SGRPC_ERR_TLS_ALPN = -606,
  /** The ciphertext is not valid TLS (garbage, bad record MAC, record
   *  too large, plaintext HTTP/2 sent to a TLS port, ...). */
  SGRPC_ERR_TLS_PROTOCOL = -607,
  /** The peer sent a fatal alert (e.g. it rejected our certificate).
   *  The error string names the alert. */
  SGRPC_ERR_TLS_PEER_ALERT = -608,
  /** The peer closed the session cleanly (close_notify) and every
   *  plaintext byte before it has been taken. Not a failure: tell the
   *  engine the transport ended (sgrpc_conn_transport_closed). */
  SGRPC_ERR_TLS_CLOSED = -609,
  /** The transport ended without the peer's close_notify (a truncation
   *  an attacker could have caused). Returned by
   *  sgrpc_tls_transport_closed. */
  SGRPC_ERR_TLS_TRUNCATED = -610,
  /** The TLS library failed in a way not covered above. */
  SGRPC_ERR_TLS_INTERNAL = -611
} sgrpc_tls_error;

/** Lowest and highest code of the TLS range (for range checks). */
#define SGRPC_ERR_TLS_FIRST (-699)
#define SGRPC_ERR_TLS_LAST (-600) /**< the highest code of the TLS range */

/** Returns a static string for any SGRPC_ERR_TLS_* code, and
 *  sgrpc_strerror(code) for every other code. Per-session detail (which
 *  alert, which verification error) is in sgrpc_tls_error_string. */
SGRPC_EXTERN const char *sgrpc_tls_strerror(int code);

/** Nonzero when code lies in the TLS range -699..-600. */
SGRPC_EXTERN int sgrpc_tls_is_tls_error(int code);

/* ------------------------------------------------------------------ */
/* Session state and peer information                                  */
/* ------------------------------------------------------------------ */

/** Bits returned by sgrpc_tls_state. */
#define SGRPC_TLS_HANDSHAKE_DONE 0x1 /**< keys agreed, peer verified, h2 chosen */
#define SGRPC_TLS_SENT_CLOSE 0x2     /**< our close_notify is queued or sent */
#define SGRPC_TLS_RECEIVED_CLOSE 0x4 /**< the peer's close_notify arrived */
#define SGRPC_TLS_FAILED 0x8         /**< a sticky error ended the session */

/** Kinds of subject alternative names. */
typedef enum {
  SGRPC_TLS_SAN_DNS = 1, /**< a DNS name */
  SGRPC_TLS_SAN_IP = 2,    /**< printed as dotted IPv4 or RFC 5952 IPv6 */
  SGRPC_TLS_SAN_URI = 3, /**< a URI */
  SGRPC_TLS_SAN_EMAIL = 4 /**< an e-mail address */
} sgrpc_tls_san_type;

/** One subject alternative name of a peer certificate. */
typedef struct sgrpc_tls_san {
  sgrpc_tls_san_type type; /**< the kind of name */
  const char *value; /**< NUL-terminated */
} sgrpc_tls_san;

/**
 * The peer's leaf certificate as seen after the handshake. Every pointer
 * is borrowed from the session and stays valid until sgrpc_tls_del.
 */
typedef struct sgrpc_tls_peer {
  /** DER encoding of the certificate. */
  const uint8_t *der;
  size_t der_len; /**< length of der in bytes */
  /** Subject and issuer distinguished names, RFC 2253 form
   *  ("CN=client,O=sgrpc test"). Never NULL. */
  const char *subject;
  const char *issuer; /**< issuer DN, same form as subject */
  /** Subject alternative names in certificate order (DNS, IP, URI,
   *  email; other kinds are left out). */
  const sgrpc_tls_san *sans;
  size_t san_count; /**< number of entries in sans */
  /** Nonzero when the chain was verified against the configured CAs
   *  (always the case once the handshake is done, unless verification
   *  was turned off by the implementation's options). */
  int verified;
} sgrpc_tls_peer;

/**
 * Facts about the session. Pointers are borrowed until sgrpc_tls_del;
 * fields are NULL when unknown (before the handshake ends).
 */
typedef struct sgrpc_tls_info {
  /** Negotiated application protocol; "h2" after a successful handshake. */
  const char *alpn;
  /** Client: the SNI name it sent (NULL for IP targets). Server: the SNI
   *  name the client sent, NULL when it sent none. Known on the server as
   *  soon as the ClientHello has been read. */
  const char *server_name;
  /** Protocol version, e.g. "TLSv1.3". */
  const char *version;
  /** Cipher suite name, as the implementation spells it. */
  const char *cipher;
  /** Nonzero on a server session. */
  int is_server;
} sgrpc_tls_info;

/* ------------------------------------------------------------------ */
/* The filter interface                                                */
/* ------------------------------------------------------------------ */

/** The version of sgrpc_tls_vtable this header describes. */
#define SGRPC_TLS_VTABLE_VERSION 1

/**
 * One TLS session (one connection's filter); an implementation embeds it first in its own struct.
 */
typedef struct sgrpc_tls sgrpc_tls;

/**
 * Makes the TLS session of one new connection (the net layer calls it,
 * <sgrpc/net.h>: at accept on a server, before the first connect on a
 * channel). server_name is NULL on a server; on a client it is the host
 * of the channel's target ("" when it has none, e.g. a Unix socket), for
 * SNI and the name check unless the implementation was configured with
 * its own name. Returns 1 with *ptls set (the caller owns the session), 0
 * for a plain connection, or a negative code to refuse the connection.
 */
typedef int (*sgrpc_tls_factory)(void *user_data, const char *server_name, sgrpc_tls **ptls);

/**
 * What an implementation provides. Every function takes the session it
 * belongs to; the wrappers below check arguments (NULL session, NULL
 * pointers) before calling, so implementations need not. The meaning,
 * lifetimes and return codes of each entry are those of the wrapper with
 * the same name, documented below.
 */
typedef struct sgrpc_tls_vtable {
  /** SGRPC_TLS_VTABLE_VERSION. */
  uint32_t version;
  /** Implementation name, e.g. "openssl". */
  const char *name;
  void (*del)(sgrpc_tls *tls); /**< sgrpc_tls_del */
  sgrpc_ssize (*feed)(sgrpc_tls *tls, const uint8_t *data, size_t len); /**< sgrpc_tls_feed */
  sgrpc_ssize (*plain_peek)(sgrpc_tls *tls, const uint8_t **data); /**< sgrpc_tls_plain_peek */
  int (*plain_consume)(sgrpc_tls *tls, size_t n); /**< sgrpc_tls_plain_consume */
  sgrpc_ssize (*write)(sgrpc_tls *tls, const uint8_t *data, size_t len); /**< sgrpc_tls_write */
  sgrpc_ssize (*out_peek)(sgrpc_tls *tls, const uint8_t **data); /**< sgrpc_tls_out_peek */
  int (*out_consume)(sgrpc_tls *tls, size_t n); /**< sgrpc_tls_out_consume */
  int (*want_read)(sgrpc_tls *tls); /**< sgrpc_tls_want_read */
  int (*want_write)(sgrpc_tls *tls); /**< sgrpc_tls_want_write */
  int (*state)(sgrpc_tls *tls); /**< sgrpc_tls_state */
  int (*close)(sgrpc_tls *tls); /**< sgrpc_tls_close */
  int (*transport_closed)(sgrpc_tls *tls); /**< sgrpc_tls_transport_closed */
  int (*peer_cert)(sgrpc_tls *tls, sgrpc_tls_peer *peer); /**< sgrpc_tls_peer_cert */
  int (*info)(sgrpc_tls *tls, sgrpc_tls_info *info); /**< sgrpc_tls_info */
  const char *(*error_string)(sgrpc_tls *tls); /**< sgrpc_tls_error_string */
} sgrpc_tls_vtable;

/**
 * The base of every session. An implementation puts it first in its own
 * struct, sets vt, and hands out a pointer to it; callers see only this.
 */
struct sgrpc_tls {
  const sgrpc_tls_vtable *vt; /**< the implementation's functions */
};

/** Frees the session and everything borrowed from it. NULL is a no-op.
 *  Sends nothing: call sgrpc_tls_close and flush first for a clean end. */
SGRPC_EXTERN void sgrpc_tls_del(sgrpc_tls *tls);

/**
 * Feeds ciphertext received from the socket, in any split (one byte at a
 * time works). Handshake messages are processed at once: the answer (if
 * any) is then waiting in sgrpc_tls_out_peek. Application data is
 * decrypted later, by sgrpc_tls_plain_peek.
 *
 * Returns the number of bytes taken: fewer than len (possibly 0) when the
 * filter's input buffer is full because plaintext is waiting to be taken.
 * Keep the rest, take the plaintext, and feed it again. The filter copies
 * what it takes; data may be reused at once. Errors: SGRPC_ERR_TLS_*
 * (handshake failure, bad record, ...), SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_feed(sgrpc_tls *tls, const uint8_t *data, size_t len);

/**
 * Points *data at decrypted plaintext for the engine and returns its
 * length; 0 when no complete record is buffered (feed more ciphertext).
 * The bytes are borrowed: they stay valid, unchanged, until the next
 * sgrpc_tls_plain_peek, sgrpc_tls_plain_read or sgrpc_tls_del. In
 * particular sgrpc_tls_plain_consume, sgrpc_tls_feed, sgrpc_tls_write and
 * the out_* calls do not move them, so the engine's events that point
 * into them stay good while the application answers.
 *
 * Returns SGRPC_ERR_TLS_CLOSED once the peer's close_notify arrived and
 * all plaintext before it was consumed; SGRPC_ERR_TLS_* on failure.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_plain_peek(sgrpc_tls *tls, const uint8_t **data);

/** Marks n bytes of the last plain_peek as taken (n may be less than
 *  peeked). Returns 0 or SGRPC_ERR_INVALID_ARGUMENT (n too large). */
SGRPC_EXTERN int sgrpc_tls_plain_consume(sgrpc_tls *tls, size_t n);

/** Copy form of plain_peek + plain_consume: copies up to cap bytes of
 *  plaintext into buf. Returns the count, 0, or a code as plain_peek. */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_plain_read(sgrpc_tls *tls, uint8_t *buf, size_t cap);

/**
 * Encrypts plaintext from the engine. Returns the number of bytes taken
 * (the filter copies them). Returns 0 until the handshake is done, and
 * fewer than len when the ciphertext waiting for the socket reached the
 * implementation's limit: send it (out_peek/out_consume), then write the
 * rest. Errors: SGRPC_ERR_INVALID_STATE after sgrpc_tls_close,
 * SGRPC_ERR_TLS_* after a failure, SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_write(sgrpc_tls *tls, const uint8_t *data, size_t len);

/**
 * Points *data at ciphertext for the socket and returns its length (0:
 * nothing to send). Borrowed until sgrpc_tls_out_consume or any call
 * that produces ciphertext (feed, write, close, out_peek after a
 * consume). Still works after a failure, to send the alert. Never fails
 * except with SGRPC_ERR_INVALID_ARGUMENT.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_out_peek(sgrpc_tls *tls, const uint8_t **data);

/** Marks n bytes of the last out_peek as sent (short writes are fine).
 *  Returns 0 or SGRPC_ERR_INVALID_ARGUMENT (n too large). */
SGRPC_EXTERN int sgrpc_tls_out_consume(sgrpc_tls *tls, size_t n);

/** Copy form of out_peek + out_consume (for transports that need buffers
 *  they own). Returns the count or 0. */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_out_copy(sgrpc_tls *tls, uint8_t *buf, size_t cap);

/** Nonzero while the session can use more ciphertext from the socket:
 *  not failed, peer not closed, and input buffer not full. */
SGRPC_EXTERN int sgrpc_tls_want_read(sgrpc_tls *tls);

/** Nonzero when ciphertext is waiting for the socket. */
SGRPC_EXTERN int sgrpc_tls_want_write(sgrpc_tls *tls);

/** SGRPC_TLS_* state bits; 0 while the handshake is in progress. A NULL
 *  session gives SGRPC_TLS_FAILED. */
SGRPC_EXTERN int sgrpc_tls_state(sgrpc_tls *tls);

/**
 * Queues close_notify (flush it with out_peek). Plaintext can still be
 * read until the peer answers with its own close_notify; writing is over.
 * Calling it again is a no-op. Returns 0, or the session's sticky error.
 */
SGRPC_EXTERN int sgrpc_tls_close(sgrpc_tls *tls);

/**
 * Tells the filter the transport ended (EOF or reset). Returns 0 when the
 * peer's close_notify had arrived (a clean end), SGRPC_ERR_TLS_TRUNCATED
 * otherwise. Either way the session is over; plaintext already decrypted
 * can still be peeked. Tell the engine too (sgrpc_conn_transport_closed).
 */
SGRPC_EXTERN int sgrpc_tls_transport_closed(sgrpc_tls *tls);

/**
 * Fills *peer with the peer's certificate (see sgrpc_tls_peer for
 * lifetimes). Returns 0, SGRPC_ERR_INVALID_STATE before the handshake is
 * done, or SGRPC_ERR_TLS_NO_PEER_CERT when the peer sent none (a server
 * not requiring client certificates).
 */
SGRPC_EXTERN int sgrpc_tls_peer_cert(sgrpc_tls *tls, sgrpc_tls_peer *peer);

/** Fills *info (see sgrpc_tls_info). Returns 0 or SGRPC_ERR_INVALID_ARGUMENT. */
SGRPC_EXTERN int sgrpc_tls_info_get(sgrpc_tls *tls, sgrpc_tls_info *info);

/**
 * A human-readable explanation of the session's failure, as precise as
 * the implementation can make it ("certificate verify failed: certificate
 * has expired", "peer sent alert: unknown ca", "peer did not negotiate
 * ALPN h2"), or "" when nothing failed. Never NULL; borrowed until the
 * next call into the session.
 */
SGRPC_EXTERN const char *sgrpc_tls_error_string(sgrpc_tls *tls);

/* ------------------------------------------------------------------ */
/* Moving bytes between a filter and an engine                          */
/* ------------------------------------------------------------------ */

/**
 * Moves the engine's output into the filter (sgrpc_conn_out_peek ->
 * sgrpc_tls_write -> sgrpc_conn_out_consume) until the engine has nothing
 * more or the filter takes no more (handshake not done, or its output
 * limit reached: send ciphertext, then call again). Returns the number of
 * plaintext bytes moved, or a negative code: the filter's error, or the
 * engine's fatal code when it has nothing left to send.
 *
 * Producing output can end streams, which queues engine events: pull them
 * (sgrpc_conn_next_event) after this returns.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_pump_out(sgrpc_tls *tls, sgrpc_conn *conn);

/**
 * Feeds plaintext from the filter to the engine once (sgrpc_tls_plain_peek
 * -> sgrpc_conn_recv -> sgrpc_tls_plain_consume). Returns the number of
 * bytes the engine took; 0 when there is no plaintext (feed more
 * ciphertext) or the engine took none (its event queue is full). Pull
 * every engine event after each call, and call again while either moved
 * something:
 *
 *   do {
 *     n = sgrpc_tls_pump_in(tls, conn, now);
 *     pulled = drain_events(conn);       // sgrpc_conn_next_event loop
 *   } while (n > 0 || (n == 0 && pulled > 0));
 *
 * Negative returns: the filter's codes (SGRPC_ERR_TLS_CLOSED when the peer
 * closed cleanly) or the engine's (SGRPC_ERR_EVENTS_PENDING if events were
 * not pulled; fatal codes). Events may point into the filter's plaintext,
 * which stays valid until the next call of this function (see
 * sgrpc_tls_plain_peek), so pull them before calling it again.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_tls_pump_in(sgrpc_tls *tls, sgrpc_conn *conn, int64_t now);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_TLS_H */
