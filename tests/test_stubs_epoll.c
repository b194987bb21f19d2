/*
 * Generated stubs over the epoll adapter: the RouteGuide service
 * (examples/route_guide) served by a router fed from an epoll server's
 * event callback, and called through generated client functions bound to
 * an epoll channel (<sgrpc/net_rpc.h>). One process, one loop, TCP on
 * 127.0.0.1 at a port below 32768.
 *
 * Covers all four RPC kinds (one by one and all at once), a deadline
 * (server and client both see it end), an unknown method (UNIMPLEMENTED),
 * a start that fails after the channel took the call (no callback, no
 * leak), and that every rpc-layer allocation is freed (counted allocator;
 * ASan/LSan catch the rest).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/testing.h>

#include "route_guide_service.h"

#define MS 1000000LL
#define SEC 1000000000LL

typedef Routeguide__Point Point;
typedef Routeguide__Feature Feature;

/* ---- counting allocator (router and client memory) ---- */

static long live_allocs;

static void *c_malloc(size_t n, void *ud) {
  void *p = malloc(n ? n : 1);
  (void)ud;
  if (p) live_allocs++;
  return p;
}
static void c_free(void *p, void *ud) {
  (void)ud;
  if (p) live_allocs--;
  free(p);
}
static void *c_calloc(size_t n, size_t m, void *ud) {
  void *p = calloc(n ? n : 1, m ? m : 1);
  (void)ud;
  if (p) live_allocs++;
  return p;
}
static void *c_realloc(void *p, size_t n, void *ud) {
  void *q = realloc(p, n ? n : 1);
  (void)ud;
  if (q && !p) live_allocs++;
  return q;
}
static const sgrpc_mem counting_mem = {NULL, c_malloc, c_free, c_calloc, c_realloc};

/* ---- the world: loop, server, channel, client ---- */

typedef struct world {
  sgrpc_epoll *loop;
  sgrpc_net_server *srv;
  sgrpc_net_channel *ch;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  char addr[64];
  int server_closes; /* on_close of server calls */
  int last_server_close_code;
} world;

static world *g_world;

static void count_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud);

/* The example's handlers, with a close hook that counts server-side ends
 * and then runs the example's own cleanup. */
static Routeguide__RouteGuide_SgrpcServer impl;
static void (*example_on_close)(sgrpc_server_call *, const sgrpc_status_info *, void *);

static void count_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  g_world->server_closes++;
  g_world->last_server_close_code = st->code;
  example_on_close(call, st, ud);
}

static int setup(void **state) {
  static world w;
  sgrpc_net_listen_opts so;
  sgrpc_net_channel_opts co;
  int attempt, rv = -1;
  memset(&w, 0, sizeof(w));
  g_world = &w;
  live_allocs = 0;
  assert_int_equal(sgrpc_epoll_new(&w.loop, NULL), 0);
  assert_int_equal(sgrpc_router_new(&w.router, &counting_mem), 0);
  route_guide_service_init(&impl);
  example_on_close = impl.on_close;
  impl.on_close = count_close;
  assert_int_equal(routeguide__route_guide__sgrpc_register(w.router, &impl, NULL), 0);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = w.router;
  so.server.drain_timeout_ns = 10 * SEC;
  for (attempt = 0; attempt < 20; attempt++) {
    snprintf(w.addr, sizeof(w.addr), "127.0.0.1:%d",
             21000 + ((int)getpid() * 7 + attempt * 331) % 11000);
    so.listen = w.addr;
    rv = sgrpc_epoll_listen(w.loop, &so, &w.srv);
    if (rv == 0 || rv != SGRPC_ERR_SYSTEM(EADDRINUSE)) break;
  }
  if (rv != 0) fprintf(stderr, "listen %s: %d\n", w.addr, rv);
  assert_int_equal(rv, 0);
  assert_true(sgrpc_net_server_port(w.srv) > 0 && sgrpc_net_server_port(w.srv) < 32768);

  memset(&co, 0, sizeof(co));
  co.target = w.addr;
  assert_int_equal(sgrpc_epoll_channel_new(w.loop, &co, &w.ch), 0);
  sgrpc_net_rpc_client_init(&w.client, w.ch, &counting_mem);
  *state = &w;
  return 0;
}

