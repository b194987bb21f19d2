/*
 * RPC layer end to end: every RPC kind through the stubs generated from
 * tests/codegen/protos/kinds.proto (the committed goldens), on the
 * in-memory pair, with random byte splits; unknown methods, handler
 * failures, deadlines, cancellation, metadata, codecs (raw, json subtype),
 * malformed messages, and allocation failures.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.sgrpc.h"
#include <sgrpc/events.h>

typedef Sgrpc__Test__Kinds__Num Num;
typedef Sgrpc__Test__Kinds__Num__Batch Batch;
typedef Sgrpc__Test__CommonTypes__Point Point;

/* ---- the world: pair + router + client ---- */

typedef struct world {
  pair p;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  int srv_closed;       /* on_close of the service */
  int last_srv_code;
  int dispatch_err;
  sgrpc_server_call *held; /* a call the server answers later */
  int saw_token;
  int keep_closed;     /* the puller forgets to release server calls */
  sgrpc_call *last_srv_closed; /* engine handle of the last server CLOSE */
  int hook_mode;       /* client calls go through hook_start (a fake adapter) */
  int hook_starts;
  int hook_fail;       /* nonzero: hook_start returns this */
  int srv_resumes;     /* count_down sends resumed from on_writable */
} world;

/* A fake adapter channel for sgrpc_rpc_client_init_transport: it starts
 * the call on the pair's client connection as an adapter's channel would;
 * the pair's puller (on_event) dispatches and releases, as adapters do. */
static int hook_start(void *ctx, const sgrpc_call_opts *opts, int64_t now, sgrpc_call **pcall) {
  world *w = ctx;
  int rv;
  if (w->hook_fail) return w->hook_fail;
  assert_non_null(opts->on_event);
  rv = sgrpc_call_start(w->p.cli, opts, now, pcall);
  if (rv == 0) w->hook_starts++;
  return rv;
}

/* Under the failing allocator, answers may fail with SGRPC_ERR_NOMEM;
 * elsewhere every answer must succeed. */
static int lenient;

/* The puller: router for the server, the engine's dispatcher for the
 * client; it releases every call after its CLOSE (the one rule). */
static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv;
  if (conn == p->srv)
    rv = sgrpc_router_dispatch(w->router, conn, ev, p->now);
  else
    rv = sgrpc_event_dispatch(ev, p->now);
  if (rv < 0) w->dispatch_err = rv;
  if (ev->call && !lenient) assert_int_equal(rv, 1);
  if (ev->type != SGRPC_EV_CLOSE) return;
  if (conn == p->srv) {
    w->last_srv_closed = ev->call;
    if (w->keep_closed) return;
  }
  sgrpc_call_release(ev->call);
}

/* ---- server implementation ---- */

static void check_ok(sgrpc_server_call *call, int rv) {
  if (!lenient) {
    assert_int_equal(rv, 0);
  } else if (rv < 0) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_INTERNAL, "send failed");
  }
}

static void srv_add_one(sgrpc_server_call *call, const Num *req, void *ud) {
  world *w = ud;
  Num out = SGRPC__TEST__KINDS__NUM__INIT;
  size_t n, i;
  const sgrpc_md *md = sgrpc_server_call_metadata(call, &n);
  for (i = 0; i < n; i++)
    if (strcmp(md[i].key, "x-token") == 0 && strcmp((const char *)md[i].value, "t0k") == 0)
      w->saw_token = 1;
  if (req->value < 0) {
    assert_int_equal(sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "negative"), 0);
    return;
  }
  if (req->value == 999) { /* answered later (or never: deadline) */
    w->held = call;
    return;
  }
  out.value = req->value + 1;
  check_ok(call, sgrpc_server_call_reply(call, &out));
}

/* count_down's place in its stream: the next value to send. */
typedef struct down_state {
  int64_t next;
} down_state;

/* Sends the values left until the engine pushes back (the rest goes from
 * on_writable), then the status. */
static void count_down_pump(sgrpc_server_call *call) {
  down_state *st = sgrpc_server_call_get_user_data(call);
  while (st->next > 0) {
    Num out = SGRPC__TEST__KINDS__NUM__INIT;
    int rv;
    out.value = st->next;
    rv = sgrpc_server_call_send(call, &out);
    if (rv == SGRPC_ERR_WOULDBLOCK) {
      /* at once again: still full, and nothing is lost */
      assert_int_equal(sgrpc_server_call_send(call, &out), SGRPC_ERR_WOULDBLOCK);
      return;
    }
    check_ok(call, rv);
    if (rv < 0) return;
    st->next--;
  }
  check_ok(call, sgrpc_server_call_finish(call, NULL));
}

