/* libsgrpc-kqueue: the adapter's loop, created and deleted. */
#include <stdio.h>
#include <sgrpc/kqueue.h>
#include "consumer.h"

int consumer_loop(void) {
  sgrpc_kq_loop *loop;
  if (sgrpc_kq_loop_new(&loop) != 0) return 1;
  sgrpc_kq_loop_del(loop);
  printf("kqueue: loop created and deleted\n");
  return 0;
}
