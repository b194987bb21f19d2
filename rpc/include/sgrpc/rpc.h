/** @file
 * sgrpc RPC layer: method tables, a server router and callback client
 * calls over the engine's pull API. Loop-agnostic like the engine: no IO,
 * no clock reads; "now" is passed in where a call needs it.
 *
 * An application loop does, for each connection:
 *   recv bytes -> sgrpc_conn_recv -> pull every event ->
 *     server: sgrpc_router_dispatch(router, conn, &ev, now)
 *     client: sgrpc_event_dispatch(&ev, now)
 *     both:   if (ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
 *   -> send sgrpc_conn_out_* bytes.
 *
 * Ownership follows the engine's one rule: the code that pulls the events
 * releases each call after delivering its SGRPC_EV_CLOSE. The router and
 * the rpc client never release a handle; they take their calls' events
 * through the engine's per-call dispatcher (sgrpc_event_dispatch), so a
 * call's engine user_data and callback are theirs: leave them alone.
 *
 * Messages are converted by a codec (sgrpc_codec): the protobuf-c codec in
 * <sgrpc/protobuf.h>, the raw-bytes codec below, or one of your own (JSON,
 * ...). Unpacked messages are allocated with the allocator given to the
 * router or client, which should be the connection's.
 *
 * Re-entrancy: every function here may be called from inside a handler or
 * callback, except the dispatch functions themselves and sgrpc_conn_recv.
 */
#ifndef SGRPC_RPC_H
#define SGRPC_RPC_H

#include <sgrpc/sgrpc.h>
#include <sgrpc/service_config.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Codecs                                                              */
/* ------------------------------------------------------------------ */

/**
 * How messages become bytes and back (grpclib's CodecBase). "type" is the
 * codec's message type handle taken from the method (for protobuf-c a
 * const ProtobufCMessageDescriptor *). All functions are required.
 */
typedef struct sgrpc_codec {
  /** Content subtype sent in content-type ("proto" -> application/grpc+proto,
   *  "json" -> application/grpc+json), or NULL for plain application/grpc. */
  const char *content_subtype;
  /** Returns nonzero when msg may be packed as type (a cheap check). */
  int (*check)(const void *type, const void *msg);
  /** Exact encoded size of msg. */
  size_t (*packed_size)(const void *type, const void *msg);
  /** Encodes msg into out (packed_size bytes); returns the bytes written. */
  size_t (*pack)(const void *type, const void *msg, uint8_t *out);
  /** Decodes data into a new message allocated with mem (never NULL).
   *  Returns NULL when the bytes are malformed or memory ran out. */
  void *(*unpack)(const void *type, const uint8_t *data, size_t len,
                  const sgrpc_mem *mem);
  /** Frees a message returned by unpack. */
  void (*free_msg)(const void *type, void *msg, const sgrpc_mem *mem);
} sgrpc_codec;

/** A raw message for sgrpc_codec_raw: the bytes are sent unchanged. */
typedef struct sgrpc_bytes {
  const uint8_t *data; /**< the message bytes */
  size_t len; /**< length of data */
} sgrpc_bytes;

/**
 * Raw-bytes codec: messages are sgrpc_bytes; type is ignored. Its content
 * subtype is "proto" (pre-encoded protobuf talks to any peer); copy the
 * struct and change content_subtype for another format, e.g. "json".
 */
SGRPC_EXTERN extern const sgrpc_codec sgrpc_codec_raw;

/* ------------------------------------------------------------------ */
/* Methods                                                             */
/* ------------------------------------------------------------------ */

/** One RPC method, as emitted in the method tables of protoc-gen-sgrpc. */
typedef struct sgrpc_method {
  /** Full path "/package.Service/Method". */
  const char *path;
  /** Codec type handles of the request and response messages. */
  const void *request_type;
  const void *response_type; /**< response type handle */
  /** Nonzero when the client / the server sends a stream of messages. */
  int client_streaming;
  int server_streaming; /**< nonzero when the server sends a stream */
  const sgrpc_codec *codec; /**< packs and unpacks this method's messages */
} sgrpc_method;

