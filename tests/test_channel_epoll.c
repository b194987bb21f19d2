/*
 * The channel suite (tests/channel_suite.h) over libsgrpc-epoll.
 */
#define _GNU_SOURCE
#include "channel_suite.h"

#include <sgrpc/epoll.h>

static void *ew_new(const sgrpc_mem *mem) {
  sgrpc_epoll *e = NULL;
  return sgrpc_epoll_new(&e, mem) == 0 ? e : NULL;
}
static void ew_del(void *p) { sgrpc_epoll_del(p); }
static sgrpc_net_loop *ew_net(void *p) { return sgrpc_epoll_net(p); }
static void ew_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_epoll_run_once(p, timeout_ms) >= 0);
}
static int ew_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_epoll_listen(p, o, ps);
}
static int ew_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_epoll_channel_new(p, o, pch);
}

int main(void) {
  static const chs_adapter a = {"channel_epoll", ew_new,    ew_del,    ew_net,
                                sgrpc_epoll_now, ew_run_once, ew_listen, ew_channel};
  return channel_suite_run(&a);
}
