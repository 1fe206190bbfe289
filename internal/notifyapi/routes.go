package notifyapi

import "github.com/handoff-dev/handoff/handler/funcapp"

// Routes are the Notification Service's endpoints, as its function.json files declare them.
func Routes() []funcapp.Route {
	return []funcapp.Route{
		{Method: "POST", Pattern: "/api/notify"},
		{Method: "GET", Pattern: "/api/notifications"},
	}
}

// Settings are the environment variables the Notification Service reads.
var Settings = []string{
	"AZURE_HOME_TENANT_ID", "AZURE_NOTIFICATION_CLIENT_ID", "AZURE_AUTHORITY_HOST",
	"ALLOW_ANY_TENANT", "ALLOWED_TENANT_IDS", "ALLOWED_ORIGINS",
	"AZURE_API_CLIENT_ID", "ALLOWED_CALLER_APP_IDS", "DATA_DIR", "STORAGE_BACKEND", "EXTRA_CA_FILE",
}
