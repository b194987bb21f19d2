/*
 * The <sgrpc/tls.h> filter over OpenSSL with two memory BIOs.
 *
 * Data paths:
 *   feed      -> BIO_write(rbio); the handshake advances at once
 *   plain_peek-> SSL_read(rbio -> pbuf), one record at a time, lazily, so
 *                undecrypted input waits in rbio (bounded by
 *                max_buffered_input) while the engine is busy
 *   write     -> SSL_write(-> wbio), bounded by max_buffered_output
 *   out_peek  -> BIO_read(wbio -> obuf) when obuf is empty
 * pbuf is refilled only when it is fully consumed and the next plain_peek
 * comes, which is what keeps engine events that point into it valid.
 */
#include <sgrpc/tls_openssl.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PBUF_SIZE 16384          /* the largest TLS plaintext record */
#define OBUF_SIZE (16384 + 1024) /* a full record and its overhead */
#define DEFAULT_BUFFERED (64 * 1024)
#define ALERT_NO_APPLICATION_PROTOCOL 120

/* ------------------------------------------------------------------ */
/* memory                                                              */
/* ------------------------------------------------------------------ */

static void *libc_malloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void libc_free(void *p, void *ud) { (void)ud; free(p); }
static void *libc_calloc(size_t a, size_t b, void *ud) { (void)ud; return calloc(a, b); }
static void *libc_realloc(void *p, size_t n, void *ud) { (void)ud; return realloc(p, n); }

static const sgrpc_mem libc_mem = {NULL, libc_malloc, libc_free, libc_calloc, libc_realloc};

static void *mem_alloc(const sgrpc_mem *m, size_t n) { return m->malloc(n ? n : 1, m->user_data); }
static void *mem_zalloc(const sgrpc_mem *m, size_t n) { return m->calloc(1, n ? n : 1, m->user_data); }
static void mem_free(const sgrpc_mem *m, void *p) { if (p) m->free(p, m->user_data); }

