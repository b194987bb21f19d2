/*
 * route_guide_client: calls a RouteGuide server with the generated client
 * functions over an epoll channel, one RPC kind after the other, and
 * prints what it did.
 *
 *   route_guide_client --target 127.0.0.1:50051
 *
 * Exit status 0 when all four kinds worked.
 */
#include <stdio.h>
#include <string.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#include "route_guide.sgrpc.h"

typedef Routeguide__Point Point;
typedef Routeguide__Feature Feature;

#define CALL_TIMEOUT_NS 5000000000 /* each call's deadline */

static int pending;  /* calls started and not yet closed */
static int failures;

static void check(const char *what, const sgrpc_status_info *st) {
  if (st->code != SGRPC_STATUS_OK) {
    printf("%s failed: %s: %.*s\n", what, sgrpc_status_name(st->code), (int)st->message_len,
           st->message ? st->message : "");
    failures++;
  }
}

/* Runs the loop until every started call closed (bounded by the calls'
 * deadlines plus a margin). */
static void wait_calls(sgrpc_epoll *loop) {
  int64_t give_up = sgrpc_epoll_now() + CALL_TIMEOUT_NS + 2000000000;
  while (pending > 0 && sgrpc_epoll_now() < give_up)
    if (sgrpc_epoll_run_once(loop, 100) < 0) break;
  if (pending > 0) {
    printf("gave up waiting for %d call(s)\n", pending);
    failures++;
  }
}

static sgrpc_rpc_opts call_opts(void *user_data) {
  sgrpc_rpc_opts o;
  memset(&o, 0, sizeof(o));
  o.deadline = sgrpc_epoll_now() + CALL_TIMEOUT_NS; /* the adapter's clock */
  o.user_data = user_data;
  return o;
}

static void got_feature(sgrpc_client_call *c, const sgrpc_status_info *st, const Feature *f,
                        void *ud) {
  (void)c;
  (void)ud;
  pending--;
  check("GetFeature", st);
  if (f)
    printf("GetFeature: (%d, %d) -> \"%s\"\n", f->location->latitude, f->location->longitude,
           f->name[0] ? f->name : "(no feature)");
}

static void listed_feature(sgrpc_client_call *c, const Feature *f, void *ud) {
  (void)c;
  (*(int *)ud)++;
  printf("ListFeatures: \"%s\" at (%d, %d)\n", f->name, f->location->latitude,
         f->location->longitude);
}

static void list_done(sgrpc_client_call *c, const sgrpc_status_info *st, const Feature *f,
                      void *ud) {
  (void)c;
  (void)f;
  pending--;
  check("ListFeatures", st);
  printf("ListFeatures: %d features in the rectangle\n", *(int *)ud);
}

static void route_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                       const Routeguide__RouteSummary *s, void *ud) {
  (void)c;
  (void)ud;
  pending--;
  check("RecordRoute", st);
  if (s)
    printf("RecordRoute: %d points, %d features, distance %d\n", s->point_count,
           s->feature_count, s->distance);
}

static void chat_note(sgrpc_client_call *c, const Routeguide__RouteNote *n, void *ud) {
  (void)c;
  (*(int *)ud)++;
  printf("RouteChat: got \"%s\" at (%d, %d)\n", n->message, n->location->latitude,
         n->location->longitude);
}

