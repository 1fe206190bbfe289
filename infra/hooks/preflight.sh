#!/usr/bin/env bash
# Preflight: what `azd up` needs, checked before anything is created. azd
# runs it as the preprovision hook (azure.yaml); `make deploy-check` runs it
# by hand, before the first `azd up`. Each problem is one line with its fix;
# the exit status is 1 when there is one.
#
#   azd >= 1.20    `language: custom` (the three Function Apps) is an azd
#                  alpha feature from 1.20 on; it must be turned on
#   az  >= 2.60    the hooks: az functionapp list-flexconsumption-locations
#                  (the Flex Consumption commands need 2.60, per the Azure
#                  Functions docs), az keyvault secret set --content-type
#                  (2.41), az ad app credential reset --display-name (2.37)
#   Bicep >= 0.36.1  `extension microsoftGraphV1` without an experimental
#                  flag; azd brings its own (0.38.33 from azd 1.20), so only
#                  one named by AZD_BICEP_TOOL_PATH is checked
#   az signed in (the hooks call Graph and Key Vault with it), and azd
#   the region (AZURE_LOCATION) offers the Flex Consumption plan
#
# Only bash builtins (of bash 3.2, macOS's) besides azd, az and bicep.
set -euo pipefail
shopt -s nocasematch

min_azd=1.20.0
min_az=2.60.0
min_bicep=0.36.1
azd_install="https://aka.ms/azd-install"
az_install="https://aka.ms/installazurecli"
problems=0

ok() { printf 'preflight: ok: %s\n' "$*"; }
fail() {
	printf 'preflight: FAIL: %s\n' "$*"
	problems=$((problems + 1))
}

