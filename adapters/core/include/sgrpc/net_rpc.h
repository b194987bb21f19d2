/** @file
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

#include <stdio.h>
#include <string.h>

#include <sgrpc/channelz.h>
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


/** The net layer's timer for an rpc client's retry backoff (an
 *  sgrpc_net_timer_cb): hands the expiry to the rpc layer. */
static inline void sgrpc_net_rpc_timer_cb(sgrpc_net_loop *loop, void *arg, int64_t now) {
  (void)loop;
  sgrpc_rpc_timer_fire(arg, now);
}

/** The sgrpc_rpc_timer_start_fn of a net loop (ctx): sgrpc_net_timer_start. */
static inline int sgrpc_net_rpc_timer_start(void *loop, int64_t when, void *arg, void **ptimer) {
  sgrpc_net_timer *t = NULL;
  int rv = sgrpc_net_timer_start((sgrpc_net_loop *)loop, when, sgrpc_net_rpc_timer_cb, arg, &t);
  *ptimer = t;
  return rv;
}

/** The sgrpc_rpc_timer_cancel_fn of a net loop: sgrpc_net_timer_cancel. */
static inline void sgrpc_net_rpc_timer_cancel(void *loop, void *timer) {
  (void)loop;
  sgrpc_net_timer_cancel((sgrpc_net_timer *)timer);
}

/**
 * Gives client (bound with sgrpc_net_rpc_client_init) the timers of loop,
 * the loop its channel runs on, so that retry policies wait their backoff
 * and server pushback on it (<sgrpc/rpc.h>, sgrpc_rpc_client_set_timer).
 * A call waiting for its next attempt holds a pending timer, which keeps
 * the loop running; before deleting the loop, end such calls with
 * sgrpc_rpc_client_cancel_waiting(client).
 */
static inline void sgrpc_net_rpc_client_set_loop(sgrpc_rpc_client *client, sgrpc_net_loop *loop) {
  sgrpc_rpc_client_set_timer(client, sgrpc_net_rpc_timer_start, sgrpc_net_rpc_timer_cancel, loop);
}

/**
 * Binds client to ch: generated client functions then start their calls
 * on it. mem as in sgrpc_rpc_client_init (NULL: libc). The client also
 * takes the channel's service config (sgrpc_net_channel_service_config:
 * method timeouts, wait-for-ready, size limits, retry policies) and its
 * loop's timers for retry backoff (sgrpc_net_rpc_client_set_loop); before
 * deleting the loop, end calls that wait out a backoff with
 * sgrpc_rpc_client_cancel_waiting(client).
 */
