/*
 * Shared pieces of the fuzz targets and of the corpus generator.
 *
 * Input layout of fuzz_server and fuzz_client: byte 0 chooses how the rest
 * is cut into sgrpc_conn_recv chunks (0: one chunk; 1..127: random pieces
 * of 1..byte0 bytes; 128..255: random pieces of 1..(byte0-127)*64 bytes),
 * byte 1 seeds the generator that draws the pieces, the clock steps and
 * the harness's choices. The peer's bytes follow.
 *
 * A harness finding is reported with fz_fail (abort), so libFuzzer keeps
 * the input: an event after a call's CLOSE, a second CLOSE, a call left
 * without CLOSE after the transport closed, recv refusing input that the
 * harness has fully drained, or recv taking nothing while queueing nothing.
 */
#ifndef SGRPC_FUZZ_COMMON_H
#define SGRPC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/sgrpc.h>

#define FZ_MS 1000000LL
#define FZ_START (1000 * FZ_MS) /* the fake clock starts at 1 s */

static inline void fz_fail(const char *what) {
  fprintf(stderr, "fuzz harness: %s\n", what);
  abort();
}

/* xorshift64; never seeded with 0 */
static inline uint32_t fz_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return (uint32_t)(x >> 32);
}

typedef struct fz_in {
  const uint8_t *p;
  size_t len, off;
  size_t max_chunk; /* 0: whole */
  uint64_t rng;
} fz_in;

static inline void fz_in_init(fz_in *in, const uint8_t *data, size_t size) {
  uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
  size_t hdr = size < 2 ? size : 2;
  in->p = data + hdr;
  in->len = size - hdr;
  in->off = 0;
  in->max_chunk = b0 == 0 ? 0 : b0 < 128 ? b0 : (size_t)(b0 - 127) * 64;
  in->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)b1 << 32 | b0);
}

/* Next chunk of input; returns 0 when the input is used up. */
static inline int fz_in_next(fz_in *in, const uint8_t **p, size_t *n) {
  size_t left = in->len - in->off, take = left;
  if (left == 0) return 0;
  if (in->max_chunk) {
    size_t r = 1 + fz_rand(&in->rng) % in->max_chunk;
    if (r < take) take = r;
  }
  *p = in->p + in->off;
  *n = take;
  in->off += take;
  return 1;
}

/* Takes (and drops) every byte of output the connection has ready. */
static inline size_t fz_flush(sgrpc_conn *c) {
  size_t total = 0;
  int i;
  for (i = 0; i < 10000; i++) {
    const uint8_t *d;
    ssize_t n = sgrpc_conn_out_peek(c, &d);
    if (n <= 0) break;
    /* touch both ends of the borrowed range */
    if (d[0] == 0xff && d[n - 1] == 0xff) total++;
    if (sgrpc_conn_out_consume(c, (size_t)n) != 0) fz_fail("out_consume refused a peeked count");
    total += (size_t)n;
  }
  return total;
}

/* Reads every byte of borrowed data so ASan sees a bad pointer. */
static inline unsigned fz_touch(const void *p, size_t n) {
  const volatile uint8_t *b = p;
  unsigned s = 0;
  size_t i;
  for (i = 0; i < n; i++) s += b[i];
  return s;
}

static inline unsigned fz_touch_md(const sgrpc_md *md, size_t n) {
  unsigned s = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    s += fz_touch(md[i].key, md[i].key_len + 1);
    s += fz_touch(md[i].value, md[i].value_len);
  }
  return s;
}

/* SGRPC_FUZZ_TRACE=1 prints every event a harness pulls (for checking
 * what a seed reaches; off when fuzzing). */
static inline void fz_trace(const char *who, const sgrpc_event *ev) {
  static int on = -1;
  if (on < 0) on = getenv("SGRPC_FUZZ_TRACE") != NULL;
  if (!on) return;
  fprintf(stderr, "%s: event %d stream %d", who, (int)ev->type,
          ev->call ? (int)sgrpc_call_stream_id(ev->call) : 0);
  if (ev->type == SGRPC_EV_CLOSE)
    fprintf(stderr, " status %d \"%s\" reset %d", ev->u.close.status.code,
            ev->u.close.status.message, ev->u.close.reset);
  if (ev->type == SGRPC_EV_MESSAGE) fprintf(stderr, " len %zu", ev->u.message.len);
  if (ev->type == SGRPC_EV_CALL_NEW) fprintf(stderr, " path %s", ev->u.call_new.path);
  fputc('\n', stderr);
}

typedef int (*fz_drain_fn)(sgrpc_conn *c, void *ctx);

/* Feeds one chunk completely, draining events (with drain) and taking
 * output after every recv, as an adapter would. Returns 0, or the fatal
 * code that ended the connection. */
