/* libsgrpc-uv: the adapter bound to the consumer's own libuv loop, then
 * deleted; libuv closes handles asynchronously, so the loop runs until
 * the adapter's handles are closed before uv_loop_close. */
#include <stdio.h>
#include <sgrpc/uv.h>
#include "consumer.h"

int consumer_loop(void) {
  uv_loop_t loop;
  sgrpc_uv *u;
  if (uv_loop_init(&loop) != 0) return 1;
  if (sgrpc_uv_new(&u, &loop) != 0) return 1;
  sgrpc_uv_del(u);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) return 1;
  printf("uv: adapter created and deleted on a libuv loop\n");
  return 0;
}
