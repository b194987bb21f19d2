/*
 * Retry helpers (gRFC A6) and the service config lookup: pure functions
 * over the client's retry state; rpc.c drives the attempts.
 */
#include <string.h>

#include "retry_internal.h"
#include "rpc_mem.h"

/* ---- service config lookup ---- */

static int name_eq(const char *a, const char *b, size_t blen) {
  return a && strlen(a) == blen && memcmp(a, b, blen) == 0;
}

const sgrpc_method_config *sgrpc_service_config_find(const sgrpc_service_config *cfg,
                                                     const char *path) {
  const sgrpc_method_config *by_service = NULL, *by_default = NULL;
  const char *svc, *slash, *meth;
  size_t svc_len, meth_len, i, j;
  if (!cfg || !path) return NULL;
  svc = path[0] == '/' ? path + 1 : path;
  slash = strchr(svc, '/');
  if (!slash) return NULL;
  svc_len = (size_t)(slash - svc);
  meth = slash + 1;
  meth_len = strlen(meth);
  for (i = 0; i < cfg->methods_count; i++) {
    const sgrpc_method_config *mc = &cfg->methods[i];
    for (j = 0; j < mc->names_count; j++) {
      const sgrpc_method_name *n = &mc->names[j];
      const char *s = n->service ? n->service : "";
      int all_methods = !n->method || !*n->method;
      if (!*s) {
        if (all_methods && !by_default) by_default = mc;
        continue;
      }
      if (!name_eq(s, svc, svc_len)) continue;
      if (all_methods) {
        if (!by_service) by_service = mc;
      } else if (name_eq(n->method, meth, meth_len)) {
        return mc;
      }
    }
  }
  return by_service ? by_service : by_default;
}

/* ---- the request buffer ---- */

int rt_buf_reserve(sgrpc_rpc_client *cl, const sgrpc_mem *mem, rt_buf *b, size_t n,
                   uint8_t **p) {
  size_t need = 4 + n;
  sgrpc_rpc_retry_state *rs = &cl->retry;
  size_t limit = b->limit && b->limit < rs->buffer_per_call ? b->limit : rs->buffer_per_call;
  if (n > UINT32_MAX || b->len + need > limit ||
      rs->buffer_used + need > rs->buffer_per_client)
    return 1;
  if (b->len + need > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    uint8_t *nd;
    while (cap < b->len + need) cap *= 2;
    if (cap > limit) cap = limit; /* never more than the limit allows */
    nd = mem->realloc(b->data, cap, mem->user_data);
    if (!nd) return SGRPC_ERR_NOMEM;
    b->data = nd;
    b->cap = cap;
  }
  b->data[b->len] = (uint8_t)(n >> 24);
  b->data[b->len + 1] = (uint8_t)(n >> 16);
  b->data[b->len + 2] = (uint8_t)(n >> 8);
  b->data[b->len + 3] = (uint8_t)n;
  *p = b->data + b->len + 4;
  b->len += need;
  rs->buffer_used += need;
  return 0;
}

void rt_buf_unreserve(sgrpc_rpc_client *cl, rt_buf *b, size_t n) {
  b->len -= 4 + n;
  cl->retry.buffer_used -= 4 + n;
}

void rt_buf_free(sgrpc_rpc_client *cl, const sgrpc_mem *mem, rt_buf *b) {
  cl->retry.buffer_used -= b->len;
  rpc_free(mem, b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int rt_buf_next(const rt_buf *b, size_t *off, const uint8_t **data, size_t *n) {
  const uint8_t *p;
  if (*off >= b->len) return 0;
  p = b->data + *off;
  *n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
  *data = p + 4;
  *off += 4 + *n;
  return 1;
}

/* ---- backoff ---- */

int64_t rt_jitter(sgrpc_rpc_client *cl, int64_t cap) {
  sgrpc_rpc_retry_state *rs = &cl->retry;
  uint64_t r;
  if (cap <= 0) return 0;
  if (rs->random) {
    r = rs->random(rs->random_ctx);
  } else {
    /* xorshift64*: jitter needs spread, not secrecy */
    uint64_t x = rs->rng ? rs->rng : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rs->rng = x;
    r = x * 0x2545f4914f6cdd1dull;
  }
  /* 53 random bits as a fraction in [0, 1) */
  return (int64_t)((double)cap * ((double)(r >> 11) / 9007199254740992.0));
}

/* ---- throttling: tokens in thousandths ---- */

static const sgrpc_retry_throttling *throttling(sgrpc_rpc_client *cl) {
  const sgrpc_service_config *cfg = cl->retry.service_config;
  const sgrpc_retry_throttling *t = cfg ? cfg->retry_throttling : NULL;
  if (!t || !t->max_tokens) return NULL;
  if (cl->retry.tokens_milli < 0) cl->retry.tokens_milli = (int64_t)t->max_tokens * 1000;
  return t;
}

void rt_throttle_failure(sgrpc_rpc_client *cl) {
  if (!throttling(cl)) return;
  cl->retry.tokens_milli = cl->retry.tokens_milli >= 1000 ? cl->retry.tokens_milli - 1000 : 0;
}

void rt_throttle_success(sgrpc_rpc_client *cl) {
  const sgrpc_retry_throttling *t = throttling(cl);
  int64_t max, add;
  if (!t) return;
  max = (int64_t)t->max_tokens * 1000;
  add = (int64_t)(t->token_ratio * 1000.0 + 0.5);
  cl->retry.tokens_milli = cl->retry.tokens_milli + add > max ? max : cl->retry.tokens_milli + add;
}

int rt_throttle_allows(sgrpc_rpc_client *cl) {
  const sgrpc_retry_throttling *t = throttling(cl);
  /* gRFC A6: retries only while the count is above max_tokens / 2 */
  return !t || cl->retry.tokens_milli * 2 > (int64_t)t->max_tokens * 1000;
}

/* ---- pushback ---- */

int rt_pushback(const sgrpc_md *md, size_t n, int64_t *ms) {
  static const char key[] = "grpc-retry-pushback-ms";
  size_t i, k;
  for (i = 0; i < n; i++) {
    int64_t v = 0;
    if (md[i].key_len != sizeof(key) - 1 || memcmp(md[i].key, key, sizeof(key) - 1) != 0)
      continue;
    if (md[i].value_len == 0 || md[i].value_len > 10) return -1;
    for (k = 0; k < md[i].value_len; k++) {
      uint8_t c = md[i].value[k];
      if (c < '0' || c > '9') return -1; /* "-1" (stop) lands here too */
      v = v * 10 + (c - '0');
    }
    if (v > INT32_MAX) return -1;
    *ms = v;
    return 1;
  }
  return 0;
}
