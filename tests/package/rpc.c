/* libsgrpc-rpc: a router with one raw-bytes method, found by its path. */
#include <stdio.h>
#include <string.h>
#include <sgrpc/rpc.h>
#include "consumer.h"

static void on_request(sgrpc_server_call *call, const void *msg, void *user_data) {
  (void)call, (void)msg, (void)user_data;
}

int consumer_rpc(void) {
  static const char path[] = "/consumer.Echo/Say";
  static const sgrpc_method method = {path, NULL, NULL, 0, 0, &sgrpc_codec_raw};
  sgrpc_handler handler = {0};
  sgrpc_router *router;
  int ok;
  handler.on_request = on_request;
  if (sgrpc_router_new(&router, NULL) != 0) return 1;
  ok = sgrpc_router_add(router, &method, &handler) == 0 &&
       sgrpc_router_find(router, path, strlen(path)) == &method;
  sgrpc_router_del(router);
  printf("rpc: router %s\n", ok ? "routes /consumer.Echo/Say" : "FAILED");
  return ok ? 0 : 1;
}
