/*
 * An OpenSSL filter factory for the adapter core (see
 * <sgrpc/adapter_tls_openssl.h>).
 */
#include <sgrpc/adapter_tls_openssl.h>

#include <stdlib.h>

struct sgrpc_ac_tls_openssl {
  sgrpc_tls_openssl_ctx *ctx;
  int is_server;
  /* The context names the server itself (server_name or override): the
   * channel's target host is not used then. */
  int has_name;
};

int sgrpc_ac_tls_openssl_new(sgrpc_ac_tls_openssl **pt, const sgrpc_tls_openssl_options *o,
                             char *errbuf, size_t errcap) {
  sgrpc_ac_tls_openssl *t;
  int rv;
  if (!pt || !o) return SGRPC_ERR_INVALID_ARGUMENT;
  *pt = NULL;
  t = calloc(1, sizeof(*t));
  if (!t) return SGRPC_ERR_NOMEM;
  rv = sgrpc_tls_openssl_ctx_new(&t->ctx, o, errbuf, errcap);
  if (rv != 0) {
    free(t);
    return rv;
  }
  t->is_server = o->is_server != 0;
  t->has_name = (o->server_name && o->server_name[0]) ||
                (o->target_name_override && o->target_name_override[0]);
  *pt = t;
  return 0;
}

void sgrpc_ac_tls_openssl_del(sgrpc_ac_tls_openssl *t) {
  if (!t) return;
  sgrpc_tls_openssl_ctx_del(t->ctx);
  free(t);
}

int sgrpc_ac_tls_openssl_make_filter(void *ud, sgrpc_ac_conn *c, sgrpc_ac_filter *f) {
  sgrpc_ac_tls_openssl *t = ud;
  const char *name = NULL;
  sgrpc_tls *tls = NULL;
  int rv;
  if (!t || !f) return SGRPC_ERR_INVALID_ARGUMENT;
  if (!t->is_server && !t->has_name) {
    const sgrpc_ac_target *tg = sgrpc_ac_channel_target(sgrpc_ac_conn_channel(c));
    if (tg && tg->kind == SGRPC_AC_TARGET_TCP && tg->host[0]) name = tg->host;
  }
  rv = sgrpc_tls_openssl_new(&tls, t->ctx, name);
  if (rv != 0) return rv < 0 ? rv : SGRPC_ERR_INVALID_STATE;
  return sgrpc_ac_tls_filter(tls, f);
}
