/*
 * The TLS seam (<sgrpc/tls.h>) and its OpenSSL filter
 * (<sgrpc/tls_openssl.h>).
 *
 * Certificates are made at test time by tests/tls/make_certs.sh (the
 * openssl command) into a fresh temporary directory, removed at the end.
 * Most tests drive two sgrpc engines through two TLS filters entirely in
 * memory, with random byte splits of the ciphertext; two tests talk to a
 * real OpenSSL peer (openssl s_server / s_client) over 127.0.0.1.
 */
#include "support.h"

#ifdef SGRPC_TLS_NO_OPENSSL
#include <stdio.h>
int main(void) {
  puts("test_tls: built without OpenSSL (libssl-dev); nothing tested");
  return 77;
}
#else

#include <sgrpc/tls.h>
#include <sgrpc/tls_openssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#ifndef SGRPC_TLS_CERT_SCRIPT
#error "SGRPC_TLS_CERT_SCRIPT must name tests/tls/make_certs.sh"
#endif

extern char **environ;

static char certdir[256];

/* Path of a file in the certificate directory; the string lives until
 * the end of the run (options keep pointers to it across tests). */
static const char *cf(const char *name) {
  static char paths[32][320];
  static int used;
  char want[320];
  int i;
  snprintf(want, sizeof(want), "%s/%s", certdir, name);
  for (i = 0; i < used; i++)
    if (strcmp(paths[i], want) == 0) return paths[i];
  assert_true(used < 32);
  memcpy(paths[used], want, sizeof(want));
  return paths[used++];
}

