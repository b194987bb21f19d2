/*
 * Health checks that run themselves (sgrpc_health_check_add) on the
 * in-memory pair with fake timers (the test owns the clock and fires what
 * is due): a check that flips and a Watch that sees UNKNOWN -> SERVING ->
 * NOT_SERVING -> SERVING; a slow check that times out (NOT_SERVING, its
 * late answer refused) and an asynchronous answer in time; stopping a
 * check (from outside and from inside itself, all at once, by deleting
 * the object) leaves no timer armed; bad arguments; every allocation and
 * every timer start failed in turn.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <sgrpc/health.h>

#include "grpc/health/v1/health.sgrpc.h"

#define SEC 1000000000LL

typedef Grpc__Health__V1__HealthCheckRequest Req;
typedef Grpc__Health__V1__HealthCheckResponse Resp;

/* ---- fake timers ---- */

#define NT 16
typedef struct ftimer {
  int armed;
  int64_t when;
  void *arg;
} ftimer;

typedef struct ftimers {
  ftimer t[NT];
  int fail_start_at; /* the nth start fails (1-based), 0: never */
  int starts;
} ftimers;

static int ft_start(void *ctx, int64_t when, void *arg, void **ptimer) {
  ftimers *f = ctx;
  int i;
  f->starts++;
  if (f->fail_start_at && f->starts == f->fail_start_at) return SGRPC_ERR_NOMEM;
  for (i = 0; i < NT; i++) {
    if (!f->t[i].armed) {
      f->t[i].armed = 1;
      f->t[i].when = when;
      f->t[i].arg = arg;
      *ptimer = &f->t[i];
      return 0;
    }
  }
  fail_msg("out of fake timers");
  return SGRPC_ERR_NOMEM;
}

static void ft_cancel(void *ctx, void *timer) {
  ftimer *t = timer;
  (void)ctx;
  assert_true(t->armed);
  t->armed = 0;
}

static int ft_armed(const ftimers *f) {
  int i, n = 0;
  for (i = 0; i < NT; i++) n += f->t[i].armed;
  return n;
}

/* ---- world ---- */

typedef struct world {
  pair p;
  sgrpc_router *router;
  sgrpc_health *health;
  sgrpc_rpc_client client;
  ftimers ft;
} world;

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  world *w = ud;
  int rv = conn == p->srv ? sgrpc_router_dispatch(w->router, conn, ev, p->now)
                          : sgrpc_event_dispatch(ev, p->now);
  assert_true(rv >= 0);
  if (ev->type == SGRPC_EV_CLOSE) sgrpc_call_release(ev->call);
}

static void world_init(world *w, const sgrpc_mem *mem) {
  sgrpc_health_timers t;
  memset(w, 0, sizeof(*w));
  assert_int_equal(pair_init(&w->p, NULL, NULL, NULL), 0);
  w->p.on_event = on_event;
  w->p.ud = w;
  w->p.now = 1000 * SEC;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  assert_int_equal(sgrpc_health_new(&w->health, mem), 0);
  assert_int_equal(sgrpc_health_register(w->health, w->router), 0);
  t.start = ft_start;
  t.cancel = ft_cancel;
  t.ctx = &w->ft;
  assert_int_equal(sgrpc_health_set_timers(w->health, &t), 0);
  sgrpc_rpc_client_init(&w->client, w->p.cli, NULL);
  pair_run(&w->p, 50);
}

static void world_free(world *w) {
  sgrpc_health_del(w->health); /* open Watch streams end UNAVAILABLE */
  assert_int_equal(ft_armed(&w->ft), 0); /* del stopped every check */
  pair_run(&w->p, 100);
  assert_int_equal(sgrpc_conn_call_count(w->p.srv), 0);
  pair_free(&w->p);
  sgrpc_router_del(w->router);
}

/* Moves the clock by ns, firing every due timer in time order. */
static void advance(world *w, int64_t ns) {
  int64_t end = w->p.now + ns;
  for (;;) {
    int i, best = -1;
    for (i = 0; i < NT; i++)
      if (w->ft.t[i].armed && w->ft.t[i].when <= end &&
          (best < 0 || w->ft.t[i].when < w->ft.t[best].when))
        best = i;
    if (best < 0) break;
    if (w->ft.t[best].when > w->p.now) w->p.now = w->ft.t[best].when;
    w->ft.t[best].armed = 0;
    sgrpc_health_timer_fire(w->ft.t[best].arg, w->p.now);
    pair_run(&w->p, 100);
  }
  w->p.now = end;
  pair_run(&w->p, 100);
}

/* ---- Watch client ---- */

typedef struct result {
  int done, code, n;
  int vals[16];
} result;

