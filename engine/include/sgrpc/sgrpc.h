/** @file
 * sgrpc — a sans-IO gRPC engine.
 *
 * This is the umbrella header and the reference documentation of the
 * engine. The engine consumes bytes and produces events and bytes; it
 * never touches a socket, a clock, a thread or a global. See
 * docs/engine.md for the contract in prose.
 *
 * Conventions used below:
 *  - Functions returning int return 0 (or a non-negative count) on
 *    success and a negative SGRPC_ERR_* code on failure.
 *  - "now" and deadlines are monotonic nanoseconds on a clock chosen by
 *    the caller; the engine only compares and subtracts them.
 *  - "Borrowed" data stays valid until the next call into the same
 *    connection (any sgrpc_conn_* or sgrpc_call_* function on it), unless
 *    stated otherwise.
 */
#ifndef SGRPC_SGRPC_H
#define SGRPC_SGRPC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sgrpc/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SGRPC_STATICLIB)
/**
 * Marks a public function or object: exported from the shared libraries (default visibility),
 * empty with SGRPC_STATICLIB.
 */
#define SGRPC_EXTERN
#elif defined(_WIN32)
#ifdef BUILDING_SGRPC
#define SGRPC_EXTERN __declspec(dllexport)
#else
#define SGRPC_EXTERN __declspec(dllimport)
#endif
#else
#define SGRPC_EXTERN __attribute__((visibility("default")))
#endif

/**
 * A signed size: a byte count, or a negative SGRPC_ERR_* code. ptrdiff_t
 * rather than the POSIX signed size type, so the header needs only
 * standard C (nghttp2 made the same move with nghttp2_ssize).
 */
typedef ptrdiff_t sgrpc_ssize;

/**
 * Returns the version of the linked library ("0.1.0"), and stores its
 * SGRPC_VERSION_NUM form in *num when num is not NULL. Compare with the
 * SGRPC_VERSION the caller compiled against (<sgrpc/version.h>).
 */
SGRPC_EXTERN const char *sgrpc_version(int *num);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/**
 * Library return codes. All are negative, and the whole project shares
 * one space, so sgrpc_strerror and sgrpc_is_fatal answer for any of them:
 *
 *   -1 .. -99     engine, call level (this enum)
 *   -201 .. -599  system errors of adapters: SGRPC_ERR_SYSTEM(errno)
 *   -600 .. -699  TLS (SGRPC_ERR_TLS_* in <sgrpc/tls.h>), fatal
 *   <= -900       engine, connection level: fatal
 *
 * A fatal code means the connection can no longer carry calls; an engine
 * fatal error is sticky (every later call returns it), but output already
 * queued (typically a GOAWAY) can still be taken with sgrpc_conn_out_*.
 */
typedef enum {
  /** An argument is NULL, out of range, or malformed. */
  SGRPC_ERR_INVALID_ARGUMENT = -1,
  /** The operation does not fit the call's state (e.g. send after
   *  half-close, initial metadata sent twice, server-only function on a
   *  client call). */
  SGRPC_ERR_INVALID_STATE = -2,
  /** The call's send buffer is full; wait for SGRPC_EV_WRITABLE. */
  SGRPC_ERR_WOULDBLOCK = -3,
  /** The call has ended; its final event was (or will be) delivered. */
  SGRPC_ERR_CALL_CLOSED = -4,
  /** A message exceeds settings.max_send_message_size. */
  SGRPC_ERR_MESSAGE_TOO_LARGE = -5,
  /** A metadata key or value breaks gRPC's rules, or the key is reserved. */
  SGRPC_ERR_BAD_METADATA = -6,
  /** Out of memory in a call-level function (starting or sending on a
   *  call): nothing was changed and the connection is intact, so the
   *  caller may retry. Compare SGRPC_ERR_CONN_NOMEM. */
  SGRPC_ERR_NOMEM = -7,
  /** The connection no longer accepts new calls (GOAWAY sent or
   *  received, or it is closing). Open another connection. */
  SGRPC_ERR_GOING_AWAY = -8,
  /** sgrpc_conn_recv was called while events are still queued: pull
   *  them all with sgrpc_conn_next_event first. */
  SGRPC_ERR_EVENTS_PENDING = -9,
  /* -10 is reserved and never returned (a full outbound queue, once its
   * own code, is SGRPC_ERR_WOULDBLOCK). */
  /** A header block to send is larger than the limit (our
   *  max_send_header_list_size or the peer's SETTINGS_MAX_HEADER_LIST_SIZE). */
  SGRPC_ERR_METADATA_TOO_LARGE = -11,
  /** Unknown or unsupported compression name. */
  SGRPC_ERR_BAD_ENCODING = -12,

  /** Everything at or below this value is fatal for the connection. */
  SGRPC_ERR_FATAL = -900,
  /** The peer broke HTTP/2 at the connection level (bad preface,
   *  flooding, compression error, ...). A GOAWAY is queued. */
  SGRPC_ERR_PROTOCOL = -901,
  /** Out of memory while processing connection input, output or timers,
   *  where nghttp2 or the engine had already changed state and cannot
   *  roll it back (e.g. an event that could not be queued): the
   *  connection is lost, unlike SGRPC_ERR_NOMEM. */
  SGRPC_ERR_CONN_NOMEM = -902,
  /** The connection is closed: the transport ended, or both sides are
   *  done after GOAWAY. */
  SGRPC_ERR_CONN_CLOSED = -903,
  /** nghttp2 failed in a way not covered above. */
  SGRPC_ERR_HTTP2 = -904,
  /** The peer did not answer a keepalive PING in time. */
  SGRPC_ERR_KEEPALIVE_TIMEOUT = -905,
  /** The peer did not acknowledge our SETTINGS in time. */
  SGRPC_ERR_SETTINGS_TIMEOUT = -906,
  /** The peer sent GOAWAY ENHANCE_YOUR_CALM, or this server sent it
   *  after too many pings. */
  SGRPC_ERR_TOO_MANY_PINGS = -907
} sgrpc_error;

/**
 * System errors, for adapters: a failed system call is reported as
 * SGRPC_ERR_SYSTEM(errno), for errno 1..399 (codes -201..-599), and
 * sgrpc_err_errno gives the errno back. They are fatal for the object
 * that reported them (the connection or listener is gone).
 */
#define SGRPC_ERR_SYSTEM_BASE (-200)
/** The library code of system error e (an errno value 1..399). */
#define SGRPC_ERR_SYSTEM(e) (SGRPC_ERR_SYSTEM_BASE - (e))
/** The lowest system code, SGRPC_ERR_SYSTEM(399). */
#define SGRPC_ERR_SYSTEM_LAST (SGRPC_ERR_SYSTEM_BASE - 399)

/** The errno carried by an SGRPC_ERR_SYSTEM code, or 0 for any other
 *  code. */
SGRPC_EXTERN int sgrpc_err_errno(int code);

/**
 * Returns a static, human-readable string for any code of the project:
 * the engine's, "system error" for the SGRPC_ERR_SYSTEM range (the
 * engine does not call the C library for text: format sgrpc_err_errno
 * with strerror where that is wanted), the TLS codes, and "unknown error
 * code" (or "unknown TLS error" inside -600..-699) otherwise.
 */
SGRPC_EXTERN const char *sgrpc_strerror(int code);

/** Returns nonzero when code is fatal for the connection (or the object
 *  that returned it): codes at or below SGRPC_ERR_FATAL, the TLS range
 *  -600..-699 and the system range. */