static inline int fz_feed(sgrpc_conn *c, const uint8_t *p, size_t n, int64_t now,
                          fz_drain_fn drain, void *ctx) {
  size_t guard = n + 64;
  while (n > 0 && guard-- > 0) {
    ssize_t r = sgrpc_conn_recv(c, p, n, now);
    int got;
    if (r == SGRPC_ERR_EVENTS_PENDING) fz_fail("recv: events pending after a full drain");
    if (r < 0) {
      drain(c, ctx);
      fz_flush(c);
      drain(c, ctx);
      return (int)r;
    }
    if ((size_t)r > n) fz_fail("recv consumed more than given");
    p += r;
    n -= (size_t)r;
    got = drain(c, ctx);
    fz_flush(c);
    got += drain(c, ctx);
    if (r == 0 && got == 0) fz_fail("recv took nothing and queued nothing");
  }
  if (n > 0) fz_fail("recv made no progress");
  return 0;
}

/* The server's first output: its SETTINGS (and connection WINDOW_UPDATE),
 * as a default sgrpc server (a real nghttp2 server session) writes them
 * before reading anything. Computed once; the client target and the
 * generator put it before every server byte stream. */
static inline const uint8_t *fz_server_prefix(size_t *len) {
  static uint8_t buf[256];
  static size_t n;
  if (!n) {
    sgrpc_conn *s;
    const uint8_t *d;
    ssize_t k;
    if (sgrpc_conn_server_new(&s, NULL, NULL, FZ_START) != 0) fz_fail("server_new");
    k = sgrpc_conn_out_peek(s, &d);
    if (k <= 0 || (size_t)k > sizeof(buf)) fz_fail("server prefix");
    memcpy(buf, d, (size_t)k);
    n = (size_t)k;
    sgrpc_conn_del(s);
  }
  *len = n;
  return buf;
}

/* Client settings of fuzz_client (small limits so they are reachable). */
static inline void fz_client_settings(sgrpc_settings *s) {
  sgrpc_settings_default(s);
  s->max_recv_message_size = 16 << 10;
  s->max_header_list_size = 4 << 10;
  s->max_queued_events = 8;
  s->max_send_buffer = 1024;
}

enum { FZ_CLIENT_CALLS = 3 };

/* The exchange fuzz_client starts before reading server bytes: a unary
 * call with a deadline and metadata (stream 1), a bidi call that has sent
 * two messages and stays open (stream 3), a server-streaming call with a
 * longer deadline (stream 5). calls[i] get user_data ud[i]. */
static inline int fz_client_setup(sgrpc_conn **pc, sgrpc_call **calls, void **ud) {
  static const uint8_t bin[] = {0, 1, 2, 0xfe, 0xff};
  sgrpc_md md[2] = {SGRPC_MD_STR("x-fz", "one"), {"x-fz-bin", 8, bin, sizeof(bin)}};
  sgrpc_settings s;
  sgrpc_call_opts o;
  sgrpc_conn *c;
  int rv;
  fz_client_settings(&s);
  rv = sgrpc_conn_client_new(&c, &s, NULL, FZ_START);
  if (rv) return rv;
  memset(&o, 0, sizeof(o));
  o.path = "/fz.S/Unary";
  o.authority = "fuzz.local";
  o.deadline = FZ_START + 1000 * FZ_MS;
  o.md = md;
  o.md_count = 2;
  o.user_data = ud[0];
  if ((rv = sgrpc_call_start(c, &o, FZ_START, &calls[0])) != 0) goto fail;
  if ((rv = sgrpc_call_send(calls[0], (const uint8_t *)"hello", 5, SGRPC_SEND_END)) != 0)
    goto fail;
  memset(&o, 0, sizeof(o));
  o.path = "/fz.S/Bidi";
  o.content_subtype = "proto";
  o.user_data = ud[1];
  if ((rv = sgrpc_call_start(c, &o, FZ_START, &calls[1])) != 0) goto fail;
  if ((rv = sgrpc_call_send(calls[1], (const uint8_t *)"a", 1, 0)) != 0) goto fail;
  if ((rv = sgrpc_call_send(calls[1], (const uint8_t *)"", 0, 0)) != 0) goto fail;
  memset(&o, 0, sizeof(o));
  o.path = "/fz.S/Stream";
  o.deadline = FZ_START + 10000 * FZ_MS;
  o.user_data = ud[2];
  if ((rv = sgrpc_call_start(c, &o, FZ_START, &calls[2])) != 0) goto fail;
  if ((rv = sgrpc_call_send(calls[2], (const uint8_t *)"req", 3, SGRPC_SEND_END)) != 0)
    goto fail;
  *pc = c;
  return 0;
fail:
  sgrpc_conn_del(c);
  return rv;
}

/* Server settings of fuzz_server. */
static inline void fz_server_settings(sgrpc_settings *s) {
  sgrpc_settings_default(s);
  s->max_recv_message_size = 16 << 10;
  s->max_header_list_size = 4 << 10;
  s->max_queued_events = 8;
  s->max_concurrent_streams = 32;
  s->max_send_buffer = 1024;
}

#endif