static void srv_count_down(sgrpc_server_call *call, const Num *req, void *ud) {
  down_state *st = calloc(1, sizeof(*st));
  (void)ud;
  assert_non_null(st);
  st->next = req->value;
  sgrpc_server_call_set_user_data(call, st); /* freed by srv_on_close */
  count_down_pump(call);
}

/* The service's on_writable: only count_down streams more than a buffer. */
static void srv_on_writable(sgrpc_server_call *call, void *ud) {
  world *w = ud;
  assert_ptr_equal(sgrpc_server_call_method(call),
                   &sgrpc__test__kinds__calc__sgrpc_methods[SGRPC__TEST__KINDS__CALC__SGRPC_COUNT_DOWN]);
  w->srv_resumes++;
  count_down_pump(call);
}

typedef struct sum_state {
  int64_t sum, count;
} sum_state;

static void srv_sum(sgrpc_server_call *call, const Num *req, void *ud) {
  sum_state *st = sgrpc_server_call_get_user_data(call);
  (void)ud;
  if (!st) {
    st = calloc(1, sizeof(*st));
    sgrpc_server_call_set_user_data(call, st);
  }
  if (req) {
    st->sum += req->value;
    st->count++;
  } else {
    Batch out = SGRPC__TEST__KINDS__NUM__BATCH__INIT;
    int64_t vals[2];
    vals[0] = st->sum;
    vals[1] = st->count;
    out.n_values = 2;
    out.values = vals;
    assert_int_equal(sgrpc_server_call_reply(call, &out), 0);
  }
}

static void srv_twice(sgrpc_server_call *call, const Point *req, void *ud) {
  (void)ud;
  if (req) {
    Point out = SGRPC__TEST__COMMON_TYPES__POINT__INIT;
    out.x = req->x * 2;
    out.y = req->y * 2;
    assert_int_equal(sgrpc_server_call_send(call, &out), 0);
  } else {
    sgrpc_md md[1] = {SGRPC_MD_STR("x-done", "yes")};
    sgrpc_status st;
    memset(&st, 0, sizeof(st));
    st.md = md;
    st.md_count = 1;
    assert_int_equal(sgrpc_server_call_finish(call, &st), 0);
  }
}

static void srv_on_close(sgrpc_server_call *call, const sgrpc_status_info *status, void *ud) {
  world *w = ud;
  w->srv_closed++;
  w->last_srv_code = status->code;
  free(sgrpc_server_call_get_user_data(call));
  if (w->held == call) w->held = NULL;
}

static const Sgrpc__Test__Kinds__Calc_SgrpcServer calc_impl = {
    srv_add_one, srv_count_down, srv_sum, srv_twice, NULL /* label */, srv_on_close,
    srv_on_writable};

static void world_init(world *w, const sgrpc_settings *cs, const sgrpc_settings *ss,
                       const sgrpc_mem *mem) {
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, cs, ss, mem), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  w->p.max_split = 7;
  assert_int_equal(sgrpc_router_new(&w->router, mem), 0);
  assert_int_equal(sgrpc__test__kinds__calc__sgrpc_register(w->router, &calc_impl, w), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, mem);
}

static void world_free(world *w) {
  assert_int_equal(w->dispatch_err, 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_router_del(w->router);
}

/* ---- client side results ---- */

typedef struct result {
  int done;
  int code;
  char message[160];
  int64_t value;       /* unary reply, or sum */
  int64_t count;       /* client streaming count */
  int64_t replies;     /* streamed replies */
  int64_t expect_next; /* count down order check */
  int64_t xy_sum;
  char trailer[32];
  int had_reply;
  /* client streaming through on_writable */
  sgrpc_client_call *call;
  int64_t to_send, sent; /* requests value 3, 6, 9, ... */
  int blocked;           /* sends that returned SGRPC_ERR_WOULDBLOCK */
} result;

static void copy_status(result *r, const sgrpc_status_info *st) {
  size_t i;
  r->done++;
  r->code = st->code;
  snprintf(r->message, sizeof(r->message), "%s", st->message);
  for (i = 0; i < st->md_count; i++)
    if (strcmp(st->md[i].key, "x-done") == 0)
      snprintf(r->trailer, sizeof(r->trailer), "%s", (const char *)st->md[i].value);
}

static void add_one_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Num *reply,
                         void *ud) {
  result *r = ud;
  (void)call;
  copy_status(r, st);
  if (reply) {
    r->had_reply = 1;
    r->value = reply->value;
  }
}

