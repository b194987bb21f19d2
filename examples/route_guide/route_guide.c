/*
 * route_guide: all four RPC kinds through the generated stubs, server and
 * client in one process over an in-memory connection pair (mem_loop.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem_loop.h"
#include "route_guide.sgrpc.h"

typedef Routeguide__Point Point;
typedef Routeguide__Feature Feature;

/* ---- the server's data ---- */

static const struct {
  const char *name;
  int32_t lat, lon;
} features[] = {
    {"Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763},
    {"101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179},
    {"U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468},
    {"5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136},
};
#define N_FEATURES (sizeof(features) / sizeof(features[0]))

static const char *feature_at(const Point *p) {
  size_t i;
  for (i = 0; i < N_FEATURES; i++)
    if (features[i].lat == p->latitude && features[i].lon == p->longitude) return features[i].name;
  return "";
}

/* ---- server ---- */

static void get_feature(sgrpc_server_call *call, const Point *req, void *ud) {
  Feature f = ROUTEGUIDE__FEATURE__INIT;
  Point loc = *req;
  (void)ud;
  f.name = (char *)feature_at(req);
  f.location = &loc;
  sgrpc_server_call_reply(call, &f);
}

static void list_features(sgrpc_server_call *call, const Routeguide__Rectangle *r, void *ud) {
  size_t i;
  (void)ud;
  if (!r->lo || !r->hi) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "lo and hi are required");
    return;
  }
  for (i = 0; i < N_FEATURES; i++) {
    Feature f = ROUTEGUIDE__FEATURE__INIT;
    Point loc = ROUTEGUIDE__POINT__INIT;
    if (features[i].lat < r->lo->latitude || features[i].lat > r->hi->latitude ||
        features[i].lon < r->lo->longitude || features[i].lon > r->hi->longitude)
      continue;
    loc.latitude = features[i].lat;
    loc.longitude = features[i].lon;
    f.name = (char *)features[i].name;
    f.location = &loc;
    sgrpc_server_call_send(call, &f);
  }
  sgrpc_server_call_finish(call, NULL);
}

/* RecordRoute keeps a summary per call in the call's user data. */
typedef struct route_state {
  Routeguide__RouteSummary sum;
  Point last;
} route_state;

static void record_route(sgrpc_server_call *call, const Point *p, void *ud) {
  route_state *st = sgrpc_server_call_get_user_data(call);
  (void)ud;
  if (!st) {
    st = calloc(1, sizeof(*st));
    if (!st) {
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    routeguide__route_summary__init(&st->sum);
    sgrpc_server_call_set_user_data(call, st);
  }
  if (p) {
    if (st->sum.point_count > 0)
      st->sum.distance += abs(p->latitude - st->last.latitude) / 100 +
                          abs(p->longitude - st->last.longitude) / 100;
    st->sum.point_count++;
    if (feature_at(p)[0]) st->sum.feature_count++;
    st->last = *p;
  } else {
    sgrpc_server_call_reply(call, &st->sum); /* the client finished its route */
  }
}

/* RouteChat: the server remembers every note of the call. */
typedef struct chat_state {
  Routeguide__RouteNote *notes;
  char **texts;
  size_t n;
} chat_state;

static void route_chat(sgrpc_server_call *call, const Routeguide__RouteNote *note, void *ud) {
  chat_state *st = sgrpc_server_call_get_user_data(call);
  size_t i;
  (void)ud;
  if (!note) {
    sgrpc_server_call_finish(call, NULL);
    return;
  }
  if (!st) {
    st = calloc(1, sizeof(*st));
    sgrpc_server_call_set_user_data(call, st);
  }
  for (i = 0; i < st->n; i++) {
    Routeguide__RouteNote *old = &st->notes[i];
    if (note->location && old->location->latitude == note->location->latitude &&
        old->location->longitude == note->location->longitude)
      sgrpc_server_call_send(call, old);
  }
  if (note->location) {
    Routeguide__RouteNote *copy;
    st->notes = realloc(st->notes, (st->n + 1) * sizeof(*st->notes));
    copy = &st->notes[st->n++];
    routeguide__route_note__init(copy);
    copy->location = malloc(sizeof(Point));
    *copy->location = *note->location;
    copy->message = strdup(note->message ? note->message : "");
  }
}

/* Frees per-call state whatever way the call ended. */
static void on_call_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  const sgrpc_method *m = sgrpc_server_call_method(call);
  void *state = sgrpc_server_call_get_user_data(call);
  (void)st;
  (void)ud;
  if (state && m == &routeguide__route_guide__sgrpc_methods[ROUTEGUIDE__ROUTE_GUIDE__SGRPC_ROUTE_CHAT]) {
    chat_state *cs = state;
    size_t i;
    for (i = 0; i < cs->n; i++) {
      free(cs->notes[i].location);
      free(cs->notes[i].message);
    }
    free(cs->notes);
  }
  free(state);
}

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

int main(void) {
  mem_loop l;
  sgrpc_rpc_client client;
  Routeguide__RouteGuide_SgrpcServer impl = {0};
  sgrpc_rpc_opts opts = {0};
  sgrpc_client_call *call;
  int listed = 0, chatted = 0;
  size_t i;

  if (mem_loop_init(&l) != 0) return 1;
  impl.get_feature = get_feature;
  impl.list_features = list_features;
  impl.record_route = record_route;
  impl.route_chat = route_chat;
  impl.on_close = on_call_close;
  if (routeguide__route_guide__sgrpc_register(l.router, &impl, NULL) != 0) return 1;
  sgrpc_rpc_client_init(&client, l.cli, NULL);

  { /* unary */
    Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = 409146138;
    p.longitude = -746188906;
    routeguide__route_guide__get_feature__call(&client, &p, NULL, l.now, got_feature, NULL);
    p.latitude = features[0].lat;
    p.longitude = features[0].lon;
    routeguide__route_guide__get_feature__call(&client, &p, NULL, l.now, got_feature, NULL);
    mem_loop_run(&l);
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
    routeguide__route_guide__list_features__call(&client, &r, &opts, l.now, listed_feature,
                                                 list_done, NULL);
    mem_loop_run(&l);
  }
  { /* client streaming */
    if (routeguide__route_guide__record_route__call(&client, NULL, l.now, route_done, &call) != 0)
      return 1;
    for (i = 0; i < 10; i++) {
      Point p = ROUTEGUIDE__POINT__INIT;
      p.latitude = features[i % N_FEATURES].lat;
      p.longitude = features[i % N_FEATURES].lon;
      sgrpc_client_call_send(call, &p);
    }
    sgrpc_client_call_close_send(call);
    mem_loop_run(&l);
  }
  { /* bidirectional */
    static const char *msgs[] = {"First message", "Second message", "Third message",
                                 "Fourth message"};
    opts.user_data = &chatted;
    if (routeguide__route_guide__route_chat__call(&client, &opts, l.now, chat_note, chat_done,
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
      mem_loop_run(&l); /* replies interleave with requests */
    }
    sgrpc_client_call_close_send(call);
    mem_loop_run(&l);
  }
  mem_loop_free(&l);
  if (listed != 4 || chatted != 2) failures++;
  printf("%s\n", failures ? "FAILED" : "all four RPC kinds OK");
  return failures ? 1 : 0;
}