SGRPC_EXTERN int sgrpc_is_fatal(int code);

/* ------------------------------------------------------------------ */
/* gRPC status codes (doc/statuscodes.md of grpc/grpc)                 */
/* ------------------------------------------------------------------ */

/**
 * gRPC status codes, as carried in grpc-status (doc/statuscodes.md of grpc/grpc);
 * sgrpc_status_name gives their names.
 */
typedef enum {
  SGRPC_STATUS_OK = 0, /**< success */
  SGRPC_STATUS_CANCELLED = 1, /**< the call was cancelled, usually by the caller */
  SGRPC_STATUS_UNKNOWN = 2, /**< an unknown error (also: a status from another error space) */
  SGRPC_STATUS_INVALID_ARGUMENT = 3, /**< the client gave an invalid argument */
  SGRPC_STATUS_DEADLINE_EXCEEDED = 4, /**< the deadline passed before the call finished */
  SGRPC_STATUS_NOT_FOUND = 5, /**< a requested entity was not found */
  SGRPC_STATUS_ALREADY_EXISTS = 6, /**< the entity the client tried to create exists */
  SGRPC_STATUS_PERMISSION_DENIED = 7, /**< the caller may not do this */
  SGRPC_STATUS_RESOURCE_EXHAUSTED = 8, /**< a resource (quota, memory, space) ran out */
  SGRPC_STATUS_FAILED_PRECONDITION = 9, /**< the system is not in the state the operation needs */
  SGRPC_STATUS_ABORTED = 10, /**< aborted, typically by a concurrency conflict */
  SGRPC_STATUS_OUT_OF_RANGE = 11, /**< past the valid range */
  SGRPC_STATUS_UNIMPLEMENTED = 12, /**< the method is not implemented or not known */
  SGRPC_STATUS_INTERNAL = 13, /**< an invariant broke inside the system */
  SGRPC_STATUS_UNAVAILABLE = 14, /**< the service is unavailable for now; retrying may work */
  SGRPC_STATUS_DATA_LOSS = 15, /**< unrecoverable data loss or corruption */
  SGRPC_STATUS_UNAUTHENTICATED = 16 /**< no valid credentials for the operation */
} sgrpc_status_code;

/** Returns the canonical name ("OK", "CANCELLED", ...) or "UNKNOWN"
 *  for a value outside 0..16. */
SGRPC_EXTERN const char *sgrpc_status_name(int code);

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/**
 * Allocator hooks, laid out exactly like nghttp2_mem so the engine can
 * hand them to nghttp2 unchanged. The struct is copied by
 * sgrpc_conn_*_new and never kept by pointer. NULL means libc.
 */
typedef struct sgrpc_mem {
  void *user_data; /**< passed unchanged to every function below */
  void *(*malloc)(size_t size, void *user_data); /**< allocates size bytes, or returns NULL */
  void (*free)(void *ptr, void *user_data); /**< frees ptr (NULL allowed) */
  /** allocates nmemb zeroed objects of size bytes, or returns NULL */
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
  /** resizes ptr (NULL: allocates), or returns NULL and leaves ptr alone */
  void *(*realloc)(void *ptr, size_t size, void *user_data);
} sgrpc_mem;

/**
 * What an allocator argument means everywhere in sgrpc: copies *mem into
 * *out, or libc's malloc/free/calloc/realloc when mem is NULL. Returns 0,
 * or SGRPC_ERR_INVALID_ARGUMENT (out untouched) when out is NULL or mem
 * lacks one of the four functions. Every sgrpc_*_new that takes an
 * allocator applies it, so a partial struct is refused the same way by
 * every layer.
 */
SGRPC_EXTERN int sgrpc_mem_resolve(sgrpc_mem *out, const sgrpc_mem *mem);

/**
 * Gives back a buffer the engine borrowed (sgrpc_call_send_borrowed) or
 * handed over (sgrpc_conn_take_message): `data` and `len` are the bytes
 * as they were given, `release_ud` the pointer given with them. Called
 * exactly once per buffer, from inside whichever engine call lets go of
 * it (sgrpc_conn_out_consume, sgrpc_conn_recv, sgrpc_call_cancel,
 * sgrpc_conn_del, ...); it must not call into the same connection.
 */
typedef void (*sgrpc_release_cb)(void *release_ud, const uint8_t *data, size_t len);

/** One piece of output for a gather write (sgrpc_conn_out_peekv); the
 *  same two fields as struct iovec, in sgrpc's own types. */
typedef struct sgrpc_iov {
  const uint8_t *base; /**< first byte */
  size_t len;          /**< byte count, never 0 */
} sgrpc_iov;

/* ------------------------------------------------------------------ */
/* Settings                                                            */
/* ------------------------------------------------------------------ */

/**
 * Versions of sgrpc_settings. A new version only appends fields; the
 * engine reads exactly the fields of the version the caller compiled
 * against (settings.version) and gives every later field its default.
 * Version 1: every field up to settings_timeout (0.1.0).
 * Version 2: adds conn_memory_budget and shared_budget.
 */
#define SGRPC_SETTINGS_V1 1
#define SGRPC_SETTINGS_V2 2 /**< adds conn_memory_budget and shared_budget */
/** The version this header describes. */
#define SGRPC_SETTINGS_VERSION SGRPC_SETTINGS_V2

/**
 * A memory budget several connections share (typically every connection
 * of one server): the bytes each connection counts against its own
 * conn_memory_budget are counted here too, and a receive that would pass
 * the shared limit fails its call (RESOURCE_EXHAUSTED) as the
 * connection's own budget does. Plain counters, no lock: every connection
 * using one budget must run on one thread (one event loop).
 */
typedef struct sgrpc_budget sgrpc_budget;

/**
 * Creates a shared budget of limit bytes (0: 256 MiB), allocated through
 * mem (NULL: libc). Returns 0 and sets *pbudget, or
 * SGRPC_ERR_INVALID_ARGUMENT (pbudget NULL, a partial mem) or
 * SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_budget_new(sgrpc_budget **pbudget, size_t limit,
                                  const sgrpc_mem *mem);
/** Frees a budget. Every connection given it must be deleted first. */
SGRPC_EXTERN void sgrpc_budget_del(sgrpc_budget *budget);
/** Bytes the connections using the budget count now (0 for NULL). */
SGRPC_EXTERN size_t sgrpc_budget_used(const sgrpc_budget *budget);

/**
 * The one "no time" value: no deadline (SGRPC_EV_CALL_NEW without
 * grpc-timeout), no timer armed (sgrpc_conn_next_expiry), a timed feature
 * turned off (settings). Where a caller passes a deadline, 0 means "none"
 * as well.
 */
#define SGRPC_NEVER INT64_MAX

/**
 * Connection settings. Fill with sgrpc_settings_default() and change
 * what you need; the struct is copied at connection creation.
 *
 * Zero (or NULL) in any field means that field's default, so a struct
 * zeroed with only version set is the defaults. Times are nanoseconds;
 * a time whose feature can be turned off takes SGRPC_NEVER (or any
 * negative value) for "off".
 */
