/** @file
 * sgrpc kqueue adapter (libsgrpc-kqueue, BSD and macOS): the net layer
 * (<sgrpc/net.h>) over non-blocking sockets (TCP v4/v6, Unix), kqueue
 * with EVFILT_READ/EVFILT_WRITE, one EVFILT_TIMER for every timer and
 * EVFILT_SIGNAL for SIGINT/SIGTERM. Output is sent from the engine's
 * borrowed bytes (zero-copy). Names are resolved with a blocking
 * getaddrinfo (numeric addresses need no lookup).
 *
 * The same surface as <sgrpc/epoll.h> (and <sgrpc/uv.h> without the four
 * loop calls): servers, channels and connections are the net layer's.
 *
 * Ownership: the net layer releases every call after its SGRPC_EV_CLOSE;
 * never release a call seen through this adapter.
 *
 * Threads: an sgrpc_kqueue and everything on it belong to one thread.
 */
#ifndef SGRPC_KQUEUE_H
#define SGRPC_KQUEUE_H

#include <sgrpc/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A kqueue loop (opaque; sgrpc_kqueue_new, sgrpc_kqueue_del). */
typedef struct sgrpc_kqueue sgrpc_kqueue;

/** CLOCK_MONOTONIC in ns: the `now` of every callback; build deadlines
 *  on it. */
SGRPC_EXTERN int64_t sgrpc_kqueue_now(void);

/** Creates a kqueue loop. mem (NULL: libc) is copied and used for the
 *  adapter's and the net layer's objects and every engine connection.
 *  Returns 0, SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM or
 *  SGRPC_ERR_SYSTEM(errno) when kqueue() fails. */
SGRPC_EXTERN int sgrpc_kqueue_new(sgrpc_kqueue **pk, const sgrpc_mem *mem);

/** Frees the loop and everything on it (open calls get their CLOSE).
 *  Not from a callback. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_kqueue_del(sgrpc_kqueue *k);

/** The net loop (sgrpc_net_timer_start, sgrpc_net_loop_graceful, ...). */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_kqueue_net(const sgrpc_kqueue *k);

/** Binds and listens; as sgrpc_epoll_listen. Returns 0,
 *  SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM or SGRPC_ERR_SYSTEM(errno). */
SGRPC_EXTERN int sgrpc_kqueue_listen(sgrpc_kqueue *k, const sgrpc_net_listen_opts *o,
                                     sgrpc_net_server **pserver);

/** Creates a channel; as sgrpc_epoll_channel_new. */
SGRPC_EXTERN int sgrpc_kqueue_channel_new(sgrpc_kqueue *k, const sgrpc_net_channel_opts *o,
                                          sgrpc_net_channel **pchannel);

/**
 * SIGINT/SIGTERM through EVFILT_SIGNAL (their dispositions are set to
 * SIG_IGN, as kqueue signal events require). The first signal shuts
 * servers down gracefully and closes channels; the second closes
 * everything and stops the loop. cb (optional) is told each one first.
 * Returns 0 or SGRPC_ERR_SYSTEM(errno).
 */
SGRPC_EXTERN int sgrpc_kqueue_catch_signals(sgrpc_kqueue *k, sgrpc_net_signal_cb cb,
                                            void *user_data);

/** Runs until sgrpc_kqueue_stop or until nothing is left that could
 *  produce work. Returns 0 or SGRPC_ERR_SYSTEM(errno) when kevent fails. */
SGRPC_EXTERN int sgrpc_kqueue_run(sgrpc_kqueue *k);

/** One turn, waiting up to timeout_ms (-1: no limit, 0: poll). Returns 1
 *  while work is left, 0 when run() would return, or a negative code. */
SGRPC_EXTERN int sgrpc_kqueue_run_once(sgrpc_kqueue *k, int timeout_ms);

/** Makes run() return after the current turn. Callable from callbacks. */
SGRPC_EXTERN void sgrpc_kqueue_stop(sgrpc_kqueue *k);

/** For embedding: the kqueue descriptor, readable when the loop has
 *  events (on BSD a kqueue can be watched by another kqueue, poll or
 *  select); call sgrpc_kqueue_run_once(k, 0) then. */
SGRPC_EXTERN int sgrpc_kqueue_get_fd(const sgrpc_kqueue *k);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_KQUEUE_H */