static void count_down_reply(sgrpc_client_call *call, const Num *reply, void *ud) {
  result *r = ud;
  (void)call;
  assert_int_equal(reply->value, r->expect_next);
  r->expect_next--;
  r->replies++;
}

static void count_down_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Num *reply,
                            void *ud) {
  (void)call;
  assert_null(reply);
  copy_status(ud, st);
}

static void sum_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Batch *reply,
                     void *ud) {
  result *r = ud;
  (void)call;
  copy_status(r, st);
  if (reply) {
    assert_int_equal(reply->n_values, 2);
    r->had_reply = 1;
    r->value = reply->values[0];
    r->count = reply->values[1];
  }
}

static void twice_reply(sgrpc_client_call *call, const Point *reply, void *ud) {
  result *r = ud;
  (void)call;
  r->replies++;
  r->xy_sum += reply->x + reply->y;
}

static void twice_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Point *reply,
                       void *ud) {
  (void)call;
  assert_null(reply);
  copy_status(ud, st);
}

static void label_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Point *reply,
                       void *ud) {
  (void)call;
  assert_null(reply);
  copy_status(ud, st);
}

/* ---- tests ---- */

static void test_unary(void **state) {
  world w;
  int i;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  pair_run(&w.p, 100);
  for (i = 0; i < 20; i++) {
    result r;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    sgrpc_md md[1] = {SGRPC_MD_STR("x-token", "t0k")};
    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r;
    opts.md = md;
    opts.md_count = 1;
    req.value = 41 + i;
    assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now,
                                                              add_one_done, NULL),
                     0);
    pair_run(&w.p, 200);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, SGRPC_STATUS_OK);
    assert_true(r.had_reply);
    assert_int_equal(r.value, 42 + i);
  }
  assert_true(w.saw_token);
  assert_int_equal(w.srv_closed, 20);
  assert_int_equal(w.last_srv_code, SGRPC_STATUS_OK);
  world_free(&w);
}

/* The per-call compression option reaches the engine: an unknown name is
 * refused, gzip and deflate calls work end to end. */
static void test_unary_compressed(void **state) {
  world w;
  const char *const encs[] = {"gzip", "deflate"};
  int i;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  pair_run(&w.p, 100);
  {
    result r;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r;
    opts.encoding = "snappy";
    assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now,
                                                              add_one_done, NULL),
                     SGRPC_ERR_BAD_ENCODING);
  }
  for (i = 0; i < 2; i++) {
    result r;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r;
    opts.encoding = encs[i];
    req.value = 7;
    assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now,
                                                              add_one_done, NULL),
                     0);
    pair_run(&w.p, 200);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, SGRPC_STATUS_OK);
    assert_int_equal(r.value, 8);
  }
  world_free(&w);
}

/* The router never releases a handle: the puller does, after CLOSE. A
 * call whose CLOSE the puller does not release stays held by the engine. */
static void test_puller_releases(void **state) {
  world w;
  int i;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  pair_run(&w.p, 100);
  for (i = 0; i < 5; i++) {
    result r;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r;
    req.value = i;
    assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now,
                                                              add_one_done, NULL),
                     0);
    pair_run(&w.p, 200);
    assert_int_equal(r.code, SGRPC_STATUS_OK);
    assert_int_equal(r.value, i + 1);
  }
  assert_int_equal(w.srv_closed, 5);
  assert_int_equal(sgrpc_conn_call_count(w.p.srv), 0);
  /* one more call whose CLOSE the puller forgets to release */
  w.keep_closed = 1;
  {
    result r;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    memset(&r, 0, sizeof(r));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r;
    assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now,
                                                              add_one_done, NULL),
                     0);
    pair_run(&w.p, 200);
    assert_int_equal(r.code, SGRPC_STATUS_OK);
  }
  assert_int_equal(sgrpc_conn_call_count(w.p.srv), 1); /* nobody but the puller releases */
  sgrpc_call_release(w.last_srv_closed);
  assert_int_equal(sgrpc_conn_call_count(w.p.srv), 0);
  world_free(&w);
}

/* The transport hook: generated stubs start their calls through a fake
 * adapter that owns the handles; every kind works, the rpc layer never
 * releases those handles (a double release would trip ASan or the call
 * count), and a failing hook fails the start without callbacks. */
