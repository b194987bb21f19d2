/*
 * Peer identity and user-agent in handlers and hooks (sgrpc_server_call_peer,
 * sgrpc_server_call_user_agent, sgrpc_conn_peer), over the epoll adapter on
 * 127.0.0.1 with kernel-chosen ports:
 *  - plaintext: the handler and the RECV_REQUEST hook see the client's
 *    address ("ipv4:127.0.0.1:<its port>") and the channel's user-agent,
 *    no TLS, no certificate;
 *  - mutual TLS with certificates made at test time by
 *    tests/tls/make_certs.sh: a hook authorizes by the client
 *    certificate's URI SAN; the allowed client gets its answer (and the
 *    handler sees subject, issuer, SANs and a PEM equal to client.pem),
 *    a valid but other client (intruder.pem) gets PERMISSION_DENIED
 *    before the handler runs, a client without a certificate never gets
 *    past the handshake (UNAVAILABLE);
 *  - the engine seam alone: no source, a failing source, PEM sizing;
 *  - the in-memory test channel with a fake peer source: the same hook
 *    authorizes and refuses without any socket or TLS;
 *  - the net layer's SAN copy failing for lack of memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <sgrpc/epoll.h>
#include <sgrpc/events.h>
#include <sgrpc/net_rpc.h>
#include <sgrpc/testing.h>
#include <sgrpc/tls_openssl.h>

#include "low_port.h"

#ifndef SGRPC_TLS_CERT_SCRIPT
#error "SGRPC_TLS_CERT_SCRIPT must name tests/tls/make_certs.sh"
#endif

#define SEC 1000000000LL

static const sgrpc_method m_hello = {"/helloworld.Greeter/SayHello", NULL, NULL, 0, 0,
                                     &sgrpc_codec_raw};

static char certdir[256];

static const char *cf(const char *name) {
  static char paths[16][320];
  static int used;
  char want[320];
  int i;
  snprintf(want, sizeof(want), "%s/%s", certdir, name);
  for (i = 0; i < used; i++)
    if (strcmp(paths[i], want) == 0) return paths[i];
  assert_true(used < 16);
  memcpy(paths[used], want, sizeof(want));
  return paths[used++];
}

/* ---- an allocator that can be told to fail ---- */

static int fail_alloc;
static void *t_malloc(size_t n, void *ud) {
  (void)ud;
  return fail_alloc ? NULL : malloc(n);
}
static void t_free(void *p, void *ud) {
  (void)ud;
  free(p);
}
static void *t_calloc(size_t n, size_t s, void *ud) {
  (void)ud;
  return fail_alloc ? NULL : calloc(n, s);
}
static void *t_realloc(void *p, size_t n, void *ud) {
  (void)ud;
  return fail_alloc ? NULL : realloc(p, n);
}
static const sgrpc_mem t_mem = {NULL, t_malloc, t_free, t_calloc, t_realloc};

/* ---- what the server saw ---- */

typedef struct seen {
  int handler_runs, hook_runs, denied;
  int secure, has_cert, verified, peer_rv;
  char hook_address[128], address[128], hook_ua[128], ua[128];
  char subject[256], issuer[256], sans[256];
  char pem[4096];
  long pem_len;
} seen;

static seen S;
static int fail_in_handler; /* the next handler's peer query runs out of memory */

static void copy(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src); }

static void h_hello(sgrpc_server_call *call, const void *msg, void *ud) {
  sgrpc_peer p;
  size_t i;
  (void)ud;
  S.handler_runs++;
  fail_alloc = fail_in_handler;
  S.peer_rv = sgrpc_server_call_peer(call, &p);
  fail_alloc = 0;
  if (S.peer_rv < 0) {
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_INTERNAL, "no peer identity");
    return;
  }
  copy(S.address, sizeof(S.address), p.address);
  copy(S.ua, sizeof(S.ua), sgrpc_server_call_user_agent(call));
  S.secure = p.secure;
  S.has_cert = p.has_cert;
  S.verified = p.cert_verified;
  copy(S.subject, sizeof(S.subject), p.cert_subject);
  copy(S.issuer, sizeof(S.issuer), p.cert_issuer);
  S.sans[0] = 0;
  for (i = 0; i < p.san_count; i++) {
    char one[96];
    snprintf(one, sizeof(one), "%d=%s;", p.sans[i].type, p.sans[i].value);
    strncat(S.sans, one, sizeof(S.sans) - strlen(S.sans) - 1);
  }
  S.pem_len = p.has_cert ? (long)sgrpc_peer_cert_pem(&p, S.pem, sizeof(S.pem)) : -1;
  (void)sgrpc_server_call_reply(call, msg);
}

