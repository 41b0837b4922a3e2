package main

import (
	"errors"
	"io"
	"log"
	"os"
	"sync"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/remotecommand"
)

// mainProcess is a container's main process: started by the first attach (with that attach's tty
// setting), shared by every later attach until it exits. Its output goes to every attached client
// and any client's stdin goes to it. A client's stdin EOF closes the process's stdin, like a pod
// with stdinOnce: `echo cmd | kubectl attach -i` runs cmd and ends.
type mainProcess struct {
	tty   bool
	stdin io.WriteCloser
	pty   *os.File
	done  chan struct{}

	mu          sync.Mutex
	subscribers map[int]*subscriber
	nextID      int
	stdinClosed bool
}

type subscriber struct {
	out, errOut io.Writer
}

// AttachContainer implements remotecommand.Attacher.
func (c *container) AttachContainer(_ string, _ types.UID, _ string, in io.Reader, out, errOut io.WriteCloser,
	tty bool, resize <-chan remotecommand.TerminalSize) error {
	p, err := c.mainProcess(tty)
	if err != nil {
		return err
	}
	log.Printf("attach %s/%s/%s tty=%v stdin=%v", c.namespace, c.pod, c.name, p.tty, in != nil)
	id := p.subscribe(out, errOut)
	defer p.unsubscribe(id)
	if p.pty != nil {
		go applyResizes(p.pty, resize)
	}
	if in != nil {
		go func() {
			io.Copy(p.stdin, in)
			p.closeStdin()
		}()
	}
	<-p.done
	return nil
}

func (c *container) mainProcess(tty bool) (*mainProcess, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.main != nil {
		select {
		case <-c.main.done:
		default:
			return c.main, nil
		}
	}
	cmd, err := c.command(c.attachCommand)
	if err != nil {
		return nil, err
	}
	p := &mainProcess{tty: tty, done: make(chan struct{}), subscribers: map[int]*subscriber{}}
	var outputs []io.Reader
	if tty {
		master, slave, err := openPTY()
		if err != nil {
			return nil, err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		defer slave.Close()
		p.pty, p.stdin = master, master
		outputs = []io.Reader{master}
	} else {
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = stdin
		outputs = []io.Reader{stdout, stderr}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var copying sync.WaitGroup
	for i, r := range outputs {
		copying.Add(1)
		go func(r io.Reader, isStderr bool) {
			defer copying.Done()
			p.broadcast(r, isStderr)
		}(r, i == 1)
	}
	go func() {
		copying.Wait() // pipes: all output read before Wait closes them
		cmd.Wait()
		if p.pty != nil {
			p.pty.Close()
		}
		close(p.done)
	}()
	c.main = p
	return p, nil
}

func (c *container) stopMain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.main != nil {
		c.main.closeStdin()
	}
}

func (p *mainProcess) broadcast(r io.Reader, isStderr bool) {
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for _, s := range p.subscribers {
				w := s.out
				if isStderr && s.errOut != nil {
					w = s.errOut
				}
				if w != nil {
					w.Write(buf[:n])
				}
			}
			p.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EIO) {
				log.Printf("attach output: %v", err)
			}
			return
		}
	}
}

func (p *mainProcess) subscribe(out, errOut io.Writer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	s := &subscriber{}
	if out != nil {
		s.out = out
	}
	if errOut != nil {
		s.errOut = errOut
	}
	p.subscribers[p.nextID] = s
	return p.nextID
}

func (p *mainProcess) unsubscribe(id int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.subscribers, id)
}

func (p *mainProcess) closeStdin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdinClosed {
		return
	}
	p.stdinClosed = true
	if p.pty != nil {
		p.pty.Write([]byte{4}) // Ctrl-D: end of input for the program reading the terminal
		return
	}
	p.stdin.Close()
}