typedef struct sgrpc_settings {
  /** The SGRPC_SETTINGS_V* the caller filled the struct for; set by
   *  sgrpc_settings_default (to SGRPC_SETTINGS_VERSION of the header the
   *  caller compiled with). Required: 0 is refused. */
  uint32_t version;
  /** Largest message accepted from the peer, after the 5-byte prefix.
   *  0: 4 MiB. A larger one ends the call RESOURCE_EXHAUSTED. */
  uint32_t max_recv_message_size;
  /** Largest message sgrpc_call_send accepts. 0: INT32_MAX. */
  uint32_t max_send_message_size;
  /** Per-call bytes buffered for sending before sgrpc_call_send returns
   *  SGRPC_ERR_WOULDBLOCK. A single message is always accepted into an
   *  empty buffer. 0: 64 KiB. */
  uint32_t max_send_buffer;
  /** Largest header block (name + value + 32 per field, as in RFC 7540
   *  SETTINGS_MAX_HEADER_LIST_SIZE) accepted and advertised. 0: 16 KiB. */
  uint32_t max_header_list_size;
  /** HTTP/2 initial stream window advertised to the peer, 65535 to
   *  INT32_MAX (other values: SGRPC_ERR_INVALID_ARGUMENT). 0: 4 MiB. */
  uint32_t stream_window;
  /** HTTP/2 connection window, 65535 to INT32_MAX. 0: 4 MiB. */
  uint32_t connection_window;
  /** Server: SETTINGS_MAX_CONCURRENT_STREAMS advertised. 0: 256 (a
   *  server that wants no new streams uses sgrpc_conn_shutdown).
   *  Client: ignored (the peer's value applies). */
  uint32_t max_concurrent_streams;
  /** Events queued before the engine stops consuming input (checked at
   *  each DATA chunk and each received header field, so a burst of new
   *  streams stops too). The queue can exceed it by the events of one
   *  HTTP/2 frame. 0: 32 (each queued
   *  event is about 170 bytes of ring a connection keeps while it has
   *  calls). */
  uint32_t max_queued_events;
  /** Bytes of output the engine prepares per sgrpc_conn_out_peek; values
   *  below 1024 become 1024. 0: 64 KiB. */
  uint32_t out_chunk;
  /** Client: value of the :scheme header, "http" or "https". NULL:
   *  "http". Must outlive the connection (a string literal is typical). */
  const char *scheme;
  /** Client: user-agent header; server: ignored. NULL:
   *  "sgrpc-c/" SGRPC_VERSION. Must outlive the connection. */
  const char *user_agent;

  /* --- compression --- */
  /** Default grpc-encoding for messages this side sends: "identity",
   *  "gzip" or "deflate" (other names: SGRPC_ERR_BAD_ENCODING). A server
   *  uses it only when the client's grpc-accept-encoding lists it. NULL:
   *  identity (no compression). */
  const char *encoding;
  /** Messages shorter than this are sent uncompressed (flag 0) even when
   *  an encoding is set, as the spec allows. 0: compress every message. */
  uint32_t compress_min_size;

  /* --- keepalive (grpc-core's definitions) --- */
  /** Time without receiving anything after which a PING is sent. 0: the
   *  role's default, off for clients and 2 hours for servers.
   *  SGRPC_NEVER (or any negative value) turns it off. */
  int64_t keepalive_time;
  /** How long to wait for the PING's ack before the connection is
   *  declared dead (calls end UNAVAILABLE). 0 (or negative): 20 s;
   *  SGRPC_NEVER waits forever. A server's graceful shutdown waits this
   *  long for the ack of its shutdown PING before sending the final
   *  GOAWAY. */
  int64_t keepalive_timeout;
  /** Client: send keepalive pings with no call open. Server: accept
   *  pings from a client with no call open at min_recv_ping_interval
   *  instead of every 2 hours. 0: no (nonzero: yes). */
  int keepalive_permit_without_calls;
  /** Server: pings closer together than this (while no data or headers
   *  were sent in between) are strikes. 0: 5 minutes. A negative value
   *  makes no ping a strike. */
  int64_t min_recv_ping_interval;
  /** Server: strikes tolerated before GOAWAY ENHANCE_YOUR_CALM with
   *  debug data "too_many_pings". 0: 2; UINT32_MAX: never. */
  uint32_t max_ping_strikes;

  /* --- limits --- */
  /** Largest header block this side sends (also capped by the peer's
   *  SETTINGS_MAX_HEADER_LIST_SIZE). 0: 16 KiB. */
  uint32_t max_send_header_list_size;
  /** Bytes buffered for sending across all calls of the connection;
   *  beyond it sgrpc_call_send returns SGRPC_ERR_WOULDBLOCK until the
   *  output drains (then SGRPC_EV_WRITABLE). 0: 16 MiB. */
  size_t max_outbound_queue;
  /** Time for the peer to acknowledge our SETTINGS before the connection
   *  fails (SGRPC_ERR_SETTINGS_TIMEOUT). 0: 20 s; SGRPC_NEVER (or any
   *  negative value) turns it off. */
  int64_t settings_timeout;

  /* --- version 2 --- */
  /** Memory one connection may hold for the peer: bytes of messages
   *  being reassembled and of received messages not yet released by the
   *  application, header blocks received (RFC 7540 size), and bytes
   *  queued for sending. A received message or header block that would
   *  pass it ends its call RESOURCE_EXHAUSTED (RST_STREAM; the other
   *  calls go on); when received messages the application has not
   *  released plus queued output reach half of it, the connection stops
   *  returning connection-level flow-control credit (the peer stops
   *  sending) until they drop again. 0: 64 MiB.
   *  Also counted: one large message buffer (64 KiB or more) the
   *  connection keeps after a message is done with it (a taken message
   *  once the engine released it, an ended call's reassembly buffer) so
   *  that the next large message is received into it instead of a fresh
   *  one. It is kept only while it takes at most half of the room left
   *  in this budget and the shared one, it is given back as soon as a
   *  received message or header block would not fit otherwise (it never
   *  costs a call), and sgrpc_conn_trim gives it back. */
  size_t conn_memory_budget;
  /** A budget shared with other connections (sgrpc_budget_new), counted
   *  besides conn_memory_budget; it must outlive the connection. NULL:
   *  none. */
  sgrpc_budget *shared_budget;
} sgrpc_settings;

/**
 * Fills the fields of settings version `version` with the defaults listed
 * above and sets s->version to it. Fields of later versions are not
 * touched (the caller's struct may not have them). An unknown version (0,
 * or newer than this library) only sets s->version, which
 * sgrpc_conn_*_new then refuses. Call it through sgrpc_settings_default.
 */
SGRPC_EXTERN void sgrpc_settings_default_versioned(int version, sgrpc_settings *s);

/**
 * Copies settings of any version up to SGRPC_SETTINGS_VERSION into dst
 * (this header's struct): only src's version's fields are read, later
 * ones get their defaults, dst->version becomes SGRPC_SETTINGS_VERSION.
 * For layers that keep a caller's settings (an application built against
 * an older header passes a shorter struct). Returns 0, or
 * SGRPC_ERR_INVALID_ARGUMENT (NULL, version 0 or newer; dst untouched).
 */
SGRPC_EXTERN int sgrpc_settings_copy(sgrpc_settings *dst, const sgrpc_settings *src);

/** Fills s with the defaults for the settings version this header
 *  describes (ngtcp2's pattern: the caller's version travels with it). */
#define sgrpc_settings_default(S)                                              \
  sgrpc_settings_default_versioned(SGRPC_SETTINGS_VERSION, (S))

/* ------------------------------------------------------------------ */
/* Metadata                                                            */
/* ------------------------------------------------------------------ */

/**
 * One metadata entry. Keys are lowercase [0-9a-z-_.]. Values of keys
 * ending in "-bin" are raw bytes (the engine base64-encodes them on the
 * wire and decodes them on receipt); other values are printable ASCII
 * (0x20-0x7E). Keys may repeat; order is kept.
 *
 * In events, key and value are borrowed; key is NUL-terminated and value
 * is NUL-terminated too (the NUL is not counted in value_len).
 */
