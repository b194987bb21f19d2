/*
 * fuzz_net: the net layer (adapters/core, <sgrpc/net_adapter.h>) on a fake
 * in-memory loop. sgrpc_net_ops are implemented here: ops->write takes
 * what the script allows and drops it, ops->connect attaches a transport
 * the script then drives, the timer is the script's clock. Fuzz bytes go
 * in through the adapter-author entry points (sgrpc_net_conn_read,
 * _writable, _closed, _connected, sgrpc_net_server_accept,
 * sgrpc_net_loop_timer, sgrpc_net_loop_service), as a client's bytes to an
 * echo server or a server's bytes to a channel's connection.
 *
 * The input is a script; each op is one byte and its operands:
 *   0 accept          a server transport
 *   1 read    tx, B   bytes arrive on transport tx
 *   2 writable tx     the transport drained
 *   3 closed  tx      EOF or error
 *   4 cap     n       ops->write takes at most n*64 bytes per call (0:
 *                     blocked until writable)
 *   5 timer   n       the clock moves n ms; the timer fires if due
 *   6 call    flags   a channel call (connecting when needed); flags bit0
 *                     sends a message and half-closes, bit1 cancels an open
 *                     call, bit2 closes the channel
 *   7 connected tx    the channel's pending transport connected
 *   8 shutdown        the server's graceful shutdown
 *   9 pair            a channel transport wired to a new server transport:
 *                     what one writes the other reads (delivered after
 *                     every op, within the write cap)
 * fuzz_net_tls is the same harness built with -DFZ_NET_TLS: the server
 * and the channel use OpenSSL sessions (certificates made at build time
 * by tests/tls/make_certs.sh), so paired transports run real handshakes
 * and raw bytes meet a TLS server.
 * B is a length byte (255: two more length bytes) and the bytes. After
 * every op the loop is serviced. A harness finding aborts: a write on a
 * closed transport, a transport closed twice, a call event after its
 * CLOSE, calls or transports left after sgrpc_net_loop_del.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/net_adapter.h>
#ifdef FZ_NET_TLS
#include <sgrpc/tls_openssl.h>
#endif

#define FZ_MS 1000000LL
#define FZ_TX 6

static void fz_fail(const char *what) {
  fprintf(stderr, "fuzz harness: %s\n", what);
  abort();
}

typedef struct fz_tx {
  sgrpc_net_conn *c;
  int used, open, connecting, client;
  int want_write;
  struct fz_tx *peer; /* paired: its reads are our writes */
  uint8_t *buf;       /* written, not yet delivered to peer */
  size_t len;
} fz_tx;

#define FZ_PAIR_BUF (256 * 1024)

typedef struct fz_state {
  fz_tx tx[FZ_TX];
  sgrpc_net_loop *loop;
  sgrpc_net_server *server;
  sgrpc_net_channel *channel;
  sgrpc_call *ccall; /* the channel's open call, if any */
  int64_t now, timer_at;
  size_t cap;
  int open_tx, client_calls;
  unsigned sink;
} fz_state;

static fz_state S;

static fz_tx *fz_new_tx(void) {
  int i;
  for (i = 0; i < FZ_TX; i++)
    if (!S.tx[i].used) {
      memset(&S.tx[i], 0, sizeof(S.tx[i]));
      S.tx[i].used = 1;
      S.tx[i].open = 1;
      S.open_tx++;
      return &S.tx[i];
    }
  return NULL;
}

static sgrpc_ssize op_write(void *p, const uint8_t *data, size_t len) {
  fz_tx *t = p;
  size_t n = len < S.cap ? len : S.cap, i;
  if (!t->open) fz_fail("write on a closed transport");
  if (t->peer) {
    if (n > FZ_PAIR_BUF - t->len) n = FZ_PAIR_BUF - t->len;
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    t->want_write = n < len;
    return (sgrpc_ssize)n;
  }
  for (i = 0; i < n; i++) S.sink += data[i];
  /* SGRPC_FUZZ_NET_DUMP=FILE keeps what server transports wrote: the
   * corpus generator uses it to make a channel's input from a server's
   * answer */
  if (!t->client && getenv("SGRPC_FUZZ_NET_DUMP") && n > 0) {
    FILE *f = fopen(getenv("SGRPC_FUZZ_NET_DUMP"), "ab");
    if (!f || fwrite(data, 1, n, f) != n) fz_fail("dump");
    fclose(f);
  }
  t->want_write = n < len;
  return (sgrpc_ssize)n;
}

