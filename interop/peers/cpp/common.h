// Shared bits of the grpc++ interop peers (written from grpc/grpc
// doc/interop-test-descriptions.md).
#ifndef SGRPC_INTEROP_CPP_COMMON_H
#define SGRPC_INTEROP_CPP_COMMON_H

#include <grpc/grpc.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

// Exported by libgrpc (C++ linkage) but not declared in the public headers:
// the flags of the last message a call received. C-core marks a message that
// arrived with the compressed flag set with one of the internal bits below;
// nothing else tells an application whether a message was compressed.
uint32_t grpc_call_test_only_get_message_flags(grpc_call* call);

namespace peer {

// Internal C-core write flags (src/core/lib/transport/transport.h).
constexpr uint32_t kInternalCompress = 0x80000000u;
constexpr uint32_t kInternalWasCompressed = 0x40000000u;

inline bool last_message_was_compressed(grpc_call* call) {
  return (grpc_call_test_only_get_message_flags(call) &
          (kInternalCompress | kInternalWasCompressed)) != 0;
}

constexpr const char* kEchoInitial = "x-grpc-test-echo-initial";
constexpr const char* kEchoTrailing = "x-grpc-test-echo-trailing-bin";

// "--name=value" -> value when arg names the flag; nullptr otherwise.
inline const char* flag_value(const char* arg, const char* name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return nullptr;
  return arg + 3 + n;
}

inline bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace peer

#endif
