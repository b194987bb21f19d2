// Package gzipflag registers a "gzip" compressor for grpc-go that also
// records, per goroutine, that a received message had the compressed flag set.
//
// grpc-go 1.33 does not tell an application whether a received message was
// compressed, but it decompresses a message only when its compressed flag is
// set, and it does so on the goroutine that receives the message: the
// handler's goroutine on a server (before a unary handler runs, inside
// RecvMsg for streams) and the caller's goroutine in a client's RecvMsg.
// So: call Reset() before receiving a message and Take() after it.
package gzipflag

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"strconv"
	"sync"

	"google.golang.org/grpc/encoding"
)

var seen sync.Map // goroutine id -> true when a message was decompressed

// goid parses the current goroutine's id out of its stack header
// ("goroutine 123 [running]:"); ids are never reused in one process.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := bytes.Fields(buf[:n])
	if len(f) < 2 {
		return 0
	}
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}

// Reset forgets what this goroutine received so far.
func Reset() { seen.Delete(goid()) }

// Take reports whether a compressed message was received on this goroutine
// since the last Reset or Take, and forgets it.
func Take() bool {
	_, ok := seen.LoadAndDelete(goid())
	return ok
}

type compressor struct{}

func (compressor) Name() string { return "gzip" }

func (compressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return gzip.NewWriter(w), nil
}

func (compressor) Decompress(r io.Reader) (io.Reader, error) {
	seen.Store(goid(), true)
	return gzip.NewReader(r)
}

// Register installs the compressor under "gzip", replacing any other.
func Register() { encoding.RegisterCompressor(compressor{}) }
