/*
 * The RouteGuide service implementation shared by the in-memory example
 * (route_guide.c) and the epoll server (route_guide_server.c): a small
 * built-in feature database and the four handlers.
 */
#include <stdlib.h>
#include <string.h>

#include "route_guide_service.h"

typedef Routeguide__Point Point;
typedef Routeguide__Feature Feature;

/* ---- the server's data ---- */

const route_guide_feature route_guide_features[] = {
    {"Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763},
    {"101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179},
    {"U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468},
    {"5 Conners Road, Kingston, NY 12401, USA", 419999544, -740371136},
};
const size_t route_guide_n_features =
    sizeof(route_guide_features) / sizeof(route_guide_features[0]);

const char *route_guide_feature_at(const Point *p) {
  size_t i;
  for (i = 0; i < route_guide_n_features; i++)
    if (route_guide_features[i].lat == p->latitude && route_guide_features[i].lon == p->longitude)
      return route_guide_features[i].name;
  return "";
}

/* ---- server ---- */

static void get_feature(sgrpc_server_call *call, const Point *req, void *ud) {
  Feature f = ROUTEGUIDE__FEATURE__INIT;
  Point loc = *req;
  (void)ud;
  f.name = (char *)route_guide_feature_at(req);
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
  for (i = 0; i < route_guide_n_features; i++) {
    const route_guide_feature *db = &route_guide_features[i];
    Feature f = ROUTEGUIDE__FEATURE__INIT;
    Point loc = ROUTEGUIDE__POINT__INIT;
    if (db->lat < r->lo->latitude || db->lat > r->hi->latitude ||
        db->lon < r->lo->longitude || db->lon > r->hi->longitude)
      continue;
    loc.latitude = route_guide_features[i].lat;
    loc.longitude = route_guide_features[i].lon;
    f.name = (char *)route_guide_features[i].name;
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
    if (route_guide_feature_at(p)[0]) st->sum.feature_count++;
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
    if (!st) {
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    sgrpc_server_call_set_user_data(call, st);
  }
  for (i = 0; i < st->n; i++) {
    Routeguide__RouteNote *old = &st->notes[i];
    if (note->location && old->location->latitude == note->location->latitude &&
        old->location->longitude == note->location->longitude)
      sgrpc_server_call_send(call, old);
  }
  if (note->location) {
    Routeguide__RouteNote *copy, *grown;
    grown = realloc(st->notes, (st->n + 1) * sizeof(*st->notes));
    if (!grown) {
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    st->notes = grown;
    copy = &st->notes[st->n];
    routeguide__route_note__init(copy);
    copy->location = malloc(sizeof(Point));
    copy->message = strdup(note->message ? note->message : "");
    if (!copy->location || !copy->message) {
      free(copy->location);
      free(copy->message);
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    *copy->location = *note->location;
    st->n++;
  }
}

/* Frees per-call state whatever way the call ended. */
static void on_call_close(sgrpc_server_call *call, const sgrpc_status_info *st, void *ud) {
  const sgrpc_method *m = sgrpc_server_call_method(call);
  void *state = sgrpc_server_call_get_user_data(call);
  (void)st;
  (void)ud;
  if (state &&
      m == &routeguide__route_guide__sgrpc_methods[ROUTEGUIDE__ROUTE_GUIDE__SGRPC_ROUTE_CHAT]) {
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

void route_guide_service_init(Routeguide__RouteGuide_SgrpcServer *impl) {
  memset(impl, 0, sizeof(*impl));
  impl->get_feature = get_feature;
  impl->list_features = list_features;
  impl->record_route = record_route;
  impl->route_chat = route_chat;
  impl->on_close = on_call_close;
}
