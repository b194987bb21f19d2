/*
 * sgrpc kqueue adapter (libsgrpc-kqueue, BSD and macOS): the adapter core
 * (<sgrpc/adapter.h>) over kqueue/kevent. EVFILT_READ/EVFILT_WRITE on
 * non-blocking sockets (TCP and Unix), one EVFILT_TIMER for the engine's
 * timers and the user's, EVFILT_SIGNAL for SIGINT/SIGTERM. Output is
 * written from the engine's borrowed bytes (zero-copy).
 *
 * Servers and channels are the core's objects: use sgrpc_ac_server_* and
 * sgrpc_ac_channel_* on them. Names in listen and channel targets are
 * resolved with a blocking getaddrinfo (numeric addresses need no
 * lookup).
 *
 * Threads: a loop and everything on it belong to one thread.
 */
#ifndef SGRPC_KQUEUE_H
#define SGRPC_KQUEUE_H

#include <sgrpc/adapter.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_kq_loop sgrpc_kq_loop;
typedef struct sgrpc_kq_timer sgrpc_kq_timer;

/** CLOCK_MONOTONIC in ns: the engine's `now`; build deadlines on it. */
SGRPC_EXTERN int64_t sgrpc_kq_now(void);

/** Creates a loop (one kqueue). Returns 0, SGRPC_ERR_NOMEM, or
 *  SGRPC_ERR_INVALID_STATE when kqueue() fails (errno set). */
SGRPC_EXTERN int sgrpc_kq_loop_new(sgrpc_kq_loop **ploop);
/** Frees the loop and everything on it (open calls get their CLOSE).
 *  Not from a callback of the loop. NULL is a no-op. */
SGRPC_EXTERN void sgrpc_kq_loop_del(sgrpc_kq_loop *loop);
SGRPC_EXTERN sgrpc_ac_hub *sgrpc_kq_loop_hub(const sgrpc_kq_loop *loop);

/** Runs until sgrpc_kq_loop_stop or until nothing is left that could
 *  produce work (no listener, connection or timer). Returns 0 or a
 *  negative code when kevent fails. */
SGRPC_EXTERN int sgrpc_kq_loop_run(sgrpc_kq_loop *loop);
/** One turn, waiting up to timeout_ms (-1: no limit, 0: poll). Returns 1
 *  while work is left, 0 when run() would return, or a negative code. */
SGRPC_EXTERN int sgrpc_kq_loop_run_once(sgrpc_kq_loop *loop, int timeout_ms);
/** Makes run() return after the current turn. */
SGRPC_EXTERN void sgrpc_kq_loop_stop(sgrpc_kq_loop *loop);
/** For embedding: the kqueue descriptor, readable when the loop has
 *  events (on BSD a kqueue can be watched by another kqueue, poll or
 *  select); call sgrpc_kq_loop_run_once(loop, 0) then. */
SGRPC_EXTERN int sgrpc_kq_loop_get_fd(const sgrpc_kq_loop *loop);

typedef void (*sgrpc_kq_timer_cb)(sgrpc_kq_loop *loop, void *user_data);
/** Calls cb once after delay_ns. The handle (optional) is valid until cb
 *  starts or the timer is cancelled. */
SGRPC_EXTERN int sgrpc_kq_timer_start(sgrpc_kq_loop *loop, int64_t delay_ns, sgrpc_kq_timer_cb cb,
                                      void *user_data, sgrpc_kq_timer **ptimer);
SGRPC_EXTERN void sgrpc_kq_timer_cancel(sgrpc_kq_timer *timer);

/** Binds and listens; as sgrpc_uv_listen. Returns 0,
 *  SGRPC_ERR_INVALID_ARGUMENT, SGRPC_ERR_NOMEM or SGRPC_ERR_INVALID_STATE
 *  (errno set by the failing call, e.g. EADDRINUSE). */
SGRPC_EXTERN int sgrpc_kq_listen(sgrpc_kq_loop *loop, const sgrpc_ac_listen_opts *opts,
                                 sgrpc_ac_server **pserver);
SGRPC_EXTERN int sgrpc_kq_channel_new(sgrpc_kq_loop *loop, const sgrpc_ac_channel_opts *opts,
                                      sgrpc_ac_channel **pchannel);

/**
 * SIGINT/SIGTERM through EVFILT_SIGNAL (their dispositions are set to
 * SIG_IGN, as kqueue signal events require). The first signal shuts
 * servers down gracefully and closes channels; the second closes
 * everything and stops the loop. on_signal (optional) is told each one.
 */
typedef void (*sgrpc_kq_signal_cb)(sgrpc_kq_loop *loop, int signo, int count, void *user_data);
SGRPC_EXTERN int sgrpc_kq_catch_signals(sgrpc_kq_loop *loop, sgrpc_kq_signal_cb on_signal,
                                        void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_KQUEUE_H */