static int group_setup(void **state) {
  char cmd[1024];
  (void)state;
  snprintf(certdir, sizeof(certdir), "/tmp/sgrpc-tls-XXXXXX");
  if (!mkdtemp(certdir)) return -1;
  snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null", SGRPC_TLS_CERT_SCRIPT, certdir);
  if (system(cmd) != 0) {
    fprintf(stderr, "make_certs.sh failed\n");
    return -1;
  }
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

static int group_teardown(void **state) {
  char cmd[512];
  (void)state;
  if (certdir[0] && strncmp(certdir, "/tmp/sgrpc-tls-", 15) == 0) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
    if (system(cmd) != 0) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* contexts                                                            */
/* ------------------------------------------------------------------ */

static void server_opts(sgrpc_tls_openssl_options *o) {
  sgrpc_tls_openssl_options_default(o);
  o->is_server = 1;
  o->cert_file = cf("server.pem");
  o->key_file = cf("server.key");
}

static void client_opts(sgrpc_tls_openssl_options *o) {
  sgrpc_tls_openssl_options_default(o);
  o->ca_file = cf("ca.pem");
  o->server_name = "localhost";
}

static sgrpc_tls_openssl_ctx *ctx_ok(const sgrpc_tls_openssl_options *o) {
  sgrpc_tls_openssl_ctx *ctx = NULL;
  char err[256];
  int rv = sgrpc_tls_openssl_ctx_new(&ctx, o, err, sizeof(err));
  if (rv) fprintf(stderr, "ctx_new: %d %s\n", rv, err);
  assert_int_equal(rv, 0);
  assert_non_null(ctx);
  return ctx;
}

static sgrpc_tls *session(sgrpc_tls_openssl_ctx *ctx, const char *name) {
  sgrpc_tls *t = NULL;
  assert_int_equal(sgrpc_tls_openssl_new(&t, ctx, name), 0);
  assert_non_null(t);
  return t;
}

/* ------------------------------------------------------------------ */
/* in-memory TLS pair: engines <-> filters <-> filters <-> engines     */
/* ------------------------------------------------------------------ */

typedef struct tpair {
  pair p;              /* the two engines, fake clock, event callback */
  sgrpc_tls *ct, *st;  /* client and server filters */
  size_t max_split;    /* random ciphertext pieces of 1..max_split, 0: whole */
  int cerr, serr;      /* first negative code from each filter, 0 if none */
  int cli_closed_tls, srv_closed_tls; /* SGRPC_ERR_TLS_CLOSED seen */
  size_t cli_plain_out;  /* engine bytes the client filter took */
  uint64_t rng;
} tpair;

static uint32_t trand(tpair *tp) {
  uint64_t x = tp->rng ? tp->rng : 88172645463325252ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  tp->rng = x;
  return (uint32_t)(x >> 20);
}

static void note_err(tpair *tp, sgrpc_tls *t, int code) {
  int *slot = t == tp->ct ? &tp->cerr : &tp->serr;
  if (code == SGRPC_ERR_TLS_CLOSED) {
    if (t == tp->ct) tp->cli_closed_tls = 1;
    else tp->srv_closed_tls = 1;
    return;
  }
  if (!*slot) *slot = code;
}

/* Plaintext from the filter into its engine, pulling events between
 * steps, as an adapter does. Returns bytes delivered. */
static size_t tp_deliver(tpair *tp, sgrpc_tls *t, sgrpc_conn *conn) {
  size_t total = 0;
  int i;
  if (!conn) {
    /* filters only: look at the plaintext (to surface alerts and
     * close_notify) but leave it for the test to read */
    const uint8_t *d;
    ssize_t n = sgrpc_tls_plain_peek(t, &d);
    if (n < 0) note_err(tp, t, (int)n);
    return 0;
  }
  for (i = 0; i < 10000; i++) {
    ssize_t n = sgrpc_tls_pump_in(t, conn, tp->p.now);
    int pulled = pair_drain(&tp->p, conn);
    if (n < 0) {
      note_err(tp, t, (int)n);
      break;
    }
    total += (size_t)n;
    if (n == 0 && pulled == 0) break;
  }
  assert_true(i < 10000);
  return total;
}

/* Ciphertext from one filter into the other, in random pieces; plaintext
 * is delivered to the receiving engine after every piece. */
static size_t tp_move(tpair *tp, sgrpc_tls *from, sgrpc_tls *to, sgrpc_conn *to_conn) {
  size_t moved = 0;
  int rounds;
  for (rounds = 0; rounds < 1000; rounds++) {
    const uint8_t *d;
    ssize_t n = sgrpc_tls_out_peek(from, &d);
    size_t off = 0;
    int stalls = 0;
    if (n <= 0) break;
    while (off < (size_t)n && stalls < 3) {
      size_t piece = (size_t)n - off;
      ssize_t r;
      if (tp->max_split) {
        size_t s = 1 + trand(tp) % tp->max_split;
        if (s < piece) piece = s;
      }
      r = sgrpc_tls_feed(to, d + off, piece);
      if (r < 0) {
        note_err(tp, to, (int)r);
        /* the failed side's alert is still worth moving back */
        sgrpc_tls_out_consume(from, (size_t)n);
        return moved + off;
      }
      off += (size_t)r;
      if (tp_deliver(tp, to, to_conn) == 0 && r == 0) stalls++;
    }
    sgrpc_tls_out_consume(from, off);
    moved += off;
    if (off < (size_t)n) break; /* the receiver is full */
  }
  return moved;
}

/* Engine output into its filter. */
static void tp_out(tpair *tp, sgrpc_tls *t, sgrpc_conn *conn) {
  ssize_t n;
  if (!conn) return;
  n = sgrpc_tls_pump_out(t, conn);
  if (n < 0 && sgrpc_tls_is_tls_error((int)n)) note_err(tp, t, (int)n);
  if (n > 0 && t == tp->ct) tp->cli_plain_out += (size_t)n;
  pair_drain(&tp->p, conn);
}

/* Runs everything until nothing moves. Returns total ciphertext moved. */
static size_t tp_run(tpair *tp, int max_rounds) {
  size_t total = 0;
  int i;
  for (i = 0; i < max_rounds; i++) {
    size_t moved = 0;
    tp_out(tp, tp->ct, tp->p.cli);
    moved += tp_move(tp, tp->ct, tp->st, tp->p.srv);
    tp_out(tp, tp->st, tp->p.srv);
    moved += tp_move(tp, tp->st, tp->ct, tp->p.cli);
    /* plaintext may be waiting behind a full engine */
    moved += tp_deliver(tp, tp->ct, tp->p.cli);
    moved += tp_deliver(tp, tp->st, tp->p.srv);
    total += moved;
    if (!moved && !sgrpc_tls_want_write(tp->ct) && !sgrpc_tls_want_write(tp->st)) {
      tp_out(tp, tp->ct, tp->p.cli);
      tp_out(tp, tp->st, tp->p.srv);
      if (!sgrpc_tls_want_write(tp->ct) && !sgrpc_tls_want_write(tp->st)) break;
    }
  }
  return total;
}

/* Filters only (no engines): runs a handshake. */
static void hs_run(tpair *tp) {
  tp->p.cli = tp->p.srv = NULL;
  tp_run(tp, 50);
}

static void tp_free(tpair *tp) {
  sgrpc_tls_del(tp->ct);
  sgrpc_tls_del(tp->st);
  tp->ct = tp->st = NULL;
  if (tp->p.cli || tp->p.srv) pair_free(&tp->p);
}

/* ------------------------------------------------------------------ */
/* a small gRPC application: echo (unary, bidi), server streaming       */
/* ------------------------------------------------------------------ */

typedef struct app {
  /* server */
  int srv_new, srv_closed, srv_ready;
  char authority[64];
  /* the server-streaming call being answered (one at a time) */
  sgrpc_call *ss_call;
  uint32_t ss_next, ss_cnt, ss_size;
  int ss_half_closed;
  /* client */
  int cli_closed, cli_status, cli_headers, cli_ready;
  uint32_t cli_msgs;
  uint64_t cli_sum;
  size_t cli_bytes;
  char cli_message[128];
} app;

enum { K_UNARY = 1, K_SSTREAM = 2, K_BIDI = 3 };

static uint64_t sum_bytes(const uint8_t *d, size_t n) {
  uint64_t s = 0;
  size_t i;
  for (i = 0; i < n; i++) s += d[i] * (uint64_t)((i % 251) + 1);
  return s;
}

static void fill(uint8_t *d, size_t n, uint32_t seed) {
  size_t i;
  for (i = 0; i < n; i++) d[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

static void srv_status_ok(sgrpc_call *call) {
  sgrpc_status st = {SGRPC_STATUS_OK, "done over tls", NULL, 0, NULL, 0};
  assert_int_equal(sgrpc_call_send_status(call, &st), 0);
}

/* Sends server-streaming replies until the call's buffer is full; ends
 * the call when all went out and the client half-closed. */
static void ss_flush(app *a) {
  uint8_t *buf;
  if (!a->ss_call) return;
  buf = malloc(a->ss_size ? a->ss_size : 1);
  while (a->ss_next < a->ss_cnt) {
    int rv;
    fill(buf, a->ss_size, a->ss_next);
    rv = sgrpc_call_send(a->ss_call, buf, a->ss_size, 0);
    if (rv == SGRPC_ERR_WOULDBLOCK) break;
    assert_int_equal(rv, 0);
    a->ss_next++;
  }
  free(buf);
  if (a->ss_next == a->ss_cnt && a->ss_half_closed) {
    srv_status_ok(a->ss_call);
    a->ss_call = NULL;
  }
}

static void srv_ev(tpair *tp, const sgrpc_event *ev, app *a) {
  intptr_t kind = (intptr_t)ev->call_user_data;
  (void)tp;
  switch (ev->type) {
  case SGRPC_EV_READY: a->srv_ready = 1; break;
  case SGRPC_EV_CALL_NEW:
    a->srv_new++;
    snprintf(a->authority, sizeof(a->authority), "%s", ev->u.call_new.authority);
    if (strcmp(ev->u.call_new.path, "/t.S/Unary") == 0) kind = K_UNARY;
    else if (strcmp(ev->u.call_new.path, "/t.S/SStream") == 0) kind = K_SSTREAM;
    else kind = K_BIDI;
    sgrpc_call_set_user_data(ev->call, (void *)kind);
    break;
  case SGRPC_EV_MESSAGE:
    if (kind == K_SSTREAM) {
      /* request: count (4 bytes) and size (4 bytes) of the replies */
      assert_int_equal(ev->u.message.len, 8);
      assert_null(a->ss_call);
      a->ss_call = ev->call;
      a->ss_next = 0;
      a->ss_half_closed = 0;
      memcpy(&a->ss_cnt, ev->u.message.data, 4);
      memcpy(&a->ss_size, ev->u.message.data + 4, 4);
      ss_flush(a);
    } else {
      assert_int_equal(sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0), 0);
    }
    break;
  case SGRPC_EV_WRITABLE:
    if (ev->call == a->ss_call) ss_flush(a);
    break;
  case SGRPC_EV_HALF_CLOSE:
    if (ev->call == a->ss_call) {
      a->ss_half_closed = 1;
      ss_flush(a);
    } else {
      srv_status_ok(ev->call);
    }
    break;
  case SGRPC_EV_CLOSE:
    a->srv_closed++;
    if (ev->call == a->ss_call) a->ss_call = NULL;
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
}

static void cli_ev(tpair *tp, const sgrpc_event *ev, app *a) {
  (void)tp;
  switch (ev->type) {
  case SGRPC_EV_READY: a->cli_ready = 1; break;
  case SGRPC_EV_HEADERS: a->cli_headers++; break;
  case SGRPC_EV_MESSAGE:
    a->cli_msgs++;
    a->cli_bytes += ev->u.message.len;
    a->cli_sum += sum_bytes(ev->u.message.data, ev->u.message.len);
    break;
  case SGRPC_EV_CLOSE:
    a->cli_closed++;
    a->cli_status = ev->u.close.status.code;
    snprintf(a->cli_message, sizeof(a->cli_message), "%s", ev->u.close.status.message);
    sgrpc_call_release(ev->call);
    break;
  default:
    break;
  }
}

static tpair *g_tp; /* the pair whose events are being dispatched */

static void on_event(pair *p, sgrpc_conn *conn, const sgrpc_event *ev, void *ud) {
  if (conn == p->srv) srv_ev(g_tp, ev, ud);
  else cli_ev(g_tp, ev, ud);
}

/* Sets up engines + filters with the given contexts. */
static void tp_init(tpair *tp, app *a, sgrpc_tls_openssl_ctx *cctx, const char *name,
                    sgrpc_tls_openssl_ctx *sctx, int engines) {
  memset(tp, 0, sizeof(*tp));
  memset(a, 0, sizeof(*a));
  tp->rng = 0x1234567ull;
  if (engines) {
    sgrpc_settings cs;
    sgrpc_settings_default(&cs);
    cs.scheme = "https";
    assert_int_equal(pair_init(&tp->p, &cs, NULL, NULL), 0);
    tp->p.on_event = on_event;
    tp->p.ud = a;
  }
  g_tp = tp;
  tp->ct = session(cctx, name);
  tp->st = session(sctx, NULL);
}

static sgrpc_call *start(tpair *tp, const char *path) {
  sgrpc_call_opts o;
  sgrpc_call *call = NULL;
  memset(&o, 0, sizeof(o));
  o.path = path;
  o.authority = "localhost";
  assert_int_equal(sgrpc_call_start(tp->p.cli, &o, tp->p.now, &call), 0);
  return call;
}

/* ------------------------------------------------------------------ */
/* tests: the full exchange                                            */
/* ------------------------------------------------------------------ */

/* Unary, server streaming (1 MiB in 64 messages) and bidi over TLS with
 * ciphertext cut in random pieces. tls_max: 0 or 0x0303 (TLS 1.2). */
static void exchange(size_t max_split, int tls_max, const char *want_version) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  sgrpc_call *call;
  sgrpc_tls_info info;
  uint8_t req[8], big[70000];
  uint32_t cnt = 64, size = 16384, i;
  uint64_t want_sum = 0;

  client_opts(&co);
  co.max_version = tls_max;
  server_opts(&so);
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  tp.max_split = max_split;
  /* the contexts may go while sessions live */
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);

  /* unary, started before the handshake: it waits in the engine */
  call = start(&tp, "/t.S/Unary");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"ping", 4, SGRPC_SEND_END), 0);
  tp_run(&tp, 1000);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(tp.serr, 0);
  assert_true(sgrpc_tls_state(tp.ct) & SGRPC_TLS_HANDSHAKE_DONE);
  assert_true(sgrpc_tls_state(tp.st) & SGRPC_TLS_HANDSHAKE_DONE);
  assert_true(a.cli_ready && a.srv_ready);
  assert_int_equal(a.cli_closed, 1);
  assert_int_equal(a.cli_status, SGRPC_STATUS_OK);
  assert_string_equal(a.cli_message, "done over tls");
  assert_int_equal(a.cli_msgs, 1);
  assert_int_equal(a.cli_sum, sum_bytes((const uint8_t *)"ping", 4));
  assert_string_equal(a.authority, "localhost");

  assert_int_equal(sgrpc_tls_info_get(tp.ct, &info), 0);
  assert_string_equal(info.alpn, "h2");
  assert_string_equal(info.version, want_version);
  assert_non_null(info.cipher);
  assert_int_equal(info.is_server, 0);
  assert_int_equal(sgrpc_tls_info_get(tp.st, &info), 0);
  assert_string_equal(info.alpn, "h2");
  assert_string_equal(info.version, want_version);
  assert_int_equal(info.is_server, 1);

  /* server streaming: 64 x 16 KiB, more than the call's send buffer */
  memset(&a, 0, sizeof(a));
  call = start(&tp, "/t.S/SStream");
  memcpy(req, &cnt, 4);
  memcpy(req + 4, &size, 4);
  assert_int_equal(sgrpc_call_send(call, req, 8, SGRPC_SEND_END), 0);
  tp_run(&tp, 5000);
  for (i = 0; i < cnt; i++) {
    fill(big, size, i);
    want_sum += sum_bytes(big, size);
  }
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(tp.serr, 0);
  assert_int_equal(a.cli_closed, 1);
  assert_int_equal(a.cli_status, SGRPC_STATUS_OK);
  assert_int_equal(a.cli_msgs, cnt);
  assert_int_equal(a.cli_bytes, (size_t)cnt * size);
  assert_int_equal(a.cli_sum, want_sum);

  /* bidi: messages larger than a TLS record, echoed */
  memset(&a, 0, sizeof(a));
  want_sum = 0;
  call = start(&tp, "/t.S/Bidi");
  for (i = 0; i < 5; i++) {
    size_t len = 1000 + i * 16000;
    fill(big, len, 100 + i);
    want_sum += sum_bytes(big, len);
    assert_int_equal(sgrpc_call_send(call, big, len, i == 4 ? SGRPC_SEND_END : 0), 0);
    tp_run(&tp, 50);
  }
  tp_run(&tp, 5000);
  assert_int_equal(a.cli_closed, 1);
  assert_int_equal(a.cli_status, SGRPC_STATUS_OK);
  assert_int_equal(a.cli_msgs, 5);
  assert_int_equal(a.cli_sum, want_sum);
  assert_int_equal(sgrpc_conn_call_count(tp.p.cli), 0);
  assert_int_equal(sgrpc_conn_call_count(tp.p.srv), 0);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(tp.serr, 0);
  tp_free(&tp);
}

