/*
 * <sgrpc/service_fuzz.h>: the harness itself. Correct handlers pass any
 * script; a handler that never ends its stream, a registration that
 * fails and a bad target are reported; runs are deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <sgrpc/service_fuzz.h>

#include "planted.sgrpc.h"

/* PairSum done right: an odd last value counts alone */
static void pair_sum_ok(sgrpc_server_call *call, const Planted__Batch *req, void *ud) {
  Planted__Sum sum = PLANTED__SUM__INIT;
  size_t i;
  (void)ud;
  for (i = 0; i + 1 < req->n_values; i += 2)
    sum.total += (int64_t)req->values[i] * req->values[i + 1];
  if (req->n_values % 2) sum.total += req->values[req->n_values - 1];
  (void)sgrpc_server_call_reply(call, &sum);
}

/* Count that never finishes: sends until the buffer is full, then again
 * from every on_writable */
static void count_fill(sgrpc_server_call *call) {
  Planted__Sum sum = PLANTED__SUM__INIT;
  sum.total = 123456789;
  while (sgrpc_server_call_send(call, &sum) == 0) {
  }
}
static void count_forever(sgrpc_server_call *call, const Planted__Batch *req, void *ud) {
  (void)req;
  (void)ud;
  count_fill(call);
}
static void count_writable(sgrpc_server_call *call, void *ud) {
  (void)ud;
  count_fill(call);
}

static int resets;
static void count_resets(void *ctx) {
  (void)ctx;
  resets++;
}

static int register_ok(sgrpc_router *router, void *ctx) {
  static Planted__Summer_SgrpcServer impl;
  (void)ctx;
  memset(&impl, 0, sizeof(impl));
  impl.pair_sum = pair_sum_ok;
  return planted__summer__sgrpc_register(router, &impl, NULL);
}

static int register_forever(sgrpc_router *router, void *ctx) {
  static Planted__Summer_SgrpcServer impl;
  (void)ctx;
  memset(&impl, 0, sizeof(impl));
  impl.pair_sum = pair_sum_ok;
  impl.count = count_forever;
  impl.on_writable = count_writable;
  return planted__summer__sgrpc_register(router, &impl, NULL);
}

static int register_fails(sgrpc_router *router, void *ctx) {
  (void)router;
  (void)ctx;
  return SGRPC_ERR_NOMEM;
}

static const sgrpc_service_desc *const services[] = {&planted__summer__sgrpc_service};

static sgrpc_service_fuzz_target target(sgrpc_service_fuzz_register_fn fn) {
  sgrpc_service_fuzz_target t;
  memset(&t, 0, sizeof(t));
  t.services = services;
  t.n_services = 1;
  t.register_handlers = fn;
  t.reset = count_resets;
  return t;
}

/* start PairSum (method 0) with values {3, 4, 5} (one presence byte, a
 * count byte of 3, three "raw one byte" numbers), tag absent, then run */
static const uint8_t pair_sum_script[] = {0, 0, 0, 1, 3, 0x06, 3, 0x06, 4, 0x06, 5, 0, 0, 5};
/* start Count (method 1) with an empty Batch, then run */
static const uint8_t count_script[] = {0, 1, 0, 0, 0, 0, 5};

static void test_correct_handlers_pass(void **state) {
  sgrpc_service_fuzz_target t = target(register_ok);
  char why[256];
  uint8_t buf[512];
  uint64_t x = 7;
  int i, n;
  (void)state;
  resets = 0;
  assert_int_equal(sgrpc_service_fuzz_run(&t, pair_sum_script, sizeof(pair_sum_script), why,
                                          sizeof(why)),
                   0);
  assert_string_equal(why, "");
  assert_int_equal(resets, 1);
  /* Count is not implemented here: UNIMPLEMENTED is a status like any */
  assert_int_equal(sgrpc_service_fuzz_run(&t, count_script, sizeof(count_script), why, sizeof(why)),
                   0);
  assert_int_equal(sgrpc_service_fuzz_run(&t, NULL, 0, why, sizeof(why)), 0);
  /* pseudo-random scripts */
  for (i = 0; i < 300; i++) {
    int len;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    len = (int)(x % sizeof(buf));
    for (n = 0; n < len; n++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[n] = (uint8_t)x;
    }
    assert_int_equal(sgrpc_service_fuzz_run(&t, buf, (size_t)len, why, sizeof(why)), 0);
  }
  assert_int_equal(resets, 303);
}

