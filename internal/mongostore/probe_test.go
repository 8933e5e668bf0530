package mongostore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/mongostore"
)

// tcpServer accepts connections on loopback and hands each to serve.
func tcpServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProbeWire(t *testing.T) {
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	silent := tcpServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	httpLike := tcpServer(t, func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	hangUp := tcpServer(t, func(net.Conn) {})
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	ferret := strings.TrimSuffix(strings.TrimPrefix(db.URI(), "mongodb://"), "/")

	for _, tc := range []struct {
		name     string
		host     string
		notMongo bool
	}{
		{"RefusedIsDown", closed, false},
		{"ClosedWithoutReplyIsDown", hangUp, false},
		{"SilentIsNotMongo", silent, true},
		{"HTTPIsNotMongo", httpLike, true},
		{"FerretDBIsMongo", ferret, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mongostore.ProbeWire(context.Background(), "mongodb://"+tc.host+"/db", 300*time.Millisecond)
			if got := errors.Is(err, mongostore.ErrNotMongoDB); got != tc.notMongo {
				t.Fatalf("ProbeWire = %v, want not-MongoDB %v", err, tc.notMongo)
			}
		})
	}
}
