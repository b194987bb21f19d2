/* libsgrpc-tls-openssl: a client context and one session, which must have
 * a TLS handshake record (the ClientHello) to send before any input. */
#include <stdio.h>
#include <sgrpc/tls_openssl.h>
#include "consumer.h"

int consumer_tls(void) {
  sgrpc_tls_openssl_options o;
  sgrpc_tls_openssl_ctx *ctx;
  sgrpc_tls *tls;
  const uint8_t *out;
  char err[256];
  long n;
  sgrpc_tls_openssl_options_default(&o);
  if (sgrpc_tls_openssl_ctx_new(&ctx, &o, err, sizeof err) != 0) {
    fprintf(stderr, "tls: %s\n", err);
    return 1;
  }
  if (sgrpc_tls_openssl_new(&tls, ctx, "localhost") != 0) {
    sgrpc_tls_openssl_ctx_del(ctx);
    return 1;
  }
  n = (long)sgrpc_tls_out_peek(tls, &out);
  printf("tls: %ld bytes of ClientHello\n", n);
  int ok = n > 5 && out[0] == 0x16; /* TLS record type: handshake */
  sgrpc_tls_del(tls);
  sgrpc_tls_openssl_ctx_del(ctx);
  return ok ? 0 : 1;
}
