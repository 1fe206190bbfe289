package infra

// The operator-roles step of the postprovision hook, run against a
// stand-in for az.

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

const (
	replayAllRole = "44444444-4444-4444-8444-444444444444"
	opUser1       = "55555555-5555-4555-8555-555555555551"
	opUser2       = "55555555-5555-4555-8555-555555555552"
	opGroup       = "66666666-6666-4666-8666-666666666666"
)

// operatorGraphStub is az answering `az rest` as Graph would, per
// principal: GET …/users/<id>/appRoleAssignments (or groups/<id>) prints
// $STUB_DIR/assigned-<id> (0 when absent); POST records its body and
// creates the assignment for its principalId, or fails when
// $STUB_DIR/post_fails exists. The Task API's own assignment (GET
// …/servicePrincipals/<id>/appRoleAssignments) answers $STUB_DIR/assigned.
const operatorGraphStub = `
case "$*" in
"rest --method get --url https://graph.microsoft.com/v1.0/servicePrincipals/"*)
	cat "$STUB_DIR/assigned" 2>/dev/null || echo 0 ;;
"rest --method get"*)
	id="$(printf '%s' "$5" | sed -E 's#.*/(users|groups)/([^/]*)/appRoleAssignments.*#\2#')"
	cat "$STUB_DIR/assigned-$id" 2>/dev/null || echo 0 ;;
"rest --method post"*)
	while [ $# -gt 0 ]; do if [ "$1" = --body ]; then body="$2"; printf '%s\n' "$2" >>"$STUB_DIR/posted"; fi; shift; done
	if [ -f "$STUB_DIR/post_fails" ]; then echo "ERROR: Bad Request" >&2; exit 1; fi
	id="$(printf '%s' "$body" | sed -E 's/.*"principalId":"([^"]*)".*/\1/')"
	if [ -z "$id" ] || [ "$id" = "$body" ]; then echo "no principalId in $body" >&2; exit 2; fi
	echo 1 >"$STUB_DIR/assigned-$id"; echo 1 >"$STUB_DIR/assigned" ;;
*) echo "unexpected az $*" >&2; exit 2 ;;
esac
`

var operatorEnv = []string{"AZURE_TASK_API_SP_ID=" + taskSP, "OUTBOX_REPLAY_ALL_ROLE_ID=" + replayAllRole, "POSTPROVISION_RETRY_SECONDS=0"}

func operatorBody(principal string) string {
	return `{"principalId":"` + principal + `","resourceId":"` + taskSP + `","appRoleId":"` + replayAllRole + `"}`
}

