/*
 * sgrpc epoll adapter: binds the sans-IO engine (<sgrpc/sgrpc.h>) to
 * Linux sockets, epoll, timerfd and signalfd. Connection handling,
 * servers and channels come from the adapter core (<sgrpc/adapter.h>);
 * a sgrpc_epoll_conn is the core's sgrpc_ac_conn.
 *
 * The adapter is thin: it reads bytes into the engine, pulls the events
 * the engine produces and hands each one to a callback, and writes the
 * engine's output. Everything gRPC (calls, metadata, status, deadlines)
 * is done by the user through the engine's call API (sgrpc_call_send,
 * sgrpc_call_send_status, ...) on the call handles found in the events.
 *
 * Threads: a loop and everything created on it belong to one thread.
 *
 * Call ownership: calls seen through this adapter (server calls from
 * SGRPC_EV_CALL_NEW, client calls from sgrpc_epoll_channel_call) are
 * released by the adapter right after the callback for their
 * SGRPC_EV_CLOSE returns. Never sgrpc_call_release them yourself; to end a
 * call early use sgrpc_call_cancel (its CLOSE follows).
 *
 * Engine calls made from inside an adapter callback take effect when the
 * callback returns. Engine calls made elsewhere (for example from code
 * that embeds the loop in its own) are written out on the loop's next
 * turn: call sgrpc_epoll_loop_ready() afterwards.
 */
#ifndef SGRPC_EPOLL_H
#define SGRPC_EPOLL_H

#include <sgrpc/adapter.h>
#include <sgrpc/sgrpc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_epoll_loop sgrpc_epoll_loop;
typedef struct sgrpc_epoll_server sgrpc_epoll_server;
typedef struct sgrpc_epoll_channel sgrpc_epoll_channel;
typedef struct sgrpc_epoll_conn sgrpc_epoll_conn;
typedef struct sgrpc_epoll_timer sgrpc_epoll_timer;

/** CLOCK_MONOTONIC in nanoseconds: the clock the adapter gives the engine
 *  as `now`. Use it to build call deadlines (now + timeout). */
SGRPC_EXTERN int64_t sgrpc_epoll_now(void);

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

/** Creates a loop (an epoll set with one timerfd). Returns 0 and sets
 *  *ploop, SGRPC_ERR_NOMEM, or SGRPC_ERR_INVALID_STATE when a system call
 *  fails (errno is left set). */
SGRPC_EXTERN int sgrpc_epoll_loop_new(sgrpc_epoll_loop **ploop);

/**
 * Frees the loop and everything still on it (servers, channels, timers,
 * connections). Open calls end first: their callbacks get SGRPC_EV_CLOSE
 * (server: CANCELLED, client: UNAVAILABLE). Must not be called from a
 * callback of this loop. NULL is a no-op.
 */
SGRPC_EXTERN void sgrpc_epoll_loop_del(sgrpc_epoll_loop *loop);

/**
 * Runs until sgrpc_epoll_loop_stop is called or nothing is left that
 * could produce work (no listening or draining server, no connection, no
 * timer). Returns 0, or a negative code when epoll itself fails.
 */
SGRPC_EXTERN int sgrpc_epoll_loop_run(sgrpc_epoll_loop *loop);

/**
 * One turn: writes pending output, waits up to timeout_ms (-1: forever, 0:
 * do not block) for readiness, handles what is ready and writes again.
 * Returns 1 while the loop has work left, 0 when run() would return, or a
 * negative code.
 */
SGRPC_EXTERN int sgrpc_epoll_loop_run_once(sgrpc_epoll_loop *loop, int timeout_ms);

/** Makes run() return after the current turn. Callable from callbacks. */
SGRPC_EXTERN void sgrpc_epoll_loop_stop(sgrpc_epoll_loop *loop);

/**
 * For embedding in another loop: a file descriptor that becomes readable
 * when the loop has work (it is the epoll fd). Watch it for reading and
 * call sgrpc_epoll_loop_ready() when it is; call ready() also after using
 * the engine API outside this adapter's callbacks.
 */
