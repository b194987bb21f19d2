/*
 * sgrpc adapter core: the loop-agnostic layer between the engine
 * (<sgrpc/sgrpc.h>) and an event loop. It holds what every adapter would
 * otherwise repeat:
 *
 *  - a connection object binding one sgrpc_conn to four transport entry
 *    points (bytes arrived, transport writable, transport closed, timer
 *    fired), with partial-input and short-write handling;
 *  - event dispatch: server events to one callback, client call events to
 *    per-call callbacks, call release after SGRPC_EV_CLOSE;
 *  - servers: accept bookkeeping, graceful shutdown and drain;
 *  - channels: target parsing, lazy connect, calls queued while
 *    connecting, UNAVAILABLE when no connection came before a deadline,
 *    a new connection after GOAWAY, reconnection with gRPC's connection
 *    backoff;
 *  - SIGINT/SIGTERM policy (first: graceful, second: immediate);
 *  - a byte-filter seam (TLS) between transport bytes and the engine.
 *
 * The core makes no system call and reads no clock by itself: every
 * effect goes through the sgrpc_ac_ops an adapter supplies, and entry
 * points take `now` (monotonic ns, the clock the adapter gives the
 * engine). See docs/custom-transport.md for a walk-through.
 *
 * Threads: a hub and everything on it belong to one thread.
 *
 * Re-entrancy: user callbacks (events, per-call callbacks) may call the
 * engine's call API, sgrpc_ac_channel_call, sgrpc_ac_channel_close and
 * sgrpc_ac_server_shutdown. They must not call any *_del function or an
 * adapter entry point. Work queued from callbacks is written out when the
 * outermost entry point returns; work queued elsewhere (a user timer of
 * the host loop calling sgrpc_call_send) is written by the next
 * sgrpc_ac_hub_service, which adapters run once per loop iteration.
 */
#ifndef SGRPC_ADAPTER_H
#define SGRPC_ADAPTER_H

#include <sgrpc/sgrpc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_ac_hub sgrpc_ac_hub;
typedef struct sgrpc_ac_conn sgrpc_ac_conn;
typedef struct sgrpc_ac_server sgrpc_ac_server;
typedef struct sgrpc_ac_channel sgrpc_ac_channel;

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

enum { SGRPC_AC_TARGET_TCP = 1, SGRPC_AC_TARGET_UNIX = 2 };

/** A parsed address string. */
typedef struct sgrpc_ac_target {
  int kind; /* SGRPC_AC_TARGET_TCP or SGRPC_AC_TARGET_UNIX */
  /** TCP: host without brackets ("127.0.0.1", "::1", "localhost"); ""
   *  for the wildcard address (servers only). */
  char host[256];
  /** TCP: the port as text and as a number. */
  char port[8];
  int port_num;
  /** UNIX: the socket path. */
  char path[108];
} sgrpc_ac_target;

/**
 * Parses "host:port", "[v6]:port", ":port" (passive only: all addresses)
 * or "unix:/path". Returns 0 or SGRPC_ERR_INVALID_ARGUMENT. No name
 * resolution happens here: the adapter resolves host (getaddrinfo,
 * uv_getaddrinfo, ...).
 */
SGRPC_EXTERN int sgrpc_ac_target_parse(const char *s, int passive, sgrpc_ac_target *t);

/* ------------------------------------------------------------------ */
/* Connection backoff (gRPC doc/connection-backoff.md)                 */
/* ------------------------------------------------------------------ */

/** Zero fields take the defaults shown. */
typedef struct sgrpc_ac_backoff_opts {
  int64_t initial;             /* 1 s */
  double multiplier;           /* 1.6 */
  double jitter;               /* 0.2 */
  int64_t max;                 /* 120 s */
  int64_t min_connect_timeout; /* 20 s */
} sgrpc_ac_backoff_opts;