/* The authorization hook: only verified clients whose certificate names
 * spiffe://sgrpc.test/client pass; plaintext calls pass untouched. */
static void sh_authorize(sgrpc_hook_event *ev, void *ud) {
  sgrpc_peer p;
  size_t i;
  int ok = 0;
  (void)ud;
  S.hook_runs++;
  copy(S.hook_ua, sizeof(S.hook_ua), ev->user_agent);
  if (sgrpc_server_call_peer(ev->server_call, &p) != 0) {
    ev->end_code = SGRPC_STATUS_INTERNAL;
    return;
  }
  copy(S.hook_address, sizeof(S.hook_address), p.address);
  if (!p.secure) return;
  for (i = 0; p.has_cert && p.cert_verified && i < p.san_count; i++)
    if (p.sans[i].type == SGRPC_PEER_SAN_URI &&
        strcmp(p.sans[i].value, "spiffe://sgrpc.test/client") == 0)
      ok = 1;
  if (!ok) {
    S.denied++;
    ev->end_code = SGRPC_STATUS_PERMISSION_DENIED;
    ev->end_message = "client certificate not allowed";
  }
}

/* ---- world ---- */

typedef struct world {
  sgrpc_epoll *loop;
  sgrpc_router *router;
  sgrpc_events *ev;
  sgrpc_net_server *plain, *secure;
  sgrpc_tls_openssl_ctx *sctx;
} world;

static world W;

static sgrpc_tls_openssl_ctx *make_ctx(const sgrpc_tls_openssl_options *o) {
  sgrpc_tls_openssl_ctx *ctx = NULL;
  char err[256];
  int rv = sgrpc_tls_openssl_ctx_new(&ctx, o, err, sizeof(err));
  if (rv) fprintf(stderr, "ctx_new: %d %s\n", rv, err);
  assert_int_equal(rv, 0);
  return ctx;
}

static int setup(void **state) {
  static const sgrpc_handler hh = {h_hello, NULL, NULL, NULL, NULL};
  char cmd[1024];
  sgrpc_net_listen_opts so;
  sgrpc_tls_openssl_options to;
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  snprintf(certdir, sizeof(certdir), "/tmp/sgrpc-identity-XXXXXX");
  if (!mkdtemp(certdir)) return -1;
  snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null", SGRPC_TLS_CERT_SCRIPT, certdir);
  if (system(cmd) != 0) return -1;

  if (sgrpc_epoll_new(&W.loop, &t_mem) != 0) return -1;
  if (sgrpc_router_new(&W.router, NULL) != 0) return -1;
  if (sgrpc_router_add(W.router, &m_hello, &hh) != 0) return -1;
  if (sgrpc_events_new(&W.ev, NULL) != 0) return -1;
  if (sgrpc_events_listen(W.ev, SGRPC_HOOK_RECV_REQUEST, sh_authorize, NULL) != 0) return -1;
  sgrpc_router_set_events(W.router, W.ev);

  memset(&so, 0, sizeof(so));
  so.server.on_event = sgrpc_net_router_event;
  so.server.user_data = W.router;
  {
    static char plain_addr[64];
    int rv;
    TEST_LISTEN_LOW(rv, plain_addr, "127.0.0.1:%d", so, sgrpc_epoll_listen(W.loop, &so, &W.plain));
    if (rv != 0) return -1;
  }

  sgrpc_tls_openssl_options_default(&to);
  to.is_server = 1;
  to.cert_file = cf("server.pem");
  to.key_file = cf("server.key");
  to.ca_file = cf("ca.pem");
  to.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
  W.sctx = make_ctx(&to);
  so.server.make_tls = sgrpc_tls_openssl_factory;
  so.server.tls_user_data = W.sctx;
  {
    static char secure_addr[64];
    int rv;
    TEST_LISTEN_LOW(rv, secure_addr, "127.0.0.1:%d", so, sgrpc_epoll_listen(W.loop, &so, &W.secure));
    if (rv != 0) return -1;
  }
  return 0;
}

