/*
 * greeter_server: the Greeter service over TCP with the epoll adapter.
 *
 *   greeter_server --listen 127.0.0.1:50051 [--no-health-reflection]
 *
 * Serves grpc.health.v1.Health and server reflection besides the Greeter
 * (so grpcurl and grpc_health_probe work) unless --no-health-reflection.
 *
 * Prints "listening on port N" once bound; SIGINT/SIGTERM drains and
 * exits 0 (a second signal exits at once); exit status 2 when the address
 * cannot be bound.
 */
#include <stdio.h>
#include <string.h>

#include <sgrpc/epoll.h>
#include <sgrpc/health.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/reflection.h>

#include "helloworld.sgrpc.h"

static void say_hello(sgrpc_server_call *call, const Helloworld__HelloRequest *req,
                      void *user_data) {
  Helloworld__HelloReply reply = HELLOWORLD__HELLO_REPLY__INIT;
  char text[256];
  (void)user_data;
  if (!req->name || !req->name[0]) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "name is required");
    return;
  }
  printf("greeter_server: SayHello(\"%s\")\n", req->name);
  fflush(stdout);
  snprintf(text, sizeof(text), "Hello %s", req->name);
  reply.message = text;
  if (sgrpc_server_call_reply(call, &reply) < 0) /* the connection's output is full */
    sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:50051";
  sgrpc_epoll *loop = NULL;
  sgrpc_net_server *server = NULL;
  sgrpc_net_listen_opts sopts;
  sgrpc_router *router = NULL;
  sgrpc_health *health = NULL;
  sgrpc_reflection *refl = NULL;
  Helloworld__Greeter_SgrpcServer greeter;
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
  memset(&greeter, 0, sizeof(greeter));
  greeter.say_hello = say_hello;
  if (helloworld__greeter__sgrpc_register(router, &greeter, NULL) != 0) goto out;
  /* Reflection describes every service registered on the router, with
   * the files their .proto imports, from the generated descriptions. */
  if (std_services &&
      (sgrpc_health_new(&health, NULL) != 0 ||
       sgrpc_health_set(health, "helloworld.Greeter", SGRPC_HEALTH_SERVING) != 0 ||
       sgrpc_health_register(health, router) != 0 || sgrpc_reflection_new(&refl, NULL) != 0 ||
       sgrpc_reflection_register(refl, router) != 0))
    goto out;

  memset(&sopts, 0, sizeof(sopts));
  sopts.listen = listen;
  sopts.server.on_event = sgrpc_net_router_event;
  sopts.server.user_data = router;
  sopts.server.drain_timeout_ns = 5000000000;
  rv = sgrpc_epoll_listen(loop, &sopts, &server);
  if (rv != 0) {
    fprintf(stderr, "greeter_server: cannot listen on %s: %s (%d)\n", listen,
            sgrpc_strerror(rv), rv);
    status = 2;
    goto out;
  }
  if (sgrpc_epoll_catch_signals(loop, NULL, NULL) != 0) goto out;
  printf("greeter_server: listening on port %d\n", sgrpc_net_server_port(server));
  fflush(stdout);
  status = sgrpc_epoll_run(loop) == 0 ? 0 : 1;
  printf("greeter_server: stopped\n");
out:
  sgrpc_epoll_del(loop); /* no call reaches the services after this */
  sgrpc_reflection_del(refl);
  sgrpc_health_del(health);
  sgrpc_router_del(router);
  return status;
}
