/* libsgrpc-epoll: the adapter's loop, created and deleted. */
#include <stdio.h>
#include <sgrpc/epoll.h>
#include "consumer.h"

int consumer_loop(void) {
  sgrpc_epoll_loop *loop;
  if (sgrpc_epoll_loop_new(&loop) != 0) return 1;
  sgrpc_epoll_loop_del(loop);
  printf("epoll: loop created and deleted\n");
  return 0;
}