/** One serialized google.protobuf.FileDescriptorProto and its file name. */
typedef struct sgrpc_file_desc {
  /** The .proto file's name as protoc saw it ("google/protobuf/empty.proto"). */
  const char *name;
  /** The FileDescriptorProto bytes. */
  const uint8_t *data;
  /** Length of data. */
  size_t len;
} sgrpc_file_desc;

/** A service: its methods and the serialized FileDescriptorProto of the
 *  .proto file that defines it, with every file that file imports,
 *  directly or not (for reflection). */
typedef struct sgrpc_service_desc {
  /** Full name "package.Service". */
  const char *name;
  /** The method table, n_methods entries. */
  const sgrpc_method *methods;
  /** Number of methods. */
  size_t n_methods;
  /** Name of the .proto file. */
  const char *file_name;
  /** Its FileDescriptorProto bytes (NULL: unknown; reflection cannot
   *  describe the service then). */
  const uint8_t *file_descriptor;
  /** Length of file_descriptor. */
  size_t file_descriptor_len;
  /** The files file_name imports, transitively, each before the files
   *  that import it (protoc-gen-sgrpc fills this in; NULL: none known). */
  const sgrpc_file_desc *deps;
  /** Number of deps. */
  size_t n_deps;
} sgrpc_service_desc;

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

/** Routes server calls by :path to registered handlers (opaque). */
typedef struct sgrpc_router sgrpc_router;
/** A server call as a handler sees it (opaque; valid until the handler's on_close returned). */
typedef struct sgrpc_server_call sgrpc_server_call;

/**
 * A method's server handler.
 *
 * on_request is called:
 *  - unary and server streaming: once, with the single request, after the
 *    client half-closed. The request stays valid until the call ends.
 *  - client streaming and bidi: with each request (valid only during the
 *    callback), then once with msg == NULL when the client half-closed.
 * The handler answers with sgrpc_server_call_reply / _send / _finish /
 * _fail, at once or later (from any callback, as long as the call has
 * not ended).
 *
 * on_close (optional) is called once when the call ends, however it ends
 * (status sent, peer reset, deadline, connection loss); the call object is
 * freed right after it returns, so drop every pointer to it there.
 *
 * on_writable (optional) is called when the call can take messages again
 * after sgrpc_server_call_send (or _reply) returned SGRPC_ERR_WOULDBLOCK:
 * send from there what did not go. It is not called once the call is
 * finished. A handler that may send more than settings.max_send_buffer
 * bytes before returning (any streaming handler that loops) needs it;
 * without it a blocked call waits for its deadline or the peer.
 *
 * typed is an opaque slot for generated code (a typed function that the
 * generated on_request trampoline calls).
 */
typedef struct sgrpc_handler {
  /** a request message arrived (unary: the one request) */
  void (*on_request)(sgrpc_server_call *call, const void *msg, void *user_data);
  /** the call ended with status */
  void (*on_close)(sgrpc_server_call *call, const sgrpc_status_info *status,
                   void *user_data);
  void (*typed)(void); /**< opaque slot for generated code */
  void *user_data; /**< passed to every callback */
  /** the call can take messages again */
  void (*on_writable)(sgrpc_server_call *call, void *user_data);
} sgrpc_handler;

/**
 * Creates a router. mem is copied (NULL: libc; a struct lacking a
 * function is refused with SGRPC_ERR_INVALID_ARGUMENT, as everywhere in
 * sgrpc: see sgrpc_mem_resolve); pass the allocator the
 * server connections use, since requests are unpacked with it.
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_router_new(sgrpc_router **prouter, const sgrpc_mem *mem);

/** Frees the router. Calls still open on connections must have ended
 *  (or their connections deleted) first. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_router_del(sgrpc_router *router);

/**
 * Routes method->path to handler (copied). method must outlive the
 * router. Returns 0, SGRPC_ERR_INVALID_ARGUMENT (NULL arguments, no
 * on_request, or the path is already routed) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_router_add(sgrpc_router *router,
                                  const sgrpc_method *method,
                                  const sgrpc_handler *handler);

/**
 * Records that router serves service (generated register functions call
 * this after routing the service's methods), so the server reflection
 * registered on the router lists and describes it with no further call.
 * service must outlive the router. Adding it again is a no-op. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT (NULL, or no name) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_router_add_service(sgrpc_router *router, const sgrpc_service_desc *service);

/** Number of services recorded with sgrpc_router_add_service. */
SGRPC_EXTERN size_t sgrpc_router_service_count(const sgrpc_router *router);