static int teardown(void **state) {
  char cmd[512];
  (void)state;
  sgrpc_epoll_del(W.loop);
  sgrpc_router_del(W.router);
  sgrpc_events_del(W.ev);
  sgrpc_tls_openssl_ctx_del(W.sctx);
  if (strncmp(certdir, "/tmp/sgrpc-identity-", 20) == 0) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
    if (system(cmd) != 0) return -1;
  }
  return 0;
}

typedef struct result {
  int done, code;
} result;

static void c_close(sgrpc_client_call *call, const sgrpc_status_info *st, const void *reply,
                    void *ud) {
  result *r = ud;
  (void)call;
  (void)reply;
  r->done++;
  r->code = st->code;
}

/* One SayHello on a new channel to server (with client cert `cert`, or
 * none; plaintext when tls is 0). Returns the status code. */
static int call_once(sgrpc_net_server *server, int tls, const char *cert) {
  static const sgrpc_client_callbacks cbs = {NULL, NULL, c_close, {NULL, NULL}, NULL};
  sgrpc_bytes req = {(const uint8_t *)"\x0a\x02me", 4};
  sgrpc_net_channel_opts co;
  sgrpc_net_channel *ch = NULL;
  sgrpc_tls_openssl_ctx *cctx = NULL;
  sgrpc_settings set;
  sgrpc_rpc_client client;
  sgrpc_rpc_opts o;
  result r = {0, -1};
  char target[64];
  int64_t end;
  sgrpc_settings_default(&set);
  set.user_agent = "identity-test/1.0";
  snprintf(target, sizeof(target), "127.0.0.1:%d", sgrpc_net_server_port(server));
  memset(&co, 0, sizeof(co));
  co.target = target;
  co.settings = &set;
  if (tls) {
    sgrpc_tls_openssl_options to;
    sgrpc_tls_openssl_options_default(&to);
    to.ca_file = cf("ca.pem");
    to.target_name_override = "localhost";
    if (cert) {
      char key[64];
      snprintf(key, sizeof(key), "%.*s.key", (int)(strlen(cert) - 4), cert);
      to.cert_file = cf(cert);
      to.key_file = cf(key);
    }
    cctx = make_ctx(&to);
    co.make_tls = sgrpc_tls_openssl_factory;
    co.tls_user_data = cctx;
  }
  assert_int_equal(sgrpc_epoll_channel_new(W.loop, &co, &ch), 0);
  sgrpc_net_rpc_client_init(&client, ch, NULL);
  memset(&o, 0, sizeof(o));
  o.user_data = &r;
  o.deadline = sgrpc_epoll_now() + 10 * SEC;
  assert_int_equal(sgrpc_rpc_call_start(&client, &m_hello, &req, &o, sgrpc_epoll_now(), &cbs,
                                        NULL),
                   0);
  end = sgrpc_epoll_now() + 15 * SEC;
  while (!r.done && sgrpc_epoll_now() < end) assert_true(sgrpc_epoll_run_once(W.loop, 20) >= 0);
  assert_int_equal(r.done, 1);
  sgrpc_net_channel_del(ch);
  sgrpc_tls_openssl_ctx_del(cctx);
  return r.code;
}

static void test_plaintext_address_and_user_agent(void **state) {
  (void)state;
  memset(&S, 0, sizeof(S));
  assert_int_equal(call_once(W.plain, 0, NULL), SGRPC_STATUS_OK);
  assert_int_equal(S.handler_runs, 1);
  assert_int_equal(S.hook_runs, 1);
  assert_int_equal(S.peer_rv, 0);
  /* the client's own ephemeral port, not the server's */
  assert_true(strncmp(S.address, "ipv4:127.0.0.1:", 15) == 0);
  assert_true(atoi(S.address + 15) > 0);
  assert_int_not_equal(atoi(S.address + 15), sgrpc_net_server_port(W.plain));
  assert_string_equal(S.hook_address, S.address);
  assert_true(strncmp(S.ua, "identity-test/1.0", 17) == 0);
  assert_string_equal(S.hook_ua, S.ua);
  assert_int_equal(S.secure, 0);
  assert_int_equal(S.has_cert, 0);
  assert_string_equal(S.subject, "");
  assert_int_equal(S.pem_len, -1);
}

