/*
 * sgrpc libuv adapter (libsgrpc-uv): the adapter core (<sgrpc/adapter.h>)
 * on a uv_loop_t the user owns. TCP (IPv4, IPv6, names through
 * uv_getaddrinfo) with uv_tcp_t, Unix sockets with uv_pipe_t, one
 * uv_timer_t for every engine timer, uv_signal_t for SIGINT/SIGTERM.
 * Output is copied with sgrpc_conn_out_copy into buffers that live until
 * their write callback.
 *
 * Servers and channels are the core's objects: use sgrpc_ac_server_* and
 * sgrpc_ac_channel_* on them (sgrpc_ac_channel_call starts calls). All
 * callbacks run on the loop's thread, from inside uv_run.
 *
 * The adapter keeps the loop alive only while it has work (a listener, a
 * connection, an armed engine timer); signal watchers and its per-turn
 * prepare handle are unreferenced.
 */
#ifndef SGRPC_UV_H
#define SGRPC_UV_H

#include <sgrpc/adapter.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sgrpc_uv sgrpc_uv;

/** uv_hrtime(): the clock given to the engine as `now`. Build call
 *  deadlines on it (sgrpc_uv_now() + timeout). */
SGRPC_EXTERN int64_t sgrpc_uv_now(void);

/** Binds sgrpc to loop (which must outlive it). Returns 0 and sets *pu,
 *  SGRPC_ERR_INVALID_ARGUMENT or SGRPC_ERR_NOMEM. */
SGRPC_EXTERN int sgrpc_uv_new(sgrpc_uv **pu, uv_loop_t *loop);

/**
 * Closes every listener and connection at once (open calls end through
 * their callbacks), frees servers and channels, and closes the adapter's
 * handles. libuv closes handles asynchronously: run the loop afterwards
 * (uv_run(loop, UV_RUN_DEFAULT)) before uv_loop_close; the adapter frees
 * its memory from the last close callback. Not from an sgrpc callback.
 */
SGRPC_EXTERN void sgrpc_uv_del(sgrpc_uv *u);

SGRPC_EXTERN sgrpc_ac_hub *sgrpc_uv_hub(const sgrpc_uv *u);
SGRPC_EXTERN uv_loop_t *sgrpc_uv_loop(const sgrpc_uv *u);

/**
 * Binds and listens (SO_REUSEADDR, SO_REUSEPORT on request; accepted TCP
 * sockets get TCP_NODELAY). Names are resolved synchronously here.
 * Returns 0 and sets *pserver, SGRPC_ERR_INVALID_ARGUMENT (bad address,
 * unknown name), SGRPC_ERR_NOMEM, or SGRPC_ERR_INVALID_STATE when libuv
 * fails (errno is set to the error, e.g. EADDRINUSE).
 */
SGRPC_EXTERN int sgrpc_uv_listen(sgrpc_uv *u, const sgrpc_ac_listen_opts *opts,
                                 sgrpc_ac_server **pserver);

/** Creates a channel (nothing connects before the first call). Names are
 *  resolved with uv_getaddrinfo at each connection attempt. */
SGRPC_EXTERN int sgrpc_uv_channel_new(sgrpc_uv *u, const sgrpc_ac_channel_opts *opts,
                                      sgrpc_ac_channel **pchannel);

/**
 * Watches SIGINT and SIGTERM: the first shuts every server down
 * gracefully (GOAWAY, drain) and closes every channel gracefully; the
 * second closes everything at once and stops the loop (uv_stop).
 * on_signal (optional) is told each one first; count is 1 for the first.
 */
typedef void (*sgrpc_uv_signal_cb)(sgrpc_uv *u, int signo, int count, void *user_data);
SGRPC_EXTERN int sgrpc_uv_catch_signals(sgrpc_uv *u, sgrpc_uv_signal_cb on_signal,
                                        void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_UV_H */
