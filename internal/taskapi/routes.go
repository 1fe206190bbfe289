package taskapi

import "github.com/handoff-dev/handoff/handler/funcapp"

// Routes are the Task API's endpoints, exactly as its function.json files
// declare them (route prefix api).
func Routes() []funcapp.Route {
	return []funcapp.Route{
		{Method: "GET", Pattern: "/api/tasks"},
		{Method: "POST", Pattern: "/api/tasks"},
		{Method: "GET", Pattern: "/api/tasks/{id}"},
		{Method: "PATCH", Pattern: "/api/tasks/{id}"},
		{Method: "DELETE", Pattern: "/api/tasks/{id}"},
		{Method: "GET", Pattern: "/api/me"},
		{Method: "GET", Pattern: "/api/outbox"},
	}
}

// Settings are the environment variables the Task API reads: every one is
// in its local.settings.json.example, docs/configuration.md's table and the Bicep.
var Settings = []string{
	"AZURE_HOME_TENANT_ID", "AZURE_API_CLIENT_ID", "AZURE_AUTHORITY_HOST",
	"ALLOW_ANY_TENANT", "ALLOWED_TENANT_IDS", "ALLOWED_ORIGINS",
	"AZURE_API_CREDENTIAL", "AZURE_API_CLIENT_SECRET", "AZURE_KEYVAULT_URL",
	"AZURE_API_CLIENT_SECRET_NAME", "AZURE_API_CLIENT_CERTIFICATE_NAME", "AZURE_API_CLIENT_CERTIFICATE_PATH",
	"AZURE_API_CREDENTIAL_REFRESH", "AZURE_CLIENT_ID",
	"AZURE_NOTIFICATION_CLIENT_ID", "NOTIFICATION_URL", "NOTIFICATION_SCOPE",
	"AZURE_AUDIT_CLIENT_ID", "AUDIT_URL", "AUDIT_SCOPE",
	"DOWNSTREAM_TIMEOUT", "AUDIT_SWEEP_SCHEDULE", "AUDIT_RETRY_DELAY", "AUDIT_MAX_ATTEMPTS", "OBO_CACHE_SIZE", "MAX_TENANT_CLIENTS", "DATA_DIR", "STORAGE_BACKEND", "EXTRA_CA_FILE",
}
