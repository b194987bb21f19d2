/*
 * The route_guide service under the service fuzzer (<sgrpc/service_fuzz.h>,
 * built by sgrpc_add_service_fuzzer() in this folder's CMakeLists.txt):
 * the harness calls this to put the real handlers on its router, once
 * per fuzzer input.
 */
#include <sgrpc/service_fuzz.h>

#include "route_guide_service.h"

int route_guide_fuzz_register(sgrpc_router *router, void *ctx);

int route_guide_fuzz_register(sgrpc_router *router, void *ctx) {
  /* the struct must outlive the router: static, filled the same each time */
  static Routeguide__RouteGuide_SgrpcServer impl;
  (void)ctx;
  route_guide_service_init(&impl);
  return routeguide__route_guide__sgrpc_register(router, &impl, NULL);
}
