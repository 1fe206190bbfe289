package taskapi

// Every status and failure reason a response of the Task API reports, and
// the outcome of a write's side effects that carries them.

// Statuses of the side effects, as responses report them.
const (
	NotificationSent   = "sent"
	NotificationFailed = "failed"
	AuditLogged        = "logged"
	// AuditQueued: the event is kept in the outbox (pending, or
	// dead-lettered for an operator) and was not delivered yet.
	AuditQueued = "queued"
)

// delivered is settle's answer for an event the Audit Service has (its
// other answers are the outbox states store.OutboxPending and
// store.OutboxDead).
const delivered = "delivered"

// Failure reasons, machine-readable for a SPA to act on.
const (
	ReasonConsentRequired     = "consent_required"     // an admin must consent; Challenge offers the consent step
	ReasonInteractionRequired = "interaction_required" // the user must sign in again (MFA, claims)
	ReasonTimeout             = "timeout"              // the deadline passed
	ReasonUnavailable         = "unavailable"          // the service or the token endpoint is down
	ReasonRejected            = "rejected"             // the service refused the call
	ReasonInvalidToken        = "invalid_token"        // the user's token could not be exchanged
	ReasonConfiguration       = "configuration"        // the Task API's own credential was refused
)

// Failure says why a side effect failed.
type Failure struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// Status is the downstream service's HTTP status, when it answered.
	Status int `json:"status,omitempty"`
	// For consent_required and interaction_required: the downstream scopes,
	// Entra's claims challenge, and the WWW-Authenticate a SPA can hand MSAL.
	Scopes    []string `json:"scopes,omitempty"`
	Claims    string   `json:"claims,omitempty"`
	Challenge string   `json:"challenge,omitempty"`
}

// outcome is how a write's side effects went: the notification (creates
// only) and the audit event's delivery. Responses carry it as is.
type outcome struct {
	NotificationStatus  string   `json:"notification_status,omitempty"`
	NotificationFailure *Failure `json:"notification_failure,omitempty"`
	AuditStatus         string   `json:"audit_status,omitempty"`
	AuditFailure        *Failure `json:"audit_failure,omitempty"`
}