static void test_transport_hook(void **state) {
  world w;
  result r1, r2, r3, r4;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts o1, o2, o3, o4;
  sgrpc_client_call *c3 = NULL, *c4 = NULL;
  int i;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  w.hook_mode = 1;
  sgrpc_rpc_client_init_transport(&w.client, hook_start, &w, NULL);
  assert_null(w.client.conn);
  memset(&r1, 0, sizeof(r1));
  memset(&r2, 0, sizeof(r2));
  memset(&r3, 0, sizeof(r3));
  memset(&r4, 0, sizeof(r4));
  memset(&o1, 0, sizeof(o1));
  o2 = o3 = o4 = o1;
  o1.user_data = &r1;
  o2.user_data = &r2;
  o3.user_data = &r3;
  o4.user_data = &r4;
  req.value = 41;
  assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &o1, w.p.now,
                                                            add_one_done, NULL), 0);
  req.value = 5;
  r2.expect_next = 5;
  assert_int_equal(sgrpc__test__kinds__calc__count_down__call(&w.client, &req, &o2, w.p.now,
                                                               count_down_reply,
                                                               count_down_done, NULL), 0);
  assert_int_equal(sgrpc__test__kinds__calc__sum__call(&w.client, &o3, w.p.now, sum_done, &c3),
                   0);
  assert_int_equal(sgrpc__test__kinds__calc__twice__call(&w.client, &o4, w.p.now, twice_reply,
                                                          twice_done, &c4), 0);
  for (i = 1; i <= 3; i++) {
    Point pt = SGRPC__TEST__COMMON_TYPES__POINT__INIT;
    req.value = i;
    assert_int_equal(sgrpc_client_call_send(c3, &req), 0);
    pt.x = i;
    pt.y = i;
    assert_int_equal(sgrpc_client_call_send(c4, &pt), 0);
  }
  assert_int_equal(sgrpc_client_call_close_send(c3), 0);
  assert_int_equal(sgrpc_client_call_close_send(c4), 0);
  pair_run(&w.p, 100000);
  assert_int_equal(w.hook_starts, 4);
  assert_int_equal(r1.done, 1);
  assert_int_equal(r1.code, SGRPC_STATUS_OK);
  assert_int_equal(r1.value, 42);
  assert_int_equal(r2.done, 1);
  assert_int_equal(r2.code, SGRPC_STATUS_OK);
  assert_int_equal(r2.replies, 5);
  assert_int_equal(r3.done, 1);
  assert_int_equal(r3.code, SGRPC_STATUS_OK);
  assert_int_equal(r3.value, 6);
  assert_int_equal(r3.count, 3);
  assert_int_equal(r4.done, 1);
  assert_int_equal(r4.code, SGRPC_STATUS_OK);
  assert_int_equal(r4.replies, 3);
  assert_int_equal(r4.xy_sum, 24);
  /* a hook that refuses: the start fails, nothing runs */
  memset(&r1, 0, sizeof(r1));
  w.hook_fail = SGRPC_ERR_GOING_AWAY;
  assert_int_equal(sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &o1, w.p.now,
                                                            add_one_done, NULL),
                   SGRPC_ERR_GOING_AWAY);
  pair_run(&w.p, 100);
  assert_int_equal(r1.done, 0);
  world_free(&w); /* no call left on either connection */
}

static void test_unary_failure_status(void **state) {
  world w;
  result r;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts opts;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  req.value = -5;
  assert_int_equal(
      sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now, add_one_done, NULL),
      0);
  pair_run(&w.p, 200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_INVALID_ARGUMENT);
  assert_string_equal(r.message, "negative");
  assert_false(r.had_reply);
  world_free(&w);
}

static void test_server_streaming(void **state) {
  world w;
  result r;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts opts;
  sgrpc_settings ss;
  (void)state;
  /* a small send buffer: the handler resumes from on_writable */
  sgrpc_settings_default(&ss);
  ss.max_send_buffer = 1024;
  world_init(&w, NULL, &ss, NULL);
  w.p.max_split = 0;
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  req.value = 5000;
  r.expect_next = 5000;
  assert_int_equal(sgrpc__test__kinds__calc__count_down__call(&w.client, &req, &opts, w.p.now,
                                                               count_down_reply, count_down_done,
                                                               NULL),
                   0);
  pair_run(&w.p, 100000);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.replies, 5000);
  assert_int_equal(r.expect_next, 0);
  assert_true(w.srv_resumes > 0);
  world_free(&w);
}

