/*
 * Service config JSON (<sgrpc/service_config_json.h>): a table of valid
 * configs checked field by field, a table of invalid ones checked for
 * the field their message names, and allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <sgrpc/service_config_json.h>

#include "support.h"

#define SEC 1000000000LL

static sgrpc_service_config *parse_ok(const char *json) {
  sgrpc_service_config *cfg = NULL;
  char err[256];
  int rv = sgrpc_service_config_parse(json, strlen(json), NULL, &cfg, err, sizeof(err));
  if (rv != 0) fail_msg("parse of %s failed: %d %s", json, rv, err);
  assert_non_null(cfg);
  return cfg;
}

static void test_full_config(void **state) {
  static const char json[] =
      "{\"loadBalancingConfig\": [{\"grpclb\": {}}, {\"round_robin\": {}}, {\"pick_first\": {}}],"
      " \"methodConfig\": [{"
      "   \"name\": [{\"service\": \"pkg.Echo\", \"method\": \"Say\"}, {\"service\": \"pkg.Other\"}],"
      "   \"timeout\": \"1.5s\", \"waitForReady\": true,"
      "   \"maxRequestMessageBytes\": 1024, \"maxResponseMessageBytes\": \"2048\","
      "   \"retryPolicy\": {\"maxAttempts\": 4, \"initialBackoff\": \"0.1s\","
      "     \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2,"
      "     \"retryableStatusCodes\": [\"UNAVAILABLE\", 4, \"ABORTED\"]}"
      " }, {\"name\": [{}], \"waitForReady\": false, \"timeout\": \"0.000000001s\"}],"
      " \"retryThrottling\": {\"maxTokens\": 10, \"tokenRatio\": 0.1}}";
  sgrpc_service_config *cfg = parse_ok(json);
  const sgrpc_method_config *m;
  (void)state;
  assert_string_equal(cfg->lb_policy, "round_robin"); /* grpclb unknown: skipped */
  assert_int_equal(cfg->methods_count, 2);
  m = &cfg->methods[0];
  assert_int_equal(m->names_count, 2);
  assert_string_equal(m->names[0].service, "pkg.Echo");
  assert_string_equal(m->names[0].method, "Say");
  assert_string_equal(m->names[1].service, "pkg.Other");
  assert_null(m->names[1].method);
  assert_int_equal(m->timeout, 1500000000LL);
  assert_int_equal(m->wait_for_ready, 1);
  assert_int_equal(m->max_request_message_bytes, 1024);
  assert_int_equal(m->max_response_message_bytes, 2048);
  assert_non_null(m->retry_policy);
  assert_int_equal(m->retry_policy->max_attempts, 4);
  assert_int_equal(m->retry_policy->initial_backoff, SEC / 10);
  assert_int_equal(m->retry_policy->max_backoff, SEC);
  assert_true(m->retry_policy->backoff_multiplier == 2.0);
  assert_int_equal(m->retry_policy->retryable_codes,
                   (1u << SGRPC_STATUS_UNAVAILABLE) | (1u << SGRPC_STATUS_DEADLINE_EXCEEDED) |
                       (1u << SGRPC_STATUS_ABORTED));
  m = &cfg->methods[1];
  assert_string_equal(m->names[0].service, "");
  assert_null(m->names[0].method);
  assert_int_equal(m->wait_for_ready, -1);
  assert_int_equal(m->timeout, 1);
  assert_null(m->retry_policy);
  assert_non_null(cfg->retry_throttling);
  assert_int_equal(cfg->retry_throttling->max_tokens, 10);
  assert_true(cfg->retry_throttling->token_ratio > 0.0999 &&
              cfg->retry_throttling->token_ratio < 0.1001);
  sgrpc_service_config_free(cfg);
}

/* Small valid configs: one property each. */
typedef struct valid_case {
  const char *json;
  const char *lb;          /* expected lb_policy (NULL: none) */
  size_t methods;
  int64_t timeout0;        /* methods[0].timeout when methods > 0 */
  int max_attempts0;       /* methods[0] retry policy's, 0: no policy */
} valid_case;

