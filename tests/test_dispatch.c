/*
 * The per-call dispatcher (sgrpc_call_opts.on_event, sgrpc_call_set_callback,
 * sgrpc_event_dispatch) over the in-memory pair: a client call with a
 * callback gets every event of its life with its user_data and the
 * puller's now; a server takes a call over from SGRPC_EV_CALL_NEW and its
 * callback gets the rest; events of calls without a callback, and
 * connection events, are left to the puller (dispatch returns 0); the
 * puller releases each call after its CLOSE and nothing leaks, also when
 * allocations fail.
 */
#include "support.h"

#include <string.h>

#define MAX_EV 32

/* What one callback (or the puller's own handler) saw. */
typedef struct seen {
  sgrpc_event_type types[MAX_EV];
  int n;
  int bad_user_data; /* a callback got a user_data other than its own */
  int bad_now;       /* ... or a now other than the puller's */
  int status;        /* code of the CLOSE, -1 before */
  sgrpc_call *call;  /* the call the events were for */
} seen;

typedef struct world {
  pair *p;
  int strict;       /* assert on every step (off while allocations fail) */
  seen cli_cb;      /* client call 1, by its callback */
  seen srv_cb;      /* its server side, by the callback set at CALL_NEW */
  seen cli_plain;   /* client call 2 (no callback), by the puller */
  seen srv_plain;   /* its server side, by the puller */
  seen srv_drop;    /* server side of call 3: callback removed on MESSAGE */
  seen srv_drop_rest;
  int conn_events;  /* READY and other connection events at the puller */
  int dispatched, undispatched;
} world;

static void note(seen *s, const sgrpc_event *ev) {
  if (s->n < MAX_EV) s->types[s->n] = ev->type;
  s->n++;
  s->call = ev->call;
  if (ev->type == SGRPC_EV_CLOSE) s->status = ev->u.close.status.code;
}

static void check_ctx(world *w, seen *s, void *user_data, int64_t now) {
  if (user_data != s) s->bad_user_data++;
  if (now != w->p->now) s->bad_now++;
}

/* The server answers every call the same way: one message back and
 * status OK once the client half-closed. */
static void server_reply(world *w, sgrpc_call *call) {
  static const uint8_t msg[] = "pong";
  sgrpc_status st;
  int rv;
  memset(&st, 0, sizeof(st));
  rv = sgrpc_call_send(call, msg, sizeof(msg) - 1, 0);
  if (w->strict) assert_int_equal(rv, 0);
  rv = sgrpc_call_send_status(call, &st);
  if (w->strict) assert_int_equal(rv, 0);
}

static world *g_world; /* the callbacks' way back to the test's state */

static void cli_cb(const sgrpc_event *ev, void *user_data, int64_t now) {
  world *w = g_world;
  check_ctx(w, &w->cli_cb, user_data, now);
  note(&w->cli_cb, ev);
}

static void srv_cb(const sgrpc_event *ev, void *user_data, int64_t now) {
  world *w = g_world;
  check_ctx(w, &w->srv_cb, user_data, now);
  note(&w->srv_cb, ev);
  if (ev->type == SGRPC_EV_HALF_CLOSE) server_reply(w, ev->call);
}

/* Server side of call 3: gives the call back to the puller on its first
 * message (the rest arrive undispatched). */
static void srv_drop_cb(const sgrpc_event *ev, void *user_data, int64_t now) {
  world *w = g_world;
  check_ctx(w, &w->srv_drop, user_data, now);
  note(&w->srv_drop, ev);
  if (ev->type == SGRPC_EV_MESSAGE) sgrpc_call_set_callback(ev->call, NULL, &w->srv_drop_rest);
}