typedef struct sgrpc_md {
  const char *key; /**< the key, lowercase; NUL-terminated in events */
  size_t key_len; /**< key length in bytes, without a NUL */
  const uint8_t *value; /**< the value bytes (binary for keys ending in "-bin") */
  size_t value_len; /**< value length in bytes, without a NUL */
} sgrpc_md;

/**
 * An sgrpc_md initializer from two string literals, lengths counted at
 * compile time: SGRPC_MD_STR("x-id", "42"). Only literals compile (the
 * ("" k "") pasting refuses a pointer, whose sizeof would silently be the
 * pointer's). For strings known at run time use sgrpc_md_str.
 */
#define SGRPC_MD_STR(k, v)                                                     \
  { ("" k ""), sizeof("" k "") - 1, (const uint8_t *)("" v ""), sizeof("" v "") - 1 }

/** An sgrpc_md of two NUL-terminated strings (lengths by strlen). The
 *  strings are borrowed, not copied. */
static inline sgrpc_md sgrpc_md_str(const char *k, const char *v) {
  sgrpc_md m;
  m.key = k;
  m.key_len = strlen(k);
  m.value = (const uint8_t *)v;
  m.value_len = strlen(v);
  return m;
}

/**
 * Checks a metadata entry the way sgrpc_call_* functions will before
 * sending it. Returns 0, or SGRPC_ERR_BAD_METADATA when the key is empty,
 * has a character outside [0-9a-z-_.], is reserved (":"-prefixed,
 * "grpc-"-prefixed but for gRFC A6's grpc-previous-rpc-attempts and
 * grpc-retry-pushback-ms, which retries send as metadata; content-type, te, user-agent, host, connection,
 * keep-alive, proxy-connection, transfer-encoding, upgrade), or when a
 * non-binary value has a byte outside 0x20-0x7E.
 */
SGRPC_EXTERN int sgrpc_md_check(const sgrpc_md *md);

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

/**
 * One HTTP/2 connection, client or server role, and its calls (opaque; sgrpc_conn_client_new,
 * sgrpc_conn_server_new).
 */
typedef struct sgrpc_conn sgrpc_conn;
/** One call (stream) of a connection (opaque; the handle is valid until sgrpc_call_release). */
typedef struct sgrpc_call sgrpc_call;

/**
 * Creates a client connection. The HTTP/2 preface and SETTINGS are
 * queued as output at once. settings and mem may be NULL (defaults,
 * libc). now is the current time. settings of any version up to
 * SGRPC_SETTINGS_VERSION is accepted: only that version's fields are
 * read, later ones take their defaults.
 *
 * Returns 0 and sets *pconn, or SGRPC_ERR_INVALID_ARGUMENT (settings
 * version 0 or newer than the library, a value out of range, a partial
 * mem), SGRPC_ERR_BAD_ENCODING (unknown settings encoding) or
 * SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_conn_client_new(sgrpc_conn **pconn,
                                       const sgrpc_settings *settings,
                                       const sgrpc_mem *mem, int64_t now);

/** Creates a server connection; otherwise as sgrpc_conn_client_new. */
SGRPC_EXTERN int sgrpc_conn_server_new(sgrpc_conn **pconn,
                                       const sgrpc_settings *settings,
                                       const sgrpc_mem *mem, int64_t now);

/**
 * Frees the connection and every call on it, including call handles the
 * user has not released. NULL is a no-op. No events are produced.
 */
SGRPC_EXTERN void sgrpc_conn_del(sgrpc_conn *conn);

/** Returns nonzero for a server connection. */
SGRPC_EXTERN int sgrpc_conn_is_server(const sgrpc_conn *conn);

/**
 * Feeds bytes received from the peer. Any split works, down to one byte
 * at a time. Returns the number of bytes consumed (possibly fewer than
 * len when the event queue filled up: pull events, then feed the rest),
 * or a negative code.
 *
 * Rules:
 *  - Every queued event must have been pulled before calling this again;
 *    otherwise SGRPC_ERR_EVENTS_PENDING is returned and nothing is read.
 *  - Events produced may point into data (zero-copy messages): keep data
 *    unchanged until every event has been pulled.
 *  - now arms server-side deadlines of new calls.
 *  - Must not be called while the caller is in the middle of processing
 *    an event it pulled from this connection in a way that still needs
 *    that event's borrowed data.
 *
 * A fatal return is sticky; queued output (GOAWAY) can still be taken.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_conn_recv(sgrpc_conn *conn, const uint8_t *data,
                                         size_t len, int64_t now);

/**
 * Tells the engine that the transport ended (EOF, reset, TLS closed).
 * Every open call ends with UNAVAILABLE; the connection is closed
 * afterwards (SGRPC_ERR_CONN_CLOSED). Pull the resulting events.
 */
SGRPC_EXTERN int sgrpc_conn_transport_closed(sgrpc_conn *conn);

/**
 * Points *data at output bytes ready for the transport and returns their
 * count (0: nothing to send). The bytes are borrowed: they stay valid
 * until sgrpc_conn_out_consume or any other call into conn. Calling peek
 * twice without consuming returns the same bytes (more may be appended).
 * Returns a negative code on a fatal error with nothing left to send.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_conn_out_peek(sgrpc_conn *conn,
                                             const uint8_t **data);

/** Marks n bytes returned by the last peek as written. n may be less
 *  than peeked (short write). Returns 0 or SGRPC_ERR_INVALID_ARGUMENT. */
SGRPC_EXTERN int sgrpc_conn_out_consume(sgrpc_conn *conn, size_t n);

/**
 * Copies up to cap bytes of output into buf and consumes them (for
 * transports that need buffers they own, like libuv). Returns the count
 * (0: nothing to send) or a negative code.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_conn_out_copy(sgrpc_conn *conn, uint8_t *buf,
                                             size_t cap);

/**
 * Gather form of sgrpc_conn_out_peek: fills iov[0..*count) with the
 * output ready now, in order, at most max pieces, and returns their
 * total byte count (0: nothing to send; *count is then 0). The pieces
 * may point into messages sent with sgrpc_call_send_borrowed (no copy
 * is made of them) and into the engine's own buffer; they are borrowed
 * like peek's bytes: valid until sgrpc_conn_out_consume or any other
 * call into conn. Consume any prefix of the total (a short writev).
 * Returns SGRPC_ERR_INVALID_ARGUMENT (conn, iov or count NULL, max 0),
 * or a negative fatal code with nothing left to send, as peek does.
 * sgrpc_conn_out_peek stays valid alongside: it returns the first piece.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_conn_out_peekv(sgrpc_conn *conn, sgrpc_iov *iov,
                                              size_t max, size_t *count);

/** Returns nonzero when output is waiting (cheap; does not prepare it). */
SGRPC_EXTERN int sgrpc_conn_want_write(const sgrpc_conn *conn);

/**
 * Returns nonzero while the connection can still carry traffic: it has
 * not hit a fatal error, the transport has not closed, and the HTTP/2
 * session still wants to read or write. When it returns 0 and no output
 * is pending, the adapter may close the transport.
 */
SGRPC_EXTERN int sgrpc_conn_is_alive(const sgrpc_conn *conn);

/**
 * Cheap check for drivers holding many connections: returns 0 when conn
 * is healthy and has nothing for its driver to do (no queued event, no
 * pulled event still holding memory, no output waiting, alive), so that
 * pulling events and peeking output would find nothing until new input,
 * an expiry or an API call on one of its calls (which makes it nonzero
 * again). Nonzero otherwise, and for NULL.
 */
