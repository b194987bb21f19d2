// grpc.testing.TestService interop client on grpc++ (gRPC C-core), written
// from grpc/grpc doc/interop-test-descriptions.md.
//
//   client --server_host=H --server_port=P --test_case=NAME
//          [--use_tls=true [--use_test_ca=true --ca_file=F]
//           [--server_host_override=N]]
//
// Exit status: 0 the case passed; 1 it failed (one line says why); 2 bad
// usage.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "grpc/testing/test.grpc.pb.h"

using grpc::ClientContext;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;
using grpc::testing::TestService;

namespace {

const char kEchoInitialValue[] = "test_initial_metadata_value";
const std::string kEchoTrailingValue("\xab\xab\xab", 3);
const char kSpecialMessage[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
    "\xf0\x9f\x98\x88\t\n";

struct Failure {
  std::string msg;
};

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

#define CHECK(cond, ...)                     \
  do {                                       \
    if (!(cond)) throw Failure{format(__VA_ARGS__)}; \
  } while (0)

// Bounds every call that is not about deadlines.
void bound(ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
}

void fill(grpc::testing::Payload* p, int size) {
  p->set_body(std::string(static_cast<size_t>(size), '\0'));
}

void check_payload(const grpc::testing::Payload& p, size_t size, const std::string& what) {
  CHECK(p.body().size() == size, "%s: payload is %zu bytes, want %zu", what.c_str(),
        p.body().size(), size);
  CHECK(p.body() == std::string(size, '\0'), "%s: payload is not all zeros", what.c_str());
}

void check_ok(const Status& s, const char* what) {
  CHECK(s.ok(), "%s: status %d (%s), want OK", what, s.error_code(),
        s.error_message().c_str());
}

void check_code(const Status& s, StatusCode want, const char* what) {
  CHECK(s.error_code() == want, "%s: status %d (%s), want %d", what, s.error_code(),
        s.error_message().c_str(), want);
}

SimpleRequest large_request() {
  SimpleRequest req;
  req.set_response_size(314159);
  fill(req.mutable_payload(), 271828);
  return req;
}

struct Env {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<TestService::Stub> stub;
};

void empty_unary(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  Empty req, resp;
  check_ok(e.stub->EmptyCall(&ctx, req, &resp), "EmptyCall");
}

void large_unary(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  SimpleResponse resp;
  check_ok(e.stub->UnaryCall(&ctx, large_request(), &resp), "UnaryCall");
  check_payload(resp.payload(), 314159, "UnaryCall");
}

void client_streaming(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  for (int n : {27182, 8, 1828, 45904}) {
    StreamingInputCallRequest req;
    fill(req.mutable_payload(), n);
    CHECK(w->Write(req), "Write of %d bytes failed", n);
  }
  w->WritesDone();
  check_ok(w->Finish(), "StreamingInputCall");
  CHECK(resp.aggregated_payload_size() == 74922, "aggregated_payload_size %d, want 74922",
        resp.aggregated_payload_size());
}

void server_streaming(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  const std::vector<int> sizes = {31415, 9, 2653, 58979};
  StreamingOutputCallRequest req;
  for (int n : sizes) req.add_response_parameters()->set_size(n);
  auto r = e.stub->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  size_t i = 0;
  while (r->Read(&resp)) {
    CHECK(i < sizes.size(), "more than %zu responses", sizes.size());
    check_payload(resp.payload(), sizes[i], format("response %zu", i));
    i++;
  }
  check_ok(r->Finish(), "StreamingOutputCall");
  CHECK(i == sizes.size(), "%zu responses, want %zu", i, sizes.size());
}

void ping_pong(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  auto s = e.stub->FullDuplexCall(&ctx);
  const std::vector<std::pair<int, int>> pairs = {
      {31415, 27182}, {9, 8}, {2653, 1828}, {58979, 45904}};
  for (size_t i = 0; i < pairs.size(); i++) {
    StreamingOutputCallRequest req;
    req.add_response_parameters()->set_size(pairs[i].first);
    fill(req.mutable_payload(), pairs[i].second);
    CHECK(s->Write(req), "Write %zu failed", i);
    StreamingOutputCallResponse resp;
    CHECK(s->Read(&resp), "no response %zu", i);
    check_payload(resp.payload(), pairs[i].first, format("response %zu", i));
  }
  s->WritesDone();
  StreamingOutputCallResponse extra;
  CHECK(!s->Read(&extra), "a fifth response");
  check_ok(s->Finish(), "FullDuplexCall");
}

void empty_stream(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  auto s = e.stub->FullDuplexCall(&ctx);
  s->WritesDone();
  StreamingOutputCallResponse resp;
  CHECK(!s->Read(&resp), "got a response, want none");
  check_ok(s->Finish(), "FullDuplexCall");
}

void timeout_on_sleeping_server(Env& e) {
  ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1));
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallRequest req;
  fill(req.mutable_payload(), 27182);
  s->Write(req);  // may fail once the deadline has passed
  StreamingOutputCallResponse resp;
  while (s->Read(&resp)) {
  }
  check_code(s->Finish(), StatusCode::DEADLINE_EXCEEDED, "FullDuplexCall");
}