SGRPC_EXTERN int sgrpc_epoll_loop_get_fd(const sgrpc_epoll_loop *loop);

/** Same as sgrpc_epoll_loop_run_once(loop, 0). */
SGRPC_EXTERN int sgrpc_epoll_loop_ready(sgrpc_epoll_loop *loop);

/**
 * SIGINT/SIGTERM handling through a signalfd (the signals are blocked in
 * the calling thread, so call this before creating other threads). The
 * first signal shuts every server on the loop down gracefully and closes
 * every channel gracefully; the second closes every connection at once
 * (open calls get their CLOSE) and stops the loop. on_signal, when not
 * NULL, is told each signal (count is 1 for the first) before that.
 * The signalfd does not keep run() going by itself.
 */
typedef void (*sgrpc_epoll_signal_cb)(sgrpc_epoll_loop *loop, int signo, int count,
                                      void *user_data);
SGRPC_EXTERN int sgrpc_epoll_loop_catch_signals(sgrpc_epoll_loop *loop,
                                                sgrpc_epoll_signal_cb on_signal,
                                                void *user_data);

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

typedef void (*sgrpc_epoll_timer_cb)(sgrpc_epoll_loop *loop, void *user_data);

/**
 * Calls cb once, delay_ns from now (0: on the next turn). The handle is
 * valid until cb has started or sgrpc_epoll_timer_cancel; ptimer may be
 * NULL. Returns 0 or SGRPC_ERR_NOMEM / SGRPC_ERR_INVALID_ARGUMENT.
 */
SGRPC_EXTERN int sgrpc_epoll_timer_start(sgrpc_epoll_loop *loop, int64_t delay_ns,
                                         sgrpc_epoll_timer_cb cb, void *user_data,
                                         sgrpc_epoll_timer **ptimer);
/** Cancels a timer that has not fired yet. */
SGRPC_EXTERN void sgrpc_epoll_timer_cancel(sgrpc_epoll_timer *timer);

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/**
 * Receives every event of a connection. ev and its data are borrowed for
 * the duration of the call. For client calls ev->call_user_data is the
 * user_data given in the call's sgrpc_call_opts.
 */
typedef void (*sgrpc_epoll_event_cb)(sgrpc_epoll_conn *conn, const sgrpc_event *ev,
                                     void *user_data);

/** The engine connection (for sgrpc_conn_ping and the like). Valid until
 *  the connection's last event has been delivered. */
SGRPC_EXTERN sgrpc_conn *sgrpc_epoll_conn_engine(const sgrpc_epoll_conn *conn);
/** The server that accepted the connection, or NULL on a client. */
SGRPC_EXTERN sgrpc_epoll_server *sgrpc_epoll_conn_server(const sgrpc_epoll_conn *conn);
/** The loop the connection runs on. */
SGRPC_EXTERN sgrpc_epoll_loop *sgrpc_epoll_conn_loop(const sgrpc_epoll_conn *conn);

/** The adapter core's objects under this adapter (<sgrpc/adapter.h>), for
 *  code written against the core: channels made with
 *  sgrpc_ac_channel_new on the loop's hub connect through this loop. */
SGRPC_EXTERN sgrpc_ac_hub *sgrpc_epoll_loop_hub(const sgrpc_epoll_loop *loop);
SGRPC_EXTERN sgrpc_ac_server *sgrpc_epoll_server_core(const sgrpc_epoll_server *server);
SGRPC_EXTERN sgrpc_ac_channel *sgrpc_epoll_channel_core(const sgrpc_epoll_channel *channel);

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

