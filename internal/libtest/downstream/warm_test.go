package downstream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/handoff-dev/handoff/emulator/entra"
	"github.com/handoff-dev/handoff/handler/downstream"
)

// countingSecret is the Task API's dev secret, counting its reads (what a
// Key Vault read would cost).
type countingSecret struct{ reads atomic.Int64 }

func (s *countingSecret) Secret(context.Context) (string, string, error) {
	s.reads.Add(1)
	return entra.TaskAPISecret, "v1", nil
}

// TestWarmThenNoFetch: after Warm, the first app token is served without a
// token request or a credential read.
func TestWarmThenNoFetch(t *testing.T) {
	e := newEnv(t, entra.Config{})
	src := &countingSecret{}
	c := e.client(t, downstream.RotatingSecret(src, downstream.RotationOptions{}), nil)
	if err := c.Warm(context.Background(), []string{auditScope}); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if got := e.grants(entra.GrantClientCredentials); got != 1 {
		t.Fatalf("Warm made %d client credentials requests, want 1", got)
	}
	if got := src.reads.Load(); got != 1 {
		t.Fatalf("Warm read the credential %d times, want 1", got)
	}
	if _, err := c.AppToken(context.Background(), auditScope); err != nil {
		t.Fatal(err)
	}
	if got := e.grants(entra.GrantClientCredentials); got != 1 {
		t.Errorf("the first AppToken after Warm made a token request (%d in all, want 1)", got)
	}
	if got := src.reads.Load(); got != 1 {
		t.Errorf("the first AppToken after Warm read the credential again (%d reads, want 1)", got)
	}
}

// TestWarmCredentialOnly: with no scopes, Warm reads the credential and
// asks for no token.
func TestWarmCredentialOnly(t *testing.T) {
	e := newEnv(t, entra.Config{})
	src := &countingSecret{}
	c := e.client(t, downstream.RotatingSecret(src, downstream.RotationOptions{}), nil)
	if err := c.Warm(context.Background()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if got := src.reads.Load(); got != 1 {
		t.Errorf("credential reads = %d, want 1", got)
	}
	if got := e.srv.Stats().Requests[entra.EndpointToken]; got != 0 {
		t.Errorf("token requests = %d, want 0", got)
	}
}

// TestWarmFailureNotFatal: a failed warm-up returns the error and caches
// nothing: the first use asks again and succeeds.
func TestWarmFailureNotFatal(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	e.srv.FailTokenRequests(100, entra.GrantClientCredentials)
	err := c.Warm(context.Background(), []string{auditScope})
	if !errors.Is(err, downstream.ErrTransient) {
		t.Fatalf("Warm with the token endpoint failing = %v, want ErrTransient", err)
	}
	e.srv.FailTokenRequests(0, "")
	before := e.grants(entra.GrantClientCredentials)
	if _, err := c.AppToken(context.Background(), auditScope); err != nil {
		t.Fatalf("AppToken after a failed warm-up: %v", err)
	}
	if got := e.grants(entra.GrantClientCredentials) - before; got != 1 {
		t.Errorf("token requests of the first use after a failed warm-up = %d, want 1", got)
	}
}

// TestWarmTenants: after WarmTenants, a tenant's first On-Behalf-Of request
// is the token request alone, with no discovery before it.
func TestWarmTenants(t *testing.T) {
	e := newEnv(t, entra.Config{})
	c := e.client(t, nil, nil)
	alice := e.user(t, entra.HomeTenantID, "alice@home.handoff.test")
	if err := c.WarmTenants(context.Background(), entra.HomeTenantID); err != nil {
		t.Fatalf("WarmTenants: %v", err)
	}
	discovery := e.srv.Stats().Requests[entra.EndpointDiscovery]
	if _, err := c.OnBehalfOfUser(context.Background(), alice, notificationScope); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Stats().Requests[entra.EndpointDiscovery] - discovery; got != 0 {
		t.Errorf("the first On-Behalf-Of request after WarmTenants made %d discovery requests, want 0", got)
	}
	if got := e.grants(entra.GrantOnBehalfOf); got != 1 {
		t.Errorf("On-Behalf-Of requests = %d, want 1", got)
	}

	// Without it, the first request resolves the authority itself (so the
	// check above can fail).
	cold := e.client(t, nil, nil)
	bob := e.user(t, entra.HomeTenantID, "bob@home.handoff.test")
	base := e.srv.Stats().Requests[entra.EndpointDiscovery]
	if _, err := cold.OnBehalfOfUser(context.Background(), bob, notificationScope); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.Stats().Requests[entra.EndpointDiscovery] - base; got == 0 {
		t.Error("a cold client's first On-Behalf-Of request made no discovery request")
	}
}
