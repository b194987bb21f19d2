/** @file
 * Event hooks of the RPC layer (grpclib's events): functions called at
 * fixed points of every call that a router serves or an sgrpc_rpc_client
 * starts, to observe it or to change its metadata (authentication,
 * tracing, logging, metrics).
 *
 * A hook registry (sgrpc_events) holds any number of hooks per hook
 * type; they run in registration order. Attach a registry to a router
 * with sgrpc_router_set_events and to a client with
 * sgrpc_rpc_client_set_events (one registry may serve both, each side
 * fires only its own types). The registry is not owned: it must outlive
 * the router / client and every call they started.
 *
 * Cost: a call without a registry pays one NULL test per hook point.
 *
 * Hook contract (all hook types):
 *  - ev and everything it points to are borrowed for the duration of the
 *    hook only; copy what you keep.
 *  - A hook may read the call (sgrpc_server_call_* / sgrpc_client_call_*
 *    accessors) and keep per-call state with the call's user data, but
 *    must not send, finish, cancel or release the call, and must not call
 *    sgrpc_events_listen.
 *  - Where ev->md_editable is nonzero the metadata may be changed with
 *    sgrpc_hook_md_add / _remove; later hooks and the library see the
 *    result. Elsewhere metadata is read-only.
 *
 * Server hook types (only calls routed to a method with an accepted
 * content-type are seen; unknown paths get UNIMPLEMENTED without hooks):
 *  RECV_REQUEST      request headers arrived, before any handler code.
 *                    md (editable: what sgrpc_server_call_metadata later
 *                    returns), method, path, deadline, content_type,
 *                    authority, user_agent, conn; who sent it (address,
 *                    TLS, verified client certificate):
 *                    sgrpc_server_call_peer(ev->server_call, ...). To
 *                    refuse the call set
 *                    ev->end_code (non-zero gRPC status) and optionally
 *                    ev->end_message (valid until the hooks return; it is
 *                    copied then): the remaining hooks are
 *                    skipped, the call ends with that status and the
 *                    handler's on_request never runs (on_close does).
 *  SERVER_RECV_MESSAGE  a request was decoded; message is the decoded
 *                    request, before the handler sees it.
 *  SEND_INITIAL_METADATA  the response headers are about to go: at
 *                    sgrpc_server_call_send_headers or before the first
 *                    response message. md editable. Not fired for a
 *                    status sent without headers (trailers-only).
 *  SERVER_SEND_MESSAGE  sgrpc_server_call_send got a response and the
 *                    engine has room for it; message is it, before it
 *                    is encoded. A send that returns
 *                    SGRPC_ERR_WOULDBLOCK fires nothing, so each message
 *                    is seen once, when it really goes.
 *  SEND_TRAILING_METADATA  sgrpc_server_call_finish (or _reply/_fail,
 *                    or a library-made error status) is ending the call:
 *                    status_code / status_message / status_details show
 *                    the status, md (editable) its trailing metadata.
 *
 * Client hook types:
 *  SEND_REQUEST      before the call starts. md (editable: what is sent),
 *                    method, path, deadline, conn (NULL for transport
 *                    clients). client_call is set but not started yet.
 *  CLIENT_SEND_MESSAGE  a request is about to be encoded (message), once
 *                    the engine has room for it (not for a send that
 *                    returns SGRPC_ERR_WOULDBLOCK).
 *  CLIENT_RECV_MESSAGE  a response was decoded (message), before the
 *                    callbacks see it.
 *  RECV_INITIAL_METADATA  the response headers arrived (md), before
 *                    on_headers. Not fired for trailers-only responses.
 *  RECV_TRAILING_METADATA  the call ended: the final status as on_close
 *                    will see it (status_*), trailing metadata (md),
 *                    right before on_close. Fired for every started
 *                    call, also when it ended locally (cancel, deadline).
 */
#ifndef SGRPC_EVENTS_H
#define SGRPC_EVENTS_H

#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The points of a call where hooks run: server side first, then client side. */
typedef enum sgrpc_hook_type {
  SGRPC_HOOK_RECV_REQUEST = 0, /**< server: request headers arrived (may refuse the call) */
  SGRPC_HOOK_SERVER_RECV_MESSAGE, /**< server: a request message was decoded */
  SGRPC_HOOK_SEND_INITIAL_METADATA, /**< server: initial metadata is about to be sent */
  SGRPC_HOOK_SERVER_SEND_MESSAGE, /**< server: a response message is about to be sent */
  SGRPC_HOOK_SEND_TRAILING_METADATA, /**< server: the status and trailers are about to be sent */
  SGRPC_HOOK_SEND_REQUEST, /**< client: a call is about to start (headers editable) */
  SGRPC_HOOK_CLIENT_SEND_MESSAGE, /**< client: a request message is about to be sent */
  SGRPC_HOOK_CLIENT_RECV_MESSAGE, /**< client: a response message was decoded */
  SGRPC_HOOK_RECV_INITIAL_METADATA, /**< client: the server's initial metadata arrived */
  SGRPC_HOOK_RECV_TRAILING_METADATA, /**< client: the status and trailers arrived */
  SGRPC_HOOK_TYPE_COUNT /**< the number of hook types (not a hook) */
} sgrpc_hook_type;