typedef struct sgrpc_ac_backoff {
  sgrpc_ac_backoff_opts opts;
  int64_t cur;  /* backoff of the attempt in progress */
  int attempts; /* failed attempts since the last success */
  uint64_t rng;
} sgrpc_ac_backoff;

/** Fills defaults into opts (NULL: all defaults) and resets. seed feeds
 *  the jitter's generator. */
SGRPC_EXTERN void sgrpc_ac_backoff_init(sgrpc_ac_backoff *b, const sgrpc_ac_backoff_opts *opts,
                                        uint64_t seed);
/** After a successful connection: the next failure starts from initial. */
SGRPC_EXTERN void sgrpc_ac_backoff_reset(sgrpc_ac_backoff *b);
/** How long the attempt starting now may take: max(min_connect_timeout,
 *  current backoff). */
SGRPC_EXTERN int64_t sgrpc_ac_backoff_connect_timeout(const sgrpc_ac_backoff *b);
/**
 * An attempt that started at attempt_start failed: returns the time of the
 * next attempt (attempt_start + current backoff, jittered by +-jitter from
 * the second failure on, as gRPC does) and grows the backoff by multiplier
 * up to max.
 */
SGRPC_EXTERN int64_t sgrpc_ac_backoff_fail(sgrpc_ac_backoff *b, int64_t attempt_start);

/* ------------------------------------------------------------------ */
/* Byte filter (TLS seam)                                              */
/* ------------------------------------------------------------------ */

/**
 * A filter sits between transport bytes and the engine (TLS with memory
 * BIOs is the intended user; <sgrpc/tls.h> sessions map onto it: in =
 * sgrpc_tls_feed + sgrpc_tls_plain_peek/consume, out = sgrpc_tls_write +
 * sgrpc_tls_out_copy). Both functions write up to cap output bytes into
 * out and return the count, or a negative value when the stream is broken
 * (the connection closes after sending what the filter still has, e.g. an
 * alert). The core calls them again with len 0 to collect more output
 * until they return 0.
 *
 *  in:  transport bytes -> bytes for the engine. Must take all of data
 *       (buffering inside as needed).
 *  out: engine bytes -> transport bytes (a handshake may produce output
 *       with no input). May take only part of data: *consumed says how
 *       much; the rest is offered again later.
 *  del: optional; called once when the connection is freed.
 */
typedef struct sgrpc_ac_filter {
  void *ctx;
  sgrpc_ssize (*in)(void *ctx, const uint8_t *data, size_t len, uint8_t *out, size_t cap);
  sgrpc_ssize (*out)(void *ctx, const uint8_t *data, size_t len, size_t *consumed, uint8_t *out,
                 size_t cap);
  void (*del)(void *ctx);
} sgrpc_ac_filter;

/**
 * Makes the filter of a new connection (a TLS session, typically). Called
 * before any byte flows: at accept for servers, before the first connect
 * attempt for channels (sgrpc_ac_conn_channel gives the target for SNI).
 * Fill *f and return 1 to install it, 0 for a plain connection, or a
 * negative value to refuse the connection (its calls end UNAVAILABLE).
 */
typedef int (*sgrpc_ac_filter_factory)(void *user_data, sgrpc_ac_conn *c, sgrpc_ac_filter *f);

/* ------------------------------------------------------------------ */
/* What the adapter supplies                                           */
/* ------------------------------------------------------------------ */

/**
 * Adapter operations. `hub_ud` is the pointer given to sgrpc_ac_hub_new;
 * `tx` is the adapter's transport object attached to a connection with
 * sgrpc_ac_conn_set_transport (or given to sgrpc_ac_server_accept).
 *
 * Output goes out through exactly one of two styles:
 *  - write (zero-copy, epoll/kqueue): write what fits now from the
 *    engine's borrowed bytes; return the count taken (0..len), or -1 when
 *    the transport failed. Taking less than len means "blocked": the
 *    adapter watches for writability and calls sgrpc_ac_conn_writable.
 *  - write_owned (libuv): the adapter takes a buffer it owns, calls
 *    fill(fill_ctx, buf, cap) to have output copied into it, submits the
 *    bytes and frees the buffer when the write completes (then calls
 *    sgrpc_ac_conn_writable). Return the count submitted, 0 when it will
 *    not take more now (too much in flight; fill not called) or fill
 *    returned 0, -1 on failure.
 */
