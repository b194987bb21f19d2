// go_services_peer: grpc-go (Debian's 1.33, GO111MODULE=off) client for
// test_services_peers. Asks an sgrpc server on 127.0.0.1:PORT for health
// (Check, Watch with the status flips the C side makes) and server
// reflection v1alpha (list_services, file_containing_symbol, an unknown
// symbol), decoding the FileDescriptorProtos with golang/protobuf.
// Exits 0 only when every answer was right.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	dpb "github.com/golang/protobuf/protoc-gen-go/descriptor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	hpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
)

func check(ok bool, format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if !ok {
		fmt.Println("FAIL: " + msg)
		os.Exit(1)
	}
	fmt.Println("ok: " + msg)
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "127.0.0.1:"+os.Args[1], grpc.WithInsecure(), grpc.WithBlock())
	check(err == nil, "dial: %v", err)
	defer conn.Close()

	h := hpb.NewHealthClient(conn)
	r, err := h.Check(ctx, &hpb.HealthCheckRequest{Service: ""})
	check(err == nil && r.Status == hpb.HealthCheckResponse_SERVING, "Check('') SERVING: %v %v", r, err)
	r, err = h.Check(ctx, &hpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	check(err == nil && r.Status == hpb.HealthCheckResponse_NOT_SERVING, "Check(TestService) NOT_SERVING: %v %v", r, err)
	_, err = h.Check(ctx, &hpb.HealthCheckRequest{Service: "no.Such"})
	check(status.Code(err) == codes.NotFound, "Check(no.Such) NOT_FOUND: %v", err)

	wctx, wcancel := context.WithCancel(ctx)
	w, err := h.Watch(wctx, &hpb.HealthCheckRequest{Service: "svc.Flip"})
	check(err == nil, "Watch started: %v", err)
	var seen []hpb.HealthCheckResponse_ServingStatus
	for len(seen) < 3 {
		m, err := w.Recv()
		check(err == nil, "Watch message: %v", err)
		seen = append(seen, m.Status)
	}
	wcancel()
	check(seen[0] == hpb.HealthCheckResponse_SERVICE_UNKNOWN && seen[1] == hpb.HealthCheckResponse_SERVING &&
		seen[2] == hpb.HealthCheckResponse_NOT_SERVING, "Watch saw SERVICE_UNKNOWN, SERVING, NOT_SERVING: %v", seen)

	rc := rpb.NewServerReflectionClient(conn)
	s, err := rc.ServerReflectionInfo(ctx)
	check(err == nil, "reflection stream: %v", err)
	reqs := []*rpb.ServerReflectionRequest{
		{Host: "a", MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: ""}},
		{Host: "b", MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.TestService"}},
		{Host: "c", MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.Nope"}},
		{Host: "d", MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.SimpleRequest"}},
	}
	var answers []*rpb.ServerReflectionResponse
	for _, q := range reqs { // one request, one answer: the stream stays in step
		check(s.Send(q) == nil, "send %s", q.Host)
		a, err := s.Recv()
		check(err == nil, "answer %s: %v", q.Host, err)
		check(a.ValidHost == q.Host && proto.Equal(a.OriginalRequest, q), "answer %s echoes its request", q.Host)
		answers = append(answers, a)
	}
	check(s.CloseSend() == nil, "close send")
	_, err = s.Recv()
	check(err == io.EOF, "stream ends with status OK after the half-close: %v", err)

	var names []string
	for _, sv := range answers[0].GetListServicesResponse().GetService() {
		names = append(names, sv.GetName())
	}
	sort.Strings(names)
	check(strings.Join(names, ",") == "grpc.health.v1.Health,grpc.reflection.v1.ServerReflection,"+
		"grpc.reflection.v1alpha.ServerReflection,grpc.testing.TestService", "list_services %v", names)

	fds := answers[1].GetFileDescriptorResponse().GetFileDescriptorProto()
	check(len(fds) == 3, "TestService: its file and two imports (%d)", len(fds))
	var fd dpb.FileDescriptorProto
	check(proto.Unmarshal(fds[0], &fd) == nil, "FileDescriptorProto decodes")
	check(fd.GetName() == "grpc/testing/test.proto" && fd.GetPackage() == "grpc.testing", "file %s", fd.GetName())
	var methods []string
	for _, sv := range fd.GetService() {
		if sv.GetName() == "TestService" {
			for _, m := range sv.GetMethod() {
				methods = append(methods, m.GetName()+":"+m.GetInputType())
			}
		}
	}
	check(len(methods) == 8 && methods[1] == "UnaryCall:.grpc.testing.SimpleRequest", "TestService methods %v", methods)
	check(answers[2].GetErrorResponse().GetErrorCode() == int32(codes.NotFound), "unknown symbol: NOT_FOUND")
	fds = answers[3].GetFileDescriptorResponse().GetFileDescriptorProto()
	check(len(fds) == 1 && proto.Unmarshal(fds[0], &fd) == nil && fd.GetName() == "grpc/testing/messages.proto",
		"SimpleRequest is in messages.proto")
	fmt.Println("ALL OK")
}
