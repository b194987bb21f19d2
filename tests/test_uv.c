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

/* libuv writes with write(2): a peer's reset must not kill the process
 * with SIGPIPE. sgrpc_uv_new ignores SIGPIPE while it is at its default
 * (the interop server died of it, exit status 141, when a grpc-go client
 * hung up during its graceful shutdown) and keeps an application's
 * handler. */
static volatile sig_atomic_t app_sigpipes;
static void app_handler(int signo) {
  (void)signo;
  app_sigpipes++;
}

static void test_sigpipe(void **state) {
  struct sigaction dfl, app, cur;
  uv_loop_t loop;
  sgrpc_uv *u;
  int sv[2];
  (void)state;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  assert_int_equal(sigaction(SIGPIPE, &dfl, NULL), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(sgrpc_uv_new(&u, &loop, NULL), 0);
  assert_int_equal(sigaction(SIGPIPE, NULL, &cur), 0);
  assert_true(cur.sa_handler == SIG_IGN);
  /* a write to a socket whose peer is gone now fails with EPIPE */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close(sv[1]);
  assert_int_equal(write(sv[0], "x", 1), -1);
  assert_int_equal(errno, EPIPE);
  close(sv[0]);
  sgrpc_uv_del(u);
  for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++) {
  }
  assert_int_equal(uv_loop_close(&loop), 0);
  /* an application's own handler stays */
  memset(&app, 0, sizeof(app));
  app.sa_handler = app_handler;
  assert_int_equal(sigaction(SIGPIPE, &app, NULL), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(sgrpc_uv_new(&u, &loop, NULL), 0);
  assert_int_equal(sigaction(SIGPIPE, NULL, &cur), 0);
  assert_true(cur.sa_handler == app_handler);
  sgrpc_uv_del(u);
  for (int i = 0; i < 1000 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++) {
  }
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_int_equal(sigaction(SIGPIPE, &dfl, NULL), 0);
}

int main(void) {
  static const struct CMUnitTest own[] = {cmocka_unit_test(test_sigpipe)};
  int rv;
  static const suite_adapter uv_adapter = {
      "libuv", uvw_new, uvw_del, uvw_net, sgrpc_uv_now, uvw_run_once,
      uvw_listen, uvw_channel, uvw_signals, 1,
  };
  rv = cmocka_run_group_tests_name("libuv adapter", own, NULL, NULL);
  return rv | adapter_suite_run(&uv_adapter);
}
#endif
