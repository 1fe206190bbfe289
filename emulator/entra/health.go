package entra

import (
	"net/http"
	"runtime/debug"
	"time"
)

// Health is what GET /health answers: enough to tell which emulator runs,
// with what, since when.
type Health struct {
	Status  string         `json:"status"` // always "ok": an emulator that answers is up
	Version string         `json:"version"`
	BaseURL string         `json:"base_url"`
	Tenants []HealthTenant `json:"tenants"`
	// KeyIDs are the published signing keys' kids, the signing one first.
	KeyIDs        []string `json:"key_ids"`
	SigningKeyID  string   `json:"signing_key_id"`
	UptimeSeconds int64    `json:"uptime_seconds"`
}

// HealthTenant names one tenant the emulator serves.
type HealthTenant struct {
	ID          string `json:"id"`
	Domain      string `json:"domain"`
	DisplayName string `json:"display_name"`
}

// Version is the emulator's module version: the tag `go install ...@v1.2.3`
// built, or "(devel)" from a checkout.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == modulePath {
				return m.Version
			}
		}
		if bi.Main.Path == modulePath && bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "(devel)"
}

const modulePath = "github.com/handoff-dev/handoff"

// Health reports the emulator's state.
func (s *Server) Health() Health {
	h := Health{Status: "ok", Version: Version(), BaseURL: s.baseStr, SigningKeyID: s.SigningKeyID()}
	for _, t := range s.dir.Tenants {
		h.Tenants = append(h.Tenants, HealthTenant{ID: t.ID, Domain: t.Domain, DisplayName: t.DisplayName})
	}
	for _, k := range s.keys.jwks() {
		h.KeyIDs = append(h.KeyIDs, k.Kid)
	}
	h.UptimeSeconds = int64(s.now().Sub(s.started) / time.Second)
	return h
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Health())
}
