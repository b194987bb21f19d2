/*
 * Service config JSON -> <sgrpc/service_config.h> data, with libjansson.
 *
 * Two passes over the parsed JSON tree share one walker: the first
 * validates every field and counts the bytes the result needs, the second
 * fills one block of exactly that size. So the result is one allocation
 * (one free), and every error is found before anything is allocated
 * (duplicate method names are checked on the filled block).
 */
#include <sgrpc/service_config_json.h>

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The block: the allocator it came from, then the config users see. */
typedef struct cfg_block {
  sgrpc_mem mem;
  sgrpc_service_config cfg;
} cfg_block;

typedef struct walker {
  int filling;   /* 0: validate and count; 1: write into base */
  uint8_t *base; /* the block (filling) */
  size_t off;    /* bytes used so far */
  char *err;
  size_t err_len;
} walker;

/* Reserves n bytes aligned for any field type here. While counting it
 * returns NULL; callers then write into a local scratch copy. */
static void *take(walker *w, size_t n) {
  size_t a = sizeof(void *) > sizeof(double) ? sizeof(void *) : sizeof(double);
  void *p;
  w->off = (w->off + a - 1) / a * a;
  p = w->filling ? w->base + w->off : NULL;
  w->off += n;
  return p;
}

static const char *take_str(walker *w, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = take(w, n);
  if (!p) return s;
  memcpy(p, s, n);
  return p;
}

/* Writes "<where>: <why>" into the caller's buffer; returns the error. */
static int fail(walker *w, const char *where, const char *fmt, ...) {
  va_list ap;
  int n;
  if (!w->err || !w->err_len) return SGRPC_ERR_INVALID_ARGUMENT;
  n = snprintf(w->err, w->err_len, "%s: ", where);
  if (n >= 0 && (size_t)n < w->err_len) {
    va_start(ap, fmt);
    (void)vsnprintf(w->err + n, w->err_len - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return SGRPC_ERR_INVALID_ARGUMENT;
}

static const char *const status_names[17] = {
    "OK",      "CANCELLED",          "UNKNOWN",         "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",   "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",   "UNIMPLEMENTED",    "INTERNAL",
    "UNAVAILABLE", "DATA_LOSS",      "UNAUTHENTICATED"};

/* proto3 JSON Duration: [-]digits[.1-9 digits]s. Returns 0 with *ns set,
 * or a negative value when malformed (-1) or out of int64 ns (-2). */
static int parse_duration(const char *s, int64_t *ns) {
  int64_t sec = 0, frac = 0;
  int digits = 0, fd = 0;
  if (*s == '-') return -3;
  while (*s >= '0' && *s <= '9') {
    if (sec > (INT64_MAX / 1000000000 - 9) / 10) return -2;
    sec = sec * 10 + (*s++ - '0');
    digits++;
  }
  if (!digits) return -1;
  if (*s == '.') {
    s++;
    while (*s >= '0' && *s <= '9') {
      if (++fd > 9) return -1;
      frac = frac * 10 + (*s++ - '0');
    }
    if (!fd) return -1;
  }
  if (s[0] != 's' || s[1] != 0) return -1;
  while (fd++ < 9) frac *= 10;
  *ns = sec * 1000000000 + frac;
  return 0;
}

static int get_duration(walker *w, json_t *v, const char *where, int positive, int64_t *out) {
  int rv;
  if (!json_is_string(v)) return fail(w, where, "must be a duration string such as \"1.5s\"");
  rv = parse_duration(json_string_value(v), out);
  if (rv == -3) return fail(w, where, "must not be negative");
  if (rv == -2) return fail(w, where, "too large");
  if (rv < 0)
    return fail(w, where, "\"%s\" is not a duration (seconds with up to 9 decimals and an "
                "\"s\" suffix, e.g. \"1.5s\")", json_string_value(v));
  if (positive && *out <= 0) return fail(w, where, "must be greater than 0");
  return 0;
}

/* A byte count: a JSON integer or (proto3 JSON's uint64 form) a string of
 * decimal digits. */
static int get_size(walker *w, json_t *v, const char *where, size_t *out) {
  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0) return fail(w, where, "must not be negative");
    if ((unsigned long long)i > SIZE_MAX) return fail(w, where, "too large");
    *out = (size_t)i;
    return 0;
  }
  if (json_is_string(v)) {
    const char *s = json_string_value(v);
    unsigned long long n = 0;
    if (!*s) return fail(w, where, "must be an integer");
    for (; *s; s++) {
      if (*s < '0' || *s > '9') return fail(w, where, "must be an integer");
      if (n > (SIZE_MAX - 9) / 10) return fail(w, where, "too large");
      n = n * 10 + (unsigned)(*s - '0');
    }
    *out = (size_t)n;
    return 0;
  }
  return fail(w, where, "must be an integer");
}