void cancel_after_begin(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  ctx.TryCancel();
  check_code(w->Finish(), StatusCode::CANCELLED, "StreamingInputCall");
}

void cancel_after_first_response(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallRequest req;
  req.add_response_parameters()->set_size(31415);
  fill(req.mutable_payload(), 27182);
  CHECK(s->Write(req), "Write failed");
  StreamingOutputCallResponse resp;
  CHECK(s->Read(&resp), "no first response");
  check_payload(resp.payload(), 31415, "first response");
  ctx.TryCancel();
  while (s->Read(&resp)) {
  }
  check_code(s->Finish(), StatusCode::CANCELLED, "FullDuplexCall");
}

void check_echo(const ClientContext& ctx, const char* what) {
  std::vector<std::string> got;
  for (const auto& kv : ctx.GetServerInitialMetadata())
    if (kv.first == peer::kEchoInitial) got.emplace_back(kv.second.data(), kv.second.size());
  CHECK(got.size() == 1 && got[0] == kEchoInitialValue,
        "%s: initial metadata %s: %zu values, first %s", what, peer::kEchoInitial, got.size(),
        got.empty() ? "-" : got[0].c_str());
  got.clear();
  for (const auto& kv : ctx.GetServerTrailingMetadata())
    if (kv.first == peer::kEchoTrailing) got.emplace_back(kv.second.data(), kv.second.size());
  CHECK(got.size() == 1 && got[0] == kEchoTrailingValue,
        "%s: trailing metadata %s: %zu values, want one 0xababab", what, peer::kEchoTrailing,
        got.size());
}

void add_echo_metadata(ClientContext* ctx) {
  ctx->AddMetadata(peer::kEchoInitial, kEchoInitialValue);
  ctx->AddMetadata(peer::kEchoTrailing, kEchoTrailingValue);
}

void custom_metadata(Env& e) {
  {
    ClientContext ctx;
    bound(&ctx);
    add_echo_metadata(&ctx);
    SimpleResponse resp;
    check_ok(e.stub->UnaryCall(&ctx, large_request(), &resp), "UnaryCall");
    check_payload(resp.payload(), 314159, "UnaryCall");
    check_echo(ctx, "UnaryCall");
  }
  ClientContext ctx;
  bound(&ctx);
  add_echo_metadata(&ctx);
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallRequest req;
  req.add_response_parameters()->set_size(314159);
  fill(req.mutable_payload(), 271828);
  CHECK(s->Write(req), "FullDuplexCall: Write failed");
  s->WritesDone();
  StreamingOutputCallResponse resp;
  int n = 0;
  while (s->Read(&resp)) {
    check_payload(resp.payload(), 314159, "FullDuplexCall");
    n++;
  }
  check_ok(s->Finish(), "FullDuplexCall");
  CHECK(n == 1, "FullDuplexCall: %d responses, want 1", n);
  check_echo(ctx, "FullDuplexCall");
}

void check_status(const Status& s, int code, const std::string& msg, const char* what) {
  CHECK(s.error_code() == code, "%s: status %d, want %d", what, s.error_code(), code);
  CHECK(s.error_message() == msg, "%s: message \"%s\", want \"%s\"", what,
        s.error_message().c_str(), msg.c_str());
}

void unary_status(Env& e, const std::string& msg) {
  ClientContext ctx;
  bound(&ctx);
  SimpleRequest req;
  req.mutable_response_status()->set_code(2);
  req.mutable_response_status()->set_message(msg);
  SimpleResponse resp;
  check_status(e.stub->UnaryCall(&ctx, req, &resp), 2, msg, "UnaryCall");
}

