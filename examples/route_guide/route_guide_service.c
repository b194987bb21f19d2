/*
 * The RouteGuide service implementation shared by the in-memory example
 * (route_guide.c) and the epoll server (route_guide_server.c): a small
 * built-in feature database and the four handlers.
 */
#include <stdint.h>
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
  /* a fresh call's buffer is empty: this fails only when the whole
   * connection's output is full, and then nothing went */
  if (sgrpc_server_call_reply(call, &f) < 0)
    sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
}

/* ListFeatures walks the database from a cursor kept in the call's user
 * data. A send returns SGRPC_ERR_WOULDBLOCK when the call's send buffer is
 * full; the walk then stops and on_writable resumes it, so a large answer
 * never sits in memory as a whole. */
typedef struct list_state {
  const Routeguide__Rectangle *rect; /* the request: valid until the call ends */
  size_t next;                       /* the next database entry to look at */
} list_state;

static void list_pump(sgrpc_server_call *call) {
  list_state *st = sgrpc_server_call_get_user_data(call);
  const Routeguide__Rectangle *r = st->rect;
  for (; st->next < route_guide_n_features; st->next++) {
    const route_guide_feature *db = &route_guide_features[st->next];
    Feature f = ROUTEGUIDE__FEATURE__INIT;
    Point loc = ROUTEGUIDE__POINT__INIT;
    int rv;
    if (db->lat < r->lo->latitude || db->lat > r->hi->latitude ||
        db->lon < r->lo->longitude || db->lon > r->hi->longitude)
      continue;
    loc.latitude = db->lat;
    loc.longitude = db->lon;
    f.name = (char *)db->name;
    f.location = &loc;
    rv = sgrpc_server_call_send(call, &f);
    if (rv == SGRPC_ERR_WOULDBLOCK) return; /* the same entry again from on_writable */
    if (rv < 0) return;                     /* the call ended or failed */
  }
  sgrpc_server_call_finish(call, NULL);
}

static void list_features(sgrpc_server_call *call, const Routeguide__Rectangle *r, void *ud) {
  list_state *st;
  (void)ud;
  if (!r->lo || !r->hi) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "lo and hi are required");
    return;
  }
  st = calloc(1, sizeof(*st));
  if (!st) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  st->rect = r;
  sgrpc_server_call_set_user_data(call, st); /* freed by on_call_close */
  list_pump(call);
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
    if (st->sum.point_count > 0) {
      /* in 64 bits: coordinates are any int32 a client sends (the service
       * fuzzer found INT32_MIN), and the total stops at INT32_MAX */
      int64_t dlat = (int64_t)p->latitude - st->last.latitude;
      int64_t dlon = (int64_t)p->longitude - st->last.longitude;
      int64_t d = (int64_t)st->sum.distance + (dlat < 0 ? -dlat : dlat) / 100 +
                  (dlon < 0 ? -dlon : dlon) / 100;
      st->sum.distance = d > INT32_MAX ? INT32_MAX : (int32_t)d;
    }
    st->sum.point_count++;
    if (route_guide_feature_at(p)[0]) st->sum.feature_count++;
    st->last = *p;
  } else {
    /* the client finished its route */
    if (sgrpc_server_call_reply(call, &st->sum) < 0)
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
  }
}

/* RouteChat: the server remembers every note of the call. The notes to
 * send back wait as indexes into notes (no copies) until the call can
 * take them: chat_pump sends until the call's buffer is full and
 * on_writable calls it again. */
typedef struct chat_state {
  Routeguide__RouteNote *notes;
  size_t n;
  size_t *out;              /* indexes of notes still to send back, in order */
  size_t out_head, n_out, cap_out;
  int finish;               /* the client half-closed: finish once out is sent */
} chat_state;

static void chat_pump(sgrpc_server_call *call, chat_state *st) {
  while (st->out_head < st->n_out) {
    int rv = sgrpc_server_call_send(call, &st->notes[st->out[st->out_head]]);
    if (rv == SGRPC_ERR_WOULDBLOCK) return; /* on_writable goes on */
    if (rv < 0) return;                     /* the call ended or failed */
    st->out_head++;
  }
  st->out_head = st->n_out = 0;
  if (st->finish) sgrpc_server_call_finish(call, NULL);
}

static int chat_queue(chat_state *st, size_t index) {
  if (st->n_out == st->cap_out) {
    size_t cap = st->cap_out ? st->cap_out * 2 : 8;
    size_t *grown = realloc(st->out, cap * sizeof(*grown));
    if (!grown) return -1;
    st->out = grown;
    st->cap_out = cap;
  }
  st->out[st->n_out++] = index;
  return 0;
}

static void route_chat(sgrpc_server_call *call, const Routeguide__RouteNote *note, void *ud) {
  chat_state *st = sgrpc_server_call_get_user_data(call);
  size_t i;
  (void)ud;
  if (!note) {
    if (!st) {
      sgrpc_server_call_finish(call, NULL);
      return;
    }
    st->finish = 1; /* after the notes still waiting */
    chat_pump(call, st);
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
        old->location->longitude == note->location->longitude && chat_queue(st, i) != 0) {
      sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
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
  chat_pump(call, st);
}

/* A call whose send returned SGRPC_ERR_WOULDBLOCK has room again. */
static void on_call_writable(sgrpc_server_call *call, void *ud) {
  const sgrpc_method *m = sgrpc_server_call_method(call);
  (void)ud;
  if (m == &routeguide__route_guide__sgrpc_methods[ROUTEGUIDE__ROUTE_GUIDE__SGRPC_LIST_FEATURES])
    list_pump(call);
  else if (m == &routeguide__route_guide__sgrpc_methods[ROUTEGUIDE__ROUTE_GUIDE__SGRPC_ROUTE_CHAT])
    chat_pump(call, sgrpc_server_call_get_user_data(call));
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
    free(cs->out);
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
  impl->on_writable = on_call_writable;
}
