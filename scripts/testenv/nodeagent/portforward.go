package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// portForwarder implements portforward.PortForwarder: a pod port is 127.0.0.1:<port> here.
type portForwarder struct{}

func (portForwarder) PortForward(pod string, _ types.UID, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		return fmt.Errorf("failed to connect to port %d in pod %s: %v", port, pod, err)
	}
	defer conn.Close()
	log.Printf("port-forward %s:%d", pod, port)

	// The client's half-close reaches the pod as a TCP half-close. When the pod side has finished
	// writing, the forward is over: returning closes the streams, and kubectl waits for exactly
	// that (the error stream's end) before it closes its local connection.
	go func() {
		io.Copy(conn, stream)
		conn.(*net.TCPConn).CloseWrite()
	}()
	if _, err := io.Copy(stream, conn); err != nil {
		return fmt.Errorf("reading from port %d in pod %s: %v", port, pod, err)
	}
	return nil
}
