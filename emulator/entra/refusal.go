package entra

import (
	"fmt"
	"net/http"
)

// maxRefusedRefreshTokens bounds one refusal request: a test asks for a
// few, a larger count is a mistake.
const maxRefusedRefreshTokens = 1000

// RefuseRefreshTokens makes the next n refresh-token redemptions fail with
// invalid_grant (AADSTS700082), as Entra answers a refresh token that has
// expired or was revoked; n = 0 clears it. Browser tests use it to end a
// session MSAL.js would otherwise renew silently, without waiting a day.
func (s *Server) RefuseRefreshTokens(n int) {
	s.mu.Lock()
	s.refusedRefreshTokens = n
	s.mu.Unlock()
}

// refusedRefresh consumes one refusal, if any, and returns Entra's error.
func (s *Server) refusedRefresh() *stsError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusedRefreshTokens == 0 {
		return nil
	}
	s.refusedRefreshTokens--
	return errInvalidGrant(700082, "The refresh token has expired due to inactivity or its maximum lifetime.")
}

// refusalRoutes serves the control to loopback tools (see adminRoutes):
//
//	POST /_emulator/refresh-tokens/refuse   {"count": n}
func (s *Server) refusalRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_emulator/refresh-tokens/refuse", s.admin(func(w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Count *int `json:"count"`
		}
		if err := decodeAdmin(r, &req); err != nil {
			return err
		}
		if req.Count == nil || *req.Count < 0 || *req.Count > maxRefusedRefreshTokens {
			return fmt.Errorf("count must be between 0 and %d", maxRefusedRefreshTokens)
		}
		s.RefuseRefreshTokens(*req.Count)
		return nil
	}))
}
