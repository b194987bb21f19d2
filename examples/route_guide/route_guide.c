/*
 * route_guide: all four RPC kinds through the generated stubs, server and
 * client in one process over sgrpc's in-memory test channel (<sgrpc/testing.h>).
 * route_guide_server.c and route_guide_client.c run the same service over
 * TCP with the epoll adapter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/testing.h>
#include "route_guide_service.h"

typedef Routeguide__Point Point;
typedef Routeguide__Feature Feature;

/* ---- client ---- */

static int failures;

static void check(const char *what, const sgrpc_status_info *st) {
  if (st->code != SGRPC_STATUS_OK) {
    printf("%s failed: %s: %s\n", what, sgrpc_status_name(st->code), st->message);
    failures++;
  }
}

static void got_feature(sgrpc_client_call *c, const sgrpc_status_info *st, const Feature *f,
                        void *ud) {
  (void)c;
  (void)ud;
  check("GetFeature", st);
  if (f) printf("GetFeature: \"%s\" at %d, %d\n", f->name, f->location->latitude,
                f->location->longitude);
}

static void listed_feature(sgrpc_client_call *c, const Feature *f, void *ud) {
  int *count = ud;
  (void)c;
  (*count)++;
  printf("ListFeatures: %s\n", f->name);
}

static void list_done(sgrpc_client_call *c, const sgrpc_status_info *st, const Feature *f,
                      void *ud) {
  (void)c;
  (void)f;
  printf("ListFeatures: %d features\n", *(int *)ud);
  check("ListFeatures", st);
}

static void route_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                       const Routeguide__RouteSummary *s, void *ud) {
  (void)c;
  (void)ud;
  check("RecordRoute", st);
  if (s) printf("RecordRoute: %d points, %d features, distance %d\n", s->point_count,
                s->feature_count, s->distance);
}

static void chat_note(sgrpc_client_call *c, const Routeguide__RouteNote *n, void *ud) {
  int *count = ud;
  (void)c;
  (*count)++;
  printf("RouteChat: got \"%s\" at %d, %d\n", n->message, n->location->latitude,
         n->location->longitude);
}

static void chat_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                      const Routeguide__RouteNote *n, void *ud) {
  (void)c;
  (void)n;
  printf("RouteChat: %d notes back\n", *(int *)ud);
  check("RouteChat", st);
}

/* Runs the channel until nothing moves; a stuck or broken channel is a
 * failure. */
static void run(sgrpc_test_channel *ch) {
  int rv = sgrpc_test_channel_run(ch, 0);
  if (rv != 0) {
    printf("test channel: %s\n", sgrpc_strerror(rv));
    failures++;
  }
}

int main(void) {
  sgrpc_router *router;
  sgrpc_test_channel *ch;
  sgrpc_rpc_client *client;
  int64_t now;
  Routeguide__RouteGuide_SgrpcServer impl;
  sgrpc_rpc_opts opts = {0};
  sgrpc_client_call *call;
  int listed = 0, chatted = 0;
  size_t i;

  if (sgrpc_router_new(&router, NULL) != 0) return 1;
  route_guide_service_init(&impl);
  if (routeguide__route_guide__sgrpc_register(router, &impl, NULL) != 0) return 1;
  if (sgrpc_test_channel_new(&ch, router, NULL) != 0) return 1;
  client = sgrpc_test_channel_client(ch);
  now = sgrpc_test_channel_now(ch);

  { /* unary */
    Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = 409146138;
    p.longitude = -746188906;
    routeguide__route_guide__get_feature__call(client, &p, NULL, now, got_feature, NULL);
    p.latitude = route_guide_features[0].lat;
    p.longitude = route_guide_features[0].lon;
    routeguide__route_guide__get_feature__call(client, &p, NULL, now, got_feature, NULL);
    run(ch);
  }
  { /* server streaming */
    Routeguide__Rectangle r = ROUTEGUIDE__RECTANGLE__INIT;
    Point lo = ROUTEGUIDE__POINT__INIT, hi = ROUTEGUIDE__POINT__INIT;
    lo.latitude = 400000000;
    lo.longitude = -750000000;
    hi.latitude = 420000000;
    hi.longitude = -730000000;
    r.lo = &lo;
    r.hi = &hi;
    opts.user_data = &listed;
    routeguide__route_guide__list_features__call(client, &r, &opts, now, listed_feature,
                                                 list_done, NULL);
    run(ch);
  }
  { /* client streaming */
    if (routeguide__route_guide__record_route__call(client, NULL, now, route_done, &call) != 0)
      return 1;
    for (i = 0; i < 10; i++) {
      Point p = ROUTEGUIDE__POINT__INIT;
      p.latitude = route_guide_features[i % route_guide_n_features].lat;
      p.longitude = route_guide_features[i % route_guide_n_features].lon;
      sgrpc_client_call_send(call, &p);
    }
    sgrpc_client_call_close_send(call);
    run(ch);
  }
  { /* bidirectional */
    static const char *msgs[] = {"First message", "Second message", "Third message",
                                 "Fourth message"};
    opts.user_data = &chatted;
    if (routeguide__route_guide__route_chat__call(client, &opts, now, chat_note, chat_done,
                                                  &call) != 0)
      return 1;
    for (i = 0; i < 4; i++) {
      Routeguide__RouteNote n = ROUTEGUIDE__ROUTE_NOTE__INIT;
      Point p = ROUTEGUIDE__POINT__INIT;
      p.latitude = (int32_t)(i % 2);
      p.longitude = 1;
      n.location = &p;
      n.message = (char *)msgs[i];
      sgrpc_client_call_send(call, &n);
      run(ch); /* replies interleave with requests */
    }
    sgrpc_client_call_close_send(call);
    run(ch);
  }
  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
  if (listed != 4 || chatted != 2) failures++;
  printf("%s\n", failures ? "FAILED" : "all four RPC kinds OK");
  return failures ? 1 : 0;
}
