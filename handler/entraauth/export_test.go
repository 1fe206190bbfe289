package entraauth

// TokenCacheLen is how many tokens v remembers as validated.
func TokenCacheLen(v *Validator) int { return v.verified.len() }
