/*
 * fuzz_protoc: protoc-gen-sgrpc fed arbitrary CodeGeneratorRequest bytes
 * through sgrpc_plugin_run (codegen/src/protoc-gen-sgrpc.c, compiled into
 * this target without its main). The response must be a
 * CodeGeneratorResponse that protobuf-c parses back; a request that is not
 * one gets exit code 1 and an error response, never a crash. Every file
 * it asks protoc to write has a relative name that stays inside the
 * output directory (no "..", no leading '/'), whatever the request says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

int sgrpc_plugin_run(const uint8_t *input, size_t len, uint8_t **out, size_t *out_len,
                     FILE *diag);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *out = NULL;
  size_t out_len = 0;
  Google__Protobuf__Compiler__CodeGeneratorResponse *resp;
  int rc;
  size_t i;
  /* no diagnostics stream: the error is in the response, checked below */
  rc = sgrpc_plugin_run(data, size, &out, &out_len, NULL);
  resp = google__protobuf__compiler__code_generator_response__unpack(NULL, out_len, out);
  if (!resp) abort(); /* the plugin wrote a response protoc cannot read */
  if (rc != 0 && !resp->error) abort(); /* a failure must say why */
  for (i = 0; i < resp->n_file; i++) {
    const char *name = resp->file[i]->name, *p;
    if (!name || !name[0] || name[0] == '/') abort();
    for (p = name; *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : p + strlen(p))
      if (p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0')) abort();
  }
  google__protobuf__compiler__code_generator_response__free_unpacked(resp, NULL);
  free(out);
  return 0;
}
