// bench-echo-go: bench.Echo (bench/proto/echo.proto) on grpc-go (Debian's
// golang-google-grpc-dev), as a server, or as a load client to compare
// with sgrpc-loadgen's CPU per request.
//
//	bench-echo-go --port=N                       server on 127.0.0.1:N
//	bench-echo-go --client --target=H:P --connections=C --concurrency=M
//	              --duration=S --payload=B [--mode=unary|stream]
//
// The client prints the same RESULT line as sgrpc-loadgen (latency
// percentiles are not kept: it is only used for its CPU per request).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	pb "bench/echopb"
)

type echoServer struct{}

func (echoServer) Unary(ctx context.Context, m *pb.EchoMsg) (*pb.EchoMsg, error) {
	return &pb.EchoMsg{Payload: m.Payload}, nil
}

func (echoServer) Stream(s pb.Echo_StreamServer) error {
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(m); err != nil {
			return err
		}
	}
}

func serve(port int) {
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-echo-go:", err)
		os.Exit(1)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	pb.RegisterEchoServer(s, echoServer{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; os.Exit(0) }()
	fmt.Printf("bench-echo-go: listening on 127.0.0.1:%d\n", port)
	s.Serve(lis)
}

func cpuMicros() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec)*1e6 + float64(ru.Utime.Usec+ru.Stime.Usec)
}

func client(target, mode string, conns, conc int, dur time.Duration, payload int) {
	msg := &pb.EchoMsg{Payload: bytes.Repeat([]byte("x"), payload)}
	var ok, errs int64
	stubs := make([]pb.EchoClient, conns)
	for i := range stubs {
		cc, err := grpc.Dial(target, grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		stubs[i] = pb.NewEchoClient(cc)
	}
	cpu0 := cpuMicros()
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(stub pb.EchoClient) {
			defer wg.Done()
			if mode == "stream" {
				st, err := stub.Stream(context.Background())
				if err != nil {
					atomic.AddInt64(&errs, 1)
					return
				}
				for time.Now().Before(end) {
					if st.Send(msg) != nil {
						atomic.AddInt64(&errs, 1)
						return
					}
					r, err := st.Recv()
					if err != nil || len(r.Payload) != payload {
						atomic.AddInt64(&errs, 1)
						return
					}
					atomic.AddInt64(&ok, 1)
				}
				st.CloseSend()
				if _, err := st.Recv(); err != io.EOF {
					atomic.AddInt64(&errs, 1)
				}
				return
			}
			for time.Now().Before(end) {
				r, err := stub.Unary(context.Background(), msg)
				if err != nil || len(r.Payload) != payload {
					atomic.AddInt64(&errs, 1)
					continue
				}
				atomic.AddInt64(&ok, 1)
			}
		}(stubs[w%conns])
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	cpu := cpuMicros() - cpu0
	per := 0.0
	if ok > 0 {
		per = cpu / float64(ok)
	}
	fmt.Printf("RESULT ok=%d errors=%d elapsed_s=%.4f rps=%.1f cpu_us_per_req=%.3f\n",
		ok, errs, el, float64(ok)/el, per)
}

func main() {
	port := flag.Int("port", 50051, "server port on 127.0.0.1")
	isClient := flag.Bool("client", false, "run the load client")
	target := flag.String("target", "127.0.0.1:50051", "client: server address")
	mode := flag.String("mode", "unary", "client: unary or stream")
	conns := flag.Int("connections", 1, "client: connections")
	conc := flag.Int("concurrency", 1, "client: calls in flight (total)")
	dur := flag.Float64("duration", 5, "client: seconds")
	payload := flag.Int("payload", 128, "client: payload bytes")
	flag.Parse()
	if *isClient {
		client(*target, *mode, *conns, *conc, time.Duration(*dur*float64(time.Second)), *payload)
		return
	}
	serve(*port)
}