/** What a hook receives. Fields not listed for a type are zero/NULL. */
typedef struct sgrpc_hook_event {
  sgrpc_hook_type type; /**< which hook point this is */
  const sgrpc_method *method; /**< the routed or called method */
  /** The method's path (NUL-terminated). */
  const char *path;
  /** Server hooks: the call and its connection. */
  sgrpc_server_call *server_call;
  /** Client hooks: the call. */
  sgrpc_client_call *client_call;
  /** The engine connection (server; client: NULL for transport clients). */
  sgrpc_conn *conn;
  /** Metadata of the event (headers, initial metadata or trailers). */
  const sgrpc_md *md;
  size_t md_count; /**< number of entries in md */
  /** Nonzero when md may be changed with sgrpc_hook_md_add / _remove. */
  int md_editable;
  /** RECV_REQUEST / SEND_REQUEST: absolute deadline, or SGRPC_NEVER. */
  int64_t deadline;
  /** RECV_REQUEST: request header values ("" when absent). */
  const char *content_type;
  const char *authority; /**< the :authority header */
  const char *user_agent; /**< the user-agent header */
  /** Message events: the decoded message (codec's type). */
  const void *message;
  /** SEND_TRAILING_METADATA / RECV_TRAILING_METADATA: the status. */
  int status_code;
  const char *status_message; /**< never NULL ("" for none) */
  const uint8_t *status_details; /**< grpc-status-details-bin bytes (NULL when none) */
  size_t status_details_len; /**< length of status_details in bytes */
  /** RECV_REQUEST only: set end_code to a non-zero gRPC status to refuse
   *  the call; end_message (may be NULL; a literal or hook-owned text that
   *  outlives the hook) goes with it. */
  int end_code;
  const char *end_message; /**< the status message sent with end_code */
  /** Library-private. */
  void *internal_;
} sgrpc_hook_event;

/** A hook: called with the event and the user_data it was registered with. */
typedef void (*sgrpc_hook_fn)(sgrpc_hook_event *ev, void *user_data);

typedef struct sgrpc_events sgrpc_events; /**< also named in <sgrpc/rpc.h> */

/** Creates an empty registry. mem is copied (NULL: libc); it also backs
 *  the metadata edits made by hooks. Returns 0, SGRPC_ERR_INVALID_ARGUMENT
 *  or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_events_new(sgrpc_events **pevents, const sgrpc_mem *mem);

/** Frees the registry (NULL: no-op). No router, client or call may use
 *  it any more. */
SGRPC_EXTERN void sgrpc_events_del(sgrpc_events *events);

/**
 * Adds fn (called with user_data) for events of type; hooks of a type run
 * in the order they were added. Returns 0, SGRPC_ERR_INVALID_ARGUMENT,
 * SGRPC_ERR_NOMEM, or SGRPC_ERR_INVALID_STATE when called from inside a
 * hook.
 */
SGRPC_EXTERN int sgrpc_events_listen(sgrpc_events *events, sgrpc_hook_type type,
                                     sgrpc_hook_fn fn, void *user_data);

/** Number of hooks registered for type. */
SGRPC_EXTERN size_t sgrpc_events_count(const sgrpc_events *events, sgrpc_hook_type type);

/** Server calls created after this use events' hooks (NULL: none). */
SGRPC_EXTERN void sgrpc_router_set_events(sgrpc_router *router, sgrpc_events *events);

/** Calls started after this use events' hooks (NULL: none). */
SGRPC_EXTERN void sgrpc_rpc_client_set_events(sgrpc_rpc_client *client,
                                              sgrpc_events *events);

/**
 * Appends key: value (copied) to an editable event's metadata; ev->md and
 * ev->md_count are updated. The entry is checked when it is sent, as any
 * metadata (lowercase keys, no reserved names; "-bin" keys carry raw
 * bytes). Returns 0, SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_INVALID_STATE
 * (metadata is read-only in this event) or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_hook_md_add(sgrpc_hook_event *ev, const char *key,
                                   const uint8_t *value, size_t value_len);

/** sgrpc_hook_md_add with a NUL-terminated value. */
SGRPC_EXTERN int sgrpc_hook_md_add_str(sgrpc_hook_event *ev, const char *key,
                                       const char *value);

/** Removes every entry named key. Returns the number removed (>= 0), or
 *  SGRPC_ERR_INVALID_ARGUMENT / _INVALID_STATE / _NOMEM. */
SGRPC_EXTERN int sgrpc_hook_md_remove(sgrpc_hook_event *ev, const char *key);

/** First value of key in md (value_len set), or NULL. A convenience for
 *  hooks and handlers. */
SGRPC_EXTERN const uint8_t *sgrpc_md_find(const sgrpc_md *md, size_t md_count,
                                          const char *key, size_t *value_len);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_EVENTS_H */