static const valid_case valid_cases[] = {
    {"{}", NULL, 0, 0, 0},
    {"{\"loadBalancingPolicy\": \"ROUND_ROBIN\"}", "round_robin", 0, 0, 0},
    {"{\"loadBalancingPolicy\": \"pick_first\"}", "pick_first", 0, 0, 0},
    {"{\"loadBalancingConfig\": [{\"pick_first\": {\"shuffleAddressList\": true}}],"
     " \"loadBalancingPolicy\": \"round_robin\"}", "pick_first", 0, 0, 0},
    {"{\"loadBalancingConfig\": []}", NULL, 0, 0, 0},
    {"{\"methodConfig\": []}", NULL, 0, 0, 0},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"timeout\": \"10s\"}]}", NULL, 1,
     10 * SEC, 0},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"timeout\": \"0s\"}]}", NULL, 1, 0, 0},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"timeout\": \"0.25s\"}]}", NULL, 1,
     SEC / 4, 0},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\", \"method\": \"\"}],"
     " \"timeout\": \"3.000000001s\"}]}", NULL, 1, 3 * SEC + 1, 0},
    /* maxAttempts above 5 is lowered to 5 (gRFC A6) */
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"retryPolicy\": {\"maxAttempts\": 9,"
     " \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", \"backoffMultiplier\": 1.5,"
     " \"retryableStatusCodes\": [14]}}]}", NULL, 1, 0, 5},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"retryPolicy\": {\"maxAttempts\": 2,"
     " \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", \"backoffMultiplier\": 1,"
     " \"retryableStatusCodes\": [\"UNAUTHENTICATED\"]}}]}", NULL, 1, 0, 2},
    /* unknown fields are ignored; a null retryPolicy is none */
    {"{\"healthCheckConfig\": {\"serviceName\": \"x\"}, \"methodConfig\": [{\"name\": [{}],"
     " \"hedgingPolicy\": {}, \"retryPolicy\": null}]}", NULL, 1, 0, 0},
    /* the same service/method in one name list as service-wide: distinct */
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"a\"}, {\"service\": \"a\", \"method\": \"m\"}]}]}",
     NULL, 1, 0, 0},
    {"{\"retryThrottling\": {\"maxTokens\": 1000, \"tokenRatio\": 1}}", NULL, 0, 0, 0},
};

static void test_valid_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
    const valid_case *c = &valid_cases[i];
    sgrpc_service_config *cfg = parse_ok(c->json);
    if (c->lb) assert_string_equal(cfg->lb_policy, c->lb);
    else assert_null(cfg->lb_policy);
    assert_int_equal(cfg->methods_count, c->methods);
    if (c->methods) {
      assert_int_equal(cfg->methods[0].timeout, c->timeout0);
      if (c->max_attempts0) {
        assert_non_null(cfg->methods[0].retry_policy);
        assert_int_equal(cfg->methods[0].retry_policy->max_attempts, c->max_attempts0);
      } else {
        assert_null(cfg->methods[0].retry_policy);
      }
    }
    sgrpc_service_config_free(cfg);
  }
}

/* Invalid configs and a piece of the message they must get. */
typedef struct invalid_case {
  const char *json;
  const char *msg;
} invalid_case;

#define RP(body) \
  "{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}], \"retryPolicy\": {" body "}}]}"
#define RP_OK_BUT(field) RP(field)