static void test_exchange_whole(void **state) {
  (void)state;
  exchange(0, 0, "TLSv1.3");
}

static void test_exchange_random_splits(void **state) {
  (void)state;
  exchange(700, 0, "TLSv1.3");
}

static void test_exchange_tiny_splits_tls12(void **state) {
  (void)state;
  exchange(13, 0x0303, "TLSv1.2");
}

/* ------------------------------------------------------------------ */
/* tests: handshake failures                                           */
/* ------------------------------------------------------------------ */

/* Runs a handshake between two contexts; returns the pair for checks. */
static void hs(tpair *tp, const sgrpc_tls_openssl_options *co, const char *name,
               const sgrpc_tls_openssl_options *so) {
  app a;
  sgrpc_tls_openssl_ctx *cctx = ctx_ok(co), *sctx = ctx_ok(so);
  tp_init(tp, &a, cctx, name, sctx, 0);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
  tp->max_split = 97;
  hs_run(tp);
}

static void expect_failed(sgrpc_tls *t, int code, const char *needle) {
  const uint8_t *d;
  ssize_t n;
  const char *es = sgrpc_tls_error_string(t);
  assert_true(sgrpc_tls_state(t) & SGRPC_TLS_FAILED);
  assert_false(sgrpc_tls_state(t) & SGRPC_TLS_HANDSHAKE_DONE);
  /* sticky: every later call says the same */
  assert_int_equal(sgrpc_tls_feed(t, (const uint8_t *)"x", 1), code);
  assert_int_equal(sgrpc_tls_plain_peek(t, &d), code);
  assert_int_equal(sgrpc_tls_write(t, (const uint8_t *)"x", 1), code);
  assert_false(sgrpc_tls_want_read(t));
  if (needle && !strstr(es, needle)) {
    fprintf(stderr, "error string \"%s\" lacks \"%s\"\n", es, needle);
    fail();
  }
  n = sgrpc_tls_out_peek(t, &d);
  assert_true(n >= 0);
}

static void test_alpn_mismatch(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  (void)state;
  /* the client offers only http/1.1: the server refuses */
  client_opts(&co);
  co.alpn = "http/1.1";
  server_opts(&so);
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_ALPN);
  expect_failed(tp.st, SGRPC_ERR_TLS_ALPN, "ALPN h2");
  /* and the client learns why from the alert */
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_ALPN);
  expect_failed(tp.ct, SGRPC_ERR_TLS_ALPN, "no application protocol");
  tp_free(&tp);

  /* a server that accepts only something else: the client's h2 is refused */
  client_opts(&co);
  server_opts(&so);
  so.alpn = "grpc-exp";
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_ALPN);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_ALPN);
  tp_free(&tp);
}

static void test_hostname(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  sgrpc_tls_info info;
  (void)state;
  server_opts(&so);

  /* a name the certificate does not carry */
  client_opts(&co);
  hs(&tp, &co, "wrong.example.com", &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_HOSTNAME);
  expect_failed(tp.ct, SGRPC_ERR_TLS_HOSTNAME, "mismatch");
  /* the server hears an alert */
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_PEER_ALERT);
  tp_free(&tp);

  /* the same target with target_name_override: accepted, and the SNI is
   * the override */
  client_opts(&co);
  co.target_name_override = "foo.test.google.fr";
  hs(&tp, &co, "wrong.example.com", &so);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(tp.serr, 0);
  assert_true(sgrpc_tls_state(tp.ct) & SGRPC_TLS_HANDSHAKE_DONE);
  assert_int_equal(sgrpc_tls_info_get(tp.st, &info), 0);
  assert_string_equal(info.server_name, "foo.test.google.fr");
  assert_int_equal(sgrpc_tls_info_get(tp.ct, &info), 0);
  assert_string_equal(info.server_name, "foo.test.google.fr");
  tp_free(&tp);

  /* a wildcard SAN matches one label only */
  client_opts(&co);
  hs(&tp, &co, "a.test.youtube.com", &so);
  assert_int_equal(tp.cerr, 0);
  tp_free(&tp);
  client_opts(&co);
  hs(&tp, &co, "a.b.test.youtube.com", &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_HOSTNAME);
  tp_free(&tp);

  /* IP targets are checked against IP SANs and send no SNI */
  client_opts(&co);
  hs(&tp, &co, "127.0.0.1", &so);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(sgrpc_tls_info_get(tp.st, &info), 0);
  assert_null(info.server_name);
  tp_free(&tp);
  client_opts(&co);
  hs(&tp, &co, "::1", &so);
  assert_int_equal(tp.cerr, 0);
  tp_free(&tp);
  client_opts(&co);
  hs(&tp, &co, "127.0.0.2", &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_HOSTNAME);
  tp_free(&tp);

  /* skip_hostname_check still verifies the chain */
  client_opts(&co);
  co.server_name = NULL;
  co.skip_hostname_check = 1;
  hs(&tp, &co, "wrong.example.com", &so);
  assert_int_equal(tp.cerr, 0);
  tp_free(&tp);
}