static int teardown(void **state) {
  world *w = *state;
  sgrpc_epoll_del(w->loop); /* channel, server, connections */
  sgrpc_router_del(w->router);
  /* Every server call, client call, queued message and unpacked message
   * of the rpc layer went back to the allocator. */
  assert_int_equal(live_allocs, 0);
  g_world = NULL;
  return 0;
}

/* Runs the loop until *flag reaches want, for at most limit_ns. */
static void run_until(world *w, const int *flag, int want, int64_t limit_ns) {
  int64_t end = sgrpc_epoll_now() + limit_ns;
  while (*flag < want && sgrpc_epoll_now() < end)
    assert_true(sgrpc_epoll_run_once(w->loop, 20) >= 0);
  assert_int_equal(*flag, want);
}

static sgrpc_rpc_opts opts_with(void *ud, int64_t timeout_ns) {
  sgrpc_rpc_opts o;
  memset(&o, 0, sizeof(o));
  o.deadline = sgrpc_epoll_now() + timeout_ns;
  o.user_data = ud;
  return o;
}

/* ---- per-call results ---- */

typedef struct result {
  int closed;
  int code;
  char message[128];
  int n_msgs;        /* streamed replies */
  int32_t last_lat;  /* of the last reply */
  char name[128];    /* GetFeature: the feature name */
  Routeguide__RouteSummary summary;
} result;

static void take_status(result *r, const sgrpc_status_info *st) {
  size_t n = st->message_len < sizeof(r->message) - 1 ? st->message_len : sizeof(r->message) - 1;
  r->closed++;
  r->code = st->code;
  if (n) memcpy(r->message, st->message, n);
  r->message[n] = 0;
}

static void feature_done(sgrpc_client_call *c, const sgrpc_status_info *st, const Feature *f,
                         void *ud) {
  result *r = ud;
  (void)c;
  take_status(r, st);
  if (f) {
    snprintf(r->name, sizeof(r->name), "%s", f->name);
    r->last_lat = f->location ? f->location->latitude : 0;
  }
}

static void feature_msg(sgrpc_client_call *c, const Feature *f, void *ud) {
  result *r = ud;
  (void)c;
  r->n_msgs++;
  r->last_lat = f->location->latitude;
}

static void summary_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                         const Routeguide__RouteSummary *s, void *ud) {
  result *r = ud;
  (void)c;
  take_status(r, st);
  if (s) r->summary = *s;
}

static void note_msg(sgrpc_client_call *c, const Routeguide__RouteNote *n, void *ud) {
  result *r = ud;
  (void)c;
  r->n_msgs++;
  snprintf(r->name, sizeof(r->name), "%s", n->message);
}

static void note_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                      const Routeguide__RouteNote *n, void *ud) {
  (void)c;
  (void)n;
  take_status(ud, st);
}

/* ---- starting each kind ---- */

static void start_get_feature(world *w, result *r, int32_t lat, int32_t lon) {
  Point p = ROUTEGUIDE__POINT__INIT;
  sgrpc_rpc_opts o = opts_with(r, 5 * SEC);
  p.latitude = lat;
  p.longitude = lon;
  assert_int_equal(routeguide__route_guide__get_feature__call(&w->client, &p, &o,
                                                              sgrpc_epoll_now(), feature_done,
                                                              NULL),
                   0);
}

static void start_list(world *w, result *r) {
  Routeguide__Rectangle rect = ROUTEGUIDE__RECTANGLE__INIT;
  Point lo = ROUTEGUIDE__POINT__INIT, hi = ROUTEGUIDE__POINT__INIT;
  sgrpc_rpc_opts o = opts_with(r, 5 * SEC);
  /* Covers the first three features of the database, not the fourth
   * (latitude 419999544). */
  lo.latitude = 400000000;
  lo.longitude = -750000000;
  hi.latitude = 415000000;
  hi.longitude = -730000000;
  rect.lo = &lo;
  rect.hi = &hi;
  assert_int_equal(routeguide__route_guide__list_features__call(&w->client, &rect, &o,
                                                                sgrpc_epoll_now(), feature_msg,
                                                                feature_done, NULL),
                   0);
}