/* Sends the requests left until the engine pushes back, then half-closes. */
static void sum_pump(sgrpc_client_call *call, void *ud) {
  result *r = ud;
  while (r->sent < r->to_send) {
    Num n = SGRPC__TEST__KINDS__NUM__INIT;
    int rv;
    n.value = (r->sent + 1) * 3;
    rv = sgrpc_client_call_send(call, &n);
    if (rv == SGRPC_ERR_WOULDBLOCK) {
      r->blocked++;
      assert_int_equal(sgrpc_client_call_send(call, &n), SGRPC_ERR_WOULDBLOCK);
      return;
    }
    assert_int_equal(rv, 0);
    r->sent++;
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
}

static void test_client_streaming(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts opts;
  sgrpc_client_call *call = NULL;
  sgrpc_settings cs;
  int64_t i, want = 0;
  (void)state;
  sgrpc_settings_default(&cs);
  cs.max_send_buffer = 256; /* the client's sends push back too */
  world_init(&w, &cs, NULL, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  assert_int_equal(
      sgrpc__test__kinds__calc__sum__call(&w.client, &opts, w.p.now, sum_done, &call), 0);
  assert_non_null(call);
  sgrpc_client_call_set_on_writable(call, sum_pump);
  for (i = 1; i <= 1000; i++) want += i * 3;
  r.to_send = 1000;
  sum_pump(call, &r);
  assert_true(r.blocked > 0);
  assert_true(r.sent < 1000);
  pair_run(&w.p, 100000);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_true(r.had_reply);
  assert_int_equal(r.value, want);
  assert_int_equal(r.count, 1000);
  world_free(&w);
}

static void test_bidi(void **state) {
  world w;
  result r;
  sgrpc_rpc_opts opts;
  sgrpc_client_call *call = NULL;
  int i;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  assert_int_equal(sgrpc__test__kinds__calc__twice__call(&w.client, &opts, w.p.now, twice_reply,
                                                          twice_done, &call),
                   0);
  for (i = 1; i <= 50; i++) {
    Point pt = SGRPC__TEST__COMMON_TYPES__POINT__INIT;
    Num wrong = SGRPC__TEST__KINDS__NUM__INIT;
    pt.x = i;
    pt.y = -2 * i;
    assert_int_equal(sgrpc_client_call_send(call, &wrong), SGRPC_ERR_INVALID_ARGUMENT);
    assert_int_equal(sgrpc_client_call_send(call, &pt), 0);
    pair_run(&w.p, 100);
    /* replies arrive while the stream is still open */
    assert_int_equal(r.replies, i);
  }
  assert_int_equal(r.done, 0);
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.trailer, "yes");
  assert_int_equal(r.xy_sum, -2 * (50 * 51 / 2));
  world_free(&w);
}

static void test_unknown_method(void **state) {
  world w;
  result r;
  Sgrpc__Test__CommonTypes__Point__Label lbl = SGRPC__TEST__COMMON_TYPES__POINT__LABEL__INIT;
  sgrpc_rpc_opts opts;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  lbl.text = "hi";
  assert_int_equal(
      sgrpc__test__kinds__calc__label__call(&w.client, &lbl, &opts, w.p.now, label_done, NULL), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_UNIMPLEMENTED);
  assert_string_equal(r.message, "Method not found: /sgrpc.test.kinds.Calc/Label");
  assert_int_equal(w.srv_closed, 0); /* not routed: no handler saw it */
  world_free(&w);
}

static void test_deadline_and_late_reply(void **state) {
  world w;
  result r, r2;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts opts;
  (void)state;
  world_init(&w, NULL, NULL, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  opts.deadline = w.p.now + 1000000000;
  req.value = 999;
  assert_int_equal(
      sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now, add_one_done, NULL),
      0);
  pair_run(&w.p, 200);
  assert_non_null(w.held);
  assert_int_equal(r.done, 0);
  pair_advance(&w.p, 2000000000);
  pair_run(&w.p, 200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_DEADLINE_EXCEEDED);
  assert_null(w.held); /* the server call ended and was freed */
  assert_int_equal(w.last_srv_code, SGRPC_STATUS_DEADLINE_EXCEEDED);

  /* a handler may answer later, from outside any callback */
  memset(&r2, 0, sizeof(r2));
  opts.user_data = &r2;
  opts.deadline = 0;
  assert_int_equal(
      sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now, add_one_done, NULL),
      0);
  pair_run(&w.p, 200);
  assert_non_null(w.held);
  {
    Num out = SGRPC__TEST__KINDS__NUM__INIT;
    out.value = 7;
    assert_int_equal(sgrpc_server_call_reply(w.held, &out), 0);
    assert_int_equal(sgrpc_server_call_reply(w.held, &out), SGRPC_ERR_INVALID_STATE);
  }
  pair_run(&w.p, 200);
  assert_int_equal(r2.done, 1);
  assert_int_equal(r2.code, SGRPC_STATUS_OK);
  assert_int_equal(r2.value, 7);
  world_free(&w);
}

