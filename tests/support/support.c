#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t pair_rand(pair *p) {
  uint64_t x = p->rng ? p->rng : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  p->rng = x;
  return (uint32_t)(x >> 16);
}

int pair_init(pair *p, const sgrpc_settings *cs, const sgrpc_settings *ss,
              const sgrpc_mem *mem) {
  int rv;
  memset(p, 0, sizeof(*p));
  p->now = 1000000000;
  rv = sgrpc_conn_client_new(&p->cli, cs, mem, p->now);
  if (rv) return rv;
  rv = sgrpc_conn_server_new(&p->srv, ss, mem, p->now);
  if (rv) {
    sgrpc_conn_del(p->cli);
    p->cli = NULL;
    return rv;
  }
  return 0;
}

void pair_free(pair *p) {
  sgrpc_conn_del(p->cli);
  sgrpc_conn_del(p->srv);
  free(p->tmp);
  p->cli = p->srv = NULL;
  p->tmp = NULL;
}

int pair_drain(pair *p, sgrpc_conn *conn) {
  sgrpc_event ev;
  int n = 0, rv;
  while ((rv = sgrpc_conn_next_event(conn, &ev)) == 1) {
    n++;
    if (p->on_event) p->on_event(p, conn, &ev, p->ud);
  }
  return n;
}

size_t pair_pump(pair *p, sgrpc_conn *from, sgrpc_conn *to) {
  const uint8_t *data;
  ssize_t n = sgrpc_conn_out_peek(from, &data);
  size_t off = 0;
  if (n <= 0) {
    /* a peek with nothing to send can still end the connection */
    pair_drain(p, from);
    return 0;
  }
  /* Copy: event handlers may call into `from`, which ends the borrow. */
  if ((size_t)n > p->tmp_cap) {
    p->tmp = realloc(p->tmp, (size_t)n);
    assert_non_null(p->tmp);
    p->tmp_cap = (size_t)n;
  }
  memcpy(p->tmp, data, (size_t)n);
  sgrpc_conn_out_consume(from, (size_t)n);
  /* producing output can close streams, which queues events */
  pair_drain(p, from);
  while (off < (size_t)n) {
    size_t piece = (size_t)n - off;
    ssize_t got;
    if (p->max_split) {
      size_t r = 1 + pair_rand(p) % p->max_split;
      if (r < piece) piece = r;
    }
    got = sgrpc_conn_recv(to, p->tmp + off, piece, p->now);
    if (got < 0) {
      if (to == p->cli) p->cli_err = (int)got;
      else p->srv_err = (int)got;
      pair_drain(p, to);
      return off;
    }
    off += (size_t)got;
    pair_drain(p, to);
  }
  return off;
}

size_t pair_run(pair *p, int max_rounds) {
  size_t total = 0;
  int i;
  pair_drain(p, p->cli);
  pair_drain(p, p->srv);
  for (i = 0; i < max_rounds; i++) {
    size_t moved = pair_pump(p, p->cli, p->srv);
    moved += pair_pump(p, p->srv, p->cli);
    total += moved;
    if (!moved && !sgrpc_conn_want_write(p->cli) && !sgrpc_conn_want_write(p->srv)) break;
  }
  return total;
}

void pair_advance(pair *p, int64_t ns) {
  p->now += ns;
  if (sgrpc_conn_next_expiry(p->cli) <= p->now) sgrpc_conn_handle_expiry(p->cli, p->now);
  if (sgrpc_conn_next_expiry(p->srv) <= p->now) sgrpc_conn_handle_expiry(p->srv, p->now);
  pair_drain(p, p->cli);
  pair_drain(p, p->srv);
}

/* failing allocator: a header before each block records its size */
typedef struct { size_t size; size_t pad; } fm_hdr;

static int fm_should_fail(failmem *fm) {
  fm->count++;
  if (fm->fail_at && fm->count == fm->fail_at) {
    fm->failures++;
    return 1;
  }
  return 0;
}
static void fm_grew(failmem *fm, size_t old, size_t now) {
  fm->bytes = fm->bytes - old + now;
  if (fm->bytes > fm->peak) fm->peak = fm->bytes;
}
static void *fm_malloc(size_t n, void *ud) {
  failmem *fm = ud;
  fm_hdr *h;
  if (fm_should_fail(fm)) return NULL;
  h = malloc(sizeof(*h) + n);
  if (!h) return NULL;
  h->size = n;
  fm->live++;
  fm_grew(fm, 0, n);
  return h + 1;
}
static void fm_free(void *ptr, void *ud) {
  failmem *fm = ud;
  if (!ptr) return;
  fm->live--;
  fm_grew(fm, ((fm_hdr *)ptr - 1)->size, 0);
  free((fm_hdr *)ptr - 1);
}
static void *fm_calloc(size_t a, size_t b, void *ud) {
  void *p;
  if (b && a > SIZE_MAX / b) return NULL;
  p = fm_malloc(a * b, ud);
  if (p) memset(p, 0, a * b);
  return p;
}
static void *fm_realloc(void *ptr, size_t n, void *ud) {
  failmem *fm = ud;
  fm_hdr *h;
  if (!ptr) return fm_malloc(n, ud);
  if (n == 0) {
    fm_free(ptr, ud);
    return NULL;
  }
  if (fm_should_fail(fm)) return NULL;
  h = realloc((fm_hdr *)ptr - 1, sizeof(*h) + n);
  if (!h) return NULL;
  fm_grew(fm, h->size, n);
  h->size = n;
  return h + 1;
}

void failmem_init(failmem *fm, sgrpc_mem *mem) {
  memset(fm, 0, sizeof(*fm));
  mem->user_data = fm;
  mem->malloc = fm_malloc;
  mem->free = fm_free;
  mem->calloc = fm_calloc;
  mem->realloc = fm_realloc;
}

uint8_t *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  buf = malloc((size_t)n);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}
