package taskapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestWarmOpensDownstreamConnections: the warm-up sends one HEAD to each
// path a create posts to, and the first create's calls reuse those
// connections (no new handshake on the first create). A HEAD is refused
// by the services (on Azure the Functions host answers it 404 itself),
// which is no warm-up failure.
func TestWarmOpensDownstreamConnections(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.app.Warm(t.Context()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	for name, l := range map[string]*connLog{"notification": &h.notifyConns, "audit": &h.auditConns} {
		reqs := l.all()
		if len(reqs) != 1 || !strings.HasPrefix(reqs[0], http.MethodHead+" ") {
			t.Fatalf("%s after the warm-up: %v, want one HEAD", name, reqs)
		}
	}
	if r := h.do(t, "POST", "/api/tasks", h.alice, `{"title":"first"}`); r.status != http.StatusCreated ||
		r.body["notification_status"] != NotificationSent || r.body["audit_status"] != AuditLogged {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	for name, l := range map[string]*connLog{"notification": &h.notifyConns, "audit": &h.auditConns} {
		reqs := l.all()
		if len(reqs) != 2 {
			t.Fatalf("%s: %v, want the HEAD and the create's POST", name, reqs)
		}
		head, post := strings.TrimPrefix(reqs[0], http.MethodHead+" "), strings.TrimPrefix(reqs[1], http.MethodPost+" ")
		if head != post {
			t.Errorf("%s: the create's POST came from %s, the warm-up's connection was %s", name, post, head)
		}
	}
}

// TestWarmConnectionFailure: a service that cannot be reached makes the
// warm-up report it (logged by appmain.Warm, never fatal).
func TestWarmConnectionFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.notifySrv.Close()
	if err := h.app.Warm(t.Context()); err == nil || !strings.Contains(err.Error(), "warm connection") {
		t.Errorf("Warm with the Notification Service down: %v, want a warm connection error", err)
	}
}
