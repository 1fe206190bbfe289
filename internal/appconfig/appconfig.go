// Package appconfig reads the settings the three apps share from the
// environment, with one clear error per bad value.
package appconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// EnvExtraCA names a PEM file of extra CAs to trust (development only: the
// emulators' CA), added to the system's roots for every outbound call.
const EnvExtraCA = "EXTRA_CA_FILE"

// Env reads settings through a getenv function, collecting errors.
type Env struct {
	get  func(string) string
	errs []error
}

// New reads from getenv (nil: os.Getenv).
func New(getenv func(string) string) *Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Env{get: getenv}
}

// Err is every problem found, joined.
func (e *Env) Err() error { return errors.Join(e.errs...) }

func (e *Env) fail(format string, args ...any) { e.errs = append(e.errs, fmt.Errorf(format, args...)) }

// String is the trimmed value, "" when unset.
func (e *Env) String(name string) string { return strings.TrimSpace(e.get(name)) }

// Required is the value, recording an error when it is unset.
func (e *Env) Required(name string) string {
	v := e.String(name)
	if v == "" {
		e.fail("%s is required", name)
	}
	return v
}

// GUID is a required lower-case GUID.
func (e *Env) GUID(name string) string {
	v := strings.ToLower(e.Required(name))
	if v != "" && !isGUID(v) {
		e.fail("%s=%q is not a GUID", name, v)
	}
	return v
}

// List splits a comma-separated value.
func (e *Env) List(name string) []string {
	var out []string
	for _, p := range strings.Split(e.String(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// GUIDs is a comma-separated list of GUIDs.
func (e *Env) GUIDs(name string) []string {
	out := e.List(name)
	for i, v := range out {
		out[i] = strings.ToLower(v)
		if !isGUID(out[i]) {
			e.fail("%s: %q is not a GUID", name, v)
		}
	}
	return out
}

// Bool is true/false (default when unset).
func (e *Env) Bool(name string, def bool) bool {
	v := e.String(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail("%s=%q is not true or false", name, v)
	}
	return b
}

// Int is an integer in [min, max] (default when unset).
func (e *Env) Int(name string, def, min, max int) int {
	v := e.String(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		e.fail("%s=%q must be an integer from %d to %d", name, v, min, max)
		return def
	}
	return n
}

// Duration is a Go duration in [min, max] (default when unset).
func (e *Env) Duration(name string, def, min, max time.Duration) time.Duration {
	v := e.String(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		e.fail("%s=%q must be a duration from %s to %s", name, v, min, max)
		return def
	}
	return d
}

// URL is a required absolute http(s) URL without a trailing slash.
func (e *Env) URL(name string) string {
	v := strings.TrimSuffix(e.Required(name), "/")
	if v == "" {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		e.fail("%s=%q is not an http(s) URL", name, v)
	}
	return v
}

// Tenants reads the tenant policy: ALLOW_ANY_TENANT, else the non-empty
// ALLOWED_TENANT_IDS (the home tenant is always allowed).
func (e *Env) Tenants(home string) (ids []string, any bool) {
	any = e.Bool("ALLOW_ANY_TENANT", false)
	ids = e.GUIDs("ALLOWED_TENANT_IDS")
	if home != "" && !contains(ids, home) {
		ids = append(ids, home)
	}
	return ids, any
}

// HTTPClient is the client for outbound calls: the system's roots plus
// EXTRA_CA_FILE when set, TLS 1.2 at least, and the given timeout.
func (e *Env) HTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 100
	// HTTP/1.1: the calls are few (a token, a secret, now and then) and each
	// gets a connection of its own. Over HTTP/2 the first create after a
	// cold start shared one connection with the warm-up's token request and
	// took 1.6 ms longer (median of six interleaved pairs of make
	// bench-load's cold start, docs/performance.md).
	tr.ForceAttemptHTTP2 = false
	if path := e.String(EnvExtraCA); path != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(path)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			e.fail("%s=%q: cannot read a PEM certificate from it", EnvExtraCA, path)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// isGUID reports whether s is a lower-case GUID, the form Entra's tenant and
// client ids take in the settings.
func isGUID(s string) bool { return guidRE.MatchString(s) }