static void test_untrusted_ca(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  (void)state;
  client_opts(&co);
  server_opts(&so);
  so.cert_file = cf("other_server.pem");
  so.key_file = cf("other_server.key");
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_VERIFY);
  expect_failed(tp.ct, SGRPC_ERR_TLS_VERIFY, "unable to get local issuer");
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_PEER_ALERT);
  expect_failed(tp.st, SGRPC_ERR_TLS_PEER_ALERT, "unknown CA");
  tp_free(&tp);

  /* no CA given at all: the system store does not know the test CA */
  client_opts(&co);
  co.ca_file = NULL;
  server_opts(&so);
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_VERIFY);
  tp_free(&tp);
}

static void test_expired(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  (void)state;
  client_opts(&co);
  server_opts(&so);
  so.cert_file = cf("expired.pem");
  so.key_file = cf("expired.key");
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_VERIFY);
  expect_failed(tp.ct, SGRPC_ERR_TLS_VERIFY, "expired");
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_PEER_ALERT);
  tp_free(&tp);
}

static void test_version_floor(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *ctx = NULL;
  tpair tp;
  (void)state;
  /* TLS 1.1 cannot be asked for */
  client_opts(&co);
  co.min_version = 0x0302;
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &co, NULL, 0), SGRPC_ERR_TLS_CONFIG);
  assert_null(ctx);
  /* a 1.3-only server and a 1.2-only client have nothing in common */
  client_opts(&co);
  co.max_version = 0x0303;
  server_opts(&so);
  so.min_version = 0x0304;
  hs(&tp, &co, NULL, &so);
  assert_true(tp.serr == SGRPC_ERR_TLS_HANDSHAKE);
  assert_true(tp.cerr == SGRPC_ERR_TLS_PEER_ALERT);
  expect_failed(tp.ct, SGRPC_ERR_TLS_PEER_ALERT, "protocol version");
  tp_free(&tp);
}

/* A TLS failure reaches the engine as a closed transport: the calls
 * waiting for the handshake end UNAVAILABLE. */
static void test_failure_ends_calls(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  sgrpc_call *call;
  (void)state;
  client_opts(&co);
  server_opts(&so);
  so.cert_file = cf("expired.pem");
  so.key_file = cf("expired.key");
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
  call = start(&tp, "/t.S/Unary");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"x", 1, SGRPC_SEND_END), 0);
  tp_run(&tp, 100);
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_VERIFY);
  assert_int_equal(a.cli_closed, 0);
  assert_int_equal(a.srv_new, 0); /* nothing reached the server engine */
  /* what an adapter does on a TLS error: flush the alert, close, tell */
  assert_int_equal(sgrpc_tls_transport_closed(tp.ct), SGRPC_ERR_TLS_TRUNCATED);
  assert_int_equal(sgrpc_conn_transport_closed(tp.p.cli), 0);
  pair_drain(&tp.p, tp.p.cli);
  assert_int_equal(a.cli_closed, 1);
  assert_int_equal(a.cli_status, SGRPC_STATUS_UNAVAILABLE);
  tp_free(&tp);
}

/* ------------------------------------------------------------------ */
/* tests: mutual TLS, peer certificates, SNI                           */
/* ------------------------------------------------------------------ */

static int has_san(const sgrpc_tls_peer *p, sgrpc_tls_san_type type, const char *v) {
  size_t i;
  for (i = 0; i < p->san_count; i++)
    if (p->sans[i].type == type && strcmp(p->sans[i].value, v) == 0) return 1;
  return 0;
}

static X509 *read_pem(const char *path) {
  FILE *f = fopen(path, "r");
  X509 *x;
  assert_non_null(f);
  x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(x);
  return x;
}

static void assert_der_is(const sgrpc_tls_peer *p, const char *pem) {
  const unsigned char *d = p->der;
  X509 *got = d2i_X509(NULL, &d, (long)p->der_len);
  X509 *want = read_pem(pem);
  assert_non_null(got);
  assert_ptr_equal(d, p->der + p->der_len);
  assert_int_equal(X509_cmp(got, want), 0);
  X509_free(got);
  X509_free(want);
}

static void test_mtls_and_peer_certs(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  sgrpc_tls_peer peer;
  sgrpc_tls_info info;
  sgrpc_call *call;
  (void)state;
  client_opts(&co);
  co.cert_file = cf("client.pem");
  co.key_file = cf("client.key");
  server_opts(&so);
  so.ca_file = cf("ca.pem");
  so.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  tp.max_split = 211;
  /* peer info is not there before the handshake */
  assert_int_equal(sgrpc_tls_peer_cert(tp.st, &peer), SGRPC_ERR_INVALID_STATE);
  call = start(&tp, "/t.S/Unary");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"mtls", 4, SGRPC_SEND_END), 0);
  tp_run(&tp, 1000);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(tp.serr, 0);
  assert_int_equal(a.cli_status, SGRPC_STATUS_OK);
  assert_int_equal(a.cli_closed, 1);

  /* the server sees the client's certificate */
  assert_int_equal(sgrpc_tls_peer_cert(tp.st, &peer), 0);
  assert_string_equal(peer.subject, "CN=sgrpc-test-client,O=sgrpc test");
  assert_string_equal(peer.issuer, "CN=sgrpc test CA,O=sgrpc test");
  assert_true(peer.verified);
  assert_int_equal(peer.san_count, 2);
  assert_true(has_san(&peer, SGRPC_TLS_SAN_URI, "spiffe://sgrpc.test/client"));
  assert_true(has_san(&peer, SGRPC_TLS_SAN_EMAIL, "client@sgrpc.test"));
  assert_der_is(&peer, cf("client.pem"));
  /* SNI the client sent */
  assert_int_equal(sgrpc_tls_info_get(tp.st, &info), 0);
  assert_string_equal(info.server_name, "localhost");

  /* the client sees the server's */
  assert_int_equal(sgrpc_tls_peer_cert(tp.ct, &peer), 0);
  assert_string_equal(peer.subject, "CN=localhost,O=sgrpc test");
  assert_true(peer.verified);
  assert_int_equal(peer.san_count, 5);
  assert_string_equal(peer.sans[0].value, "localhost");
  assert_true(has_san(&peer, SGRPC_TLS_SAN_DNS, "foo.test.google.fr"));
  assert_true(has_san(&peer, SGRPC_TLS_SAN_IP, "127.0.0.1"));
  assert_true(has_san(&peer, SGRPC_TLS_SAN_IP, "::1"));
  assert_der_is(&peer, cf("server.pem"));
  tp_free(&tp);

  /* without client certificate: the server refuses */
  client_opts(&co);
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_NO_PEER_CERT);
  expect_failed(tp.st, SGRPC_ERR_TLS_NO_PEER_CERT, "no certificate");
  /* TLS 1.3: the client finished before the server decided; it hears the
   * alert on its next read */
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_PEER_ALERT);
  assert_non_null(strstr(sgrpc_tls_error_string(tp.ct), "certificate required"));
  tp_free(&tp);

  /* a client certificate from another CA */
  client_opts(&co);
  co.cert_file = cf("other_client.pem");
  co.key_file = cf("other_client.key");
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.serr, SGRPC_ERR_TLS_VERIFY);
  expect_failed(tp.st, SGRPC_ERR_TLS_VERIFY, "certificate verify failed");
  assert_int_equal(tp.cerr, SGRPC_ERR_TLS_PEER_ALERT);
  tp_free(&tp);

  /* optional client certificates: none is fine, and visible as none */
  client_opts(&co);
  so.client_cert = SGRPC_TLS_CLIENT_CERT_OPTIONAL;
  hs(&tp, &co, NULL, &so);
  assert_int_equal(tp.serr, 0);
  assert_int_equal(tp.cerr, 0);
  assert_int_equal(sgrpc_tls_peer_cert(tp.st, &peer), SGRPC_ERR_TLS_NO_PEER_CERT);
  tp_free(&tp);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
}