void status_code_and_message(Env& e) {
  const std::string msg = "test status message";
  unary_status(e, msg);
  ClientContext ctx;
  bound(&ctx);
  auto s = e.stub->FullDuplexCall(&ctx);
  StreamingOutputCallRequest req;
  req.mutable_response_status()->set_code(2);
  req.mutable_response_status()->set_message(msg);
  s->Write(req);
  s->WritesDone();
  StreamingOutputCallResponse resp;
  while (s->Read(&resp)) {
  }
  check_status(s->Finish(), 2, msg, "FullDuplexCall");
}

void special_status_message(Env& e) { unary_status(e, kSpecialMessage); }

void unimplemented_method(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  Empty req, resp;
  check_code(e.stub->UnimplementedCall(&ctx, req, &resp), StatusCode::UNIMPLEMENTED,
             "UnimplementedCall");
}

void unimplemented_service(Env& e) {
  auto stub = grpc::testing::UnimplementedService::NewStub(e.channel);
  ClientContext ctx;
  bound(&ctx);
  Empty req, resp;
  check_code(stub->UnimplementedCall(&ctx, req, &resp), StatusCode::UNIMPLEMENTED,
             "UnimplementedService/UnimplementedCall");
}

void client_compressed_unary(Env& e) {
  {
    // Probe: an uncompressed message that claims to be compressed.
    ClientContext ctx;
    bound(&ctx);
    SimpleRequest req = large_request();
    req.mutable_expect_compressed()->set_value(true);
    SimpleResponse resp;
    check_code(e.stub->UnaryCall(&ctx, req, &resp), StatusCode::INVALID_ARGUMENT, "probe");
  }
  for (bool compressed : {true, false}) {
    ClientContext ctx;
    bound(&ctx);
    if (compressed) ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    SimpleRequest req = large_request();
    req.mutable_expect_compressed()->set_value(compressed);
    SimpleResponse resp;
    const char* what = compressed ? "compressed UnaryCall" : "uncompressed UnaryCall";
    check_ok(e.stub->UnaryCall(&ctx, req, &resp), what);
    check_payload(resp.payload(), 314159, what);
  }
}

void client_compressed_streaming(Env& e) {
  {
    ClientContext ctx;
    bound(&ctx);
    StreamingInputCallResponse resp;
    auto w = e.stub->StreamingInputCall(&ctx, &resp);
    StreamingInputCallRequest req;
    req.mutable_expect_compressed()->set_value(true);
    fill(req.mutable_payload(), 27182);
    w->Write(req);  // the server may fail the call before taking it all
    w->WritesDone();
    check_code(w->Finish(), StatusCode::INVALID_ARGUMENT, "probe");
  }
  ClientContext ctx;
  bound(&ctx);
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  StreamingInputCallResponse resp;
  auto w = e.stub->StreamingInputCall(&ctx, &resp);
  StreamingInputCallRequest req;
  req.mutable_expect_compressed()->set_value(true);
  fill(req.mutable_payload(), 27182);
  CHECK(w->Write(req), "Write of the compressed message failed");
  req.mutable_expect_compressed()->set_value(false);
  fill(req.mutable_payload(), 45904);
  CHECK(w->Write(req, grpc::WriteOptions().set_no_compression()),
        "Write of the uncompressed message failed");
  w->WritesDone();
  check_ok(w->Finish(), "StreamingInputCall");
  CHECK(resp.aggregated_payload_size() == 73086, "aggregated_payload_size %d, want 73086",
        resp.aggregated_payload_size());
}

void server_compressed_unary(Env& e) {
  for (bool compressed : {true, false}) {
    ClientContext ctx;
    bound(&ctx);
    SimpleRequest req = large_request();
    req.mutable_response_compressed()->set_value(compressed);
    SimpleResponse resp;
    const char* what = compressed ? "UnaryCall (response_compressed=true)"
                                  : "UnaryCall (response_compressed=false)";
    check_ok(e.stub->UnaryCall(&ctx, req, &resp), what);
    bool was = peer::last_message_was_compressed(ctx.c_call());
    CHECK(was == compressed, "%s: response compressed flag %d", what, was);
    check_payload(resp.payload(), 314159, what);
  }
}

