// Command client checks an sgrpc demo.Demo server (examples/demo) from
// grpc-go, a gRPC stack with its own HTTP/2. Every check asserts exact
// results; the exit status is 0 only if all passed.
//
//	go-demo-client --target 127.0.0.1:PORT [--ca PEM [--cert PEM --key PEM]]
//
// With --ca the channel is TLS (the server's name is checked against the
// target's host); with --cert/--key it shows a client certificate.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "sgrpcdemo/demopb"
)

const (
	timeout    = 10 * time.Second
	failSuffix = ": na\u00efve caf\u00e9 \u2713"
)

var passed, failed int

func check(name string, fn func() error) {
	t0 := time.Now()
	if err := fn(); err != nil {
		failed++
		fmt.Printf("FAIL %-24s %v\n", name, err)
		return
	}
	passed++
	fmt.Printf("PASS %-24s (%d ms)\n", name, time.Since(t0).Milliseconds())
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}

// wantCode expects err to be a gRPC status with code c.
func wantCode(err error, c codes.Code) (*status.Status, error) {
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != c {
		return st, fmt.Errorf("got %v, want %v", err, c)
	}
	return st, nil
}

func main() {
	target := flag.String("target", "", "HOST:PORT")
	caFile := flag.String("ca", "", "TLS: trust this CA (PEM)")
	certFile := flag.String("cert", "", "TLS: client certificate (PEM)")
	keyFile := flag.String("key", "", "TLS: client key (PEM)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "usage: go-demo-client --target HOST:PORT [--ca PEM [--cert PEM --key PEM]]")
		os.Exit(2)
	}
	dial := []grpc.DialOption{grpc.WithBlock()}
	if *caFile != "" {
		pem, err := ioutil.ReadFile(*caFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			fmt.Println("go-client: cannot load CA", *caFile)
			os.Exit(1)
		}
		cfg := &tls.Config{RootCAs: pool}
		if *certFile != "" {
			cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				fmt.Println("go-client: TLS:", err)
				os.Exit(1)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		dial = append(dial, grpc.WithInsecure())
	}
	dctx, dcancel := ctx()
	conn, err := grpc.DialContext(dctx, *target, dial...)
	dcancel()
	if err != nil {
		fmt.Println("go-client: cannot connect:", err)
		os.Exit(1)
	}
	defer conn.Close()
	c := pb.NewDemoClient(conn)

	check("unary Say", func() error {
		x, cancel := ctx()
		defer cancel()
		r, err := c.Say(x, &pb.Hello{Name: "go"})
		if err != nil {
			return err
		}
		if r.Text != "hello go" {
			return fmt.Errorf("text %q", r.Text)
		}
		return nil
	})

	check("metadata echo", func() error {
		x, cancel := ctx()
		defer cancel()
		x = metadata.AppendToOutgoingContext(x, "x-echo-a", "1", "x-echo-bin", "\x00\x01\xfe\xff",
			"x-other", "z")
		var hdr, trl metadata.MD
		r, err := c.Say(x, &pb.Hello{Name: "md"}, grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			return err
		}
		if r.Text != "hello md" {
			return fmt.Errorf("text %q", r.Text)
		}
		for what, md := range map[string]metadata.MD{"headers": hdr, "trailers": trl} {
			if v := md.Get("x-echo-a"); len(v) != 1 || v[0] != "1" {
				return fmt.Errorf("%s: x-echo-a %q", what, v)
			}
			if v := md.Get("x-echo-bin"); len(v) != 1 || v[0] != "\x00\x01\xfe\xff" {
				return fmt.Errorf("%s: x-echo-bin %q", what, v)
			}
			if v := md.Get("x-other"); len(v) != 0 {
				return fmt.Errorf("%s: x-other echoed", what)
			}
		}
		return nil
	})

	check("compression gzip", func() error {
		x, cancel := ctx()
		defer cancel()
		name := strings.Repeat("z", 3000)
		x = metadata.AppendToOutgoingContext(x, "x-compress-response", "gzip")
		var trl metadata.MD
		r, err := c.Say(x, &pb.Hello{Name: name}, grpc.UseCompressor(gzip.Name), grpc.Trailer(&trl))
		if err != nil {
			return err
		}
		if r.Text != "hello "+name {
			return fmt.Errorf("text %.20q", r.Text)
		}
		if v := trl.Get("x-request-compressed"); len(v) != 1 || v[0] != "1" {
			return fmt.Errorf("server saw the request compressed: %q", v)
		}
		if v := trl.Get("x-response-encoding"); len(v) != 1 || v[0] != "gzip" {
			return fmt.Errorf("response encoding %q", v)
		}
		return nil
	})

	check("large unary (1 MB)", func() error {
		x, cancel := ctx()
		defer cancel()
		name := strings.Repeat("x", 1000000)
		r, err := c.Say(x, &pb.Hello{Name: name})
		if err != nil {
			return err
		}
		if r.Text != "hello "+name {
			return fmt.Errorf("length %d", len(r.Text))
		}
		return nil
	})

	countCheck := func(n int32, prefix string) func() error {
		return func() error {
			x, cancel := ctx()
			defer cancel()
			s, err := c.Count(x, &pb.CountReq{N: n, Prefix: prefix})
			if err != nil {
				return err
			}
			for i := int32(1); ; i++ {
				r, err := s.Recv()
				if err == io.EOF {
					if i != n+1 {
						return fmt.Errorf("%d replies, want %d", i-1, n)
					}
					return nil
				}
				if err != nil {
					return err
				}
				if want := fmt.Sprintf("%s %d", prefix, i); r.Text != want {
					return fmt.Errorf("reply %d: %.20q", i, r.Text)
				}
			}
		}
	}
	check("server stream Count 5", countCheck(5, "n"))
	check("server stream Count 3000", countCheck(3000, strings.Repeat("p", 300)))

	sumCheck := func(n int64) func() error {
		return func() error {
			x, cancel := ctx()
			defer cancel()
			s, err := c.Sum(x)
			if err != nil {
				return err
			}
			for i := int64(1); i <= n; i++ {
				if err := s.Send(&pb.Num{Value: i}); err != nil {
					return err
				}
			}
			t, err := s.CloseAndRecv()
			if err != nil {
				return err
			}
			if t.Sum != n*(n+1)/2 || int64(t.Count) != n {
				return fmt.Errorf("sum %d count %d", t.Sum, t.Count)
			}
			return nil
		}
	}
	check("client stream Sum", sumCheck(1000))
	check("client stream Sum empty", sumCheck(0))

	check("bidi Chat ping-pong", func() error {
		// The next request goes out only after the previous reply arrived.
		x, cancel := ctx()
		defer cancel()
		s, err := c.Chat(x)
		if err != nil {
			return err
		}
		for i := 0; i < 20; i++ {
			name := fmt.Sprintf("r%d", i)
			if err := s.Send(&pb.Hello{Name: name}); err != nil {
				return err
			}
			r, err := s.Recv()
			if err != nil {
				return err
			}
			if r.Text != "echo: "+name {
				return fmt.Errorf("reply %q", r.Text)
			}
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		if _, err := s.Recv(); err != io.EOF {
			return fmt.Errorf("after half-close: %v", err)
		}
		return nil
	})

	check("deadline exceeded", func() error {
		x, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		_, err := c.Sleep(x, &pb.Hello{Name: "z", SleepMs: 3000})
		if _, e := wantCode(err, codes.DeadlineExceeded); e != nil {
			return e
		}
		if el := time.Since(t0); el > 2500*time.Millisecond {
			return fmt.Errorf("took %v", el)
		}
		return nil
	})

	check("unknown method", func() error {
		x, cancel := ctx()
		defer cancel()
		err := conn.Invoke(x, "/demo.Demo/NoSuchMethod", &pb.Hello{}, &pb.Reply{})
		_, e := wantCode(err, codes.Unimplemented)
		return e
	})

	check("error status, non-ASCII", func() error {
		x, cancel := ctx()
		defer cancel()
		_, err := c.Fail(x, &pb.Hello{Name: "go\u00e9"})
		st, e := wantCode(err, codes.InvalidArgument)
		if e != nil {
			return e
		}
		if want := "demo failure for go\u00e9" + failSuffix; st.Message() != want {
			return fmt.Errorf("message %q", st.Message())
		}
		return nil
	})

	check("client cancel", func() error {
		x, cancel := context.WithCancel(context.Background())
		s, err := c.Count(x, &pb.CountReq{N: 1000000, Prefix: "c"})
		if err != nil {
			cancel()
			return err
		}
		for i := 0; i < 10; i++ {
			if _, err := s.Recv(); err != nil {
				cancel()
				return err
			}
		}
		cancel()
		for i := 0; ; i++ { // replies already buffered may still arrive
			_, err := s.Recv()
			if err == nil && i < 1000000 {
				continue
			}
			if _, e := wantCode(err, codes.Canceled); e != nil {
				return e
			}
			break
		}
		y, cancel2 := ctx()
		defer cancel2()
		r, err := c.Say(y, &pb.Hello{Name: "after"})
		if err != nil {
			return err
		}
		if r.Text != "hello after" {
			return fmt.Errorf("text %q", r.Text)
		}
		return nil
	})

	check("200 concurrent calls", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				x, cancel := ctx()
				defer cancel()
				name := fmt.Sprintf("c%d", i)
				r, err := c.Say(x, &pb.Hello{Name: name})
				if err == nil && r.Text != "hello "+name {
					err = fmt.Errorf("call %d: %q", i, r.Text)
				}
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})

	fmt.Printf("go-client: %d of %d checks passed\n", passed, passed+failed)
	if failed > 0 {
		os.Exit(1)
	}
}