/** The i-th recorded service (in the order they were added), or NULL
 *  when i is out of range. */
SGRPC_EXTERN const sgrpc_service_desc *sgrpc_router_service(const sgrpc_router *router, size_t i);

/** Returns the method routed at path (not NUL-terminated), or NULL. */
SGRPC_EXTERN const sgrpc_method *sgrpc_router_find(const sgrpc_router *router,
                                                   const char *path,
                                                   size_t path_len);

/**
 * Feeds one event pulled from a server connection. On SGRPC_EV_CALL_NEW
 * the router takes the call: it answers unknown paths with UNIMPLEMENTED
 * ("Method not found: <path>") and otherwise installs its per-call
 * callback (sgrpc_call_set_callback), which unpacks requests and runs
 * the handler. Every other call event is passed to sgrpc_event_dispatch,
 * so a loop may equally call that for them. The router never releases a
 * handle: release ev->call after its SGRPC_EV_CLOSE has been passed here
 * (the adapters and the test channel do). One router may serve any
 * number of connections, of any transports, at once. A call's engine
 * user_data is the router's; keep per-call state with
 * sgrpc_server_call_set_user_data.
 *
 * Returns 1 when the event went to a call's callback or started one, 0
 * for connection events (GOAWAY, PING_ACK: handle them yourself) and for
 * events of calls the router has no state for (an unknown path after its
 * status, a call refused for lack of memory), or
 * SGRPC_ERR_INVALID_ARGUMENT.
 */
SGRPC_EXTERN int sgrpc_router_dispatch(sgrpc_router *router, sgrpc_conn *conn,
                                       const sgrpc_event *ev, int64_t now);

/**
 * Sends a response message: packs it once, straight into the engine's
 * send buffer for the call (bounded by settings.max_send_buffer; a single
 * message always fits an empty buffer). The message is not referenced
 * after the return.
 *
 * Returns 0, or SGRPC_ERR_WOULDBLOCK when the buffer is full (or the
 * connection's settings.max_outbound_queue is): nothing was sent or kept,
 * the message is still the caller's to send again from the handler's
 * on_writable. Sending again before that returns SGRPC_ERR_WOULDBLOCK
 * again. Other errors: SGRPC_ERR_INVALID_ARGUMENT (msg is not of the
 * method's response type, or the codec packed other than it measured:
 * the call is then cancelled), SGRPC_ERR_INVALID_STATE (already
 * finished), SGRPC_ERR_MESSAGE_TOO_LARGE, SGRPC_ERR_NOMEM (the engine's
 * buffer could not grow; nothing was sent, the call stays usable),
 * SGRPC_ERR_CALL_CLOSED.
 */
SGRPC_EXTERN int sgrpc_server_call_send(sgrpc_server_call *call, const void *msg);

/** Sends initial metadata now (optional). Errors as sgrpc_call_send_headers. */
SGRPC_EXTERN int sgrpc_server_call_send_headers(sgrpc_server_call *call,
                                                const sgrpc_md *md,
                                                size_t md_count);

/**
 * Ends the call with status (NULL: OK). The status goes to the engine at
 * once (sgrpc_call_send_status), which copies it and sends it after the
 * messages it still buffers; on_writable is not called afterwards. Call
 * it any time, also while a send is blocked. Returns 0,
 * SGRPC_ERR_INVALID_STATE when already finished, SGRPC_ERR_NOMEM,
 * SGRPC_ERR_CALL_CLOSED, or another error of sgrpc_call_send_status.
 */