static void test_endless_stream_is_reported(void **state) {
  sgrpc_service_fuzz_target t = target(register_forever);
  sgrpc_settings server;
  char why[256];
  (void)state;
  /* a small send buffer keeps each of the 10000 rounds short */
  sgrpc_settings_default(&server);
  server.max_send_buffer = 256;
  t.server_settings = &server;
  assert_int_equal(sgrpc_service_fuzz_run(&t, count_script, sizeof(count_script), why, sizeof(why)),
                   SGRPC_SERVICE_FUZZ_VIOLATION);
  assert_non_null(strstr(why, "still busy"));
  /* the same handlers pass a script that never calls Count */
  assert_int_equal(sgrpc_service_fuzz_run(&t, pair_sum_script, sizeof(pair_sum_script), why,
                                          sizeof(why)),
                   0);
}

static void test_registration_failure_is_reported(void **state) {
  sgrpc_service_fuzz_target t = target(register_fails);
  char why[256];
  (void)state;
  assert_int_equal(sgrpc_service_fuzz_run(&t, pair_sum_script, sizeof(pair_sum_script), why,
                                          sizeof(why)),
                   SGRPC_SERVICE_FUZZ_VIOLATION);
  assert_non_null(strstr(why, "register_handlers returned"));
  /* why may be NULL */
  assert_int_equal(sgrpc_service_fuzz_run(&t, pair_sum_script, sizeof(pair_sum_script), NULL, 0),
                   SGRPC_SERVICE_FUZZ_VIOLATION);
}

static void test_bad_target(void **state) {
  sgrpc_service_fuzz_target t = target(register_ok);
  char why[16];
  (void)state;
  assert_int_equal(sgrpc_service_fuzz_run(NULL, NULL, 0, why, sizeof(why)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  t.n_services = 0;
  assert_int_equal(sgrpc_service_fuzz_run(&t, NULL, 0, why, sizeof(why)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  t = target(NULL);
  assert_int_equal(sgrpc_service_fuzz_run(&t, NULL, 0, why, sizeof(why)),
                   SGRPC_ERR_INVALID_ARGUMENT);
  t = target(register_ok);
  assert_int_equal(sgrpc_service_fuzz_run(&t, NULL, 5, why, sizeof(why)),
                   SGRPC_ERR_INVALID_ARGUMENT);
}

/* main() of a build without libFuzzer: files, directories, -runs */
static void test_main(void **state) {
  sgrpc_service_fuzz_target t = target(register_ok);
  char *usage[] = {"x", "-bogus", NULL};
  char *missing[] = {"x", "/nonexistent/sgrpc-service-fuzz", NULL};
  char *runs[] = {"x", "-runs=50", "-seed=3", "-max_len=64", NULL};
  (void)state;
  assert_int_equal(sgrpc_service_fuzz_main(&t, 2, usage), 2);
  assert_int_equal(sgrpc_service_fuzz_main(&t, 2, missing), 2);
  assert_int_equal(sgrpc_service_fuzz_main(&t, 4, runs), 0);
  t = target(register_fails);
  assert_int_equal(sgrpc_service_fuzz_main(&t, 4, runs), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_correct_handlers_pass),
      cmocka_unit_test(test_endless_stream_is_reported),
      cmocka_unit_test(test_registration_failure_is_reported),
      cmocka_unit_test(test_bad_target),
      cmocka_unit_test(test_main),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
