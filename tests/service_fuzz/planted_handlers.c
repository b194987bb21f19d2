/*
 * A handler set with a planted bug, built only for the service fuzzer's
 * test: PairSum takes the values two at a time and trusts that their
 * count is even, so an odd count reads one element past the repeated
 * field's array. The fuzzer (with ASan) must find it within a bounded
 * run; see docs/fuzzing.md.
 */
#include <sgrpc/service_fuzz.h>

#include "planted.sgrpc.h"

int planted_register(sgrpc_router *router, void *ctx);

static void pair_sum(sgrpc_server_call *call, const Planted__Batch *req, void *user_data) {
  Planted__Sum sum = PLANTED__SUM__INIT;
  size_t i;
  (void)user_data;
  for (i = 0; i < req->n_values; i += 2)
    sum.total += (int64_t)req->values[i] * req->values[i + 1]; /* the bug */
  (void)sgrpc_server_call_reply(call, &sum);
}

int planted_register(sgrpc_router *router, void *ctx) {
  static Planted__Summer_SgrpcServer impl;
  (void)ctx;
  impl.pair_sum = pair_sum;
  return planted__summer__sgrpc_register(router, &impl, NULL);
}