SGRPC_EXTERN int sgrpc_server_call_finish(sgrpc_server_call *call,
                                          const sgrpc_status *status);

/** sgrpc_server_call_send(msg) then sgrpc_server_call_finish(NULL). When
 *  the send fails (SGRPC_ERR_WOULDBLOCK included) nothing is finished and
 *  its code is returned. A fresh call's buffer is empty, so a unary
 *  handler sees SGRPC_ERR_WOULDBLOCK only when the whole connection's
 *  outbound queue is full. */
SGRPC_EXTERN int sgrpc_server_call_reply(sgrpc_server_call *call, const void *msg);

/** Ends the call with code and message (NULL for none). */
SGRPC_EXTERN int sgrpc_server_call_fail(sgrpc_server_call *call, int code,
                                        const char *message);

/** Sets the handler's per-call pointer (sgrpc never reads it). */
SGRPC_EXTERN void sgrpc_server_call_set_user_data(sgrpc_server_call *call, void *ud);
/** The pointer set with sgrpc_server_call_set_user_data (NULL when none). */
SGRPC_EXTERN void *sgrpc_server_call_get_user_data(const sgrpc_server_call *call);
/** The routed method (NULL only for unknown paths, never seen by handlers). */
SGRPC_EXTERN const sgrpc_method *sgrpc_server_call_method(const sgrpc_server_call *call);
/** The handler this call runs (generated trampolines read ->typed). */
SGRPC_EXTERN const sgrpc_handler *sgrpc_server_call_handler(const sgrpc_server_call *call);
/** The engine call handle (owned by the router: do not release it). */
SGRPC_EXTERN sgrpc_call *sgrpc_server_call_handle(const sgrpc_server_call *call);
/** Request metadata (copied from the request headers; valid until the
 *  call ends). */
SGRPC_EXTERN const sgrpc_md *sgrpc_server_call_metadata(const sgrpc_server_call *call,
                                                        size_t *md_count);
/** Absolute deadline of the call, or SGRPC_NEVER. */
SGRPC_EXTERN int64_t sgrpc_server_call_deadline(const sgrpc_server_call *call);
/** The call's "now" at its start (the time given to dispatch). */
SGRPC_EXTERN int64_t sgrpc_server_call_start_time(const sgrpc_server_call *call);
/** The now given with the event being handled (the puller's clock): what
 *  a handler uses to build deadlines of calls it starts. */
SGRPC_EXTERN int64_t sgrpc_server_call_now(const sgrpc_server_call *call);
/** The client's user-agent header ("" when it sent none), as the
 *  RECV_REQUEST hooks saw it. Valid until the call ends. */
SGRPC_EXTERN const char *sgrpc_server_call_user_agent(const sgrpc_server_call *call);
/**
 * Who sent the call: the peer address and, under TLS, the session and
 * the client's verified certificate (subject, SANs, DER; PEM with
 * sgrpc_peer_cert_pem), as the connection's transport reports it through
 * sgrpc_conn_peer (the net layer does for every connection it makes).
 * Usable from handlers and from server hooks (ev->server_call). Pointers
 * in *peer stay valid until the call ends. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT or the transport's error (then *peer has
 * address "" and nothing else: refuse the call rather than authorize).
 */
SGRPC_EXTERN int sgrpc_server_call_peer(const sgrpc_server_call *call, sgrpc_peer *peer);

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

/**
 * Transport hook: starts an engine call the way a transport that owns its
 * connections does (an adapter channel connecting lazily and queueing
 * calls; <sgrpc/net_rpc.h> binds the adapters' channels). ctx is
 * sgrpc_rpc_client.start_ctx. The function must:
 *  - start the call with opts unchanged but for :authority (opts carries
 *    the rpc layer's on_event and user_data) and store its handle in
 *    *pcall, returning 0, or return a negative SGRPC_ERR_* code (no event
 *    is then delivered);
 *  - deliver every later event of the call with sgrpc_event_dispatch,
 *    never from inside this function, the last one being SGRPC_EV_CLOSE,
 *    and release the handle after that CLOSE (the one ownership rule).
 * now is the caller's clock reading, on the clock of opts->deadline.
 */
