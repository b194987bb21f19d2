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

typedef struct uv_after {
  uv_timer_t t;
  void (*cb)(void *);
  void *ud;
} uv_after;

static void *uvw_new(void) {
  uv_world *x = calloc(1, sizeof(*x));
  assert_non_null(x);
  assert_int_equal(uv_loop_init(&x->loop), 0);
  assert_int_equal(sgrpc_uv_new(&x->u, &x->loop), 0);
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

static sgrpc_ac_hub *uvw_hub(void *p) { return sgrpc_uv_hub(((uv_world *)p)->u); }

static void guard_cb(uv_timer_t *t) { (void)t; }

static void uvw_run_once(void *p, int timeout_ms) {
  uv_world *x = p;
  uv_timer_start(&x->guard, guard_cb, (uint64_t)timeout_ms, 0);
  uv_run(&x->loop, UV_RUN_ONCE);
  uv_timer_stop(&x->guard);
}

static int uvw_listen(void *p, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  return sgrpc_uv_listen(((uv_world *)p)->u, o, ps);
}

static int uvw_channel(void *p, const sgrpc_ac_channel_opts *o, sgrpc_ac_channel **pch) {
  return sgrpc_uv_channel_new(((uv_world *)p)->u, o, pch);
}

static int uvw_signals(void *p) { return sgrpc_uv_catch_signals(((uv_world *)p)->u, NULL, NULL); }

static void after_close(uv_handle_t *h) { free(h->data); }

static void after_fire(uv_timer_t *t) {
  uv_after *a = t->data;
  a->cb(a->ud);
  uv_close((uv_handle_t *)&a->t, after_close);
}

static int uvw_after(void *p, int64_t delay_ns, void (*cb)(void *), void *ud) {
  uv_world *x = p;
  uv_after *a = calloc(1, sizeof(*a));
  if (!a) return -1;
  a->cb = cb;
  a->ud = ud;
  uv_timer_init(&x->loop, &a->t);
  a->t.data = a;
  return uv_timer_start(&a->t, after_fire, (uint64_t)(delay_ns / 1000000), 0);
}

int main(void) {
  static const suite_adapter uv_adapter = {
      "libuv", uvw_new, uvw_del, uvw_hub, sgrpc_uv_now, uvw_run_once,
      uvw_listen, uvw_channel, uvw_signals, uvw_after,
  };
  return adapter_suite_run(&uv_adapter);
}
#endif
