/* A program outside the sgrpc tree, built against an installed sgrpc by
 * tests/package/run.sh. main.c checks the engine; each other file checks
 * one component and is compiled in only when that component is used.
 * Every check returns 0 on success and prints one line. */
#ifndef SGRPC_CONSUMER_H
#define SGRPC_CONSUMER_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Tests listen below 32768: the kernel's own choice (port 0) comes from
 * the ephemeral range client sockets use. Writes "127.0.0.1:<port>" for
 * a random port in 20000..31999 into buf; callers try again on failure. */
static inline const char *consumer_low_addr(char *buf, size_t cap) {
  static int seeded;
  if (!seeded) {
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    seeded = 1;
  }
  snprintf(buf, cap, "127.0.0.1:%d", 20000 + rand() % 12000);
  return buf;
}

/* loop_<adapter>.c: the adapter listens on 127.0.0.1, then is deleted */
int consumer_loop(void);
/* tls.c: an OpenSSL client session that writes its ClientHello */
int consumer_tls(void);
/* rpc.c: a router with one method, then freed */
int consumer_rpc(void);
/* config.c: a service config parsed from JSON, then freed */
int consumer_config(void);

#endif
