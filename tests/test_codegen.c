/*
 * protoc-gen-sgrpc: generated code equals the committed goldens byte for
 * byte (tests/codegen/golden, regenerate with `ninja sgrpc_update_goldens`),
 * grpc's own protos (test.proto, health.proto, reflection.proto) generate
 * code that links (this binary links it), and malformed
 * CodeGeneratorRequests (empty, truncated, garbage, mutated) get an error
 * response instead of a crash.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "clashes.sgrpc.h"
#include "helloworld.sgrpc.h"
#include "kinds.sgrpc.h"
#include "my-hyphen-file.sgrpc.h"
#include "no_package.sgrpc.h"
#ifdef SGRPC_HAVE_GRPC_PROTOS
#include "grpc/health/v1/health.sgrpc.h"
#include "grpc/reflection/v1alpha/reflection.sgrpc.h"
#include "grpc/testing/test.sgrpc.h"
#endif

#define PROTOS SGRPC_CODEGEN_DIR "/protos"
#define GOLDEN SGRPC_CODEGEN_DIR "/golden"

static const char *const golden_files[] = {
    "clashes.sgrpc.c",         "clashes.sgrpc.h",         "helloworld.sgrpc.c",
    "helloworld.sgrpc.h",      "kinds.sgrpc.c",           "kinds.sgrpc.h",
    "my-hyphen-file.sgrpc.c",  "my-hyphen-file.sgrpc.h",  "no_package.sgrpc.c",
    "no_package.sgrpc.h",      "proto3_optional.sgrpc.c", "proto3_optional.sgrpc.h",
    NULL};

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void write_file(const char *path, const uint8_t *d, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(d, 1, n, f), n);
  fclose(f);
}

static int run(const char *cmd) {
  int st = system(cmd);
  assert_int_not_equal(st, -1);
  /* never killed by a signal (crash, sanitizer abort) */
  assert_true(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void test_goldens(void **state) {
  char cmd[2048], path[1024];
  int i;
  size_t n_expected = 0;
  (void)state;
  mkdir(SGRPC_TMP_DIR, 0755);
  assert_int_equal(run("rm -rf " SGRPC_TMP_DIR "/golden && mkdir -p " SGRPC_TMP_DIR "/golden"), 0);
  snprintf(cmd, sizeof(cmd),
           "cd " PROTOS " && " SGRPC_PROTOC " --plugin=protoc-gen-sgrpc=" SGRPC_PLUGIN
           " --sgrpc_out=" SGRPC_TMP_DIR "/golden -I. *.proto common/*.proto");
  assert_int_equal(run(cmd), 0);
  for (i = 0; golden_files[i]; i++) {
    size_t la, lb;
    uint8_t *a, *b;
    snprintf(path, sizeof(path), GOLDEN "/%s", golden_files[i]);
    a = read_file(path, &la);
    snprintf(path, sizeof(path), SGRPC_TMP_DIR "/golden/%s", golden_files[i]);
    b = read_file(path, &lb);
    if (!a || !b) fail_msg("missing %s (golden %p, generated %p)", golden_files[i], (void *)a, (void *)b);
    if (la != lb || memcmp(a, b, la) != 0)
      fail_msg("%s differs from its golden (run `ninja sgrpc_update_goldens` if intended)",
               golden_files[i]);
    free(a);
    free(b);
    n_expected++;
  }
  /* nothing else is generated: files without services get no output */
  snprintf(cmd, sizeof(cmd), "test $(find " SGRPC_TMP_DIR "/golden -type f | wc -l) -eq %zu",
           n_expected);
  assert_int_equal(run(cmd), 0);
  assert_int_equal(run("test ! -e " SGRPC_TMP_DIR "/golden/common/types.sgrpc.h"), 0);
}

/* The golden code as compiled into this binary: names, paths, flags. */
static void test_generated_tables(void **state) {
  const sgrpc_method *m = sgrpc__test__kinds__calc__sgrpc_methods;
  (void)state;
  assert_int_equal(SGRPC__TEST__KINDS__CALC__SGRPC_N_METHODS, 5);
  assert_string_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_ADD_ONE].path,
                      "/sgrpc.test.kinds.Calc/AddOne");
  assert_int_equal(m[0].client_streaming, 0);
  assert_int_equal(m[0].server_streaming, 0);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_COUNT_DOWN].server_streaming, 1);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_COUNT_DOWN].client_streaming, 0);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_SUM].client_streaming, 1);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_SUM].server_streaming, 0);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_TWICE].client_streaming, 1);
  assert_int_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_TWICE].server_streaming, 1);
  assert_ptr_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_SUM].response_type,
                   &sgrpc__test__kinds__num__batch__descriptor);
  assert_ptr_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_TWICE].request_type,
                   &sgrpc__test__common_types__point__descriptor);
  assert_ptr_equal(m[SGRPC__TEST__KINDS__CALC__SGRPC_LABEL].request_type,
                   &sgrpc__test__common_types__point__label__descriptor);
  assert_ptr_equal(m[0].codec, &sgrpc_codec_protobuf);
  assert_string_equal(sgrpc__test__kinds__calc__sgrpc_service.name, "sgrpc.test.kinds.Calc");
  assert_string_equal(sgrpc__test__kinds__calc__sgrpc_service.file_name, "kinds.proto");

  /* the embedded FileDescriptorProto starts with field 1 (name) */
  {
    const uint8_t *fd = helloworld__greeter__sgrpc_service.file_descriptor;
    size_t len = helloworld__greeter__sgrpc_service.file_descriptor_len;
    assert_true(len > 20);
    assert_int_equal(fd[0], 0x0a);
    assert_int_equal(fd[1], strlen("helloworld.proto"));
    assert_memory_equal(fd + 2, "helloworld.proto", 16);
    assert_ptr_equal(fd, helloworld_2eproto__sgrpc_file_descriptor);
  }

  /* hyphenated file, several services, one without methods */
  assert_int_equal(hyphen__v1__empty__sgrpc_service.n_methods, 0);
  assert_null(hyphen__v1__empty__sgrpc_service.methods);
  assert_int_equal(HYPHEN__V1__EMPTY__SGRPC_N_METHODS, 0);
  assert_string_equal(hyphen__v1__pinger__sgrpc_methods[0].path, "/hyphen.v1.Pinger/Ping");
  assert_string_equal(hyphen__v1__pinger_stream__sgrpc_methods[0].path,
                      "/hyphen.v1.PingerStream/PingMany");
  assert_string_equal(hyphen__v1__pinger__sgrpc_service.file_name, "my-hyphen-file.proto");
  assert_ptr_equal(hyphen__v1__pinger__sgrpc_service.file_descriptor,
                   hyphen__v1__pinger_stream__sgrpc_service.file_descriptor);
  {
    sgrpc_router *r;
    Hyphen__V1__Empty_SgrpcServer empty;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(sgrpc_router_new(&r, NULL), 0);
    assert_int_equal(hyphen__v1__empty__sgrpc_register(r, &empty, NULL), 0);
    assert_int_equal(hyphen__v1__empty__sgrpc_register(NULL, &empty, NULL),
                     SGRPC_ERR_INVALID_ARGUMENT);
    sgrpc_router_del(r);
  }

  /* no package */
  assert_string_equal(bare_service__sgrpc_methods[0].path, "/BareService/Echo");
  assert_ptr_equal(bare_service__sgrpc_methods[0].request_type, &bare__descriptor);

  /* clashes got suffixes instead of breaking the build */
  assert_int_equal(CLASH__CALC__SGRPC_N_METHODS, 7);
  assert_int_equal(CLASH__CALC__SGRPC_N_METHODS_2, 5); /* method n_methods */
  assert_string_equal(clash__calc__sgrpc_methods_2[CLASH__CALC__SGRPC_N_METHODS_2].path,
                      "/clash.Calc/n_methods");
  assert_string_equal(clash__calc__sgrpc_methods_2[CLASH__CALC__SGRPC_PING_].path,
                      "/clash.Calc/Ping_");
  {
    Clash__Calc_SgrpcServer impl;
    Clash__Calc__Ping_Done d1 = NULL;
    Clash__Calc__Ping_Done_2 d2 = NULL;
    sgrpc_router *r;
    memset(&impl, 0, sizeof(impl));
    impl.on_close_2 = NULL; /* the OnClose method */
    impl.on_close = NULL;   /* the service's close hook */
    impl.on_writable = NULL;   /* the OnWritable method */
    impl.on_writable_2 = NULL; /* the service's writable hook */
    assert_int_equal(sgrpc_router_new(&r, NULL), 0);
    assert_int_equal(clash__calc__sgrpc_register_2(r, &impl, NULL), 0);
    assert_null(sgrpc_router_find(r, "/clash.Calc/Ping", 16));
    sgrpc_router_del(r);
    (void)d1;
    (void)d2;
  }
}