typedef struct sgrpc_epoll_server_opts {
  /** "host:port" ("127.0.0.1:50051", "[::1]:50051", "localhost:50051",
   *  ":50051" for all addresses) or "unix:/path/to/socket" (a stale
   *  socket file at the path is replaced). Required. */
  const char *listen;
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** listen() backlog; 0 for 128. */
  int backlog;
  /** Every event of every connection: SGRPC_EV_CALL_NEW (route on
   *  ev->u.call_new.path; set per-call state with sgrpc_call_set_user_data),
   *  the call's later events, and connection events (call NULL).
   *  Required. */
  sgrpc_epoll_event_cb on_event;
  void *user_data;
  /** After sgrpc_epoll_server_shutdown, connections still busy this long
   *  are closed (their calls end CANCELLED). 0: wait for ever. */
  int64_t drain_timeout_ns;
  /** Optional byte filter per accepted connection, e.g. TLS:
   *  sgrpc_ac_tls_openssl_make_filter with its sgrpc_ac_tls_openssl as
   *  filter_user_data (<sgrpc/adapter_tls_openssl.h>). In handlers the
   *  conn is the core's sgrpc_ac_conn: sgrpc_ac_conn_peer_cert((const
   *  sgrpc_ac_conn *)conn, &peer) gives the client's certificate. */
  sgrpc_ac_filter_factory make_filter;
  void *filter_user_data;
} sgrpc_epoll_server_opts;

/**
 * Binds and listens (SO_REUSEADDR; accepted TCP sockets get TCP_NODELAY).
 * Returns 0 and sets *pserver, or SGRPC_ERR_INVALID_ARGUMENT (bad
 * address), SGRPC_ERR_NOMEM, or SGRPC_ERR_INVALID_STATE when the socket
 * calls fail; errno is left set by the failing call (EADDRINUSE, ...).
 */
SGRPC_EXTERN int sgrpc_epoll_server_new(sgrpc_epoll_server **pserver, sgrpc_epoll_loop *loop,
                                        const sgrpc_epoll_server_opts *opts);

/**
 * The listen call the libuv and kqueue adapters have (sgrpc_uv_listen,
 * sgrpc_kq_listen), for code written against the adapter core: listens
 * on o->listen ("host:port", names resolved with a blocking getaddrinfo,
 * or "unix:/path") or adopts o->fd, a bound socket the user hands over
 * (use_fd; the adapter calls listen() and owns it from then on, and
 * leaves it open when this fails). SO_REUSEADDR on TCP listeners,
 * SO_REUSEPORT when o->reuseport; accepted TCP sockets get TCP_NODELAY.
 * The server is the core's (sgrpc_ac_server_*, o->server's callbacks
 * with the core's sgrpc_ac_conn); it is freed by sgrpc_ac_server_del or
 * with the loop. Returns 0 and sets *pserver, SGRPC_ERR_INVALID_ARGUMENT
 * (bad address, unknown name), SGRPC_ERR_NOMEM, or
 * SGRPC_ERR_INVALID_STATE when a socket call fails (errno left set).
 */
SGRPC_EXTERN int sgrpc_epoll_listen(sgrpc_epoll_loop *loop, const sgrpc_ac_listen_opts *o,
                                    sgrpc_ac_server **pserver);

/** The bound TCP port, or 0 for a Unix socket. */
SGRPC_EXTERN int sgrpc_epoll_server_port(const sgrpc_epoll_server *server);

/**
 * Graceful shutdown: stops accepting, sends GOAWAY (NO_ERROR) on every
 * connection, lets the calls in flight finish and closes each connection
 * once it is idle. Idempotent; callable from callbacks.
 */
SGRPC_EXTERN void sgrpc_epoll_server_shutdown(sgrpc_epoll_server *server);

/** Number of open connections. */
SGRPC_EXTERN size_t sgrpc_epoll_server_conn_count(const sgrpc_epoll_server *server);

/**
 * Closes the listener and every connection at once (open calls get their
 * CLOSE, CANCELLED) and frees the server. Must not be called from a
 * callback of this server. NULL is a no-op.
 */
SGRPC_EXTERN void sgrpc_epoll_server_del(sgrpc_epoll_server *server);

