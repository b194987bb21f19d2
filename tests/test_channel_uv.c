/*
 * The channel suite (tests/channel_suite.h) over libsgrpc-uv.
 */
#define _GNU_SOURCE
#include "channel_suite.h"

#include <sgrpc/uv.h>

typedef struct uv_world {
  uv_loop_t loop;
  sgrpc_uv *u;
  uv_timer_t guard; /* bounds one run_once */
} uv_world;

static void *uw_new(const sgrpc_mem *mem) {
  uv_world *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  assert_int_equal(uv_loop_init(&x->loop), 0);
  if (sgrpc_uv_new(&x->u, &x->loop, mem) != 0) {
    assert_int_equal(uv_loop_close(&x->loop), 0);
    free(x);
    return NULL;
  }
  uv_timer_init(&x->loop, &x->guard);
  return x;
}

static void uw_del(void *p) {
  uv_world *x = p;
  int i;
  sgrpc_uv_del(x->u);
  uv_close((uv_handle_t *)&x->guard, NULL);
  for (i = 0; i < 1000 && uv_run(&x->loop, UV_RUN_NOWAIT) != 0; i++) {
  }
  assert_int_equal(uv_loop_close(&x->loop), 0);
  free(x);
}

static sgrpc_net_loop *uw_net(void *p) { return sgrpc_uv_net(((uv_world *)p)->u); }
static void guard_cb(uv_timer_t *t) { (void)t; }
static void uw_run_once(void *p, int timeout_ms) {
  uv_world *x = p;
  uv_timer_start(&x->guard, guard_cb, (uint64_t)timeout_ms, 0);
  uv_run(&x->loop, UV_RUN_ONCE);
  uv_timer_stop(&x->guard);
}
static int uw_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_uv_listen(((uv_world *)p)->u, o, ps);
}
static int uw_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_uv_channel_new(((uv_world *)p)->u, o, pch);
}

int main(void) {
  static const chs_adapter a = {"channel_uv",   uw_new,      uw_del,    uw_net,
                                sgrpc_uv_now,   uw_run_once, uw_listen, uw_channel};
  return channel_suite_run(&a);
}