/* ------------------------------------------------------------------ */
/* tests: close_notify, truncation, garbage                            */
/* ------------------------------------------------------------------ */

static void test_close_notify(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  const uint8_t *d;
  (void)state;
  client_opts(&co);
  server_opts(&so);
  hs(&tp, &co, NULL, &so);
  assert_true(sgrpc_tls_state(tp.ct) & SGRPC_TLS_HANDSHAKE_DONE);
  assert_true(sgrpc_tls_state(tp.st) & SGRPC_TLS_HANDSHAKE_DONE);

  /* data, then close_notify: the data arrives first, then CLOSED */
  assert_int_equal(sgrpc_tls_write(tp.ct, (const uint8_t *)"last words", 10), 10);
  assert_int_equal(sgrpc_tls_close(tp.ct), 0);
  assert_int_equal(sgrpc_tls_close(tp.ct), 0); /* again: no-op */
  assert_true(sgrpc_tls_state(tp.ct) & SGRPC_TLS_SENT_CLOSE);
  assert_int_equal(sgrpc_tls_write(tp.ct, (const uint8_t *)"more", 4), SGRPC_ERR_INVALID_STATE);
  hs_run(&tp);
  {
    uint8_t buf[32];
    assert_int_equal(sgrpc_tls_plain_read(tp.st, buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "last words", 10);
  }
  assert_int_equal(sgrpc_tls_plain_peek(tp.st, &d), SGRPC_ERR_TLS_CLOSED);
  assert_int_equal(sgrpc_tls_plain_peek(tp.st, &d), SGRPC_ERR_TLS_CLOSED);
  assert_true(sgrpc_tls_state(tp.st) & SGRPC_TLS_RECEIVED_CLOSE);
  assert_false(sgrpc_tls_state(tp.st) & SGRPC_TLS_FAILED);
  assert_false(sgrpc_tls_want_read(tp.st));
  /* the server answers with its own close_notify */
  assert_int_equal(sgrpc_tls_close(tp.st), 0);
  hs_run(&tp);
  assert_int_equal(sgrpc_tls_plain_peek(tp.ct, &d), SGRPC_ERR_TLS_CLOSED);
  assert_int_equal(sgrpc_tls_state(tp.ct),
                   SGRPC_TLS_HANDSHAKE_DONE | SGRPC_TLS_SENT_CLOSE | SGRPC_TLS_RECEIVED_CLOSE);
  /* a clean end */
  assert_int_equal(sgrpc_tls_transport_closed(tp.st), 0);
  assert_int_equal(sgrpc_tls_transport_closed(tp.ct), 0);
  tp_free(&tp);

  /* EOF without close_notify is a truncation; buffered data still comes */
  client_opts(&co);
  server_opts(&so);
  hs(&tp, &co, NULL, &so);
  assert_int_equal(sgrpc_tls_write(tp.st, (const uint8_t *)"partial", 7), 7);
  hs_run(&tp);
  assert_int_equal(sgrpc_tls_transport_closed(tp.ct), SGRPC_ERR_TLS_TRUNCATED);
  assert_int_equal(sgrpc_tls_plain_peek(tp.ct, &d), 7);
  assert_memory_equal(d, "partial", 7);
  assert_int_equal(sgrpc_tls_plain_consume(tp.ct, 8), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_plain_consume(tp.ct, 7), 0);
  assert_int_equal(sgrpc_tls_plain_peek(tp.ct, &d), SGRPC_ERR_TLS_TRUNCATED);
  assert_int_equal(sgrpc_tls_feed(tp.ct, (const uint8_t *)"x", 1), SGRPC_ERR_INVALID_STATE);
  tp_free(&tp);
}

/* The engines end cleanly over TLS: client GOAWAY after its calls, then
 * close_notify both ways; the engines see the transport end. */
static void test_close_with_engines(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  sgrpc_call *call;
  (void)state;
  client_opts(&co);
  server_opts(&so);
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
  call = start(&tp, "/t.S/Unary");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"a", 1, SGRPC_SEND_END), 0);
  tp_run(&tp, 200);
  assert_int_equal(a.cli_status, SGRPC_STATUS_OK);
  /* a call left open when the peer closes TLS ends UNAVAILABLE */
  call = start(&tp, "/t.S/Bidi");
  assert_int_equal(sgrpc_call_send(call, (const uint8_t *)"b", 1, 0), 0);
  tp_run(&tp, 200);
  assert_int_equal(a.srv_new, 2);
  assert_int_equal(sgrpc_tls_close(tp.st), 0);
  tp_run(&tp, 200);
  assert_int_equal(tp.cli_closed_tls, 1);
  assert_int_equal(tp.cerr, 0);
  /* adapter: on SGRPC_ERR_TLS_CLOSED, the engine's transport ended */
  assert_int_equal(sgrpc_tls_transport_closed(tp.ct), 0);
  sgrpc_conn_transport_closed(tp.p.cli);
  pair_drain(&tp.p, tp.p.cli);
  assert_int_equal(a.cli_closed, 2);
  assert_int_equal(a.cli_status, SGRPC_STATUS_UNAVAILABLE);
  sgrpc_conn_transport_closed(tp.p.srv);
  pair_drain(&tp.p, tp.p.srv);
  assert_int_equal(a.srv_closed, 2);
  tp_free(&tp);
}

static void test_garbage(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  sgrpc_tls *t;
  tpair tp;
  const uint8_t *d;
  uint8_t junk[4096];
  size_t i;
  ssize_t r = 0;
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  (void)state;
  client_opts(&co);
  server_opts(&so);
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);

  /* plaintext HTTP/2 sent to a TLS server */
  t = session(sctx, NULL);
  r = sgrpc_tls_feed(t, (const uint8_t *)preface, sizeof(preface) - 1);
  assert_int_equal(r, SGRPC_ERR_TLS_PROTOCOL);
  expect_failed(t, SGRPC_ERR_TLS_PROTOCOL, "malformed");
  sgrpc_tls_del(t);

  /* random bytes to a server, in small pieces */
  t = session(sctx, NULL);
  for (i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 131 + 7);
  r = 0;
  for (i = 0; i < sizeof(junk) && r >= 0; i += 5) r = sgrpc_tls_feed(t, junk + i, 5);
  assert_true(r < 0);
  assert_true(sgrpc_tls_is_tls_error((int)r));
  assert_true(sgrpc_tls_error_string(t)[0] != '\0');
  sgrpc_tls_del(t);

  /* a TLS-looking record header with junk to a client awaiting ServerHello */
  t = session(cctx, NULL);
  {
    uint8_t rec[64] = {0x16, 0x03, 0x03, 0x00, 59};
    memset(rec + 5, 0xAB, sizeof(rec) - 5);
    r = sgrpc_tls_feed(t, rec, sizeof(rec));
    assert_true(r == SGRPC_ERR_TLS_PROTOCOL || r == SGRPC_ERR_TLS_HANDSHAKE);
    assert_true(sgrpc_tls_state(t) & SGRPC_TLS_FAILED);
    /* an alert for the peer is queued */
    assert_true(sgrpc_tls_out_peek(t, &d) > 0);
  }
  sgrpc_tls_del(t);

  /* after the handshake: a forged application-data record */
  {
    app a;
    tp_init(&tp, &a, cctx, NULL, sctx, 0);
    hs_run(&tp);
    assert_true(sgrpc_tls_state(tp.st) & SGRPC_TLS_HANDSHAKE_DONE);
    junk[0] = 0x17;
    junk[1] = 0x03;
    junk[2] = 0x03;
    junk[3] = 0x01;
    junk[4] = 0x00; /* 256 bytes of "ciphertext" */
    assert_int_equal(sgrpc_tls_feed(tp.st, junk, 5 + 256), 5 + 256);
    assert_int_equal(sgrpc_tls_plain_peek(tp.st, &d), SGRPC_ERR_TLS_PROTOCOL);
    assert_non_null(strstr(sgrpc_tls_error_string(tp.st), "bad record mac"));
    tp_free(&tp);
  }
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
}