static void cancel_reply(sgrpc_client_call *call, const Num *reply, void *ud) {
  result *r = ud;
  (void)reply;
  if (++r->replies == 3) assert_int_equal(sgrpc_client_call_cancel(call), 0);
}

static void test_cancel(void **state) {
  world w;
  result r;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts opts;
  sgrpc_settings ss;
  (void)state;
  sgrpc_settings_default(&ss);
  ss.max_send_buffer = 64;
  world_init(&w, NULL, &ss, NULL);
  w.p.max_split = 0;
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  req.value = 100000;
  assert_int_equal(sgrpc__test__kinds__calc__count_down__call(
                       &w.client, &req, &opts, w.p.now, cancel_reply, count_down_done, NULL),
                   0);
  pair_run(&w.p, 1000);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_CANCELLED);
  assert_true(r.replies >= 3 && r.replies < 100000);
  assert_int_equal(w.srv_closed, 1);
  assert_int_equal(w.last_srv_code, SGRPC_STATUS_CANCELLED);
  world_free(&w);
}

/* ---- codecs: raw bytes, a json subtype, malformed messages ---- */

static void raw_echo(sgrpc_server_call *call, const void *msg, void *ud) {
  const sgrpc_bytes *b = msg;
  (void)ud;
  assert_int_equal(sgrpc_server_call_reply(call, b), 0);
}

static void raw_done(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                     void *ud) {
  result *r = ud;
  (void)call;
  copy_status(r, st);
  if (reply) {
    const sgrpc_bytes *b = reply;
    r->had_reply = 1;
    r->value = (int64_t)b->len;
    snprintf(r->trailer, sizeof(r->trailer), "%.*s", (int)b->len, (const char *)b->data);
  }
}

static int raw_call(world *w, const sgrpc_method *m, const void *data, size_t len, result *r) {
  sgrpc_bytes b;
  sgrpc_client_callbacks cb;
  sgrpc_rpc_opts opts;
  memset(&cb, 0, sizeof(cb));
  memset(&opts, 0, sizeof(opts));
  memset(r, 0, sizeof(*r));
  cb.on_close = raw_done;
  opts.user_data = r;
  b.data = data;
  b.len = len;
  return sgrpc_rpc_call_start(&w->client, m, &b, &opts, w->p.now, &cb, NULL);
}

