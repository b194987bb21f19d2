/*
 * Test support: an in-memory client<->server pair with a fake clock
 * (moves one engine's output into the other's input, optionally in random
 * splits), and a failing allocator.
 */
#ifndef SGRPC_TEST_SUPPORT_H
#define SGRPC_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sgrpc/sgrpc.h>

typedef struct pair pair;
/* Called for every event pulled from conn (p->cli or p->srv). */
typedef void (*pair_event_fn)(pair *p, sgrpc_conn *conn, const sgrpc_event *ev,
                              void *ud);

struct pair {
  sgrpc_conn *cli, *srv;
  int64_t now;          /* fake monotonic clock, ns */
  uint64_t rng;         /* xorshift state for splits */
  size_t max_split;     /* 0: whole chunks; else random pieces of 1..max_split */
  pair_event_fn on_event;
  void *ud;
  int cli_err, srv_err; /* last negative code seen from recv, 0 if none */
  uint8_t *tmp;
  size_t tmp_cap;
};

/* Creates both ends. Settings and mem may be NULL. Returns 0 or an error. */
int pair_init(pair *p, const sgrpc_settings *cs, const sgrpc_settings *ss,
              const sgrpc_mem *mem);
void pair_free(pair *p);
/* Moves output both ways and drains events until nothing moves or
 * max_rounds passes. Returns the number of bytes moved. */
size_t pair_run(pair *p, int max_rounds);
/* Moves the output of from into to once (one peek). Returns bytes moved. */
size_t pair_pump(pair *p, sgrpc_conn *from, sgrpc_conn *to);
/* Drains the events of conn through p->on_event. Returns the count. */
int pair_drain(pair *p, sgrpc_conn *conn);
/* Advances the fake clock and runs both engines' expiries. */
void pair_advance(pair *p, int64_t ns);
uint32_t pair_rand(pair *p);

/* A failing allocator: fails the nth allocation (1-based) counted from
 * fail_reset, or never when fail_at == 0. Tracks live allocations, and
 * the bytes they hold now (bytes) and at most so far (peak; reset it to
 * bytes to measure from a point on). */
typedef struct failmem {
  long count;
  long fail_at;
  long live;
  long failures;
  size_t bytes;
  size_t peak;
} failmem;
void failmem_init(failmem *fm, sgrpc_mem *mem);

/* Reads a whole non-empty file into a malloc'd buffer (the test fails when
 * it cannot); *len gets its size. */
uint8_t *test_read_file(const char *path, size_t *len);

#endif