static int get_code(walker *w, json_t *v, const char *where, int *code) {
  int i;
  if (json_is_integer(v)) {
    json_int_t n = json_integer_value(v);
    if (n < 1 || n > 16) return fail(w, where, "%lld is not a status code 1..16", (long long)n);
    *code = (int)n;
    return 0;
  }
  if (!json_is_string(v)) return fail(w, where, "must be a status code name or number");
  for (i = 1; i <= 16; i++) {
    if (strcmp(json_string_value(v), status_names[i]) == 0) {
      *code = i;
      return 0;
    }
  }
  if (strcmp(json_string_value(v), "OK") == 0) return fail(w, where, "OK cannot be retried");
  return fail(w, where, "unknown status code \"%s\"", json_string_value(v));
}

static int walk_retry(walker *w, json_t *o, const char where[80],
                      const sgrpc_retry_policy **out) {
  sgrpc_retry_policy scratch, *rp = take(w, sizeof(*rp));
  char at[128];
  json_t *v;
  size_t i;
  int rv;
  if (!rp) rp = &scratch;
  memset(rp, 0, sizeof(*rp));
  if (!json_is_object(o)) return fail(w, where, "must be an object");
  snprintf(at, sizeof(at), "%s.maxAttempts", where);
  v = json_object_get(o, "maxAttempts");
  if (!v) return fail(w, at, "required");
  if (!json_is_integer(v) || json_integer_value(v) < 2)
    return fail(w, at, "must be an integer >= 2");
  rp->max_attempts = json_integer_value(v) > SGRPC_SERVICE_CONFIG_MAX_ATTEMPTS
                         ? SGRPC_SERVICE_CONFIG_MAX_ATTEMPTS
                         : (int)json_integer_value(v);
  snprintf(at, sizeof(at), "%s.initialBackoff", where);
  v = json_object_get(o, "initialBackoff");
  if (!v) return fail(w, at, "required");
  if ((rv = get_duration(w, v, at, 1, &rp->initial_backoff)) < 0) return rv;
  snprintf(at, sizeof(at), "%s.maxBackoff", where);
  v = json_object_get(o, "maxBackoff");
  if (!v) return fail(w, at, "required");
  if ((rv = get_duration(w, v, at, 1, &rp->max_backoff)) < 0) return rv;
  snprintf(at, sizeof(at), "%s.backoffMultiplier", where);
  v = json_object_get(o, "backoffMultiplier");
  if (!v) return fail(w, at, "required");
  if (!json_is_number(v) || !(json_number_value(v) > 0))
    return fail(w, at, "must be a number > 0");
  rp->backoff_multiplier = json_number_value(v);
  snprintf(at, sizeof(at), "%s.retryableStatusCodes", where);
  v = json_object_get(o, "retryableStatusCodes");
  if (!v) return fail(w, at, "required");
  if (!json_is_array(v) || json_array_size(v) == 0)
    return fail(w, at, "must be a non-empty array");
  for (i = 0; i < json_array_size(v); i++) {
    char at2[160];
    int code = 0;
    snprintf(at2, sizeof(at2), "%s[%zu]", at, i);
    if ((rv = get_code(w, json_array_get(v, i), at2, &code)) < 0) return rv;
    rp->retryable_codes |= 1u << code;
  }
  *out = rp;
  return 0;
}