static void w_reply(sgrpc_client_call *call, const Resp *reply, void *ud) {
  result *r = ud;
  (void)call;
  if (r->n < 16) r->vals[r->n] = reply->status;
  r->n++;
}

static void w_done(sgrpc_client_call *call, const sgrpc_status_info *st, const Resp *reply,
                   void *ud) {
  result *r = ud;
  (void)call;
  r->done++;
  r->code = st->code;
  if (reply && r->n < 16) r->vals[r->n++] = reply->status;
}

static sgrpc_client_call *watch(world *w, const char *service, result *r) {
  Req q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call = NULL;
  memset(&o, 0, sizeof(o));
  memset(r, 0, sizeof(*r));
  o.user_data = r;
  q.service = (char *)service;
  assert_int_equal(grpc__health__v1__health__watch__call(&w->client, &q, &o, w->p.now, w_reply,
                                                         w_done, &call),
                   0);
  pair_run(&w->p, 100);
  return call;
}

/* ---- checks ---- */

typedef struct probe_state {
  int healthy;   /* what a synchronous check answers */
  int answer;    /* 0: keep the probe for later instead of answering */
  int runs;
  int remove_self;
  sgrpc_health_probe last;
  char service[32];
} probe_state;

static void check_fn(sgrpc_health_probe probe, const char *service, void *ud, int64_t now) {
  probe_state *ps = ud;
  (void)now;
  ps->runs++;
  ps->last = probe;
  snprintf(ps->service, sizeof(ps->service), "%s", service);
  if (ps->remove_self) assert_int_equal(sgrpc_health_check_remove(probe.health, service), 0);
  if (ps->answer)
    assert_int_equal(sgrpc_health_probe_done(probe, ps->healthy ? SGRPC_HEALTH_SERVING
                                                                : SGRPC_HEALTH_NOT_SERVING),
                     0);
}

static sgrpc_health_check_opts opts_for(probe_state *ps, int64_t interval, int64_t timeout) {
  sgrpc_health_check_opts o;
  memset(&o, 0, sizeof(o));
  o.check = check_fn;
  o.user_data = ps;
  o.interval = interval;
  o.timeout = timeout;
  return o;
}

static void test_check_flips_and_watch_sees_it(void **state) {
  world w;
  result r;
  probe_state ps = {1, 1, 0, 0, {NULL, 0}, ""};
  sgrpc_health_check_opts o = opts_for(&ps, 10 * SEC, 2 * SEC);
  sgrpc_client_call *call;
  (void)state;
  world_init(&w, NULL);
  assert_int_equal(sgrpc_health_check_add(w.health, "db.Store", &o, w.p.now), 0);
  assert_int_equal(sgrpc_health_check_count(w.health), 1);
  assert_int_equal(ps.runs, 0); /* never from inside add */
  assert_int_equal(sgrpc_health_get(w.health, "db.Store"), SGRPC_HEALTH_UNKNOWN);
  call = watch(&w, "db.Store", &r);
  assert_non_null(call);
  advance(&w, 0); /* the first run is due now */
  assert_int_equal(ps.runs, 1);
  assert_string_equal(ps.service, "db.Store");
  ps.healthy = 0;
  advance(&w, 10 * SEC - 1);
  assert_int_equal(ps.runs, 1); /* not before the interval */
  advance(&w, 1);
  assert_int_equal(ps.runs, 2);
  assert_int_equal(sgrpc_health_get(w.health, "db.Store"), SGRPC_HEALTH_NOT_SERVING);
  advance(&w, 10 * SEC); /* unchanged: no duplicate on the Watch */
  ps.healthy = 1;
  advance(&w, 10 * SEC);
  assert_int_equal(ps.runs, 4);
  assert_int_equal(r.done, 0);
  assert_int_equal(r.n, 4);
  assert_int_equal(r.vals[0], SGRPC_HEALTH_UNKNOWN);
  assert_int_equal(r.vals[1], SGRPC_HEALTH_SERVING);
  assert_int_equal(r.vals[2], SGRPC_HEALTH_NOT_SERVING);
  assert_int_equal(r.vals[3], SGRPC_HEALTH_SERVING);
  assert_int_equal(sgrpc_client_call_cancel(call), 0);
  pair_run(&w.p, 100);
  assert_int_equal(r.done, 1);
  world_free(&w);
}

