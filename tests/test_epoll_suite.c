/*
 * The adapter suite (tests/adapter_suite.h) over libsgrpc-epoll. Servers
 * are the epoll adapter's own (sgrpc_epoll_server_new, mapped from the
 * suite's listen options); channels are the core's, made on the loop's
 * hub, so they connect through the epoll loop.
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

/* The epoll server hands its own conn type (the core's conn) to on_event;
 * the suite's listen options live in its world for the whole test. */
static void epw_event(sgrpc_epoll_conn *c, const sgrpc_event *ev, void *ud) {
  const sgrpc_ac_listen_opts *o = ud;
  o->server.on_event((sgrpc_ac_conn *)c, ev, o->server.user_data);
}

static int epw_listen(void *p, const sgrpc_ac_listen_opts *o, sgrpc_ac_server **ps) {
  sgrpc_epoll_server_opts so;
  sgrpc_epoll_server *s = NULL;
  int rv;
  assert_false(o->use_fd); /* not used by the suite; epoll has no such option */
  memset(&so, 0, sizeof(so));
  so.listen = o->listen;
  so.settings = o->server.settings;
  so.backlog = o->backlog;
  so.on_event = epw_event;
  so.user_data = (void *)o;
  so.drain_timeout_ns = o->server.drain_timeout_ns;
  so.make_filter = o->server.make_filter;
  so.filter_user_data = o->server.filter_user_data;
  rv = sgrpc_epoll_server_new(&s, p, &so);
  *ps = rv == 0 ? sgrpc_epoll_server_core(s) : NULL;
  return rv;
}

static void epw_server_del(void *p, sgrpc_ac_server *core) {
  (void)p;
  /* The core server's user_data is the epoll server wrapping it. */
  sgrpc_epoll_server_del(sgrpc_ac_server_user_data(core));
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
  suite_server_del = epw_server_del;
  return adapter_suite_run(&ep_adapter);
}
#endif
