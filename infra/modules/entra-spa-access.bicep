// The SPA's registration, completed with its delegated permission on the
// Task API. entra.bicep creates the SPA first (the Task API names it as a
// known client application, so it must exist first); the SPA's
// requiredResourceAccess names the Task API, so it comes in this second
// declaration of the same app (same uniqueName), deployed after both.

extension microsoftGraphV1

@description('The SPA\'s unique name, as entra.bicep declares it.')
param uniqueName string

@description('The SPA\'s display name, as entra.bicep declares it.')
param displayName string

@description('SPA redirect URIs, as entra.bicep declares them.')
param redirectUris array

@description('Object ids made owners of the app registration; may be empty.')
param ownerIds array = []

@description('The Task API\'s application (client) id.')
param taskApiAppId string

@description('The id of the Task API\'s access_as_user scope.')
param accessAsUserScopeId string

resource spaApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMultipleOrgs'
  owners: {
    relationships: ownerIds
  }
  spa: {
    redirectUris: redirectUris
  }
  requiredResourceAccess: [
    {
      resourceAppId: taskApiAppId
      resourceAccess: [
        {
          id: accessAsUserScopeId
          type: 'Scope'
        }
      ]
    }
  ]
}
