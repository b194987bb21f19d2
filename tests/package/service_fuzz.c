/* sgrpc_add_service_fuzzer() from the installed package: a one-method
 * raw-bytes service whose handler echoes the request. */
#include <sgrpc/service_fuzz.h>

int consumer_fuzz_register(sgrpc_router *router, void *ctx);

static const sgrpc_method consumer_methods[] = {
    {"/consumer.Echo/Say", NULL, NULL, 0, 0, &sgrpc_codec_raw}};
/* what protoc-gen-sgrpc would emit for a service */
const sgrpc_service_desc consumer_echo_service = {"consumer.Echo", consumer_methods, 1, NULL,
                                                  NULL, 0, NULL, 0};

static void on_request(sgrpc_server_call *call, const void *msg, void *user_data) {
  (void)user_data;
  (void)sgrpc_server_call_reply(call, msg);
}

int consumer_fuzz_register(sgrpc_router *router, void *ctx) {
  sgrpc_handler h = {0};
  (void)ctx;
  h.on_request = on_request;
  return sgrpc_router_add(router, &consumer_methods[0], &h);
}
