#!/usr/bin/env bash
# The postprovision hook's first step (postprovision.sh runs it): grant the
# Task API's service principal the Audit Service's AuditLog.Write app role
# (the application permission of its client-credentials calls), unless it
# has it already.
#
# Not a Microsoft.Graph/appRoleAssignedTo resource in Bicep: a second
# deployment of an existing one fails with "EntitlementGrant entry already
# exists" (microsoftgraph/msgraph-bicep-types#161), and every `azd provision`
# after the first is such a deployment. Here the assignment is made once and
# found on every later run.
#
# Reads the azd environment (main.bicep's outputs): AZURE_TASK_API_SP_ID,
# AZURE_AUDIT_SP_ID, AUDIT_WRITE_ROLE_ID. Calls Microsoft Graph with
# `az rest` (lib/approles.sh) as the signed-in Azure CLI user, who needs
# AppRoleAssignment.ReadWrite.All (Cloud Application Administrator has it).
set -euo pipefail
# shellcheck source=lib/approles.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/approles.sh"

principal="${AZURE_TASK_API_SP_ID:?postprovision: AZURE_TASK_API_SP_ID is not set (run azd provision first)}"
resource="${AZURE_AUDIT_SP_ID:?postprovision: AZURE_AUDIT_SP_ID is not set (run azd provision first)}"
role="${AUDIT_WRITE_ROLE_ID:?postprovision: AUDIT_WRITE_ROLE_ID is not set (run azd provision first)}"
# Seconds between attempts: Graph replicates new service principals and
# assignments with a delay.
retry_delay="${POSTPROVISION_RETRY_SECONDS:-20}"
attempts=6

# The ids go into a URL and a query: refuse anything but GUIDs.
guid='^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'
for id in "$principal" "$resource" "$role"; do
	if [[ ! "$id" =~ $guid ]]; then
		echo "postprovision: '${id}' is not a GUID (AZURE_TASK_API_SP_ID, AZURE_AUDIT_SP_ID, AUDIT_WRITE_ROLE_ID)" >&2
		exit 1
	fi
done

for ((attempt = 1; attempt <= attempts; attempt++)); do
	if count="$(assigned "servicePrincipals/${principal}" "$resource" "$role")"; then
		if [[ "$count" =~ ^[1-9][0-9]*$ ]]; then
			echo "postprovision: the Task API has AuditLog.Write on the Audit Service: kept."
			exit 0
		fi
		# A failed POST is checked again above: Graph refuses a duplicate
		# that a read just missed (replication), and the next read finds it.
		if assign "servicePrincipals/${principal}" "$resource" "$role"; then
			echo "postprovision: granted the Task API AuditLog.Write on the Audit Service."
			exit 0
		fi
	fi
	if ((attempt < attempts)); then
		echo "postprovision: attempt ${attempt} to grant AuditLog.Write failed (Graph may not have replicated the service principals yet); retrying in ${retry_delay} s." >&2
		sleep "$retry_delay"
	fi
done
echo "postprovision: could not grant the Task API AuditLog.Write on the Audit Service after ${attempts} attempts; fix the error above and run: azd hooks run postprovision" >&2
exit 1
