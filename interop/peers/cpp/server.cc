// grpc.testing.TestService interop server on grpc++ (gRPC C-core), written
// from grpc/grpc doc/interop-test-descriptions.md.
//
//   server --port=PORT [--use_tls=true --tls_cert_file=F --tls_key_file=F]
//
// Listens on 127.0.0.1 only, prints "listening" once serving; SIGTERM or
// SIGINT stop it.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "common.h"
#include "grpc/testing/test.grpc.pb.h"

using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::BoolValue;
using grpc::testing::EchoStatus;
using grpc::testing::Empty;
using grpc::testing::ResponseParameters;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

namespace {

// Echo Metadata: must run before anything is sent.
void echo_metadata(ServerContext* ctx) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(peer::kEchoInitial);
  if (it != md.end())
    ctx->AddInitialMetadata(peer::kEchoInitial,
                            std::string(it->second.data(), it->second.size()));
  it = md.find(peer::kEchoTrailing);
  if (it != md.end())
    ctx->AddTrailingMetadata(peer::kEchoTrailing,
                             std::string(it->second.data(), it->second.size()));
}

// CompressedRequest: the message just received must carry the compressed
// flag exactly when the client said it would.
bool compression_as_expected(ServerContext* ctx, bool expected) {
  return peer::last_message_was_compressed(ctx->c_call()) == expected;
}

Status bad_compression(bool expected) {
  return Status(StatusCode::INVALID_ARGUMENT,
                expected ? "expected a compressed request, got an uncompressed one"
                         : "expected an uncompressed request, got a compressed one");
}

bool has_echo_status(const EchoStatus& s) { return s.code() != 0; }

Status echo_status(const EchoStatus& s) {
  return Status(static_cast<StatusCode>(s.code()), s.message());
}

void fill(grpc::testing::Payload* p, int size) {
  p->set_body(std::string(static_cast<size_t>(size), '\0'));
}

bool wants_compression(const StreamingOutputCallRequest& req) {
  for (const auto& p : req.response_parameters())
    if (p.compressed().value()) return true;
  return false;
}

// Sends the responses one request asks for; false if the stream broke.
template <typename W>
bool respond(W* writer, const StreamingOutputCallRequest& req) {
  for (const ResponseParameters& p : req.response_parameters()) {
    if (p.interval_us() > 0)
      std::this_thread::sleep_for(std::chrono::microseconds(p.interval_us()));
    StreamingOutputCallResponse resp;
    fill(resp.mutable_payload(), p.size());
    grpc::WriteOptions opts;
    if (!p.compressed().value()) opts.set_no_compression();
    if (!writer->Write(resp, opts)) return false;
  }
  return true;
}

class TestServiceImpl final : public grpc::testing::TestService::Service {
  Status EmptyCall(ServerContext* ctx, const Empty*, Empty*) override {
    echo_metadata(ctx);
    return Status::OK;
  }

  Status UnaryCall(ServerContext* ctx, const SimpleRequest* req,
                   SimpleResponse* resp) override {
    echo_metadata(ctx);
    if (req->has_response_compressed())
      ctx->set_compression_algorithm(req->response_compressed().value()
                                         ? GRPC_COMPRESS_GZIP
                                         : GRPC_COMPRESS_NONE);
    if (!compression_as_expected(ctx, req->expect_compressed().value()))
      return bad_compression(req->expect_compressed().value());
    if (has_echo_status(req->response_status()))
      return echo_status(req->response_status());
    fill(resp->mutable_payload(), req->response_size());
    return Status::OK;
  }

  Status StreamingOutputCall(
      ServerContext* ctx, const StreamingOutputCallRequest* req,
      grpc::ServerWriter<StreamingOutputCallResponse>* writer) override {
    echo_metadata(ctx);
    if (wants_compression(*req)) ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    if (has_echo_status(req->response_status()))
      return echo_status(req->response_status());
    if (!respond(writer, *req))
      return Status(StatusCode::UNAVAILABLE, "write failed");
    return Status::OK;
  }

  Status StreamingInputCall(
      ServerContext* ctx,
      grpc::ServerReader<StreamingInputCallRequest>* reader,
      StreamingInputCallResponse* resp) override {
    echo_metadata(ctx);
    StreamingInputCallRequest req;
    int total = 0;
    while (reader->Read(&req)) {
      if (!compression_as_expected(ctx, req.expect_compressed().value()))
        return bad_compression(req.expect_compressed().value());
      total += static_cast<int>(req.payload().body().size());
    }
    resp->set_aggregated_payload_size(total);
    return Status::OK;
  }

  Status FullDuplexCall(
      ServerContext* ctx,
      grpc::ServerReaderWriter<StreamingOutputCallResponse,
                               StreamingOutputCallRequest>* stream) override {
    echo_metadata(ctx);
    StreamingOutputCallRequest req;
    bool compression_set = false;
    while (stream->Read(&req)) {
      if (has_echo_status(req.response_status()))
        return echo_status(req.response_status());
      if (!compression_set && wants_compression(req)) {
        ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
        compression_set = true;
      }
      if (!respond(stream, req))
        return Status(StatusCode::UNAVAILABLE, "write failed");
    }
    return Status::OK;
  }
  // HalfDuplexCall and UnimplementedCall keep the generated UNIMPLEMENTED.
};

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  bool use_tls = false;
  std::string cert_file, key_file;
  for (int i = 1; i < argc; i++) {
    const char* v;
    if ((v = peer::flag_value(argv[i], "port"))) port = atoi(v);
    else if ((v = peer::flag_value(argv[i], "use_tls"))) use_tls = strcmp(v, "true") == 0;
    else if ((v = peer::flag_value(argv[i], "tls_cert_file"))) cert_file = v;
    else if ((v = peer::flag_value(argv[i], "tls_key_file"))) key_file = v;
    else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0) {
    fprintf(stderr, "--port is required\n");
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (use_tls) {
    grpc::SslServerCredentialsOptions opts;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (!peer::read_file(key_file, &pair.private_key) ||
        !peer::read_file(cert_file, &pair.cert_chain)) {
      fprintf(stderr, "--use_tls=true needs readable --tls_cert_file and --tls_key_file\n");
      return 2;
    }
    opts.pem_key_cert_pairs.push_back(pair);
    creds = grpc::SslServerCredentials(opts);
  } else {
    creds = grpc::InsecureServerCredentials();
  }

  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  TestServiceImpl service;
  std::string addr = "127.0.0.1:" + std::to_string(port);
  grpc::ServerBuilder builder;
  // C-core sets SO_REUSEPORT by default, so a port another process holds
  // would be shared silently; without it a taken port fails to bind and
  // run_matrix.sh tries another.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int bound = 0;
  builder.AddListeningPort(addr, creds, &bound);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound == 0) {
    fprintf(stderr, "cannot listen on %s\n", addr.c_str());
    return 1;
  }
  printf("listening on %s\n", addr.c_str());
  fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
