/*
 * The adapter suite (tests/adapter_suite.h) over libsgrpc-kqueue. On
 * Linux the adapter runs on the kqueue-on-poll shim in tests/kqueue_shim.
 */
#define _GNU_SOURCE
#include <stdio.h>

#ifndef SGRPC_HAVE_KQUEUE
int main(void) {
  fprintf(stderr, "test_kqueue: libsgrpc-kqueue was not built\n");
  return 77;
}
#else
#include "adapter_suite.h"

#include <sgrpc/kqueue.h>

static void *kqw_new(void) {
  sgrpc_kqueue *k = NULL;
  assert_int_equal(sgrpc_kqueue_new(&k, NULL), 0);
  return k;
}

static void kqw_del(void *p) { sgrpc_kqueue_del(p); }
static sgrpc_net_loop *kqw_net(void *p) { return sgrpc_kqueue_net(p); }
static void kqw_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_kqueue_run_once(p, timeout_ms) >= 0);
}
static int kqw_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_kqueue_listen(p, o, ps);
}
static int kqw_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_kqueue_channel_new(p, o, pch);
}
static int kqw_signals(void *p) { return sgrpc_kqueue_catch_signals(p, NULL, NULL); }

int main(void) {
  static const suite_adapter kq_adapter = {
      "kqueue",   kqw_new,     kqw_del, kqw_net, sgrpc_kqueue_now, kqw_run_once,
      kqw_listen, kqw_channel, kqw_signals, 0,
  };
  return adapter_suite_run(&kq_adapter);
}
#endif
