// Command server is the demo.Demo service (examples/demo/demo.proto) on
// grpc-go: a peer that sgrpc-demo-client is tested against. Same semantics
// as examples/demo/server.c and ../../py_server.py.
//
//	go-demo-server --listen 127.0.0.1:PORT [--cert PEM --key PEM [--ca PEM]]
//
// With --cert/--key it serves TLS; with --ca too it requires a client
// certificate from that CA and prints the first caller's certificate name
// ("peer certificate CN=..."). Prints "listening" once serving; SIGTERM or
// SIGINT stop it (gracefully, bounded).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // requests may come gzip-compressed
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "sgrpcdemo/demopb"
)

const failSuffix = ": na\u00efve caf\u00e9 \u2713"

type demo struct {
	pb.UnimplementedDemoServer
}

var certOnce sync.Once

// notePeer prints the client's certificate name once (mutual TLS only).
func notePeer(ctx context.Context) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return
	}
	certOnce.Do(func() {
		fmt.Printf("go-server: peer certificate CN=%s\n", ti.State.PeerCertificates[0].Subject.CommonName)
	})
}

// echoMD is the request metadata whose keys start with "x-echo-".
func echoMD(ctx context.Context) metadata.MD {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		if strings.HasPrefix(k, "x-echo-") {
			out[k] = v
		}
	}
	return out
}

func (demo) Say(ctx context.Context, h *pb.Hello) (*pb.Reply, error) {
	notePeer(ctx)
	md := echoMD(ctx)
	// grpc-go 1.33 compresses the reply iff the request was compressed,
	// so x-compress-response needs no handling here.
	if err := grpc.SendHeader(ctx, md); err != nil {
		return nil, err
	}
	grpc.SetTrailer(ctx, md)
	return &pb.Reply{Text: "hello " + h.Name}, nil
}

func (demo) Count(r *pb.CountReq, s pb.Demo_CountServer) error {
	for i := int32(1); i <= r.N; i++ {
		if err := s.Send(&pb.Reply{Text: fmt.Sprintf("%s %d", r.Prefix, i)}); err != nil {
			return err
		}
	}
	return nil
}

func (demo) Sum(s pb.Demo_SumServer) error {
	var t pb.Total
	for {
		n, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&t)
		}
		if err != nil {
			return err
		}
		t.Sum += n.Value
		t.Count++
	}
}

func (demo) Chat(s pb.Demo_ChatServer) error {
	for {
		h, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&pb.Reply{Text: "echo: " + h.Name}); err != nil {
			return err
		}
	}
}

func (demo) Sleep(ctx context.Context, h *pb.Hello) (*pb.Reply, error) {
	select {
	case <-time.After(time.Duration(h.SleepMs) * time.Millisecond):
		return &pb.Reply{Text: fmt.Sprintf("slept %d", h.SleepMs)}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func (demo) Fail(ctx context.Context, h *pb.Hello) (*pb.Reply, error) {
	return nil, status.Error(codes.InvalidArgument, "demo failure for "+h.Name+failSuffix)
}

func main() {
	listen := flag.String("listen", "", "HOST:PORT")
	certFile := flag.String("cert", "", "TLS: server certificate (PEM)")
	keyFile := flag.String("key", "", "TLS: server key (PEM)")
	caFile := flag.String("ca", "", "TLS: require client certificates from this CA (PEM)")
	flag.Parse()
	if *listen == "" {
		fmt.Fprintln(os.Stderr, "usage: go-demo-server --listen HOST:PORT [--cert PEM --key PEM [--ca PEM]]")
		os.Exit(2)
	}
	var opts []grpc.ServerOption
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Println("go-server: TLS:", err)
			os.Exit(1)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		if *caFile != "" {
			pem, err := ioutil.ReadFile(*caFile)
			pool := x509.NewCertPool()
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				fmt.Println("go-server: cannot load CA", *caFile)
				os.Exit(1)
			}
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Println("go-server: cannot listen:", err)
		os.Exit(1)
	}
	s := grpc.NewServer(opts...)
	pb.RegisterDemoServer(s, demo{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			s.Stop()
		}
	}()
	fmt.Printf("go-server: listening on %s\n", *listen)
	if err := s.Serve(lis); err != nil {
		fmt.Println("go-server:", err)
		os.Exit(1)
	}
}
