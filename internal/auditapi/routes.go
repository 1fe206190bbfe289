package auditapi

import "github.com/handoff-dev/handoff/handler/funcapp"

// Routes are the Audit Service's endpoints, as its function.json declares them.
func Routes() []funcapp.Route {
	return []funcapp.Route{
		{Method: "POST", Pattern: "/api/audit"},
		{Method: "GET", Pattern: "/api/audit"},
	}
}

// Settings are the environment variables the Audit Service reads. It is
// single-tenant: it accepts its home tenant's tokens only.
var Settings = []string{
	"AZURE_HOME_TENANT_ID", "AZURE_AUDIT_CLIENT_ID", "AZURE_AUTHORITY_HOST",
	"ALLOWED_ORIGINS", "AZURE_API_CLIENT_ID", "ALLOWED_CALLER_APP_IDS", "DATA_DIR", "STORAGE_BACKEND", "EXTRA_CA_FILE",
}
