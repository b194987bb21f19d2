// Every public header in one C++11 translation unit, built with -std=c++11
// -pedantic -Wall -Wextra -Werror (tests/headers/CMakeLists.txt). The calls
// link against the C engine: a declaration outside extern "C" would be
// looked up under a mangled name and fail to link.
#include "all_headers.h"

#include <cstdio>
#include <cstring>

static int fails;

static void check(bool ok, const char *what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    fails++;
  }
}

int main() {
  sgrpc_md md[] = {SGRPC_MD_STR("x-key", "value")};
  sgrpc_conn *conn = nullptr;
  const uint8_t *data = nullptr;

  check(std::strlen(SGRPC_VERSION) > 0, "SGRPC_VERSION");
  check(md[0].key_len == 5 && md[0].value_len == 5, "SGRPC_MD_STR lengths");
  check(sgrpc_md_check(&md[0]) == 0, "sgrpc_md_check accepts x-key");
  check(sgrpc_strerror(SGRPC_ERR_INVALID_ARGUMENT) != nullptr, "sgrpc_strerror");
  check(sgrpc_conn_client_new(&conn, nullptr, nullptr, 0) == 0, "sgrpc_conn_client_new");
  // the client preface (24 bytes) and a SETTINGS frame are queued at once
  check(conn != nullptr && sgrpc_conn_out_peek(conn, &data) > 24, "preface queued");
  check(data != nullptr && std::memcmp(data, "PRI * HTTP/2.0", 14) == 0, "preface bytes");
  sgrpc_conn_del(conn);
  std::printf("%d failed\n", fails);
  return fails == 0 ? 0 : 1;
}
