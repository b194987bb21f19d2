/*
 * The channel suite (tests/channel_suite.h) over libsgrpc-kqueue (on
 * Linux: the kqueue-on-poll shim of tests/kqueue_shim).
 */
#define _GNU_SOURCE
#include "channel_suite.h"

#include <sgrpc/kqueue.h>

static void *kw_new(const sgrpc_mem *mem) {
  sgrpc_kqueue *k = NULL;
  return sgrpc_kqueue_new(&k, mem) == 0 ? k : NULL;
}
static void kw_del(void *p) { sgrpc_kqueue_del(p); }
static sgrpc_net_loop *kw_net(void *p) { return sgrpc_kqueue_net(p); }
static void kw_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_kqueue_run_once(p, timeout_ms) >= 0);
}
static int kw_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_kqueue_listen(p, o, ps);
}
static int kw_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_kqueue_channel_new(p, o, pch);
}

int main(void) {
  static const chs_adapter a = {"channel_kqueue", kw_new,      kw_del,    kw_net,
                                sgrpc_kqueue_now, kw_run_once, kw_listen, kw_channel};
  return channel_suite_run(&a);
}
