/*
 * The rpc layer (<sgrpc/rpc.h>: generated services and client stubs) on
 * the net layer (<sgrpc/net.h>), once for every loop: epoll, libuv and
 * kqueue alike. Header-only: a program that includes it links the rpc
 * library and its adapter; neither library depends on the other.
 *
 * Server: the router is the server's on_event.
 *   sgrpc_router_new(&router, NULL);
 *   helloworld__greeter__sgrpc_register(router, &impl, NULL);
 *   lo.server.on_event = sgrpc_net_router_event;
 *   lo.server.user_data = router;
 *   sgrpc_epoll_listen(e, &lo, &server);
 *
 * Client: an rpc client bound to a channel.
 *   sgrpc_net_rpc_client_init(&client, channel, NULL);
 *   helloworld__greeter__say_hello__call(&client, &req, &opts, sgrpc_epoll_now(), done, NULL);
 *   sgrpc_epoll_run(e);
 *
 * Ownership is the net layer's: it releases every call after its CLOSE;
 * the router and the rpc client never do. Deadlines in sgrpc_rpc_opts are
 * absolute on the adapter's clock (sgrpc_X_now()).
 */
#ifndef SGRPC_NET_RPC_H
#define SGRPC_NET_RPC_H

#include <sgrpc/health.h>
#include <sgrpc/net.h>
#include <sgrpc/rpc.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A sgrpc_net_server_opts.on_event with user_data = the router. CALL_NEW
 * is routed (the router takes the call over with a per-call callback, so
 * its later events go there directly); connection events need nothing
 * from a plain server (wrap this function to see them). A fatal result
 * needs no action either: the connection is dead and the net layer closes
 * it.
 */
static inline void sgrpc_net_router_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *router,
                                          int64_t now) {
  (void)sgrpc_router_dispatch((sgrpc_router *)router, sgrpc_net_conn_engine(c), ev, now);
}

/** The sgrpc_rpc_start_fn of a sgrpc_net_channel (ctx): the rpc layer's
 *  opts (its on_event and user_data) go to the channel unchanged. */
static inline int sgrpc_net_rpc_start(void *channel, const sgrpc_call_opts *opts, int64_t now,
                                      sgrpc_call **pcall) {
  return sgrpc_net_channel_call((sgrpc_net_channel *)channel, opts, now, pcall);
}

/** Binds client to ch: generated client functions then start their calls
 *  on it. mem as in sgrpc_rpc_client_init (NULL: libc). */
static inline void sgrpc_net_rpc_client_init(sgrpc_rpc_client *client, sgrpc_net_channel *ch,
                                             const sgrpc_mem *mem) {
  sgrpc_rpc_client_init_transport(client, sgrpc_net_rpc_start, ch, mem);
}

/** sgrpc_net_health_use_loop's timer callback (not for direct use). */
static inline void sgrpc_net_health_fire_(sgrpc_net_loop *loop, void *arg, int64_t now) {
  (void)loop;
  sgrpc_health_timer_fire(arg, now);
}

/** sgrpc_health_timers.start on a net loop (not for direct use). */
static inline int sgrpc_net_health_start_(void *loop, int64_t when, void *arg, void **ptimer) {
  sgrpc_net_timer *t = NULL;
  int rv = sgrpc_net_timer_start((sgrpc_net_loop *)loop, when, sgrpc_net_health_fire_, arg, &t);
  *ptimer = t;
  return rv;
}

/** sgrpc_health_timers.cancel on a net loop (not for direct use). */
static inline void sgrpc_net_health_cancel_(void *loop, void *timer) {
  (void)loop;
  sgrpc_net_timer_cancel((sgrpc_net_timer *)timer);
}

/**
 * Runs health's checks (sgrpc_health_check_add) on loop's timers
 * (sgrpc_epoll_net(e), sgrpc_uv_net(u), ...). Returns what
 * sgrpc_health_set_timers returns. Stop the checks (sgrpc_health_del or
 * sgrpc_health_checks_stop) before the loop is deleted.
 */
static inline int sgrpc_net_health_use_loop(sgrpc_health *health, sgrpc_net_loop *loop) {
  sgrpc_health_timers t;
  t.start = sgrpc_net_health_start_;
  t.cancel = sgrpc_net_health_cancel_;
  t.ctx = loop;
  return sgrpc_health_set_timers(health, &t);
}

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_NET_RPC_H */
