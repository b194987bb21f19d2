// Command lbclient is a grpc-go client for the round_robin tests of
// interop/lb: one channel with the round_robin policy over a fixed list
// of addresses (grpc-go 1.33 has no ipv4: resolver, so a manual resolver
// hands them over), --calls UnaryCall RPCs with fill_server_id, at most
// --concurrency in flight, every call wait-for-ready and under a retry
// policy for UNAVAILABLE (service config; grpc-go 1.33 applies retry
// policies only with GRPC_GO_RETRY=on in its environment at start, so the
// program re-executes itself with it set).
//
//	lbclient --target=ipv4:127.0.0.1:P1,127.0.0.1:P2,... --calls=N
//	         [--concurrency=C] [--kill_pid=PID --kill_after=K]
//	         [--warmup_backends=W]
//
// First, uncounted, one call at a time until W distinct backends answered
// (default: the number of addresses; bounded by 10 s): round_robin spreads
// calls over the READY backends only, and the counted run starts once all
// of them are.
//
// With --kill_pid, once K calls have completed the client sends SIGKILL to
// PID (a backend), waits until it is dead, and goes on: the calls then in flight are "inflight",
// those started later "after". Output, the format interop/lb/run_rr.sh
// checks (every client of the tests prints it):
//
//	rr: served PHASE SERVER_ID COUNT    (PHASE: before, inflight, after)
//	rr: failed INDEX PHASE CODE - MESSAGE (one line per failed call)
//	rr: warmup N calls, M backends answered
//	rr: attempts N                      (streams opened, retries included)
//	rr: total ok=N failed=M
//
// Exit status 0 when every call succeeded, 1 otherwise, 2 for bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	testpb "sgrpcpeer/testpb"
)

// The policy and retry settings every client of the tests uses: retries
// cover the calls in flight to a backend that dies (they end UNAVAILABLE
// before any response), wait-for-ready the moments no backend is READY.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "grpc.testing.TestService"}],
    "waitForReady": true,
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

const callTimeout = 20 * time.Second

// streamCounter counts the HTTP/2 streams the client opens: one per
// attempt, so attempts above --calls are retries (grpc-go 1.33 reports
// stats.OutHeader for every attempt's stream, stats.Begin only once).
type streamCounter struct{ n int64 }

func (c *streamCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *streamCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.OutHeader); ok && h.Client {
		atomic.AddInt64(&c.n, 1)
	}
}
func (c *streamCounter) reset() { atomic.StoreInt64(&c.n, 0) }
func (c *streamCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (c *streamCounter) HandleConn(context.Context, stats.ConnStats) {}

// processDead reports whether pid has died: its /proc entry is gone or a
// zombie (its sockets are closed by then).
func processDead(pid int) bool {
	b, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')') // "pid (comm) S ...": comm may hold anything
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// killBackend SIGKILLs pid and waits (bounded, 5 s) until it is dead, so
// that calls counted as "after" start only once its connections are gone.
func killBackend(pid int) {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		fmt.Printf("rr: kill %d: %v\n", pid, err)
		return
	}
	for i := 0; i < 5000 && !processDead(pid); i++ {
		time.Sleep(time.Millisecond)
	}
	if !processDead(pid) {
		fmt.Printf("rr: %d still alive 5 s after SIGKILL\n", pid)
	}
}

func main() {
	if os.Getenv("GRPC_GO_RETRY") != "on" {
		// grpc-go reads the variable once, at package initialisation.
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, append(os.Environ(), "GRPC_GO_RETRY=on"))
		}
		fmt.Fprintf(os.Stderr, "lbclient: cannot re-execute with GRPC_GO_RETRY=on: %v\n", err)
		os.Exit(2)
	}
	target := flag.String("target", "", "ipv4:ADDR:PORT[,ADDR:PORT...]")
	calls := flag.Int("calls", 3000, "number of calls")
	concurrency := flag.Int("concurrency", 8, "calls in flight at most")
	killPid := flag.Int("kill_pid", 0, "process to SIGKILL mid-run (0: none)")
	killAfter := flag.Int("kill_after", 0, "completed calls before the kill")
	warmup := flag.Int("warmup_backends", -1, "backends to hear from before counting (-1: all addresses)")
	flag.Parse()
	if !strings.HasPrefix(*target, "ipv4:") || *calls <= 0 || *concurrency <= 0 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: lbclient --target=ipv4:A:P[,A:P...] --calls=N [--concurrency=C] [--kill_pid=PID --kill_after=K]")
		os.Exit(2)
	}
	var addrs []resolver.Address
	for _, a := range strings.Split(strings.TrimPrefix(*target, "ipv4:"), ",") {
		addrs = append(addrs, resolver.Address{Addr: a})
	}
	r := manual.NewBuilderWithScheme("sgrpclb")
	r.InitialState(resolver.State{Addresses: addrs})
	streams := &streamCounter{}
	conn, err := grpc.Dial(r.Scheme()+":///backends", grpc.WithInsecure(), grpc.WithResolvers(r),
		grpc.WithDefaultServiceConfig(serviceConfig), grpc.WithStatsHandler(streams))
	if err != nil {
		fmt.Printf("rr: dial: %v\n", err)
		os.Exit(1)
	}
	defer conn.Close()
	tc := testpb.NewTestServiceClient(conn)
	if *warmup < 0 {
		*warmup = len(addrs)
	}
	seen := map[string]bool{}
	nwarm := 0
	for until := time.Now().Add(10 * time.Second); len(seen) < *warmup && time.Now().Before(until); nwarm++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(until))
		resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true})
		cancel()
		if err == nil {
			seen[resp.GetServerId()] = true
		}
	}
	fmt.Printf("rr: warmup %d calls, %d backends answered\n", nwarm, len(seen))
	streams.reset()

	var mu sync.Mutex
	served := map[string]map[string]int{"before": {}, "inflight": {}, "after": {}}
	var failures []string
	done, next, ok, failed := 0, 0, 0, 0
	killed := false
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next == *calls {
					mu.Unlock()
					return
				}
				idx := next
				next++
				startedAfter := killed
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true})
				cancel()
				mu.Lock()
				phase := "before"
				if startedAfter {
					phase = "after"
				} else if killed {
					phase = "inflight"
				}
				if err != nil {
					s, _ := status.FromError(err)
					failures = append(failures, fmt.Sprintf("%d %s %s - %q", idx, phase, s.Code(), s.Message()))
					failed++
				} else {
					served[phase][resp.GetServerId()]++
					ok++
				}
				done++
				if *killPid > 0 && !killed && done >= *killAfter {
					// under the lock: no call starts while the kill is under way
					killBackend(*killPid)
					killed = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, phase := range []string{"before", "inflight", "after"} {
		var ids []string
		for id := range served[phase] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Printf("rr: served %s %s %d\n", phase, id, served[phase][id])
		}
	}
	for _, f := range failures {
		fmt.Printf("rr: failed %s\n", f)
	}
	fmt.Printf("rr: attempts %d (streams opened; above the calls: retries)\n", atomic.LoadInt64(&streams.n))
	fmt.Printf("rr: total ok=%d failed=%d\n", ok, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
