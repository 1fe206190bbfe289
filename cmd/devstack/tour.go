package main

import (
	"strings"

	"github.com/handoff-dev/handoff/emulator/entra"
)

// tourURLs are what the tour's lines name: the apps' and the emulator's
// base URLs and the CA file, as a shell beside `make run` sees them.
type tourURLs struct {
	Entra, Task, Notification, Audit, CAFile string
}

// defaultTourURLs are make run's: the README's tour names them.
var defaultTourURLs = tourURLs{
	Entra: "https://127.0.0.1:7070", Task: "http://127.0.0.1:7071", Notification: "http://127.0.0.1:7072",
	Audit: "http://127.0.0.1:7073", CAFile: ".state/entra/ca.pem",
}

// tourTemplate is the five-minute tour: a curl line for every route a
// person calls (POST /api/notify and POST /api/audit are the Task API's
// own calls, made on each create). Each comment's "→ NNN" is the status
// the next curl line answers; the README's test (tour_test.go) runs these
// lines as the README shows them and checks it.
const tourTemplate = `# Sign in as alice (Admin in the home tenant): a Task API token, password grant
TOKEN=$(bin/devstack token alice)

# Who the Task API says she is → 200
curl -fsS -i {task}/api/me -H "Authorization: Bearer $TOKEN"

# Create a task → 201; the Task API notifies alice (On-Behalf-Of) and audits it (client credentials)
RESPONSE=$(curl -fsS -i {task}/api/tasks -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"title":"Try the tour"}') && echo "$RESPONSE"
ID=$(echo "$RESPONSE" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
ETAG=$(echo "$RESPONSE" | grep -i '^etag:' | cut -d' ' -f2 | tr -d '\r')

# List her tenant's tasks → 200
curl -fsS -i {task}/api/tasks -H "Authorization: Bearer $TOKEN"

# Get the task → 200, with its ETag
curl -fsS -i {task}/api/tasks/$ID -H "Authorization: Bearer $TOKEN"

# Complete it, if it is still the version read (If-Match) → 200, with a new ETag
RESPONSE=$(curl -fsS -i -X PATCH {task}/api/tasks/$ID -H "Authorization: Bearer $TOKEN" \
  -H "If-Match: $ETAG" -H 'Content-Type: application/json' -d '{"completed":true}') && echo "$RESPONSE"
NEW_ETAG=$(echo "$RESPONSE" | grep -i '^etag:' | cut -d' ' -f2 | tr -d '\r')

# The old ETag no longer matches → 412 (this line prints the status)
curl -sS -o /dev/null -w '%{http_code}\n' -X PATCH {task}/api/tasks/$ID -H "Authorization: Bearer $TOKEN" \
  -H "If-Match: $ETAG" -H 'Content-Type: application/json' -d '{"completed":false}'

# Delete it (Admins only) → 200
curl -fsS -i -X DELETE {task}/api/tasks/$ID -H "Authorization: Bearer $TOKEN" -H "If-Match: $NEW_ETAG"

# The audit events in the Task API's outbox (Admins and operators) → 200
curl -fsS -i {task}/api/outbox -H "Authorization: Bearer $TOKEN"

# Replaying a dead letter needs an operator role: alice (Admin) is refused → 403 (this line prints the status)
curl -sS -o /dev/null -w '%{http_code}\n' -X POST {task}/api/outbox/$ID/replay -H "Authorization: Bearer $TOKEN"

# olivia (Outbox.Replay.All) replays her tenant's dead letters, at most 100 a call ("replayed":0 here) → 200
OPS_TOKEN=$(bin/devstack token olivia)
curl -fsS -i -X POST {task}/api/outbox/replay -H "Authorization: Bearer $OPS_TOKEN"

# Her notifications: a Notification Service token, On-Behalf-Of alice through the Task API → 200
NOTIFY_TOKEN=$(bin/devstack token --for notification alice)
curl -fsS -i {notification}/api/notifications -H "Authorization: Bearer $NOTIFY_TOKEN"

# The audit log: an app-only token of the operator app (AuditLog.Read), client credentials → 200
AUDIT_TOKEN=$(bin/devstack token --app operator --for audit)
curl -fsS -i {audit}/api/audit -H "Authorization: Bearer $AUDIT_TOKEN"

# What bin/devstack token alice does, in plain curl: the password grant → 200
curl -fsS -i --cacert {ca} {entra}/home.handoff.test/oauth2/v2.0/token \
  -d grant_type=password -d client_id={devclient} -d username=alice@home.handoff.test \
  -d 'password={password}' -d scope=api://{taskapi}/{scope}
`

// tour is the tour's shell lines for a stack at u.
func tour(u tourURLs) string {
	return strings.NewReplacer(
		"{entra}", u.Entra, "{task}", u.Task, "{notification}", u.Notification, "{audit}", u.Audit, "{ca}", u.CAFile,
		"{devclient}", entra.DevClientID, "{taskapi}", entra.TaskAPIClientID, "{scope}", entra.ScopeAccessAsUser,
		"{password}", entra.DefaultUserPassword,
	).Replace(tourTemplate)
}