typedef struct sgrpc_ac_ops {
  /** Monotonic ns, for user-facing calls that take no `now`. Required. */
  int64_t (*now)(void *hub_ud);
  /**
   * Starts connecting c to target (resolve, non-blocking connect). Report
   * the outcome with sgrpc_ac_conn_connected or sgrpc_ac_conn_closed
   * (which may happen before connect returns). Return 0, or a negative
   * value when the attempt failed at once (no report then). Required for
   * channels.
   */
  int (*connect)(void *hub_ud, sgrpc_ac_conn *c, const sgrpc_ac_target *target);
  sgrpc_ssize (*write)(void *tx, const uint8_t *data, size_t len);
  sgrpc_ssize (*write_owned)(void *tx, sgrpc_ssize (*fill)(void *fill_ctx, uint8_t *buf, size_t cap),
                         void *fill_ctx);
  /** Closes and frees the transport. Called once per transport; the
   *  adapter must not call entry points for it afterwards. Required. */
  void (*close)(void *tx);
  /** Arms the hub's single timer at absolute `when` (SGRPC_NEVER:
   *  disarm); when it fires call sgrpc_ac_hub_timer. Required. */
  void (*timer_arm)(void *hub_ud, int64_t when);
  /** Closes a server's listener (graceful shutdown, or server_del).
   *  Optional. */
  void (*listener_close)(void *hub_ud, sgrpc_ac_server *s, void *listener);
} sgrpc_ac_ops;

/* ------------------------------------------------------------------ */
/* Hub: everything on one loop                                         */
/* ------------------------------------------------------------------ */

/** Creates a hub. ops is copied. Returns 0, SGRPC_ERR_INVALID_ARGUMENT
 *  or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_ac_hub_new(sgrpc_ac_hub **phub, const sgrpc_ac_ops *ops, void *hub_ud);
/** Closes every connection (open calls get their CLOSE), frees every
 *  server and channel, then the hub. Not from a callback. */
SGRPC_EXTERN void sgrpc_ac_hub_del(sgrpc_ac_hub *hub);
SGRPC_EXTERN void *sgrpc_ac_hub_user(const sgrpc_ac_hub *hub);
/** The hub's timer fired: runs engine timers, connect timeouts, backoff
 *  retries and drain deadlines due at now. */
SGRPC_EXTERN void sgrpc_ac_hub_timer(sgrpc_ac_hub *hub, int64_t now);
/** Dispatches pending events and writes pending output of every
 *  connection, closes finished ones and re-arms the timer. Run it once
 *  per loop iteration (before blocking) and after using the engine API
 *  outside callbacks. */
SGRPC_EXTERN void sgrpc_ac_hub_service(sgrpc_ac_hub *hub, int64_t now);
/** Earliest time the hub's timer must fire, or SGRPC_NEVER. */
SGRPC_EXTERN int64_t sgrpc_ac_hub_next_expiry(const sgrpc_ac_hub *hub);
/** Nonzero while anything could still produce work: a connection, a
 *  listening server, a channel waiting to reconnect. */
SGRPC_EXTERN int sgrpc_ac_hub_has_work(const sgrpc_ac_hub *hub);
/** Graceful exit: every server shuts down, every channel closes. */
SGRPC_EXTERN void sgrpc_ac_hub_graceful(sgrpc_ac_hub *hub, int64_t now);
/** Immediate exit: every listener and connection closes now (open calls
 *  end through their callbacks). Not from a callback. */
