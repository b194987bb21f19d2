/*
 * The demo's event loop, chosen at run time (--loop=epoll|libuv|kqueue).
 * The three adapters offer one surface (<sgrpc/net.h>): servers, channels,
 * timers and connections are the net layer's, so server.c and client.c
 * are the same code on every loop and this is only a table of the three
 * adapters' function sets. kqueue on Linux runs on the kqueue-on-poll shim
 * of tests/kqueue_shim (built with the tests).
 */
#ifndef SGRPC_DEMO_LOOP_H
#define SGRPC_DEMO_LOOP_H

#include <sgrpc/net.h>

/* One adapter's function set; x is its object (sgrpc_epoll, sgrpc_uv,
 * sgrpc_kqueue). libuv's loop is the demo's, run with uv_run. */
typedef struct demo_adapter {
  const char *name;
  int (*make)(void **px);
  void (*del)(void *x);
  sgrpc_net_loop *(*net)(void *x);
  int (*listen)(void *x, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps);
  int (*channel)(void *x, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch);
  int (*catch_signals)(void *x, sgrpc_net_signal_cb cb, void *ud);
  int64_t (*now)(void);
  int (*run)(void *x);
  void (*stop)(void *x);
} demo_adapter;

typedef struct demo_loop {
  const demo_adapter *a;
  void *x;
} demo_loop;

/** The loops this build has, "|"-separated ("epoll|libuv|kqueue"). */
const char *demo_loop_kinds(void);
/** Makes a loop of kind (one of demo_loop_kinds) into *l. 0, or -1 for an
 *  unknown or unbuilt kind or when the loop cannot be made. */
int demo_loop_new(demo_loop *l, const char *kind);

#endif
