/** @file
 * sgrpc net layer, application half (libsgrpc-net): servers, channels and
 * connections over any event loop. An adapter (<sgrpc/epoll.h>,
 * <sgrpc/uv.h>, <sgrpc/kqueue.h>) creates the loop and hands out the
 * objects declared here; everything gRPC (calls, metadata, status,
 * deadlines) is then done with the engine's call API (<sgrpc/sgrpc.h>) on
 * the call handles found in events. Adapter authors also read
 * <sgrpc/net_adapter.h>.
 *
 * Ownership, the one rule of every layer: the net layer pulls each
 * connection's events, so it releases every call after its SGRPC_EV_CLOSE
 * was delivered; never sgrpc_call_release a call seen here (end one early
 * with sgrpc_call_cancel; its CLOSE follows).
 *
 * Delivery: a call event goes to the call's own callback when it has one
 * (sgrpc_call_opts.on_event of a client call, sgrpc_call_set_callback on
 * a server call) through the engine's dispatcher, sgrpc_event_dispatch;
 * every other event goes to the server's on_event (server connections) or
 * the channel's on_conn_event (client connections).
 *
 * Time: every callback gets `now` (monotonic ns, the adapter's clock,
 * sgrpc_X_now()); every entry point that can start or end work takes
 * `now`. The net layer reads no clock itself (sgrpc_net_to_unix_ns, a
 * conversion for reports, is the one call that does).
 *
 * Threads: a loop and everything on it belong to one thread.
 *
 * Re-entrancy: callbacks may use the engine's call API,
 * sgrpc_net_channel_call, sgrpc_net_channel_close,
 * sgrpc_net_server_shutdown and the timer calls; they must not call any
 * *_del function. Work queued from callbacks is written when the callback
 * returns; work queued elsewhere (outside any sgrpc callback) on the next
 * turn of the loop.
 *
 * Errors: 0 or a negative SGRPC_ERR_* code. Socket failures are
 * SGRPC_ERR_SYSTEM(errno) (sgrpc_err_errno gives errno back).
 */
#ifndef SGRPC_NET_H
#define SGRPC_NET_H

#include <sgrpc/service_config.h>
#include <sgrpc/sgrpc.h>
#include <sgrpc/tls.h>

#include <sys/socket.h>