// TestOperatorRolesHook: each operator in TASK_API_OPERATORS (users, and
// groups as group:<id>) is granted Outbox.Replay.All once and found on
// every later run; bad input fails before any call to Graph.
func TestOperatorRolesHook(t *testing.T) {
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("55555555-5555-4555-8555-%012d", i)
	}
	for _, tc := range []struct {
		name         string
		operators    string
		assigned     []string // principals holding the role before
		postFails    bool
		env          []string
		wantCode     int
		wantPosted   []string // principals, in order
		wantOut      []string
		wantNoAzCall bool
	}{
		{name: "none", operators: "", wantOut: []string{"no TASK_API_OPERATORS"}, wantNoAzCall: true,
			env: []string{"AZURE_TASK_API_SP_ID=", "OUTBOX_REPLAY_ALL_ROLE_ID="}},
		{name: "only separators", operators: " , ", wantOut: []string{"no TASK_API_OPERATORS"}, wantNoAzCall: true},
		{name: "first run assigns each", operators: opUser1 + ", " + opUser2 + ",group:" + opGroup,
			wantPosted: []string{opUser1, opUser2, opGroup}, wantOut: []string{"users/" + opUser1 + ": granted", "groups/" + opGroup + ": granted"}},
		{name: "re-provisioning keeps them", operators: opUser1 + ",group:" + opGroup, assigned: []string{opUser1, opGroup},
			wantOut: []string{"users/" + opUser1 + ": has Outbox.Replay.All: kept", "groups/" + opGroup + ": has Outbox.Replay.All: kept"}},
		{name: "one new", operators: opUser1 + "," + opUser2, assigned: []string{opUser1}, wantPosted: []string{opUser2}},
		{name: "Graph refuses", operators: opUser1, postFails: true, wantCode: 1,
			wantPosted: []string{opUser1, opUser1, opUser1, opUser1, opUser1, opUser1}, wantOut: []string{"azd hooks run postprovision"}},
		{name: "not an object id", operators: opUser1 + ",alice@contoso.com", wantCode: 1, wantOut: []string{"'alice@contoso.com' is not an object id"}, wantNoAzCall: true},
		{name: "an injection", operators: "group:" + opGroup + "')%20or%20true", wantCode: 1, wantOut: []string{"is not an object id"}, wantNoAzCall: true},
		{name: "too many", operators: strings.Join(many, ","), wantCode: 1, wantOut: []string{"names 51 principals, at most 50"}, wantNoAzCall: true},
		{name: "outputs missing", operators: opUser1, env: []string{"OUTBOX_REPLAY_ALL_ROLE_ID="}, wantCode: 1, wantOut: []string{"run azd provision first"}, wantNoAzCall: true},
		{name: "an output not a GUID", operators: opUser1, env: []string{"AZURE_TASK_API_SP_ID=x"}, wantCode: 1, wantOut: []string{"'x' is not a GUID"}, wantNoAzCall: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookRun(t)
			h.tool("az", operatorGraphStub)
			for _, p := range tc.assigned {
				h.file("assigned-"+p, "1")
			}
			if tc.postFails {
				h.file("post_fails", "always")
			}
			env := append(append([]string{"TASK_API_OPERATORS=" + tc.operators}, operatorEnv...), tc.env...)
			out, code := h.run("operator-roles.sh", os.Getenv("PATH"), env...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.wantCode, out)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			var want string
			for _, p := range tc.wantPosted {
				want += operatorBody(p) + "\n"
			}
			if posted := h.read("posted"); posted != want {
				t.Errorf("posted\n%s\nwant\n%s", posted, want)
			}
			calls := h.read("az.calls")
			if tc.wantNoAzCall && calls != "" {
				t.Errorf("az called:\n%s", calls)
			}
			if len(tc.wantPosted) > 0 && !strings.Contains(calls, "rest --method post --url https://graph.microsoft.com/v1.0/servicePrincipals/"+taskSP+"/appRoleAssignedTo") {
				t.Errorf("the assignment is not posted to the Task API's appRoleAssignedTo:\n%s", calls)
			}
			if strings.Contains(tc.operators, "group:") && tc.wantCode == 0 &&
				!strings.Contains(calls, "groups/"+opGroup+"/appRoleAssignments?$filter=resourceId%20eq%20"+taskSP) {
				t.Errorf("the existence check does not read the group's assignments on the Task API:\n%s", calls)
			}
		})
	}
}

// TestPostprovisionAssignsOperators: postprovision.sh runs the operator
// step between the Task API's own permission and the client secret.
func TestPostprovisionAssignsOperators(t *testing.T) {
	h := newHookRun(t)
	h.tool("az", operatorGraphStub)
	env := append(append(append([]string{}, assignmentEnv...), operatorEnv...), "TASK_API_OPERATORS="+opUser1, "TASK_API_CREDENTIAL=managed-identity")
	out, code := h.run("postprovision.sh", os.Getenv("PATH"), env...)
	granted, operator, secret := strings.Index(out, "granted the Task API AuditLog.Write"), strings.Index(out, "users/"+opUser1+": granted"), strings.Index(out, "no client secret to manage")
	if code != 0 || granted < 0 || operator < granted || secret < operator {
		t.Fatalf("exit %d, want the three steps in order:\n%s", code, out)
	}
}
