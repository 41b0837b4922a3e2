// Command portcullis-node-agent serves the kubelet's streaming endpoints (exec, attach,
// portForward) for the Portcullis test cluster, using Kubernetes' own kubelet streaming server
// packages, so the upstream side of every stream the proxy handles is Kubernetes' own code.
//
// A "container" is a working directory on this machine: exec runs local processes there (with a
// real pty for tty=true), attach joins the container's main process, and port-forward dials
// 127.0.0.1:<port>. The kube-apiserver reaches the agent through a Node whose InternalIP is
// 127.0.0.1, exactly as it reaches a real kubelet.
//
// It is built inside Debian's kubernetes source tree (see scripts/testenv/build.sh).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/kubernetes/pkg/kubelet/cri/streaming/portforward"
	remotecommandserver "k8s.io/kubernetes/pkg/kubelet/cri/streaming/remotecommand"
)

// The kubelet's defaults (pkg/kubelet/cri/streaming/server.go).
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommandconsts.DefaultStreamCreationTimeout
)

func main() {
	listen := flag.String("listen", "127.0.0.1:10250", "address to serve on")
	certFile := flag.String("tls-cert", "", "serving certificate (PEM)")
	keyFile := flag.String("tls-key", "", "serving key (PEM)")
	clientCA := flag.String("client-ca", "", "CA that signs the apiserver's kubelet client certificate")
	root := flag.String("root", "", "directory holding each container's working directory")
	attachCommand := flag.String("attach-command", "/bin/sh", "main process of every container, started on first attach")
	flag.Parse()
	if *certFile == "" || *keyFile == "" || *clientCA == "" || *root == "" {
		log.Fatal("--tls-cert, --tls-key, --client-ca and --root are required")
	}

	caPEM, err := ioutil.ReadFile(*clientCA)
	if err != nil {
		log.Fatalf("reading client CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("no certificates in %s", *clientCA)
	}

	containers := newContainers(*root, strings.Fields(*attachCommand))
	server := &http.Server{
		Addr:    *listen,
		Handler: &router{containers: containers},
		TLSConfig: &tls.Config{
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  pool,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
		},
		ErrorLog: log.New(os.Stderr, "http: ", log.LstdFlags),
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		containers.stopAll()
		server.Close()
	}()

	log.Printf("node agent serving on https://%s", *listen)
	if err := server.ListenAndServeTLS(*certFile, *keyFile); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// router maps the kubelet's URL layout onto the streaming server:
//
//	/exec/{namespace}/{pod}/[{uid}/]{container}?command=…&input=1&output=1&error=1&tty=1
//	/attach/{namespace}/{pod}/[{uid}/]{container}?…
//	/portForward/{namespace}/{pod}[/{uid}]
type router struct {
	containers *containers
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 1 && parts[0] == "healthz" {
		fmt.Fprint(w, "ok")
		return
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		http.Error(w, "a client certificate signed by the cluster CA is required", http.StatusUnauthorized)
		return
	}
	log.Printf("%s %s upgrade=%q protocols=%q %q from %s", r.Method, r.URL.Path,
		r.Header.Get("Upgrade"), r.Header.Values("X-Stream-Protocol-Version"),
		r.Header.Values("Sec-Websocket-Protocol"), r.RemoteAddr)

	switch {
	case (parts[0] == "exec" || parts[0] == "attach") && (len(parts) == 4 || len(parts) == 5):
		namespace, pod, container := parts[1], parts[2], parts[len(parts)-1]
		opts, err := remotecommandserver.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		target := rt.containers.get(namespace, pod, container)
		podName := namespace + "/" + pod
		if parts[0] == "exec" {
			remotecommandserver.ServeExec(w, r, target, podName, types.UID(""), container,
				r.URL.Query()["command"], opts, streamIdleTimeout, streamCreationTimeout,
				remotecommandconsts.SupportedStreamingProtocols)
		} else {
			remotecommandserver.ServeAttach(w, r, target, podName, types.UID(""), container,
				opts, streamIdleTimeout, streamCreationTimeout,
				remotecommandconsts.SupportedStreamingProtocols)
		}
	case parts[0] == "portForward" && (len(parts) == 3 || len(parts) == 4):
		opts, err := portforward.NewV4Options(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		portforward.ServePortForward(w, r, portForwarder{}, parts[1]+"/"+parts[2], types.UID(""),
			opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	default:
		http.NotFound(w, r)
	}
}
