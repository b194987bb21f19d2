/*
 * A growable byte buffer with a read offset, allocated through the
 * connection's hooks. Used for send buffers, reassembly, output and
 * header storage.
 */
#ifndef SGRPC_BUF_H
#define SGRPC_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sgrpc/sgrpc.h>

/* A string literal and its length, counted by the compiler, as two
 * arguments: memcpy(d, SG_LIT("abc")). Only literals compile. */
#define SG_LIT(s) ("" s ""), (sizeof("" s "") - 1)
/* The length of a string literal. */
#define SG_LITLEN(s) (sizeof("" s "") - 1)

typedef struct sg_buf {
  uint8_t *p;
  size_t len; /* bytes written */
  size_t off; /* bytes already read (send/output buffers) */
  size_t cap;
} sg_buf;

static inline size_t sg_buf_avail(const sg_buf *b) { return b->len - b->off; }

/* Makes room for n more bytes after len. Returns 0 or -1 (no memory). */
static inline int sg_buf_reserve(const sgrpc_mem *m, sg_buf *b, size_t n) {
  size_t need, cap;
  uint8_t *np;
  if (b->cap - b->len >= n) return 0;
  if (b->off > 0 && b->off == b->len) { /* drained: restart at 0 */
    b->off = b->len = 0;
    if (b->cap >= n) return 0;
  }
  if (n > SIZE_MAX - b->len) return -1;
  need = b->len + n;
  cap = b->cap ? b->cap : 64;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  np = m->realloc(b->p, cap, m->user_data);
  if (!np) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static inline int sg_buf_append(const sgrpc_mem *m, sg_buf *b, const void *d,
                                size_t n) {
  if (sg_buf_reserve(m, b, n) != 0) return -1;
  if (n) memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static inline void sg_buf_free(const sgrpc_mem *m, sg_buf *b) {
  if (b->p) m->free(b->p, m->user_data);
  b->p = NULL;
  b->len = b->off = b->cap = 0;
}

/* Drops consumed bytes when worthwhile, keeping the rest at the front. */
static inline void sg_buf_compact(sg_buf *b) {
  if (b->off == 0) return;
  if (b->off == b->len) {
    b->off = b->len = 0;
  } else if (b->off > b->cap / 2) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
}

#endif
