package funcapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoff-dev/handoff/handler/problem"
)

// Settings the Functions host passes, and ours.
const (
	EnvPort           = "FUNCTIONS_CUSTOMHANDLER_PORT"
	EnvAllowedOrigins = "ALLOWED_ORIGINS"
)

// Limits of the server.
const (
	// DefaultMaxBodyBytes bounds request bodies.
	DefaultMaxBodyBytes = 64 << 10
	readHeaderTimeout   = 10 * time.Second
	readTimeout         = 30 * time.Second
	writeTimeout        = 60 * time.Second
	idleTimeout         = 2 * time.Minute
	// ShutdownGrace is how long in-flight requests get after SIGTERM.
	ShutdownGrace = 10 * time.Second
)

// CORS defaults: what any API a single-page app calls with a bearer token
// needs. An API with more (PATCH, If-Match, ETag...) lists them in [Config].
var (
	defaultCORSMethods = []string{"GET", "HEAD", "POST"}
	defaultCORSHeaders = []string{"Authorization", "Content-Type"}
	// WWW-Authenticate carries the claims and consent challenges a SPA
	// must read to sign the user in again.
	defaultCORSExposedHeaders = []string{"WWW-Authenticate"}
)

// Config configures [Serve].
type Config struct {
	// Port to listen on, on 127.0.0.1 (the host's FUNCTIONS_CUSTOMHANDLER_PORT).
	Port int
	// AllowedOrigins: when not empty, CORS is answered for them (preflight
	// included). Leave it empty under a Functions host, which does CORS.
	AllowedOrigins []string
	// CORSMethods a preflight allows; nil means GET, HEAD, POST.
	CORSMethods []string
	// CORSHeaders a preflight allows the browser to send; nil means
	// Authorization, Content-Type.
	CORSHeaders []string
	// CORSExposedHeaders the page may read; nil means WWW-Authenticate
	// (the claims and consent challenges a SPA must see).
	CORSExposedHeaders []string
	// MaxBodyBytes: 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger: nil means slog.Default().
	Logger *slog.Logger
	// Ready, if set, receives the listening address once the listener is bound.
	Ready chan<- string
}

// ConfigFromEnv reads the port and allowed origins from the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p := getenv(EnvPort)
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return Config{}, fmt.Errorf("funcapp: %s=%q is not a port; the Functions host sets it", EnvPort, p)
	}
	var origins []string
	for _, o := range strings.Split(getenv(EnvAllowedOrigins), ",") {
		if o = strings.TrimSpace(o); o != "" {
			if o == "*" {
				return Config{}, fmt.Errorf("funcapp: %s must list origins, not *", EnvAllowedOrigins)
			}
			origins = append(origins, strings.TrimSuffix(o, "/"))
		}
	}
	return Config{Port: port, AllowedOrigins: origins}, nil
}

// Serve listens on 127.0.0.1:cfg.Port and serves h until ctx ends, then
// shuts down gracefully (ShutdownGrace). GET / answers at once, whatever
// h does: it is the host's readiness probe.
func Serve(ctx context.Context, cfg Config, h http.Handler) error {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           Wrap(h, cfg),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			log.Warn("funcapp: shutdown did not finish in time", "error", err.Error())
		}
	}()
	log.Info("funcapp: listening", "addr", l.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready <- l.Addr().String()
	}
	err = hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-stopped
		return nil
	}
	return err
}

// Wrap adds what every custom handler needs around h: the readiness probe,
// the body limit, CORS when configured, and recovery from panics.
func Wrap(h http.Handler, cfg Config) http.Handler {
	limit := cfg.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.WriteHeader(http.StatusOK)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "funcapp: handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				problem.Error(w, http.StatusInternalServerError, "internal error")
			}
		}()
		if len(cfg.AllowedOrigins) > 0 && cors(w, r, &cfg) {
			return
		}
		if r.ContentLength > limit {
			problem.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		h.ServeHTTP(w, r)
	})
}

// cors answers CORS for the allowed origins; it reports whether it answered
// the request itself (a preflight).
func cors(w http.ResponseWriter, r *http.Request, cfg *Config) bool {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin == "" || !slices.Contains(cfg.AllowedOrigins, origin) {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			problem.Error(w, http.StatusForbidden, "origin not allowed")
			return true
		}
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", orDefault(cfg.CORSExposedHeaders, defaultCORSExposedHeaders))
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", orDefault(cfg.CORSMethods, defaultCORSMethods))
		h.Set("Access-Control-Allow-Headers", orDefault(cfg.CORSHeaders, defaultCORSHeaders))
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(corsMaxAge/time.Second)))
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// corsMaxAge is how long a browser may cache a preflight's answer.
const corsMaxAge = 10 * time.Minute

func orDefault(list, def []string) string {
	if list == nil {
		list = def
	}
	return strings.Join(list, ", ")
}
