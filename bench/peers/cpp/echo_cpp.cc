// bench-echo-cpp: bench.Echo (bench/proto/echo.proto) on grpc++ (Debian's
// libgrpc++). Two server APIs, chosen with --api:
//   async (default)     one completion queue polled by the main thread;
//                       the faster of the two on one core (about 7.4 vs
//                       8.3 us of CPU per unary call here)
//   callback            the reactor API grpc recommends; handlers run on
//                       grpc's internal threads
// Usage: bench-echo-cpp --port=N [--api=callback|async]   (127.0.0.1)
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "echo.grpc.pb.h"

using bench::Echo;
using bench::EchoMsg;
using grpc::CallbackServerContext;
using grpc::ServerBidiReactor;
using grpc::ServerUnaryReactor;
using grpc::Status;

namespace {

class CallbackEcho final : public Echo::CallbackService {
  ServerUnaryReactor *Unary(CallbackServerContext *ctx, const EchoMsg *req,
                            EchoMsg *resp) override {
    *resp = *req;
    ServerUnaryReactor *r = ctx->DefaultReactor();
    r->Finish(Status::OK);
    return r;
  }

  class StreamReactor final : public ServerBidiReactor<EchoMsg, EchoMsg> {
   public:
    StreamReactor() { StartRead(&msg_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(Status::OK);
        return;
      }
      StartWrite(&msg_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(Status::CANCELLED);
        return;
      }
      StartRead(&msg_);
    }
    void OnDone() override { delete this; }

   private:
    EchoMsg msg_;
  };

  ServerBidiReactor<EchoMsg, EchoMsg> *Stream(CallbackServerContext *) override {
    return new StreamReactor();
  }
};

// ---- async API: a state machine per call on one completion queue ----
class Tag {
 public:
  virtual ~Tag() {}
  virtual void Proceed(bool ok) = 0;
};

class AsyncUnary final : public Tag {
 public:
  AsyncUnary(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
      : svc_(svc), cq_(cq), responder_(&ctx_) {
    svc_->RequestUnary(&ctx_, &req_, &responder_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!started_) {
      started_ = true;
      new AsyncUnary(svc_, cq_);
      if (!ok) {
        delete this;
        return;
      }
      responder_.Finish(req_, Status::OK, this);  // the request is the reply
      return;
    }
    delete this;
  }

 private:
  Echo::AsyncService *svc_;
  grpc::ServerCompletionQueue *cq_;
  grpc::ServerContext ctx_;
  EchoMsg req_;
  grpc::ServerAsyncResponseWriter<EchoMsg> responder_;
  bool started_ = false;
};

class AsyncStream final : public Tag {
 public:
  AsyncStream(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
      : svc_(svc), cq_(cq), stream_(&ctx_) {
    svc_->RequestStream(&ctx_, &stream_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case kNew:
        new AsyncStream(svc_, cq_);
        if (!ok) {
          delete this;
          return;
        }
        state_ = kReading;
        stream_.Read(&msg_, this);
        return;
      case kReading:
        if (!ok) {
          state_ = kFinishing;
          stream_.Finish(Status::OK, this);
          return;
        }
        state_ = kWriting;
        stream_.Write(msg_, this);
        return;
      case kWriting:
        if (!ok) {
          state_ = kFinishing;
          stream_.Finish(Status::CANCELLED, this);
          return;
        }
        state_ = kReading;
        stream_.Read(&msg_, this);
        return;
      case kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum State { kNew, kReading, kWriting, kFinishing };
  Echo::AsyncService *svc_;
  grpc::ServerCompletionQueue *cq_;
  grpc::ServerContext ctx_;
  EchoMsg msg_;
  grpc::ServerAsyncReaderWriter<EchoMsg, EchoMsg> stream_;
  State state_ = kNew;
};

std::unique_ptr<grpc::Server> g_server;

}  // namespace

int main(int argc, char **argv) {
  int port = 50051;
  std::string api = "async";
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--port=", 7) == 0) {
      port = std::atoi(argv[i] + 7);
    } else if (std::strncmp(argv[i], "--api=", 6) == 0) {
      api = argv[i] + 6;
    } else {
      std::fprintf(stderr, "usage: %s --port=N [--api=callback|async]\n", argv[0]);
      return 2;
    }
  }
  // SIGTERM/SIGINT end the process at once from a watcher thread: a
  // benchmark server has nothing to drain, and grpc's shutdown with
  // outstanding async requests can hang.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::string addr = "127.0.0.1:" + std::to_string(port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 << 20);
  CallbackEcho cb_service;
  Echo::AsyncService async_service;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  if (api == "async") {
    builder.RegisterService(&async_service);
    cq = builder.AddCompletionQueue();
  } else {
    builder.RegisterService(&cb_service);
  }
  g_server = builder.BuildAndStart();
  if (!g_server) {
    std::fprintf(stderr, "bench-echo-cpp: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  std::printf("bench-echo-cpp (%s API): listening on %s\n", api.c_str(), addr.c_str());
  std::fflush(stdout);
  std::thread watcher([&set] {
    int sig;
    sigwait(&set, &sig);
    std::_Exit(0);
  });
  if (api == "async") {
    // Enough outstanding requests for every method that 16 x 32 calls in
    // flight never wait for a new RequestX.
    for (int i = 0; i < 64; i++) {
      new AsyncUnary(&async_service, cq.get());
      new AsyncStream(&async_service, cq.get());
    }
    void *tag;
    bool ok;
    while (cq->Next(&tag, &ok)) static_cast<Tag *>(tag)->Proceed(ok);
  } else {
    g_server->Wait();
  }
  watcher.join();
  return 0;
}
