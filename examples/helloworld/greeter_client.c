/*
 * greeter_client: calls SayHello on a Greeter server over an epoll
 * channel, once with a name and once without (the server refuses that
 * one with INVALID_ARGUMENT).
 *
 *   greeter_client --target 127.0.0.1:50051 [--name NAME]
 *
 * Exit status 0 when the first call succeeded and the second was refused.
 */
#include <stdio.h>
#include <string.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>

#include "helloworld.sgrpc.h"

typedef struct result {
  int done;
  int code;
} result;

static void on_reply(sgrpc_client_call *call, const sgrpc_status_info *status,
                     const Helloworld__HelloReply *reply, void *user_data) {
  result *r = user_data;
  (void)call;
  r->done = 1;
  r->code = status->code;
  if (status->code == SGRPC_STATUS_OK)
    printf("Greeter client received: %s\n", reply->message);
  else
    printf("Greeter client failed: %s: %.*s\n", sgrpc_status_name(status->code),
           (int)status->message_len, status->message ? status->message : "");
}

/* One SayHello, run to completion (bounded by its 5 s deadline). */
static int say_hello(sgrpc_rpc_client *client, sgrpc_epoll *loop, const char *name) {
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  sgrpc_rpc_opts opts;
  result r = {0, -1};
  int64_t give_up;
  memset(&opts, 0, sizeof(opts));
  req.name = (char *)name;
  opts.deadline = sgrpc_epoll_now() + 5000000000; /* 5 s on the adapter's clock */
  opts.user_data = &r;
  if (helloworld__greeter__say_hello__call(client, &req, &opts, sgrpc_epoll_now(), on_reply,
                                           NULL) != 0)
    return -1;
  give_up = opts.deadline + 2000000000;
  while (!r.done && sgrpc_epoll_now() < give_up)
    if (sgrpc_epoll_run_once(loop, 100) < 0) break;
  return r.done ? r.code : -1;
}

int main(int argc, char **argv) {
  const char *target = "127.0.0.1:50051", *name = "world";
  sgrpc_epoll *loop = NULL;
  sgrpc_net_channel *channel = NULL;
  sgrpc_net_channel_opts copts;
  sgrpc_rpc_client client;
  int i, ok;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
      target = argv[++i];
    } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
      name = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--target host:port] [--name NAME]\n", argv[0]);
      return 1;
    }
  }
  memset(&copts, 0, sizeof(copts));
  copts.target = target;
  if (sgrpc_epoll_new(&loop, NULL) != 0 || sgrpc_epoll_channel_new(loop, &copts, &channel) != 0) {
    fprintf(stderr, "greeter_client: bad target %s\n", target);
    sgrpc_epoll_del(loop);
    return 1;
  }
  sgrpc_net_rpc_client_init(&client, channel, NULL);
  ok = say_hello(&client, loop, name) == SGRPC_STATUS_OK;
  ok &= say_hello(&client, loop, "") == SGRPC_STATUS_INVALID_ARGUMENT;
  sgrpc_net_channel_close(channel, sgrpc_epoll_now());
  sgrpc_epoll_del(loop);
  printf("%s\n", ok ? "greeter_client: OK" : "greeter_client: FAILED");
  return ok ? 0 : 1;
}