static void test_grpc_protos(void **state) {
  (void)state;
#ifdef SGRPC_HAVE_GRPC_PROTOS
  {
    const sgrpc_service_desc *s = &grpc__testing__test_service__sgrpc_service;
    size_t i;
    int kinds[4] = {0, 0, 0, 0};
    assert_string_equal(s->name, "grpc.testing.TestService");
    assert_int_equal(s->n_methods, GRPC__TESTING__TEST_SERVICE__SGRPC_N_METHODS);
    assert_true(s->n_methods >= 8);
    for (i = 0; i < s->n_methods; i++)
      kinds[s->methods[i].client_streaming * 2 + s->methods[i].server_streaming]++;
    assert_true(kinds[0] && kinds[1] && kinds[2] && kinds[3]);
    assert_string_equal(
        s->methods[GRPC__TESTING__TEST_SERVICE__SGRPC_FULL_DUPLEX_CALL].path,
        "/grpc.testing.TestService/FullDuplexCall");
    assert_ptr_equal(s->methods[GRPC__TESTING__TEST_SERVICE__SGRPC_EMPTY_CALL].request_type,
                     &grpc__testing__empty__descriptor);
    assert_string_equal(grpc__health__v1__health__sgrpc_methods[0].path,
                        "/grpc.health.v1.Health/Check");
    assert_int_equal(
        grpc__health__v1__health__sgrpc_methods[GRPC__HEALTH__V1__HEALTH__SGRPC_WATCH]
            .server_streaming,
        1);
    assert_string_equal(
        grpc__reflection__v1alpha__server_reflection__sgrpc_methods[0].path,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
    assert_true(grpc__reflection__v1alpha__server_reflection__sgrpc_service.file_descriptor_len >
                100);
  }
#else
  fail_msg("grpc-proto is not installed: the generated code for grpc's protos was not built");
#endif
}

/* ---- malformed requests ---- */

/* Runs the plugin on input; returns its exit status and fills *err with
 * whether the response carries an error (field 1 first, as protobuf-c
 * packs fields in number order). */
static int run_plugin(const uint8_t *in, size_t len, int *has_error, int *has_files) {
  char cmd[1024];
  uint8_t *out;
  size_t olen, i;
  int rc;
  write_file(SGRPC_TMP_DIR "/req.bin", in, len);
  /* sanitizer reports exit 77, leaks 23: neither passes as 0/1 */
  snprintf(cmd, sizeof(cmd),
           "ASAN_OPTIONS=exitcode=77 UBSAN_OPTIONS=exitcode=77 " SGRPC_PLUGIN " < " SGRPC_TMP_DIR "/req.bin > " SGRPC_TMP_DIR "/resp.bin 2>/dev/null");
  rc = run(cmd);
  assert_true(rc == 0 || rc == 1);
  out = read_file(SGRPC_TMP_DIR "/resp.bin", &olen);
  assert_non_null(out);
  *has_error = olen > 2 && out[0] == 0x0a;
  *has_files = 0;
  for (i = 0; i + 1 < olen; i++)
    if (out[i] == 0x7a && !*has_error) *has_files = 1; /* field 15 (file) */
  assert_true(olen > 0);
  free(out);
  return rc;
}

/* A real CodeGeneratorRequest for helloworld.proto, built from protoc's
 * descriptor set (FileDescriptorSet.file is field 1, the request's
 * proto_file field 15; file_to_generate is field 1). */
static uint8_t *make_request(size_t *len) {
  uint8_t *fds, *req;
  size_t flen, i = 0, o = 0;
  const char *name = "helloworld.proto";
  mkdir(SGRPC_TMP_DIR, 0755);
  assert_int_equal(run("cd " PROTOS " && " SGRPC_PROTOC " -I. --include_imports "
                       "--descriptor_set_out=" SGRPC_TMP_DIR "/hello.fds helloworld.proto"),
                   0);
  fds = read_file(SGRPC_TMP_DIR "/hello.fds", &flen);
  assert_non_null(fds);
  req = malloc(flen + 64);
  req[o++] = 0x0a;
  req[o++] = (uint8_t)strlen(name);
  memcpy(req + o, name, strlen(name));
  o += strlen(name);
  while (i < flen) {
    size_t l = 0;
    int shift = 0;
    assert_int_equal(fds[i], 0x0a);
    req[o++] = 0x7a;
    i++;
    do {
      req[o++] = fds[i];
      l |= (size_t)(fds[i] & 0x7f) << shift;
      shift += 7;
    } while (fds[i++] & 0x80);
    memcpy(req + o, fds + i, l);
    o += l;
    i += l;
  }
  free(fds);
  *len = o;
  return req;
}

static void test_malformed_requests(void **state) {
  size_t len, cut;
  uint8_t *req = make_request(&len);
  int err, files, rc, k;
  uint64_t rng = 0x1234567;
  (void)state;
  /* the well-formed request works */
  rc = run_plugin(req, len, &err, &files);
  assert_int_equal(rc, 0);
  assert_false(err);
  assert_true(files);

  /* empty */
  rc = run_plugin(req, 0, &err, &files);
  assert_true(err);
  assert_int_equal(rc, 1);

  /* garbage */
  {
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x00, 0x99};
    rc = run_plugin(garbage, sizeof(garbage), &err, &files);
    assert_true(err);
    assert_int_equal(rc, 1);
  }
  /* every truncation: some are unparseable, others miss the file */
  for (cut = 1; cut < len; cut += (cut < 40 ? 1 : 13)) {
    rc = run_plugin(req, cut, &err, &files);
    assert_true(err);
    assert_false(files);
  }
  /* an unknown input type: a .proto-level error, exit status 0 */
  {
    uint8_t *bad = malloc(len);
    uint8_t *p = NULL;
    size_t i;
    memcpy(bad, req, len);
    for (i = 0; i + 24 <= len && !p; i++)
      if (memcmp(bad + i, ".helloworld.HelloRequest", 24) == 0) p = bad + i;
    assert_non_null(p);
    p[23] = 'X';
    rc = run_plugin(bad, len, &err, &files);
    assert_int_equal(rc, 0);
    assert_true(err);
    free(bad);
  }
  /* random byte mutations: never a crash */
  for (k = 0; k < 150; k++) {
    uint8_t *bad = malloc(len);
    int j;
    memcpy(bad, req, len);
    for (j = 0; j < 1 + k % 4; j++) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      bad[rng % len] = (uint8_t)(rng >> 24);
    }
    (void)run_plugin(bad, len, &err, &files);
    free(bad);
  }
  free(req);
}