SGRPC_EXTERN void sgrpc_ac_hub_abort(sgrpc_ac_hub *hub);
/**
 * SIGINT/SIGTERM policy: counts signals; the first runs
 * sgrpc_ac_hub_graceful, the second sgrpc_ac_hub_abort. Returns the
 * count (2 or more: the adapter should stop its loop).
 */
SGRPC_EXTERN int sgrpc_ac_hub_signal(sgrpc_ac_hub *hub, int signo, int64_t now);
/**
 * Test and debugging knob read by adapters: at most n bytes per transport
 * read and per write, a write cut short by it being treated as a full
 * socket (the adapter waits for writability), so that every byte boundary
 * sees a would-block. 0: no limit.
 */
SGRPC_EXTERN void sgrpc_ac_hub_set_io_limit(sgrpc_ac_hub *hub, size_t n);
SGRPC_EXTERN size_t sgrpc_ac_hub_io_limit(const sgrpc_ac_hub *hub);

/* ------------------------------------------------------------------ */
/* Connections: entry points for the adapter                           */
/* ------------------------------------------------------------------ */

/** Every event of a connection (server: all of them; channel:
 *  connection events only). ev is borrowed for the call. */
typedef void (*sgrpc_ac_event_cb)(sgrpc_ac_conn *c, const sgrpc_event *ev, void *user_data);

/** Bytes arrived. Consumes all of them (the engine is fed in pieces while
 *  its event queue drains), dispatches, writes. */
SGRPC_EXTERN void sgrpc_ac_conn_read(sgrpc_ac_conn *c, const uint8_t *data, size_t len,
                                     int64_t now);
/** The transport can take output again. */
SGRPC_EXTERN void sgrpc_ac_conn_writable(sgrpc_ac_conn *c, int64_t now);
/** Client: the transport connected. */
SGRPC_EXTERN void sgrpc_ac_conn_connected(sgrpc_ac_conn *c, int64_t now);
/** The transport ended (EOF, error, connect failure). ops->close follows
 *  (at once or after the drain of a failed connect). */
SGRPC_EXTERN void sgrpc_ac_conn_closed(sgrpc_ac_conn *c, int64_t now);

/** Attaches the adapter's transport object (client: inside ops->connect). */
SGRPC_EXTERN void sgrpc_ac_conn_set_transport(sgrpc_ac_conn *c, void *tx);
/** Installs a byte filter (before any byte flows). The connection calls
 *  filter->del when freed. Returns 0 or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_ac_conn_set_filter(sgrpc_ac_conn *c, const sgrpc_ac_filter *filter);
/** The connection's installed filter, or NULL for a plain connection
 *  (lets a filter library find its own state, e.g. the TLS session for
 *  peer certificates: <sgrpc/adapter_tls.h>). */
SGRPC_EXTERN const sgrpc_ac_filter *sgrpc_ac_conn_filter(const sgrpc_ac_conn *c);

SGRPC_EXTERN sgrpc_conn *sgrpc_ac_conn_engine(const sgrpc_ac_conn *c);
SGRPC_EXTERN void *sgrpc_ac_conn_transport(const sgrpc_ac_conn *c);
SGRPC_EXTERN sgrpc_ac_server *sgrpc_ac_conn_server(const sgrpc_ac_conn *c);
SGRPC_EXTERN sgrpc_ac_channel *sgrpc_ac_conn_channel(const sgrpc_ac_conn *c);
SGRPC_EXTERN sgrpc_ac_hub *sgrpc_ac_conn_hub(const sgrpc_ac_conn *c);
/** Peer address text ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000",
 *  "unix:/path"), "" when unknown. */
SGRPC_EXTERN const char *sgrpc_ac_conn_peer(const sgrpc_ac_conn *c);

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

