package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// forwardedSignals are caught by zkrecipes and passed on to CMD.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// signals catches the forwarded signals for the whole run: while waiting for
// the lock one of them aborts the wait; while CMD runs it is passed on.
type signals struct {
	ch chan os.Signal
}

func catchSignals() *signals {
	s := &signals{ch: make(chan os.Signal, 4)}
	signal.Notify(s.ch, forwardedSignals...)
	return s
}

func (s *signals) stop() { signal.Stop(s.ch) }

// during runs wait (a blocking acquire or campaign) under a context that a
// caught signal cancels, and returns the signal if one came.
func during[T any](ctx context.Context, s *signals, wait func(ctx context.Context) (T, error)) (T, os.Signal, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop, done := make(chan struct{}), make(chan struct{})
	var got os.Signal
	go func() {
		defer close(done)
		select {
		case got = <-s.ch:
			cancel(errInterrupted)
		case <-stop:
		}
	}()
	v, err := wait(ctx)
	close(stop)
	<-done
	return v, got, err
}

func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitError
}

// lookCommand resolves CMD before we contend, so a typo costs no lock.
func lookCommand(argv []string) (string, error) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitNoExec
		}
		return "", fail(code, "%v", err)
	}
	return path, nil
}

// child is CMD, running.
type child struct {
	cmd *exec.Cmd
	// group: CMD leads its own process group and signals go to the whole
	// group, so a shell's children are stopped too. Otherwise (--foreground,
	// the default on a terminal) CMD stays in our group and can use the
	// terminal, and only CMD itself is signalled.
	group bool
	waitc chan struct{}
	log   *slog.Logger
}

func startChild(path string, argv, env []string, foreground bool, log *slog.Logger) (*child, error) {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args = argv
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = sysProcAttr(!foreground)
	if err := cmd.Start(); err != nil {
		code := exitNoExec
		if errors.Is(err, os.ErrNotExist) {
			code = exitNotFound
		}
		return nil, fail(code, "cannot run %s: %v", argv[0], err)
	}
	c := &child{cmd: cmd, group: !foreground, waitc: make(chan struct{}), log: log}
	go func() {
		_ = cmd.Wait() // the status is read from ProcessState
		close(c.waitc)
	}()
	return c, nil
}

func (c *child) signal(sig syscall.Signal) {
	if err := signalProcess(c.cmd.Process, c.group, sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.log.Debug("signal child", "signal", sig, "err", err)
	}
}

// status is CMD's exit status in shell terms.
func (c *child) status() int {
	st := c.cmd.ProcessState
	if code := st.ExitCode(); code >= 0 {
		return code
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exitError
}

// superviseResult says how CMD's run ended.
type superviseResult struct {
	status int   // CMD's exit status
	ended  error // non-nil if the lease or term ended while CMD ran: why
}

// supervision says how supervise watches CMD.
type supervision struct {
	sigs  *signals
	ended <-chan struct{} // closed when the lock or leadership is lost or revoked
	cause func() error    // why ended closed
	// onEnded, if set, runs when ended closes, before CMD is signalled.
	onEnded   func()
	grace     time.Duration // after SIGTERM on loss, before SIGKILL
	killAfter time.Duration // after a forwarded signal, before SIGKILL (0: never)
	what      string        // "lock /a", for messages
	stderr    io.Writer
}

// supervise waits for CMD to exit. It forwards caught signals to CMD; if
// CMD has not exited at the second it says so, at the third (or
// --kill-after after the first) it sends SIGKILL, so a CMD that ignores
// SIGTERM does not keep the lock forever. When ended is closed (the lock
// or leadership is lost or revoked) it sends CMD SIGTERM, then SIGKILL
// after grace, and reports cause().
func (c *child) supervise(s supervision) superviseResult {
	var res superviseResult
	var kill, killAfter <-chan time.Time
	ended := s.ended
	var signalled int // signals received from outside
	var firstSignal time.Time
	for {
		select {
		case <-c.waitc:
			res.status = c.status()
			if res.ended != nil && c.group {
				// Leave nothing of CMD's running without the lock.
				c.signal(syscall.SIGKILL)
			}
			return res
		case sig := <-s.sigs.ch:
			sn := sig.(syscall.Signal)
			signalled++
			switch signalled {
			case 1:
				firstSignal = time.Now()
				if s.killAfter > 0 {
					t := time.NewTimer(s.killAfter)
					defer t.Stop()
					killAfter = t.C
				}
			case 2:
				fmt.Fprintf(s.stderr, "zkrecipes: the command has not exited %v after the first signal and still holds the %s; one more signal kills it (SIGKILL)\n",
					time.Since(firstSignal).Round(time.Millisecond), s.what)
			default:
				fmt.Fprintf(s.stderr, "zkrecipes: %v received %d times: sending SIGKILL to the command\n", sn, signalled)
				c.signal(syscall.SIGKILL)
				continue
			}
			if !c.group && sn != syscall.SIGTERM {
				// CMD shares our terminal's process group: a ^C or a
				// hangup from the terminal reached it already.
				if isTerminal(os.Stdin) {
					continue
				}
			}
			c.log.Info("forwarding signal to command", "signal", sn)
			c.signal(sn)
		case <-killAfter:
			killAfter = nil
			fmt.Fprintf(s.stderr, "zkrecipes: the command did not exit within --kill-after %v of the signal: sending SIGKILL\n", s.killAfter)
			c.signal(syscall.SIGKILL)
		case <-ended:
			ended = nil
			res.ended = s.cause()
			if s.onEnded != nil {
				s.onEnded()
			}
			fmt.Fprintf(s.stderr, "zkrecipes: %s: %v; sending SIGTERM to the command (SIGKILL in %v)\n", s.what, res.ended, s.grace)
			c.signal(syscall.SIGTERM)
			t := time.NewTimer(s.grace)
			defer t.Stop()
			kill = t.C
		case <-kill:
			kill = nil
			fmt.Fprintf(s.stderr, "zkrecipes: the command did not exit within %v: sending SIGKILL\n", s.grace)
			c.signal(syscall.SIGKILL)
		}
	}
}

// holding is what lock and elect share before they wait for the lock or
// leadership: signals caught, the --timeout context, and a session
// connected under both.
type holding struct {
	sigs   *signals
	ctx    context.Context
	sess   *recipes.Session
	cancel context.CancelFunc
}

// startHolding catches signals and connects. On error (a signal during the
// connect, a timeout, no ensemble) everything is undone and the returned
// error is the command's result. doing names the wait for messages.
func startHolding(co *commonOpts, timeout time.Duration, policy recipes.LossPolicy, log *slog.Logger, doing string) (*holding, error) {
	h := &holding{sigs: catchSignals(), ctx: context.Background(), cancel: func() {}}
	if timeout > 0 {
		h.ctx, h.cancel = context.WithTimeout(h.ctx, timeout)
	}
	sess, sig, err := during(h.ctx, h.sigs, func(ctx context.Context) (*recipes.Session, error) {
		return co.connect(ctx, log, recipes.WithLossPolicy(policy))
	})
	if sig != nil || err != nil {
		if sess != nil {
			sess.Close()
		}
		h.cancel()
		h.sigs.stop()
		if sig != nil {
			return nil, exitCode(signalStatus(sig))
		}
		return nil, waitError(err, doing, timeout)
	}
	h.sess = sess
	return h, nil
}

// stop closes the session and releases the signals and the timeout.
func (h *holding) stop() {
	h.sess.Close()
	h.cancel()
	h.sigs.stop()
}
