#!/usr/bin/env bash
# azd postprovision hook: after every `azd provision`, the two steps Bicep
# cannot do idempotently, each safe to run again:
#   app-role-assignment.sh  the Task API's AuditLog.Write on the Audit
#                           Service, made once, then found;
#   operator-roles.sh       Outbox.Replay.All on the Task API for the
#                           operators in TASK_API_OPERATORS (none: nothing);
#   client-secret.sh        with TASK_API_CREDENTIAL=keyvault-secret, the
#                           Task API's client secret in Key Vault, created or
#                           rotated when it nears its expiry.
set -euo pipefail

hooks="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "${hooks}/app-role-assignment.sh"
bash "${hooks}/operator-roles.sh"
bash "${hooks}/client-secret.sh"
