// Command server is a grpc.testing.TestService interop server on grpc-go,
// written from grpc/grpc doc/interop-test-descriptions.md.
//
//	server --port=PORT [--use_tls=true --tls_cert_file=F --tls_key_file=F]
//
// Listens on 127.0.0.1 only and prints "listening" once serving; SIGTERM
// stops it. Known limitation (../LIMITATIONS.md): grpc-go 1.33 has no way
// to choose per call or per message whether a response is compressed (it
// compresses every response iff the request's grpc-encoding names a
// compressor), so the CompressedResponse feature is not implemented.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"sgrpcpeer/gzipflag"
	testpb "sgrpcpeer/testpb"
)

const (
	echoInitial  = "x-grpc-test-echo-initial"
	echoTrailing = "x-grpc-test-echo-trailing-bin"
)

type server struct{}

// echoMetadata implements Echo Metadata: it sends the initial-metadata echo
// now (always sending headers, possibly empty) and arranges the trailer.
func echoMetadata(ctx context.Context, send func(metadata.MD) error, setTrailer func(metadata.MD)) error {
	in, _ := metadata.FromIncomingContext(ctx)
	hdr := metadata.MD{}
	if v := in.Get(echoInitial); len(v) > 0 {
		hdr.Set(echoInitial, v...)
	}
	if v := in.Get(echoTrailing); len(v) > 0 {
		setTrailer(metadata.MD{echoTrailing: v})
	}
	return send(hdr)
}

// checkCompression implements CompressedRequest the way a request's
// expect_compressed asks: the received message must have had the
// compressed flag exactly when it was expected.
func checkCompression(expect *testpb.BoolValue, wasCompressed bool) error {
	want := expect.GetValue()
	if want && !wasCompressed {
		return status.Error(codes.InvalidArgument, "expected a compressed request, got an uncompressed one")
	}
	if !want && wasCompressed {
		return status.Error(codes.InvalidArgument, "expected an uncompressed request, got a compressed one")
	}
	return nil
}

func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(s.Code), s.Message)
}

func zeros(n int32) *testpb.Payload {
	return &testpb.Payload{Body: make([]byte, n)}
}

func (server) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	gzipflag.Take()
	if err := echoMetadata(ctx, func(md metadata.MD) error { return grpc.SendHeader(ctx, md) },
		func(md metadata.MD) { grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (server) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	// The request was received and decompressed on this goroutine before
	// the handler ran.
	wasCompressed := gzipflag.Take()
	if err := echoMetadata(ctx, func(md metadata.MD) error { return grpc.SendHeader(ctx, md) },
		func(md metadata.MD) { grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	if err := checkCompression(req.ExpectCompressed, wasCompressed); err != nil {
		return nil, err
	}
	if err := echoStatus(req.ResponseStatus); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: zeros(req.ResponseSize)}, nil
}

func (server) CacheableUnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return nil, status.Error(codes.Unimplemented, "CacheableUnaryCall is not implemented")
}

func respond(stream grpc.ServerStream, params []*testpb.ResponseParameters) error {
	for _, p := range params {
		if p.IntervalUs > 0 {
			time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
		}
		if err := stream.SendMsg(&testpb.StreamingOutputCallResponse{Payload: zeros(p.Size)}); err != nil {
			return err
		}
	}
	return nil
}

func (server) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	gzipflag.Take()
	if err := echoMetadata(stream.Context(), stream.SendHeader, stream.SetTrailer); err != nil {
		return err
	}
	if err := echoStatus(req.ResponseStatus); err != nil {
		return err
	}
	return respond(stream, req.ResponseParameters)
}

func (server) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	if err := echoMetadata(stream.Context(), stream.SendHeader, stream.SetTrailer); err != nil {
		return err
	}
	var total int32
	for i := 0; ; i++ {
		gzipflag.Reset()
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: total})
		}
		if err != nil {
			return err
		}
		if err := checkCompression(req.ExpectCompressed, gzipflag.Take()); err != nil {
			return err
		}
		total += int32(len(req.GetPayload().GetBody()))
	}
}

func (server) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	if err := echoMetadata(stream.Context(), stream.SendHeader, stream.SetTrailer); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.ResponseStatus); err != nil {
			return err
		}
		if err := respond(stream, req.ResponseParameters); err != nil {
			return err
		}
	}
}

func (server) HalfDuplexCall(stream testpb.TestService_HalfDuplexCallServer) error {
	return status.Error(codes.Unimplemented, "HalfDuplexCall is not implemented")
}

// UnimplementedCall is deliberately absent from the Go type: the generated
// service descriptor routes it here, so answer UNIMPLEMENTED explicitly.
func (server) UnimplementedCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	return nil, status.Error(codes.Unimplemented, "UnimplementedCall")
}

func main() {
	port := flag.Int("port", 0, "port to listen on (127.0.0.1)")
	useTLS := flag.Bool("use_tls", false, "serve TLS")
	certFile := flag.String("tls_cert_file", "", "server certificate (PEM)")
	keyFile := flag.String("tls_key_file", "", "server key (PEM)")
	flag.Parse()
	log.SetFlags(0)
	if *port <= 0 {
		log.Fatal("--port is required")
	}
	gzipflag.Register()
	var opts []grpc.ServerOption
	if *useTLS {
		if *certFile == "" || *keyFile == "" {
			log.Fatal("--use_tls=true needs --tls_cert_file and --tls_key_file")
		}
		creds, err := credentials.NewServerTLSFromFile(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("TLS: %v", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	addr := fmt.Sprintf("127.0.0.1:%d", *port)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen %s: %v", addr, err)
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, server{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			s.Stop()
		}
	}()
	fmt.Printf("listening on %s\n", addr)
	if err := s.Serve(lis); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
