/* libsgrpc-epoll: the adapter on its own loop listens on 127.0.0.1 (a port
 * below 32768), then everything is deleted. */
#include <stdio.h>
#include <string.h>
#include <sgrpc/epoll.h>
#include "consumer.h"

static void on_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *ud, int64_t now) {
  (void)c, (void)ev, (void)ud, (void)now;
}

int consumer_loop(void) {
  sgrpc_epoll *e;
  sgrpc_net_server *s;
  sgrpc_net_listen_opts o;
  char addr[32];
  int port, tries, rv = -1;
  if (sgrpc_epoll_new(&e, NULL) != 0) return 1;
  memset(&o, 0, sizeof(o));
  o.server.on_event = on_event;
  for (tries = 0; tries < 50 && rv != 0; tries++) {
    o.listen = consumer_low_addr(addr, sizeof(addr));
    rv = sgrpc_epoll_listen(e, &o, &s);
  }
  if (rv != 0) {
    sgrpc_epoll_del(e);
    return 1;
  }
  port = sgrpc_net_server_port(s);
  sgrpc_epoll_del(e);
  printf("epoll: listened on 127.0.0.1:%d\n", port);
  return port > 0 ? 0 : 1;
}
