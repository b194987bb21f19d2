/*
 * Listening ports for tests: below 32768. The kernel's own choice (port
 * 0) comes from the ephemeral range that client sockets use too, so the
 * tests pick a port from 20000..31999 at random and try another when it
 * is taken.
 */
#ifndef SGRPC_TEST_LOW_PORT_H
#define SGRPC_TEST_LOW_PORT_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* A random port in 20000..31999 (seeded per process: parallel tests
 * differ). */
static inline int test_low_port(void) {
  static int seeded;
  if (!seeded) {
    srand((unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL));
    seeded = 1;
  }
  return 20000 + rand() % 12000;
}

/* Binds with LISTEN_EXPR (which reads lo.listen) on FMT (e.g.
 * "127.0.0.1:%d") at a low port, up to 50 ports; rv gets the last result,
 * buf (a char array that outlives the listener's use of it) the address. */
#define TEST_LISTEN_LOW(rv, buf, fmt, lo, LISTEN_EXPR)                                            \
  do {                                                                                            \
    int try_;                                                                                     \
    for (try_ = 0; try_ < 50; try_++) {                                                           \
      snprintf((buf), sizeof(buf), (fmt), test_low_port());                                       \
      (lo).listen = (buf);                                                                        \
      (rv) = (LISTEN_EXPR);                                                                       \
      if ((rv) == 0) break;                                                                       \
    }                                                                                             \
  } while (0)

#endif /* SGRPC_TEST_LOW_PORT_H */
