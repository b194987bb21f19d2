/* One SayHello through the generated stubs, client and server connections
 * in one process (bytes moved by hand, as a socket would). Exits 0 and
 * prints the reply when it came back right. */
#include <stdio.h>
#include <string.h>

#include <sgrpc/health.h>
#include <sgrpc/reflection.h>

#include "hello/v1/greet.sgrpc.h"

#include <sgrpc/events.h>
#include <sgrpc/testing.h>

static void say_hello(sgrpc_server_call *call, const Hello__V1__HelloRequest *req, void *ud) {
  Hello__Common__Greeting r = HELLO__COMMON__GREETING__INIT;
  char text[128];
  (void)ud;
  snprintf(text, sizeof(text), "hello %s", req->name);
  r.message = text;
  sgrpc_server_call_reply(call, &r);
}

static int done, ok;

static void on_done(sgrpc_client_call *call, const sgrpc_status_info *st,
                    const Hello__Common__Greeting *reply, void *ud) {
  (void)call, (void)ud;
  done = 1;
  ok = st->code == SGRPC_STATUS_OK && reply && strcmp(reply->message, "hello consumer") == 0;
  printf("consumer: %s %s\n", sgrpc_status_name(st->code), reply ? reply->message : "-");
}

static int hooks_run;

static void count_hook(sgrpc_hook_event *ev, void *ud) {
  (void)ev, (void)ud;
  hooks_run++;
}

static void drain(sgrpc_conn *conn, sgrpc_router *router) {
  sgrpc_event ev;
  while (sgrpc_conn_next_event(conn, &ev) == 1) {
    if (router) sgrpc_router_dispatch(router, conn, &ev, 1);
    else sgrpc_event_dispatch(&ev, 1);
    if (ev.type == SGRPC_EV_CLOSE) sgrpc_call_release(ev.call);
  }
}

/* Moves from's pending output into to; returns the bytes moved. */
static size_t pump(sgrpc_conn *from, sgrpc_router *from_r, sgrpc_conn *to, sgrpc_router *to_r) {
  static uint8_t buf[1 << 16];
  const uint8_t *data;
  ssize_t n;
  size_t off = 0;
  drain(from, from_r);
  n = sgrpc_conn_out_peek(from, &data);
  if (n <= 0) return 0;
  if ((size_t)n > sizeof(buf)) n = (ssize_t)sizeof(buf);
  memcpy(buf, data, (size_t)n);
  sgrpc_conn_out_consume(from, (size_t)n);
  while (off < (size_t)n) {
    ssize_t got = sgrpc_conn_recv(to, buf + off, (size_t)n - off, 1);
    if (got <= 0) break;
    off += (size_t)got;
    drain(to, to_r);
  }
  return off;
}

int main(void) {
  sgrpc_conn *cli, *srv;
  sgrpc_router *router;
  sgrpc_rpc_client client;
  sgrpc_health *health;
  sgrpc_reflection *refl;
  Hello__V1__Greeter_SgrpcServer impl;
  Hello__V1__HelloRequest req = HELLO__V1__HELLO_REQUEST__INIT;
  int i;
  memset(&impl, 0, sizeof(impl));
  impl.say_hello = say_hello;
  if (sgrpc_conn_client_new(&cli, NULL, NULL, 1) || sgrpc_conn_server_new(&srv, NULL, NULL, 1) ||
      sgrpc_router_new(&router, NULL) ||
      hello__v1__greeter__sgrpc_register(router, &impl, NULL))
    return 2;
  /* the installed health and reflection services register beside it */
  if (sgrpc_health_new(&health, NULL) ||
      sgrpc_health_set(health, "hello.v1.Greeter", SGRPC_HEALTH_SERVING) ||
      sgrpc_health_register(health, router) || sgrpc_reflection_new(&refl, NULL) ||
      sgrpc_reflection_add_service(refl, &hello__v1__greeter__sgrpc_service) ||
      sgrpc_reflection_add_service(refl, sgrpc_health_service()) ||
      sgrpc_reflection_register(refl, router) ||
      !sgrpc_router_find(router, "/grpc.health.v1.Health/Watch", 28))
    return 4;
  sgrpc_rpc_client_init(&client, cli, NULL);
  req.name = "consumer";
  if (hello__v1__greeter__say_hello__call(&client, &req, NULL, 1, on_done, NULL) != 0) return 3;
  /* until the reply came and nothing moves any more: the server's call
   * ends (and is freed) when its side of the stream closes */
  for (i = 0; i < 1000; i++) {
    size_t moved = pump(cli, NULL, srv, router) + pump(srv, router, cli, NULL);
    if (done && !moved) break;
  }
  sgrpc_conn_del(cli);
  sgrpc_conn_del(srv);
  /* the same call over the installed test channel, with a client hook */
  {
    sgrpc_test_channel *ch;
    sgrpc_events *ev;
    if (!ok || sgrpc_test_channel_new(&ch, router, NULL) || sgrpc_events_new(&ev, NULL) ||
        sgrpc_events_listen(ev, SGRPC_HOOK_SEND_REQUEST, count_hook, NULL))
      return 4;
    sgrpc_rpc_client_set_events(sgrpc_test_channel_client(ch), ev);
    done = ok = 0;
    if (hello__v1__greeter__say_hello__call(sgrpc_test_channel_client(ch), &req, NULL,
                                            sgrpc_test_channel_now(ch), on_done, NULL) ||
        sgrpc_test_channel_run(ch, 0) || !done || hooks_run != 1)
      return 5;
    sgrpc_test_channel_del(ch);
    sgrpc_events_del(ev);
  }
  sgrpc_health_del(health);
  sgrpc_reflection_del(refl);
  sgrpc_router_del(router);
  printf("consumer: service %s from %s, %zu bytes of descriptor\n",
         hello__v1__greeter__sgrpc_service.name, hello__v1__greeter__sgrpc_service.file_name,
         hello__v1__greeter__sgrpc_service.file_descriptor_len);
  return ok ? 0 : 1;
}