static inline void sgrpc_net_rpc_client_init(sgrpc_rpc_client *client, sgrpc_net_channel *ch,
                                             const sgrpc_mem *mem) {
  sgrpc_rpc_client_init_transport(client, sgrpc_net_rpc_start, ch, mem);
  if (!ch) return;
  sgrpc_net_rpc_client_set_loop(client, sgrpc_net_channel_loop(ch));
  sgrpc_rpc_client_set_service_config(client, sgrpc_net_channel_service_config(ch));
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

/** sgrpc_net_channelz_find_'s socket part (not for direct use). */
static inline void sgrpc_net_channelz_socket_(sgrpc_net_conn *c, uint64_t parent, int server_side,
                                              sgrpc_channelz_entity *e) {
  sgrpc_conn *engine = sgrpc_net_conn_engine(c);
  e->kind = SGRPC_CHANNELZ_SOCKET;
  e->id = sgrpc_net_conn_id(c);
  e->parent = parent;
  e->is_server_side = server_side;
  sgrpc_conn_get_stats(engine, &e->stats);
  e->has_flow = sgrpc_conn_get_flow(engine, &e->flow) == 0;
  (void)sgrpc_conn_peer(engine, &e->peer);
  e->name = e->peer.address;
}

/** The sgrpc_channelz_source.find of a net loop (ctx); see
 *  sgrpc_net_channelz_use_loop (not for direct use). */
static inline int sgrpc_net_channelz_find_(void *ctx, sgrpc_channelz_kind kind, uint64_t parent,
                                           uint64_t from, sgrpc_channelz_entity *e) {
  sgrpc_net_loop *loop = (sgrpc_net_loop *)ctx;
  sgrpc_net_server *s, *best_s = NULL;
  sgrpc_net_channel *ch, *best_ch = NULL;
  sgrpc_net_conn *c, *best_c = NULL;
  uint64_t best = 0, owner = 0, id;
  int server_side = 0;
  for (s = sgrpc_net_loop_server_next(loop, NULL); s; s = sgrpc_net_loop_server_next(loop, s)) {
    id = sgrpc_net_server_id(s);
    if (kind == SGRPC_CHANNELZ_SERVER && id >= from && (!best || id < best)) {
      best = id;
      best_s = s;
    }
    if (kind != SGRPC_CHANNELZ_SOCKET || (parent && parent != id)) continue;
    for (c = sgrpc_net_server_conn_next(s, NULL); c; c = sgrpc_net_server_conn_next(s, c)) {
      uint64_t cid = sgrpc_net_conn_id(c);
      if (cid >= from && (!best || cid < best)) {
        best = cid;
        best_c = c;
        owner = id;
        server_side = 1;
      }
    }
  }
  for (ch = sgrpc_net_loop_channel_next(loop, NULL); ch;
       ch = sgrpc_net_loop_channel_next(loop, ch)) {
    id = sgrpc_net_channel_id(ch);
    if (kind == SGRPC_CHANNELZ_CHANNEL && id >= from && (!best || id < best)) {
      best = id;
      best_ch = ch;
    }
    if (kind != SGRPC_CHANNELZ_SOCKET || (parent && parent != id)) continue;
    for (c = sgrpc_net_channel_conn_next(ch, NULL); c; c = sgrpc_net_channel_conn_next(ch, c)) {
      uint64_t cid = sgrpc_net_conn_id(c);
      if (cid >= from && (!best || cid < best)) {
        best = cid;
        best_c = c;
        owner = id;
        server_side = 0;
      }
    }
  }
  if (best_s) {
    e->kind = SGRPC_CHANNELZ_SERVER;
    e->id = best;
    e->name = "";
    sgrpc_net_server_get_stats(best_s, &e->stats);
  } else if (best_ch) {
    const sgrpc_net_target *t = sgrpc_net_channel_target(best_ch);
    e->kind = SGRPC_CHANNELZ_CHANNEL;
    e->id = best;
    if (t->kind == SGRPC_NET_TARGET_UNIX)
      snprintf(e->name_buf, sizeof(e->name_buf), "unix:%s", t->path);
    else if (strchr(t->host, ':'))
      snprintf(e->name_buf, sizeof(e->name_buf), "[%s]:%s", t->host, t->port);
    else
      snprintf(e->name_buf, sizeof(e->name_buf), "%s:%s", t->host, t->port);
    e->name = e->name_buf;
    sgrpc_net_channel_get_stats(best_ch, &e->stats);
    e->state = sgrpc_net_channel_failures(best_ch) > 0  ? SGRPC_CHANNELZ_STATE_TRANSIENT_FAILURE
               : sgrpc_net_channel_conn_count(best_ch) ? SGRPC_CHANNELZ_STATE_READY
                                                       : SGRPC_CHANNELZ_STATE_IDLE;
  } else if (best_c) {
    sgrpc_net_channelz_socket_(best_c, owner, server_side, e);
  } else {
    return 0;
  }
  e->last_call_started_unix_ns = sgrpc_net_to_unix_ns(e->stats.last_call_started);
  return 1;
}

/**
 * Makes cz report every server, channel and connection of loop
 * (sgrpc_epoll_net(e), ...): server and channel totals
 * (sgrpc_net_server_get_stats), each connection's counters, flow-control
 * windows and peer (address, TLS cipher, peer certificate). A channel's
 * state is TRANSIENT_FAILURE after a failed connection attempt, READY
 * while it has a connection, IDLE otherwise. Returns what
 * sgrpc_channelz_set_source returns.
 */
static inline int sgrpc_net_channelz_use_loop(sgrpc_channelz *cz, sgrpc_net_loop *loop) {
  sgrpc_channelz_source src;
  src.find = sgrpc_net_channelz_find_;
  src.ctx = loop;
  return sgrpc_channelz_set_source(cz, &src);
}

#ifdef __cplusplus
}
#endif

#endif /* SGRPC_NET_RPC_H */