/* The puller: the loop of the header's example. */
static void puller(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  if (sgrpc_event_dispatch(ev, p->now)) {
    w->dispatched++;
  } else {
    w->undispatched++;
    if (!ev->call) {
      w->conn_events++;
    } else if (conn == p->srv) {
      if (ev->type == SGRPC_EV_CALL_NEW) {
        const char *path = ev->u.call_new.path;
        if (strcmp(path, "/t.D/Callback") == 0) {
          sgrpc_call_set_callback(ev->call, srv_cb, &w->srv_cb);
          note(&w->srv_cb, ev); /* CALL_NEW itself came to the puller */
        } else if (strcmp(path, "/t.D/Drop") == 0) {
          sgrpc_call_set_callback(ev->call, srv_drop_cb, &w->srv_drop);
          note(&w->srv_drop, ev);
        } else {
          sgrpc_call_set_user_data(ev->call, &w->srv_plain);
          note(&w->srv_plain, ev);
        }
      } else {
        seen *s = ev->call_user_data;
        if (s == &w->srv_plain || s == &w->srv_drop_rest) {
          note(s, ev);
          if (ev->type == SGRPC_EV_HALF_CLOSE) server_reply(w, ev->call);
        } else if (w->strict) {
          fail_msg("server event %d of call with user_data %p undispatched", ev->type, (void *)s);
        }
      }
    } else {
      note(&w->cli_plain, ev);
      if (w->strict) assert_ptr_equal(ev->call_user_data, &w->cli_plain);
    }
  }
  /* the one rule: the puller releases after CLOSE, callbacks never do */
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static int start(world *w, const char *path, sgrpc_call_cb cb, void *ud, sgrpc_call **call) {
  sgrpc_call_opts o;
  static const uint8_t msg[] = "ping";
  int rv;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.on_event = cb;
  o.user_data = ud;
  *call = NULL;
  rv = sgrpc_call_start(w->p->cli, &o, w->p->now, call);
  if (rv) return rv;
  rv = sgrpc_call_send(*call, msg, sizeof(msg) - 1, 0);
  if (rv == 0) rv = sgrpc_call_send(*call, msg, sizeof(msg) - 1, SGRPC_SEND_END);
  return rv;
}

static void expect(const seen *s, const sgrpc_event_type *want, int n) {
  int i;
  if (s->n != n) fail_msg("saw %d events, want %d", s->n, n);
  for (i = 0; i < n; i++) {
    if (s->types[i] != want[i]) fail_msg("event %d is type %d, want %d", i, s->types[i], want[i]);
  }
  assert_int_equal(s->bad_user_data, 0);
  assert_int_equal(s->bad_now, 0);
}

/* One run of the scenario. Returns 0 when it went through, or the first
 * error (only while allocations fail). */
static int scenario(world *w, pair *p, const sgrpc_mem *mem) {
  sgrpc_call *c1 = NULL, *c2 = NULL, *c3 = NULL;
  int rv, i;
  memset(w, 0, sizeof(*w));
  w->strict = mem == NULL;
  w->cli_cb.status = w->srv_cb.status = w->cli_plain.status = -1;
  w->srv_plain.status = w->srv_drop.status = w->srv_drop_rest.status = -1;
  g_world = w;
  rv = pair_init(p, NULL, NULL, mem);
  if (rv) return rv;
  w->p = p;
  p->on_event = puller;
  p->ud = w;
  pair_run(p, 100);
  rv = start(w, "/t.D/Callback", cli_cb, &w->cli_cb, &c1);
  if (rv == 0) rv = start(w, "/t.D/Plain", NULL, &w->cli_plain, &c2);
  if (rv == 0) rv = start(w, "/t.D/Drop", NULL, &w->cli_plain, &c3);
  /* time moves between pulls: callbacks must see the puller's now */
  for (i = 0; i < 50; i++) {
    p->now += 1000;
    if (!pair_run(p, 1)) break;
  }
  pair_run(p, 1000);
  return rv;
}

static void test_dispatch_routes_events(void **state) {
  static const sgrpc_event_type cli_want[] = {SGRPC_EV_HEADERS, SGRPC_EV_MESSAGE, SGRPC_EV_CLOSE};
  static const sgrpc_event_type srv_want[] = {SGRPC_EV_CALL_NEW, SGRPC_EV_MESSAGE,
                                              SGRPC_EV_MESSAGE, SGRPC_EV_HALF_CLOSE,
                                              SGRPC_EV_CLOSE};
  static const sgrpc_event_type drop_want[] = {SGRPC_EV_CALL_NEW, SGRPC_EV_MESSAGE};
  static const sgrpc_event_type drop_rest_want[] = {SGRPC_EV_MESSAGE, SGRPC_EV_HALF_CLOSE,
                                                    SGRPC_EV_CLOSE};
  world w;
  pair p;
  (void)state;
  assert_int_equal(scenario(&w, &p, NULL), 0);
  expect(&w.cli_cb, cli_want, 3);
  assert_int_equal(w.cli_cb.status, SGRPC_STATUS_OK);
  expect(&w.srv_cb, srv_want, 5);
  assert_int_equal(w.srv_cb.status, SGRPC_STATUS_OK);
  expect(&w.srv_plain, srv_want, 5);
  expect(&w.srv_drop, drop_want, 2);
  expect(&w.srv_drop_rest, drop_rest_want, 3);
  /* calls 2 and 3 have no client callback: HEADERS, MESSAGE, CLOSE each */
  assert_int_equal(w.cli_plain.n, 6);
  /* READY on both ends went to the puller */
  assert_int_equal(w.conn_events, 2);
  /* dispatched: call 1's 3 + 4, call 3's 1 */
  assert_int_equal(w.dispatched, 3 + 4 + 1);
  /* every call was released by the puller after its CLOSE */
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
}

/* The dispatcher's own contract: no call or no callback is 0; a modified
 * copy of an event carries its own user_data to the callback. */
static int copy_hits;
static void *copy_ud;
static void copy_cb(const sgrpc_event *ev, void *user_data, int64_t now) {
  (void)ev;
  copy_hits++;
  copy_ud = user_data;
  assert_true(now == 77);
}

static void test_dispatch_contract(void **state) {
  pair p;
  sgrpc_call_opts o;
  sgrpc_call *call;
  sgrpc_event ev;
  int tag1, tag2;
  (void)state;
  assert_int_equal(sgrpc_event_dispatch(NULL, 0), 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = SGRPC_EV_READY;
  assert_int_equal(sgrpc_event_dispatch(&ev, 0), 0);

  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  memset(&o, 0, sizeof(o));
  o.path = "/t.D/Copy";
  o.user_data = &tag1;
  assert_int_equal(sgrpc_call_start(p.cli, &o, p.now, &call), 0);
  ev.type = SGRPC_EV_MESSAGE;
  ev.call = call;
  ev.call_user_data = &tag1;
  assert_int_equal(sgrpc_event_dispatch(&ev, 77), 0); /* no callback yet */
  sgrpc_call_set_callback(call, copy_cb, &tag2);
  assert_ptr_equal(sgrpc_call_get_user_data(call), &tag2);
  assert_int_equal(sgrpc_event_dispatch(&ev, 77), 1);
  assert_int_equal(copy_hits, 1);
  assert_ptr_equal(copy_ud, &tag1); /* the event's, not the call's */
  sgrpc_call_set_callback(call, NULL, NULL);
  assert_int_equal(sgrpc_event_dispatch(&ev, 77), 0);
  assert_int_equal(copy_hits, 1);
  sgrpc_call_set_callback(NULL, copy_cb, NULL); /* no-op */
  sgrpc_call_release(call);
  pair_free(&p);
}

/* With allocations failing one at a time, the same scenario ends without
 * a leak: whatever got its CLOSE was released by the puller, the rest goes
 * with the connections. */
static void test_dispatch_no_leak(void **state) {
  world w;
  pair p;
  failmem fm;
  sgrpc_mem mem;
  long total, k;
  (void)state;
  failmem_init(&fm, &mem);
  assert_int_equal(scenario(&w, &p, &mem), 0);
  assert_int_equal(w.cli_cb.status, SGRPC_STATUS_OK);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
  assert_int_equal(fm.live, 0);
  total = fm.count;
  assert_true(total > 10);
  for (k = 1; k <= total; k++) {
    failmem_init(&fm, &mem);
    fm.fail_at = k;
    scenario(&w, &p, &mem);
    pair_free(&p);
    if (fm.live != 0) fail_msg("allocation %ld of %ld failing: %ld blocks leaked", k, total, fm.live);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dispatch_routes_events),
      cmocka_unit_test(test_dispatch_contract),
      cmocka_unit_test(test_dispatch_no_leak),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
