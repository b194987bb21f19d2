/*
 * demo_loop.h: the function sets of the adapters CMake found
 * (SGRPC_DEMO_HAVE_EPOLL / _UV / _KQUEUE). epoll and kqueue have the same
 * surface, spelled out by one macro; libuv adds a loop the demo owns.
 */
#define _GNU_SOURCE
#include "demo_loop.h"

#include <stdlib.h>
#include <string.h>

#ifdef SGRPC_DEMO_HAVE_EPOLL
#include <sgrpc/epoll.h>
#endif
#ifdef SGRPC_DEMO_HAVE_UV
#include <sgrpc/uv.h>
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
#include <sgrpc/kqueue.h>
#endif

/* An adapter that owns its loop: sgrpc_X_new/_del/_net/_listen/
 * _channel_new/_catch_signals/_now/_run/_stop, adapted to void *. */
#define DEMO_OWN_LOOP(X)                                                                           \
  static int X##_make(void **px) { return sgrpc_##X##_new((sgrpc_##X **)px, NULL); }               \
  static void X##_del(void *x) { sgrpc_##X##_del(x); }                                             \
  static sgrpc_net_loop *X##_net(void *x) { return sgrpc_##X##_net(x); }                           \
  static int X##_listen(void *x, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {          \
    return sgrpc_##X##_listen(x, o, ps);                                                           \
  }                                                                                                \
  static int X##_channel(void *x, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {      \
    return sgrpc_##X##_channel_new(x, o, pch);                                                     \
  }                                                                                                \
  static int X##_signals(void *x, sgrpc_net_signal_cb cb, void *ud) {                              \
    return sgrpc_##X##_catch_signals(x, cb, ud);                                                   \
  }                                                                                                \
  static int X##_run(void *x) { return sgrpc_##X##_run(x) == 0 ? 0 : -1; }                         \
  static void X##_stop(void *x) { sgrpc_##X##_stop(x); }                                           \
  static const demo_adapter X##_adapter = {#X,         X##_make,    X##_del,     X##_net,          \
                                           X##_listen, X##_channel, X##_signals, sgrpc_##X##_now,  \
                                           X##_run,    X##_stop};

#ifdef SGRPC_DEMO_HAVE_EPOLL
DEMO_OWN_LOOP(epoll)
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
DEMO_OWN_LOOP(kqueue)
#endif

#ifdef SGRPC_DEMO_HAVE_UV
/* libuv: the uv_loop_t is the demo's; sgrpc_uv lives on it. */
typedef struct demo_uv {
  uv_loop_t loop;
  sgrpc_uv *u;
} demo_uv;

static int demo_uv_make(void **px) {
  demo_uv *d = calloc(1, sizeof(*d));
  if (!d || uv_loop_init(&d->loop) != 0) {
    free(d);
    return -1;
  }
  if (sgrpc_uv_new(&d->u, &d->loop, NULL) != 0) {
    uv_loop_close(&d->loop);
    free(d);
    return -1;
  }
  *px = d;
  return 0;
}

static void demo_uv_del(void *x) {
  demo_uv *d = x;
  int i;
  sgrpc_uv_del(d->u);
  /* Close callbacks complete here; bounded. */
  for (i = 0; i < 1000 && uv_run(&d->loop, UV_RUN_NOWAIT) != 0; i++) {
  }
  uv_loop_close(&d->loop);
  free(d);
}

static sgrpc_net_loop *demo_uv_net(void *x) { return sgrpc_uv_net(((demo_uv *)x)->u); }
static int demo_uv_listen(void *x, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_uv_listen(((demo_uv *)x)->u, o, ps);
}
static int demo_uv_channel(void *x, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_uv_channel_new(((demo_uv *)x)->u, o, pch);
}
static int demo_uv_signals(void *x, sgrpc_net_signal_cb cb, void *ud) {
  return sgrpc_uv_catch_signals(((demo_uv *)x)->u, cb, ud);
}
static int demo_uv_run_all(void *x) {
  uv_run(&((demo_uv *)x)->loop, UV_RUN_DEFAULT);
  return 0;
}
static void demo_uv_stop_loop(void *x) { uv_stop(&((demo_uv *)x)->loop); }

static const demo_adapter demo_uv_adapter = {
    "libuv",         demo_uv_make,    demo_uv_del,  demo_uv_net,     demo_uv_listen,
    demo_uv_channel, demo_uv_signals, sgrpc_uv_now, demo_uv_run_all, demo_uv_stop_loop};
#endif

static const demo_adapter *const adapters[] = {
#ifdef SGRPC_DEMO_HAVE_EPOLL
    &epoll_adapter,
#endif
#ifdef SGRPC_DEMO_HAVE_UV
    &demo_uv_adapter,
#endif
#ifdef SGRPC_DEMO_HAVE_KQUEUE
    &kqueue_adapter,
#endif
    NULL};

const char *demo_loop_kinds(void) {
  static char kinds[64];
  size_t i;
  if (!kinds[0])
    for (i = 0; adapters[i]; i++) {
      if (i) strcat(kinds, "|");
      strcat(kinds, adapters[i]->name);
    }
  return kinds;
}

int demo_loop_new(demo_loop *l, const char *kind) {
  size_t i;
  memset(l, 0, sizeof(*l));
  for (i = 0; adapters[i]; i++)
    if (strcmp(adapters[i]->name, kind) == 0) {
      if (adapters[i]->make(&l->x) != 0) return -1;
      l->a = adapters[i];
      return 0;
    }
  return -1;
}
