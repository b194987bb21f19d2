/*
 * fuzz_service_config: arbitrary bytes into the service config JSON parser
 * (<sgrpc/service_config_json.h>). A parse either fails with
 * SGRPC_ERR_INVALID_ARGUMENT and a terminated message, or gives a config
 * whose values keep the documented ranges; either way nothing leaks
 * (ASan) and nothing reads past the input (the input is not terminated).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgrpc/service_config_json.h>

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz_service_config: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sgrpc_service_config *cfg = NULL;
  char err[128];
  size_t i, j;
  int rv = sgrpc_service_config_parse((const char *)data, size, NULL, &cfg, err, sizeof(err));
  if (rv != 0) {
    check(rv == SGRPC_ERR_INVALID_ARGUMENT, "unexpected error code");
    check(memchr(err, 0, sizeof(err)) != NULL && err[0] != 0, "no error message");
    check(cfg == NULL, "result set on error");
    return 0;
  }
  check(!cfg->lb_policy || strcmp(cfg->lb_policy, "pick_first") == 0 ||
            strcmp(cfg->lb_policy, "round_robin") == 0,
        "unknown lb policy kept");
  for (i = 0; i < cfg->methods_count; i++) {
    const sgrpc_method_config *m = &cfg->methods[i];
    const sgrpc_retry_policy *p = m->retry_policy;
    check(m->names_count > 0, "method config without names");
    for (j = 0; j < m->names_count; j++)
      check(m->names[j].service != NULL, "name without service string");
    check(m->timeout >= 0, "negative timeout");
    check(m->wait_for_ready >= -1 && m->wait_for_ready <= 1, "waitForReady out of range");
    if (p) {
      check(p->max_attempts >= 2 && p->max_attempts <= SGRPC_SERVICE_CONFIG_MAX_ATTEMPTS,
            "maxAttempts out of range");
      check(p->initial_backoff > 0 && p->max_backoff > 0, "backoff not positive");
      check(p->backoff_multiplier > 0, "multiplier not positive");
      check(p->retryable_codes != 0 && !(p->retryable_codes & 1u), "bad retryable codes");
    }
  }
  if (cfg->retry_throttling)
    check(cfg->retry_throttling->max_tokens >= 1 && cfg->retry_throttling->max_tokens <= 1000 &&
              cfg->retry_throttling->token_ratio > 0,
          "throttling out of range");
  sgrpc_service_config_free(cfg);
  return 0;
}