static void op_close(void *p) {
  fz_tx *t = p;
  if (!t->open) fz_fail("transport closed twice");
  /* the peer sees EOF at the next delivery */
  if (t->peer) t->peer->peer = NULL;
  t->peer = NULL;
  free(t->buf);
  t->buf = NULL;
  t->len = 0;
  t->open = 0;
  t->used = 0;
  t->c = NULL;
  S.open_tx--;
}

static void op_timer_arm(void *ud, int64_t when) {
  (void)ud;
  S.timer_at = when;
}

static int op_connect(void *ud, sgrpc_net_conn *c, const sgrpc_net_address *addr) {
  fz_tx *t = fz_new_tx();
  (void)ud;
  (void)addr;
  if (!t) return -1;
  t->c = c;
  t->connecting = 1;
  t->client = 1;
  sgrpc_net_conn_set_transport(c, t);
  return 0;
}

/* the echo server: every message back, OK at half-close */
static void on_server_event(sgrpc_net_conn *c, const sgrpc_event *ev, void *ud, int64_t now) {
  sgrpc_status ok;
  (void)c;
  (void)ud;
  (void)now;
  memset(&ok, 0, sizeof(ok));
  switch (ev->type) {
  case SGRPC_EV_CALL_NEW:
    S.sink += (unsigned)ev->u.call_new.path_len;
    break;
  case SGRPC_EV_MESSAGE:
    (void)sgrpc_call_send(ev->call, ev->u.message.data, ev->u.message.len, 0);
    break;
  case SGRPC_EV_HALF_CLOSE:
    (void)sgrpc_call_send_status(ev->call, &ok);
    break;
  default:
    break;
  }
}

static void on_client_event(const sgrpc_event *ev, void *ud, int64_t now) {
  size_t i;
  (void)ud;
  (void)now;
  if (ev->call != S.ccall && ev->call) fz_fail("event for a call not open");
  if (ev->type == SGRPC_EV_MESSAGE)
    for (i = 0; i < ev->u.message.len; i++) S.sink += ev->u.message.data[i];
  if (ev->type == SGRPC_EV_CLOSE) {
    if (!ev->u.close.status.message) fz_fail("NULL status message");
    /* SGRPC_FUZZ_TRACE=1 shows what a seed reaches */
    if (getenv("SGRPC_FUZZ_TRACE"))
      fprintf(stderr, "channel call: status %d \"%s\"\n", ev->u.close.status.code,
              ev->u.close.status.message);
    S.ccall = NULL;
    S.client_calls--;
  }
}

static int fz_byte(const uint8_t **p, size_t *n) {
  int b;
  if (*n == 0) return -1;
  b = **p;
  (*p)++;
  (*n)--;
  return b;
}

static fz_tx *fz_pick(const uint8_t **p, size_t *n) {
  int b = fz_byte(p, n);
  fz_tx *t;
  if (b < 0) return NULL;
  t = &S.tx[b % FZ_TX];
  return t->used && t->open && t->c ? t : NULL;
}

/* A channel call, its connect answered by a new server transport wired
 * to the channel's. */
static void fz_call(int flags);

