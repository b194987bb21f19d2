/** @file
 * sgrpc net layer, adapter-author half (libsgrpc-net). An adapter binds
 * the net layer (<sgrpc/net.h>) to an event loop: it supplies a few
 * operations (write, connect, close, arm the loop's one timer) and calls
 * the entry points below when bytes arrive, a socket becomes writable or
 * connected or ends, a connection is accepted, the timer fires. The net
 * layer does the rest: engine connections, TLS sessions, event delivery
 * and call release, servers with graceful shutdown and drain, channels
 * with lazy connect, backoff and GOAWAY handling, user timers, the
 * SIGINT/SIGTERM policy.
 *
 * The net layer makes no system call and reads no clock: every effect
 * goes through sgrpc_net_ops, and every entry point takes `now`
 * (monotonic ns, the clock the adapter gives users as sgrpc_X_now()).
 * docs/custom-transport.md walks through a complete transport.
 *
 * Adapter entry points must not be called from inside a net callback
 * (they are the loop's, not the user's).
 */
#ifndef SGRPC_NET_ADAPTER_H
#define SGRPC_NET_ADAPTER_H

#include <sgrpc/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* What the adapter supplies                                           */
/* ------------------------------------------------------------------ */

/** A descriptor the net layer wants watched (ops->fd_watch). */
typedef struct sgrpc_net_fd sgrpc_net_fd;

/**
 * Adapter operations. `loop_ud` is the pointer given to
 * sgrpc_net_loop_new; `tx` is the adapter's transport object attached to
 * a connection with sgrpc_net_conn_set_transport (or given to
 * sgrpc_net_server_accept).
 *
 * Output goes out through exactly one of two styles:
 *  - write (zero-copy, epoll/kqueue): write what fits now from the
 *    borrowed bytes; return the count taken (0..len), or -1 when the
 *    transport failed. Taking less than len means "blocked": the adapter
 *    watches for writability and calls sgrpc_net_conn_writable.
 *  - write_owned (libuv): the adapter takes a buffer it owns, calls
 *    fill(fill_ctx, buf, cap) to have output copied into it, submits the
 *    bytes and frees the buffer when the write completes (then calls
 *    sgrpc_net_conn_writable). Return the count submitted, 0 when it will
 *    not take more now (too much in flight; fill not called) or fill
 *    returned 0, -1 on failure.
 */
typedef struct sgrpc_net_ops {
  /**
   * Starts connecting c to addr, a resolved address (non-blocking
   * connect; no name lookup: the net layer's resolvers did that). Report
   * the outcome with sgrpc_net_conn_connected or sgrpc_net_conn_closed
   * (which may happen before connect returns). Return 0, or a negative
   * code when the attempt failed at once (no report then). Required for
   * channels.
   */
  int (*connect)(void *loop_ud, sgrpc_net_conn *c, const sgrpc_net_address *addr);
  /** zero-copy write (epoll, kqueue): see "write" above */
  sgrpc_ssize (*write)(void *tx, const uint8_t *data, size_t len);
  /** write into the adapter's own buffer (libuv): see "write_owned" above */
  sgrpc_ssize (*write_owned)(void *tx, sgrpc_ssize (*fill)(void *fill_ctx, uint8_t *buf, size_t cap),
                         void *fill_ctx);
  /** Closes and frees the transport. Called once per transport; the
   *  adapter must not call entry points for it afterwards. Required. */
  void (*close)(void *tx);
  /** Arms the loop's single timer at absolute `when` (SGRPC_NEVER:
   *  disarm); when it fires call sgrpc_net_loop_timer. Required. */
  void (*timer_arm)(void *loop_ud, int64_t when);
  /** Closes a server's listener (graceful shutdown, or server_del).
   *  Optional. */
  void (*listener_close)(void *loop_ud, sgrpc_net_server *s, void *listener);
  /**
   * Half-close: shut the write side of tx once everything it took has
   * gone out (shutdown(SHUT_WR); libuv: uv_shutdown), and keep reading,
   * handing bytes and the EOF to the net layer as before. Return 0 or -1
   * (the net layer then closes). Optional: without it a finished
   * connection is closed at once.
   */
  int (*shutdown_write)(void *tx);
  /** Stop (pause = 1) or resume (0) watching a listener for new
   *  connections (after sgrpc_net_server_accept_failed). Optional. */
  void (*listener_pause)(void *loop_ud, sgrpc_net_server *s, void *listener, int pause);
  /**
   * Gather form of write, used instead of it when set (with write also
   * set): write what fits now of the n pieces, in order, and return the
   * count taken (0..their total; less means blocked, as for write), or
   * -1 when the transport failed. The pieces are borrowed like write's
   * bytes: large messages sent with sgrpc_call_send_borrowed reach the
   * socket from the caller's buffer (writev/sendmsg). Optional.
   */
  sgrpc_ssize (*writev)(void *tx, const sgrpc_iov *iov, size_t n);
  /**
   * Starts, changes or stops (events 0) watching descriptor fd for
   * SGRPC_NET_FD_READ and/or SGRPC_NET_FD_WRITE readiness on behalf of f
   * (the built-in DNS resolver's sockets). While watched, report
   * readiness with sgrpc_net_fd_ready(f, ...); keep per-descriptor state
   * with sgrpc_net_fd_set_handle. After a stop, f is gone: never pass it
   * again (the descriptor is closed by its owner right after). Return 0
   * or a negative code. Optional: without it dns: targets resolve only
   * names found without asking a server (/etc/hosts).
   */
  int (*fd_watch)(void *loop_ud, sgrpc_net_fd *f, int fd, int events);
} sgrpc_net_ops;

