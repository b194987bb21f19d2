/*
 * The adapter suite (tests/adapter_suite.h) over libsgrpc-epoll: servers
 * from sgrpc_epoll_listen (the listen call the other adapters have);
 * channels are the core's, made on the loop's hub, so they connect
 * through the epoll loop. tests/test_epoll.c covers the epoll-only API
 * (sgrpc_epoll_server_new, sgrpc_epoll_channel_*).
 */
#define _GNU_SOURCE
#include <stdio.h>

#ifndef SGRPC_HAVE_EPOLL_SUITE
int main(void) {
  fprintf(stderr, "test_epoll_suite: libsgrpc-epoll was not built\n");
  return 77;
}
#else
#include "adapter_suite.h"

#include <sgrpc/epoll.h>

typedef struct ep_after {
  void (*cb)(void *);
  void *ud;
} ep_after;

static void *epw_new(void) {
  sgrpc_epoll_loop *loop = NULL;
  assert_int_equal(sgrpc_epoll_loop_new(&loop), 0);
  return loop;
}

static void epw_del(void *p) { sgrpc_epoll_loop_del(p); }
static sgrpc_ac_hub *epw_hub(void *p) { return sgrpc_epoll_loop_hub(p); }
static void epw_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_epoll_loop_run_once(p, timeout_ms) >= 0);
}

static int epw_listen(void *p, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  return sgrpc_epoll_listen(p, o, ps);
}

static int epw_channel(void *p, const sgrpc_ac_channel_opts *o, sgrpc_ac_channel **pch) {
  return sgrpc_ac_channel_new(pch, sgrpc_epoll_loop_hub(p), o);
}

static int epw_signals(void *p) { return sgrpc_epoll_loop_catch_signals(p, NULL, NULL); }

static void after_fire(sgrpc_epoll_loop *loop, void *ud) {
  ep_after *a = ud;
  (void)loop;
  a->cb(a->ud);
  free(a);
}

static int epw_after(void *p, int64_t delay_ns, void (*cb)(void *), void *ud) {
  ep_after *a = calloc(1, sizeof(*a));
  if (!a) return -1;
  a->cb = cb;
  a->ud = ud;
  return sgrpc_epoll_timer_start(p, delay_ns, after_fire, a, NULL);
}

int main(void) {
  static const suite_adapter ep_adapter = {
      "epoll", epw_new, epw_del, epw_hub, sgrpc_epoll_now, epw_run_once, epw_listen,
      epw_channel, epw_signals, epw_after,
  };
  return adapter_suite_run(&ep_adapter);
}
#endif