typedef int (*sgrpc_rpc_start_fn)(void *ctx, const sgrpc_call_opts *opts, int64_t now,
                                  sgrpc_call **pcall);

/**
 * Timer hook of a client's transport, used to wait out retry backoff and
 * server pushback (the rpc layer reads no clock). It must arm a one-shot
 * timer that, at the transport's time `when` (the clock of every now
 * given to the client) or on its next turn when that has passed, calls
 * sgrpc_rpc_timer_fire(arg, now) from the loop, never from inside this
 * function; it stores a handle for sgrpc_rpc_timer_cancel_fn in *ptimer
 * and returns 0, or a negative SGRPC_ERR_* code (the retry is then not
 * made and the call ends with the status of its last attempt).
 */
typedef int (*sgrpc_rpc_timer_start_fn)(void *ctx, int64_t when, void *arg, void **ptimer);
/** Cancels a timer armed by sgrpc_rpc_timer_start_fn that has not fired:
 *  sgrpc_rpc_timer_fire must then not be called for it. */
typedef void (*sgrpc_rpc_timer_cancel_fn)(void *ctx, void *timer);
/** The random source of retry jitter: returns a uniformly distributed
 *  64-bit value. */
typedef uint64_t (*sgrpc_rpc_random_fn)(void *ctx);

/** Default per-call retry buffer limit (C-core's
 *  GRPC_ARG_PER_RPC_RETRY_BUFFER_SIZE default): 256 KiB. */
#define SGRPC_RPC_RETRY_BUFFER_PER_CALL (256u * 1024u)
/** Default limit of all retry buffers of one client: 16 MiB. */
#define SGRPC_RPC_RETRY_BUFFER_PER_CLIENT (16u * 1024u * 1024u)
/** Retry buffer limit of a call without a retry policy, kept only for
 *  transparent retries: 32 KiB, so that a long request stream, which
 *  streams refused before any processing rarely are, does not hold up to
 *  SGRPC_RPC_RETRY_BUFFER_PER_CALL bytes on every call (past it the call
 *  is committed and no longer retried transparently). */
#define SGRPC_RPC_TRANSPARENT_BUFFER_PER_CALL (32u * 1024u)
/** Transparent retries of one call at most (attempts the server never
 *  processed, retried at once and not counted against maxAttempts). */
#define SGRPC_RPC_MAX_TRANSPARENT_RETRIES 5

/**
 * Retry state of a client: set through the sgrpc_rpc_client_set_*
 * functions below, never directly; the init functions reset it to the
 * defaults (no service config, transparent retries on, no timer hook,
 * the built-in random source, the default buffer limits).
 */
typedef struct sgrpc_rpc_retry_state {
  /** Borrowed service config, or NULL. */
  const sgrpc_service_config *service_config;
  /** Timer hook (NULL: no policy retries, transparent ones still run). */
  sgrpc_rpc_timer_start_fn timer_start;
  /** Cancels a timer of timer_start. */
  sgrpc_rpc_timer_cancel_fn timer_cancel;
  /** Context of the timer hooks. */
  void *timer_ctx;
  /** Jitter source (NULL: a per-client xorshift generator). */
  sgrpc_rpc_random_fn random;
  /** Context of random. */
  void *random_ctx;
  /** State of the built-in generator. */
  uint64_t rng;
  /** Throttling tokens in thousandths (gRFC A6 keeps 3 decimals);
   *  -1: not started yet (full bucket at the first use). */
  int64_t tokens_milli;
  /** Retry buffer limits (bytes). */
  size_t buffer_per_call;
  /** Limit over every call of the client. */
  size_t buffer_per_client;
  /** Bytes held by the buffers of the client's calls now. */
  size_t buffer_used;
  /** Nonzero: no transparent retries. */
  int transparent_off;
  /** Calls waiting out a backoff (a list through the calls). */
  struct sgrpc_client_call *waiting;
} sgrpc_rpc_retry_state;