/* ------------------------------------------------------------------ */
/* tests: arguments, configuration, allocation failure                 */
/* ------------------------------------------------------------------ */

static void test_config_errors(void **state) {
  sgrpc_tls_openssl_options o;
  sgrpc_tls_openssl_ctx *ctx = NULL;
  sgrpc_tls *t = NULL;
  char err[256];
  (void)state;
  sgrpc_tls_openssl_options_default(&o);
  assert_int_equal(sgrpc_tls_openssl_ctx_new(NULL, &o, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, NULL, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  memset(&o, 0, sizeof(o)); /* no version */
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);

  server_opts(&o);
  o.cert_file = cf("missing.pem");
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof(err)), SGRPC_ERR_TLS_CONFIG);
  assert_non_null(strstr(err, "certificate"));
  assert_null(ctx);

  server_opts(&o);
  o.key_file = cf("client.key"); /* not the certificate's key */
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof(err)), SGRPC_ERR_TLS_CONFIG);
  assert_non_null(strstr(err, "does not match the certificate"));

  server_opts(&o);
  o.cert_file = o.key_file = NULL;
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof(err)), SGRPC_ERR_TLS_CONFIG);

  server_opts(&o);
  o.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE; /* without CAs */
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof(err)), SGRPC_ERR_TLS_CONFIG);

  client_opts(&o);
  o.ca_file = cf("nope.pem");
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, err, 8), SGRPC_ERR_TLS_CONFIG);
  assert_true(strlen(err) < 8); /* cut to the buffer */

  client_opts(&o);
  o.alpn = "";
  assert_int_equal(sgrpc_tls_openssl_ctx_new(&ctx, &o, NULL, 0), SGRPC_ERR_TLS_CONFIG);

  /* a client with no name at all */
  client_opts(&o);
  o.server_name = NULL;
  ctx = ctx_ok(&o);
  assert_int_equal(sgrpc_tls_openssl_new(&t, ctx, NULL), SGRPC_ERR_TLS_CONFIG);
  assert_null(t);
  assert_int_equal(sgrpc_tls_openssl_new(NULL, ctx, "x"), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_openssl_new(&t, NULL, "x"), SGRPC_ERR_INVALID_ARGUMENT);
  t = session(ctx, "localhost");
  assert_non_null(sgrpc_tls_openssl_ssl(t));
  assert_int_equal(sgrpc_tls_state(t), 0);
  assert_true(sgrpc_tls_want_write(t)); /* the ClientHello */
  assert_true(sgrpc_tls_want_read(t));
  /* nothing to encrypt before the handshake */
  assert_int_equal(sgrpc_tls_write(t, (const uint8_t *)"x", 1), 0);
  sgrpc_tls_del(t);
  sgrpc_tls_openssl_ctx_del(ctx);

  /* server sessions take no name */
  server_opts(&o);
  ctx = ctx_ok(&o);
  assert_int_equal(sgrpc_tls_openssl_new(&t, ctx, "localhost"), SGRPC_ERR_INVALID_ARGUMENT);
  sgrpc_tls_openssl_ctx_del(ctx);
  sgrpc_tls_openssl_ctx_del(NULL);
}