/* Two files whose names differ only in case get distinct descriptor
 * symbols (both can be linked into one program). */
static void test_file_name_case(void **state) {
  static const char up[] = "syntax = \"proto3\";\npackage up;\nmessage M {}\n"
                           "service S { rpc Go (M) returns (M); }\n";
  static const char low[] = "syntax = \"proto3\";\npackage low;\nmessage M {}\n"
                            "service S { rpc Go (M) returns (M); }\n";
  (void)state;
  mkdir(SGRPC_TMP_DIR, 0755);
  assert_int_equal(run("rm -rf " SGRPC_TMP_DIR "/case && mkdir -p " SGRPC_TMP_DIR "/case/out"), 0);
  write_file(SGRPC_TMP_DIR "/case/Dup.proto", (const uint8_t *)up, sizeof(up) - 1);
  write_file(SGRPC_TMP_DIR "/case/dup.proto", (const uint8_t *)low, sizeof(low) - 1);
  assert_int_equal(run("cd " SGRPC_TMP_DIR "/case && " SGRPC_PROTOC " --plugin=protoc-gen-sgrpc="
                       SGRPC_PLUGIN " --sgrpc_out=out -I. Dup.proto dup.proto"),
                   0);
  assert_int_equal(run("grep -q 'extern const uint8_t Dup_2eproto__sgrpc_file_descriptor\\[\\];' "
                       SGRPC_TMP_DIR "/case/out/Dup.sgrpc.h"),
                   0);
  assert_int_equal(run("grep -q 'extern const uint8_t dup_2eproto__sgrpc_file_descriptor\\[\\];' "
                       SGRPC_TMP_DIR "/case/out/dup.sgrpc.h"),
                   0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_goldens),
      cmocka_unit_test(test_generated_tables),
      cmocka_unit_test(test_grpc_protos),
      cmocka_unit_test(test_malformed_requests),
      cmocka_unit_test(test_file_name_case),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
