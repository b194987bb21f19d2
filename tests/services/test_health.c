/*
 * <sgrpc/health.h> on the in-memory pair, called through sgrpc's own
 * client stubs (generated with the library from grpc/health/v1/health.proto):
 * Check for set, changed, removed and unknown services; Watch streams that
 * start with the current status (SERVICE_UNKNOWN for an unknown service,
 * stream kept open), get every change at once and never a duplicate;
 * deleting the object or losing the connection while Watch streams are
 * open; and every allocation of the object failed in turn.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <sgrpc/health.h>

#include "grpc/health/v1/health.sgrpc.h"

typedef Grpc__Health__V1__HealthCheckRequest Req;
typedef Grpc__Health__V1__HealthCheckResponse Resp;

typedef struct world {
  pair p;
  sgrpc_router *router;
  sgrpc_health *health;
  sgrpc_rpc_client client;
  int dispatch_err;
} world;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv = conn == p->srv ? sgrpc_router_dispatch(w->router, conn, ev, p->now)
                          : sgrpc_event_dispatch(ev, p->now);
  if (rv < 0) w->dispatch_err = rv;
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call); /* the puller releases */
}

/* health_mem: the health object's allocator (NULL: libc). */
static void world_init_with(world *w, const sgrpc_mem *health_mem, const sgrpc_settings *cs,
                            const sgrpc_settings *ss) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, cs, ss, NULL), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  w->p.max_split = 5;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  assert_int_equal(sgrpc_health_new(&w->health, health_mem), 0);
  assert_int_equal(sgrpc_health_register(w->health, w->router), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, NULL);
}

static void world_init(world *w, const sgrpc_mem *health_mem) {
  world_init_with(w, health_mem, NULL, NULL);
}

static void world_free(world *w) {
  assert_int_equal(w->dispatch_err, 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_health_del(w->health);
  sgrpc_router_del(w->router);
}

/* ---- client side ---- */

typedef struct result {
  int done, code, n;
  int vals[16];
  char message[128];
} result;

static void check_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Resp *reply,
                       void *ud) {
  result *r = ud;
  (void)call;
  r->done++;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%.*s", (int)st->message_len,
           st->message ? st->message : "");
  if (reply && r->n < 16) r->vals[r->n++] = reply->status;
}

static void watch_reply(sgrpc_client_call *call, const Resp *reply, void *ud) {
  result *r = ud;
  (void)call;
  if (r->n < 16) r->vals[r->n] = reply->status;
  r->n++;
}

static void check(world *w, const char *service, result *r) {
  Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  sgrpc_rpc_opts o;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  q.service = (char *)service;
  assert_int_equal(grpc__health__v1__health__check__call(&w->client, &q, &o, w->p.now, check_done,
                                                         NULL),
                   0);
  pair_run(&w->p, 200);
  assert_int_equal(r->done, 1);
}

static sgrpc_client_call *watch(world *w, const char *service, result *r) {
  Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call = NULL;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  q.service = (char *)service;
  assert_int_equal(grpc__health__v1__health__watch__call(&w->client, &q, &o, w->p.now,
                                                         watch_reply, check_done, &call),
                   0);
  pair_run(&w->p, 200);
  return call;
}

#define SERVING SGRPC_HEALTH_SERVING
#define NOT_SERVING SGRPC_HEALTH_NOT_SERVING
#define SERVICE_UNKNOWN SGRPC_HEALTH_SERVICE_UNKNOWN

static void test_check(void **state) {
  world w;
  result r;
  (void)state;
  world_init(&w, NULL);

  check(&w, "", &r); /* the whole server starts SERVING */
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.vals[0], SERVING);

  check(&w, "pkg.Svc", &r);
  assert_int_equal(r.code, SGRPC_STATUS_NOT_FOUND);
  assert_int_equal(r.n, 0);
  assert_string_equal(r.message, "unknown service");

  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", NOT_SERVING), 0);
  check(&w, "pkg.Svc", &r);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.vals[0], NOT_SERVING);
  assert_int_equal(sgrpc_health_get(w.health, "pkg.Svc"), NOT_SERVING);

  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVING), 0);
  assert_int_equal(sgrpc_health_set(w.health, "", NOT_SERVING), 0);
  check(&w, "pkg.Svc", &r);
  assert_int_equal(r.vals[0], SERVING);
  check(&w, "", &r);
  assert_int_equal(r.vals[0], NOT_SERVING);
  /* names are compared exactly */
  check(&w, "pkg.Sv", &r);
  assert_int_equal(r.code, SGRPC_STATUS_NOT_FOUND);

  /* removal: unknown again */
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVICE_UNKNOWN), 0);
  assert_int_equal(sgrpc_health_get(w.health, "pkg.Svc"), SERVICE_UNKNOWN);
  check(&w, "pkg.Svc", &r);
  assert_int_equal(r.code, SGRPC_STATUS_NOT_FOUND);
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVICE_UNKNOWN), 0);

  /* bad arguments */
  assert_int_equal(sgrpc_health_set(w.health, NULL, SERVING), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_set(NULL, "x", SERVING), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_set(w.health, "x", (sgrpc_health_status)4),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_set(w.health, "x", (sgrpc_health_status)-1),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_set_all(w.health, SERVICE_UNKNOWN), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_get(w.health, "x"), SERVICE_UNKNOWN);
  assert_int_equal(sgrpc_health_new(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_register(NULL, w.router), SGRPC_ERR_INVALID_ARGUMENT);
  /* the paths are taken already */
  assert_int_equal(sgrpc_health_register(w.health, w.router), SGRPC_ERR_INVALID_ARGUMENT);
  assert_string_equal(sgrpc_health_service()->name, "grpc.health.v1.Health");
  assert_int_equal(sgrpc_health_service()->n_methods, 2);
  world_free(&w);
}