static void test_seam_args_and_strings(void **state) {
  const uint8_t *d;
  uint8_t b[4] = {0};
  sgrpc_tls_peer peer;
  sgrpc_tls_info info;
  (void)state;
  assert_int_equal(sgrpc_tls_feed(NULL, b, 1), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_plain_peek(NULL, &d), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_plain_consume(NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_plain_read(NULL, b, 4), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_write(NULL, b, 1), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_out_peek(NULL, &d), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_out_consume(NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_out_copy(NULL, b, 4), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_close(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_transport_closed(NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_peer_cert(NULL, &peer), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_info_get(NULL, &info), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_pump_in(NULL, NULL, 0), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_pump_out(NULL, NULL), SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_tls_state(NULL), SGRPC_TLS_FAILED);
  assert_false(sgrpc_tls_want_read(NULL));
  assert_false(sgrpc_tls_want_write(NULL));
  assert_non_null(sgrpc_tls_error_string(NULL));
  sgrpc_tls_del(NULL);

  assert_non_null(strstr(sgrpc_tls_strerror(SGRPC_ERR_TLS_ALPN), "h2"));
  assert_non_null(strstr(sgrpc_tls_strerror(SGRPC_ERR_TLS_CLOSED), "close_notify"));
  assert_string_equal(sgrpc_tls_strerror(-650), "unknown TLS error");
  /* outside the range it defers to the engine */
  assert_string_equal(sgrpc_tls_strerror(SGRPC_ERR_NOMEM), sgrpc_strerror(SGRPC_ERR_NOMEM));
  /* the engine's sgrpc_strerror and sgrpc_is_fatal know every TLS code
   * (it names them by number: the numbers must still match) */
  {
    static const struct { int code; const char *word; } tls_codes[] = {
        {SGRPC_ERR_TLS_CONFIG, "configuration"}, {SGRPC_ERR_TLS_HANDSHAKE, "handshake"},
        {SGRPC_ERR_TLS_VERIFY, "verification"}, {SGRPC_ERR_TLS_HOSTNAME, "name"},
        {SGRPC_ERR_TLS_NO_PEER_CERT, "no certificate"}, {SGRPC_ERR_TLS_ALPN, "ALPN"},
        {SGRPC_ERR_TLS_PROTOCOL, "malformed"}, {SGRPC_ERR_TLS_PEER_ALERT, "alert"},
        {SGRPC_ERR_TLS_CLOSED, "close_notify"}, {SGRPC_ERR_TLS_TRUNCATED, "without"},
        {SGRPC_ERR_TLS_INTERNAL, "internal"}};
    size_t k;
    for (k = 0; k < sizeof(tls_codes) / sizeof(tls_codes[0]); k++) {
      assert_non_null(strstr(sgrpc_strerror(tls_codes[k].code), tls_codes[k].word));
      assert_string_equal(sgrpc_tls_strerror(tls_codes[k].code),
                          sgrpc_strerror(tls_codes[k].code));
      assert_true(sgrpc_is_fatal(tls_codes[k].code));
      assert_int_equal(sgrpc_err_errno(tls_codes[k].code), 0);
    }
    assert_int_equal(SGRPC_ERR_TLS_FIRST, -699);
    assert_int_equal(SGRPC_ERR_TLS_LAST, -600);
    assert_string_equal(sgrpc_strerror(-650), "unknown TLS error");
  }
  assert_true(sgrpc_tls_is_tls_error(SGRPC_ERR_TLS_CONFIG));
  assert_true(sgrpc_tls_is_tls_error(SGRPC_ERR_TLS_INTERNAL));
  assert_false(sgrpc_tls_is_tls_error(SGRPC_ERR_PROTOCOL));
  assert_false(sgrpc_tls_is_tls_error(SGRPC_ERR_INVALID_ARGUMENT));
  /* a TLS failure ends the connection: fatal, as the engine's own */
  assert_true(sgrpc_is_fatal(SGRPC_ERR_TLS_CONFIG));
}

/* Every allocation of the filter fails in turn: each failure is
 * SGRPC_ERR_NOMEM (or the step succeeds), and nothing leaks. */
static void test_alloc_failures(void **state) {
  failmem fm;
  sgrpc_mem mem;
  long at;
  int successes = 0, failures = 0;
  (void)state;
  for (at = 1; at < 200; at++) {
    sgrpc_tls_openssl_options co, so;
    sgrpc_tls_openssl_ctx *cctx = NULL, *sctx = NULL;
    sgrpc_tls_peer peer;
    tpair tp;
    int rv, done = 0;
    failmem_init(&fm, &mem);
    fm.fail_at = at;
    memset(&tp, 0, sizeof(tp));
    client_opts(&co);
    co.mem = &mem;
    server_opts(&so);
    so.mem = &mem;
    rv = sgrpc_tls_openssl_ctx_new(&cctx, &co, NULL, 0);
    if (rv == 0) rv = sgrpc_tls_openssl_ctx_new(&sctx, &so, NULL, 0);
    if (rv == 0) rv = sgrpc_tls_openssl_new(&tp.ct, cctx, NULL);
    if (rv == 0) rv = sgrpc_tls_openssl_new(&tp.st, sctx, NULL);
    if (rv == 0) {
      hs_run(&tp);
      assert_int_equal(tp.cerr, 0);
      assert_int_equal(tp.serr, 0);
      rv = sgrpc_tls_peer_cert(tp.ct, &peer);
      if (rv == 0) {
        assert_string_equal(peer.subject, "CN=localhost,O=sgrpc test");
        done = 1;
      }
    }
    if (rv) assert_int_equal(rv, SGRPC_ERR_NOMEM);
    sgrpc_tls_del(tp.ct);
    sgrpc_tls_del(tp.st);
    sgrpc_tls_openssl_ctx_del(cctx);
    sgrpc_tls_openssl_ctx_del(sctx);
    assert_int_equal(fm.live, 0);
    if (done && fm.failures == 0) {
      successes++;
      break; /* every allocation was tried */
    }
    failures++;
  }
  assert_int_equal(successes, 1);
  assert_true(failures >= 8); /* ctx x2, strings, session, buffers, peer data */
}

/* A filter that stops taking input when its plaintext is not read keeps
 * memory bounded, and resumes when it is. */
static void test_backpressure(void **state) {
  sgrpc_tls_openssl_options co, so;
  tpair tp;
  uint8_t buf[100000];
  const uint8_t *d;
  ssize_t n, w;
  size_t fed = 0, got = 0, sent = 0;
  int i;
  (void)state;
  client_opts(&co);
  co.max_buffered_output = 20000;
  server_opts(&so);
  so.max_buffered_input = 20000;
  hs(&tp, &co, NULL, &so);
  fill(buf, sizeof(buf), 9);
  /* write stops at the output limit */
  w = sgrpc_tls_write(tp.ct, buf, sizeof(buf));
  assert_true(w > 0 && w < (ssize_t)sizeof(buf));
  assert_true(sgrpc_tls_want_write(tp.ct));
  sent = (size_t)w;
  for (i = 0; i < 1000 && got < sizeof(buf); i++) {
    /* move ciphertext until the server refuses, without reading it */
    while ((n = sgrpc_tls_out_peek(tp.ct, &d)) > 0) {
      ssize_t r = sgrpc_tls_feed(tp.st, d, (size_t)n);
      assert_true(r >= 0);
      sgrpc_tls_out_consume(tp.ct, (size_t)r);
      fed += (size_t)r;
      if (r < n) {
        assert_false(sgrpc_tls_want_read(tp.st));
        break;
      }
    }
    /* now read the plaintext, which frees room */
    {
      uint8_t tmp[5000];
      ssize_t r;
      while ((r = sgrpc_tls_plain_read(tp.st, tmp, sizeof(tmp))) > 0) {
        assert_memory_equal(tmp, buf + got, (size_t)r);
        got += (size_t)r;
      }
      assert_true(r == 0);
    }
    if (sent < sizeof(buf)) {
      w = sgrpc_tls_write(tp.ct, buf + sent, sizeof(buf) - sent);
      assert_true(w >= 0);
      sent += (size_t)w;
    }
  }
  assert_int_equal(got, sizeof(buf));
  assert_true(fed > sizeof(buf));
  tp_free(&tp);
}

/* ------------------------------------------------------------------ */
/* tests: a real OpenSSL peer over 127.0.0.1                           */
/* ------------------------------------------------------------------ */

static void sleep_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts argv with stdout and stderr in files. stdin comes from the file
 * in, or when in is NULL from a pipe whose write end goes to *stdin_w
 * (s_server ends at end of input even with -ign_eof). */
static pid_t spawn(char *const argv[], const char *in, int *stdin_w, const char *out,
                   const char *err) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int rv, pfd[2] = {-1, -1};
  posix_spawn_file_actions_init(&fa);
  if (in) {
    posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
  } else {
    assert_int_equal(pipe(pfd), 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
  }
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  rv = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(rv, 0);
  if (!in) {
    close(pfd[0]);
    *stdin_w = pfd[1];
  }
  return pid;
}

/* Waits for the child at most ms; kills it if it is still there.
 * Returns its exit status, or -1 when it had to be killed. */
static int reap(pid_t pid, int ms) {
  int64_t end = now_ms() + ms;
  int st;
  while (now_ms() < end) {
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *b;
  size_t n = 0;
  assert_non_null(f);
  b = malloc(1 << 20);
  n = fread(b, 1, (1 << 20) - 1, f);
  fclose(f);
  b[n] = '\0';
  if (len) *len = n;
  return b;
}

static int mem_has(const char *hay, size_t n, const char *needle) {
  size_t l = strlen(needle), i;
  for (i = 0; i + l <= n; i++)
    if (memcmp(hay + i, needle, l) == 0) return 1;
  return 0;
}

/* A port below 32768 chosen at random (the rules keep tests off the
 * ephemeral range), bound by a listening socket when listen_fd is set. */
static int pick_port(int *listen_fd) {
  int attempt;
  for (attempt = 0; attempt < 50; attempt++) {
    int port = 20000 + (int)((unsigned)(now_ms() * 7919 + attempt * 104729 + getpid()) % 12000);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
      if (listen_fd) {
        assert_int_equal(listen(fd, 1), 0);
        *listen_fd = fd;
      } else {
        close(fd);
      }
      return port;
    }
    close(fd);
  }
  fail_msg("no free port");
  return -1;
}

/* Moves bytes between a socket and a filter (and its engine, if any)
 * until done(ud) says so, the socket closes, or ms pass. Returns 1 when
 * done() was reached. */
static int sock_loop(int fd, tpair *tp, sgrpc_tls *t, sgrpc_conn *conn, int ms,
                     int (*done)(tpair *, void *), void *ud) {
  int64_t end = now_ms() + ms;
  int eof = 0;
  while (now_ms() < end) {
    struct pollfd pfd;
    const uint8_t *d;
    ssize_t n;
    if (done(tp, ud)) return 1;
    if (conn) tp_out(tp, t, conn);
    while ((n = sgrpc_tls_out_peek(t, &d)) > 0) {
      ssize_t w = send(fd, d, (size_t)n, MSG_NOSIGNAL);
      if (w <= 0) break;
      sgrpc_tls_out_consume(t, (size_t)w);
    }
    if (eof) {
      if (done(tp, ud)) return 1;
      return 0;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 50) > 0) {
      uint8_t buf[16384];
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r <= 0) {
        int rv = sgrpc_tls_transport_closed(t);
        if (rv) note_err(tp, t, rv);
        eof = 1;
      } else {
        ssize_t f = sgrpc_tls_feed(t, buf, (size_t)r);
        if (f < 0) note_err(tp, t, (int)f);
        else assert_int_equal(f, r); /* 16 KiB never fills the 64 KiB input */
      }
      if (conn) {
        tp_deliver(tp, t, conn);
      } else {
        uint8_t sink[16384];
        ssize_t p;
        while ((p = sgrpc_tls_plain_read(t, sink, sizeof(sink))) > 0) {
        }
        if (p < 0) note_err(tp, t, (int)p);
      }
    }
  }
  return done(tp, ud);
}

static int cli_preface_sent(tpair *tp, void *ud) {
  (void)ud;
  /* handshake done, the engine's preface handed to TLS and sent */
  return (tp->cerr != 0) ||
         ((sgrpc_tls_state(tp->ct) & SGRPC_TLS_HANDSHAKE_DONE) && tp->cli_plain_out >= 24 &&
          !sgrpc_tls_want_write(tp->ct));
}

static int cli_got_close(tpair *tp, void *ud) {
  (void)ud;
  return tp->cerr != 0 || tp->cli_closed_tls;
}

static int connect_retry(int port) {
  int i;
  for (i = 0; i < 300; i++) { /* up to 3 s for s_server to listen */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) return fd;
    close(fd);
    sleep_ms(10);
  }
  return -1;
}

/* Our client (engine + filter) against "openssl s_server". With alpn set
 * the handshake must succeed and s_server must print the HTTP/2 preface
 * it decrypted; without, our client must refuse (no h2). */
static void run_s_server(const char *alpn, int expect_ok) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  char port_s[16];
  char *argv[20];
  int argc = 0, port, fd, status, stdin_w = -1;
  pid_t pid;
  size_t outlen;
  char *out;
  sgrpc_tls_info info;
  sgrpc_tls_peer peer;

  port = pick_port(NULL);
  snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", port);
  argv[argc++] = "openssl";
  argv[argc++] = "s_server";
  argv[argc++] = "-accept";
  argv[argc++] = port_s;
  argv[argc++] = "-naccept";
  argv[argc++] = "1";
  argv[argc++] = "-cert";
  argv[argc++] = (char *)cf("server.pem");
  argv[argc++] = "-key";
  argv[argc++] = (char *)cf("server.key");
  if (alpn) {
    argv[argc++] = "-alpn";
    argv[argc++] = (char *)alpn;
  }
  argv[argc] = NULL;
  pid = spawn(argv, NULL, &stdin_w, cf("s_server.out"), cf("s_server.err"));

  client_opts(&co);
  server_opts(&so); /* unused side of the pair */
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  fd = connect_retry(port);
  assert_true(fd >= 0);
  sock_loop(fd, &tp, tp.ct, tp.p.cli, 5000, cli_preface_sent, NULL);
  if (expect_ok) {
    assert_int_equal(tp.cerr, 0);
    assert_true(sgrpc_tls_state(tp.ct) & SGRPC_TLS_HANDSHAKE_DONE);
    assert_int_equal(sgrpc_tls_info_get(tp.ct, &info), 0);
    assert_string_equal(info.alpn, "h2");
    assert_int_equal(sgrpc_tls_peer_cert(tp.ct, &peer), 0);
    assert_string_equal(peer.subject, "CN=localhost,O=sgrpc test");
    /* a clean close both ways; s_server then ends (-naccept 1). Its
     * stdin stays open until then: at end of input it would quit
     * without reading what we sent. */
    assert_int_equal(sgrpc_tls_close(tp.ct), 0);
    sock_loop(fd, &tp, tp.ct, tp.p.cli, 5000, cli_got_close, NULL);
    assert_int_equal(tp.cerr, 0);
    assert_true(tp.cli_closed_tls);
  } else {
    assert_int_equal(tp.cerr, SGRPC_ERR_TLS_ALPN);
    assert_non_null(strstr(sgrpc_tls_error_string(tp.ct), "selected: none"));
  }
  shutdown(fd, SHUT_WR);
  status = reap(pid, 5000);
  close(stdin_w);
  close(fd);
  out = slurp(cf("s_server.out"), &outlen);
  if (expect_ok) {
    assert_int_equal(status, 0); /* it ended by itself after our close */
    /* s_server prints what it decrypted: the client's HTTP/2 preface */
    if (!mem_has(out, outlen, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
      fprintf(stderr, "s_server output (%zu bytes) lacks the preface; status %d\n", outlen,
              status);
      fail();
    }
  }
  free(out);
  tp_free(&tp);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
}

static void test_real_s_server(void **state) {
  (void)state;
  run_s_server("h2", 1);
  run_s_server(NULL, 0);
}

static int srv_ready_and_closed(tpair *tp, void *ud) {
  app *a = ud;
  return tp->serr != 0 || (a->srv_ready && tp->srv_closed_tls);
}

/* "openssl s_client" (with a client certificate) against our server
 * (engine + filter, mutual TLS required). s_client sends the HTTP/2
 * preface and an empty SETTINGS frame from a file, then close_notify at
 * its end of input. */
static void test_real_s_client(void **state) {
  sgrpc_tls_openssl_options co, so;
  sgrpc_tls_openssl_ctx *cctx, *sctx;
  tpair tp;
  app a;
  char port_s[32];
  char *argv[24];
  int argc = 0, port, lfd, fd = -1, status, i;
  pid_t pid;
  sgrpc_tls_info info;
  sgrpc_tls_peer peer;
  char *err;
  FILE *f;
  static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  (void)state;

  f = fopen(cf("h2.bin"), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(preface, 1, sizeof(preface) - 1, f), sizeof(preface) - 1);
  fclose(f);

  port = pick_port(&lfd);
  snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", port);
  argv[argc++] = "openssl";
  argv[argc++] = "s_client";
  argv[argc++] = "-connect";
  argv[argc++] = port_s;
  argv[argc++] = "-servername";
  argv[argc++] = "localhost";
  argv[argc++] = "-verify_hostname";
  argv[argc++] = "localhost";
  argv[argc++] = "-CAfile";
  argv[argc++] = (char *)cf("ca.pem");
  argv[argc++] = "-verify_return_error";
  argv[argc++] = "-cert";
  argv[argc++] = (char *)cf("client.pem");
  argv[argc++] = "-key";
  argv[argc++] = (char *)cf("client.key");
  argv[argc++] = "-alpn";
  argv[argc++] = "h2";
  argv[argc++] = "-brief";
  argv[argc] = NULL;
  pid = spawn(argv, cf("h2.bin"), NULL, cf("s_client.out"), cf("s_client.err"));

  for (i = 0; i < 500 && fd < 0; i++) { /* up to 5 s */
    struct pollfd pfd = {lfd, POLLIN, 0};
    if (poll(&pfd, 1, 10) > 0) fd = accept(lfd, NULL, NULL);
  }
  close(lfd);
  assert_true(fd >= 0);

  client_opts(&co); /* unused side of the pair */
  server_opts(&so);
  so.ca_file = cf("ca.pem");
  so.client_cert = SGRPC_TLS_CLIENT_CERT_REQUIRE;
  cctx = ctx_ok(&co);
  sctx = ctx_ok(&so);
  tp_init(&tp, &a, cctx, NULL, sctx, 1);
  sock_loop(fd, &tp, tp.st, tp.p.srv, 5000, srv_ready_and_closed, &a);
  assert_int_equal(tp.serr, 0);
  /* the client's SETTINGS reached the server engine through TLS */
  assert_true(a.srv_ready);
  assert_true(tp.srv_closed_tls);
  assert_int_equal(sgrpc_tls_info_get(tp.st, &info), 0);
  assert_string_equal(info.alpn, "h2");
  assert_string_equal(info.server_name, "localhost");
  assert_int_equal(sgrpc_tls_peer_cert(tp.st, &peer), 0);
  assert_string_equal(peer.subject, "CN=sgrpc-test-client,O=sgrpc test");
  close(fd);
  status = reap(pid, 5000);
  err = slurp(cf("s_client.err"), NULL);
  if (status != 0 || !strstr(err, "Verification: OK")) {
    fprintf(stderr, "s_client status %d, stderr:\n%s\n", status, err);
    fail();
  }
  free(err);
  tp_free(&tp);
  sgrpc_tls_openssl_ctx_del(cctx);
  sgrpc_tls_openssl_ctx_del(sctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_seam_args_and_strings),
    cmocka_unit_test(test_config_errors),
    cmocka_unit_test(test_exchange_whole),
    cmocka_unit_test(test_exchange_random_splits),
    cmocka_unit_test(test_exchange_tiny_splits_tls12),
    cmocka_unit_test(test_alpn_mismatch),
    cmocka_unit_test(test_hostname),
    cmocka_unit_test(test_untrusted_ca),
    cmocka_unit_test(test_expired),
    cmocka_unit_test(test_version_floor),
    cmocka_unit_test(test_failure_ends_calls),
    cmocka_unit_test(test_mtls_and_peer_certs),
    cmocka_unit_test(test_close_notify),
    cmocka_unit_test(test_close_with_engines),
    cmocka_unit_test(test_garbage),
    cmocka_unit_test(test_backpressure),
    cmocka_unit_test(test_alloc_failures),
    cmocka_unit_test(test_real_s_server),
    cmocka_unit_test(test_real_s_client),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
#endif