SGRPC_EXTERN int sgrpc_conn_has_work(const sgrpc_conn *conn);

/** Returns the earliest time at which sgrpc_conn_handle_expiry must be
 *  called, or SGRPC_NEVER. */
SGRPC_EXTERN int64_t sgrpc_conn_next_expiry(const sgrpc_conn *conn);

/**
 * Gives back to the allocator what conn keeps only to make the next calls
 * cheaper: ended calls cached with their buffers, the large message
 * buffer kept for the next large message (see conn_memory_budget in
 * sgrpc_settings), nghttp2's freed blocks, an empty event ring, a drained
 * output buffer, scratch space. Nothing a
 * call or queued output uses is touched, and the connection works on as
 * before (the next call allocates again). The engine does this by itself
 * once a connection has had no call for a second, or as soon as its first
 * call has ended (an expiry: see sgrpc_conn_next_expiry, which then
 * returns the time that call ended); call it to do it sooner (e.g. under memory
 * pressure), which also takes that expiry away until a call ends again.
 * Returns 0 or SGRPC_ERR_INVALID_ARGUMENT.
 */
SGRPC_EXTERN int sgrpc_conn_trim(sgrpc_conn *conn);

/**
 * Runs every timer due at or before now: call deadlines (client: the call
 * ends DEADLINE_EXCEEDED and the stream is reset with CANCEL; server: the
 * call ends with status DEADLINE_EXCEEDED sent to the peer). Calling it
 * early is harmless. Returns 0 or a negative code.
 */
SGRPC_EXTERN int sgrpc_conn_handle_expiry(sgrpc_conn *conn, int64_t now);

/** Sends a PING carrying opaque; an SGRPC_EV_PING_ACK with the same value
 *  follows when the peer answers. */
SGRPC_EXTERN int sgrpc_conn_ping(sgrpc_conn *conn, uint64_t opaque);

/**
 * Queues a GOAWAY with error_code (HTTP/2 code; 0 is NO_ERROR) and the
 * last stream the engine processed. No new call can start afterwards on a
 * client; a server refuses streams above the last id. Calls in flight are
 * left to finish.
 */
SGRPC_EXTERN int sgrpc_conn_goaway(sgrpc_conn *conn, uint32_t error_code,
                                   const char *debug, size_t debug_len);

/** Number of calls the engine still holds (open, or closed but not yet
 *  released by the user). */
SGRPC_EXTERN size_t sgrpc_conn_call_count(const sgrpc_conn *conn);

/**
 * Graceful shutdown. Server: sends GOAWAY with the maximum stream id and
 * a PING; when the PING is acknowledged (or after keepalive_timeout) the
 * final GOAWAY carries the last stream id really accepted. Client: no new
 * call starts; a GOAWAY is sent. Either side: calls in flight run to
 * completion; at drain_deadline (SGRPC_NEVER for none) whatever is left
 * is cancelled. When the last call ends the connection closes cleanly
 * (SGRPC_EV_CONN_CLOSED with reason 0). Calling it again only moves the
 * drain deadline earlier.
 */
SGRPC_EXTERN int sgrpc_conn_shutdown(sgrpc_conn *conn, int64_t drain_deadline,
                                     int64_t now);

/** Current keepalive time (ns, SGRPC_NEVER when off). A client that was
 *  told "too_many_pings" has doubled it; carry it to the next connection. */
SGRPC_EXTERN int64_t sgrpc_conn_keepalive_time(const sgrpc_conn *conn);

/** Counters of a connection, for metrics and channelz. */
typedef struct sgrpc_conn_stats {
  uint64_t calls_started; /**< calls started (client) or accepted (server) */
  uint64_t calls_succeeded; /**< ended with status OK */
  uint64_t calls_failed;    /**< ended with any other status */
  uint64_t messages_sent; /**< messages queued with sgrpc_call_send or sgrpc_call_send_commit */
  uint64_t messages_received; /**< complete messages delivered as SGRPC_EV_MESSAGE */
  uint64_t bytes_sent;      /**< transport bytes taken with out_consume/copy */
  uint64_t bytes_received;  /**< transport bytes consumed by recv */
  int64_t last_activity;    /**< now of the last recv that consumed bytes */
  /** The engine's now when the last call started (client: the start;
   *  server: its request headers arrived); 0 before the first call. */
  int64_t last_call_started;
} sgrpc_conn_stats;

/** Copies the counters of conn into *st (both must be non-NULL). */
SGRPC_EXTERN void sgrpc_conn_get_stats(const sgrpc_conn *conn, sgrpc_conn_stats *st);

/** Connection-level HTTP/2 flow-control windows (RFC 9113 section 6.9),
 *  for channelz's SocketData and diagnostics. */
typedef struct sgrpc_conn_flow {
  /** Bytes the peer may still send us before we give credit back. */
  int64_t local_window;
  /** Bytes we may still send the peer before it gives credit back. */
  int64_t remote_window;
} sgrpc_conn_flow;

/**
 * Reads the connection's flow-control windows into *flow. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT (NULL) or SGRPC_ERR_INVALID_STATE (the
 * connection failed and its HTTP/2 session is gone; *flow is zeroed).
 */
SGRPC_EXTERN int sgrpc_conn_get_flow(const sgrpc_conn *conn, sgrpc_conn_flow *flow);

/* ------------------------------------------------------------------ */
/* Peer identity                                                       */
/* ------------------------------------------------------------------ */

/** Kinds of certificate subject alternative names; the values are those
 *  of sgrpc_tls_san_type in <sgrpc/tls.h>. */
typedef enum sgrpc_peer_san_type {
  SGRPC_PEER_SAN_DNS = 1,   /**< a DNS name */
  SGRPC_PEER_SAN_IP = 2,    /**< dotted IPv4 or RFC 5952 IPv6 text */
  SGRPC_PEER_SAN_URI = 3,   /**< a URI (e.g. a SPIFFE id) */
  SGRPC_PEER_SAN_EMAIL = 4  /**< an rfc822Name */
} sgrpc_peer_san_type;

/** One subject alternative name of the peer's certificate. */
typedef struct sgrpc_peer_san {
  /** Its kind (sgrpc_peer_san_type). */
  int type;
  /** The name, NUL-terminated. */
  const char *value;
} sgrpc_peer_san;

/**
 * Who is on the other end of a connection, as the transport knows it.
 * Every pointer is borrowed from the transport and stays valid while the
 * connection lives (for a server handler: until its call ends). Fields
 * the transport does not know are "" / NULL / 0.
 */
typedef struct sgrpc_peer {
  /** Peer address text: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000",
   *  "unix:/path"; "" when unknown. Never NULL after sgrpc_conn_peer. */
  const char *address;
  /** Nonzero when the connection runs over TLS (handshake done). */
  int secure;
  /** Nonzero when the peer presented a certificate (under TLS; a server
   *  sees the client's only with mutual TLS). The cert_* fields and sans
   *  are set only then. */
  int has_cert;
  /** Nonzero when that certificate's chain was verified against the
   *  transport's trusted CAs. Authorize only on verified certificates. */
  int cert_verified;
  /** DER bytes of the peer's leaf certificate (sgrpc_peer_cert_pem turns
   *  them into PEM). */
  const uint8_t *cert_der;
  /** Length of cert_der. */
  size_t cert_der_len;
  /** Subject and issuer distinguished names, RFC 2253 form
   *  ("CN=client,O=sgrpc test"); "" without a certificate. */
  const char *cert_subject;
  /** See cert_subject. */
  const char *cert_issuer;
  /** Subject alternative names (DNS, IP, URI, email) in certificate
   *  order. */
  const sgrpc_peer_san *sans;
  /** Number of entries in sans. */
  size_t san_count;
  /** TLS protocol version ("TLSv1.3") and cipher suite, NULL on plain
   *  connections. */
  const char *tls_version;
  /** See tls_version. */
  const char *tls_cipher;
} sgrpc_peer;