static void test_watch(void **state) {
  world w;
  result a, b, all;
  sgrpc_client_call *ca, *cb, *call_all;
  (void)state;
  world_init(&w, NULL);

  /* unknown service: SERVICE_UNKNOWN, and the stream stays open */
  ca = watch(&w, "pkg.Svc", &a);
  assert_non_null(ca);
  assert_int_equal(a.n, 1);
  assert_int_equal(a.vals[0], SERVICE_UNKNOWN);
  assert_int_equal(a.done, 0);
  assert_int_equal(sgrpc_health_watch_count(w.health), 1);

  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVING), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 2);
  assert_int_equal(a.vals[1], SERVING);

  /* the same status again, or another service: nothing */
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVING), 0);
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Other", NOT_SERVING), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 2);

  /* a second watcher starts with the current status */
  cb = watch(&w, "pkg.Svc", &b);
  assert_non_null(cb);
  assert_int_equal(b.n, 1);
  assert_int_equal(b.vals[0], SERVING);
  call_all = watch(&w, "", &all);
  assert_int_equal(all.n, 1);
  assert_int_equal(all.vals[0], SERVING);
  assert_int_equal(sgrpc_health_watch_count(w.health), 3);

  /* two changes before the loop runs: both arrive, in order */
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", NOT_SERVING), 0);
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVING), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 4);
  assert_int_equal(a.vals[2], NOT_SERVING);
  assert_int_equal(a.vals[3], SERVING);
  assert_int_equal(b.n, 3);
  assert_int_equal(b.vals[1], NOT_SERVING);
  assert_int_equal(b.vals[2], SERVING);
  assert_int_equal(all.n, 1);

  /* set_all reaches "" and every service, once each */
  assert_int_equal(sgrpc_health_set_all(w.health, NOT_SERVING), 0);
  assert_int_equal(sgrpc_health_set_all(w.health, NOT_SERVING), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 5);
  assert_int_equal(a.vals[4], NOT_SERVING);
  assert_int_equal(all.n, 2);
  assert_int_equal(all.vals[1], NOT_SERVING);

  /* removal shows as SERVICE_UNKNOWN; the stream still stays */
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVICE_UNKNOWN), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 6);
  assert_int_equal(a.vals[5], SERVICE_UNKNOWN);
  assert_int_equal(a.done + b.done + all.done, 0);

  /* a cancelled watcher is forgotten; the others go on */
  assert_int_equal(sgrpc_client_call_cancel(ca), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_CANCELLED);
  assert_int_equal(sgrpc_health_watch_count(w.health), 2);
  assert_int_equal(sgrpc_health_set(w.health, "pkg.Svc", SERVING), 0);
  pair_run(&w.p, 200);
  assert_int_equal(a.n, 6);
  assert_int_equal(b.n, 6);
  assert_int_equal(b.vals[3], NOT_SERVING);
  assert_int_equal(b.vals[4], SERVICE_UNKNOWN);
  assert_int_equal(b.vals[5], SERVING);

  assert_int_equal(sgrpc_client_call_cancel(cb), 0);
  assert_int_equal(sgrpc_client_call_cancel(call_all), 0);
  pair_run(&w.p, 200);
  assert_int_equal(sgrpc_health_watch_count(w.health), 0);
  world_free(&w);
}

/* Deleting the object while Watch streams are open ends them with
 * UNAVAILABLE; the calls close cleanly afterwards. */
static void test_del_with_open_watches(void **state) {
  world w;
  result a, b;
  (void)state;
  world_init(&w, NULL);
  assert_non_null(watch(&w, "", &a));
  assert_non_null(watch(&w, "x", &b));
  assert_int_equal(sgrpc_health_watch_count(w.health), 2);
  sgrpc_health_del(w.health);
  w.health = NULL;
  pair_run(&w.p, 200);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_UNAVAILABLE);
  assert_string_equal(a.message, "health service stopped");
  assert_int_equal(b.done, 1);
  assert_int_equal(b.code, SGRPC_STATUS_UNAVAILABLE);
  world_free(&w);
}

/* The transport goes away under open Watch streams: their records go
 * with the calls' CLOSE, before the object is deleted. */
