// The Key Vault of the Task API's client secret (AZURE_API_CREDENTIAL=
// keyvault-secret): authorization by Azure RBAC only, soft delete and purge
// protection on. With the default managed-identity credential it holds
// nothing, and costs nothing but its existence.

import { builtInRoles } from 'roles.bicep'

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@minLength(3)
@maxLength(24)
@description('Vault name: 3 to 24 letters, digits and hyphens, globally unique.')
param name string

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret can be recovered; with purge protection the name stays reserved that long.')
param softDeleteRetentionInDays int = 90

@description('Object id of the principal that may write secrets (the postprovision hook\'s); empty: none.')
param secretsOfficerPrincipalId string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

// The deploying principal writes the client secret in the postprovision
// hook; no principalType, since it may be a user or a service principal.
resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, builtInRoles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: secretsOfficerPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsOfficer)
  }
}

@description('The vault\'s name.')
output name string = vault.name

@description('The vault URI (AZURE_KEYVAULT_URL), https://<name>.vault.azure.net/.')
output uri string = vault.properties.vaultUri
