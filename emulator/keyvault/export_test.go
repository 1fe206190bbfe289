package keyvault

// SetStoreLimits lowers MaxSecrets and MaxStoredBytes for s, so tests can
// reach them without storing 64 MiB.
func SetStoreLimits(s *Server, maxSecrets, maxBytes int) {
	s.store.mu.Lock()
	s.store.maxSecrets, s.store.maxBytes = maxSecrets, maxBytes
	s.store.mu.Unlock()
}