static char *mem_strdup(const sgrpc_mem *m, const char *s, size_t len) {
  char *d = mem_alloc(m, len + 1);
  if (!d) return NULL;
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

/* ------------------------------------------------------------------ */
/* types                                                               */
/* ------------------------------------------------------------------ */

struct sgrpc_tls_openssl_ctx {
  SSL_CTX *ssl_ctx;
  sgrpc_mem mem;
  int refs; /* the caller's reference plus one per session */
  int is_server;
  int skip_hostname_check;
  char *server_name;    /* client default name, or NULL */
  char *override_name;  /* target_name_override, or NULL */
  uint8_t alpn_wire[256]; /* length-prefixed, as ALPN sends it */
  size_t alpn_wire_len;
  size_t max_in, max_out;
};

typedef struct ossl_tls {
  sgrpc_tls base;
  sgrpc_tls_openssl_ctx *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int done;         /* handshake finished and checked */
  int failed;       /* sticky SGRPC_ERR_TLS_* or 0 */
  int sent_close, recv_close, transport_gone;
  int alpn_failed;  /* set by the server's ClientHello/ALPN callbacks */
  int alert_recv;   /* last fatal alert from the peer + 1, or 0 */
  uint8_t *pbuf;
  size_t poff, plen;
  uint8_t *obuf;
  size_t ooff, olen;
  char *sni;        /* client: the SNI name sent */
  char alpn[64];
  char err[320];
  /* peer certificate, filled on first use */
  int peer_loaded;
  uint8_t *der;
  size_t der_len;
  char *subject, *issuer;
  sgrpc_tls_san *sans;
  size_t san_count;
  int verified;
} ossl_tls;

static const sgrpc_tls_vtable ossl_vtable;

/* ------------------------------------------------------------------ */
/* errors                                                              */
/* ------------------------------------------------------------------ */

/* Appends OpenSSL's error queue (first entries) to buf, then clears it. */
static void errq_append(char *buf, size_t cap) {
  unsigned long e;
  int k = 0;
  while ((e = ERR_get_error()) != 0) {
    char one[200];
    size_t used = strlen(buf);
    if (k++ >= 2 || used + 4 >= cap) continue; /* keep draining */
    ERR_error_string_n(e, one, sizeof(one));
    snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", one);
  }
}

static int is_record_error(int reason) {
  switch (reason) {
  case SSL_R_WRONG_VERSION_NUMBER:
  case SSL_R_UNKNOWN_PROTOCOL:
  case SSL_R_HTTP_REQUEST:
  case SSL_R_PACKET_LENGTH_TOO_LONG:
  case SSL_R_RECORD_LENGTH_MISMATCH:
  case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
  case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
  case SSL_R_UNEXPECTED_RECORD:
  case SSL_R_UNEXPECTED_MESSAGE:
  case SSL_R_LENGTH_MISMATCH:
  case SSL_R_LENGTH_TOO_SHORT:
  case SSL_R_BAD_LENGTH:
  case SSL_R_BAD_PACKET_LENGTH:
#ifdef SSL_R_BAD_PACKET
  case SSL_R_BAD_PACKET:
#endif
#ifdef SSL_R_BAD_RECORD_TYPE
  case SSL_R_BAD_RECORD_TYPE:
#endif
#ifdef SSL_R_RECORD_TOO_SMALL
  case SSL_R_RECORD_TOO_SMALL:
#endif
    return 1;
  default:
    return 0;
  }
}

/* Records a sticky failure with a message; returns the code. */
static int set_failed(ossl_tls *t, int code, const char *msg) {
  if (!t->failed) {
    t->failed = code;
    snprintf(t->err, sizeof(t->err), "%s", msg);
    errq_append(t->err, sizeof(t->err));
  }
  ERR_clear_error();
  return t->failed;
}

/* Turns an SSL_get_error result into a sticky SGRPC_ERR_TLS_* code with
 * the most precise explanation available. */
static int fail_from_ssl(ossl_tls *t, int ssl_err) {
  unsigned long e = ERR_peek_error();
  int reason = ERR_GET_REASON(e);
  long vr = SSL_get_verify_result(t->ssl);
  char msg[160];
  if (t->failed) return t->failed;
  if (t->alpn_failed) {
    return set_failed(t, SGRPC_ERR_TLS_ALPN,
                      "client did not offer ALPN h2 (gRPC requires HTTP/2 over TLS)");
  }
  if (t->alert_recv) {
    int desc = t->alert_recv - 1;
    snprintf(msg, sizeof(msg), "peer sent alert: %s",
             SSL_alert_desc_string_long(desc));
    return set_failed(t, desc == ALERT_NO_APPLICATION_PROTOCOL ? SGRPC_ERR_TLS_ALPN
                                                               : SGRPC_ERR_TLS_PEER_ALERT, msg);
  }
  if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
    return set_failed(t, SGRPC_ERR_TLS_NO_PEER_CERT,
                      "client sent no certificate but one is required");
  if (vr != X509_V_OK) {
    int host = vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH;
    snprintf(msg, sizeof(msg), "certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
    return set_failed(t, host ? SGRPC_ERR_TLS_HOSTNAME : SGRPC_ERR_TLS_VERIFY, msg);
  }
  if (ssl_err == SSL_ERROR_SSL && is_record_error(reason))
    return set_failed(t, SGRPC_ERR_TLS_PROTOCOL, "malformed TLS data");
  if (ssl_err == SSL_ERROR_SSL)
    return set_failed(t, t->done ? SGRPC_ERR_TLS_PROTOCOL : SGRPC_ERR_TLS_HANDSHAKE,
                      t->done ? "TLS error" : "TLS handshake failed");
  snprintf(msg, sizeof(msg), "TLS library error (SSL_get_error %d)", ssl_err);
  return set_failed(t, SGRPC_ERR_TLS_INTERNAL, msg);
}

/* ------------------------------------------------------------------ */
/* OpenSSL callbacks                                                   */
/* ------------------------------------------------------------------ */

static void info_cb(const SSL *ssl, int where, int ret) {
  ossl_tls *t = SSL_get_app_data(ssl);
  /* SSL_CB_READ_ALERT shares its SSL_CB_ALERT bit with SSL_CB_WRITE_ALERT */
  if (!t || (where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) return;
  if ((ret >> 8) == SSL3_AL_FATAL) t->alert_recv = (ret & 0xff) + 1;
}

/* Server: a ClientHello without ALPN never reaches the ALPN callback, so
 * its absence is caught here. */
static int client_hello_cb(SSL *ssl, int *al, void *arg) {
  ossl_tls *t = SSL_get_app_data(ssl);
  const unsigned char *p;
  size_t len;
  (void)arg;
  if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                 &p, &len)) {
    if (t) t->alpn_failed = 1;
    *al = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

/* Server: choose our protocol from the client's list, or refuse. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg) {
  sgrpc_tls_openssl_ctx *ctx = arg;
  ossl_tls *t = SSL_get_app_data(ssl);
  const uint8_t *want = ctx->alpn_wire + 1;
  unsigned want_len = ctx->alpn_wire[0];
  unsigned i = 0;
  while (i < inlen) {
    unsigned l = in[i];
    if (i + 1 + l > inlen) break;
    if (l == want_len && memcmp(in + i + 1, want, l) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)l;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + l;
  }
  if (t) t->alpn_failed = 1;
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ------------------------------------------------------------------ */
/* handshake                                                           */
/* ------------------------------------------------------------------ */

/* Runs the handshake as far as the buffered input allows. Returns 0
 * (done or waiting) or the sticky failure. */
static int hs_step(ossl_tls *t) {
  int rv, err;
  const unsigned char *sel = NULL;
  unsigned sel_len = 0;
  if (t->failed) return t->failed;
  if (t->done) return 0;
  if (t->sent_close || t->transport_gone) return 0;
  ERR_clear_error();
  rv = SSL_do_handshake(t->ssl);
  if (rv != 1) {
    err = SSL_get_error(t->ssl, rv);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
    return fail_from_ssl(t, err);
  }
  /* The callbacks enforce ALPN on a server; a client checks the answer
   * here (a server may ignore ALPN altogether). */
  SSL_get0_alpn_selected(t->ssl, &sel, &sel_len);
  if (sel_len != t->ctx->alpn_wire[0] || memcmp(sel, t->ctx->alpn_wire + 1, sel_len) != 0) {
    char msg[160];
    snprintf(msg, sizeof(msg), "peer did not negotiate ALPN %.*s (selected: %s%.*s%s)",
             (int)t->ctx->alpn_wire[0], (const char *)t->ctx->alpn_wire + 1,
             sel_len ? "\"" : "none", (int)sel_len, sel_len ? (const char *)sel : "",
             sel_len ? "\"" : "");
    set_failed(t, SGRPC_ERR_TLS_ALPN, msg);
    /* tell the peer we are leaving rather than leave it waiting */
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    return t->failed;
  }
  snprintf(t->alpn, sizeof(t->alpn), "%.*s", (int)sel_len, (const char *)sel);
  t->done = 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* vtable                                                              */
/* ------------------------------------------------------------------ */

static void peer_clear(ossl_tls *t) {
  const sgrpc_mem *m = &t->ctx->mem;
  size_t i;
  for (i = 0; i < t->san_count; i++) mem_free(m, (void *)t->sans[i].value);
  mem_free(m, t->sans);
  mem_free(m, t->der);
  mem_free(m, t->subject);
  mem_free(m, t->issuer);
  t->sans = NULL;
  t->der = NULL;
  t->subject = t->issuer = NULL;
  t->san_count = t->der_len = 0;
  t->peer_loaded = 0;
}

static void ossl_del(sgrpc_tls *base) {
  ossl_tls *t = (ossl_tls *)base;
  sgrpc_tls_openssl_ctx *ctx = t->ctx;
  const sgrpc_mem m = ctx->mem;
  peer_clear(t);
  if (t->ssl) SSL_free(t->ssl); /* frees both BIOs */
  mem_free(&m, t->pbuf);
  mem_free(&m, t->obuf);
  mem_free(&m, t->sni);
  mem_free(&m, t);
  sgrpc_tls_openssl_ctx_del(ctx);
}

static size_t out_pending(ossl_tls *t) {
  return (t->olen - t->ooff) + (size_t)BIO_ctrl_pending(t->wbio);
}

static sgrpc_ssize ossl_feed(sgrpc_tls *base, const uint8_t *data, size_t len) {
  ossl_tls *t = (ossl_tls *)base;
  size_t pending, take;
  int rv;
  if (t->failed) return t->failed;
  if (t->transport_gone || t->recv_close) return SGRPC_ERR_INVALID_STATE;
  pending = (size_t)BIO_ctrl_pending(t->rbio);
  take = pending < t->ctx->max_in ? t->ctx->max_in - pending : 0;
  if (take > len) take = len;
  if (take > INT32_MAX) take = INT32_MAX;
  if (take) {
    int w = BIO_write(t->rbio, data, (int)take);
    if (w != (int)take) {
      ERR_clear_error();
      return SGRPC_ERR_NOMEM; /* a memory BIO only fails to grow */
    }
  }
  rv = hs_step(t);
  if (rv < 0) return rv;
  return (sgrpc_ssize)take;
}

static sgrpc_ssize ossl_plain_peek(sgrpc_tls *base, const uint8_t **data) {
  ossl_tls *t = (ossl_tls *)base;
  int rv, err;
  *data = NULL;
  if (t->plen > t->poff) {
    *data = t->pbuf + t->poff;
    return (sgrpc_ssize)(t->plen - t->poff);
  }
  t->poff = t->plen = 0;
  if (t->failed) return t->failed;
  if (t->recv_close) return SGRPC_ERR_TLS_CLOSED;
  if (!t->done) {
    rv = hs_step(t);
    if (rv < 0) return rv;
    if (!t->done) return t->transport_gone ? SGRPC_ERR_TLS_TRUNCATED : 0;
  }
  ERR_clear_error();
  rv = SSL_read(t->ssl, t->pbuf, PBUF_SIZE);
  if (rv > 0) {
    t->plen = (size_t)rv;
    *data = t->pbuf;
    return rv;
  }
  err = SSL_get_error(t->ssl, rv);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    return t->transport_gone ? SGRPC_ERR_TLS_TRUNCATED : 0;
  if (err == SSL_ERROR_ZERO_RETURN) {
    t->recv_close = 1;
    return SGRPC_ERR_TLS_CLOSED;
  }
  return fail_from_ssl(t, err);
}

static int ossl_plain_consume(sgrpc_tls *base, size_t n) {
  ossl_tls *t = (ossl_tls *)base;
  if (n > t->plen - t->poff) return SGRPC_ERR_INVALID_ARGUMENT;
  t->poff += n;
  return 0;
}

static sgrpc_ssize ossl_write(sgrpc_tls *base, const uint8_t *data, size_t len) {
  ossl_tls *t = (ossl_tls *)base;
  size_t total = 0;
  if (t->failed) return t->failed;
  if (t->sent_close || t->transport_gone) return SGRPC_ERR_INVALID_STATE;
  if (!t->done) {
    int rv = hs_step(t);
    if (rv < 0) return rv;
    if (!t->done) return 0;
  }
  while (total < len && out_pending(t) < t->ctx->max_out) {
    size_t chunk = len - total;
    int rv;
    if (chunk > PBUF_SIZE) chunk = PBUF_SIZE;
    ERR_clear_error();
    rv = SSL_write(t->ssl, data + total, (int)chunk);
    if (rv <= 0) {
      int err = SSL_get_error(t->ssl, rv);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      if (ERR_GET_REASON(ERR_peek_error()) == ERR_R_MALLOC_FAILURE) {
        ERR_clear_error();
        return total ? (sgrpc_ssize)total : SGRPC_ERR_NOMEM;
      }
      return fail_from_ssl(t, err);
    }
    total += (size_t)rv;
  }
  return (sgrpc_ssize)total;
}

static sgrpc_ssize ossl_out_peek(sgrpc_tls *base, const uint8_t **data) {
  ossl_tls *t = (ossl_tls *)base;
  *data = NULL;
  if (t->olen == t->ooff) {
    int r;
    t->ooff = t->olen = 0;
    if (BIO_ctrl_pending(t->wbio) == 0) return 0;
    r = BIO_read(t->wbio, t->obuf, OBUF_SIZE);
    if (r <= 0) return 0;
    t->olen = (size_t)r;
  }
  *data = t->obuf + t->ooff;
  return (sgrpc_ssize)(t->olen - t->ooff);
}

static int ossl_out_consume(sgrpc_tls *base, size_t n) {
  ossl_tls *t = (ossl_tls *)base;
  if (n > t->olen - t->ooff) return SGRPC_ERR_INVALID_ARGUMENT;
  t->ooff += n;
  return 0;
}

static int ossl_want_read(sgrpc_tls *base) {
  ossl_tls *t = (ossl_tls *)base;
  if (t->failed || t->recv_close || t->transport_gone) return 0;
  return (size_t)BIO_ctrl_pending(t->rbio) < t->ctx->max_in;
}

static int ossl_want_write(sgrpc_tls *base) { return out_pending((ossl_tls *)base) > 0; }

static int ossl_state(sgrpc_tls *base) {
  ossl_tls *t = (ossl_tls *)base;
  int s = 0;
  if (t->done) s |= SGRPC_TLS_HANDSHAKE_DONE;
  if (t->sent_close) s |= SGRPC_TLS_SENT_CLOSE;
  if (t->recv_close) s |= SGRPC_TLS_RECEIVED_CLOSE;
  if (t->failed) s |= SGRPC_TLS_FAILED;
  return s;
}

static int ossl_close(sgrpc_tls *base) {
  ossl_tls *t = (ossl_tls *)base;
  if (t->failed) return t->failed;
  if (t->sent_close) return 0;
  t->sent_close = 1;
  /* Before the handshake ends there is no session to close: the adapter
   * just drops the transport. */
  if (t->done && !t->transport_gone) {
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
  }
  return 0;
}

static int ossl_transport_closed(sgrpc_tls *base) {
  ossl_tls *t = (ossl_tls *)base;
  t->transport_gone = 1;
  return t->recv_close ? 0 : SGRPC_ERR_TLS_TRUNCATED;
}

static int load_peer(ossl_tls *t) {
  const sgrpc_mem *m = &t->ctx->mem;
  X509 *cert;
  BIO *bio = NULL;
  GENERAL_NAMES *gens = NULL;
  unsigned char *p;
  int len, i, n, rv = SGRPC_ERR_NOMEM;
  X509_NAME *names[2];
  char **outs[2];
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  cert = SSL_get1_peer_certificate(t->ssl);
#else
  cert = SSL_get_peer_certificate(t->ssl);
#endif
  if (!cert) return SGRPC_ERR_TLS_NO_PEER_CERT;
  len = i2d_X509(cert, NULL);
  if (len <= 0) goto out;
  t->der = mem_alloc(m, (size_t)len);
  if (!t->der) goto out;
  p = t->der;
  i2d_X509(cert, &p);
  t->der_len = (size_t)len;

  names[0] = X509_get_subject_name(cert);
  names[1] = X509_get_issuer_name(cert);
  outs[0] = &t->subject;
  outs[1] = &t->issuer;
  for (i = 0; i < 2; i++) {
    char *s;
    long sl;
    bio = BIO_new(BIO_s_mem());
    if (!bio) goto out;
    if (X509_NAME_print_ex(bio, names[i], 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
      goto out;
    sl = BIO_get_mem_data(bio, &s);
    *outs[i] = mem_strdup(m, sl > 0 ? s : "", sl > 0 ? (size_t)sl : 0);
    BIO_free(bio);
    bio = NULL;
    if (!*outs[i]) goto out;
  }

  gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  n = gens ? sk_GENERAL_NAME_num(gens) : 0;
  if (n > 0) {
    t->sans = mem_zalloc(m, (size_t)n * sizeof(*t->sans));
    if (!t->sans) goto out;
  }
  for (i = 0; i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    sgrpc_tls_san *san = &t->sans[t->san_count];
    char ip[64];
    const char *v = NULL;
    size_t vl = 0;
    switch (g->type) {
    case GEN_DNS: san->type = SGRPC_TLS_SAN_DNS; break;
    case GEN_URI: san->type = SGRPC_TLS_SAN_URI; break;
    case GEN_EMAIL: san->type = SGRPC_TLS_SAN_EMAIL; break;
    case GEN_IPADD: san->type = SGRPC_TLS_SAN_IP; break;
    default: continue; /* other kinds are not reported */
    }
    if (g->type == GEN_IPADD) {
      const ASN1_OCTET_STRING *o = g->d.iPAddress;
      int af = ASN1_STRING_length(o) == 4 ? AF_INET : ASN1_STRING_length(o) == 16 ? AF_INET6 : 0;
      if (!af || !inet_ntop(af, ASN1_STRING_get0_data(o), ip, sizeof(ip))) continue;
      v = ip;
      vl = strlen(ip);
    } else {
      const ASN1_IA5STRING *s = g->d.ia5; /* dNSName, URI and rfc822Name are IA5 */
      v = (const char *)ASN1_STRING_get0_data(s);
      vl = (size_t)ASN1_STRING_length(s);
      if (memchr(v, '\0', vl)) continue; /* embedded NUL: not a usable name */
    }
    san->value = mem_strdup(m, v, vl);
    if (!san->value) goto out;
    t->san_count++;
  }
  t->verified = SSL_get_verify_result(t->ssl) == X509_V_OK;
  t->peer_loaded = 1;
  rv = 0;
out:
  if (bio) BIO_free(bio);
  if (gens) GENERAL_NAMES_free(gens);
  X509_free(cert);
  if (rv) peer_clear(t);
  ERR_clear_error();
  return rv;
}

static int ossl_peer_cert(sgrpc_tls *base, sgrpc_tls_peer *peer) {
  ossl_tls *t = (ossl_tls *)base;
  if (!t->done) return SGRPC_ERR_INVALID_STATE;
  if (!t->peer_loaded) {
    int rv = load_peer(t);
    if (rv) return rv;
  }
  peer->der = t->der;
  peer->der_len = t->der_len;
  peer->subject = t->subject;
  peer->issuer = t->issuer;
  peer->sans = t->sans;
  peer->san_count = t->san_count;
  peer->verified = t->verified;
  return 0;
}

static int ossl_info(sgrpc_tls *base, sgrpc_tls_info *info) {
  ossl_tls *t = (ossl_tls *)base;
  info->is_server = t->ctx->is_server;
  if (t->ctx->is_server) info->server_name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
  else info->server_name = t->sni;
  if (t->done) {
    info->alpn = t->alpn;
    info->version = SSL_get_version(t->ssl);
    info->cipher = SSL_get_cipher_name(t->ssl);
  }
  return 0;
}

static const char *ossl_error_string(sgrpc_tls *base) { return ((ossl_tls *)base)->err; }

static const sgrpc_tls_vtable ossl_vtable = {
  SGRPC_TLS_VTABLE_VERSION, "openssl",
  ossl_del, ossl_feed, ossl_plain_peek, ossl_plain_consume, ossl_write,
  ossl_out_peek, ossl_out_consume, ossl_want_read, ossl_want_write, ossl_state,
  ossl_close, ossl_transport_closed, ossl_peer_cert, ossl_info, ossl_error_string,
};

/* ------------------------------------------------------------------ */
/* context                                                             */
/* ------------------------------------------------------------------ */

void sgrpc_tls_openssl_options_default(sgrpc_tls_openssl_options *o) {
  memset(o, 0, sizeof(*o));
  o->version = SGRPC_TLS_OPENSSL_OPTIONS_VERSION;
  o->use_default_ca = -1;
  o->alpn = "h2";
  o->max_buffered_input = DEFAULT_BUFFERED;
  o->max_buffered_output = DEFAULT_BUFFERED;
}

static void ctx_free(sgrpc_tls_openssl_ctx *ctx) {
  const sgrpc_mem m = ctx->mem;
  if (ctx->ssl_ctx) SSL_CTX_free(ctx->ssl_ctx);
  mem_free(&m, ctx->server_name);
  mem_free(&m, ctx->override_name);
  mem_free(&m, ctx);
}

void sgrpc_tls_openssl_ctx_del(sgrpc_tls_openssl_ctx *ctx) {
  if (ctx && --ctx->refs == 0) ctx_free(ctx);
}

static int config_error(sgrpc_tls_openssl_ctx *ctx, char *errbuf, size_t errcap,
                        const char *what) {
  if (errbuf && errcap) {
    errbuf[0] = '\0';
    snprintf(errbuf, errcap, "%s", what);
    errq_append(errbuf, errcap);
  }
  ERR_clear_error();
  ctx_free(ctx);
  return SGRPC_ERR_TLS_CONFIG;
}

int sgrpc_tls_openssl_ctx_new(sgrpc_tls_openssl_ctx **pctx, const sgrpc_tls_openssl_options *o,
                              char *errbuf, size_t errcap) {
  const sgrpc_mem *m;
  sgrpc_tls_openssl_ctx *ctx;
  SSL_CTX *sc;
  size_t alen;
  int min_v, max_v, default_ca;
  if (errbuf && errcap) errbuf[0] = '\0';
  if (!pctx || !o || o->version != SGRPC_TLS_OPENSSL_OPTIONS_VERSION)
    return SGRPC_ERR_INVALID_ARGUMENT;
  *pctx = NULL;
  m = o->mem ? o->mem : &libc_mem;
  ctx = mem_zalloc(m, sizeof(*ctx));
  if (!ctx) return SGRPC_ERR_NOMEM;
  ctx->mem = *m;
  ctx->refs = 1;
  ctx->is_server = o->is_server != 0;
  ctx->skip_hostname_check = o->skip_hostname_check != 0;
  ctx->max_in = o->max_buffered_input ? o->max_buffered_input : DEFAULT_BUFFERED;
  ctx->max_out = o->max_buffered_output ? o->max_buffered_output : DEFAULT_BUFFERED;

  alen = o->alpn ? strlen(o->alpn) : 0;
  if (alen == 0 || alen > 255) return config_error(ctx, errbuf, errcap, "bad ALPN protocol name");
  ctx->alpn_wire[0] = (uint8_t)alen;
  memcpy(ctx->alpn_wire + 1, o->alpn, alen);
  ctx->alpn_wire_len = alen + 1;

  min_v = o->min_version ? o->min_version : TLS1_2_VERSION;
  max_v = o->max_version;
  if (min_v < TLS1_2_VERSION || (max_v && max_v < min_v))
    return config_error(ctx, errbuf, errcap, "TLS versions below 1.2 are not allowed");

  if (!ctx->is_server) {
    if (o->server_name && !(ctx->server_name = mem_strdup(m, o->server_name, strlen(o->server_name)))) {
      ctx_free(ctx);
      return SGRPC_ERR_NOMEM;
    }
    if (o->target_name_override &&
        !(ctx->override_name = mem_strdup(m, o->target_name_override,
                                          strlen(o->target_name_override)))) {
      ctx_free(ctx);
      return SGRPC_ERR_NOMEM;
    }
  }

  ERR_clear_error();
  sc = SSL_CTX_new(ctx->is_server ? TLS_server_method() : TLS_client_method());
  if (!sc) {
    ERR_clear_error();
    ctx_free(ctx);
    return SGRPC_ERR_NOMEM;
  }
  ctx->ssl_ctx = sc;
  if (!SSL_CTX_set_min_proto_version(sc, min_v) ||
      (max_v && !SSL_CTX_set_max_proto_version(sc, max_v)))
    return config_error(ctx, errbuf, errcap, "unsupported TLS version");
  /* HTTP/2 forbids renegotiation and compression, and (RFC 7540 9.2.2)
   * wants ephemeral key exchange with an AEAD on TLS 1.2. */
  SSL_CTX_set_options(sc, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                              SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (!SSL_CTX_set_cipher_list(sc, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"))
    return config_error(ctx, errbuf, errcap, "cannot set TLS 1.2 ciphers");
  SSL_CTX_set_info_callback(sc, info_cb);
  SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
#if OPENSSL_VERSION_NUMBER >= 0x10101000L
  if (ctx->is_server) SSL_CTX_set_num_tickets(sc, 0);
#endif

  default_ca = o->use_default_ca >= 0 ? o->use_default_ca
                                      : (!ctx->is_server && !o->ca_file && !o->ca_dir);
  if ((o->ca_file || o->ca_dir) && !SSL_CTX_load_verify_locations(sc, o->ca_file, o->ca_dir))
    return config_error(ctx, errbuf, errcap, "cannot load CA file or directory");
  if (default_ca && !SSL_CTX_set_default_verify_paths(sc))
    return config_error(ctx, errbuf, errcap, "cannot load default CA paths");

  if (o->cert_file || o->key_file) {
    if (!o->cert_file || !o->key_file)
      return config_error(ctx, errbuf, errcap, "cert_file and key_file go together");
    if (SSL_CTX_use_certificate_chain_file(sc, o->cert_file) != 1)
      return config_error(ctx, errbuf, errcap, "cannot load certificate chain");
    if (SSL_CTX_use_PrivateKey_file(sc, o->key_file, SSL_FILETYPE_PEM) != 1) {
      int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
      return config_error(ctx, errbuf, errcap,
                          mismatch ? "private key does not match the certificate"
                                   : "cannot load private key");
    }
    if (SSL_CTX_check_private_key(sc) != 1)
      return config_error(ctx, errbuf, errcap, "private key does not match the certificate");
  } else if (ctx->is_server) {
    return config_error(ctx, errbuf, errcap, "a server needs cert_file and key_file");
  }

  if (ctx->is_server) {
    int mode = SSL_VERIFY_NONE;
    if (o->client_cert != SGRPC_TLS_CLIENT_CERT_NONE) {
      if (!o->ca_file && !o->ca_dir && !default_ca)
        return config_error(ctx, errbuf, errcap, "client certificates need ca_file or ca_dir");
      mode = SSL_VERIFY_PEER;
      if (o->client_cert == SGRPC_TLS_CLIENT_CERT_REQUIRE) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      if (o->ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names) SSL_CTX_set_client_CA_list(sc, names);
      }
    }
    SSL_CTX_set_verify(sc, mode, NULL);
    SSL_CTX_set_client_hello_cb(sc, client_hello_cb, ctx);
    SSL_CTX_set_alpn_select_cb(sc, alpn_select_cb, ctx);
  } else {
    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    /* note: returns 0 on success */
    if (SSL_CTX_set_alpn_protos(sc, ctx->alpn_wire, (unsigned)ctx->alpn_wire_len) != 0)
      return config_error(ctx, errbuf, errcap, "cannot set ALPN");
  }
  ERR_clear_error();
  *pctx = ctx;
  return 0;
}

/* ------------------------------------------------------------------ */
/* session                                                             */
/* ------------------------------------------------------------------ */

static int is_ip_literal(const char *s) {
  unsigned char b[16];
  return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int sgrpc_tls_openssl_new(sgrpc_tls **ptls, sgrpc_tls_openssl_ctx *ctx, const char *server_name) {
  const sgrpc_mem *m;
  ossl_tls *t;
  const char *name;
  int rv = SGRPC_ERR_NOMEM;
  if (!ptls || !ctx) return SGRPC_ERR_INVALID_ARGUMENT;
  *ptls = NULL;
  if (ctx->is_server && server_name) return SGRPC_ERR_INVALID_ARGUMENT;
  name = ctx->override_name ? ctx->override_name : server_name ? server_name : ctx->server_name;
  if (!ctx->is_server && (!name || !*name) && !ctx->skip_hostname_check)
    return SGRPC_ERR_TLS_CONFIG;
  m = &ctx->mem;
  t = mem_zalloc(m, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  t->base.vt = &ossl_vtable;
  t->ctx = ctx;
  ctx->refs++;
  t->pbuf = mem_alloc(m, PBUF_SIZE);
  t->obuf = mem_alloc(m, OBUF_SIZE);
  if (!t->pbuf || !t->obuf) goto fail;
  ERR_clear_error();
  t->ssl = SSL_new(ctx->ssl_ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    if (t->rbio) BIO_free(t->rbio);
    if (t->wbio) BIO_free(t->wbio);
    t->rbio = t->wbio = NULL;
    goto fail;
  }
  /* An empty memory BIO reports "retry", not EOF: more may come. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_app_data(t->ssl, t);
  if (ctx->is_server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (name && *name) {
      X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
      int ip = is_ip_literal(name);
      if (!ip) {
        t->sni = mem_strdup(m, name, strlen(name));
        if (!t->sni) goto fail;
        /* SNI carries host names only (RFC 6066 section 3) */
        if (!SSL_set_tlsext_host_name(t->ssl, name)) goto fail_internal;
      }
      if (!ctx->skip_hostname_check) {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (ip ? !X509_VERIFY_PARAM_set1_ip_asc(vp, name) : !X509_VERIFY_PARAM_set1_host(vp, name, 0))
          goto fail_internal;
      }
    }
    /* queue the ClientHello */
    rv = hs_step(t);
    if (rv < 0) goto fail;
  }
  ERR_clear_error();
  *ptls = &t->base;
  return 0;
fail_internal:
  rv = SGRPC_ERR_TLS_INTERNAL;
fail:
  ERR_clear_error();
  ossl_del(&t->base);
  return rv;
}

/* The net layer's factory: a name configured in the context wins over
 * the channel's target host, as gRPC's ssl_target_name_override does. */
int sgrpc_tls_openssl_factory(void *ud, const char *server_name, sgrpc_tls **ptls) {
  sgrpc_tls_openssl_ctx *ctx = ud;
  const char *name = NULL;
  int rv;
  if (!ctx || !ptls) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!ctx->is_server && !ctx->server_name && !ctx->override_name && server_name &&
      *server_name)
    name = server_name;
  rv = sgrpc_tls_openssl_new(ptls, ctx, name);
  return rv == 0 ? 1 : rv;
}

void *sgrpc_tls_openssl_ssl(sgrpc_tls *tls) {
  if (!tls || tls->vt != &ossl_vtable) return NULL;
  return ((ossl_tls *)tls)->ssl;
}