static const invalid_case invalid_cases[] = {
    {"", "invalid JSON"},
    {"{", "invalid JSON"},
    {"[]", "must be a JSON object"},
    {"{\"a\": 1, \"a\": 2}", "invalid JSON"}, /* duplicate keys */
    {"{\"loadBalancingPolicy\": 3}", "loadBalancingPolicy: must be a string"},
    {"{\"loadBalancingPolicy\": \"grpclb\"}", "loadBalancingPolicy: unknown policy"},
    {"{\"loadBalancingConfig\": {}}", "loadBalancingConfig: must be an array"},
    {"{\"loadBalancingConfig\": [{\"xds\": {}}]}", "no supported policy"},
    {"{\"loadBalancingConfig\": [{\"pick_first\": {}, \"round_robin\": {}}]}",
     "loadBalancingConfig[0]: must be an object with exactly one"},
    {"{\"loadBalancingConfig\": [{\"round_robin\": []}]}", "loadBalancingConfig[0]"},
    {"{\"methodConfig\": {}}", "methodConfig: must be an array"},
    {"{\"methodConfig\": [3]}", "methodConfig[0]: must be an object"},
    {"{\"methodConfig\": [{}]}", "methodConfig[0].name: required"},
    {"{\"methodConfig\": [{\"name\": []}]}", "methodConfig[0].name: must be a non-empty array"},
    {"{\"methodConfig\": [{\"name\": [\"s\"]}]}", "methodConfig[0].name[0]: must be an object"},
    {"{\"methodConfig\": [{\"name\": [{\"service\": 1}]}]}", "must be strings"},
    {"{\"methodConfig\": [{\"name\": [{\"method\": \"m\"}]}]}", "a method needs a service"},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}]}, {\"name\": [{\"service\": \"s\"}]}]}",
     "methodConfig[1].name[0]: duplicate name"},
    {"{\"methodConfig\": [{\"name\": [{}, {}]}]}", "methodConfig[0].name[1]: duplicate"},
    {"{\"methodConfig\": [{\"name\": [{\"service\": \"s\", \"method\": \"m\"}]},"
     " {\"name\": [{\"service\": \"s\", \"method\": \"m\"}]}]}", "duplicate"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": 1}]}", "methodConfig[0].timeout: must be a duration"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"1\"}]}", "is not a duration"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"1.s\"}]}", "is not a duration"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"1.0000000001s\"}]}", "is not a duration"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"1ms\"}]}", "is not a duration"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"-1s\"}]}", "must not be negative"},
    {"{\"methodConfig\": [{\"name\": [{}], \"timeout\": \"99999999999999s\"}]}", "too large"},
    {"{\"methodConfig\": [{\"name\": [{}], \"waitForReady\": \"yes\"}]}",
     "waitForReady: must be true or false"},
    {"{\"methodConfig\": [{\"name\": [{}], \"maxRequestMessageBytes\": -1}]}",
     "maxRequestMessageBytes: must not be negative"},
    {"{\"methodConfig\": [{\"name\": [{}], \"maxResponseMessageBytes\": 1.5}]}",
     "maxResponseMessageBytes: must be an integer"},
    {"{\"methodConfig\": [{\"name\": [{}], \"maxResponseMessageBytes\": \"12a\"}]}",
     "maxResponseMessageBytes: must be an integer"},
    {"{\"methodConfig\": [{\"name\": [{}], \"retryPolicy\": 1}]}", "retryPolicy: must be an object"},
    {RP("\"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2,"
        " \"retryableStatusCodes\": [14]"), "maxAttempts: required"},
    {RP("\"maxAttempts\": 1, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
     "methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2"},
    {RP("\"maxAttempts\": 2.5, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"), "maxAttempts"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"0s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
     "initialBackoff: must be greater than 0"},
    {RP("\"maxAttempts\": 3, \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"), "initialBackoff: required"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"0.0s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
     "maxBackoff: must be greater than 0"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 0, \"retryableStatusCodes\": [14]"),
     "backoffMultiplier: must be a number > 0"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": \"2\", \"retryableStatusCodes\": [14]"), "backoffMultiplier"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2"), "retryableStatusCodes: required"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": []"),
     "retryableStatusCodes: must be a non-empty array"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\", \"BOGUS\"]"),
     "retryableStatusCodes[1]: unknown status code \"BOGUS\""},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [17]"), "not a status code"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"OK\"]"), "OK cannot be retried"},
    {RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"1s\","
        " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [true]"),
     "must be a status code name or number"},
    {"{\"retryThrottling\": 1}", "retryThrottling: must be an object"},
    {"{\"retryThrottling\": {\"tokenRatio\": 1}}", "retryThrottling.maxTokens: required"},
    {"{\"retryThrottling\": {\"maxTokens\": 0, \"tokenRatio\": 1}}", "maxTokens: must be an integer in 1..1000"},
    {"{\"retryThrottling\": {\"maxTokens\": 1001, \"tokenRatio\": 1}}", "maxTokens"},
    {"{\"retryThrottling\": {\"maxTokens\": 10}}", "retryThrottling.tokenRatio: required"},
    {"{\"retryThrottling\": {\"maxTokens\": 10, \"tokenRatio\": -0.5}}",
     "tokenRatio: must be a number > 0"},
};

