// Build glue of our own (not part of gRPC): writes to stdout the test root
// CA that gRPC's C++ interop client trusts with --use_test_ca=true, i.e.
// test_root_cert as compiled from SRC_TREE/test/core/end2end/data. client.sh
// compares a run's --ca_file with this output, since the official client has
// no flag to load another CA.
#include <cstdio>
#include <cstring>

#include "test/core/end2end/data/ssl_test_data.h"

int main() {
  size_t n = std::strlen(test_root_cert);
  return std::fwrite(test_root_cert, 1, n, stdout) == n ? 0 : 1;
}
