package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a redis-server process of a test's own, for tests that must stop
// and start Redis or need a Sentinel: a loopback port nobody else uses, its
// own temporary directory, no persistence. It is killed when the test ends.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:<port>, the same across Stop and Start
	dir  string
	conf string // the config file, for a Sentinel (which must be able to rewrite it)
	args []string
	// password is what the server requires from clients (a Sentinel's
	// requirepass); Start authenticates its readiness PING with it.
	password string
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartServer starts a redis-server on a spare loopback port with the extra
// command-line arguments args (e.g. "--maxmemory", "10mb"). Without a
// redis-server binary the test is skipped, or fails under CI=true.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, "", args, "")
}

// SentinelOption configures a Sentinel started by StartSentinel.
type SentinelOption func(*sentinelConfig)

type sentinelConfig struct{ requirePass string }

// WithRequirePass makes the Sentinel refuse every command but AUTH (and
// HELLO with AUTH) until the client authenticates with password: Sentinel's
// requirepass, supported since Redis 6.2.
func WithRequirePass(password string) SentinelOption {
	return func(c *sentinelConfig) { c.requirePass = password }
}

// StartSentinel starts a Redis Sentinel monitoring master under the name
// name, with a quorum of one.
func StartSentinel(t testing.TB, name string, master *Server, opts ...SentinelOption) *Server {
	t.Helper()
	var sc sentinelConfig
	for _, o := range opts {
		o(&sc)
	}
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n", name, host, port, name)
	if sc.requirePass != "" {
		conf += fmt.Sprintf("requirepass %q\n", sc.requirePass)
	}
	return start(t, conf, []string{"--sentinel"}, sc.requirePass)
}

func start(t testing.TB, conf string, args []string, password string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redistest: redis-server is not installed (apt-get install redis-server)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{t: t, dir: t.TempDir(), args: args, password: password}
	s.Addr = freePort(t)
	if conf != "" {
		s.conf = filepath.Join(s.dir, "redis.conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Start starts the server (again) on its address and waits until it answers
// PING. The data of an earlier run is gone: nothing is persisted.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: server already running")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	var argv []string
	if s.conf != "" {
		argv = append(argv, s.conf)
	}
	argv = append(argv, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	argv = append(argv, s.args...)
	cmd := exec.Command("redis-server", argv...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()

	client := goredis.NewClient(&goredis.Options{Addr: s.Addr, Password: s.password, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redistest: redis-server on %s exited: %s", s.Addr, log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: redis-server on %s does not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: as abrupt as a crash) and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Port is the server's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}
