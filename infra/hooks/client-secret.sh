#!/usr/bin/env bash
# The postprovision hook's second step (postprovision.sh runs it): when the
# Task API uses a client secret kept in Key Vault (taskApiCredential /
# TASK_API_CREDENTIAL=keyvault-secret), create it,
# or rotate it when it expires within TASK_API_SECRET_RENEW_DAYS or when
# TASK_API_SECRET_ROTATE=true, with `az ad app credential reset`, and store it
# in the vault. With the default managed-identity credential it does nothing.
#
# The secret never reaches stdout, a shell variable or a command line: the
# Graph answer is piped into a private temporary file that
# `az keyvault secret set --file` reads, and that file is removed on exit.
# The Task API re-reads the vault every AZURE_API_CREDENTIAL_REFRESH (5m),
# and at once when Entra refuses the old secret.
#
# Reads the azd environment (the deployment's outputs): TASK_API_CREDENTIAL,
# AZURE_TASK_API_CLIENT_ID, AZURE_KEYVAULT_NAME, TASK_API_SECRET_NAME.
set -euo pipefail
set +x # never trace: a traced line could show what this script handles

credential="${TASK_API_CREDENTIAL:-managed-identity}"
if [[ "$credential" != "keyvault-secret" ]]; then
	echo "postprovision: the Task API uses ${credential}: no client secret to manage."
	exit 0
fi

app_id="${AZURE_TASK_API_CLIENT_ID:?postprovision: AZURE_TASK_API_CLIENT_ID is not set (run azd provision first)}"
vault="${AZURE_KEYVAULT_NAME:?postprovision: AZURE_KEYVAULT_NAME is not set (run azd provision first)}"
secret_name="${TASK_API_SECRET_NAME:-task-api-client-secret}"
lifetime_days="${TASK_API_SECRET_DAYS:-180}"
renew_days="${TASK_API_SECRET_RENEW_DAYS:-30}"
rotate="${TASK_API_SECRET_ROTATE:-false}"
# Credentials this hook made carry this name; it keeps the newest two (the
# one just stored, and the previous one while instances still hold it).
display_name="handoff-postprovision"
keep=2

# utc_in DAYS: the UTC time DAYS from now, as 2006-01-02T15:04:05Z (GNU or BSD date).
utc_in() {
	date -u -d "+$1 days" '+%Y-%m-%dT%H:%M:%SZ' 2>/dev/null || date -u -v "+$1d" '+%Y-%m-%dT%H:%M:%SZ'
}

# with_retry CMD...: runs CMD, retrying for about five minutes: a role
# assignment just made (Key Vault Secrets Officer) takes a while to apply.
with_retry() {
	local attempt
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		if "$@"; then
			return 0
		fi
		echo "postprovision: attempt ${attempt} failed (the vault role may not have applied yet); retrying in 30 s." >&2
		sleep 30
	done
	"$@"
}

# The stored secret's expiry, from the vault's listing (which holds no values).
expires="$(with_retry az keyvault secret list --vault-name "$vault" \
	--query "[?name=='${secret_name}'] | [0].attributes.expires" --output tsv)"

reason=""
if [[ -z "$expires" ]]; then
	reason="no secret ${secret_name} with an expiry in ${vault}"
elif [[ "$rotate" == "true" ]]; then
	reason="TASK_API_SECRET_ROTATE=true"
elif [[ "${expires:0:19}" < "$(utc_in "$renew_days" | cut -c1-19)" ]]; then
	reason="${secret_name} expires ${expires}, within ${renew_days} days"
fi
if [[ -z "$reason" ]]; then
	echo "postprovision: ${secret_name} in ${vault} is valid until ${expires}: kept (TASK_API_SECRET_ROTATE=true rotates it)."
	exit 0
fi
echo "postprovision: ${reason}: adding a client secret to the Task API (${app_id}) and storing it in ${vault}."

end_date="$(utc_in "$lifetime_days")"
umask 077
secret_file="$(mktemp)"
trap 'rm -f "$secret_file"' EXIT

# --append keeps the app's other credentials; the password goes straight
# into the private file, without its line break.
az ad app credential reset --id "$app_id" --append --display-name "$display_name" \
	--end-date "$end_date" --query password --output tsv | tr -d '\r\n' >"$secret_file"
if [[ ! -s "$secret_file" ]]; then
	echo "postprovision: az ad app credential reset returned no password" >&2
	exit 1
fi

with_retry az keyvault secret set --vault-name "$vault" --name "$secret_name" --file "$secret_file" --encoding utf-8 \
	--content-type "client secret of app ${app_id}" --expires "$end_date" --output none
rm -f "$secret_file"

# Remove this hook's older credentials, oldest first, keeping the newest ones.
old_keys="$(az ad app credential list --id "$app_id" \
	--query "sort_by([?displayName=='${display_name}'], &startDateTime)[].keyId" --output tsv)"
count="$(printf '%s\n' "$old_keys" | grep -c . || true)"
if ((count > keep)); then
	printf '%s\n' "$old_keys" | head -n "$((count - keep))" | while read -r key_id; do
		echo "postprovision: removing the Task API's older client secret ${key_id}."
		az ad app credential delete --id "$app_id" --key-id "$key_id" --output none
	done
fi
echo "postprovision: ${secret_name} in ${vault} is new, valid until ${end_date}."