/* ------------------------------------------------------------------ */
/* Client channel                                                      */
/* ------------------------------------------------------------------ */

typedef struct sgrpc_epoll_channel_opts {
  /** "host:port" or "unix:/path". Required. */
  const char *target;
  /** :authority of calls that set none; NULL: the target ("localhost"
   *  for Unix sockets). Must outlive the channel. */
  const char *authority;
  /** Engine settings of each connection; NULL for defaults. Copied. */
  const sgrpc_settings *settings;
  /** Connection-level events (GOAWAY, PING_ACK); NULL to ignore. */
  sgrpc_epoll_event_cb on_conn_event;
  void *user_data;
  /** Optional byte filter per connection, e.g. TLS (see the server's). */
  sgrpc_ac_filter_factory make_filter;
  void *filter_user_data;
  /** 0 (gRPC's default, fail fast): see sgrpc_epoll_channel_call. 1 (wait
   *  for ready): calls stay queued across failed attempts until a
   *  connection is made, and end UNAVAILABLE only when their deadline
   *  passes first (sgrpc_ac_channel_opts.wait_for_ready). */
  int wait_for_ready;
  /** Reconnection backoff; zero fields take gRPC's defaults (1 s, x1.6,
   *  jitter 0.2, max 120 s, 20 s minimum connect timeout). */
  sgrpc_ac_backoff_opts backoff;
} sgrpc_epoll_channel_opts;

/** Per-call callback: every event of the call, the last being
 *  SGRPC_EV_CLOSE (after which the adapter releases the call).
 *  user_data is sgrpc_call_opts.user_data. */
typedef void (*sgrpc_epoll_call_cb)(const sgrpc_event *ev, void *user_data);

/**
 * Creates a channel. No socket is opened until the first call. Returns 0
 * and sets *pchannel, or SGRPC_ERR_INVALID_ARGUMENT / SGRPC_ERR_NOMEM.
 */
SGRPC_EXTERN int sgrpc_epoll_channel_new(sgrpc_epoll_channel **pchannel, sgrpc_epoll_loop *loop,
                                         const sgrpc_epoll_channel_opts *opts);

/**
 * Starts a call on the channel's connection, opening one (non-blocking
 * connect) when there is none or the current one is going away. Calls
 * started while connecting are held by the engine and sent once
 * connected; a failed connect ends them UNAVAILABLE. After a failed
 * connect the channel backs off as gRPC does (1 s growing by 1.6 up to
 * 120 s, jittered; opts->backoff changes it): calls started meanwhile end
 * UNAVAILABLE at once, unless the channel is wait_for_ready.
 * opts->deadline is absolute on sgrpc_epoll_now()'s clock. The call's
 * handle (for sgrpc_call_send, sgrpc_call_close_send, sgrpc_call_cancel)
 * is stored in *pcall when pcall is not NULL; do not change its engine
 * user_data. Returns 0 or the codes of sgrpc_call_start, or
 * SGRPC_ERR_GOING_AWAY after sgrpc_epoll_channel_close.
 */
SGRPC_EXTERN int sgrpc_epoll_channel_call(sgrpc_epoll_channel *channel,
                                          const sgrpc_call_opts *opts, sgrpc_epoll_call_cb cb,
                                          sgrpc_call **pcall);

/** Graceful close: no new calls; each connection closes (after a GOAWAY)
 *  when its calls are done. The channel is freed with the loop or by
 *  sgrpc_epoll_channel_del. */
SGRPC_EXTERN void sgrpc_epoll_channel_close(sgrpc_epoll_channel *channel);

/**
 * Closes every connection at once (open calls end UNAVAILABLE through
 * their callbacks) and frees the channel. Must not be called from a
 * callback of this channel. NULL is a no-op.
 */
SGRPC_EXTERN void sgrpc_epoll_channel_del(sgrpc_epoll_channel *channel);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_EPOLL_H */