/** fd_watch: readable. */
#define SGRPC_NET_FD_READ 1
/** fd_watch: writable. */
#define SGRPC_NET_FD_WRITE 2

/** A watched descriptor became ready for events (SGRPC_NET_FD_READ,
 *  SGRPC_NET_FD_WRITE; errors and hang-ups count as both). */
SGRPC_EXTERN void sgrpc_net_fd_ready(sgrpc_net_fd *f, int events, int64_t now);
/** Attaches the adapter's own object for f (given back by
 *  sgrpc_net_fd_handle). */
SGRPC_EXTERN void sgrpc_net_fd_set_handle(sgrpc_net_fd *f, void *handle);
/** The adapter's object attached to f, or NULL. */
SGRPC_EXTERN void *sgrpc_net_fd_handle(const sgrpc_net_fd *f);

/* ------------------------------------------------------------------ */
/* The loop: everything on one event loop                              */
/* ------------------------------------------------------------------ */

/** Creates a loop. ops is copied; mem (NULL: libc) is copied and used for
 *  every object of the net layer and every engine connection it creates.
 *  Returns 0, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_net_loop_new(sgrpc_net_loop **ploop, const sgrpc_net_ops *ops,
                                    void *loop_ud, const sgrpc_mem *mem);
/** Closes every connection (open calls get their CLOSE), frees every
 *  server, channel and timer, then the loop. Not from a callback. */
SGRPC_EXTERN void sgrpc_net_loop_del(sgrpc_net_loop *loop);
/** The loop_ud given to sgrpc_net_loop_new. */
SGRPC_EXTERN void *sgrpc_net_loop_user(const sgrpc_net_loop *loop);
/** The allocator of the loop (never NULL: libc's when none was given),
 *  for the adapter's own objects. */
SGRPC_EXTERN const sgrpc_mem *sgrpc_net_loop_mem(const sgrpc_net_loop *loop);
/** The loop's timer fired: runs engine timers, connect timeouts, backoff
 *  retries, drain deadlines and user timers due at now. */
SGRPC_EXTERN void sgrpc_net_loop_timer(sgrpc_net_loop *loop, int64_t now);
/** Dispatches pending events and writes pending output of the
 *  connections that have any (those read from, written to, woken by an
 *  engine API call or due), closes finished ones and re-arms the timer.
 *  Run it once per loop iteration (before blocking): engine calls made
 *  outside net callbacks are written then (such a call also arms the
 *  loop's timer for now, through the engine's wake hook). */
SGRPC_EXTERN void sgrpc_net_loop_service(sgrpc_net_loop *loop, int64_t now);
/** Earliest time the loop's timer must fire, or SGRPC_NEVER. */
SGRPC_EXTERN int64_t sgrpc_net_loop_next_expiry(const sgrpc_net_loop *loop);
/** Nonzero while anything could still produce work: a connection, a
 *  listening server, a pending user timer. */
SGRPC_EXTERN int sgrpc_net_loop_has_work(const sgrpc_net_loop *loop);
/**
 * SIGINT/SIGTERM policy: counts signals; the first runs
 * sgrpc_net_loop_graceful, the second sgrpc_net_loop_abort. Returns the
 * count (2 or more: the adapter should stop its loop).
 */
SGRPC_EXTERN int sgrpc_net_loop_signal(sgrpc_net_loop *loop, int signo, int64_t now);
/**
 * Test and debugging knob read by adapters: at most n bytes per transport
 * read and per write, a write cut short by it being treated as a full
 * socket (the adapter waits for writability), so that every byte boundary
 * sees a would-block. 0: no limit.
 */
SGRPC_EXTERN void sgrpc_net_loop_set_io_limit(sgrpc_net_loop *loop, size_t n);
/** The limit set with sgrpc_net_loop_set_io_limit (0: none); adapters
 *  read it before each transport read and write. */
SGRPC_EXTERN size_t sgrpc_net_loop_io_limit(const sgrpc_net_loop *loop);
/** How many times the loop has serviced one connection so far (a
 *  connection's pass: its events dispatched, its output written, its
 *  close decided). A pass services only the connections that had
 *  something happen (an adapter report, an engine API call on them, a
 *  due expiry), so the count grows with activity, not with the number of
 *  connections held; for tests and diagnostics. 0 for NULL. */
SGRPC_EXTERN uint64_t sgrpc_net_loop_serviced(const sgrpc_net_loop *loop);

/* ------------------------------------------------------------------ */
/* Connections: entry points for the adapter                           */
/* ------------------------------------------------------------------ */

