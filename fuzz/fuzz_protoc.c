/*
 * fuzz_protoc: protoc-gen-sgrpc fed arbitrary CodeGeneratorRequest bytes
 * through sgrpc_plugin_run (codegen/src/protoc-gen-sgrpc.c, compiled into
 * this target without its main). The response must be a
 * CodeGeneratorResponse that protobuf-c parses back; a request that is not
 * one gets exit code 1 and an error response, never a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

int sgrpc_plugin_run(const uint8_t *input, size_t len, uint8_t **out, size_t *out_len,
                     FILE *diag);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out = NULL;
  size_t out_len = 0;
  Google__Protobuf__Compiler__CodeGeneratorResponse *resp;
  int rc;
  /* no diagnostics stream: the error is in the response, checked below */
  rc = sgrpc_plugin_run(data, size, &out, &out_len, NULL);
  resp = google__protobuf__compiler__code_generator_response__unpack(NULL, out_len, out);
  if (!resp) abort(); /* the plugin wrote a response protoc cannot read */
  if (rc != 0 && !resp->error) abort(); /* a failure must say why */
  google__protobuf__compiler__code_generator_response__free_unpacked(resp, NULL);
  free(out);
  return 0;
}