static void read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  assert_non_null(f);
  n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
}

static void test_mtls_allowed_client(void **state) {
  char file[4096];
  (void)state;
  memset(&S, 0, sizeof(S));
  assert_int_equal(call_once(W.secure, 1, "client.pem"), SGRPC_STATUS_OK);
  assert_int_equal(S.handler_runs, 1);
  assert_int_equal(S.denied, 0);
  assert_int_equal(S.secure, 1);
  assert_int_equal(S.has_cert, 1);
  assert_int_equal(S.verified, 1);
  assert_true(strncmp(S.address, "ipv4:127.0.0.1:", 15) == 0);
  assert_non_null(strstr(S.subject, "CN=sgrpc-test-client"));
  assert_non_null(strstr(S.issuer, "CN=sgrpc test CA"));
  assert_string_equal(S.sans, "3=spiffe://sgrpc.test/client;4=client@sgrpc.test;");
  /* the PEM made from the DER is the certificate file openssl wrote */
  read_file(cf("client.pem"), file, sizeof(file));
  assert_true(S.pem_len > 0);
  assert_int_equal((size_t)S.pem_len, strlen(S.pem));
  assert_string_equal(S.pem, file);
}

static void test_mtls_denied_client(void **state) {
  (void)state;
  memset(&S, 0, sizeof(S));
  assert_int_equal(call_once(W.secure, 1, "intruder.pem"), SGRPC_STATUS_PERMISSION_DENIED);
  assert_int_equal(S.denied, 1);
  assert_int_equal(S.handler_runs, 0); /* refused before any handler code */
  /* no certificate at all: the handshake refuses, no hook runs */
  memset(&S, 0, sizeof(S));
  assert_int_equal(call_once(W.secure, 1, NULL), SGRPC_STATUS_UNAVAILABLE);
  assert_int_equal(S.hook_runs, 0);
  assert_int_equal(S.handler_runs, 0);
}

static void test_peer_nomem(void **state) {
  (void)state;
  /* Without the hook the handler's query is the connection's first, the
   * one that copies the SANs: make that copy fail. */
  sgrpc_router_set_events(W.router, NULL);
  memset(&S, 0, sizeof(S));
  fail_in_handler = 1;
  assert_int_equal(call_once(W.secure, 1, "client.pem"), SGRPC_STATUS_INTERNAL);
  fail_in_handler = 0;
  assert_int_equal(S.peer_rv, SGRPC_ERR_NOMEM);
  /* the next connection copies its SANs fine */
  assert_int_equal(call_once(W.secure, 1, "client.pem"), SGRPC_STATUS_OK);
  assert_int_equal(S.peer_rv, 0);
  assert_int_equal(S.has_cert, 1);
  sgrpc_router_set_events(W.router, W.ev);
}

/* ---- the engine seam alone ---- */

static int src_fail(void *ctx, sgrpc_peer *p) {
  (void)ctx;
  p->address = "half";
  return SGRPC_ERR_INVALID_STATE;
}

static int src_ok(void *ctx, sgrpc_peer *p) {
  p->address = ctx;
  return 0;
}

