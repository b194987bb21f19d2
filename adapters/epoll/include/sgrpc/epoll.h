/** @file
 * sgrpc epoll adapter (libsgrpc-epoll, Linux): the net layer
 * (<sgrpc/net.h>) over non-blocking sockets (TCP v4/v6, Unix), epoll, one
 * timerfd for every timer and a signalfd for SIGINT/SIGTERM. Output is
 * sent from the engine's borrowed bytes (zero-copy). Names in listen
 * addresses and channel targets are resolved with a blocking getaddrinfo
 * (numeric addresses need no lookup).
 *
 * The same surface as <sgrpc/kqueue.h> and <sgrpc/uv.h>: create, listen,
 * open a channel, catch signals, now; servers, channels and connections
 * are the net layer's (sgrpc_net_*). The loop is the adapter's own:
 * sgrpc_epoll_run, or sgrpc_epoll_run_once from the user's loop with
 * sgrpc_epoll_get_fd.
 *
 * Ownership: the net layer releases every call after its SGRPC_EV_CLOSE;
 * never release a call seen through this adapter.
 *
 * Threads: an sgrpc_epoll and everything on it belong to one thread.
 */
#ifndef SGRPC_EPOLL_H
#define SGRPC_EPOLL_H

#include <sgrpc/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An epoll loop with its timerfd and signalfd (opaque; sgrpc_epoll_new, sgrpc_epoll_del). */
typedef struct sgrpc_epoll sgrpc_epoll;

/** CLOCK_MONOTONIC in nanoseconds: the `now` of every callback. Build
 *  call deadlines on it (sgrpc_epoll_now() + timeout). */
SGRPC_EXTERN int64_t sgrpc_epoll_now(void);

/** Creates an epoll loop. mem (NULL: libc) is copied and used for the
 *  adapter's and the net layer's objects and every engine connection.
 *  Returns 0 and sets *pe, SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM,
 *  or SGRPC_ERR_SYSTEM(errno) when epoll_create1/timerfd_create fail. */
SGRPC_EXTERN int sgrpc_epoll_new(sgrpc_epoll **pe, const sgrpc_mem *mem);

/** Frees the loop and everything still on it (servers, channels, timers,
 *  connections; open calls get their CLOSE first). Not from a callback.
 *  NULL is a no-op. */
SGRPC_EXTERN void sgrpc_epoll_del(sgrpc_epoll *e);

/** The net loop (sgrpc_net_timer_start, sgrpc_net_loop_graceful, ...). */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_epoll_net(const sgrpc_epoll *e);

/**
 * Listens on o->listen or adopts o->fd (see sgrpc_net_listen_opts);
 * SO_REUSEADDR on TCP listeners, SO_REUSEPORT when asked, TCP_NODELAY on
 * accepted sockets. The server is freed by sgrpc_net_server_del or with
 * the loop. Returns 0 and sets *pserver, SGRPC_ERR_INVALID_ARGUMENT (bad
 * address, unknown name, no on_event), SGRPC_ERR_NOMEM, or
 * SGRPC_ERR_SYSTEM(errno) when a socket call fails (EADDRINUSE, ...).
 */
SGRPC_EXTERN int sgrpc_epoll_listen(sgrpc_epoll *e, const sgrpc_net_listen_opts *o,
                                    sgrpc_net_server **pserver);

/** Creates a channel (nothing connects before the first call; see
 *  sgrpc_net_channel_call). Returns 0, SGRPC_ERR_INVALID_ARGUMENT or
 *  SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_epoll_channel_new(sgrpc_epoll *e, const sgrpc_net_channel_opts *o,
                                         sgrpc_net_channel **pchannel);

/**
 * SIGINT/SIGTERM through a signalfd (the signals are blocked in the
 * calling thread: call this before creating other threads). The first
 * signal shuts every server down gracefully and closes every channel; the
 * second closes everything at once and stops the loop. cb (optional) is
 * told each signal first. Returns 0 or SGRPC_ERR_SYSTEM(errno).
 */
SGRPC_EXTERN int sgrpc_epoll_catch_signals(sgrpc_epoll *e, sgrpc_net_signal_cb cb,
                                           void *user_data);

/** Runs until sgrpc_epoll_stop or until nothing is left that could
 *  produce work (no listener, connection or timer). Returns 0 or
 *  SGRPC_ERR_SYSTEM(errno) when epoll_wait fails. */
SGRPC_EXTERN int sgrpc_epoll_run(sgrpc_epoll *e);

/** One turn: writes pending output, waits up to timeout_ms (-1: no limit,
 *  0: do not block) for readiness, handles what is ready, writes again.
 *  Returns 1 while work is left, 0 when run() would return, or a negative
 *  code. */
SGRPC_EXTERN int sgrpc_epoll_run_once(sgrpc_epoll *e, int timeout_ms);

/** Makes run() return after the current turn. Callable from callbacks. */
SGRPC_EXTERN void sgrpc_epoll_stop(sgrpc_epoll *e);

/** For embedding in another loop: the epoll descriptor, readable when the
 *  loop has work; call sgrpc_epoll_run_once(e, 0) then, and after using
 *  the engine API outside sgrpc callbacks. */
SGRPC_EXTERN int sgrpc_epoll_get_fd(const sgrpc_epoll *e);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_EPOLL_H */