static void fz_pair(void) {
  fz_tx *ct, *st;
  sgrpc_net_conn *sc = NULL;
  int i;
  fz_call(1);
  ct = NULL;
  for (i = 0; i < FZ_TX; i++)
    if (S.tx[i].used && S.tx[i].open && S.tx[i].connecting && !S.tx[i].peer) ct = &S.tx[i];
  if (!ct || (st = fz_new_tx()) == NULL) return;
  /* wired before accept: the server's first bytes (SETTINGS, or the TLS
   * session's) may be written from inside it */
  st->buf = malloc(FZ_PAIR_BUF);
  if (!ct->buf) ct->buf = malloc(FZ_PAIR_BUF);
  if (!st->buf || !ct->buf) fz_fail("oom");
  st->peer = ct;
  ct->peer = st;
  if (sgrpc_net_server_accept(S.server, st, "fuzz-pair:", S.now, &sc) != 0) {
    /* refused: the transport stays ours, the channel's sees EOF */
    ct->peer = NULL;
    free(st->buf);
    memset(st, 0, sizeof(*st));
    S.open_tx--;
    return;
  }
  st->c = sc;
  ct->connecting = 0;
  sgrpc_net_conn_connected(ct->c, S.now);
}

/* Moves what paired transports wrote to their peers (each within the
 * write cap per round), and EOF to a transport whose peer closed. */
static void fz_deliver(void) {
  int round, i, moved = 1;
  for (round = 0; round < 64 && moved; round++) {
    moved = 0;
    for (i = 0; i < FZ_TX; i++) {
      fz_tx *t = &S.tx[i];
      size_t n;
      if (!t->used || !t->open || !t->buf) continue;
      if (!t->peer) {
        /* the peer closed: EOF here, once */
        free(t->buf);
        t->buf = NULL;
        t->len = 0;
        if (t->c) sgrpc_net_conn_closed(t->c, S.now);
        moved = 1;
        continue;
      }
      if (t->len == 0 || !t->peer->c) continue;
      n = t->len < S.cap ? t->len : S.cap;
      if (n == 0) continue;
      sgrpc_net_conn_read(t->peer->c, t->buf, n, S.now);
      if (!t->open || !t->buf) {
        moved = 1;
        continue;
      }
      memmove(t->buf, t->buf + n, t->len - n);
      t->len -= n;
      moved = 1;
      if (t->want_write && t->c) {
        t->want_write = 0;
        sgrpc_net_conn_writable(t->c, S.now);
      }
    }
    sgrpc_net_loop_service(S.loop, S.now);
  }
}

static void fz_call(int flags) {
  sgrpc_call_opts o;
  if ((flags & 2) && S.ccall) (void)sgrpc_call_cancel(S.ccall);
  if (flags & 4) {
    sgrpc_net_channel_close(S.channel, S.now);
    return;
  }
  if (S.ccall) return;
  memset(&o, 0, sizeof(o));
  o.path = "/fz.Echo/Call";
  o.on_event = on_client_event;
  if (sgrpc_net_channel_call(S.channel, &o, S.now, &S.ccall) != 0) {
    S.ccall = NULL;
    return;
  }
  S.client_calls++;
  if (flags & 1)
    (void)sgrpc_call_send(S.ccall, (const uint8_t *)"ping", 4, SGRPC_SEND_END);
}

#ifdef FZ_NET_TLS
static sgrpc_tls_openssl_ctx *fz_srv_ctx, *fz_cli_ctx;