static void chat_done(sgrpc_client_call *c, const sgrpc_status_info *st,
                      const Routeguide__RouteNote *n, void *ud) {
  (void)c;
  (void)n;
  pending--;
  check("RouteChat", st);
  printf("RouteChat: %d notes came back\n", *(int *)ud);
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051";
  sgrpc_epoll *loop = NULL;
  sgrpc_net_channel *channel = NULL;
  sgrpc_net_channel_opts copts;
  sgrpc_rpc_client client;
  sgrpc_rpc_opts opts;
  sgrpc_client_call *call;
  int listed = 0, chatted = 0, i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
      target = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--target host:port]\n", argv[0]);
      return 1;
    }
  }
  memset(&copts, 0, sizeof(copts));
  copts.target = target;
  if (sgrpc_epoll_new(&loop, NULL) != 0 || sgrpc_epoll_channel_new(loop, &copts, &channel) != 0) {
    fprintf(stderr, "route_guide_client: bad target %s\n", target);
    sgrpc_epoll_del(loop);
    return 1;
  }
  /* Generated client functions now start their calls on the channel. */
  sgrpc_net_rpc_client_init(&client, channel, NULL);

  { /* unary: one point with a feature, one without */
    Point p = ROUTEGUIDE__POINT__INIT;
    p.latitude = 409146138;
    p.longitude = -746188906;
    opts = call_opts(NULL);
    if (routeguide__route_guide__get_feature__call(&client, &p, &opts, sgrpc_epoll_now(),
                                                   got_feature, NULL) == 0)
      pending++;
    p.latitude = 407838351;
    p.longitude = -746143763;
    if (routeguide__route_guide__get_feature__call(&client, &p, &opts, sgrpc_epoll_now(),
                                                   got_feature, NULL) == 0)
      pending++;
    if (pending != 2) failures++;
    wait_calls(loop);
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
    opts = call_opts(&listed);
    if (routeguide__route_guide__list_features__call(&client, &r, &opts, sgrpc_epoll_now(),
                                                     listed_feature, list_done, NULL) == 0)
      pending++;
    else
      failures++;
    wait_calls(loop);
  }
  { /* client streaming: a route over the known features, twice round */
    static const int32_t route[][2] = {{407838351, -746143763}, {408122808, -743999179},
                                       {413628156, -749015468}, {419999544, -740371136},
                                       {409146138, -746188906}};
    opts = call_opts(NULL);
    if (routeguide__route_guide__record_route__call(&client, &opts, sgrpc_epoll_now(),
                                                    route_done, &call) == 0) {
      pending++;
      for (i = 0; i < 10; i++) {
        Point p = ROUTEGUIDE__POINT__INIT;
        p.latitude = route[i % 5][0];
        p.longitude = route[i % 5][1];
        if (sgrpc_client_call_send(call, &p) != 0) failures++;
      }
      printf("RecordRoute: sent 10 points\n");
      if (sgrpc_client_call_close_send(call) != 0) failures++;
    } else {
      failures++;
    }
    wait_calls(loop);
  }
  { /* bidirectional: notes at two places; each repeat brings the old one back */
    static const char *msgs[] = {"First message", "Second message", "Third message",
                                 "Fourth message"};
    opts = call_opts(&chatted);
    if (routeguide__route_guide__route_chat__call(&client, &opts, sgrpc_epoll_now(), chat_note,
                                                  chat_done, &call) == 0) {
      pending++;
      for (i = 0; i < 4; i++) {
        Routeguide__RouteNote n = ROUTEGUIDE__ROUTE_NOTE__INIT;
        Point p = ROUTEGUIDE__POINT__INIT;
        p.latitude = i % 2;
        p.longitude = 1;
        n.location = &p;
        n.message = (char *)msgs[i];
        printf("RouteChat: sending \"%s\" at (%d, %d)\n", n.message, p.latitude, p.longitude);
        if (sgrpc_client_call_send(call, &n) != 0) failures++;
        sgrpc_epoll_run_once(loop, 10); /* replies interleave with requests */
      }
      if (sgrpc_client_call_close_send(call) != 0) failures++;
    } else {
      failures++;
    }
    wait_calls(loop);
  }

  sgrpc_net_channel_close(channel, sgrpc_epoll_now());
  sgrpc_epoll_del(loop);
  if (listed != 4 || chatted != 2) {
    printf("unexpected counts: %d features listed, %d notes back\n", listed, chatted);
    failures++;
  }
  printf("%s\n", failures ? "FAILED" : "route_guide_client: all four RPC kinds OK");
  return failures ? 1 : 0;
}
