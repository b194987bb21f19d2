/*
 * <sgrpc/tls.h> session -> the core's byte filter (see
 * <sgrpc/adapter_tls.h>). No TLS library here.
 */
#include <sgrpc/adapter_tls.h>

#include <stdlib.h>
#include <string.h>

typedef struct ac_tls_filter {
  sgrpc_tls *tls;
  /* Ciphertext sgrpc_tls_feed did not take yet (its input limit was
   * reached while plaintext waited): the core's `in` must take all. */
  uint8_t *pend;
  size_t poff, plen, pcap;
} ac_tls_filter;

static int pend_append(ac_tls_filter *f, const uint8_t *d, size_t n) {
  if (f->poff > 0) { /* compact: keep what is left at the front */
    memmove(f->pend, f->pend + f->poff, f->plen - f->poff);
    f->plen -= f->poff;
    f->poff = 0;
  }
  if (f->plen + n > f->pcap) {
    size_t cap = f->pcap ? f->pcap : 16384;
    uint8_t *p;
    while (cap < f->plen + n) cap *= 2;
    p = realloc(f->pend, cap);
    if (!p) return SGRPC_ERR_NOMEM;
    f->pend = p;
    f->pcap = cap;
  }
  memcpy(f->pend + f->plen, d, n);
  f->plen += n;
  return 0;
}

static sgrpc_ssize tf_in(void *ctx, const uint8_t *data, size_t len, uint8_t *out, size_t cap) {
  ac_tls_filter *f = ctx;
  int guard;
  if (len) {
    if (f->poff == f->plen) {
      sgrpc_ssize r = sgrpc_tls_feed(f->tls, data, len);
      if (r < 0) return r;
      data += r;
      len -= (size_t)r;
    }
    if (len) {
      int rv = pend_append(f, data, len);
      if (rv < 0) return rv;
    }
  }
  /* Bounded: each round either returns or moves pending input. */
  for (guard = 0; guard < 1024; guard++) {
    sgrpc_ssize n = sgrpc_tls_plain_read(f->tls, out, cap), r;
    if (n != 0) return n; /* plaintext, or an error (SGRPC_ERR_TLS_CLOSED too) */
    if (f->poff == f->plen) return 0;
    r = sgrpc_tls_feed(f->tls, f->pend + f->poff, f->plen - f->poff);
    if (r < 0) return r;
    if (r == 0) return 0; /* nothing decryptable and input full: cannot happen */
    f->poff += (size_t)r;
  }
  return 0;
}

static sgrpc_ssize tf_out(void *ctx, const uint8_t *data, size_t len, size_t *consumed, uint8_t *out,
                      size_t cap) {
  ac_tls_filter *f = ctx;
  sgrpc_ssize n, w;
  *consumed = 0;
  n = sgrpc_tls_out_copy(f->tls, out, cap); /* handshake, alerts, earlier records */
  if (n != 0 || !len) return n;
  w = sgrpc_tls_write(f->tls, data, len); /* 0 until the handshake is done */
  if (w < 0) return w;
  *consumed = (size_t)w;
  return sgrpc_tls_out_copy(f->tls, out, cap);
}

static void tf_del(void *ctx) {
  ac_tls_filter *f = ctx;
  sgrpc_tls_del(f->tls);
  free(f->pend);
  free(f);
}

int sgrpc_ac_tls_filter(sgrpc_tls *tls, sgrpc_ac_filter *out) {
  ac_tls_filter *f;
  if (!tls || !out) {
    sgrpc_tls_del(tls);
    return SGRPC_ERR_INVALID_ARGUMENT;
  }
  f = calloc(1, sizeof(*f));
  if (!f) {
    sgrpc_tls_del(tls);
    return SGRPC_ERR_NOMEM;
  }
  f->tls = tls;
  memset(out, 0, sizeof(*out));
  out->ctx = f;
  out->in = tf_in;
  out->out = tf_out;
  out->del = tf_del;
  return 1;
}

sgrpc_tls *sgrpc_ac_conn_tls(const sgrpc_ac_conn *c) {
  const sgrpc_ac_filter *f = sgrpc_ac_conn_filter(c);
  /* Only our own filters carry a sgrpc_tls in ctx. */
  if (!f || f->in != tf_in) return NULL;
  return ((const ac_tls_filter *)f->ctx)->tls;
}

int sgrpc_ac_conn_peer_cert(const sgrpc_ac_conn *c, sgrpc_tls_peer *peer) {
  sgrpc_tls *tls = sgrpc_ac_conn_tls(c);
  if (!peer) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!tls) return SGRPC_ERR_INVALID_STATE;
  return sgrpc_tls_peer_cert(tls, peer);
}