static void test_slow_check_times_out(void **state) {
  world w;
  result r;
  probe_state ps = {1, 0, 0, 0, {NULL, 0}, ""};
  sgrpc_health_check_opts o = opts_for(&ps, 10 * SEC, 3 * SEC);
  sgrpc_health_probe late;
  (void)state;
  world_init(&w, NULL);
  assert_int_equal(sgrpc_health_set(w.health, "q.Queue", SGRPC_HEALTH_SERVING), 0);
  assert_int_equal(sgrpc_health_check_add(w.health, "q.Queue", &o, w.p.now), 0);
  /* a status set before keeps until the first answer */
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_SERVING);
  (void)watch(&w, "q.Queue", &r);
  advance(&w, 0);
  assert_int_equal(ps.runs, 1);
  advance(&w, 3 * SEC - 1);
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_SERVING);
  advance(&w, 1); /* no answer within the timeout */
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_NOT_SERVING);
  late = ps.last;
  assert_int_equal(sgrpc_health_probe_done(late, SGRPC_HEALTH_SERVING), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_NOT_SERVING);
  /* the next run is answered later, but in time */
  advance(&w, 7 * SEC);
  assert_int_equal(ps.runs, 2);
  advance(&w, 2 * SEC);
  assert_int_equal(sgrpc_health_probe_done(ps.last, SGRPC_HEALTH_SERVING), 0);
  assert_int_equal(sgrpc_health_probe_done(ps.last, SGRPC_HEALTH_SERVING),
                   SGRPC_ERR_INVALID_STATE); /* answered once */
  advance(&w, 2 * SEC); /* its timeout timer was cancelled: stays SERVING */
  pair_run(&w.p, 100);
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_SERVING);
  assert_int_equal(r.n, 3);
  assert_int_equal(r.vals[0], SGRPC_HEALTH_SERVING);
  assert_int_equal(r.vals[1], SGRPC_HEALTH_NOT_SERVING);
  assert_int_equal(r.vals[2], SGRPC_HEALTH_SERVING);
  /* timeout == interval: a run still unanswered when the next starts
   * counts as NOT_SERVING whichever timer fires first */
  assert_int_equal(sgrpc_health_check_remove(w.health, "q.Queue"), 0);
  o = opts_for(&ps, 5 * SEC, 0);
  ps.runs = 0;
  assert_int_equal(sgrpc_health_check_add(w.health, "q.Queue", &o, w.p.now), 0);
  advance(&w, 0);
  assert_int_equal(ps.runs, 1);
  advance(&w, 5 * SEC);
  assert_int_equal(ps.runs, 2);
  assert_int_equal(sgrpc_health_get(w.health, "q.Queue"), SGRPC_HEALTH_NOT_SERVING);
  world_free(&w);
}

static void test_stopping_checks(void **state) {
  world w;
  probe_state a = {1, 1, 0, 0, {NULL, 0}, ""}, b = {0, 1, 0, 0, {NULL, 0}, ""};
  sgrpc_health_check_opts oa = opts_for(&a, SEC, 0), ob = opts_for(&b, SEC, 0);
  (void)state;
  world_init(&w, NULL);
  assert_int_equal(sgrpc_health_check_add(w.health, "a", &oa, w.p.now), 0);
  assert_int_equal(sgrpc_health_check_add(w.health, "b", &ob, w.p.now), 0);
  advance(&w, 3 * SEC);
  assert_int_equal(a.runs, 4);
  assert_int_equal(b.runs, 4);
  /* from outside: the status stays, the runs stop */
  assert_int_equal(sgrpc_health_check_remove(w.health, "a"), 0);
  assert_int_equal(sgrpc_health_check_remove(w.health, "a"), SGRPC_ERR_INVALID_STATE);
  advance(&w, 3 * SEC);
  assert_int_equal(a.runs, 4);
  assert_int_equal(b.runs, 7);
  assert_int_equal(sgrpc_health_get(w.health, "a"), SGRPC_HEALTH_SERVING);
  assert_int_equal(sgrpc_health_get(w.health, "b"), SGRPC_HEALTH_NOT_SERVING);
  /* from inside the check itself (its answer after removal is refused) */
  b.remove_self = 1;
  b.answer = 0;
  advance(&w, SEC);
  assert_int_equal(b.runs, 8);
  assert_int_equal(sgrpc_health_check_count(w.health), 0);
  assert_int_equal(ft_armed(&w.ft), 0);
  assert_int_equal(sgrpc_health_probe_done(b.last, SGRPC_HEALTH_SERVING), SGRPC_ERR_INVALID_STATE);
  /* all at once; then adding again works */
  b.remove_self = 0;
  b.answer = 1;
  assert_int_equal(sgrpc_health_check_add(w.health, "a", &oa, w.p.now), 0);
  assert_int_equal(sgrpc_health_check_add(w.health, "b", &ob, w.p.now), 0);
  advance(&w, 0);
  assert_int_equal(ft_armed(&w.ft), 2); /* answered: only the next runs wait */
  sgrpc_health_checks_stop(w.health);
  assert_int_equal(ft_armed(&w.ft), 0);
  assert_int_equal(sgrpc_health_check_count(w.health), 0);
  /* a check left running is stopped by sgrpc_health_del (world_free) */
  assert_int_equal(sgrpc_health_check_add(w.health, "a", &oa, w.p.now), 0);
  advance(&w, SEC / 2);
  world_free(&w);
}

