// Package extest is what the examples' tests share: the Entra emulator's
// users signed in with the real MSAL, free ports, and waiting for a server.
package extest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// UserToken signs user in at tenant (password grant, the dev client) for scopes.
func UserToken(t testing.TB, srv *entra.Server, tenant, user string, scopes ...string) string {
	t.Helper()
	pc, err := public.New(entra.DevClientID, public.WithAuthority(srv.Authority(tenant)),
		public.WithHTTPClient(srv.HTTPClient()), public.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the password grant is deprecated; tests sign in test users without a browser.
	res, err := pc.AcquireTokenByUsernamePassword(context.Background(), scopes, user, entra.DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// AppToken is an app-only token of clientID (client credentials) for scope.
func AppToken(t testing.TB, srv *entra.Server, clientID, secret, scope string) string {
	t.Helper()
	cred, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := confidential.New(srv.Authority(entra.HomeTenantID), clientID, cred,
		confidential.WithHTTPClient(srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.AcquireTokenByCredential(context.Background(), []string{scope})
	if err != nil {
		t.Fatal(err)
	}
	return res.AccessToken
}

// FreePort is a loopback port free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// WaitReady polls url until it answers 200, or fails the test after a
// generous bound (the machine may be busy).
func WaitReady(t testing.TB, url string, stopped <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-stopped:
			t.Fatalf("the server stopped before it was ready: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s did not answer 200 within 60 s", url)
}

// Get sends GET url with the bearer token (none if empty).
func Get(t testing.TB, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b [64 << 10]byte
	n, _ := io.ReadFull(resp.Body, b[:])
	return resp, string(b[:n])
}