#ifdef __cplusplus
extern "C" {
#endif

/**
 * An adapter's loop as the net layer sees it (opaque; made by sgrpc_epoll_new, sgrpc_uv_new or
 * sgrpc_kqueue_new).
 */
typedef struct sgrpc_net_loop sgrpc_net_loop;
/** One connection, accepted by a server or opened by a channel (opaque; owned by the net layer). */
typedef struct sgrpc_net_conn sgrpc_net_conn;
/** A listener and the connections it accepted (opaque; made by an adapter's listen call). */
typedef struct sgrpc_net_server sgrpc_net_server;
/** A client channel: one target, connected lazily, reconnected with backoff (opaque). */
typedef struct sgrpc_net_channel sgrpc_net_channel;
/** A user timer on a loop (opaque). */
typedef struct sgrpc_net_timer sgrpc_net_timer;

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

/** Kinds of sgrpc_net_target. */
enum {
  SGRPC_NET_TARGET_TCP = 1, /**< a host and a port */
  SGRPC_NET_TARGET_UNIX = 2 /**< a Unix domain socket path */
};

/** A parsed address string. */
typedef struct sgrpc_net_target {
  int kind; /**< SGRPC_NET_TARGET_TCP or SGRPC_NET_TARGET_UNIX */
  /** TCP: host without brackets ("127.0.0.1", "::1", "localhost"); ""
   *  for the wildcard address (servers only). */
  char host[256];
  /** TCP: the port as text and as a number. */
  char port[8];
  int port_num; /**< TCP: the port as a number */
  /** UNIX: the socket path. */
  char path[108];
} sgrpc_net_target;

/**
 * Parses "host:port", "[v6]:port", ":port" (passive only: all addresses)
 * or "unix:/path". Returns 0 or SGRPC_ERR_INVALID_ARGUMENT. No name
 * resolution happens here.
 */
SGRPC_EXTERN int sgrpc_net_target_parse(const char *s, int passive, sgrpc_net_target *t);

/** One resolved address a channel can connect to: an IPv4 or IPv6
 *  socket address with its port, or a Unix domain socket (a path, or an
 *  abstract name: sun_path[0] == 0 and len covering the name). */
typedef struct sgrpc_net_address {
  /** The socket address (sockaddr_in, sockaddr_in6 or sockaddr_un). */
  struct sockaddr_storage addr;
  /** Its length in bytes, as connect() takes it. */
  socklen_t len;
} sgrpc_net_address;

/**
 * Parses one numeric address for a resolver: "1.2.3.4:port", "[v6]:port",
 * "1.2.3.4" or a bare IPv6 literal (port = default_port), "unix:/path",
 * "unix-abstract:name". No name lookup happens. Returns 0 or
 * SGRPC_ERR_INVALID_ARGUMENT.
 */
SGRPC_EXTERN int sgrpc_net_address_parse(const char *text, int default_port,
                                         sgrpc_net_address *out);

/** Formats a as "ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:/path" or
 *  "unix-abstract:name" into out (always terminated when cap > 0).
 *  Returns 0, or SGRPC_ERR_INVALID_ARGUMENT for an unknown family. */
SGRPC_EXTERN int sgrpc_net_address_format(const sgrpc_net_address *a, char *out, size_t cap);

/* ------------------------------------------------------------------ */
/* Resolvers                                                           */
/* ------------------------------------------------------------------ */

/** One resolution in progress, the net layer's object; it is handed to a
 *  resolver's start and ends with sgrpc_net_resolve_done or the
 *  resolver's cancel. */
typedef struct sgrpc_net_resolve sgrpc_net_resolve;

/**
 * A name resolver (service discovery, tests, or the built-in DNS one on
 * c-ares). The net layer starts at most one resolution per channel at a
 * time, from the loop's thread.
 */
typedef struct sgrpc_net_resolver {
  /**
   * Starts resolving `target` (the channel's target text, verbatim) for
   * a channel on `loop`. The outcome goes to sgrpc_net_resolve_done(r,
   * ...) exactly once, later from the loop's thread (a timer, a watched
   * descriptor) or even before start returns. *pctx is the resolver's
   * own handle for cancel. Return 0, or a negative SGRPC_ERR_* code when
   * nothing was started (the net layer then treats it as a failed
   * resolution; done must not be called). Required.
   */
  int (*start)(void *user_data, sgrpc_net_loop *loop, const char *target, sgrpc_net_resolve *r,
               void **pctx);
  /** Stops a resolution that has not called done yet (channel deleted
   *  or idle); after it returns done must not be called for it.
   *  Required. */
  void (*cancel)(void *user_data, void *ctx);
  /** Passed to start and cancel. */
  void *user_data;
} sgrpc_net_resolver;

/**
 * A resolver's answer for r: on success addrs (n >= 1, copied; NULL/0
 * with error NULL counts as a failure "no addresses") and error NULL; on
 * failure error, a text (copied) that the calls ended by it carry in
 * their UNAVAILABLE status message. r is invalid afterwards. Callable
 * from the loop's thread only, not from within other net callbacks.
 */
SGRPC_EXTERN void sgrpc_net_resolve_done(sgrpc_net_resolve *r, const sgrpc_net_address *addrs,
                                         size_t n, const char *error, int64_t now);

/** Reconnection backoff (gRPC doc/connection-backoff.md). Zero fields
 *  take the defaults shown. */
typedef struct sgrpc_net_backoff_opts {
  int64_t initial;             /**< 1 s */
  double multiplier;           /**< 1.6 */
  double jitter;               /**< 0.2; negative: none */
  int64_t max;                 /**< 120 s */
  int64_t min_connect_timeout; /**< 20 s */
} sgrpc_net_backoff_opts;

/* ------------------------------------------------------------------ */
/* Callbacks                                                           */
/* ------------------------------------------------------------------ */

/** An event of connection c that no per-call callback took (server: the
 *  calls' events, CALL_NEW first, and connection events; channel:
 *  connection events). ev is borrowed for the call. */
typedef void (*sgrpc_net_event_cb)(sgrpc_net_conn *c, const sgrpc_event *ev, void *user_data,
                                   int64_t now);

/** SIGINT/SIGTERM (sgrpc_X_catch_signals): told before the policy runs;
 *  count is 1 for the first signal (graceful), 2 or more after. */
typedef void (*sgrpc_net_signal_cb)(sgrpc_net_loop *loop, int signo, int count, void *user_data);

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/** The engine connection (for sgrpc_conn_ping and the like). Valid for
 *  the whole of any callback about the connection. */
SGRPC_EXTERN sgrpc_conn *sgrpc_net_conn_engine(const sgrpc_net_conn *c);
/** The server that accepted c, or NULL on a client connection. */
SGRPC_EXTERN sgrpc_net_server *sgrpc_net_conn_server(const sgrpc_net_conn *c);
/** The channel c belongs to, or NULL on a server connection. */
SGRPC_EXTERN sgrpc_net_channel *sgrpc_net_conn_channel(const sgrpc_net_conn *c);
/** The loop c runs on. */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_net_conn_loop(const sgrpc_net_conn *c);
/** Peer address text ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000",
 *  "unix:/path"), "" when unknown. */
SGRPC_EXTERN const char *sgrpc_net_conn_peer(const sgrpc_net_conn *c);
/** The TLS session of c, or NULL on a plain connection. Borrowed while c
 *  lives (the whole of any callback about it). */
SGRPC_EXTERN sgrpc_tls *sgrpc_net_conn_tls(const sgrpc_net_conn *c);
/**
 * The peer's certificate on a TLS connection (a server handler sees the
 * client's under mutual TLS). Pointers are borrowed from the session, as
 * sgrpc_net_conn_tls. Returns 0, SGRPC_ERR_INVALID_ARGUMENT,
 * SGRPC_ERR_INVALID_STATE (plain connection, or handshake not done) or
 * SGRPC_ERR_TLS_NO_PEER_CERT.
 */
SGRPC_EXTERN int sgrpc_net_conn_peer_cert(const sgrpc_net_conn *c, sgrpc_tls_peer *peer);

/** A nonzero id of c, unique on its loop among servers, channels and
 *  connections and never reused by it (channelz's socket id); 0 for NULL. */
SGRPC_EXTERN uint64_t sgrpc_net_conn_id(const sgrpc_net_conn *c);

/* ------------------------------------------------------------------ */
/* Servers                                                             */
/* ------------------------------------------------------------------ */

/**
 * The server half of sgrpc_net_listen_opts: what every accepted connection gets. Zero-initialise.
 */
typedef struct sgrpc_net_server_opts {
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** Every event no per-call callback took: SGRPC_EV_CALL_NEW (route on
   *  ev->u.call_new.path; take the call over with sgrpc_call_set_callback
   *  or keep state with sgrpc_call_set_user_data), later call events of
   *  calls without a callback, connection events. Required. */
  sgrpc_net_event_cb on_event;
  void *user_data; /**< passed to on_event; sgrpc_net_server_user_data returns it */
  /** After shutdown, calls still running this long are reset
   *  (RST_STREAM CANCEL: the client sees CANCELLED); a connection still
   *  open a second later is closed. 0: wait for ever. Shutdown always
   *  uses the engine's two-step GOAWAY (sgrpc_conn_shutdown): no stream
   *  above the final GOAWAY's last id ever becomes a call. */
  int64_t drain_timeout_ns;
  /** A finished connection is closed gracefully: output flushed, TLS
   *  close_notify, write side shut, input read and discarded until the
   *  peer's EOF or this long. 0: 1 s; negative: close at once (the peer
   *  may then lose the last output to a reset). */
  int64_t linger_ns;
  /** TLS: a session per accepted connection (server_name NULL); NULL for
   *  plain connections. sgrpc_tls_openssl_factory with an
   *  sgrpc_tls_openssl_ctx as tls_user_data is the ready one. */
  sgrpc_tls_factory make_tls;
  void *tls_user_data; /**< passed to make_tls */
  /** A memory budget every connection of this server counts against
   *  besides its own conn_memory_budget (sgrpc_budget_new; it replaces
   *  settings->shared_budget). NULL: none. Must outlive the server. */
  sgrpc_budget *budget;
  /** Records every accepted connection into its own file in this
   *  directory (<sgrpc/net_record.h>, docs/record-replay.md). NULL: the
   *  directory in the SGRPC_RECORD_DIR environment variable, if any; ""
   *  never records. Copied. A file that cannot be created leaves its
   *  connection unrecorded (nothing else changes). */
  const char *record_dir;
  /** Size cap of each recording file in bytes; 0: SGRPC_RECORD_MAX_BYTES
   *  from the environment, else 64 MiB. */
  uint64_t record_max_bytes;
} sgrpc_net_server_opts;

/** What sgrpc_X_listen takes. Zero-initialise. */
typedef struct sgrpc_net_listen_opts {
  /** "host:port" ("127.0.0.1:50051", "[::1]:50051", "localhost:50051",
   *  ":50051" for all addresses; port 0 picks one) or "unix:/path" (a
   *  stale socket file is replaced). Ignored when use_fd is set. */
  const char *listen;
  /** Nonzero: listen on fd, a bound socket the user hands over (the
   *  adapter calls listen() and owns it once the listen call returned 0;
   *  after a failure it is still the user's, open). fd_is_unix says
   *  whether it is a Unix domain socket. */
  int use_fd;
  int fd; /**< the socket, when use_fd is set */
  int fd_is_unix; /**< nonzero when fd is a Unix domain socket */
  /** listen() backlog; 0 for 128. */
  int backlog;
  /** Sets SO_REUSEPORT (one listener per loop and core). SO_REUSEADDR is
   *  always set on TCP listeners. */
  int reuseport;
  /** The server behind the listener. */
  sgrpc_net_server_opts server;
} sgrpc_net_listen_opts;

/** The bound TCP port, or 0 for a Unix socket. */
SGRPC_EXTERN int sgrpc_net_server_port(const sgrpc_net_server *s);
/** The user_data of the server's options. */
SGRPC_EXTERN void *sgrpc_net_server_user_data(const sgrpc_net_server *s);
/**
 * Graceful shutdown: closes the listener, sends the two-step GOAWAY on
 * every connection, lets calls finish (ended UNAVAILABLE after
 * drain_timeout_ns from now) and closes each connection when it is done,
 * gracefully (see linger_ns). Idempotent; callable from callbacks.
 */
SGRPC_EXTERN void sgrpc_net_server_shutdown(sgrpc_net_server *s, int64_t now);
/** Nonzero once sgrpc_net_server_shutdown was called (or a signal started it). */
SGRPC_EXTERN int sgrpc_net_server_is_shutting_down(const sgrpc_net_server *s);
/** Number of open connections (lingering ones included). */
SGRPC_EXTERN size_t sgrpc_net_server_conn_count(const sgrpc_net_server *s);
/** How many times the listener stopped accepting for a while because the
 *  process or system ran out of descriptors or memory (EMFILE, ENFILE,
 *  ENOBUFS, ENOMEM); existing connections go on meanwhile. The library
 *  prints nothing: read this to report it. */
SGRPC_EXTERN uint64_t sgrpc_net_server_accept_pauses(const sgrpc_net_server *s);
/** Closes listener and connections at once (open calls get their CLOSE,
 *  CANCELLED) and frees the server. Not from a callback of this server.
 *  NULL is a no-op. Servers left are freed with the loop. */
SGRPC_EXTERN void sgrpc_net_server_del(sgrpc_net_server *s);

/* ------------------------------------------------------------------ */
/* Channels (client)                                                   */
/* ------------------------------------------------------------------ */

/** Connectivity state of a channel (gRPC doc/connectivity-semantics-and-api.md). */
typedef enum sgrpc_net_channel_state {
  /** No connection and no attempt: nothing has asked for one yet, or the
   *  idle timeout dropped them. */
  SGRPC_NET_CHANNEL_IDLE = 0,
  /** Resolving the target or connecting. */
  SGRPC_NET_CHANNEL_CONNECTING = 1,
  /** At least one connection can take calls. */
  SGRPC_NET_CHANNEL_READY = 2,
  /** Resolution or every connection attempt failed; backing off. */
  SGRPC_NET_CHANNEL_TRANSIENT_FAILURE = 3,
  /** sgrpc_net_channel_close was called. */
  SGRPC_NET_CHANNEL_SHUTDOWN = 4
} sgrpc_net_channel_state;

/** The channel's state changed to `state` (told once per change, from a
 *  service pass of the loop; same re-entrancy rules as other callbacks). */
typedef void (*sgrpc_net_channel_state_cb)(sgrpc_net_channel *ch, sgrpc_net_channel_state state,
                                           void *user_data, int64_t now);

/** What sgrpc_X_channel_new takes. Zero-initialise. */
typedef struct sgrpc_net_channel_opts {
  /**
   * The target, as gRPC names them (doc/naming.md): "dns:[//dns-server/]
   * host[:port]" (what a bare "host:port" means; port 443 when left out),
   * "ipv4:addr[:port][,addr[:port]...]", "ipv6:[addr]:port[,...]" (bare
   * IPv6 literals too), "unix:path", "unix:///abs/path",
   * "unix-abstract:name". With a user resolver any non-empty text up to
   * 255 bytes. Required; a bad one fails channel creation with
   * SGRPC_ERR_INVALID_ARGUMENT.
   */
  const char *target;
  /** :authority of calls that set none; NULL: the target ("localhost"
   *  for Unix sockets). Copied. */
  const char *authority;
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** Connection-level events (READY, GOAWAY, PING_ACK, CONN_CLOSED);
   *  NULL to ignore them. */
  sgrpc_net_event_cb on_conn_event;
  void *user_data; /**< passed to on_conn_event */
  /**
   * 0 (gRPC's default, "fail fast"): a failed connection attempt ends the
   * calls queued on it UNAVAILABLE, and calls started while the channel
   * backs off after a failure end UNAVAILABLE at once.
   * 1 (wait for ready): queued calls stay queued across attempts; a call
   * whose deadline passes before a connection is made ends UNAVAILABLE.
   */
  int wait_for_ready;
  /** Reconnection backoff; zero fields take gRPC's defaults. */
  sgrpc_net_backoff_opts backoff;
  /** Closing an idle connection: as sgrpc_net_server_opts.linger_ns. */
  int64_t linger_ns;
  /** TLS: a session per connection, made before its first connect with
   *  server_name = the target's host ("" for a Unix socket); NULL for
   *  plain connections. A refusal (<0) ends the calls UNAVAILABLE. */
  sgrpc_tls_factory make_tls;
  void *tls_user_data; /**< passed to make_tls */
  /** Records every connection of the channel into its own file in this
   *  directory, as sgrpc_net_server_opts.record_dir (NULL: the
   *  SGRPC_RECORD_DIR environment variable; "": never). Copied. */
  const char *record_dir;
  /** As sgrpc_net_server_opts.record_max_bytes. */
  uint64_t record_max_bytes;
  /** Load-balancing policy: "pick_first" (NULL: the default; tries the
   *  addresses in order until one connects) or "round_robin" (one
   *  connection per address, calls spread over the ready ones).
   *  service_config->lb_policy wins when set. Anything else:
   *  SGRPC_ERR_INVALID_ARGUMENT. */
  const char *lb_policy;
  /** Service config (borrowed: must outlive the channel); the channel
   *  reads lb_policy, the rpc client the method configs
   *  (sgrpc_net_channel_service_config). NULL: none. */
  const sgrpc_service_config *service_config;
  /** A resolver of the user's (copied); NULL: the built-in one for the
   *  target's scheme (DNS through c-ares for dns: targets). */
  const sgrpc_net_resolver *resolver;
  /** dns: targets: the DNS server to ask, "ip:port" or "[v6]:port"
   *  (tests; the target's own //authority also sets it). NULL: the
   *  system's (/etc/resolv.conf, /etc/hosts first). */
  const char *dns_server;
  /** Least time between two resolutions asked for by lost connections or
   *  failed attempts. 0: 30 s (C-core's default). */
  int64_t min_resolve_interval_ns;
  /** A channel with no call for this long closes its connections and
   *  goes IDLE. 0: 30 min (C-core's default); negative: never. */
  int64_t idle_timeout_ns;
  /** Told every state change; NULL: none. Gets user_data. */
  sgrpc_net_channel_state_cb on_state_change;
} sgrpc_net_channel_opts;

/**
 * Starts a call: on the current connection, or on a new one (connecting
 * lazily) when there is none or it received GOAWAY. opts->on_event is
 * required: it receives every event of the call, the last being
 * SGRPC_EV_CLOSE, after which the net layer releases the call.
 * opts->deadline is absolute on the adapter's clock (now + timeout).
 * The handle (for sgrpc_call_send, sgrpc_call_close_send,
 * sgrpc_call_cancel; never release it) goes to *pcall when pcall is not
 * NULL. Bytes go out once connected. After a failed connect the channel
 * backs off (opts->backoff): calls started meanwhile end UNAVAILABLE at
 * once unless the channel is wait_for_ready. Returns 0,
 * SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM, the codes of
 * sgrpc_call_start, or SGRPC_ERR_GOING_AWAY after sgrpc_net_channel_close.
 */
SGRPC_EXTERN int sgrpc_net_channel_call(sgrpc_net_channel *ch, const sgrpc_call_opts *opts,
                                        int64_t now, sgrpc_call **pcall);
/** Graceful: no new calls; connections close once their calls are done.
 *  Callable from callbacks. */
SGRPC_EXTERN void sgrpc_net_channel_close(sgrpc_net_channel *ch, int64_t now);
/** The user_data of the channel's options. */
SGRPC_EXTERN void *sgrpc_net_channel_user_data(const sgrpc_net_channel *ch);
/** The parsed target of a channel. */
SGRPC_EXTERN const sgrpc_net_target *sgrpc_net_channel_target(const sgrpc_net_channel *ch);
/** Number of connections (connecting, open, or waiting to reconnect). */
SGRPC_EXTERN size_t sgrpc_net_channel_conn_count(const sgrpc_net_channel *ch);
/** Failed connection attempts since the last successful one. */
SGRPC_EXTERN int sgrpc_net_channel_failures(const sgrpc_net_channel *ch);
/**
 * The channel's connectivity state at now. try_to_connect nonzero: an
 * IDLE channel starts resolving and connecting (the answer is still
 * IDLE; watch on_state_change or ask again). NULL: SHUTDOWN.
 */
SGRPC_EXTERN sgrpc_net_channel_state sgrpc_net_channel_get_state(sgrpc_net_channel *ch,
                                                                 int try_to_connect, int64_t now);
/** "IDLE", "CONNECTING", "READY", "TRANSIENT_FAILURE", "SHUTDOWN". */
SGRPC_EXTERN const char *sgrpc_net_channel_state_name(sgrpc_net_channel_state state);
/** The service config given in the options (borrowed), or NULL. */
SGRPC_EXTERN const sgrpc_service_config *sgrpc_net_channel_service_config(
    const sgrpc_net_channel *ch);
/** The number of addresses of the latest successful resolution (0
 *  before the first). */
SGRPC_EXTERN size_t sgrpc_net_channel_address_count(const sgrpc_net_channel *ch);
/** How many resolutions have completed (successes and failures). */
SGRPC_EXTERN uint64_t sgrpc_net_channel_resolutions(const sgrpc_net_channel *ch);
/** Closes every connection now (open calls end UNAVAILABLE through their
 *  callbacks) and frees the channel. Not from a callback of it. NULL is a
 *  no-op. Channels left are freed with the loop. */
SGRPC_EXTERN void sgrpc_net_channel_del(sgrpc_net_channel *ch);

/* ------------------------------------------------------------------ */
/* Loop-wide calls                                                     */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Counters and enumeration (metrics, channelz)                        */
/* ------------------------------------------------------------------ */

/** The server's id (as sgrpc_net_conn_id; 0 for NULL). */
SGRPC_EXTERN uint64_t sgrpc_net_server_id(const sgrpc_net_server *s);
/** The channel's id (as sgrpc_net_conn_id; 0 for NULL). */
SGRPC_EXTERN uint64_t sgrpc_net_channel_id(const sgrpc_net_channel *ch);
/** The loop a server runs on (NULL for NULL). */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_net_server_loop(const sgrpc_net_server *s);
/** The loop a channel runs on (NULL for NULL). */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_net_channel_loop(const sgrpc_net_channel *ch);

/**
 * Totals over every connection the server accepted, closed and open ones
 * (the engine's sgrpc_conn_stats summed; last_activity and
 * last_call_started are the latest of them). A NULL server gives zeros;
 * st NULL is a no-op. Per connection: sgrpc_conn_get_stats and
 * sgrpc_conn_get_flow on sgrpc_net_conn_engine.
 */
SGRPC_EXTERN void sgrpc_net_server_get_stats(const sgrpc_net_server *s, sgrpc_conn_stats *st);
/** As sgrpc_net_server_get_stats, over every connection the channel made. */
SGRPC_EXTERN void sgrpc_net_channel_get_stats(const sgrpc_net_channel *ch,
                                              sgrpc_conn_stats *st);

/**
 * Walks the open connections of s: prev NULL gives the first, otherwise
 * the one after prev; NULL at the end (or when prev is not an open
 * connection of s). Do not close connections while walking.
 */
SGRPC_EXTERN sgrpc_net_conn *sgrpc_net_server_conn_next(const sgrpc_net_server *s,
                                                        const sgrpc_net_conn *prev);
/** As sgrpc_net_server_conn_next, over a channel's connections. */
SGRPC_EXTERN sgrpc_net_conn *sgrpc_net_channel_conn_next(const sgrpc_net_channel *ch,
                                                         const sgrpc_net_conn *prev);
/** Walks the servers of a loop (prev NULL: the first; NULL at the end). */
SGRPC_EXTERN sgrpc_net_server *sgrpc_net_loop_server_next(const sgrpc_net_loop *loop,
                                                          const sgrpc_net_server *prev);
/** Walks the channels of a loop (prev NULL: the first; NULL at the end). */
SGRPC_EXTERN sgrpc_net_channel *sgrpc_net_loop_channel_next(const sgrpc_net_loop *loop,
                                                            const sgrpc_net_channel *prev);
/** The open connection with that id on loop, or NULL. */
SGRPC_EXTERN sgrpc_net_conn *sgrpc_net_loop_conn_find(const sgrpc_net_loop *loop, uint64_t id);

/** A time on the adapters' clock (CLOCK_MONOTONIC ns, what every
 *  callback's now is) as ns since the Unix epoch, by the wall clock's
 *  current offset; 0 for t <= 0 ("never"). For reports such as channelz's
 *  timestamps. */
SGRPC_EXTERN int64_t sgrpc_net_to_unix_ns(int64_t t);

/** A user timer's callback. It runs inside the loop like any sgrpc
 *  callback (the same re-entrancy rules). */
typedef void (*sgrpc_net_timer_cb)(sgrpc_net_loop *loop, void *user_data, int64_t now);

/**
 * Calls cb once at absolute time `when` (the adapter's clock; a time
 * already past fires on the next turn). The handle, stored in *ptimer
 * when ptimer is not NULL, is valid until cb has started or the timer is
 * cancelled. A pending timer counts as work: it keeps sgrpc_X_run going.
 * Returns 0, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_net_timer_start(sgrpc_net_loop *loop, int64_t when, sgrpc_net_timer_cb cb,
                                       void *user_data, sgrpc_net_timer **ptimer);
/** Cancels a timer that has not started yet. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_net_timer_cancel(sgrpc_net_timer *timer);

/** Graceful exit of everything on the loop: every server shuts down,
 *  every channel closes (what the first SIGINT/SIGTERM does). */
SGRPC_EXTERN void sgrpc_net_loop_graceful(sgrpc_net_loop *loop, int64_t now);
/** Immediate exit: every listener and connection closes now (open calls
 *  end through their callbacks). Not from a callback. */
SGRPC_EXTERN void sgrpc_net_loop_abort(sgrpc_net_loop *loop);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_NET_H */