static void test_connection_lost(void **state) {
  world w;
  result a, b;
  (void)state;
  world_init(&w, NULL);
  assert_non_null(watch(&w, "", &a));
  assert_non_null(watch(&w, "", &b));
  assert_int_equal(sgrpc_health_watch_count(w.health), 2);
  sgrpc_conn_transport_closed(w.p.srv);
  sgrpc_conn_transport_closed(w.p.cli);
  pair_drain(&w.p, w.p.srv);
  pair_drain(&w.p, w.p.cli);
  assert_int_equal(sgrpc_health_watch_count(w.health), 0);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_UNAVAILABLE);
  /* changes after that reach nobody */
  assert_int_equal(sgrpc_health_set(w.health, "", NOT_SERVING), 0);
  world_free(&w);
}

/* A Watch peer that stops reading is ended instead of queueing forever. */
static void test_slow_watcher(void **state) {
  world w;
  result a;
  sgrpc_settings cs, ss;
  int i;
  (void)state;
  /* small windows and buffers, so the call's own queue is what grows */
  sgrpc_settings_default(&cs);
  sgrpc_settings_default(&ss);
  cs.stream_window = 65535;
  ss.max_send_buffer = 1024;
  world_init_with(&w, NULL, &cs, &ss);
  assert_non_null(watch(&w, "s", &a));
  for (i = 0; i < 80000; i++) {
    /* flip without letting the client read: 65535 bytes of window, 1 KiB
     * of engine buffer, then 2 bytes a message in the call's queue */
    assert_int_equal(sgrpc_health_set(w.health, "s", i % 2 ? SERVING : NOT_SERVING), 0);
  }
  pair_run(&w.p, 100000);
  assert_int_equal(a.done, 1);
  assert_int_equal(a.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
  /* everything queued before the end arrives, and no more */
  assert_true(a.n > 32 * 1024 && a.n < 80000);
  assert_int_equal(sgrpc_health_watch_count(w.health), 0);
  world_free(&w);
}

/* Every allocation of the health object fails in turn, in new, set and
 * Watch: each failure is a clear error (NOMEM, or RESOURCE_EXHAUSTED on
 * the wire), nothing leaks (failmem.live), and state stays consistent. */
static void test_alloc_failures(void **state) {
  long n, total = 0;
  (void)state;
  for (n = 1; n < 64; n++) {
    failmem fm;
    sgrpc_mem mem;
    world w;
    sgrpc_health *h = NULL;
    result r;
    int rv;
    failmem_init(&fm, &mem);
    fm.fail_at = n;
    rv = sgrpc_health_new(&h, &mem);
    if (rv < 0) {
      assert_int_equal(rv, SGRPC_ERR_NOMEM);
      assert_null(h);
      assert_int_equal(fm.live, 0);
      total += fm.failures;
      continue;
    }
    /* the world owns a separate router; the health object gets fm */
    memset(&w, 0, sizeof(w));
    assert_int_equal(pair_init(&w.p, NULL, NULL, NULL), 0);
    w.p.on_event = on_event;
    w.p.ud = &w;
    assert_int_equal(sgrpc_router_new(&w.router, NULL), 0);
    w.health = h;
    assert_int_equal(sgrpc_health_register(h, w.router), 0);
    sgrpc_rpc_client_init(&w.client, w.p.cli, NULL);

    rv = sgrpc_health_set(h, "a", SERVING);
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
    assert_int_equal(sgrpc_health_get(h, "a"), rv == 0 ? SERVING : SERVICE_UNKNOWN);
    rv = sgrpc_health_set(h, "b", NOT_SERVING);
    assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
    assert_int_equal(sgrpc_health_get(h, "b"), rv == 0 ? NOT_SERVING : SERVICE_UNKNOWN);
    watch(&w, "a", &r);
    if (r.done) {
      assert_int_equal(r.code, SGRPC_STATUS_RESOURCE_EXHAUSTED);
      assert_int_equal(sgrpc_health_watch_count(h), 0);
    } else {
      assert_int_equal(sgrpc_health_watch_count(h), 1);
      assert_int_equal(r.n, 1);
      rv = sgrpc_health_set(h, "a", NOT_SERVING);
      assert_true(rv == 0 || rv == SGRPC_ERR_NOMEM);
      pair_run(&w.p, 200);
      assert_int_equal(r.n, rv == 0 ? 2 : 1);
    }
    /* delete with the Watch possibly open, then let its call close */
    sgrpc_health_del(h);
    w.health = NULL;
    pair_run(&w.p, 200);
    assert_int_equal(fm.live, 0);
    total += fm.failures;
    world_free(&w);
    if (!fm.failures) break; /* every allocation was reached */
  }
  assert_true(n < 64);
  assert_true(total >= 4); /* new, "" entry, "a", "b", watch record */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_watch),
      cmocka_unit_test(test_del_with_open_watches),
      cmocka_unit_test(test_connection_lost),
      cmocka_unit_test(test_slow_watcher),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
