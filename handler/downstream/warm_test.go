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
