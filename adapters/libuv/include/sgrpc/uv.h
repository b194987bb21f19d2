/** @file
 * sgrpc libuv adapter (libsgrpc-uv): the net layer (<sgrpc/net.h>) on a
 * uv_loop_t the user owns and runs (uv_run). TCP (IPv4, IPv6, names
 * through uv_getaddrinfo) with uv_tcp_t, Unix sockets with uv_pipe_t, one
 * uv_timer_t for every timer, uv_signal_t for SIGINT/SIGTERM. Output is
 * copied with sgrpc_conn_out_copy into buffers that live until their
 * write callback.
 *
 * The same surface as <sgrpc/epoll.h> and <sgrpc/kqueue.h> minus their
 * four loop calls (run, run_once, stop, get_fd): the loop is yours. All
 * callbacks run on the loop's thread, from inside uv_run. The adapter
 * keeps the loop alive only while it has work (a listener, a connection,
 * an armed timer); signal watchers and its per-turn prepare handle are
 * unreferenced.
 *
 * Ownership: the net layer releases every call after its SGRPC_EV_CLOSE;
 * never release a call seen through this adapter.
 */
#ifndef SGRPC_UV_H
#define SGRPC_UV_H

#include <sgrpc/net.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The adapter's state on a user's uv_loop_t (opaque; sgrpc_uv_new, sgrpc_uv_del). */
typedef struct sgrpc_uv sgrpc_uv;

/** uv_hrtime(): the `now` of every callback. Build call deadlines on it
 *  (sgrpc_uv_now() + timeout). */
SGRPC_EXTERN int64_t sgrpc_uv_now(void);

/** Binds sgrpc to loop (which must outlive it). mem (NULL: libc) is
 *  copied and used for the adapter's and the net layer's objects and
 *  every engine connection. libuv writes with write(2), which raises
 *  SIGPIPE on a connection the peer reset: when SIGPIPE is at its default
 *  disposition (terminate) this sets it to SIG_IGN for the process, as
 *  gRPC C-core and Node do; a handler of the application's is kept.
 *  Returns 0 and sets *pu, SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_uv_new(sgrpc_uv **pu, uv_loop_t *loop, const sgrpc_mem *mem);

/**
 * Closes every listener and connection at once (open calls end through
 * their callbacks), frees servers, channels and timers, and closes the
 * adapter's handles. libuv closes handles asynchronously: run the loop
 * afterwards (uv_run(loop, UV_RUN_DEFAULT)) before uv_loop_close; the
 * adapter frees its memory from the last close callback. Not from an
 * sgrpc callback. NULL is a no-op.
 */
SGRPC_EXTERN void sgrpc_uv_del(sgrpc_uv *u);

/** The net loop (sgrpc_net_timer_start, sgrpc_net_loop_graceful, ...). */
SGRPC_EXTERN sgrpc_net_loop *sgrpc_uv_net(const sgrpc_uv *u);

/**
 * Binds and listens (SO_REUSEADDR, SO_REUSEPORT on request; accepted TCP
 * sockets get TCP_NODELAY). Names are resolved synchronously here.
 * Returns 0 and sets *pserver, SGRPC_ERR_INVALID_ARGUMENT (bad address,
 * unknown name), SGRPC_ERR_NOMEM, or SGRPC_ERR_SYSTEM(errno) when libuv
 * fails (e.g. EADDRINUSE).
 */
SGRPC_EXTERN int sgrpc_uv_listen(sgrpc_uv *u, const sgrpc_net_listen_opts *o,
                                 sgrpc_net_server **pserver);

/** Creates a channel (nothing connects before the first call). Names are
 *  resolved with uv_getaddrinfo at each connection attempt. */
SGRPC_EXTERN int sgrpc_uv_channel_new(sgrpc_uv *u, const sgrpc_net_channel_opts *o,
                                      sgrpc_net_channel **pchannel);

/**
 * Watches SIGINT and SIGTERM: the first shuts every server down
 * gracefully (GOAWAY, drain) and closes every channel; the second closes
 * everything at once and stops the loop (uv_stop). cb (optional) is told
 * each one first. Returns 0 or SGRPC_ERR_SYSTEM(errno).
 */
SGRPC_EXTERN int sgrpc_uv_catch_signals(sgrpc_uv *u, sgrpc_net_signal_cb cb, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_UV_H */
