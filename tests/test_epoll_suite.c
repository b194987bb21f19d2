/*
 * The adapter suite (tests/adapter_suite.h) over libsgrpc-epoll.
 * tests/test_epoll.c covers what only this adapter has (embedding with
 * sgrpc_epoll_get_fd, run/stop) and more end-to-end cases.
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

static void *epw_new(void) {
  sgrpc_epoll *e = NULL;
  assert_int_equal(sgrpc_epoll_new(&e, NULL), 0);
  return e;
}

static void epw_del(void *p) { sgrpc_epoll_del(p); }
static sgrpc_net_loop *epw_net(void *p) { return sgrpc_epoll_net(p); }
static void epw_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_epoll_run_once(p, timeout_ms) >= 0);
}
static int epw_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_epoll_listen(p, o, ps);
}
static int epw_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_epoll_channel_new(p, o, pch);
}
static int epw_signals(void *p) { return sgrpc_epoll_catch_signals(p, NULL, NULL); }

int main(void) {
  static const suite_adapter ep_adapter = {
      "epoll",    epw_new,     epw_del, epw_net, sgrpc_epoll_now, epw_run_once,
      epw_listen, epw_channel, epw_signals, 0,
  };
  return adapter_suite_run(&ep_adapter);
}
#endif
