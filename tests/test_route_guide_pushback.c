/*
 * The example RouteGuide service (examples/route_guide/route_guide_service.c)
 * under push back, over the in-memory test channel: with a server send
 * buffer so small that almost every send returns SGRPC_ERR_WOULDBLOCK,
 * ListFeatures and RouteChat resume from on_writable and deliver every
 * message, in order, and the half-close waits for RouteChat's backlog.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include <sgrpc/testing.h>

#include "route_guide_service.h"

typedef Routeguide__Point Point;

typedef struct result {
  int done, code;
  int n;          /* streamed replies */
  int order_ok;   /* replies came in the expected order */
  int next;       /* ListFeatures: database index expected next */
  int chat_seen[512]; /* RouteChat: replies per note index */
  int round, pos;     /* RouteChat: note `round` brings back 0..round-1 */
} result;

static void listed(sgrpc_client_call *c, const Routeguide__Feature *f, void *ud) {
  result *r = ud;
  (void)c;
  /* the rectangle covers the whole database: every entry, in order */
  if (r->next >= (int)route_guide_n_features ||
      strcmp(f->name, route_guide_features[r->next].name) != 0)
    r->order_ok = 0;
  r->next++;
  r->n++;
}

static void list_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                      const Routeguide__Feature *f, void *ud) {
  result *r = ud;
  (void)c, (void)f;
  r->done++;
  r->code = st->code;
}

/* Every note is "n<index>"; the server sends back each earlier note at the
 * same place whenever a new one arrives there. */
static void chat_note(sgrpc_client_call *c, const Routeguide__RouteNote *n, void *ud) {
  result *r = ud;
  int k = -1;
  (void)c;
  if (sscanf(n->message, "n%d", &k) != 1 || k < 0 || k >= 512) {
    r->order_ok = 0;
    return;
  }
  /* the replies to note j are notes 0..j-1, and each batch comes whole
   * before the next: 0, 0 1, 0 1 2, ... */
  if (k != r->pos) r->order_ok = 0;
  if (++r->pos == r->round) {
    r->round++;
    r->pos = 0;
  }
  r->chat_seen[k]++;
  r->n++;
}

static void chat_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                      const Routeguide__RouteNote *n, void *ud) {
  result *r = ud;
  (void)c, (void)n;
  r->done++;
  r->code = st->code;
}

typedef struct world {
  sgrpc_router *router;
  sgrpc_test_channel *ch;
} world;

static void world_init(world *w, uint32_t srv_cap) {
  Routeguide__RouteGuide_SgrpcServer impl;
  sgrpc_settings ss;
  sgrpc_test_channel_opts o;
  sgrpc_settings_default(&ss);
  ss.max_send_buffer = srv_cap;
  memset(&o, 0, sizeof(o));
  o.server_settings = &ss;
  assert_int_equal(sgrpc_router_new(&w->router, NULL), 0);
  route_guide_service_init(&impl);
  assert_non_null(impl.on_writable);
  assert_int_equal(routeguide__route_guide__sgrpc_register(w->router, &impl, NULL), 0);
  assert_int_equal(sgrpc_test_channel_new(&w->ch, w->router, &o), 0);
}

static void world_free(world *w) {
  sgrpc_test_channel_del(w->ch);
  sgrpc_router_del(w->router);
}

/* A one-byte buffer: each feature after the first in a turn pushes back. */
static void test_list_features(void **state) {
  world w;
  result r;
  Routeguide__Rectangle rect = ROUTEGUIDE__RECTANGLE__INIT;
  Point lo = ROUTEGUIDE__POINT__INIT, hi = ROUTEGUIDE__POINT__INIT;
  sgrpc_rpc_opts o;
  (void)state;
  world_init(&w, 1);
  memset(&r, 0, sizeof(r));
  r.order_ok = 1;
  lo.latitude = -900000000;
  lo.longitude = -1800000000;
  hi.latitude = 900000000;
  hi.longitude = 1800000000;
  rect.lo = &lo;
  rect.hi = &hi;
  memset(&o, 0, sizeof(o));
  o.user_data = &r;
  assert_int_equal(routeguide__route_guide__list_features__call(
                       sgrpc_test_channel_client(w.ch), &rect, &o,
                       sgrpc_test_channel_now(w.ch), listed, list_done, NULL),
                   0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 0), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_int_equal(r.n, (int)route_guide_n_features);
  assert_true(r.order_ok);
  world_free(&w);
}

/* 300 notes at one place ask for 300 * 299 / 2 notes back, far more than
 * a 256-byte buffer takes per turn; the half-close comes right after the
 * last note, while replies still wait. */
static void test_route_chat(void **state) {
  enum { NOTES = 300 };
  world w;
  result r;
  sgrpc_rpc_opts o;
  sgrpc_client_call *call = NULL;
  int i, k;
  (void)state;
  world_init(&w, 256);
  memset(&r, 0, sizeof(r));
  r.order_ok = 1;
  r.round = 1;
  memset(&o, 0, sizeof(o));
  o.user_data = &r;
  assert_int_equal(routeguide__route_guide__route_chat__call(
                       sgrpc_test_channel_client(w.ch), &o, sgrpc_test_channel_now(w.ch),
                       chat_note, chat_done, &call),
                   0);
  for (i = 0; i < NOTES; i++) {
    Routeguide__RouteNote n = ROUTEGUIDE__ROUTE_NOTE__INIT;
    Point p = ROUTEGUIDE__POINT__INIT;
    char text[16];
    snprintf(text, sizeof(text), "n%d", i);
    p.latitude = 7;
    p.longitude = 7;
    n.location = &p;
    n.message = text;
    assert_int_equal(sgrpc_client_call_send(call, &n), 0);
    /* one round: the server takes it, its replies start to flow (the
     * client's own buffer is the default, so its sends never block) */
    k = sgrpc_test_channel_run(w.ch, 1);
    assert_true(k == 0 || k == SGRPC_ERR_WOULDBLOCK);
  }
  assert_int_equal(sgrpc_client_call_close_send(call), 0);
  assert_int_equal(sgrpc_test_channel_run(w.ch, 1000000), 0);
  assert_int_equal(r.done, 1);
  assert_int_equal(r.code, SGRPC_STATUS_OK);
  assert_true(r.order_ok);
  assert_int_equal(r.n, NOTES * (NOTES - 1) / 2);
  /* note k was sent back once for each later note */
  for (k = 0; k < NOTES; k++) assert_int_equal(r.chat_seen[k], NOTES - 1 - k);
  world_free(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_features),
      cmocka_unit_test(test_route_chat),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