static void test_bad_arguments(void **state) {
  sgrpc_health *h = NULL;
  probe_state ps = {1, 1, 0, 0, {NULL, 0}, ""};
  sgrpc_health_check_opts o = opts_for(&ps, SEC, 0);
  sgrpc_health_timers t;
  sgrpc_health_probe none = {NULL, 1};
  ftimers ft;
  (void)state;
  memset(&ft, 0, sizeof(ft));
  assert_int_equal(sgrpc_health_new(&h, NULL), 0);
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_STATE); /* no timers */
  memset(&t, 0, sizeof(t));
  assert_int_equal(sgrpc_health_set_timers(h, &t), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_set_timers(NULL, &t), SGRPC_ERR_INVALID_ARGUMENT);
  t.start = ft_start;
  t.cancel = ft_cancel;
  t.ctx = &ft;
  assert_int_equal(sgrpc_health_set_timers(h, &t), 0);
  assert_int_equal(sgrpc_health_check_add(NULL, "x", &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_check_add(h, NULL, &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_check_add(h, "x", NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  o.interval = 0;
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  o.interval = SEC;
  o.timeout = SEC + 1;
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  o.timeout = -1;
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  o.timeout = 0;
  o.check = NULL;
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_ARGUMENT);
  o.check = check_fn;
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), 0);
  assert_int_equal(sgrpc_health_check_add(h, "x", &o, 0), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_health_set_timers(h, &t), SGRPC_ERR_INVALID_STATE); /* checks run */
  assert_int_equal(sgrpc_health_probe_done(none, SGRPC_HEALTH_SERVING), SGRPC_ERR_INVALID_ARGUMENT);
  none.health = h;
  assert_int_equal(sgrpc_health_probe_done(none, SGRPC_HEALTH_UNKNOWN), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_probe_done(none, SGRPC_HEALTH_SERVING), SGRPC_ERR_INVALID_STATE);
  assert_int_equal(sgrpc_health_check_remove(h, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_health_check_count(NULL), 0);
  sgrpc_health_timer_fire(NULL, 0); /* no-op */
  sgrpc_health_checks_stop(NULL);
  sgrpc_health_del(h);
  assert_int_equal(ft_armed(&ft), 0);
}

/* Every allocation of check_add failed in turn, then every timer start of
 * add and of a run: clear errors, no leak, a broken check says
 * NOT_SERVING and stops. */
static void test_failures(void **state) {
  long n;
  int k;
  (void)state;
  for (n = 1; n < 10; n++) {
    world w;
    failmem fm;
    sgrpc_mem mem;
    probe_state ps = {1, 1, 0, 0, {NULL, 0}, ""};
    sgrpc_health_check_opts o = opts_for(&ps, SEC, 0);
    int rv;
    failmem_init(&fm, &mem);
    world_init(&w, &mem);
    fm.count = 0;
    fm.fail_at = n;
    rv = sgrpc_health_check_add(w.health, "svc", &o, w.p.now);
    fm.fail_at = 0;
    if (rv == 0) {
      world_free(&w);
      assert_int_equal(fm.live, 0);
      break;
    }
    assert_int_equal(rv, SGRPC_ERR_NOMEM);
    assert_int_equal(sgrpc_health_check_count(w.health), 0);
    world_free(&w);
    assert_int_equal(fm.live, 0);
  }
  assert_true(n > 1 && n < 10);
  for (k = 1; k <= 3; k++) {
    world w;
    probe_state ps = {1, 1, 0, 0, {NULL, 0}, ""};
    sgrpc_health_check_opts o = opts_for(&ps, SEC, 0);
    world_init(&w, NULL);
    w.ft.fail_start_at = k;
    if (k == 1) {
      assert_int_equal(sgrpc_health_check_add(w.health, "svc", &o, w.p.now), SGRPC_ERR_NOMEM);
      assert_int_equal(sgrpc_health_check_count(w.health), 0);
    } else {
      assert_int_equal(sgrpc_health_check_add(w.health, "svc", &o, w.p.now), 0);
      advance(&w, 0); /* the run cannot arm its next run or its timeout */
      assert_int_equal(ps.runs, 0);
      assert_int_equal(sgrpc_health_check_count(w.health), 0);
      assert_int_equal(sgrpc_health_get(w.health, "svc"), SGRPC_HEALTH_NOT_SERVING);
    }
    assert_int_equal(ft_armed(&w.ft), 0);
    world_free(&w);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_flips_and_watch_sees_it),
      cmocka_unit_test(test_slow_check_times_out),
      cmocka_unit_test(test_stopping_checks),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
