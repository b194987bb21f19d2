/* Every public header in one C11 translation unit, built with -std=c11
 * -pedantic -Wall -Wextra -Wconversion -Werror (tests/headers/CMakeLists.txt),
 * then a few calls that use the header's macros the way a consumer does. */
#include "all_headers.h"

#include <stdio.h>
#include <string.h>

static int fails;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "FAIL: %s\n", what);
    fails++;
  }
}

int main(void) {
  sgrpc_md md[] = {SGRPC_MD_STR("x-key", "value")};
  sgrpc_conn *conn = NULL;
  const uint8_t *data = NULL;

  check(strlen(SGRPC_VERSION) > 0, "SGRPC_VERSION");
  check(md[0].key_len == 5 && md[0].value_len == 5, "SGRPC_MD_STR lengths");
  check(sgrpc_md_check(&md[0]) == 0, "sgrpc_md_check accepts x-key");
  check(sgrpc_strerror(SGRPC_ERR_INVALID_ARGUMENT) != NULL, "sgrpc_strerror");
  check(sgrpc_conn_client_new(&conn, NULL, NULL, 0) == 0, "sgrpc_conn_client_new");
  /* the client preface (24 bytes) and a SETTINGS frame are queued at once */
  check(conn != NULL && sgrpc_conn_out_peek(conn, &data) > 24, "preface queued");
  check(data != NULL && memcmp(data, "PRI * HTTP/2.0", 14) == 0, "preface bytes");
  sgrpc_conn_del(conn);
  printf("%d failed\n", fails);
  return fails == 0 ? 0 : 1;
}
