package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// TestIdempotentCreateAcrossAKill: a create is SIGKILLed after its write;
// the client's retry with the same Idempotency-Key (the host answered it
// 502) gets the task it created, not a second one: 409 while the first
// could still be in flight, then the task as created, the same on every
// later retry. A create that answered is replayed byte for byte. Both
// store backends.
func TestIdempotentCreateAcrossAKill(t *testing.T) {
	for name, storage := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := outboxStack(t, storage(t))
			alice := signIn(t, s, entra.HomeTenantID, "alice@home.handoff.test")
			tasksURL := s.URL("task") + "/api/tasks"
			const key, body = "5f0e7c1a-2b8d-4e3f-9a6b-1c2d3e4f5a6b", `{"title":"killed, then retried"}`

			// Token requests hang: the create writes, then waits for its tokens.
			s.Entra.SetTokenLatency(time.Minute)
			first := make(chan int, 1)
			go func() {
				req, _ := http.NewRequest("POST", tasksURL, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+alice)
				req.Header.Set("Idempotency-Key", key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					first <- 0
					return
				}
				resp.Body.Close()
				first <- resp.StatusCode
			}()
			var id string
			for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if r := call(t, "GET", tasksURL, alice, nil); len(items(r)) == 1 {
					id = str(items(r)[0]["id"])
				}
			}
			if id == "" {
				t.Fatal("the task was never written")
			}
			if err := s.KillApp("task"); err != nil {
				t.Fatal(err)
			}
			if st := <-first; st == http.StatusCreated {
				t.Fatalf("the killed create answered %d", st)
			}
			s.Entra.SetTokenLatency(0)
			if err := s.StartApp(context.Background(), "task"); err != nil {
				t.Fatal(err)
			}

			// The retry, as a client does after a 502: 409 (Retry-After)
			// while the first could be in flight, then the task.
			var r response
			conflicts := 0
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				r = call(t, "POST", tasksURL, alice, body, "Idempotency-Key", key)
				if r.status != http.StatusConflict {
					break
				}
				conflicts++
				if r.header.Get("Retry-After") == "" {
					t.Fatal("409 without Retry-After")
				}
			}
			if r.status != http.StatusCreated || str(r.body["id"]) != id || r.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry after the kill (%d conflicts first): %d %s", conflicts, r.status, r.raw)
			}
			again := call(t, "POST", tasksURL, alice, body, "Idempotency-Key", key)
			if again.status != r.status || !bytes.Equal(again.raw, r.raw) || again.header.Get("ETag") != r.header.Get("ETag") {
				t.Errorf("second retry: %d %s, want %d %s", again.status, again.raw, r.status, r.raw)
			}
			if other := call(t, "POST", tasksURL, alice, `{"title":"another task"}`, "Idempotency-Key", key); other.status != http.StatusUnprocessableEntity {
				t.Errorf("the key with another body: %d %s, want 422", other.status, other.raw)
			}

			// A create that answers is replayed exactly: status, body, ETag.
			orig := call(t, "POST", tasksURL, alice, `{"title":"answered"}`, "Idempotency-Key", "second-key")
			replay := call(t, "POST", tasksURL, alice, `{"title":"answered"}`, "Idempotency-Key", "second-key")
			if orig.status != http.StatusCreated || replay.status != orig.status || !bytes.Equal(replay.raw, orig.raw) ||
				replay.header.Get("ETag") != orig.header.Get("ETag") || orig.body["audit_status"] != "logged" {
				t.Errorf("replay: %d %s %q; original %d %s %q", replay.status, replay.raw, replay.header.Get("ETag"),
					orig.status, orig.raw, orig.header.Get("ETag"))
			}

			if list := items(call(t, "GET", tasksURL, alice, nil)); len(list) != 2 {
				t.Errorf("%d tasks, want 2 (one per key)", len(list))
			}
			// The killed create's event is delivered by the sweep, once.
			if _, err := s.Invoke(context.Background(), "task", "sweep"); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, auditEntries(t, s), []string{id, str(orig.body["id"])})
		})
	}
}