/* Sends every database feature, then an unknown point, and half-closes. */
static void start_record(world *w, result *r) {
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o = opts_with(r, 5 * SEC);
  size_t i;
  assert_int_equal(routeguide__route_guide__record_route__call(&w->client, &o, sgrpc_epoll_now(),
                                                               summary_done, &call),
                   0);
  assert_non_null(call);
  for (i = 0; i <= route_guide_n_features; i++) {
    Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = i < route_guide_n_features ? route_guide_features[i].lat : 1;
    p.longitude = i < route_guide_n_features ? route_guide_features[i].lon : 1;
    assert_int_equal(sgrpc_client_call_send(call, &p), 0);
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
}

/* Three notes at (5, 5) then one at (6, 6): the server echoes earlier
 * notes at the same place, so 0 + 1 + 2 + 0 = 3 come back. */
static void start_chat(world *w, result *r, int interleave) {
  static const char *texts[] = {"a", "b", "c", "d"};
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o = opts_with(r, 5 * SEC);
  int i;
  assert_int_equal(routeguide__route_guide__route_chat__call(&w->client, &o, sgrpc_epoll_now(),
                                                             note_msg, note_done, &call),
                   0);
  for (i = 0; i < 4; i++) {
    Routeguide__RouteNote n = ROUTEGUIDE__ROUTE_NOTE__INIT;
    Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = p.longitude = i < 3 ? 5 : 6;
    n.location = &p;
    n.message = (char *)texts[i];
    assert_int_equal(sgrpc_client_call_send(call, &n), 0);
    if (interleave) {
      /* Wait for the echo of each earlier note before the next one:
       * a real conversation over the socket. */
      run_until(w, &r->n_msgs, i < 3 ? i * (i + 1) / 2 : 3, 3 * SEC);
    }
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
}

/* ---- tests ---- */

static void test_unary(void **state) {
  world *w = *state;
  result a, b;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  start_get_feature(w, &a, route_guide_features[1].lat, route_guide_features[1].lon);
  start_get_feature(w, &b, 1, 2);
  run_until(w, &b.closed, 1, 5 * SEC);
  run_until(w, &a.closed, 1, 5 * SEC);
  assert_int_equal(a.code, SGRPC_STATUS_OK);
  assert_string_equal(a.name, route_guide_features[1].name);
  assert_int_equal(a.last_lat, route_guide_features[1].lat);
  assert_int_equal(b.code, SGRPC_STATUS_OK);
  assert_string_equal(b.name, "");
  assert_int_equal(b.last_lat, 1);
  run_until(w, &w->server_closes, 2, 2 * SEC);
}

/* One router serves the epoll server and an in-memory test channel at
 * the same time: each puller (the net layer, the test channel) releases
 * its own calls after their CLOSE, the router none. */
static void test_one_router_two_transports(void **state) {
  world *w = *state;
  sgrpc_test_channel *tc = NULL;
  sgrpc_test_channel_opts to;
  sgrpc_rpc_opts o;
  Point p = ROUTEGUIDE__POINT__INIT;
  result a, b;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memset(&to, 0, sizeof(to));
  to.mem = &counting_mem;
  assert_int_equal(sgrpc_test_channel_new(&tc, w->router, &to), 0);
  start_get_feature(w, &a, route_guide_features[1].lat, route_guide_features[1].lon);
  memset(&o, 0, sizeof(o));
  o.deadline = sgrpc_test_channel_now(tc) + 5 * SEC;
  o.user_data = &b;
  p.latitude = route_guide_features[0].lat;
  p.longitude = route_guide_features[0].lon;
  assert_int_equal(routeguide__route_guide__get_feature__call(sgrpc_test_channel_client(tc), &p,
                                                              &o, sgrpc_test_channel_now(tc),
                                                              feature_done, NULL),
                   0);
  assert_int_equal(sgrpc_test_channel_run(tc, 0), 0);
  assert_int_equal(b.closed, 1);
  assert_int_equal(b.code, SGRPC_STATUS_OK);
  assert_string_equal(b.name, route_guide_features[0].name);
  run_until(w, &a.closed, 1, 5 * SEC);
  assert_int_equal(a.code, SGRPC_STATUS_OK);
  assert_string_equal(a.name, route_guide_features[1].name);
  sgrpc_test_channel_del(tc);
  run_until(w, &w->server_closes, 2, 2 * SEC);
}

static void test_server_streaming(void **state) {
  world *w = *state;
  result r;
  memset(&r, 0, sizeof(r));
  start_list(w, &r);
  run_until(w, &r.closed, 1, 5 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.n_msgs, 3);
  assert_int_equal(r.last_lat, route_guide_features[2].lat);
}

static void test_client_streaming(void **state) {
  world *w = *state;
  result r;
  memset(&r, 0, sizeof(r));
  start_record(w, &r);
  run_until(w, &r.closed, 1, 5 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.summary.point_count, (int32_t)route_guide_n_features + 1);
  assert_int_equal(r.summary.feature_count, (int32_t)route_guide_n_features);
  assert_true(r.summary.distance > 0);
}

static void test_bidi(void **state) {
  world *w = *state;
  result r;
  memset(&r, 0, sizeof(r));
  start_chat(w, &r, 1);
  run_until(w, &r.closed, 1, 5 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.n_msgs, 3);
  assert_string_equal(r.name, "b"); /* the last echo: "b" for the third note */
}

/* All four kinds in flight together on the one connection. */
static void test_all_at_once(void **state) {
  world *w = *state;
  result u, s, c, b;
  memset(&u, 0, sizeof(u));
  memset(&s, 0, sizeof(s));
  memset(&c, 0, sizeof(c));
  memset(&b, 0, sizeof(b));
  start_chat(w, &b, 0);
  start_record(w, &c);
  start_list(w, &s);
  start_get_feature(w, &u, route_guide_features[3].lat, route_guide_features[3].lon);
  run_until(w, &u.closed, 1, 5 * SEC);
  run_until(w, &s.closed, 1, 5 * SEC);
  run_until(w, &c.closed, 1, 5 * SEC);
  run_until(w, &b.closed, 1, 5 * SEC);
  assert_int_equal(u.code, SGRPC_STATUS_OK);
  assert_string_equal(u.name, route_guide_features[3].name);
  assert_int_equal(s.code, SGRPC_STATUS_OK);
  assert_int_equal(s.n_msgs, 3);
  assert_int_equal(c.code, SGRPC_STATUS_OK);
  assert_int_equal(c.summary.point_count, (int32_t)route_guide_n_features + 1);
  assert_int_equal(b.code, SGRPC_STATUS_OK);
  assert_int_equal(b.n_msgs, 3);
  run_until(w, &w->server_closes, 4, 2 * SEC);
}

/* A RecordRoute that never half-closes: the server handler keeps waiting
 * for points, so the deadline ends the call on both sides. */
static void test_deadline(void **state) {
  world *w = *state;
  sgrpc_client_call *call = NULL;
  sgrpc_rpc_opts o;
  result r;
  Point p = ROUTEGUIDE__POINT__INIT;
  int64_t t0;
  memset(&r, 0, sizeof(r));
  o = opts_with(&r, 300 * MS);
  t0 = sgrpc_epoll_now();
  assert_int_equal(routeguide__route_guide__record_route__call(&w->client, &o, t0, summary_done,
                                                               &call),
                   0);
  p.latitude = route_guide_features[0].lat;
  p.longitude = route_guide_features[0].lon;
  assert_int_equal(sgrpc_client_call_send(call, &p), 0);
  run_until(w, &r.closed, 1, 3 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_true(sgrpc_epoll_now() - t0 >= 250 * MS);
  /* The server side ended too (its handler state freed by on_close). Both
   * ends time the same deadline (the server from grpc-timeout, starting a
   * little later), so the client's RST_STREAM CANCEL usually reaches the
   * server before its own timer fires: CANCELLED, or DEADLINE_EXCEEDED
   * when the server's timer wins. Never OK: no reply was sent. */
  run_until(w, &w->server_closes, 1, 3 * SEC);
  assert_true(w->last_server_close_code == SGRPC_STATUS_CANCELLED ||
              w->last_server_close_code == SGRPC_STATUS_DEADLINE_EXCEEDED);
}

static void unknown_done(sgrpc_client_call *c, const sgrpc_status_info *st, const void *reply,
                  void *ud) {
  (void)c;
  assert_null(reply);
  take_status(ud, st);
}

/* A method the server does not route. */
static void test_unknown_method(void **state) {
  world *w = *state;
  const sgrpc_method *gf =
      &routeguide__route_guide__sgrpc_methods[ROUTEGUIDE__ROUTE_GUIDE__SGRPC_GET_FEATURE];
  sgrpc_method nope = *gf;
  sgrpc_client_callbacks cb;
  sgrpc_rpc_opts o;
  result r;
  Point p = ROUTEGUIDE__POINT__INIT;
  memset(&r, 0, sizeof(r));
  memset(&cb, 0, sizeof(cb));
  nope.path = "/routeguide.RouteGuide/GetNothing";
  /* Plain (untyped) callbacks: the path is not one of the generated
   * client functions. */
  cb.on_close = unknown_done;
  o = opts_with(&r, 5 * SEC);
  assert_int_equal(sgrpc_rpc_call_start(&w->client, &nope, &p, &o, sgrpc_epoll_now(), &cb, NULL),
                   0);
  run_until(w, &r.closed, 1, 5 * SEC);
  assert_int_equal(r.code, SGRPC_STATUS_UNIMPLEMENTED);
  assert_string_equal(r.message, "Method not found: /routeguide.RouteGuide/GetNothing");
  /* The router's handlers never saw it. */
  assert_int_equal(w->server_closes, 0);
}

/* The channel took the call but sending the request failed (the
 * channel's connections may send at most 4 bytes per message): start
 * returns the error, no callback runs, and the call is cleaned up when the
 * adapter delivers its CLOSE. */
static void test_start_fails_after_channel_took_call(void **state) {
  world *w = *state;
  sgrpc_net_channel *small;
  sgrpc_net_channel_opts co;
  sgrpc_settings set;
  sgrpc_rpc_client client;
  result r, ok;
  Point p = ROUTEGUIDE__POINT__INIT;
  sgrpc_rpc_opts o;
  int64_t end;
  memset(&r, 0, sizeof(r));
  memset(&ok, 0, sizeof(ok));
  sgrpc_settings_default(&set);
  set.max_send_message_size = 4;
  memset(&co, 0, sizeof(co));
  co.target = w->addr;
  co.settings = &set;
  assert_int_equal(sgrpc_epoll_channel_new(w->loop, &co, &small), 0);
  sgrpc_net_rpc_client_init(&client, small, &counting_mem);
  p.latitude = 400000000;
  p.longitude = -750000000;
  o = opts_with(&r, 5 * SEC);
  assert_int_equal(routeguide__route_guide__get_feature__call(&client, &p, &o, sgrpc_epoll_now(),
                                                              feature_done, NULL),
                   SGRPC_ERR_MESSAGE_TOO_LARGE);
  /* A small request still goes through on the same channel. */
  p.latitude = 1;
  p.longitude = 0;
  o = opts_with(&ok, 5 * SEC);
  assert_int_equal(routeguide__route_guide__get_feature__call(&client, &p, &o, sgrpc_epoll_now(),
                                                              feature_done, NULL),
                   0);
  run_until(w, &ok.closed, 1, 5 * SEC);
  assert_int_equal(ok.code, SGRPC_STATUS_OK);
  /* Give the cancelled call's CLOSE time to pass; its callback never runs. */
  end = sgrpc_epoll_now() + 100 * MS;
  while (sgrpc_epoll_now() < end) assert_true(sgrpc_epoll_run_once(w->loop, 10) >= 0);
  assert_int_equal(r.closed, 0);
  sgrpc_net_channel_del(small);
  /* Only the small request reached a handler (the other never left the
   * client); teardown checks that nothing of either call is left. */
  run_until(w, &w->server_closes, 1, 2 * SEC);
  assert_int_equal(w->server_closes, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_router_two_transports, setup, teardown),
      cmocka_unit_test_setup_teardown(test_server_streaming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_streaming, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bidi, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_fails_after_channel_took_call, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
