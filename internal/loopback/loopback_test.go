package loopback_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/handoff-dev/handoff/internal/loopback"
)

func TestRemoteAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5555":           true,
		"127.8.9.10:1":             true, // all of 127.0.0.0/8
		"[::1]:5555":               true,
		"[::ffff:127.0.0.1]:5555":  true, // IPv4 loopback mapped into IPv6
		"[0:0:0:0:0:0:0:1]:5555":   true,
		"127.0.0.1":                true, // no port: still an address
		"::1":                      true,
		"[::1]":                    true,
		"192.0.2.1:5555":           false,
		"10.0.0.1:5555":            false,
		"[2001:db8::1]:5555":       false,
		"[::ffff:192.0.2.1]:5555":  false,
		"0.0.0.0:5555":             false,
		"[::]:5555":                false,
		"localhost:5555":           false, // a name, not an address: never resolved
		"":                         false,
		"garbage":                  false,
		"127.0.0.1:80:90":          false,
		"[::1]:80]":                false,
		"[::1":                     false,
		"127.1:80":                 false,
		"[fe80::1%25eth0]:80":      false,
		"127.0.0.1.evil.example:1": false,
	} {
		if got := loopback.RemoteAddr(addr); got != want {
			t.Errorf("RemoteAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":               true,
		"localhost:7070":          true,
		"LocalHost:7070":          true, // host names are case-insensitive
		"127.0.0.1:7070":          true,
		"127.0.0.1":               true,
		"[::1]:7070":              true,
		"[::1]":                   true,
		"::1":                     true,
		"[::ffff:127.0.0.1]:7070": true,
		"evil.example":            false,
		"evil.example:7070":       false,
		"localhost.evil.example":  false,
		"evil.localhost:7070":     false,
		"127.0.0.1.nip.io:7070":   false,
		"192.0.2.1:7070":          false,
		"":                        false, // no Host (HTTP/1.0)
		"localhost:7070:1":        false,
	} {
		if got := loopback.Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, remote, host string
		want               error // nil: a loopback request
	}{
		{"IPv4", "127.0.0.1:5555", "127.0.0.1:7070", nil},
		{"IPv6", "[::1]:5555", "[::1]:7070", nil},
		{"localhost", "127.0.0.1:5555", "localhost:7070", nil},
		{"mapped", "[::ffff:127.0.0.1]:5555", "localhost", nil},
		{"another machine", "192.0.2.1:5555", "127.0.0.1:7070", loopback.ErrRemoteAddr},
		{"another machine and host", "192.0.2.1:5555", "evil.example", loopback.ErrRemoteAddr},
		{"malformed peer", "not an address", "127.0.0.1:7070", loopback.ErrRemoteAddr},
		{"no peer", "", "127.0.0.1:7070", loopback.ErrRemoteAddr},
		{"DNS rebinding", "127.0.0.1:5555", "evil.example:7070", loopback.ErrHost},
		{"DNS rebinding, no port", "[::1]:5555", "evil.example", loopback.ErrHost},
		{"no Host", "127.0.0.1:5555", "", loopback.ErrHost},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		err := loopback.Check(r)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: Check(RemoteAddr %q, Host %q) = %v, want %v", tc.name, tc.remote, tc.host, err, tc.want)
		}
		// A refusal names the Host it refused, so a user sees why.
		if tc.want == loopback.ErrHost && !strings.Contains(err.Error(), `"`+tc.host+`"`) {
			t.Errorf("%s: %q does not name the Host", tc.name, err)
		}
	}
}
