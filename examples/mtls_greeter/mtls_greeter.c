/*
 * mtls_greeter: the Greeter service behind mutual TLS, authorizing each
 * call by the client certificate (sgrpc_server_call_peer): only a verified
 * certificate that names spiffe://sgrpc.test/client (URI SAN) is greeted;
 * any other client gets PERMISSION_DENIED. Server and two clients run on
 * one epoll loop in this process, so the example is self-contained:
 *
 *   sh tests/tls/make_certs.sh DIR      # ca, server, client, intruder
 *   mtls_greeter DIR
 *
 * Prints what each client got and exits 0 when the allowed client was
 * greeted and the intruder (a valid certificate from the same CA, for
 * spiffe://sgrpc.test/intruder) was refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sgrpc/epoll.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/tls_openssl.h>

#include "helloworld.sgrpc.h"

#define ALLOWED_ID "spiffe://sgrpc.test/client"

/* ---- server ---- */

/* The identity a call may act as: the URI SAN of a verified client
 * certificate, or NULL. */
static const char *caller_id(sgrpc_server_call *call) {
  sgrpc_peer peer;
  size_t i;
  if (sgrpc_server_call_peer(call, &peer) != 0 || !peer.has_cert || !peer.cert_verified)
    return NULL;
  for (i = 0; i < peer.san_count; i++)
    if (peer.sans[i].type == SGRPC_PEER_SAN_URI) return peer.sans[i].value;
  return NULL;
}

static void say_hello(sgrpc_server_call *call, const Helloworld__HelloRequest *req,
                      void *user_data) {
  Helloworld__HelloReply reply = HELLOWORLD__HELLO_REPLY__INIT;
  const char *id = caller_id(call);
  sgrpc_peer peer;
  char text[512];
  (void)user_data;
  (void)sgrpc_server_call_peer(call, &peer);
  printf("server: call from %s, user-agent \"%s\", certificate subject \"%s\"\n", peer.address,
         sgrpc_server_call_user_agent(call), peer.cert_subject);
  if (!id || strcmp(id, ALLOWED_ID) != 0) {
    sgrpc_server_call_fail(call, SGRPC_STATUS_PERMISSION_DENIED, "client certificate not allowed");
    return;
  }
  snprintf(text, sizeof(text), "Hello %s, you are %s", req->name ? req->name : "", id);
  reply.message = text;
  if (sgrpc_server_call_reply(call, &reply) < 0)
    sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "server busy");
}

/* ---- clients ---- */

typedef struct result {
  int done, code;
  char text[512];
} result;

static void on_reply(sgrpc_client_call *call, const sgrpc_status_info *status,
                     const Helloworld__HelloReply *reply, void *user_data) {
  result *r = user_data;
  (void)call;
  r->done = 1;
  r->code = status->code;
  if (status->code == SGRPC_STATUS_OK)
    snprintf(r->text, sizeof(r->text), "%s", reply->message);
  else
    snprintf(r->text, sizeof(r->text), "%s: %.*s", sgrpc_status_name(status->code),
             (int)status->message_len, status->message ? status->message : "");
}

/* One SayHello from a client holding certificate `who` (DIR/who.pem and
 * .key). Returns the status code, or -1. */
