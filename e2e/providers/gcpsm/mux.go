package main

// One port for both transports: connections that open with the HTTP/2 client preface go to the gRPC server
// (served natively, exactly as before the REST mapping existed), the others to the HTTP/1.1 REST handler.

import (
	"bufio"
	"bytes"
	"net"
	"sync"
)

// preface is the start of the HTTP/2 connection preface (RFC 9113 §3.4): "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
var preface = []byte("PRI * HTTP/2.0")

// peekedConn replays the bytes read while deciding where a connection goes.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by the demultiplexer.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// demux accepts from lis and hands each connection to grpcL (HTTP/2 preface) or restL (anything else).
func demux(lis net.Listener, grpcL, restL *chanListener) {
	for {
		conn, err := lis.Accept()
		if err != nil {
			grpcL.Close()
			restL.Close()
			return
		}
		go func() {
			r := bufio.NewReader(conn)
			head, _ := r.Peek(len(preface))
			target := restL
			if bytes.Equal(head, preface) {
				target = grpcL
			}
			select {
			case target.conns <- &peekedConn{Conn: conn, r: r}:
			case <-target.closed:
				conn.Close()
			}
		}()
	}
}