/** Bytes arrived. Consumes all of them (through the TLS session when
 *  there is one), delivers events, writes. */
SGRPC_EXTERN void sgrpc_net_conn_read(sgrpc_net_conn *c, const uint8_t *data, size_t len,
                                      int64_t now);
/** The transport can take output again. */
SGRPC_EXTERN void sgrpc_net_conn_writable(sgrpc_net_conn *c, int64_t now);
/** Client: the transport connected. */
SGRPC_EXTERN void sgrpc_net_conn_connected(sgrpc_net_conn *c, int64_t now);
/** The transport ended (EOF, error, connect failure). ops->close follows
 *  (at once or after the backoff of a failed connect). */
SGRPC_EXTERN void sgrpc_net_conn_closed(sgrpc_net_conn *c, int64_t now);
/** Attaches the adapter's transport object (client: inside ops->connect). */
SGRPC_EXTERN void sgrpc_net_conn_set_transport(sgrpc_net_conn *c, void *tx);
/** The transport attached with sgrpc_net_conn_set_transport (NULL before). */
SGRPC_EXTERN void *sgrpc_net_conn_transport(const sgrpc_net_conn *c);

/* ------------------------------------------------------------------ */
/* Servers and channels: the adapter's side                            */
/* ------------------------------------------------------------------ */

/** Creates a server on the loop (the adapter's listen call, after it
 *  opened its listener). Returns 0, SGRPC_ERR_INVALID_ARGUMENT or
 *  SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_net_server_new(sgrpc_net_server **pserver, sgrpc_net_loop *loop,
                                      const sgrpc_net_server_opts *opts);
/** Records the adapter's listener (given back to ops->listener_close) and
 *  the bound TCP port (0 for Unix sockets). */
SGRPC_EXTERN void sgrpc_net_server_set_listener(sgrpc_net_server *s, void *listener, int port);
/** The listener recorded with sgrpc_net_server_set_listener (NULL before). */
SGRPC_EXTERN void *sgrpc_net_server_listener(const sgrpc_net_server *s);
/**
 * A transport was accepted. Creates its engine connection (and TLS
 * session). peer may be NULL. Returns 0 and sets *pc; on an error (the
 * adapter still owns tx then and closes it): SGRPC_ERR_INVALID_STATE when
 * the server is shutting down or the TLS factory refused, SGRPC_ERR_NOMEM,
 * or an engine error.
 */
SGRPC_EXTERN int sgrpc_net_server_accept(sgrpc_net_server *s, void *tx, const char *peer,
                                         int64_t now, sgrpc_net_conn **pc);
/**
 * accept() failed with err (SGRPC_ERR_SYSTEM(errno)). Out of descriptors
 * or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener rests: the net
 * layer calls ops->listener_pause(.., 1) and, 200 ms later, (.., 0), and
 * counts it (sgrpc_net_server_accept_pauses). Returns 1 when the listener
 * rests (stop accepting for this turn), 0 for other errors.
 */
SGRPC_EXTERN int sgrpc_net_server_accept_failed(sgrpc_net_server *s, int err, int64_t now);
/** Creates a channel on the loop; nothing connects until the first call.
 *  Returns 0, SGRPC_ERR_INVALID_ARGUMENT (bad target) or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_net_channel_new(sgrpc_net_channel **pch, sgrpc_net_loop *loop,
                                       const sgrpc_net_channel_opts *opts);

/* ------------------------------------------------------------------ */
/* Connection backoff, exposed for adapters and tests                  */
/* ------------------------------------------------------------------ */

/** Reconnection backoff state (gRPC doc/connection-backoff.md): what a
 *  channel keeps between attempts. Exposed for adapters and tests; use it
 *  through the sgrpc_net_backoff_* functions below. */
typedef struct sgrpc_net_backoff {
  sgrpc_net_backoff_opts opts; /**< the options, defaults filled in */
  int64_t cur;  /**< backoff of the attempt in progress */
  int attempts; /**< failed attempts since the last success */
  uint64_t rng; /**< state of the jitter's pseudo-random generator */
} sgrpc_net_backoff;

/** Fills defaults into opts (NULL: all defaults) and resets. seed feeds
 *  the jitter's generator. */
SGRPC_EXTERN void sgrpc_net_backoff_init(sgrpc_net_backoff *b, const sgrpc_net_backoff_opts *opts,
                                         uint64_t seed);
/** After a successful connection: the next failure starts from initial. */
SGRPC_EXTERN void sgrpc_net_backoff_reset(sgrpc_net_backoff *b);
/** How long the attempt starting now may take: max(min_connect_timeout,
 *  current backoff). */
SGRPC_EXTERN int64_t sgrpc_net_backoff_connect_timeout(const sgrpc_net_backoff *b);
/**
 * An attempt that started at attempt_start failed: returns the time of the
 * next attempt (attempt_start + current backoff, jittered by +-jitter from
 * the second failure on, as gRPC does) and grows the backoff by multiplier
 * up to max.
 */
SGRPC_EXTERN int64_t sgrpc_net_backoff_fail(sgrpc_net_backoff *b, int64_t attempt_start);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_NET_ADAPTER_H */