/* made once: loading PEM files each run would dominate */
static void fz_tls_init(void) {
  sgrpc_tls_openssl_options o;
  char err[256];
  if (fz_srv_ctx) return;
  sgrpc_tls_openssl_options_default(&o);
  o.is_server = 1;
  o.cert_file = FZ_TLS_DIR "/server.pem";
  o.key_file = FZ_TLS_DIR "/server.key";
  if (sgrpc_tls_openssl_ctx_new(&fz_srv_ctx, &o, err, sizeof(err)) != 0) fz_fail(err);
  sgrpc_tls_openssl_options_default(&o);
  o.ca_file = FZ_TLS_DIR "/ca.pem";
  o.server_name = "localhost";
  if (sgrpc_tls_openssl_ctx_new(&fz_cli_ctx, &o, err, sizeof(err)) != 0) fz_fail(err);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_net_ops ops;
  sgrpc_net_server_opts so;
  sgrpc_net_channel_opts co;
  int op, steps = 0;
  memset(&S, 0, sizeof(S));
  S.now = 1000 * FZ_MS;
  S.timer_at = SGRPC_NEVER;
  S.cap = 1 << 20;
  memset(&ops, 0, sizeof(ops));
  ops.connect = op_connect;
  ops.write = op_write;
  ops.close = op_close;
  ops.timer_arm = op_timer_arm;
  if (sgrpc_net_loop_new(&S.loop, &ops, NULL, NULL) != 0) fz_fail("loop_new");
  memset(&so, 0, sizeof(so));
  so.on_event = on_server_event;
  so.drain_timeout_ns = 50 * FZ_MS;
#ifdef FZ_NET_TLS
  fz_tls_init();
  so.make_tls = sgrpc_tls_openssl_factory;
  so.tls_user_data = fz_srv_ctx;
#endif
  if (sgrpc_net_server_new(&S.server, S.loop, &so) != 0) fz_fail("server_new");
  memset(&co, 0, sizeof(co));
  co.target = "127.0.0.1:1"; /* op_connect ignores it */
#ifdef FZ_NET_TLS
  co.make_tls = sgrpc_tls_openssl_factory;
  co.tls_user_data = fz_cli_ctx;
#endif
  if (sgrpc_net_channel_new(&S.channel, S.loop, &co) != 0) fz_fail("channel_new");

  while ((op = fz_byte(&data, &size)) >= 0 && steps++ < 512) {
    fz_tx *t;
    switch (op % 10) {
    case 0:
      if ((t = fz_new_tx()) != NULL) {
        sgrpc_net_conn *c = NULL;
        if (sgrpc_net_server_accept(S.server, t, "fuzz:", S.now, &c) == 0) {
          t->c = c;
        } else {
          /* refused: the transport stays ours */
          t->used = 0;
          t->open = 0;
          S.open_tx--;
        }
      }
      break;
    case 1: {
      int b = fz_byte(&data, &size);
      size_t len;
      t = fz_pick(&data, &size);
      if (b < 0) break;
      len = (size_t)b;
      if (b == 255) {
        int hi = fz_byte(&data, &size), lo = fz_byte(&data, &size);
        len = (size_t)(hi < 0 ? 0 : hi) << 8 | (size_t)(lo < 0 ? 0 : lo);
      }
      if (len > size) len = size;
      if (t && !t->connecting) sgrpc_net_conn_read(t->c, data, len, S.now);
      data += len;
      size -= len;
      break;
    }
    case 2:
      if ((t = fz_pick(&data, &size)) != NULL && !t->connecting)
        sgrpc_net_conn_writable(t->c, S.now);
      break;
    case 3:
      if ((t = fz_pick(&data, &size)) != NULL) sgrpc_net_conn_closed(t->c, S.now);
      break;
    case 4: {
      int b = fz_byte(&data, &size);
      S.cap = (size_t)(b < 0 ? 0 : b) * 64;
      break;
    }
    case 5: {
      int b = fz_byte(&data, &size);
      S.now += (int64_t)(b < 0 ? 1 : b) * FZ_MS;
      if (S.timer_at != SGRPC_NEVER && S.now >= S.timer_at) sgrpc_net_loop_timer(S.loop, S.now);
      break;
    }
    case 6:
      fz_call(fz_byte(&data, &size));
      break;
    case 7:
      if ((t = fz_pick(&data, &size)) != NULL && t->connecting) {
        t->connecting = 0;
        sgrpc_net_conn_connected(t->c, S.now);
      }
      break;
    case 8:
      sgrpc_net_server_shutdown(S.server, S.now);
      break;
    default:
      fz_pair();
      break;
    }
    sgrpc_net_loop_service(S.loop, S.now);
    fz_deliver();
  }
  sgrpc_net_loop_del(S.loop);
  if (S.open_tx != 0) fz_fail("a transport left open after loop_del");
  if (S.client_calls != 0) fz_fail("a channel call without CLOSE after loop_del");
  return 0;
}