typedef struct sgrpc_ac_server_opts {
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** Every event of every connection. Required. */
  sgrpc_ac_event_cb on_event;
  void *user_data;
  /** After shutdown, calls still running this long are cancelled.
   *  0: wait for ever. */
  int64_t drain_timeout_ns;
  /** 0: the core releases each call after its SGRPC_EV_CLOSE was
   *  delivered. 1: on_event owns call handles (for example when it hands
   *  events to sgrpc_router_dispatch, which releases them). */
  int user_releases_calls;
  /** Optional byte filter per accepted connection (TLS). */
  sgrpc_ac_filter_factory make_filter;
  void *filter_user_data;
  /** 0: shutdown uses the engine's two-step graceful GOAWAY (GOAWAY with
   *  the maximum stream id and a PING, then the final GOAWAY);
   *  1: one GOAWAY (NO_ERROR) with the last stream id processed. */
  int single_goaway;
} sgrpc_ac_server_opts;

SGRPC_EXTERN int sgrpc_ac_server_new(sgrpc_ac_server **pserver, sgrpc_ac_hub *hub,
                                     const sgrpc_ac_server_opts *opts);
/** Adapter: records its listener (given back to ops->listener_close)
 *  and the bound TCP port (0 for Unix sockets). */
SGRPC_EXTERN void sgrpc_ac_server_set_listener(sgrpc_ac_server *s, void *listener, int port);
SGRPC_EXTERN void *sgrpc_ac_server_listener(const sgrpc_ac_server *s);
SGRPC_EXTERN int sgrpc_ac_server_port(const sgrpc_ac_server *s);
/** The user_data of the server's options. */
SGRPC_EXTERN void *sgrpc_ac_server_user_data(const sgrpc_ac_server *s);
/**
 * Adapter: a transport was accepted. Creates its engine connection. peer
 * may be NULL. Returns 0 and sets *pc, SGRPC_ERR_INVALID_STATE when the
 * server is shutting down (close the transport yourself), or an engine
 * error.
 */
SGRPC_EXTERN int sgrpc_ac_server_accept(sgrpc_ac_server *s, void *tx, const char *peer,
                                        int64_t now, sgrpc_ac_conn **pc);
/**
 * Graceful shutdown: closes the listener, sends the engine's graceful
 * GOAWAY on every connection, lets calls finish (cancelled after
 * drain_timeout_ns) and closes each connection when it is done.
 * Idempotent; callable from callbacks.
 */
SGRPC_EXTERN void sgrpc_ac_server_shutdown(sgrpc_ac_server *s);
SGRPC_EXTERN int sgrpc_ac_server_is_shutting_down(const sgrpc_ac_server *s);
SGRPC_EXTERN size_t sgrpc_ac_server_conn_count(const sgrpc_ac_server *s);
/** Closes listener and connections at once and frees the server. Not
 *  from a callback of this server. */
SGRPC_EXTERN void sgrpc_ac_server_del(sgrpc_ac_server *s);

/* ------------------------------------------------------------------ */
/* Channel (client)                                                    */
/* ------------------------------------------------------------------ */

typedef struct sgrpc_ac_channel_opts {
  /** "host:port", "[v6]:port" or "unix:/path". Required. */
  const char *target;
  /** :authority of calls that set none; NULL: the target ("localhost"
   *  for Unix sockets). Copied. */
  const char *authority;
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** Connection-level events (READY, GOAWAY, PING_ACK, CONN_CLOSED). */
  sgrpc_ac_event_cb on_conn_event;
  void *user_data;
  /**
   * 0 (gRPC's default, "fail fast"): a failed connection attempt ends the
   * calls queued on it UNAVAILABLE, and calls started while the channel
   * backs off after a failure end UNAVAILABLE at once.
   * 1 (wait for ready): queued calls stay queued across attempts; a call
   * whose deadline passes before a connection is made ends UNAVAILABLE.
   */
  int wait_for_ready;
  /** Reconnection backoff; zero fields take gRPC's defaults. */
  sgrpc_ac_backoff_opts backoff;
  /** Optional byte filter per connection (TLS). */
  sgrpc_ac_filter_factory make_filter;
  void *filter_user_data;
} sgrpc_ac_channel_opts;