static int call_as(sgrpc_epoll *loop, int port, const char *dir, const char *who) {
  char target[64], ca[512], cert[512], key[512], err[256];
  sgrpc_tls_openssl_options to;
  sgrpc_tls_openssl_ctx *ctx = NULL;
  sgrpc_net_channel_opts co;
  sgrpc_net_channel *ch = NULL;
  sgrpc_rpc_client client;
  sgrpc_rpc_opts opts;
  Helloworld__HelloRequest req = HELLOWORLD__HELLO_REQUEST__INIT;
  result r = {0, -1, ""};
  int64_t give_up;
  snprintf(target, sizeof(target), "127.0.0.1:%d", port);
  snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
  snprintf(cert, sizeof(cert), "%s/%s.pem", dir, who);
  snprintf(key, sizeof(key), "%s/%s.key", dir, who);
  sgrpc_tls_openssl_options_default(&to);
  to.ca_file = ca;
  to.cert_file = cert;
  to.key_file = key;
  to.target_name_override = "localhost"; /* the server certificate's name */
  if (sgrpc_tls_openssl_ctx_new(&ctx, &to, err, sizeof(err)) != 0) {
    fprintf(stderr, "client TLS: %s\n", err);
    return -1;
  }
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.make_tls = sgrpc_tls_openssl_factory;
  co.tls_user_data = ctx;
  if (sgrpc_epoll_channel_new(loop, &co, &ch) != 0) goto out;
  sgrpc_net_rpc_client_init(&client, ch, NULL);
  memset(&opts, 0, sizeof(opts));
  opts.deadline = sgrpc_epoll_now() + 5000000000; /* 5 s */
  opts.user_data = &r;
  req.name = (char *)who;
  if (helloworld__greeter__say_hello__call(&client, &req, &opts, sgrpc_epoll_now(), on_reply,
                                           NULL) != 0)
    goto out;
  give_up = opts.deadline + 2000000000;
  while (!r.done && sgrpc_epoll_now() < give_up)
    if (sgrpc_epoll_run_once(loop, 100) < 0) break;
  printf("%s: %s\n", who, r.done ? r.text : "no answer");
out:
  sgrpc_net_channel_del(ch);
  sgrpc_tls_openssl_ctx_del(ctx);
  return r.done ? r.code : -1;
}

int main(int argc, char **argv) {
  char ca[512], cert[512], key[512], err[256];
  sgrpc_epoll *loop = NULL;
  sgrpc_router *router = NULL;
  sgrpc_net_server *server = NULL;
  sgrpc_net_listen_opts so;
  sgrpc_tls_openssl_options to;
  sgrpc_tls_openssl_ctx *sctx = NULL;
  Helloworld__Greeter_SgrpcServer greeter;
  int status = 1, allowed, intruder;
  if (argc != 2) {
    fprintf(stderr, "usage: %s CERTDIR (made by tests/tls/make_certs.sh)\n", argv[0]);
    return 1;
  }
  snprintf(ca, sizeof(ca), "%s/ca.pem", argv[1]);
  snprintf(cert, sizeof(cert), "%s/server.pem", argv[1]);
  snprintf(key, sizeof(key), "%s/server.key", argv[1]);
  sgrpc_tls_openssl_options_default(&to);
  to.is_server = 1;
  to.cert_file = cert;
  to.key_file = key;
  to.ca_file = ca; /* the CA client certificates must chain to */
  to.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
  if (sgrpc_tls_openssl_ctx_new(&sctx, &to, err, sizeof(err)) != 0) {
    fprintf(stderr, "server TLS: %s\n", err);
    return 1;
  }
  if (sgrpc_epoll_new(&loop, NULL) != 0 || sgrpc_router_new(&router, NULL) != 0) goto out;
  memset(&greeter, 0, sizeof(greeter));
  greeter.say_hello = say_hello;
  if (helloworld__greeter__sgrpc_register(router, &greeter, NULL) != 0) goto out;
  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = router;
  so.server.make_tls = sgrpc_tls_openssl_factory;
  so.server.tls_user_data = sctx;
  {
    /* a port below 32768 (the kernel's own pick, port 0, would come from
     * the range client sockets use), another one when it is taken */
    char addr[32];
    int tries, rv = -1;
    srand((unsigned)getpid());
    for (tries = 0; tries < 50 && rv != 0; tries++) {
      snprintf(addr, sizeof(addr), "127.0.0.1:%d", 20000 + rand() % 12000);
      so.listen = addr;
      rv = sgrpc_epoll_listen(loop, &so, &server);
    }
    if (rv != 0) goto out;
  }

  allowed = call_as(loop, sgrpc_net_server_port(server), argv[1], "client");
  intruder = call_as(loop, sgrpc_net_server_port(server), argv[1], "intruder");
  status = allowed == SGRPC_STATUS_OK && intruder == SGRPC_STATUS_PERMISSION_DENIED ? 0 : 1;
  printf("mtls_greeter: %s\n", status == 0 ? "OK" : "FAILED");
out:
  sgrpc_epoll_del(loop);
  sgrpc_router_del(router);
  sgrpc_tls_openssl_ctx_del(sctx);
  return status;
}