/**
 * The transport's peer callback: fills *peer (zeroed by the caller) for
 * the connection it was registered on. ctx is the pointer given to
 * sgrpc_conn_set_peer_source. Returns 0 or a negative SGRPC_ERR_* code.
 */
typedef int (*sgrpc_peer_fn)(void *ctx, sgrpc_peer *peer);

/**
 * Registers where conn's peer identity comes from. The transport that
 * owns the connection calls it once (the net layer does it for every
 * connection it makes); layers above read the result with sgrpc_conn_peer
 * without knowing the transport. fn NULL removes the source. ctx must
 * outlive the connection or the next call of this function. NULL conn is
 * a no-op.
 */
SGRPC_EXTERN void sgrpc_conn_set_peer_source(sgrpc_conn *conn, sgrpc_peer_fn fn, void *ctx);

/**
 * A driver's wake hook: ud is the pointer given to sgrpc_conn_set_wake.
 * It may be called while the driver is itself inside a call on the same
 * connection (an event callback that sends); it must only note that the
 * connection wants servicing and must not call into the engine.
 */
typedef void (*sgrpc_wake_fn)(void *ud);

/**
 * Registers the driver's wake hook: the engine calls fn(ud) after every
 * API call that may have queued work for the driver on conn (a call
 * started, a message, headers, status or half-close sent, a cancel, a
 * release, a ping, a GOAWAY, a shutdown), whether it succeeded or not,
 * so that a driver holding many connections services only the ones that
 * were woken, read from or whose expiry is due, instead of asking every
 * one sgrpc_conn_has_work. Not called for the driver's own calls (input,
 * output, expiry, event pulls). fn NULL removes the hook. ud must outlive
 * the connection or the next call of this function. NULL conn is a no-op.
 */
SGRPC_EXTERN void sgrpc_conn_set_wake(sgrpc_conn *conn, sgrpc_wake_fn fn, void *ud);

/**
 * Fills *peer with what conn's transport knows of its peer. A connection
 * without a peer source (in-memory pairs, a user's own loop that set none)
 * gets address "" and nothing else. Returns 0, SGRPC_ERR_INVALID_ARGUMENT
 * (NULL) or the source's error code (then *peer holds address "" only).
 */
SGRPC_EXTERN int sgrpc_conn_peer(const sgrpc_conn *conn, sgrpc_peer *peer);

/**
 * Writes peer's certificate as PEM ("-----BEGIN CERTIFICATE-----", the
 * DER in base64 lines of 64 columns, "-----END CERTIFICATE-----", each
 * line ending in a newline) into buf, NUL-terminated. Returns the PEM
 * length without the NUL (always < cap) when it fit; when buf is NULL or
 * cap is too small nothing is written and the size needed including the
 * NUL is returned (always > cap), so a first call with cap 0 measures.
 * Returns SGRPC_ERR_INVALID_ARGUMENT for a NULL peer or one without a
 * certificate.
 */
