/*
 * The TLS seam: argument checks and dispatch to a filter's vtable, error
 * strings, and the two helpers that move bytes between a filter and an
 * engine. Nothing here knows any TLS library.
 */
#include <sgrpc/tls.h>

#include <string.h>

/* The texts live in the engine's sgrpc_strerror, which covers every
 * range of the project. */
const char *sgrpc_tls_strerror(int code) { return sgrpc_strerror(code); }

int sgrpc_tls_is_tls_error(int code) {
  return code >= SGRPC_ERR_TLS_FIRST && code <= SGRPC_ERR_TLS_LAST;
}

void sgrpc_tls_del(sgrpc_tls *tls) {
  if (tls) tls->vt->del(tls);
}

sgrpc_ssize sgrpc_tls_feed(sgrpc_tls *tls, const uint8_t *data, size_t len) {
  if (!tls || (!data && len)) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->feed(tls, data, len);
}

sgrpc_ssize sgrpc_tls_plain_peek(sgrpc_tls *tls, const uint8_t **data) {
  if (!tls || !data) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->plain_peek(tls, data);
}

int sgrpc_tls_plain_consume(sgrpc_tls *tls, size_t n) {
  if (!tls) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->plain_consume(tls, n);
}

sgrpc_ssize sgrpc_tls_plain_read(sgrpc_tls *tls, uint8_t *buf, size_t cap) {
  const uint8_t *p;
  sgrpc_ssize n;
  if (!tls || (!buf && cap)) return SGRPC_ERR_INVALID_ARGUMENT;
  n = tls->vt->plain_peek(tls, &p);
  if (n <= 0) return n;
  if ((size_t)n > cap) n = (sgrpc_ssize)cap;
  if (n) memcpy(buf, p, (size_t)n);
  tls->vt->plain_consume(tls, (size_t)n);
  return n;
}

sgrpc_ssize sgrpc_tls_write(sgrpc_tls *tls, const uint8_t *data, size_t len) {
  if (!tls || (!data && len)) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->write(tls, data, len);
}

sgrpc_ssize sgrpc_tls_out_peek(sgrpc_tls *tls, const uint8_t **data) {
  if (!tls || !data) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->out_peek(tls, data);
}

int sgrpc_tls_out_consume(sgrpc_tls *tls, size_t n) {
  if (!tls) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->out_consume(tls, n);
}

sgrpc_ssize sgrpc_tls_out_copy(sgrpc_tls *tls, uint8_t *buf, size_t cap) {
  const uint8_t *p;
  sgrpc_ssize n;
  if (!tls || (!buf && cap)) return SGRPC_ERR_INVALID_ARGUMENT;
  n = tls->vt->out_peek(tls, &p);
  if (n <= 0) return n;
  if ((size_t)n > cap) n = (sgrpc_ssize)cap;
  if (n) memcpy(buf, p, (size_t)n);
  tls->vt->out_consume(tls, (size_t)n);
  return n;
}

int sgrpc_tls_want_read(sgrpc_tls *tls) { return tls ? tls->vt->want_read(tls) : 0; }

int sgrpc_tls_want_write(sgrpc_tls *tls) { return tls ? tls->vt->want_write(tls) : 0; }

int sgrpc_tls_state(sgrpc_tls *tls) { return tls ? tls->vt->state(tls) : SGRPC_TLS_FAILED; }

int sgrpc_tls_close(sgrpc_tls *tls) {
  if (!tls) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->close(tls);
}

int sgrpc_tls_transport_closed(sgrpc_tls *tls) {
  if (!tls) return SGRPC_ERR_INVALID_ARGUMENT;
  return tls->vt->transport_closed(tls);
}

int sgrpc_tls_peer_cert(sgrpc_tls *tls, sgrpc_tls_peer *peer) {
  if (!tls || !peer) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(peer, 0, sizeof(*peer));
  return tls->vt->peer_cert(tls, peer);
}

int sgrpc_tls_info_get(sgrpc_tls *tls, sgrpc_tls_info *info) {
  if (!tls || !info) return SGRPC_ERR_INVALID_ARGUMENT;
  memset(info, 0, sizeof(*info));
  return tls->vt->info(tls, info);
}

const char *sgrpc_tls_error_string(sgrpc_tls *tls) {
  const char *s;
  if (!tls) return "no TLS session";
  s = tls->vt->error_string(tls);
  return s ? s : "";
}

sgrpc_ssize sgrpc_tls_pump_out(sgrpc_tls *tls, sgrpc_conn *conn) {
  size_t total = 0;
  int rounds;
  if (!tls || !conn) return SGRPC_ERR_INVALID_ARGUMENT;
  /* Bounded: each round either moves bytes or stops; the engine prepares
   * at most out_chunk per peek, so a few hundred rounds is far more than
   * one output limit of the filter. */
  for (rounds = 0; rounds < 1024; rounds++) {
    const uint8_t *p;
    sgrpc_ssize n = sgrpc_conn_out_peek(conn, &p), w;
    if (n < 0) return total ? (sgrpc_ssize)total : n;
    if (n == 0) break;
    w = tls->vt->write(tls, p, (size_t)n);
    if (w < 0) return w;
    if (w == 0) break;
    sgrpc_conn_out_consume(conn, (size_t)w);
    total += (size_t)w;
    if (w < n) break;
  }
  return (sgrpc_ssize)total;
}

sgrpc_ssize sgrpc_tls_pump_in(sgrpc_tls *tls, sgrpc_conn *conn, int64_t now) {
  const uint8_t *p;
  sgrpc_ssize n, r;
  if (!tls || !conn) return SGRPC_ERR_INVALID_ARGUMENT;
  n = tls->vt->plain_peek(tls, &p);
  if (n <= 0) return n;
  r = sgrpc_conn_recv(conn, p, (size_t)n, now);
  if (r < 0) return r;
  /* Consuming does not move the bytes (plain_peek's contract), so events
   * that point into them stay valid until the next pump_in. */
  if (r > 0) tls->vt->plain_consume(tls, (size_t)r);
  return r;
}