static void test_codecs(void **state) {
  world w;
  result r;
  static sgrpc_codec json_codec;
  static const sgrpc_method raw_m = {"/raw.Echo/Echo", NULL, NULL, 0, 0, &sgrpc_codec_raw};
  static sgrpc_method json_m = {"/json.Echo/Echo", NULL, NULL, 0, 0, &json_codec};
  /* the AddOne path, spoken with raw bytes by the client */
  sgrpc_method add_one_raw = sgrpc__test__kinds__calc__sgrpc_methods
      [SGRPC__TEST__KINDS__CALC__SGRPC_ADD_ONE];
  sgrpc_handler h;
  (void)state;
  json_codec = sgrpc_codec_raw;
  json_codec.content_subtype = "json";
  world_init(&w, NULL, NULL, NULL);
  memset(&h, 0, sizeof(h));
  h.on_request = raw_echo;
  assert_int_equal(sgrpc_router_add(w.router, &raw_m, &h), 0);
  assert_int_equal(sgrpc_router_add(w.router, &json_m, &h), 0);
  assert_int_equal(sgrpc_router_add(w.router, &raw_m, &h), SGRPC_ERR_INVALID_ARGUMENT);
  assert_ptr_equal(sgrpc_router_find(w.router, "/raw.Echo/Echo", 14), &raw_m);
  assert_null(sgrpc_router_find(w.router, "/raw.Echo/Ech", 13));

  assert_int_equal(raw_call(&w, &raw_m, "hello", 5, &r), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.trailer, "hello");

  assert_int_equal(raw_call(&w, &json_m, "{\"a\":1}", 7, &r), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_string_equal(r.trailer, "{\"a\":1}");

  /* application/grpc+proto sent to a json method: refused */
  json_m.codec = &sgrpc_codec_raw;
  assert_int_equal(raw_call(&w, &json_m, "{}", 2, &r), 0);
  json_m.codec = &json_codec;
  pair_run(&w.p, 200);
  assert_int_equal(r.code, SGRPC_STATUS_UNIMPLEMENTED);

  /* an empty message is valid protobuf (value 0) */
  add_one_raw.codec = &sgrpc_codec_raw;
  assert_int_equal(raw_call(&w, &add_one_raw, "", 0, &r), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.value, 2); /* "\x08\x01": value 1 */

  /* malformed protobuf: INTERNAL, and the handler never runs */
  assert_int_equal(raw_call(&w, &add_one_raw, "\x08\xff\xff", 3, &r), 0);
  pair_run(&w.p, 200);
  assert_int_equal(r.code, SGRPC_STATUS_INTERNAL);
  assert_string_equal(r.message, "Failed to decode the request message");

  /* two requests on a unary method */
  {
    sgrpc_method two = add_one_raw;
    sgrpc_client_callbacks cb;
    sgrpc_rpc_opts opts;
    sgrpc_client_call *call;
    sgrpc_bytes b = {(const uint8_t *)"\x08\x01", 2};
    two.client_streaming = 1;
    memset(&cb, 0, sizeof(cb));
    memset(&opts, 0, sizeof(opts));
    memset(&r, 0, sizeof(r));
    cb.on_close = raw_done;
    opts.user_data = &r;
    assert_int_equal(sgrpc_rpc_call_start(&w.client, &two, NULL, &opts, w.p.now, &cb, &call), 0);
    assert_int_equal(sgrpc_client_call_send(call, &b), 0);
    assert_int_equal(sgrpc_client_call_send(call, &b), 0);
    assert_int_equal(sgrpc_client_call_close_send(call), 0);
    pair_run(&w.p, 200);
    assert_int_equal(r.code, SGRPC_STATUS_INTERNAL);
    assert_string_equal(r.message, "Too many requests for a single-request method");
  }
  /* a malformed reply: the client reports INTERNAL and resets */
  {
    static const sgrpc_method raw_as_num = {"/raw.Echo/Echo", NULL,
                                            &sgrpc__test__kinds__num__descriptor, 0, 0,
                                            &sgrpc_codec_protobuf};
    Num n = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_client_callbacks cb;
    sgrpc_rpc_opts opts;
    /* the request type is checked: a Num is not a "NULL" descriptor */
    memset(&cb, 0, sizeof(cb));
    memset(&opts, 0, sizeof(opts));
    cb.on_close = raw_done;
    assert_int_equal(sgrpc_rpc_call_start(&w.client, &raw_as_num, &n, &opts, w.p.now, &cb, NULL),
                     SGRPC_ERR_INVALID_ARGUMENT);
  }
  world_free(&w);
}

/* a server that answers AddOne with bytes that are not a Num */
static void garbage_reply(sgrpc_server_call *call, const void *msg, void *ud) {
  sgrpc_bytes b = {(const uint8_t *)"\x08\xff", 2};
  (void)msg;
  (void)ud;
  assert_int_equal(sgrpc_server_call_reply(call, &b), 0);
}

static void test_malformed_reply(void **state) {
  pair p;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  world w; /* only for on_event */
  sgrpc_method srv_m = sgrpc__test__kinds__calc__sgrpc_methods[0];
  sgrpc_handler h;
  result r;
  Num req = SGRPC__TEST__KINDS__NUM__INIT;
  sgrpc_rpc_opts opts;
  (void)state;
  memset(&w, 0, sizeof(w));
  assert_int_equal(pair_init(&p, NULL, NULL, NULL), 0);
  assert_int_equal(sgrpc_router_new(&router, NULL), 0);
  srv_m.codec = &sgrpc_codec_raw;
  memset(&h, 0, sizeof(h));
  h.on_request = garbage_reply;
  assert_int_equal(sgrpc_router_add(router, &srv_m, &h), 0);
  w.router = router;
  p.on_event = on_event;
  p.ud = &w;
  sgrpc_rpc_client_init(&client, p.cli, NULL);
  memset(&r, 0, sizeof(r));
  memset(&opts, 0, sizeof(opts));
  opts.user_data = &r;
  req.value = 3;
  assert_int_equal(
      sgrpc__test__kinds__calc__add_one__call(&client, &req, &opts, p.now, add_one_done, NULL), 0);
  pair_run(&p, 200);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_INTERNAL);
  assert_string_equal(r.message, "Failed to decode the response message");
  assert_false(r.had_reply);
  assert_int_equal(sgrpc_conn_call_count(p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(p.srv), 0);
  pair_free(&p);
  sgrpc_router_del(router);
}

/* Every allocation of a unary + streaming exchange fails once in turn:
 * no crash, no leak, and calls end with some status. */
static void test_alloc_failures(void **state) {
  long n;
  int ok_runs = 0;
  (void)state;
  lenient = 1;
  for (n = 1; n <= 400; n++) {
    failmem fm;
    sgrpc_mem mem;
    world w;
    result r1, r2;
    Num req = SGRPC__TEST__KINDS__NUM__INIT;
    sgrpc_rpc_opts opts;
    int rv1, rv2;
    failmem_init(&fm, &mem);
    memset(&w, 0, sizeof(w));
    if (pair_init(&w.p, NULL, NULL, &mem) != 0) continue;
    w.p.on_event = on_event;
    w.p.ud = &w;
    if (sgrpc_router_new(&w.router, &mem) != 0 ||
        sgrpc__test__kinds__calc__sgrpc_register(w.router, &calc_impl, &w) != 0) {
      sgrpc_router_del(w.router);
      pair_free(&w.p);
      assert_int_equal(fm.live, 0);
      continue;
    }
    sgrpc_rpc_client_init(&w.client, w.p.cli, &mem);
    fm.count = 0;
    fm.fail_at = n;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    memset(&opts, 0, sizeof(opts));
    opts.user_data = &r1;
    req.value = 1;
    rv1 = sgrpc__test__kinds__calc__add_one__call(&w.client, &req, &opts, w.p.now, add_one_done,
                                                   NULL);
    opts.user_data = &r2;
    req.value = 20;
    r2.expect_next = 20;
    rv2 = sgrpc__test__kinds__calc__count_down__call(&w.client, &req, &opts, w.p.now,
                                                      count_down_reply, count_down_done, NULL);
    pair_run(&w.p, 500);
    /* what an adapter does when the connection is done (fatal or not):
     * close the transport, which ends every call still open */
    sgrpc_conn_transport_closed(w.p.cli);
    sgrpc_conn_transport_closed(w.p.srv);
    pair_drain(&w.p, w.p.cli);
    pair_drain(&w.p, w.p.srv);
    /* a started call always ends with exactly one on_close */
    if (rv1 == 0) assert_int_equal(r1.done, 1);
    if (rv2 == 0) assert_int_equal(r2.done, 1);
    if (rv1 == 0 && rv2 == 0 && r1.code == 0 && r2.code == 0 && r2.replies == 20) ok_runs++;
    pair_free(&w.p);
    sgrpc_router_del(w.router);
    assert_int_equal(fm.live, 0);
    if (fm.failures == 0) break; /* past the last allocation */
  }
  lenient = 0;
  assert_true(n < 400);
  assert_true(ok_runs > 0);
}

/* One allocator rule in every layer (sgrpc_mem_resolve): NULL is libc, a
 * struct lacking a function is refused, a complete one is used. */
static void *only_malloc(size_t n, void *ud) {
  (void)ud;
  return malloc(n);
}

static void test_partial_allocator_refused(void **state) {
  sgrpc_mem partial, full, got;
  sgrpc_conn *conn = NULL;
  sgrpc_router *router = NULL;
  sgrpc_events *events = NULL;
  (void)state;
  memset(&partial, 0, sizeof(partial));
  partial.malloc = only_malloc; /* no free, calloc, realloc */
  assert_int_equal(sgrpc_mem_resolve(&got, &partial), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_mem_resolve(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_mem_resolve(&full, NULL), 0);
  assert_non_null(full.malloc);
  assert_non_null(full.free);
  assert_non_null(full.calloc);
  assert_non_null(full.realloc);
  assert_int_equal(sgrpc_conn_client_new(&conn, NULL, &partial, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_null(conn);
  assert_int_equal(sgrpc_router_new(&router, &partial), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_events_new(&events, &partial), SGRPC_ERR_INVALID_ARGUMENT);
  /* the complete struct resolve gave back works everywhere */
  assert_int_equal(sgrpc_conn_client_new(&conn, NULL, &full, 0), 0);
  assert_int_equal(sgrpc_router_new(&router, &full), 0);
  assert_int_equal(sgrpc_events_new(&events, &full), 0);
  sgrpc_events_del(events);
  sgrpc_router_del(router);
  sgrpc_conn_del(conn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_unary_compressed),
      cmocka_unit_test(test_puller_releases),
      cmocka_unit_test(test_partial_allocator_refused),
      cmocka_unit_test(test_transport_hook),
      cmocka_unit_test(test_unary_failure_status),
      cmocka_unit_test(test_server_streaming),
      cmocka_unit_test(test_client_streaming),
      cmocka_unit_test(test_bidi),
      cmocka_unit_test(test_unknown_method),
      cmocka_unit_test(test_deadline_and_late_reply),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_codecs),
      cmocka_unit_test(test_malformed_reply),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
