package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildBinary compiles ./cmd/cometbot of the module at moduleDir ("" = the
// module containing the working directory) into dir and returns its path.
// flags are extra `go build` flags (e.g. "-race").
func BuildBinary(ctx context.Context, moduleDir, dir string, flags ...string) (string, error) {
	if moduleDir == "" {
		var err error
		if moduleDir, err = FindModuleRoot(); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, "cometbot")
	args := append(append([]string{"build"}, flags...), "-o", bin, "./cmd/cometbot")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	cmd.Env = os.Environ()
	if !slices.Contains(flags, "-race") {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadtest: go build ./cmd/cometbot: %w\n%s", err, out)
	}
	return bin, nil
}

// FindModuleRoot walks up from the working directory to the directory whose
// go.mod declares the cometbot module.
func FindModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("loadtest: working directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/cometbot/cometbot\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("loadtest: not inside the cometbot module (no go.mod found); pass the binary or the module directory")
		}
		dir = parent
	}
}

// botProcess is a running cometbot binary.
type botProcess struct {
	cmd     *exec.Cmd
	started time.Time
	stdin   io.WriteCloser
	stdout  io.ReadCloser

	mu      sync.Mutex
	gcs     []gcSample
	logTail []string       // last stderr lines that are not gctrace
	errs    int            // log lines at level ERROR
	warns   int            // log lines at level WARN
	races   int            // "WARNING: DATA RACE" reports (binaries built with -race)
	samples map[string]int // distinct WARN/ERROR messages and their counts
	panics  int            // "panic:" and "fatal error:" lines
	exited  chan struct{}
	waitErr error
}

// gcSample is one GODEBUG=gctrace=1 line: the heap in MB at the start of a
// GC, after it, and the live (marked) heap.
type gcSample struct {
	at                     time.Time
	startMB, endMB, liveMB int
	stacksMB               int
}

var reGC = regexp.MustCompile(`^gc \d+ @[\d.]+s [\d.]+%: .* (\d+)->(\d+)->(\d+) MB, \d+ MB goal, (\d+) MB stacks`)
var reGCNoStacks = regexp.MustCompile(`^gc \d+ @[\d.]+s [\d.]+%: .* (\d+)->(\d+)->(\d+) MB`)

// startBot starts bin with args and env (added to a minimal environment),
// with GODEBUG=gctrace=1 and JSON logs; it reads stderr in the background.
// The process is killed when ctx ends.
func startBot(ctx context.Context, bin string, args, env []string, withStdio bool) (*botProcess, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "GODEBUG=gctrace=1", "COMETBOT_LOG_FORMAT=json"}
	cmd.Env = append(base, env...)
	cmd.WaitDelay = 5 * time.Second
	p := &botProcess{cmd: cmd, exited: make(chan struct{})}
	var err error
	if withStdio {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, fmt.Errorf("loadtest: stdin pipe: %w", err)
		}
		if p.stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, fmt.Errorf("loadtest: stdout pipe: %w", err)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("loadtest: stderr pipe: %w", err)
	}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.readStderr(stderr)
	}()
	go func() {
		<-done // stderr closes when the process exits
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

func (p *botProcess) readStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		now := time.Now()
		if strings.HasPrefix(line, "gc ") {
			if m := reGC.FindStringSubmatch(line); m != nil {
				p.addGC(now, m[1], m[2], m[3], m[4])
			} else if m := reGCNoStacks.FindStringSubmatch(line); m != nil {
				p.addGC(now, m[1], m[2], m[3], "0")
			}
			continue
		}
		if strings.HasPrefix(line, "scvg") || strings.HasPrefix(line, "# ") {
			continue
		}
		p.mu.Lock()
		switch {
		case strings.HasPrefix(line, "WARNING: DATA RACE"):
			p.races++
		case strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:"):
			p.panics++
		case strings.Contains(line, `"level":"ERROR"`):
			p.errs++
			p.sample("ERROR", line)
		case strings.Contains(line, `"level":"WARN"`):
			p.warns++
			p.sample("WARN", line)
		}
		p.logTail = append(p.logTail, line)
		if len(p.logTail) > 200 {
			p.logTail = p.logTail[len(p.logTail)-100:]
		}
		p.mu.Unlock()
	}
}

var reMsg = regexp.MustCompile(`"msg":"((?:[^"\\]|\\.)*)"`)

// sample counts a log line by level and message; p.mu must be held.
func (p *botProcess) sample(level, line string) {
	msg := line
	if m := reMsg.FindStringSubmatch(line); m != nil {
		msg = m[1]
	}
	if p.samples == nil {
		p.samples = map[string]int{}
	}
	if k := level + " " + msg; p.samples[k] > 0 || len(p.samples) < 20 {
		p.samples[k]++
	}
}

// logSamples returns "count × LEVEL message" lines, most frequent first.
func (p *botProcess) logSamples() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.samples))
	for k, n := range p.samples {
		out = append(out, fmt.Sprintf("%6d × %s", n, k))
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

func (p *botProcess) addGC(at time.Time, a, b, c, d string) {
	s := gcSample{at: at}
	s.startMB, _ = strconv.Atoi(a)
	s.endMB, _ = strconv.Atoi(b)
	s.liveMB, _ = strconv.Atoi(c)
	s.stacksMB, _ = strconv.Atoi(d)
	p.mu.Lock()
	p.gcs = append(p.gcs, s)
	p.mu.Unlock()
}

// gcSince returns the GC samples taken at or after t.
func (p *botProcess) gcSince(t time.Time) []gcSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gcSample
	for _, s := range p.gcs {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	return out
}

// tail returns the last log lines (for error messages).
func (p *botProcess) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logTail[max(0, len(p.logTail)-60):], "\n")
}

func (p *botProcess) logCounts() (errs, warns, races, panics int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs, p.warns, p.races, p.panics
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("loadtest: find a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

// waitReady polls http://addr/readyz until it answers 200 and returns when
// that happened.
func (p *botProcess) waitReady(ctx context.Context, addr string, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + addr + "/readyz"
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-p.exited:
			return time.Time{}, fmt.Errorf("loadtest: cometbot exited before ready: %v\n%s", p.exitErr(), p.tail())
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("loadtest: cometbot not ready on %s within %v\n%s", url, timeout, p.tail())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (p *botProcess) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// stop sends SIGTERM and waits for the process to exit (killing it after
// timeout). It returns the exit error, if any.
func (p *botProcess) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("loadtest: cometbot did not exit within %v of SIGINT", timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// procStatus reads memory figures from /proc/<pid>/status (in KiB).
type procStatus struct{ rssKiB, hwmKiB int64 }

func (p *botProcess) status() (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("loadtest: read /proc status: %w", err)
	}
	var st procStatus
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			st.rssKiB = v
		case "VmHWM:":
			st.hwmKiB = v
		}
	}
	return st, nil
}

// clockTicks is USER_HZ; 100 on every Linux platform Go supports.
const clockTicks = 100

// cpuTime returns the process's user+system CPU time from /proc/<pid>/stat.
func (p *botProcess) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: read /proc stat: %w", err)
	}
	s := string(b)
	// Fields after the command name (which is in parentheses and may hold spaces).
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("loadtest: malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("loadtest: short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// startPerf starts `perf record` on the bot process if path is set and
// returns a function that stops it and waits for the file to be written.
func startPerf(path string, p *botProcess, logf func(string, ...any)) func() {
	if path == "" {
		return func() {}
	}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-o", path, "-p", strconv.Itoa(p.cmd.Process.Pid))
	if err := cmd.Start(); err != nil {
		logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf("perf data in %s (perf report -i %s)", path, path)
	}
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