static void test_invalid_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
    const invalid_case *c = &invalid_cases[i];
    sgrpc_service_config *cfg = (sgrpc_service_config *)(uintptr_t)1;
    char err[256];
    int rv = sgrpc_service_config_parse(c->json, strlen(c->json), NULL, &cfg, err, sizeof(err));
    if (rv != SGRPC_ERR_INVALID_ARGUMENT || !strstr(err, c->msg))
      fail_msg("case %zu %s: got %d \"%s\", want \"%s\"", i, c->json, rv, err, c->msg);
    assert_ptr_equal(cfg, (sgrpc_service_config *)(uintptr_t)1); /* untouched */
  }
}

static void test_arguments(void **state) {
  sgrpc_service_config *cfg = NULL;
  sgrpc_mem partial;
  char err[8];
  (void)state;
  assert_int_equal(sgrpc_service_config_parse(NULL, 0, NULL, &cfg, NULL, 0),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(sgrpc_service_config_parse("{}", 2, NULL, NULL, NULL, 0),
                   SGRPC_ERR_INVALID_ARGUMENT);
  memset(&partial, 0, sizeof(partial));
  assert_int_equal(sgrpc_service_config_parse("{}", 2, &partial, &cfg, NULL, 0),
                   SGRPC_ERR_INVALID_ARGUMENT);
  /* a short buffer gets a truncated, terminated message */
  assert_int_equal(sgrpc_service_config_parse("[", 1, NULL, &cfg, err, sizeof(err)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  assert_int_equal(strlen(err), sizeof(err) - 1);
  /* the length is honoured: the text need not be NUL-terminated */
  assert_int_equal(sgrpc_service_config_parse("{}garbage", 2, NULL, &cfg, NULL, 0), 0);
  sgrpc_service_config_free(cfg);
  sgrpc_service_config_free(NULL);
}

static void test_alloc_failure(void **state) {
  static const char json[] = "{\"methodConfig\": [{\"name\": [{\"service\": \"s\"}],"
                             " \"timeout\": \"2s\"}], \"loadBalancingPolicy\": \"round_robin\"}";
  failmem fm;
  sgrpc_mem mem;
  sgrpc_service_config *cfg = NULL;
  char err[64];
  (void)state;
  failmem_init(&fm, &mem);
  fm.fail_at = 1;
  assert_int_equal(sgrpc_service_config_parse(json, strlen(json), &mem, &cfg, err, sizeof(err)),
                   SGRPC_ERR_NOMEM);
  assert_null(cfg);
  assert_string_equal(err, "service config: out of memory");
  assert_int_equal(fm.live, 0);
  fm.fail_at = 0;
  assert_int_equal(sgrpc_service_config_parse(json, strlen(json), &mem, &cfg, err, sizeof(err)),
                   0);
  assert_int_equal(fm.live, 1); /* one block */
  assert_int_equal(cfg->methods[0].timeout, 2 * SEC);
  sgrpc_service_config_free(cfg);
  assert_int_equal(fm.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),   cmocka_unit_test(test_valid_table),
      cmocka_unit_test(test_invalid_table), cmocka_unit_test(test_arguments),
      cmocka_unit_test(test_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