static void test_engine_seam(void **state) {
  static const uint8_t der[5] = {0x30, 0x03, 0x02, 0x01, 0x05};
  sgrpc_conn *c = NULL;
  sgrpc_peer p;
  char buf[128];
  sgrpc_ssize need;
  (void)state;
  assert_int_equal(sgrpc_conn_server_new(&c, NULL, NULL, 0), 0);
  assert_int_equal(sgrpc_conn_peer(c, &p), 0);
  assert_string_equal(p.address, "");
  assert_int_equal(p.has_cert, 0);
  sgrpc_conn_set_peer_source(c, src_ok, "unix:/x");
  assert_int_equal(sgrpc_conn_peer(c, &p), 0);
  assert_string_equal(p.address, "unix:/x");
  assert_string_equal(p.cert_subject, "");
  sgrpc_conn_set_peer_source(c, src_fail, NULL);
  assert_int_equal(sgrpc_conn_peer(c, &p), SGRPC_ERR_INVALID_STATE);
  assert_string_equal(p.address, ""); /* nothing half-filled is left */
  assert_int_equal(sgrpc_conn_peer(NULL, &p), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_conn_peer(c, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_conn_del(c);

  memset(&p, 0, sizeof(p));
  assert_int_equal(sgrpc_peer_cert_pem(&p, buf, sizeof(buf)), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_peer_cert_pem(NULL, buf, sizeof(buf)), SGRPC_ERR_INVALID_ARGUMENT);
  p.has_cert = 1;
  p.cert_der = der;
  p.cert_der_len = sizeof(der);
  need = sgrpc_peer_cert_pem(&p, NULL, 0);
  assert_int_equal(need, 28 + 9 + 26 + 1); /* header, "MAMCAQU=\n", footer, NUL */
  assert_int_equal(sgrpc_peer_cert_pem(&p, buf, (size_t)need - 1), need);
  assert_int_equal(sgrpc_peer_cert_pem(&p, buf, (size_t)need), need - 1);
  assert_string_equal(buf, "-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n");
}

/* ---- the in-memory test channel with a fake identity ---- */

/* ctx: 0 plaintext, 1 the allowed client certificate, 2 another one */
static int fake_peer(void *ctx, sgrpc_peer *p) {
  static const sgrpc_peer_san ok = {SGRPC_PEER_SAN_URI, "spiffe://sgrpc.test/client"};
  static const sgrpc_peer_san other = {SGRPC_PEER_SAN_URI, "spiffe://sgrpc.test/other"};
  int mode = *(const int *)ctx;
  p->address = "ipv4:192.0.2.7:4242";
  if (mode == 0) return 0;
  p->secure = 1;
  p->has_cert = 1;
  p->cert_verified = 1;
  p->cert_subject = "CN=fake";
  p->sans = mode == 1 ? &ok : &other;
  p->san_count = 1;
  return 0;
}

/* Handlers and hooks unit-tested without sockets: the test channel's
 * server connection takes a fake peer source. */
static void test_in_memory_fake_peer(void **state) {
  static const sgrpc_client_callbacks cbs = {NULL, NULL, c_close, {NULL, NULL}, NULL};
  static const int want[3] = {SGRPC_STATUS_OK, SGRPC_STATUS_OK, SGRPC_STATUS_PERMISSION_DENIED};
  sgrpc_bytes req = {(const uint8_t *)"\x0a\x02me", 4};
  sgrpc_test_channel *ch = NULL;
  int mode;
  (void)state;
  assert_int_equal(sgrpc_test_channel_new(&ch, W.router, NULL), 0);
  sgrpc_conn_set_peer_source(sgrpc_test_channel_server_conn(ch), fake_peer, &mode);
  for (mode = 0; mode < 3; mode++) {
    result r = {0, -1};
    sgrpc_rpc_opts o;
    memset(&S, 0, sizeof(S));
    memset(&o, 0, sizeof(o));
    o.user_data = &r;
    assert_int_equal(sgrpc_rpc_call_start(sgrpc_test_channel_client(ch), &m_hello, &req, &o,
                                          sgrpc_test_channel_now(ch), &cbs, NULL),
                     0);
    assert_int_equal(sgrpc_test_channel_run(ch, 0), 0);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.code, want[mode]);
    assert_string_equal(S.hook_address, "ipv4:192.0.2.7:4242");
    assert_int_equal(S.handler_runs, mode == 2 ? 0 : 1);
    if (mode == 1) {
      assert_int_equal(S.secure, 1);
      assert_string_equal(S.subject, "CN=fake");
      assert_string_equal(S.issuer, ""); /* unset fields read as "" */
    }
  }
  sgrpc_test_channel_del(ch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_engine_seam),
      cmocka_unit_test(test_plaintext_address_and_user_agent),
      cmocka_unit_test(test_mtls_allowed_client),
      cmocka_unit_test(test_mtls_denied_client),
      cmocka_unit_test(test_peer_nomem),
      cmocka_unit_test(test_in_memory_fake_peer),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
