// Package loopback decides whether an HTTP request comes from a program on
// this machine, for the routes that must answer no one else: devstack's
// trace routes (internal/otlpsink) and the Entra ID emulator's directory
// page and admin controls (emulator/entra), which show secrets or change
// what the emulator does.
//
// A request is a loopback request when both hold:
//
//   - its peer (RemoteAddr) is a loopback address: 127.0.0.0/8, ::1, or
//     127.0.0.0/8 mapped into IPv6 (::ffff:127.0.0.1);
//   - its Host names a loopback host: localhost or a loopback IP literal,
//     with or without a port.
//
// The Host check defeats DNS rebinding: a page of evil.example that
// re-points its name at 127.0.0.1 reaches a loopback listener from the
// user's own browser (so from a loopback peer), but its requests say
// Host: evil.example. Anything that does not parse is refused.
package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ErrRemoteAddr and ErrHost are what [Check]'s error is (errors.Is).
var (
	ErrRemoteAddr = errors.New("the caller is not on a loopback address")
	ErrHost       = errors.New("the request's Host is not localhost or a loopback address (refused against DNS rebinding)")
)

// Check returns nil for a loopback request, else an error that says which
// half failed, for the caller's refusal (403).
func Check(r *http.Request) error {
	if !RemoteAddr(r.RemoteAddr) {
		return ErrRemoteAddr
	}
	if !Host(r.Host) {
		return fmt.Errorf("%w: %q", ErrHost, r.Host)
	}
	return nil
}

// RemoteAddr reports whether addr, a peer address as in
// [http.Request.RemoteAddr] ("ip:port", or a bare ip), is a loopback IP
// address. Names are not resolved: "localhost:80" is not an address.
func RemoteAddr(addr string) bool {
	return isLoopbackIP(hostOf(addr))
}

// Host reports whether host, as in [http.Request.Host] ("name:port",
// "[::1]:port", or either without the port), names this machine:
// localhost (in any case) or a loopback IP literal.
func Host(host string) bool {
	h := hostOf(host)
	return strings.EqualFold(h, "localhost") || isLoopbackIP(h)
}

func isLoopbackIP(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.IsLoopback()
}

// hostOf is hostport without its port and an IPv6 literal's brackets.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	if len(hostport) > 1 && hostport[0] == '[' && hostport[len(hostport)-1] == ']' {
		return hostport[1 : len(hostport)-1]
	}
	return hostport
}