static int walk_method(walker *w, json_t *o, size_t idx, sgrpc_method_config *mc) {
  char where[64], at[160];
  json_t *v, *names;
  size_t i;
  int rv;
  snprintf(where, sizeof(where), "methodConfig[%zu]", idx);
  memset(mc, 0, sizeof(*mc));
  if (!json_is_object(o)) return fail(w, where, "must be an object");
  names = json_object_get(o, "name");
  snprintf(at, sizeof(at), "%s.name", where);
  if (!names) return fail(w, at, "required");
  if (!json_is_array(names) || json_array_size(names) == 0)
    return fail(w, at, "must be a non-empty array");
  {
    sgrpc_method_name *nm = take(w, json_array_size(names) * sizeof(*nm));
    for (i = 0; i < json_array_size(names); i++) {
      json_t *n = json_array_get(names, i), *sv, *mv;
      sgrpc_method_name scratch, *e = nm ? &nm[i] : &scratch;
      snprintf(at, sizeof(at), "%s.name[%zu]", where, i);
      if (!json_is_object(n)) return fail(w, at, "must be an object");
      sv = json_object_get(n, "service");
      mv = json_object_get(n, "method");
      if ((sv && !json_is_string(sv)) || (mv && !json_is_string(mv)))
        return fail(w, at, "service and method must be strings");
      e->service = take_str(w, sv ? json_string_value(sv) : "");
      e->method = mv && *json_string_value(mv) ? take_str(w, json_string_value(mv)) : NULL;
      if (!*e->service && e->method) return fail(w, at, "a method needs a service");
    }
    mc->names = nm;
    mc->names_count = json_array_size(names);
  }
  if ((v = json_object_get(o, "timeout"))) {
    snprintf(at, sizeof(at), "%s.timeout", where);
    if ((rv = get_duration(w, v, at, 0, &mc->timeout)) < 0) return rv;
  }
  if ((v = json_object_get(o, "waitForReady"))) {
    snprintf(at, sizeof(at), "%s.waitForReady", where);
    if (!json_is_boolean(v)) return fail(w, at, "must be true or false");
    mc->wait_for_ready = json_is_true(v) ? 1 : -1;
  }
  if ((v = json_object_get(o, "maxRequestMessageBytes"))) {
    snprintf(at, sizeof(at), "%s.maxRequestMessageBytes", where);
    if ((rv = get_size(w, v, at, &mc->max_request_message_bytes)) < 0) return rv;
  }
  if ((v = json_object_get(o, "maxResponseMessageBytes"))) {
    snprintf(at, sizeof(at), "%s.maxResponseMessageBytes", where);
    if ((rv = get_size(w, v, at, &mc->max_response_message_bytes)) < 0) return rv;
  }
  if ((v = json_object_get(o, "retryPolicy")) && !json_is_null(v)) {
    char rp_at[80];
    snprintf(rp_at, sizeof(rp_at), "%s.retryPolicy", where);
    if ((rv = walk_retry(w, v, rp_at, &mc->retry_policy)) < 0) return rv;
  }
  return 0;
}

/* loadBalancingConfig: [{"policy_name": {...}}, ...]; the first known. */
static int walk_lb(walker *w, json_t *root, const char **out) {
  json_t *v = json_object_get(root, "loadBalancingConfig");
  size_t i;
  if (v) {
    if (!json_is_array(v)) return fail(w, "loadBalancingConfig", "must be an array");
    for (i = 0; i < json_array_size(v); i++) {
      json_t *e = json_array_get(v, i);
      const char *key;
      char at[64];
      snprintf(at, sizeof(at), "loadBalancingConfig[%zu]", i);
      if (!json_is_object(e) || json_object_size(e) != 1)
        return fail(w, at, "must be an object with exactly one policy name");
      key = json_object_iter_key(json_object_iter(e));
      if (!json_is_object(json_object_get(e, key)))
        return fail(w, at, "the config of \"%s\" must be an object", key);
      if (strcmp(key, "pick_first") == 0 || strcmp(key, "round_robin") == 0) {
        *out = strcmp(key, "pick_first") == 0 ? "pick_first" : "round_robin";
        return 0;
      }
    }
    if (json_array_size(v))
      return fail(w, "loadBalancingConfig", "no supported policy (pick_first, round_robin)");
  }
  v = json_object_get(root, "loadBalancingPolicy");
  if (v) {
    if (!json_is_string(v)) return fail(w, "loadBalancingPolicy", "must be a string");
    if (strcasecmp(json_string_value(v), "pick_first") == 0) *out = "pick_first";
    else if (strcasecmp(json_string_value(v), "round_robin") == 0) *out = "round_robin";
    else
      return fail(w, "loadBalancingPolicy", "unknown policy \"%s\"", json_string_value(v));
  }
  return 0;
}

