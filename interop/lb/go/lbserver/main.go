// Command lbserver is a grpc-go grpc.testing.TestService server that says
// which instance served a call, for the round_robin tests of interop/lb:
// UnaryCall answers with SimpleResponse.server_id = --server_id when the
// request sets fill_server_id (the field gRPC's own load-balancing interop
// tests use), EmptyCall answers empty; the other methods are UNIMPLEMENTED.
//
//	lbserver --server_id=ID [--port=0]
//
// Listens on 127.0.0.1 only (port 0: the kernel chooses) and prints
// "lbserver ID: listening on port N" once serving. SIGTERM stops it
// gracefully (in-flight calls finish); SIGKILL is what the tests use to
// lose a backend mid-run.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	testpb "sgrpcpeer/testpb"
)

type server struct {
	testpb.UnimplementedTestServiceServer
	id string
}

func (s *server) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	return &testpb.Empty{}, nil
}

func (s *server) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	resp := &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, req.GetResponseSize())}}
	if req.GetFillServerId() {
		resp.ServerId = s.id
	}
	return resp, nil
}

func main() {
	id := flag.String("server_id", "", "instance id reported in SimpleResponse.server_id")
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: kernel-chosen)")
	flag.Parse()
	if *id == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: lbserver --server_id=ID [--port=N]")
		os.Exit(2)
	}
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "lbserver %s: %v\n", *id, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, &server{id: *id})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.GracefulStop()
	}()
	fmt.Printf("lbserver %s: listening on port %d\n", *id, lis.Addr().(*net.TCPAddr).Port)
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "lbserver %s: %v\n", *id, err)
		os.Exit(1)
	}
}
