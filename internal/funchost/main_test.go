//go:build unix

package funchost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/handler/funcapp"
)

// envFakeHandler makes the test binary act as a custom handler (see
// fakeHandler) when the host simulator starts it.
const envFakeHandler = "DEVSTACK_TEST_FAKE_HANDLER"

// envGate names a file the fake handler waits for before it listens.
const envGate = "DEVSTACK_TEST_GATE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envFakeHandler); mode != "" {
		fakeHandler(mode)
		return
	}
	os.Exit(m.Run())
}

// fakeHandler is a custom handler for the host simulator's tests: it
// answers GET / (the readiness probe), serves timer functions at /sweep,
// /broken, /slow and /garbage (see fakeTimers), and echoes every other
// request, with its environment, as JSON. mode changes how it starts and
// stops.
func fakeHandler(mode string) {
	fmt.Println("fake handler starting")
	fmt.Fprint(os.Stderr, "to stderr\na WARNING line\nwithout a newline")
	// envGate: the handler does not listen before this file exists, so a
	// test knows a restarted worker is not ready yet.
	if gate := os.Getenv(envGate); gate != "" {
		for {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	switch mode {
	case "exit":
		os.Exit(3)
	case "never": // never listens
		select {}
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if mode == "stubborn" {
		ctx = context.Background()
	}
	mux := http.NewServeMux()
	var probeAddr atomic.Value // the connection of the last readiness probe
	probeAddr.Store("")
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { probeAddr.Store(r.RemoteAddr) })
	fakeTimers(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if code := r.URL.Query().Get("exit"); code != "" { // a crash, or an exit, on demand
			n, _ := strconv.Atoi(code)
			os.Exit(n)
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "yes")
		w.WriteHeader(http.StatusTeapot)
		_ = json.NewEncoder(w).Encode(echo{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
			Header: r.Header, Body: string(body), Env: os.Environ(),
			RemoteAddr: r.RemoteAddr, ProbeAddr: probeAddr.Load().(string),
		})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), Handler: mux}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("fake handler stopped")
	os.Exit(0)
}

// fakeTimers serves the fake handler's timer functions, as an app does with
// funcapp.Timer. Each run prints "fake <name> ran" on stdout, so tests
// count runs in the host's output.
func fakeTimers(mux *http.ServeMux) {
	mux.Handle("/sweep", funcapp.Timer("timer", func(ctx context.Context, info funcapp.TimerInfo) ([]string, error) {
		fmt.Println("fake sweep ran")
		status := "no status"
		if st := info.ScheduleStatus; st != nil {
			status = fmt.Sprintf("last=%s next=%s updated=%s", st.Last.Format(time.RFC3339Nano), st.Next.Format(time.RFC3339Nano), st.LastUpdated.Format(time.RFC3339Nano))
		}
		return []string{"swept", fmt.Sprintf("past due: %v", info.IsPastDue), status}, nil
	}))
	mux.Handle("/broken", funcapp.Timer("timer", func(context.Context, funcapp.TimerInfo) ([]string, error) {
		fmt.Println("fake broken ran")
		return []string{"tried"}, errors.New("store unavailable")
	}))
	var running atomic.Int32
	mux.Handle("/slow", funcapp.Timer("t", func(ctx context.Context, _ funcapp.TimerInfo) ([]string, error) {
		if running.Add(1) > 1 {
			fmt.Println("fake slow OVERLAP")
		}
		defer running.Add(-1)
		fmt.Println("fake slow ran")
		select {
		case <-time.After(2500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []string{"slow done"}, nil
	}))
	mux.HandleFunc("POST /garbage", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("fake garbage ran")
		w.Write([]byte("not an invocation result"))
	})
}

type echo struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawQuery string      `json:"raw_query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body"`
	Env      []string    `json:"env"`
	// RemoteAddr is the host's end of the connection the request came on;
	// ProbeAddr that of the last readiness probe (GET /).
	RemoteAddr string `json:"remote_addr"`
	ProbeAddr  string `json:"probe_addr"`
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request with a fresh connection, so a stopped handler or
// host is seen at once.
func do(t *testing.T, method, url string, body io.Reader, hdr ...string) response {
	t.Helper()
	resp, err := try(method, url, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

func try(method, url string, body io.Reader, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
}

// wantProblem checks a problem+json answer of the given status.
func wantProblem(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" || r.body["status"] != float64(status) {
		t.Fatalf("got %d %q %s, want a %d problem+json", r.status, r.header.Get("Content-Type"), r.raw, status)
	}
}

// processGone reports whether no process has the id any more (it was
// waited for, so its id is free).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// refused reports whether nothing listens at the base URL any more.
func refused(base string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
