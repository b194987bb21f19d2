/* libsgrpc-uv: the adapter bound to the consumer's own libuv loop listens
 * on 127.0.0.1 (a port below 32768), then is deleted; libuv closes
 * handles asynchronously, so the loop runs until they are closed before
 * uv_loop_close. */
#include <stdio.h>
#include <string.h>
#include <sgrpc/uv.h>
#include "consumer.h"

static void on_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *ud, int64_t now) {
  (void)c, (void)ev, (void)ud, (void)now;
}

int consumer_loop(void) {
  uv_loop_t loop;
  sgrpc_uv *u;
  sgrpc_net_server *s;
  sgrpc_net_listen_opts o;
  char addr[32];
  int port = 0, tries, rv = -1;
  if (uv_loop_init(&loop) != 0) return 1;
  if (sgrpc_uv_new(&u, &loop, NULL) != 0) return 1;
  memset(&o, 0, sizeof(o));
  o.server.on_event = on_event;
  for (tries = 0; tries < 50 && rv != 0; tries++) {
    o.listen = consumer_low_addr(addr, sizeof(addr));
    rv = sgrpc_uv_listen(u, &o, &s);
  }
  if (rv == 0) port = sgrpc_net_server_port(s);
  sgrpc_uv_del(u);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) return 1;
  printf("uv: listened on 127.0.0.1:%d on a libuv loop\n", port);
  return port > 0 ? 0 : 1;
}
