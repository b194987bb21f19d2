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

typedef struct kq_after {
  void (*cb)(void *);
  void *ud;
} kq_after;

static void *kqw_new(void) {
  sgrpc_kq_loop *loop = NULL;
  assert_int_equal(sgrpc_kq_loop_new(&loop), 0);
  return loop;
}

static void kqw_del(void *p) { sgrpc_kq_loop_del(p); }
static sgrpc_ac_hub *kqw_hub(void *p) { return sgrpc_kq_loop_hub(p); }
static void kqw_run_once(void *p, int timeout_ms) {
  assert_true(sgrpc_kq_loop_run_once(p, timeout_ms) >= 0);
}
static int kqw_listen(void *p, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  return sgrpc_kq_listen(p, o, ps);
}
static int kqw_channel(void *p, const sgrpc_ac_channel_opts *o, sgrpc_ac_channel **pch) {
  return sgrpc_kq_channel_new(p, o, pch);
}
static int kqw_signals(void *p) { return sgrpc_kq_catch_signals(p, NULL, NULL); }

static void after_fire(sgrpc_kq_loop *loop, void *ud) {
  kq_after *a = ud;
  (void)loop;
  a->cb(a->ud);
  free(a);
}

static int kqw_after(void *p, int64_t delay_ns, void (*cb)(void *), void *ud) {
  kq_after *a = calloc(1, sizeof(*a));
  if (!a) return -1;
  a->cb = cb;
  a->ud = ud;
  return sgrpc_kq_timer_start(p, delay_ns, after_fire, a, NULL);
}

int main(void) {
  static const suite_adapter kq_adapter = {
      "kqueue", kqw_new, kqw_del, kqw_hub, sgrpc_kq_now, kqw_run_once,
      kqw_listen, kqw_channel, kqw_signals, kqw_after,
  };
  return adapter_suite_run(&kq_adapter);
}
#endif