SGRPC_EXTERN sgrpc_ssize sgrpc_peer_cert_pem(const sgrpc_peer *peer, char *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

/** The kinds of event sgrpc_conn_next_event returns (sgrpc_event.type). */
typedef enum {
  /** No event queued. */
  SGRPC_EV_NONE = 0,
  /** Server: a new call with valid gRPC request headers. The call handle
   *  in the event belongs to the user, who must sgrpc_call_release it. */
  SGRPC_EV_CALL_NEW,
  /** Client: the response's initial metadata (not sent for
   *  trailers-only responses, where everything is in SGRPC_EV_CLOSE). */
  SGRPC_EV_HEADERS,
  /** One complete message (prefix removed). Window credit for it goes
   *  back to the peer when this event is pulled. */
  SGRPC_EV_MESSAGE,
  /** Server: the client half-closed; no more messages will come. */
  SGRPC_EV_HALF_CLOSE,
  /** The call's last event. Client: the status (from trailers or a
   *  trailers-only response, or synthesized for HTTP errors, resets,
   *  deadlines and connection loss). Server: how the call ended (the
   *  status this side sent, CANCELLED when the peer reset the stream,
   *  DEADLINE_EXCEEDED when the deadline passed, and so on). */
  SGRPC_EV_CLOSE,
  /** The call's send buffer drained below settings.max_send_buffer after
   *  a send returned SGRPC_ERR_WOULDBLOCK. */
  SGRPC_EV_WRITABLE,
  /** The peer sent GOAWAY. Calls above last_stream_id end UNAVAILABLE. */
  SGRPC_EV_GOAWAY,
  /** The peer acknowledged a sgrpc_conn_ping. */
  SGRPC_EV_PING_ACK,
  /** The peer's SETTINGS arrived: the connection is ready. */
  SGRPC_EV_READY,
  /** The connection is finished; reason 0 for a clean end (graceful
   *  shutdown done, GOAWAY and no calls left), else the SGRPC_ERR_* code
   *  (SGRPC_ERR_CONN_CLOSED when the HTTP/2 session ended with calls
   *  still open). Sent once. Close the transport after taking the
   *  remaining output. */
  SGRPC_EV_CONN_CLOSED
} sgrpc_event_type;

/** The status carried by SGRPC_EV_CLOSE. All pointers are borrowed. */
typedef struct sgrpc_status_info {
  /** gRPC status code; values outside 0..16 received from a peer are
   *  reported as SGRPC_STATUS_UNKNOWN. */
  int code;
  /** grpc-message, percent-decoded, UTF-8 (invalid sequences replaced
   *  with U+FFFD). NUL-terminated; never NULL (may be ""). */
  const char *message;
  size_t message_len; /**< length of message in bytes, without the NUL */
  /** grpc-status-details-bin, base64-decoded (NULL/0 when absent). */
  const uint8_t *details;
  size_t details_len; /**< length of details in bytes */
  /** Trailing metadata (reserved keys removed). */
  const sgrpc_md *md;
  size_t md_count; /**< number of entries in md */
} sgrpc_status_info;

/**
 * One event pulled with sgrpc_conn_next_event: its type, its call, and the member of u that the
 * type names. Borrowed data stays valid until the next call into the connection.
 */
typedef struct sgrpc_event {
  sgrpc_event_type type; /**< what happened; selects the member of u */
  /** The call the event belongs to; NULL for connection events. */
  sgrpc_call *call;
  /** The call's user_data at the time the event was pulled. */
  void *call_user_data;
  union {
    /** SGRPC_EV_CALL_NEW */
    struct {
      const char *path; /* ":path", e.g. "/pkg.Svc/Method" */
      size_t path_len;
      const char *authority; /* ":authority" or "" */
      const char *user_agent; /* "" when absent */
      const char *content_type; /* e.g. "application/grpc+proto" */
      const char *encoding; /* grpc-encoding, "" when absent */
      const char *accept_encoding; /* grpc-accept-encoding or "" */
      /** Absolute deadline (now at receipt + grpc-timeout), or
       *  SGRPC_NEVER. */
      int64_t deadline;
      const sgrpc_md *md;
      size_t md_count;
    } call_new;
    /** SGRPC_EV_HEADERS */
    struct {
      const sgrpc_md *md;
      size_t md_count;
      const char *encoding; /* grpc-encoding, "" when absent */
    } headers;
    /** SGRPC_EV_MESSAGE */
    struct {
      const uint8_t *data;
      size_t len;
      /** The message's compressed flag as it came on the wire (1 when the
       *  peer compressed it; data is already decompressed). */
      int compressed;
    } message;
    /** SGRPC_EV_CLOSE */
    struct {
      sgrpc_status_info status;
      /** Nonzero when the stream ended by RST_STREAM (from either side). */
      int reset;
      /** The RST_STREAM error code when reset (HTTP/2 wire code). */
      uint32_t http2_error;
      /** Client: nonzero when the server never processed the call (stream
       *  refused, or above a GOAWAY's last_stream_id): safe to retry. */
      int retry_safe;
    } close;
    /** SGRPC_EV_GOAWAY */
    struct {
      uint32_t error_code;
      int32_t last_stream_id;
      const uint8_t *debug;
      size_t debug_len;
    } goaway;
    /** SGRPC_EV_PING_ACK */
    struct {
      uint64_t opaque;
    } ping_ack;
    /** SGRPC_EV_CONN_CLOSED */
    struct {
      int reason;
      const char *message; /* static text */
    } conn_closed;
  } u; /**< the type's data; only the member the type names is set */
} sgrpc_event;

/**
 * Pulls the next event into *ev. Returns 1 when an event was stored, 0
 * when the queue is empty (ev->type is SGRPC_EV_NONE), or a negative code.
 * Data in the event is borrowed until the next call into conn; message
 * data may also point into the bytes given to the last sgrpc_conn_recv.
 * Events of calls the user already released are skipped.
 */
SGRPC_EXTERN int sgrpc_conn_next_event(sgrpc_conn *conn, sgrpc_event *ev);

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

/**
 * A per-call callback of the dispatcher (sgrpc_event_dispatch). ev and
 * its data are borrowed for the duration of the call; user_data is the
 * call's user_data; now is the time the event puller passed to
 * sgrpc_event_dispatch (use it for deadlines of calls started here).
 * The callback may use the call API on any call of the connection,
 * including sgrpc_call_set_callback, but must not release ev->call: the
 * code that pulled the event does that after SGRPC_EV_CLOSE.
 */
typedef void (*sgrpc_call_cb)(const sgrpc_event *ev, void *user_data, int64_t now);

/** Options for sgrpc_call_start. Zero-initialise, then set fields. */
typedef struct sgrpc_call_opts {
  /** ":path", "/package.Service/Method". Required. */
  const char *path;
  /** ":authority"; NULL or "" sends none. */
  const char *authority;
  /** Absolute deadline; 0 (the default) or SGRPC_NEVER for none. */
  int64_t deadline;
  /** Custom metadata, checked with sgrpc_md_check. */
  const sgrpc_md *md;
  size_t md_count; /**< number of entries in md */
  /** Content subtype: NULL for "application/grpc", "proto" for
   *  "application/grpc+proto", "json" for "application/grpc+json". */
  const char *content_subtype;
  /** Stored on the call; returned in every event and given to on_event. */
  void *user_data;
  /** Per-call callback used by sgrpc_event_dispatch; NULL for none. */
  sgrpc_call_cb on_event;
  /** Compression for this call's messages: NULL for the connection's
   *  settings.encoding, "identity", "gzip" or "deflate". */
  const char *encoding;
  /** Wait for ready (doc/wait-for-ready.md in grpc/grpc), for channels
   *  (the engine itself ignores it): 0 takes the channel's default, 1
   *  keeps the call queued while the channel is CONNECTING or in
   *  TRANSIENT_FAILURE (until its deadline), -1 fails it UNAVAILABLE at
   *  once then ("fail fast"). */
  int wait_for_ready;
} sgrpc_call_opts;

/**
 * Client: starts a call. Headers are queued at once (in the spec's order:
 * :method, :scheme, :path, :authority, grpc-timeout, te, content-type,
 * user-agent, then custom metadata). The user owns the handle and must
 * sgrpc_call_release it; its last event is SGRPC_EV_CLOSE.
 *
 * Returns 0 and sets *pcall, or SGRPC_ERR_INVALID_ARGUMENT,
 * SGRPC_ERR_BAD_METADATA, SGRPC_ERR_INVALID_STATE (server connection),
 * SGRPC_ERR_GOING_AWAY, SGRPC_ERR_NOMEM, or a fatal code. A deadline at
 * or before now sends nothing: the call is made and its SGRPC_EV_CLOSE,
 * DEADLINE_EXCEEDED ("deadline exceeded before the call started"), is
 * queued at once (gRPC's outcome; the handle is the user's as usual).
 */
SGRPC_EXTERN int sgrpc_call_start(sgrpc_conn *conn, const sgrpc_call_opts *opts,
                                  int64_t now, sgrpc_call **pcall);

/** Flags for sgrpc_call_send. */
#define SGRPC_SEND_END 0x1 /**< client: half-close after this message */
#define SGRPC_SEND_COMPRESSED 0x2 /**< set the compressed flag (data is
                                       already compressed by the caller with
                                       the call's encoding) */
#define SGRPC_SEND_NO_COMPRESS 0x4 /**< send this message uncompressed even
                                        though the call has an encoding */

/**
 * Queues one message (the engine adds the 5-byte prefix and copies the
 * bytes). Server: initial metadata is sent first if it was not.
 * Returns 0, SGRPC_ERR_WOULDBLOCK (buffer full; nothing queued; wait for
 * SGRPC_EV_WRITABLE), SGRPC_ERR_MESSAGE_TOO_LARGE, SGRPC_ERR_INVALID_STATE
 * (after half-close or status), SGRPC_ERR_CALL_CLOSED, SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_call_send(sgrpc_call *call, const uint8_t *data,
                                 size_t len, unsigned flags);

/**
 * Server: chooses the response's grpc-encoding ("identity", "gzip",
 * "deflate") before initial metadata is sent. Without it the server uses
 * settings.encoding when the client accepts it. Returns
 * SGRPC_ERR_BAD_ENCODING for an unknown name or one the client did not
 * list in grpc-accept-encoding, SGRPC_ERR_INVALID_STATE after headers.
 */
SGRPC_EXTERN int sgrpc_call_set_encoding(sgrpc_call *call, const char *encoding);

/**
 * Zero-copy send, in two steps: reserve len bytes for one message inside
 * the call's send buffer, write the message there (e.g. a protobuf
 * encoder packing straight into the outgoing frame), then commit it with
 * the same flags as sgrpc_call_send. *buf stays valid until the commit;
 * nothing else may be sent on the call in between (INVALID_STATE).
 * Reserve returns the codes of sgrpc_call_send; commit returns them too,
 * or SGRPC_ERR_INVALID_STATE without a reserve. A compressing call
 * compresses at commit.
 */
SGRPC_EXTERN int sgrpc_call_send_reserve(sgrpc_call *call, size_t len, uint8_t **buf);
/**
 * Sends the message reserved with sgrpc_call_send_reserve; flags as for sgrpc_call_send. Returns
 * 0, SGRPC_ERR_INVALID_STATE (nothing reserved) or a code of sgrpc_call_send.
 */
SGRPC_EXTERN int sgrpc_call_send_commit(sgrpc_call *call, unsigned flags);

/**
 * Queues one message without copying it: the engine keeps pointing at
 * data (len bytes) until it has been written to the transport, then
 * calls release(release_ud, data, len); nghttp2 frames it in place
 * (NGHTTP2_DATA_FLAG_NO_COPY) and sgrpc_conn_out_peekv hands it to the
 * transport as it is. For large messages: below a few KiB a copy
 * (sgrpc_call_send) costs less than the bookkeeping.
 *
 * Ownership: on 0, data is the engine's to read until release, which is
 * called exactly once: when its last byte was consumed by
 * sgrpc_conn_out_consume, or when the engine drops it (the call is
 * cancelled, reset, ends with a status first, or the connection fails
 * or is deleted). The caller must not change or free data before that.
 * A call that compresses its messages compresses a copy and calls
 * release before returning 0. On any error nothing was queued, release
 * is not called and data is still the caller's. release may be NULL
 * (static data).
 *
 * Flags, back-pressure and return codes are those of sgrpc_call_send
 * (SGRPC_ERR_WOULDBLOCK, SGRPC_ERR_MESSAGE_TOO_LARGE, ...), plus
 * SGRPC_ERR_NOMEM when the small record it keeps cannot be allocated.
 */
SGRPC_EXTERN int sgrpc_call_send_borrowed(sgrpc_call *call, const uint8_t *data,
                                          size_t len, unsigned flags,
                                          sgrpc_release_cb release, void *release_ud);

/**
 * Takes the message buffer of the SGRPC_EV_MESSAGE event pulled last, so
 * that it outlives the next pull (e.g. to send it back with
 * sgrpc_call_send_borrowed, passing the same release and release_ud).
 * On 0, *data and *len are the event's message bytes, and
 * release(release_ud, data, len) frees them, exactly once, from any
 * thread and at any time, also after conn is deleted. Only a message
 * the engine assembled into a buffer of its own can be taken: one that
 * arrived whole in a single DATA frame points into the input and gives
 * SGRPC_ERR_INVALID_STATE (copy it instead), as does a last event that
 * was no message or was taken already. SGRPC_ERR_NOMEM: the small
 * record for release could not be allocated (nothing taken).
 * SGRPC_ERR_INVALID_ARGUMENT: an argument is NULL.
 */
SGRPC_EXTERN int sgrpc_conn_take_message(sgrpc_conn *conn, const uint8_t **data,
                                         size_t *len, sgrpc_release_cb *release,
                                         void **release_ud);

/** Client: half-closes (END_STREAM after buffered messages). */
SGRPC_EXTERN int sgrpc_call_close_send(sgrpc_call *call);

/**
 * Server: sends initial metadata now. Optional; otherwise it goes with
 * the first message. Returns SGRPC_ERR_INVALID_STATE if already sent.
 */
SGRPC_EXTERN int sgrpc_call_send_headers(sgrpc_call *call, const sgrpc_md *md,
                                         size_t md_count);

/** The status a server sends with sgrpc_call_send_status. */
typedef struct sgrpc_status {
  int code; /**< gRPC status code (SGRPC_STATUS_OK ... SGRPC_STATUS_UNAUTHENTICATED) */
  /** UTF-8 text, percent-encoded on the wire. NULL for none. */
  const char *message;
  /** grpc-status-details-bin bytes (e.g. a serialized google.rpc.Status);
   *  NULL/0 for none. */
  const uint8_t *details;
  size_t details_len; /**< length of details in bytes */
  /** Trailing metadata. */
  const sgrpc_md *md;
  size_t md_count; /**< number of entries in md */
} sgrpc_status;

/**
 * Server: ends the call with a status after the buffered messages. When
 * nothing was sent before, a trailers-only response is used. The call's
 * SGRPC_EV_CLOSE follows once the stream closes.
 */
SGRPC_EXTERN int sgrpc_call_send_status(sgrpc_call *call,
                                        const sgrpc_status *status);

/**
 * Either side: cancels the call with RST_STREAM CANCEL. The call ends
 * CANCELLED (its SGRPC_EV_CLOSE is queued). Returns SGRPC_ERR_CALL_CLOSED
 * when it had already ended.
 */
SGRPC_EXTERN int sgrpc_call_cancel(sgrpc_call *call);

/**
 * Gives the handle back. If the call is still open it is cancelled first.
 * Queued events of the call are dropped. The handle is invalid afterwards.
 */
SGRPC_EXTERN void sgrpc_call_release(sgrpc_call *call);

/**
 * Sets the pointer the call's events carry as call_user_data (the call's owner's state; sgrpc
 * never reads it).
 */
SGRPC_EXTERN void sgrpc_call_set_user_data(sgrpc_call *call, void *user_data);
/** The pointer set with sgrpc_call_set_user_data or sgrpc_call_set_callback (NULL when none). */
SGRPC_EXTERN void *sgrpc_call_get_user_data(const sgrpc_call *call);

/* ------------------------------------------------------------------ */
/* Dispatcher: events turned into per-call callbacks                   */
/* ------------------------------------------------------------------ */

/**
 * Sets the call's per-call callback and its user_data together (a server
 * takes over a call from SGRPC_EV_CALL_NEW this way; a client sets
 * sgrpc_call_opts.on_event instead). on_event NULL removes the callback.
 * Events already pulled keep the user_data they were pulled with.
 */
SGRPC_EXTERN void sgrpc_call_set_callback(sgrpc_call *call, sgrpc_call_cb on_event,
                                          void *user_data);

/**
 * The dispatcher. When ev belongs to a call that has a per-call callback,
 * calls it with ev->call_user_data and now, and returns 1; returns 0
 * otherwise (connection events, calls without a callback: the caller
 * handles those itself). ev may be a modified copy of a pulled event.
 *
 * Ownership, the one rule for every layer: the code that pulls a
 * connection's events releases each call after delivering its
 * SGRPC_EV_CLOSE (whether or not a callback took it); callbacks never
 * release. A loop that uses the dispatcher looks like this:
 *
 *   while (sgrpc_conn_next_event(conn, &ev) == 1) {
 *     if (!sgrpc_event_dispatch(&ev, now)) handle_other(&ev);
 *     if (ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
 *   }
 */
SGRPC_EXTERN int sgrpc_event_dispatch(const sgrpc_event *ev, int64_t now);
/** HTTP/2 stream id (client: 0 until assigned). */
SGRPC_EXTERN int32_t sgrpc_call_stream_id(const sgrpc_call *call);
/** The connection the call belongs to. */
SGRPC_EXTERN sgrpc_conn *sgrpc_call_conn(const sgrpc_call *call);

/* ------------------------------------------------------------------ */
/* Wire helpers (exposed for tests, tools and other transports)        */
/* ------------------------------------------------------------------ */

/**
 * Encodes a timeout in nanoseconds as a grpc-timeout value (at most 8
 * digits and a unit H M S m u n; the coarsest exact unit is preferred,
 * otherwise the value is rounded up). buf must hold at least 10 bytes; it
 * is NUL-terminated. Returns the length, or SGRPC_ERR_INVALID_ARGUMENT
 * for a negative timeout.
 */
SGRPC_EXTERN int sgrpc_timeout_encode(int64_t ns, char *buf, size_t cap);

/** Decodes a grpc-timeout value strictly (1-8 digits, then one unit).
 *  Returns 0 and sets *ns, or SGRPC_ERR_INVALID_ARGUMENT. */
SGRPC_EXTERN int sgrpc_timeout_decode(const char *s, size_t len, int64_t *ns);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_SGRPC_H */
