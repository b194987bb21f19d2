/*
 * helloworld: the Greeter service from grpc's examples, server and client
 * in one process over sgrpc's in-memory test channel (<sgrpc/testing.h>): a
 * client and a server engine whose bytes are moved into each other. A real
 * program does the same with a socket: read -> sgrpc_conn_recv -> pull
 * events -> dispatch, and write what sgrpc_conn_out_peek returns.
 */
#include <stdio.h>
#include <string.h>

#include <sgrpc/testing.h>

#include "helloworld.sgrpc.h"

/* ---- server ---- */

static void say_hello(sgrpc_server_call *call, const Helloworld__HelloRequest *req,
                      void *user_data) {
  Helloworld__HelloReply reply = HELLOWORLD__HELLO_REPLY__INIT;
  char text[256];
  (void)user_data;
  if (!req->name || !req->name[0]) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_INVALID_ARGUMENT, "name is required");
    return;
  }
  snprintf(text, sizeof(text), "Hello %s", req->name);
  reply.message = text;
  /* packs, sends, status OK; fails only when the connection's whole
   * outbound queue is full (then nothing went: end the call instead) */
  if (sgrpc_server_call_reply(call, &reply) < 0)
    sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
}

/* ---- client ---- */

static void on_reply(sgrpc_client_call *call, const sgrpc_status_info *status,
                     const Helloworld__HelloReply *reply, void *user_data) {
  int *failures = user_data;
  (void)call;
  if (status->code == SGRPC_STATUS_OK) {
    printf("Greeter client received: %s\n", reply->message);
  } else {
    printf("Greeter client failed: %s: %s\n", sgrpc_status_name(status->code), status->message);
    (*failures)++;
  }
}

int main(int argc, char **argv) {
  sgrpc_router *router;
  sgrpc_test_channel *ch;
  sgrpc_rpc_client *client;
  Helloworld__Greeter_SgrpcServer greeter = {0};
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  sgrpc_rpc_opts opts = {0};
  int failures = 0;

  if (sgrpc_router_new(&router, NULL) != 0) return 1;
  greeter.say_hello = say_hello;
  if (helloworld__greeter__sgrpc_register(router, &greeter, NULL) != 0) return 1;
  if (sgrpc_test_channel_new(&ch, router, NULL) != 0) return 1;

  client = sgrpc_test_channel_client(ch);
  req.name = argc > 1 ? argv[1] : "world";
  opts.deadline = sgrpc_test_channel_now(ch) + 5000000000; /* 5 s */
  opts.user_data = &failures;
  if (helloworld__greeter__say_hello__call(client, &req, &opts, sgrpc_test_channel_now(ch),
                                          on_reply, NULL) != 0 ||
      sgrpc_test_channel_run(ch, 0) != 0)
    return 1;

  req.name = ""; /* the server refuses this one */
  if (helloworld__greeter__say_hello__call(client, &req, &opts, sgrpc_test_channel_now(ch),
                                          on_reply, NULL) != 0 ||
      sgrpc_test_channel_run(ch, 0) != 0)
    return 1;

  sgrpc_test_channel_del(ch);
  sgrpc_router_del(router);
  return failures == 1 ? 0 : 1;
}
