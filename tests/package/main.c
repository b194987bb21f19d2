/* The engine part of every consumer: a client connection must produce the
 * HTTP/2 preface and SETTINGS; then the components this consumer links. */
#include <stdio.h>
#include <sgrpc/sgrpc.h>
#include "consumer.h"

int main(void) {
  sgrpc_conn *c;
  const uint8_t *d;
  long n;
  if (sgrpc_conn_client_new(&c, NULL, NULL, 0) != 0) return 1;
  n = (long)sgrpc_conn_out_peek(c, &d); /* preface + SETTINGS */
  printf("sgrpc %s: %ld bytes of client preface\n", SGRPC_VERSION, n);
  sgrpc_conn_del(c);
  if (n <= 24) return 1;
#ifdef CONSUMER_LOOP
  if (consumer_loop() != 0) return 1;
#endif
#ifdef CONSUMER_TLS
  if (consumer_tls() != 0) return 1;
#endif
#ifdef CONSUMER_RPC
  if (consumer_rpc() != 0) return 1;
#endif
#ifdef CONSUMER_CONFIG
  if (consumer_config() != 0) return 1;
#endif
  return 0;
}
