/*
 * fuzz_tls: the OpenSSL TLS filter (adapters/tls, sgrpc_tls_openssl) in
 * memory: two sessions, a client and a server, made from contexts with
 * throwaway certificates (tests/tls/make_certs.sh, run at build time into
 * FZ_TLS_DIR). Byte 0 picks the mode:
 *   0  the server session is fed the fuzz bytes as a client's ciphertext
 *   1  the client session sends its ClientHello and is fed the fuzz bytes
 *      as the server's answer
 *   2  both sessions finish a real handshake, then the script runs:
 * The rest is a script of ops (one byte and operands), on the session
 * under attack (modes 0, 1) or the established pair (mode 2):
 *   0 feed B       ciphertext into the session (mode 2: the server)
 *   1 flush        drain its output (mode 2: deliver both ways)
 *   2 read         take its plaintext
 *   3 close        queue close_notify
 *   4 eof          the transport ended
 *   5 write B      plaintext into the session (mode 2: client -> server)
 *   6 swrite B     mode 2: plaintext server -> client
 * B is a length byte (255: two more length bytes) and the bytes. A
 * harness finding aborts: feed taking more than given, output or
 * plaintext counts beyond what was asked, consume refusing a peeked count.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/tls_openssl.h>

static void fz_fail(const char *what) {
  fprintf(stderr, "fuzz harness: %s\n", what);
  abort();
}

static sgrpc_tls_openssl_ctx *fz_srv_ctx, *fz_cli_ctx;

/* Contexts are made once: loading PEM files each run would dominate. */
static void fz_ctx_init(void) {
  sgrpc_tls_openssl_options o;
  char err[256];
  if (fz_srv_ctx) return;
  sgrpc_tls_openssl_options_default(&o);
  o.is_server = 1;
  o.cert_file = FZ_TLS_DIR "/server.pem";
  o.key_file = FZ_TLS_DIR "/server.key";
  o.ca_file = FZ_TLS_DIR "/ca.pem";
  o.client_cert = SGRPC_TLS_CLIENT_CERT_OPTIONAL;
  if (sgrpc_tls_openssl_ctx_new(&fz_srv_ctx, &o, err, sizeof(err)) != 0) {
    fprintf(stderr, "fuzz_tls: server context: %s\n", err);
    abort();
  }
  sgrpc_tls_openssl_options_default(&o);
  o.ca_file = FZ_TLS_DIR "/ca.pem";
  o.cert_file = FZ_TLS_DIR "/client.pem";
  o.key_file = FZ_TLS_DIR "/client.key";
  o.server_name = "localhost";
  if (sgrpc_tls_openssl_ctx_new(&fz_cli_ctx, &o, err, sizeof(err)) != 0) {
    fprintf(stderr, "fuzz_tls: client context: %s\n", err);
    abort();
  }
}

static unsigned fz_sink;

/* Drains tls's output; to (may be NULL) is fed what it takes. Returns the
 * number of bytes moved. */
static size_t fz_flush(sgrpc_tls *tls, sgrpc_tls *to) {
  size_t total = 0;
  int guard;
  for (guard = 0; guard < 1000; guard++) {
    const uint8_t *d;
    sgrpc_ssize n = sgrpc_tls_out_peek(tls, &d), took;
    if (n <= 0) break;
    fz_sink += d[0] + d[n - 1];
    took = n;
    if (to) {
      took = sgrpc_tls_feed(to, d, (size_t)n);
      if (took > n) fz_fail("feed took more than given");
      if (took <= 0) took = n; /* the peer failed or is full: drop, as a socket would */
    }
    if (sgrpc_tls_out_consume(tls, (size_t)took) != 0) fz_fail("out_consume refused a peeked count");
    total += (size_t)took;
  }
  return total;
}

static void fz_read(sgrpc_tls *tls) {
  int guard;
  for (guard = 0; guard < 1000; guard++) {
    const uint8_t *d;
    sgrpc_ssize n = sgrpc_tls_plain_peek(tls, &d);
    if (n <= 0) break;
    fz_sink += d[0] + d[n - 1];
    if (sgrpc_tls_plain_consume(tls, (size_t)n) != 0) fz_fail("plain_consume refused a peeked count");
  }
}