/**
 * Where client calls go: a connection (whose puller passes its events to
 * sgrpc_event_dispatch), or a transport hook. Fill it with
 * sgrpc_rpc_client_init or sgrpc_rpc_client_init_transport.
 */
typedef struct sgrpc_rpc_client {
  /** The connection calls start on (NULL with a transport hook). */
  sgrpc_conn *conn;
  /** The allocator replies are unpacked with. */
  sgrpc_mem mem;
  /** Transport hook (NULL: sgrpc_call_start on conn) and its context. */
  sgrpc_rpc_start_fn start;
  /** Context of start. */
  void *start_ctx;
  /** Hook registry (<sgrpc/events.h>) for calls started from now on;
   *  NULL (set by the init functions) for none. */
  struct sgrpc_events *events;
  /** Service config, retries and throttling (see sgrpc_rpc_retry_state). */
  sgrpc_rpc_retry_state retry;
} sgrpc_rpc_client;

/** Fills client for calls on conn. mem is copied (NULL, or a struct
 *  lacking a function, which this void function cannot refuse: libc); pass the
 *  connection's. */
SGRPC_EXTERN void sgrpc_rpc_client_init(sgrpc_rpc_client *client, sgrpc_conn *conn,
                                        const sgrpc_mem *mem);

/**
 * Fills client for calls started through start(ctx, ...), for example an
 * adapter's channel (<sgrpc/net_rpc.h>). mem is copied (NULL: libc).
 */
SGRPC_EXTERN void sgrpc_rpc_client_init_transport(sgrpc_rpc_client *client,
                                                  sgrpc_rpc_start_fn start, void *ctx,
                                                  const sgrpc_mem *mem);

/**
 * Gives the client a service config (borrowed: it must outlive every call
 * started while it is set; NULL removes it). Calls started from now on
 * take their method's config (sgrpc_service_config_find): its timeout
 * (when the call sets no earlier deadline), waitForReady (when the call
 * sets none), message size limits (a larger request or response ends the
 * call RESOURCE_EXHAUSTED, as in grpc-go) and retry policy (gRFC A6:
 * needs a timer hook, see sgrpc_rpc_client_set_timer). retryThrottling
 * starts a full token bucket for the client at its first use.
 */
SGRPC_EXTERN void sgrpc_rpc_client_set_service_config(sgrpc_rpc_client *client,
                                                      const sgrpc_service_config *cfg);

/**
 * Sets the timer hook that delays retries (ctx is given to both
 * functions). Without one, a retry policy cannot wait its backoff and
 * calls are not retried by policy; transparent retries need no timer.
 * <sgrpc/net_rpc.h> sets it for adapter channels; the test channel
 * (<sgrpc/testing.h>) sets its own.
 */
SGRPC_EXTERN void sgrpc_rpc_client_set_timer(sgrpc_rpc_client *client,
                                             sgrpc_rpc_timer_start_fn start,
                                             sgrpc_rpc_timer_cancel_fn cancel, void *ctx);

/** Replaces the jitter source (tests make backoff exact with it); NULL
 *  restores the built-in generator. */
SGRPC_EXTERN void sgrpc_rpc_client_set_random(sgrpc_rpc_client *client,
                                              sgrpc_rpc_random_fn random, void *ctx);

/**
 * Sets the retry buffer limits: per_call bytes of requests kept for
 * replay by one call, per_client over all its calls (0 keeps a limit's
 * current value). A call whose requests do not fit is committed: it is
 * not retried any more. transparent nonzero enables transparent retries
 * (the default), 0 disables them.
 */
SGRPC_EXTERN void sgrpc_rpc_client_set_retry_limits(sgrpc_rpc_client *client, size_t per_call,
                                                    size_t per_client, int transparent);

/** The client's throttling tokens (retryThrottling), in thousandths of a
 *  token; -1 before the first call that used them or without throttling. */
SGRPC_EXTERN int64_t sgrpc_rpc_client_retry_tokens(const sgrpc_rpc_client *client);

