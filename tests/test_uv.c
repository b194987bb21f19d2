/*
 * The adapter suite (tests/adapter_suite.h) over libsgrpc-uv: each test
 * runs a uv_loop_t of its own, driven one turn at a time.
 */
#define _GNU_SOURCE
#include <stdio.h>

#ifndef SGRPC_HAVE_UV
int main(void) {
  fprintf(stderr, "test_uv: libsgrpc-uv was not built (libuv missing)\n");
  return 77;
}
#else
#include "adapter_suite.h"

#include <sgrpc/uv.h>

typedef struct uv_world {
  uv_loop_t loop;
  sgrpc_uv *u;
  uv_timer_t guard; /* bounds one run_once */
} uv_world;

static void *uvw_new(void) {
  uv_world *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  assert_int_equal(uv_loop_init(&x->loop), 0);
  assert_int_equal(sgrpc_uv_new(&x->u, &x->loop, NULL), 0);
  uv_timer_init(&x->loop, &x->guard);
  return x;
}

static void uvw_del(void *p) {
  uv_world *x = p;
  int i;
  sgrpc_uv_del(x->u);
  uv_close((uv_handle_t *)&x->guard, NULL);
  /* Close callbacks (and cancelled requests) complete here; bounded. */
  for (i = 0; i < 1000 && uv_run(&x->loop, UV_RUN_NOWAIT) != 0; i++) {
  }
  assert_int_equal(uv_loop_close(&x->loop), 0);
  free(x);
}

static sgrpc_net_loop *uvw_net(void *p) { return sgrpc_uv_net(((uv_world *)p)->u); }

static void guard_cb(uv_timer_t *t) { (void)t; }

static void uvw_run_once(void *p, int timeout_ms) {
  uv_world *x = p;
  uv_timer_start(&x->guard, guard_cb, (uint64_t)timeout_ms, 0);
  uv_run(&x->loop, UV_RUN_ONCE);
  uv_timer_stop(&x->guard);
}

static int uvw_listen(void *p, const sgrpc_net_listen_opts *o, sgrpc_net_server **ps) {
  return sgrpc_uv_listen(((uv_world *)p)->u, o, ps);
}

static int uvw_channel(void *p, const sgrpc_net_channel_opts *o, sgrpc_net_channel **pch) {
  return sgrpc_uv_channel_new(((uv_world *)p)->u, o, pch);
}

static int uvw_signals(void *p) { return sgrpc_uv_catch_signals(((uv_world *)p)->u, NULL, NULL); }

int main(void) {
  static const suite_adapter uv_adapter = {
      "libuv", uvw_new, uvw_del, uvw_net, sgrpc_uv_now, uvw_run_once,
      uvw_listen, uvw_channel, uvw_signals,
  };
  return adapter_suite_run(&uv_adapter);
}
#endif