# semver TEXT: the first x.y.z in TEXT, or nothing.
semver() {
	if [[ "$1" =~ ([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
		printf '%s' "${BASH_REMATCH[0]}"
	fi
}

# at_least V MIN: whether version V (x.y.z) is MIN or later.
at_least() {
	local -a v m
	IFS=. read -r -a v <<<"$1"
	IFS=. read -r -a m <<<"$2"
	local i
	for i in 0 1 2; do
		if ((10#${v[i]} != 10#${m[i]})); then
			((10#${v[i]} > 10#${m[i]}))
			return
		fi
	done
	return 0
}

# The tools first: without them nothing else can be checked.
missing=()
command -v azd >/dev/null 2>&1 || missing+=("azd ${min_azd} or later (${azd_install})")
command -v az >/dev/null 2>&1 || missing+=("the Azure CLI az ${min_az} or later (${az_install})")
if ((${#missing[@]} > 0)); then
	list="${missing[0]}"
	if ((${#missing[@]} > 1)); then
		list="${missing[0]} and ${missing[1]}"
	fi
	printf 'preflight: FAIL: missing %s: install, then run make deploy-check again\n' "$list"
	exit 1
fi

check_azd() {
	local v
	v="$(semver "$(azd version 2>/dev/null || true)")"
	if [[ -z "$v" ]]; then
		fail "azd version printed no version: reinstall azd (${azd_install})"
	elif ! at_least "$v" "$min_azd"; then
		fail "azd ${v} is older than ${min_azd} (language: custom): upgrade azd (${azd_install})"
	else
		ok "azd ${v}"
	fi
}

check_az() {
	local v
	v="$(semver "$(az version --query '"azure-cli"' --output tsv 2>/dev/null || true)")"
	if [[ -z "$v" ]]; then
		fail "az version printed no azure-cli version: reinstall the Azure CLI (${az_install})"
	elif ! at_least "$v" "$min_az"; then
		fail "az ${v} is older than ${min_az} (az functionapp list-flexconsumption-locations): run az upgrade"
	else
		ok "az ${v}"
	fi
}

# azd uses the Bicep of AZD_BICEP_TOOL_PATH as it is; otherwise its own
# copy, which it downloads, or upgrades, to the version it pins.
check_bicep() {
	local tool="${AZD_BICEP_TOOL_PATH:-}" path v
	if [[ -z "$tool" ]]; then
		ok "Bicep: azd's own (it fetches ${min_bicep} or later; set AZD_BICEP_TOOL_PATH to use another)"
		return
	fi
	if ! path="$(command -v "$tool" 2>/dev/null)"; then
		fail "AZD_BICEP_TOOL_PATH=${tool} is not a program: point it at Bicep ${min_bicep} or later, or unset it (azd then uses its own)"
		return
	fi
	v="$(semver "$("$path" --version 2>/dev/null || true)")"
	if [[ -z "$v" ]] || ! at_least "$v" "$min_bicep"; then
		fail "Bicep ${v:-of unknown version} at AZD_BICEP_TOOL_PATH=${tool} is older than ${min_bicep} (extension microsoftGraphV1): upgrade it (az bicep upgrade), or unset AZD_BICEP_TOOL_PATH"
	else
		ok "Bicep ${v} (AZD_BICEP_TOOL_PATH)"
	fi
}

# language: custom is on when azd's environment variable says so (it reads
# Go's booleans, so "on" there is ignored), else alpha.all or
# alpha.language.custom in azd's configuration is "on".
check_alpha() {
	local env="${AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM-}" key value
	local fix="run: azd config set alpha.language.custom on"
	case "$env" in
	1 | t | T | TRUE | true | True)
		ok "azd alpha feature language.custom (AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=${env})"
		return
		;;
	0 | f | F | FALSE | false | False)
		fail "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=${env} turns off language: custom, which azure.yaml's services use: unset it, then ${fix}"
		return
		;;
	esac
	for key in alpha.all alpha.language.custom; do
		value="$(azd config get "$key" 2>/dev/null || true)"
		if [[ "$value" == *'"on"'* ]]; then
			ok "azd alpha feature language.custom (${key} on)"
			return
		fi
	done
	if [[ -n "$env" ]]; then
		fail "AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=${env} is ignored by azd (it takes true or false): export AZD_ALPHA_ENABLE_LANGUAGE_CUSTOM=true, or ${fix}"
	else
		fail "azd's alpha feature language.custom is off, and azure.yaml's services use language: custom: ${fix}"
	fi
}

# The hooks use the Azure CLI's sign-in; azd has its own.
check_accounts() {
	local sub="${AZURE_SUBSCRIPTION_ID:-}" who
	local -a scope=()
	if [[ -n "$sub" ]]; then
		scope=(--subscription "$sub")
	fi
	if who="$(az account show ${scope[@]+"${scope[@]}"} --query '[user.name, name, id]' --output tsv 2>/dev/null)" && [[ -n "$who" ]]; then
		ok "az signed in: ${who//$'\n'/ }"
	elif [[ -n "$sub" ]]; then
		fail "the Azure CLI cannot use subscription ${sub} (AZURE_SUBSCRIPTION_ID): run az login, then az account set --subscription ${sub}"
		return 1
	else
		fail "the Azure CLI is not signed in (the hooks use it): run az login"
		return 1
	fi
	if [[ "$(azd auth login --check-status --output json 2>/dev/null || true)" =~ \"status\":[[:space:]]*\"success\" ]]; then
		ok "azd signed in"
	else
		fail "azd is not signed in: run azd auth login"
	fi
}

# The region of every resource but the Static Web App must offer Flex
# Consumption. AZURE_LOCATION comes from azd (the hook's environment) or
# the current azd environment; before the first `azd up` there may be none.
check_region() {
	local loc="${AZURE_LOCATION:-}" sub="${AZURE_SUBSCRIPTION_ID:-}" regions name
	local -a scope=()
	if [[ -z "$loc" ]]; then
		loc="$(azd env get-value AZURE_LOCATION 2>/dev/null || true)"
	fi
	if [[ -z "$loc" ]]; then
		ok "region: none chosen yet (azd up asks; azd env set AZURE_LOCATION <region> first to have it checked)"
		return
	fi
	if [[ -n "$sub" ]]; then
		scope=(--subscription "$sub")
	fi
	if ! regions="$(az functionapp list-flexconsumption-locations ${scope[@]+"${scope[@]}"} --query '[].name' --output tsv 2>/dev/null)"; then
		fail "az functionapp list-flexconsumption-locations failed: run it to see why (az ${min_az} or later, signed in)"
		return
	fi
	local offered="" given="$loc"
	loc="${loc// /}"
	while read -r name; do
		if [[ -n "$name" && "${name// /}" == "$loc" ]]; then
			ok "region ${name} offers Flex Consumption"
			return
		fi
		offered="${offered:+${offered}, }${name}"
	done <<<"$regions"
	fail "region ${given} (AZURE_LOCATION) does not offer Flex Consumption: choose one of ${offered} (azd env set AZURE_LOCATION <region> before the first provision, or azd env new)"
}

check_azd
check_az
check_bicep
check_alpha
if check_accounts; then
	check_region
fi
if ((problems > 0)); then
	exit 1
fi