/**
 * Ends every call of client that waits out a retry backoff (no attempt
 * open): its timer is cancelled and its on_close runs, from inside this
 * function, with CANCELLED. Call it before deleting the loop whose timers
 * the client uses (a loop cancels its pending timers when deleted, which
 * would leave such calls without their on_close). Calls with an attempt
 * open end through their transport as usual.
 */
SGRPC_EXTERN void sgrpc_rpc_client_cancel_waiting(sgrpc_rpc_client *client);

/**
 * What a timer hook calls when a timer armed by sgrpc_rpc_timer_start_fn
 * expires: arg is the value it was given, now the loop's clock. Starts the
 * waiting call's next attempt (or ends the call with its last status when
 * the attempt cannot start).
 */
SGRPC_EXTERN void sgrpc_rpc_timer_fire(void *arg, int64_t now);

/**
 * The method config for path ("/package.Service/Method") by gRPC's rules:
 * an entry naming the service and method, else one naming the service
 * alone (method NULL or ""), else the default entry (service ""). Returns
 * NULL when cfg or path is NULL or nothing matches. Needs no JSON library.
 */
SGRPC_EXTERN const sgrpc_method_config *sgrpc_service_config_find(const sgrpc_service_config *cfg,
                                                                  const char *path);

/** A client call started with sgrpc_rpc_call_start (opaque; freed after its on_close returned). */
typedef struct sgrpc_client_call sgrpc_client_call;

/** Per-call options. Zero-initialise, then set what you need. */
typedef struct sgrpc_rpc_opts {
  /** Absolute deadline (same clock as now), or 0 for none. */
  int64_t deadline;
  /** Custom metadata (copied by the engine). */
  const sgrpc_md *md;
  size_t md_count; /**< number of entries in md */
  /** grpc-encoding to compress requests with (e.g. "gzip"), NULL for
   *  none (the connection's default). */
  const char *encoding;
  /** ":authority"; NULL sends none. */
  const char *authority;
  /** Passed to every callback of the call. */
  void *user_data;
  /** Wait for ready, passed as sgrpc_call_opts.wait_for_ready: 0 takes
   *  the method config's waitForReady (else the channel's default), 1
   *  waits, -1 fails fast. */
  int wait_for_ready;
} sgrpc_rpc_opts;

/**
 * Callbacks of a client call (copied at start).
 *  - on_headers (optional): the response's initial metadata (borrowed).
 *  - on_message: server-streaming methods only: each response (valid
 *    during the callback).
 *  - on_close: the call ended. For methods with a single response, reply
 *    is that response (NULL unless status->code is OK); an OK status
 *    without exactly one response is turned into INTERNAL. The call
 *    object is freed after on_close returns.
 *  - typed: opaque slots for generated code.
 *  - on_writable (optional; client-streaming methods): the call can take
 *    requests again after sgrpc_client_call_send returned
 *    SGRPC_ERR_WOULDBLOCK. Not called after close_send, nor once the
 *    call failed. Generated stubs take none: they set it with
 *    sgrpc_client_call_set_on_writable.
 */
typedef struct sgrpc_client_callbacks {
  /** the server's initial metadata arrived */
  void (*on_headers)(sgrpc_client_call *call, const sgrpc_md *md,
                     size_t md_count, void *user_data);
  /** a response message arrived (streaming responses) */
  void (*on_message)(sgrpc_client_call *call, const void *msg, void *user_data);
  /** the call ended; reply is the unary response or NULL */
  void (*on_close)(sgrpc_client_call *call, const sgrpc_status_info *status,
                   const void *reply, void *user_data);
  void (*typed[2])(void); /**< opaque slots for generated code */
  /** the call can take requests again */
  void (*on_writable)(sgrpc_client_call *call, void *user_data);
} sgrpc_client_callbacks;

