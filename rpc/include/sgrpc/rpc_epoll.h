/*
 * Generated services and client stubs (<sgrpc/rpc.h>) over the epoll
 * adapter (<sgrpc/epoll.h>). Header-only: include it in a program that
 * links both sgrpc_rpc and sgrpc_epoll; the rpc library itself does not
 * depend on the adapter.
 *
 * Server:
 *   sgrpc_router_new(&router, NULL);
 *   routeguide__route_guide__sgrpc_register(router, &impl, NULL);
 *   sopts.on_event = sgrpc_rpc_epoll_server_event;
 *   sopts.user_data = router;
 *   sgrpc_epoll_server_new(&server, loop, &sopts);
 *
 * Client:
 *   sgrpc_rpc_epoll_client_init(&client, channel, NULL);
 *   routeguide__route_guide__get_feature__call(&client, &point, &opts,
 *                                              sgrpc_epoll_now(), done, NULL);
 *   sgrpc_epoll_loop_run(loop);
 *
 * Deadlines in sgrpc_rpc_opts are absolute on sgrpc_epoll_now()'s clock.
 * Stubs called outside the adapter's callbacks are written out on the
 * loop's next turn (sgrpc_epoll_loop_run / _run_once / _ready).
 *
 * Other loops bind the same way: <sgrpc/rpc_adapter.h> does it for the
 * adapter core's channels (libuv, kqueue).
 */
#ifndef SGRPC_RPC_EPOLL_H
#define SGRPC_RPC_EPOLL_H

#include <sgrpc/epoll.h>
#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An sgrpc_epoll_server_opts.on_event with user_data = the router: call
 * events go to the router. Connection events (GOAWAY, PING_ACK, ...) need
 * nothing from a plain server; wrap this function to see them. A fatal
 * dispatch result needs no action either: the engine connection is dead
 * and the adapter closes it.
 */
static inline void sgrpc_rpc_epoll_server_event(sgrpc_epoll_conn *conn, const sgrpc_event *ev,
                                                void *router) {
  (void)sgrpc_router_dispatch((sgrpc_router *)router, sgrpc_epoll_conn_engine(conn), ev,
                              sgrpc_epoll_now());
}

/* The channel hands each event to its per-call callback with the call's
 * opts.user_data as call_user_data: the engine's dispatcher finds the rpc
 * layer's callback from there. */
static inline void sgrpc_rpc_epoll_call_event(const sgrpc_event *ev, void *user_data) {
  (void)user_data;
  (void)sgrpc_event_dispatch(ev, sgrpc_epoll_now());
}

/** The sgrpc_rpc_start_fn for an sgrpc_epoll_channel (ctx). The channel
 *  reads its own clock, so now is not needed. */
static inline int sgrpc_rpc_epoll_start(void *ctx, const sgrpc_call_opts *opts, int64_t now,
                                        sgrpc_call **pcall) {
  (void)now;
  return sgrpc_epoll_channel_call((sgrpc_epoll_channel *)ctx, opts, sgrpc_rpc_epoll_call_event,
                                  pcall);
}

/** Binds client to channel: generated client functions then start their
 *  calls on it. mem as in sgrpc_rpc_client_init (NULL: libc). */
static inline void sgrpc_rpc_epoll_client_init(sgrpc_rpc_client *client,
                                               sgrpc_epoll_channel *channel,
                                               const sgrpc_mem *mem) {
  sgrpc_rpc_client_init_transport(client, sgrpc_rpc_epoll_start, channel, mem);
}

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_RPC_EPOLL_H */