static int walk(walker *w, json_t *root, sgrpc_service_config *cfg) {
  json_t *v;
  size_t i;
  int rv;
  memset(cfg, 0, sizeof(*cfg));
  if (!json_is_object(root)) return fail(w, "service config", "must be a JSON object");
  if ((rv = walk_lb(w, root, &cfg->lb_policy)) < 0) return rv;
  v = json_object_get(root, "methodConfig");
  if (v) {
    sgrpc_method_config *mcs;
    if (!json_is_array(v)) return fail(w, "methodConfig", "must be an array");
    mcs = take(w, json_array_size(v) * sizeof(*mcs));
    for (i = 0; i < json_array_size(v); i++) {
      sgrpc_method_config scratch;
      if ((rv = walk_method(w, json_array_get(v, i), i, mcs ? &mcs[i] : &scratch)) < 0)
        return rv;
    }
    cfg->methods = mcs;
    cfg->methods_count = json_array_size(v);
  }
  v = json_object_get(root, "retryThrottling");
  if (v) {
    sgrpc_retry_throttling scratch, *t = take(w, sizeof(*t));
    json_t *mt, *tr;
    if (!t) t = &scratch;
    if (!json_is_object(v)) return fail(w, "retryThrottling", "must be an object");
    mt = json_object_get(v, "maxTokens");
    tr = json_object_get(v, "tokenRatio");
    if (!mt) return fail(w, "retryThrottling.maxTokens", "required");
    if (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 1000)
      return fail(w, "retryThrottling.maxTokens", "must be an integer in 1..1000");
    if (!tr) return fail(w, "retryThrottling.tokenRatio", "required");
    if (!json_is_number(tr) || !(json_number_value(tr) > 0))
      return fail(w, "retryThrottling.tokenRatio", "must be a number > 0");
    t->max_tokens = (uint32_t)json_integer_value(mt);
    t->token_ratio = json_number_value(tr);
    cfg->retry_throttling = t;
  }
  return 0;
}

static int same_str(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

/* gRPC refuses a config that names one service/method twice. */
static int check_duplicates(walker *w, const sgrpc_service_config *cfg) {
  size_t i, j, k, l;
  for (i = 0; i < cfg->methods_count; i++)
    for (j = 0; j < cfg->methods[i].names_count; j++) {
      const sgrpc_method_name *a = &cfg->methods[i].names[j];
      for (k = i; k < cfg->methods_count; k++)
        for (l = (k == i ? j + 1 : 0); l < cfg->methods[k].names_count; l++) {
          const sgrpc_method_name *b = &cfg->methods[k].names[l];
          if (same_str(a->service, b->service) && same_str(a->method, b->method)) {
            char at[96];
            snprintf(at, sizeof(at), "methodConfig[%zu].name[%zu]", k, l);
            return fail(w, at, "duplicate name (service \"%s\", method \"%s\")", b->service,
                        b->method ? b->method : "");
          }
        }
    }
  return 0;
}

int sgrpc_service_config_parse(const char *json, size_t len, const sgrpc_mem *mem,
                               sgrpc_service_config **pcfg, char *err, size_t err_len) {
  walker w;
  json_error_t jerr;
  json_t *root;
  sgrpc_service_config scratch;
  cfg_block *blk;
  sgrpc_mem m;
  int rv;
  memset(&w, 0, sizeof(w));
  w.err = err;
  w.err_len = err_len;
  if (err && err_len) err[0] = 0;
  if (!json || !pcfg) return fail(&w, "service config", "no text or no result pointer");
  if (sgrpc_mem_resolve(&m, mem) != 0) return fail(&w, "service config", "incomplete allocator");
  root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return fail(&w, "service config", "invalid JSON at line %d column %d: %s", jerr.line,
                jerr.column, jerr.text);
  /* pass 1: validate and measure */
  w.off = sizeof(cfg_block);
  rv = walk(&w, root, &scratch);
  if (rv < 0) {
    json_decref(root);
    return rv;
  }
  blk = m.malloc(w.off, m.user_data);
  if (!blk) {
    json_decref(root);
    if (err && err_len) snprintf(err, err_len, "service config: out of memory");
    return SGRPC_ERR_NOMEM;
  }
  /* pass 2: the same walk, writing into the block */
  w.filling = 1;
  w.base = (uint8_t *)blk;
  w.off = sizeof(cfg_block);
  blk->mem = m;
  rv = walk(&w, root, &blk->cfg);
  json_decref(root);
  if (rv == 0) rv = check_duplicates(&w, &blk->cfg);
  if (rv < 0) {
    m.free(blk, m.user_data);
    return rv;
  }
  *pcfg = &blk->cfg;
  return 0;
}

void sgrpc_service_config_free(sgrpc_service_config *cfg) {
  cfg_block *blk;
  sgrpc_mem m;
  if (!cfg) return;
  blk = (cfg_block *)(void *)((uint8_t *)cfg - offsetof(cfg_block, cfg));
  m = blk->mem;
  m.free(blk, m.user_data);
}