/**
 * Starts a call of method. For methods with a single request (unary,
 * server streaming) pass it as request: it is sent and the call
 * half-closed at once; for streaming requests pass NULL and use
 * sgrpc_client_call_send / _close_send. opts may be NULL.
 *
 * On success sets *pcall (if pcall is not NULL); the call object lives
 * until its on_close returns. Returns 0, SGRPC_ERR_INVALID_ARGUMENT,
 * SGRPC_ERR_NOMEM, or any error of sgrpc_call_start / sgrpc_call_send:
 * SGRPC_ERR_WOULDBLOCK when the connection's whole outbound queue
 * (settings.max_outbound_queue) is full and the request cannot be
 * taken (start it again once the connection drained). On error no
 * callback runs.
 *
 * Retries (docs/channel-retries.md): the call may be made of several
 * attempts, each an engine call started like the first (through
 * client->start or on client->conn), with the method's service config
 * applied (sgrpc_rpc_client_set_service_config). The client must outlive
 * the call. sgrpc_client_call_handle returns the open attempt's handle,
 * NULL while the call waits for its next attempt.
 */
SGRPC_EXTERN int sgrpc_rpc_call_start(sgrpc_rpc_client *client,
                                      const sgrpc_method *method,
                                      const void *request,
                                      const sgrpc_rpc_opts *opts, int64_t now,
                                      const sgrpc_client_callbacks *callbacks,
                                      sgrpc_client_call **pcall);

/**
 * Sends one request message (client/bidi streaming), packed straight
 * into the engine's send buffer as sgrpc_server_call_send does, with the
 * same codes: SGRPC_ERR_WOULDBLOCK when the buffer is full (nothing
 * kept; send it again from on_writable), SGRPC_ERR_INVALID_STATE after
 * close_send or for a method without a request stream.
 * SGRPC_ERR_MESSAGE_TOO_LARGE for a message above the method config's
 * maxRequestMessageBytes (the call then ends RESOURCE_EXHAUSTED).
 * Between retry attempts (or while a new attempt replays the earlier
 * requests) the message is kept for the replay and 0 returned, or
 * SGRPC_ERR_WOULDBLOCK when it does not fit the retry buffer: on_writable
 * follows once the next attempt has its requests.
 */
SGRPC_EXTERN int sgrpc_client_call_send(sgrpc_client_call *call, const void *msg);
/** Half-closes: the engine sends END_STREAM after the requests it still
 *  buffers (sgrpc_call_close_send), so it may be called while a send is
 *  blocked. Returns 0, SGRPC_ERR_INVALID_STATE when already half-closed,
 *  or an error of sgrpc_call_close_send. */
SGRPC_EXTERN int sgrpc_client_call_close_send(sgrpc_client_call *call);
/** Cancels the call; on_close follows with CANCELLED. While the call
 *  waits out a retry backoff (no attempt open) on_close runs inside this
 *  function and the call is freed when it returns. */
SGRPC_EXTERN int sgrpc_client_call_cancel(sgrpc_client_call *call);
/** Sets the call's on_writable (the slot of sgrpc_client_callbacks; NULL
 *  clears it): how a caller of a generated stub gets one. Set it before
 *  the first send that may return SGRPC_ERR_WOULDBLOCK. */
SGRPC_EXTERN void sgrpc_client_call_set_on_writable(
    sgrpc_client_call *call, void (*on_writable)(sgrpc_client_call *call, void *user_data));
/** The callbacks the call was started with. */
SGRPC_EXTERN const sgrpc_client_callbacks *
sgrpc_client_call_callbacks(const sgrpc_client_call *call);
/** The method the call was started with. */
SGRPC_EXTERN const sgrpc_method *sgrpc_client_call_method(const sgrpc_client_call *call);
/** The engine call under the client call (for metadata and the like). */
SGRPC_EXTERN sgrpc_call *sgrpc_client_call_handle(const sgrpc_client_call *call);

/** The now given with the event being handled (the puller's clock), or
 *  the start's now before any event. */
SGRPC_EXTERN int64_t sgrpc_client_call_now(const sgrpc_client_call *call);


#ifdef __cplusplus
}
#endif

#endif /* SGRPC_RPC_H */
