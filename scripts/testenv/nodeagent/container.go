package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// containers holds one container per namespace/pod/name, created on first use.
type containers struct {
	root          string
	attachCommand []string

	mu    sync.Mutex
	byKey map[string]*container
}

func newContainers(root string, attachCommand []string) *containers {
	return &containers{root: root, attachCommand: attachCommand, byKey: map[string]*container{}}
}

func (cs *containers) get(namespace, pod, name string) *container {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	key := namespace + "/" + pod + "/" + name
	if c, ok := cs.byKey[key]; ok {
		return c
	}
	c := &container{
		namespace: namespace, pod: pod, name: name,
		dir:           filepath.Join(cs.root, namespace, pod, name),
		attachCommand: cs.attachCommand,
	}
	cs.byKey[key] = c
	return c
}

func (cs *containers) stopAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.byKey {
		c.stopMain()
	}
}

// container runs processes as if inside one container of a pod: in its own working directory,
// with HOSTNAME set to the pod name.
type container struct {
	namespace, pod, name string
	dir                  string
	attachCommand        []string

	mu   sync.Mutex
	main *mainProcess
}

func (c *container) command(argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command given")
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + c.dir,
		"HOSTNAME=" + c.pod,
		"POD_NAMESPACE=" + c.namespace,
		"POD_NAME=" + c.pod,
		"CONTAINER_NAME=" + c.name,
	}
	return cmd, nil
}

// ExecInContainer implements remotecommand.Executor: it runs cmd as a local process and reports
// its exit code the way the kubelet does (a utilexec.ExitError becomes a NonZeroExitCode status).
func (c *container) ExecInContainer(_ string, _ types.UID, _ string, argv []string, in io.Reader,
	out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	cmd, err := c.command(argv)
	if err != nil {
		return err
	}
	log.Printf("exec %s/%s/%s %q tty=%v stdin=%v", c.namespace, c.pod, c.name, argv, tty, in != nil)
	if tty {
		err = runWithPTY(cmd, in, out, resize)
	} else {
		err = runWithPipes(cmd, in, out, errOut)
	}
	return exitError(err)
}

// runWithPipes wires the streams through OS pipes. Stdin is copied by hand so that the process's
// exit, not the client's stdin, ends the exec (exec.Cmd.Wait would wait for stdin to hit EOF).
func runWithPipes(cmd *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	var stdinWriter *os.File
	if in != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdin, stdinWriter = r, w
		defer r.Close()
	}
	if out != nil {
		cmd.Stdout = out
	}
	if errOut != nil {
		cmd.Stderr = errOut
	}
	if err := cmd.Start(); err != nil {
		if stdinWriter != nil {
			stdinWriter.Close()
		}
		return err
	}
	if stdinWriter != nil {
		go func() {
			io.Copy(stdinWriter, in)
			stdinWriter.Close()
		}()
	}
	return cmd.Wait()
}

// runWithPTY runs cmd as a session leader on a fresh pty, as a container runtime does for tty=true.
func runWithPTY(cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		return err
	}
	go applyResizes(master, resize)
	if in != nil {
		go io.Copy(master, in)
	}
	outputDone := make(chan struct{})
	go func() {
		defer close(outputDone)
		if out != nil {
			io.Copy(out, master) // ends with EIO once every holder of the slave side is gone
		} else {
			io.Copy(io.Discard, master)
		}
	}()
	waitErr := cmd.Wait()
	select {
	case <-outputDone:
	case <-time.After(2 * time.Second): // a background job still holds the pty: do not hang
	}
	return waitErr
}

func applyResizes(master *os.File, resize <-chan remotecommand.TerminalSize) {
	if resize == nil {
		return
	}
	for size := range resize {
		if err := setWindowSize(master, size.Width, size.Height); err != nil {
			log.Printf("resize: %v", err)
		}
	}
}

// exitError converts a process's exit into the kubelet's ExitError so the status carries the code.
func exitError(err error) error {
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return err
	}
	status, ok := exitErr.Sys().(syscall.WaitStatus)
	if !ok {
		return err
	}
	code := status.ExitStatus()
	if status.Signaled() {
		code = 128 + int(status.Signal())
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code}
}
