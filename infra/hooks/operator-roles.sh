#!/usr/bin/env bash
# The postprovision hook's second step (postprovision.sh runs it): make the
# deployment's operators, TASK_API_OPERATORS, holders of the Task API's
# Outbox.Replay.All app role (replay any tenant's dead-lettered audit
# events), unless they hold it already. Nothing to do when it is empty.
#
#   azd env set TASK_API_OPERATORS "<user object id>,group:<group object id>"
#
# Each entry is the object id of a user of the home tenant, or group:<id>
# for a group (assigning app roles to groups needs Entra ID P1 or P2).
# Removing an entry removes nothing: unassign in the portal (Enterprise
# applications → the Task API → Users and groups). Operators of another
# tenant (Outbox.Replay, their own tenant only) are assigned by that
# tenant's administrators (docs/deploy.md).
#
# Reads the azd environment: TASK_API_OPERATORS, AZURE_TASK_API_SP_ID and
# OUTBOX_REPLAY_ALL_ROLE_ID (main.bicep's outputs). Calls Microsoft Graph
# with `az rest` (lib/approles.sh) as the signed-in Azure CLI user, who needs
# AppRoleAssignment.ReadWrite.All (Cloud Application Administrator has it).
set -euo pipefail
# shellcheck source=lib/approles.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/approles.sh"

operators="${TASK_API_OPERATORS:-}"
if [[ -z "${operators//[, ]/}" ]]; then
	echo "postprovision: no TASK_API_OPERATORS: no operator to assign Outbox.Replay.All."
	exit 0
fi
resource="${AZURE_TASK_API_SP_ID:?postprovision: AZURE_TASK_API_SP_ID is not set (run azd provision first)}"
role="${OUTBOX_REPLAY_ALL_ROLE_ID:?postprovision: OUTBOX_REPLAY_ALL_ROLE_ID is not set (run azd provision first)}"
retry_delay="${POSTPROVISION_RETRY_SECONDS:-20}"
attempts=6
# maxOperators bounds the list (each entry is a few Graph calls).
max_operators=50

# The ids go into URLs, a filter and a body: refuse anything but GUIDs,
# all of them before the first call.
guid='^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'
for id in "$resource" "$role"; do
	if [[ ! "$id" =~ $guid ]]; then
		echo "postprovision: '${id}' is not a GUID (AZURE_TASK_API_SP_ID, OUTBOX_REPLAY_ALL_ROLE_ID)" >&2
		exit 1
	fi
done
IFS=', ' read -r -a entries <<<"$operators"
principals=()
for entry in "${entries[@]}"; do
	[[ -z "$entry" ]] && continue
	kind=users id="$entry"
	if [[ "$entry" == group:* ]]; then
		kind=groups id="${entry#group:}"
	fi
	if [[ ! "$id" =~ $guid ]]; then
		echo "postprovision: TASK_API_OPERATORS: '${entry}' is not an object id (a GUID, or group:<GUID>)" >&2
		exit 1
	fi
	principals+=("${kind}/${id}")
done
if ((${#principals[@]} > max_operators)); then
	echo "postprovision: TASK_API_OPERATORS names ${#principals[@]} principals, at most ${max_operators}: assign a group instead" >&2
	exit 1
fi

# ensure assigns the role to principal (users/<id> or groups/<id>) unless
# it holds it; a failed POST is checked again (a duplicate a replicated
# read missed is then found).
ensure() {
	local attempt count
	for ((attempt = 1; attempt <= attempts; attempt++)); do
		if count="$(assigned "$1" "$resource" "$role")"; then
			if [[ "$count" =~ ^[1-9][0-9]*$ ]]; then
				echo "postprovision: operator ${1}: has Outbox.Replay.All: kept."
				return 0
			fi
			if assign "$1" "$resource" "$role"; then
				echo "postprovision: operator ${1}: granted Outbox.Replay.All on the Task API."
				return 0
			fi
		fi
		if ((attempt < attempts)); then
			echo "postprovision: attempt ${attempt} to grant ${1} Outbox.Replay.All failed; retrying in ${retry_delay} s." >&2
			sleep "$retry_delay"
		fi
	done
	echo "postprovision: could not grant ${1} Outbox.Replay.All after ${attempts} attempts; fix the error above (is it an object id of this tenant?) and run: azd hooks run postprovision" >&2
	return 1
}

for p in "${principals[@]}"; do
	ensure "$p"
done
