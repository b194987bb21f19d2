/*
 * route_guide_server: the RouteGuide service (route_guide_service.c) over
 * TCP with the epoll adapter.
 *
 *   route_guide_server --listen 127.0.0.1:50051 [--no-health-reflection]
 *
 * Serves grpc.health.v1.Health and server reflection besides RouteGuide
 * unless --no-health-reflection.
 *
 * Prints "listening on port N" once bound. SIGINT/SIGTERM: the first
 * drains the calls in flight and exits 0, a second one exits at once.
 * Exit status 2 when the address cannot be bound.
 */
#include <stdio.h>
#include <string.h>

#include <sgrpc/epoll.h>
#include <sgrpc/health.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/reflection.h>

#include "route_guide_service.h"

static void on_signal(sgrpc_net_loop *loop, int signo, int count, void *ud) {
  (void)loop;
  (void)ud;
  fprintf(stderr, "route_guide_server: signal %d (%s)\n", signo,
          count == 1 ? "draining" : "exiting now");
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:50051";
  sgrpc_epoll *loop = NULL;
  sgrpc_net_server *server = NULL;
  sgrpc_net_listen_opts sopts;
  sgrpc_router *router = NULL;
  sgrpc_health *health = NULL;
  sgrpc_reflection *refl = NULL;
  Routeguide__RouteGuide_SgrpcServer impl;
  int i, rv, status = 1, std_services = 1;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else if (strcmp(argv[i], "--no-health-reflection") == 0) {
      std_services = 0;
    } else {
      fprintf(stderr, "usage: %s [--listen host:port] [--no-health-reflection]\n", argv[0]);
      return 1;
    }
  }

  if (sgrpc_epoll_new(&loop, NULL) != 0 || sgrpc_router_new(&router, NULL) != 0) goto out;
  /* The adapter releases each call after its CLOSE: the router must not. */
  route_guide_service_init(&impl);
  if (routeguide__route_guide__sgrpc_register(router, &impl, NULL) != 0) goto out;
  /* Health and reflection (grpcurl, grpc_health_probe) unless
   * --no-health-reflection: reflection describes what the router serves. */
  if (std_services &&
      (sgrpc_health_new(&health, NULL) != 0 ||
       sgrpc_health_set(health, "routeguide.RouteGuide", SGRPC_HEALTH_SERVING) != 0 ||
       sgrpc_health_register(health, router) != 0 || sgrpc_reflection_new(&refl, NULL) != 0 ||
       sgrpc_reflection_register(refl, router) != 0))
    goto out;

  memset(&sopts, 0, sizeof(sopts));
  sopts.listen = listen;
  sopts.server.on_event = sgrpc_net_router_event;
  sopts.server.user_data = router;
  sopts.server.drain_timeout_ns = 5000000000; /* 5 s */
  rv = sgrpc_epoll_listen(loop, &sopts, &server);
  if (rv != 0) {
    fprintf(stderr, "route_guide_server: cannot listen on %s: %s (%d)\n", listen,
            sgrpc_strerror(rv), rv);
    status = 2;
    goto out;
  }
  if (sgrpc_epoll_catch_signals(loop, on_signal, NULL) != 0) goto out;
  printf("route_guide_server: listening on port %d\n", sgrpc_net_server_port(server));
  fflush(stdout);

  /* Returns once a signal has shut the server down and its calls ended. */
  status = sgrpc_epoll_run(loop) == 0 ? 0 : 1;
  printf("route_guide_server: stopped\n");

out:
  sgrpc_epoll_del(loop); /* frees the server and its connections */
  sgrpc_reflection_del(refl);
  sgrpc_health_del(health);
  sgrpc_router_del(router);
  return status;
}