void server_compressed_streaming(Env& e) {
  ClientContext ctx;
  bound(&ctx);
  const std::vector<std::pair<bool, int>> want = {{true, 31415}, {false, 92653}};
  StreamingOutputCallRequest req;
  for (const auto& w : want) {
    auto* p = req.add_response_parameters();
    p->mutable_compressed()->set_value(w.first);
    p->set_size(w.second);
  }
  auto r = e.stub->StreamingOutputCall(&ctx, req);
  StreamingOutputCallResponse resp;
  size_t i = 0;
  while (r->Read(&resp)) {
    CHECK(i < want.size(), "more than %zu responses", want.size());
    bool was = peer::last_message_was_compressed(ctx.c_call());
    CHECK(was == want[i].first, "response %zu: compressed flag %d, want %d", i, was,
          want[i].first);
    check_payload(resp.payload(), want[i].second, format("response %zu", i));
    i++;
  }
  check_ok(r->Finish(), "StreamingOutputCall");
  CHECK(i == want.size(), "%zu responses, want %zu", i, want.size());
}

const std::map<std::string, std::function<void(Env&)>>& cases() {
  static const std::map<std::string, std::function<void(Env&)>> m = {
      {"empty_unary", empty_unary},
      {"large_unary", large_unary},
      {"client_streaming", client_streaming},
      {"server_streaming", server_streaming},
      {"ping_pong", ping_pong},
      {"empty_stream", empty_stream},
      {"timeout_on_sleeping_server", timeout_on_sleeping_server},
      {"cancel_after_begin", cancel_after_begin},
      {"cancel_after_first_response", cancel_after_first_response},
      {"custom_metadata", custom_metadata},
      {"status_code_and_message", status_code_and_message},
      {"special_status_message", special_status_message},
      {"unimplemented_method", unimplemented_method},
      {"unimplemented_service", unimplemented_service},
      {"client_compressed_unary", client_compressed_unary},
      {"client_compressed_streaming", client_compressed_streaming},
      {"server_compressed_unary", server_compressed_unary},
      {"server_compressed_streaming", server_compressed_streaming},
  };
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", test_case, ca_file, override_name;
  int port = 0;
  bool use_tls = false, use_test_ca = false;
  for (int i = 1; i < argc; i++) {
    const char* v;
    if ((v = peer::flag_value(argv[i], "server_host"))) host = v;
    else if ((v = peer::flag_value(argv[i], "server_port"))) port = atoi(v);
    else if ((v = peer::flag_value(argv[i], "test_case"))) test_case = v;
    else if ((v = peer::flag_value(argv[i], "use_tls"))) use_tls = strcmp(v, "true") == 0;
    else if ((v = peer::flag_value(argv[i], "use_test_ca"))) use_test_ca = strcmp(v, "true") == 0;
    else if ((v = peer::flag_value(argv[i], "ca_file"))) ca_file = v;
    else if ((v = peer::flag_value(argv[i], "server_host_override"))) override_name = v;
    else {
      printf("FAIL: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  auto it = cases().find(test_case);
  if (it == cases().end() || port <= 0) {
    printf("FAIL: bad usage (test case \"%s\", port %d)\n", test_case.c_str(), port);
    return 2;
  }
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (use_tls) {
    grpc::SslCredentialsOptions opts;
    if (use_test_ca && !peer::read_file(ca_file, &opts.pem_root_certs)) {
      printf("FAIL: cannot read --ca_file %s\n", ca_file.c_str());
      return 2;
    }
    creds = grpc::SslCredentials(opts);
    if (!override_name.empty()) args.SetSslTargetNameOverride(override_name);
  } else {
    creds = grpc::InsecureChannelCredentials();
    if (!override_name.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, override_name);
  }
  Env env;
  env.channel = grpc::CreateCustomChannel(host + ":" + std::to_string(port), creds, args);
  env.stub = TestService::NewStub(env.channel);
  try {
    it->second(env);
  } catch (const Failure& f) {
    std::string line = f.msg;
    for (size_t p; (p = line.find('\n')) != std::string::npos;) line.replace(p, 1, "\\n");
    printf("FAIL: %s\n", line.c_str());
    return 1;
  }
  printf("PASS\n");
  return 0;
}
