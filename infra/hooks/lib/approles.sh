# shellcheck shell=bash
# Microsoft Graph's app role assignment calls, sourced (not run) by the
# postprovision steps that assign app roles: app-role-assignment.sh and
# operator-roles.sh. Each is `az rest` as the signed-in Azure CLI user, who
# needs AppRoleAssignment.ReadWrite.All (Cloud Application Administrator
# has it). The ids go into URLs, a filter and a body: the callers refuse
# anything but GUIDs before the first call.

# Microsoft Graph Bicep deploys to the public cloud only, and so do these.
graph="https://graph.microsoft.com/v1.0"

# assigned PRINCIPAL RESOURCE ROLE prints how many of PRINCIPAL's app role
# assignments on RESOURCE (a service principal's object id) are ROLE (0 or
# 1). PRINCIPAL is servicePrincipals/<id>, users/<id> or groups/<id>.
# Graph filters appRoleAssignments by resourceId only; the role is picked
# out here, among the few the principal holds on the resource.
assigned() {
	az rest --method get \
		--url "${graph}/$1/appRoleAssignments?\$filter=resourceId%20eq%20$2" \
		--query "length(value[?appRoleId=='$3'])" --output tsv
}

# assign PRINCIPAL RESOURCE ROLE assigns ROLE on RESOURCE to PRINCIPAL
# (as for assigned).
assign() {
	az rest --method post --url "${graph}/servicePrincipals/$2/appRoleAssignedTo" \
		--headers "Content-Type=application/json" \
		--body "{\"principalId\":\"${1#*/}\",\"resourceId\":\"$2\",\"appRoleId\":\"$3\"}" \
		--output none
}