/* Feeds all of data, taking plaintext whenever the input buffer fills. */
static void fz_feed(sgrpc_tls *tls, const uint8_t *p, size_t n) {
  int guard = 0;
  while (n > 0 && guard++ < 1000) {
    sgrpc_ssize took = sgrpc_tls_feed(tls, p, n);
    if (took < 0) return;
    if ((size_t)took > n) fz_fail("feed took more than given");
    p += took;
    n -= (size_t)took;
    if (took == 0) {
      fz_read(tls);
      fz_flush(tls, NULL);
      if (sgrpc_tls_feed(tls, p, 0) < 0) return;
    }
  }
}

static void fz_write(sgrpc_tls *tls, const uint8_t *p, size_t n, sgrpc_tls *to) {
  int guard = 0;
  while (n > 0 && guard++ < 1000) {
    sgrpc_ssize took = sgrpc_tls_write(tls, p, n);
    if (took <= 0) return;
    if ((size_t)took > n) fz_fail("write took more than given");
    p += took;
    n -= (size_t)took;
    fz_flush(tls, to);
    if (to) fz_read(to);
  }
}

typedef struct fz_script {
  const uint8_t *p;
  size_t len, off;
} fz_script;

static int fz_byte(fz_script *s) { return s->off < s->len ? s->p[s->off++] : -1; }

static void fz_bytes(fz_script *s, const uint8_t **p, size_t *n) {
  int b = fz_byte(s);
  size_t len = b < 0 ? 0 : (size_t)b;
  if (b == 255) {
    int hi = fz_byte(s), lo = fz_byte(s);
    len = (size_t)(hi < 0 ? 0 : hi) << 8 | (size_t)(lo < 0 ? 0 : lo);
  }
  if (len > s->len - s->off) len = s->len - s->off;
  *p = s->p + s->off;
  *n = len;
  s->off += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_tls *srv = NULL, *cli = NULL, *target;
  fz_script s = {data, size, 0};
  int mode = fz_byte(&s), op, steps = 0, i;
  if (mode < 0) return 0;
  mode %= 3;
  fz_ctx_init();
  if (mode != 1 && sgrpc_tls_openssl_new(&srv, fz_srv_ctx, NULL) != 0) fz_fail("server session");
  if (mode != 0 && sgrpc_tls_openssl_new(&cli, fz_cli_ctx, NULL) != 0) fz_fail("client session");
  target = mode == 1 ? cli : srv;
  if (mode == 1) fz_flush(cli, NULL); /* the ClientHello went out */
  if (mode == 2) {
    for (i = 0; i < 20 && !(sgrpc_tls_state(cli) & sgrpc_tls_state(srv) & SGRPC_TLS_HANDSHAKE_DONE);
         i++)
      if (fz_flush(cli, srv) + fz_flush(srv, cli) == 0) break;
    if (!(sgrpc_tls_state(cli) & SGRPC_TLS_HANDSHAKE_DONE) ||
        !(sgrpc_tls_state(srv) & SGRPC_TLS_HANDSHAKE_DONE))
      fz_fail("the in-memory handshake did not finish");
  }
  while ((op = fz_byte(&s)) >= 0 && steps++ < 256) {
    const uint8_t *p;
    size_t n;
    switch (op % 7) {
    case 0:
      fz_bytes(&s, &p, &n);
      fz_feed(target, p, n);
      break;
    case 1:
      if (mode == 2) {
        fz_flush(cli, srv);
        fz_flush(srv, cli);
      } else {
        fz_flush(target, NULL);
      }
      break;
    case 2:
      fz_read(target);
      if (mode == 2) fz_read(cli);
      break;
    case 3:
      (void)sgrpc_tls_close(target);
      break;
    case 4:
      (void)sgrpc_tls_transport_closed(target);
      break;
    case 5:
      fz_bytes(&s, &p, &n);
      fz_write(mode == 2 ? cli : target, p, n, mode == 2 ? srv : NULL);
      break;
    default:
      fz_bytes(&s, &p, &n);
      if (mode == 2) fz_write(srv, p, n, cli);
      break;
    }
  }
  if (sgrpc_tls_state(target) & SGRPC_TLS_HANDSHAKE_DONE) {
    sgrpc_tls_peer peer;
    if (sgrpc_tls_peer_cert(target, &peer) == 0) fz_sink += (unsigned)peer.der_len;
  }
  (void)sgrpc_tls_error_string(target);
  sgrpc_tls_del(srv);
  sgrpc_tls_del(cli);
  return 0;
}
