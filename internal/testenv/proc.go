//go:build linux

package testenv

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// group is a browser's process tree: the program started in a process group
// of its own, so that its helpers (Firefox's content processes, WebKit's web
// and network processes, MiniBrowser under WebKitWebDriver) end with it.
type group struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the leader has exited
	out    *tail
	once   sync.Once
}

// startGroup starts cmd as the leader of a new process group, its stdout and
// stderr kept in a tail (browsers are too chatty for the test log) and
// passed, a line at a time, to watch until it returns true.
func startGroup(cmd *exec.Cmd, watch func(line string) bool) (*group, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	g := &group{cmd: cmd, exited: make(chan struct{}), out: &tail{}}
	go func() {
		_ = cmd.Wait()
		w.Close()
		close(g.exited)
	}()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			g.out.add(sc.Text())
			if watch != nil && watch(sc.Text()) {
				watch = nil
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return g, nil
}

// stop waits up to grace for the leader to exit by itself (after a polite
// close), then kills the whole group and waits for the leader.
func (g *group) stop(grace time.Duration) {
	g.once.Do(func() {
		select {
		case <-g.exited:
		case <-time.After(grace):
		}
		// The leader may be gone while helpers linger: kill the group either way.
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
		<-g.exited
	})
}

// tail keeps a process's last lines of output, for the failure message.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > 40 {
		t.lines = t.lines[len(t.lines)-40:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
