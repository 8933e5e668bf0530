package mongostore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// ErrNotMongoDB means a host of the URI accepts connections but does not
// speak the MongoDB wire protocol (an HTTP server, say).
var ErrNotMongoDB = errors.New("the server accepts connections but does not answer as MongoDB")

// wire protocol opcodes of replies.
const (
	opReply = 1
	opMsg   = 2013
)

// ProbeWire tells a database that is down from a peer that is not MongoDB,
// for the start-up decision: the driver reports both as a server selection
// timeout. For each host of the URI it connects and sends a hello: a refused
// or timed-out connection, or one closed before any reply, means down (nil
// is returned: wait for it); a reply that is not a MongoDB message, or no
// reply at all within timeout, returns ErrNotMongoDB. URIs that name hosts
// through DNS SRV records are not probed.
func ProbeWire(ctx context.Context, uri string, timeout time.Duration) error {
	cs, err := connstring.Parse(uri)
	if err != nil || strings.HasPrefix(uri, "mongodb+srv://") {
		return nil
	}
	hello, err := helloMessage()
	if err != nil {
		return err
	}
	for _, host := range cs.Hosts {
		if err := probeHost(ctx, host, hello, timeout); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

func probeHost(ctx context.Context, host string, hello []byte, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil // refused or timed out: down
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(hello); err != nil {
		return nil // closed on us: down (e.g. a proxy with nothing behind it)
	}
	var header [16]byte
	n, err := io.ReadFull(conn, header[:])
	var ne net.Error
	switch {
	case n == 0 && errors.As(err, &ne) && ne.Timeout():
		return ErrNotMongoDB // connected, but silent
	case n == 0:
		return nil // closed before any reply: down
	case err != nil:
		return ErrNotMongoDB // a few bytes, then nothing: not a MongoDB reply
	}
	length := binary.LittleEndian.Uint32(header[0:4])
	opcode := binary.LittleEndian.Uint32(header[12:16])
	if length < 16 || length > 48<<20 || (opcode != opMsg && opcode != opReply) {
		return ErrNotMongoDB
	}
	return nil
}

// helloMessage encodes an OP_MSG {hello: 1, $db: "admin"}.
func helloMessage() ([]byte, error) {
	doc, err := bson.Marshal(bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}})
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 16+4+1+len(doc))
	binary.LittleEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.LittleEndian.PutUint32(msg[4:8], 1) // requestID
	binary.LittleEndian.PutUint32(msg[12:16], opMsg)
	// flagBits (4 bytes) stay zero; section kind 0 is a single document.
	msg[20] = 0
	copy(msg[21:], doc)
	return msg, nil
}