/** The user_data of the channel's options. */
SGRPC_EXTERN void *sgrpc_ac_channel_user_data(const sgrpc_ac_channel *ch);
/** The parsed target of a channel. */
SGRPC_EXTERN const sgrpc_ac_target *sgrpc_ac_channel_target(const sgrpc_ac_channel *ch);

/* ------------------------------------------------------------------ */
/* Listening options shared by the adapters                            */
/* ------------------------------------------------------------------ */

/** What sgrpc_uv_listen / sgrpc_kq_listen take. Zero-initialise. */
typedef struct sgrpc_ac_listen_opts {
  /** "host:port" ("127.0.0.1:50051", "[::1]:50051", "localhost:50051",
   *  ":50051" for all addresses; port 0 picks one) or "unix:/path" (a
   *  stale socket file is replaced). Ignored when use_fd is set. */
  const char *listen;
  /** Nonzero: listen on fd, a socket the user hands over (bound; the
   *  adapter calls listen() and owns it once the listen call returned 0;
   *  after a failure it is still the user's, open). fd_is_unix says
   *  whether it is a Unix domain socket. */
  int use_fd;
  int fd;
  int fd_is_unix;
  /** listen() backlog; 0 for 128. */
  int backlog;
  /** Sets SO_REUSEPORT (one listener per loop and core). SO_REUSEADDR is
   *  always set on TCP listeners. */
  int reuseport;
  /** The server behind the listener. */
  sgrpc_ac_server_opts server;
} sgrpc_ac_listen_opts;

/** Per-call callback: every event of the call; the last is
 *  SGRPC_EV_CLOSE, after which the core releases the call. user_data
 *  (also in ev->call_user_data) is sgrpc_call_opts.user_data. */
typedef void (*sgrpc_ac_call_cb)(const sgrpc_event *ev, void *user_data);

/** Creates a channel; nothing connects until the first call. Returns 0,
 *  SGRPC_ERR_INVALID_ARGUMENT (bad target) or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_ac_channel_new(sgrpc_ac_channel **pch, sgrpc_ac_hub *hub,
                                      const sgrpc_ac_channel_opts *opts);
/**
 * Starts a call: on the current connection, or on a new one (connecting
 * lazily) when there is none or it received GOAWAY. The handle (for
 * sgrpc_call_send, sgrpc_call_close_send, sgrpc_call_cancel; never
 * release it, never change its user_data) goes to *pcall. Bytes go out
 * once connected. Returns 0, the codes of sgrpc_call_start, or
 * SGRPC_ERR_GOING_AWAY after sgrpc_ac_channel_close.
 */
SGRPC_EXTERN int sgrpc_ac_channel_call(sgrpc_ac_channel *ch, const sgrpc_call_opts *opts,
                                       sgrpc_ac_call_cb cb, sgrpc_call **pcall);
/** Graceful: no new calls; connections close once their calls are done. */
SGRPC_EXTERN void sgrpc_ac_channel_close(sgrpc_ac_channel *ch);
/** Number of connections (connecting, open, or waiting to reconnect). */
SGRPC_EXTERN size_t sgrpc_ac_channel_conn_count(const sgrpc_ac_channel *ch);
/** Failed connection attempts since the last successful one. */
SGRPC_EXTERN int sgrpc_ac_channel_failures(const sgrpc_ac_channel *ch);
/** Closes every connection now (open calls end UNAVAILABLE through their
 *  callbacks) and frees the channel. Not from a callback of it. */
SGRPC_EXTERN void sgrpc_ac_channel_del(sgrpc_ac_channel *ch);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_ADAPTER_H */
