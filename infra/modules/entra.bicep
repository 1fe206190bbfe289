// The four Entra ID app registrations of the system, as the Entra emulator's
// default directory has them (emulator/entra/default.go; infra_test.go
// compares the two): the multi-tenant Task API and Notification Service, the
// single-tenant Audit Service and the multi-tenant SPA, their service
// principals in the home tenant, the admin consents they need (the
// application permission is the postprovision hook's), and the federated
// credential that lets the Task API
// authenticate as itself with its managed identity (no secret).
//
// Identifier URIs are api://<tenant id>/<unique name>: they cannot use the
// app's own appId (not known before it exists), and that form is one Entra
// accepts for multi-tenant apps without a verified domain. Permission ids
// (scopes and app roles) are fixed: guid() of fixed strings.

extension microsoftGraphV1

@description('Prefix of the apps\' unique names, unique in the tenant (e.g. handoff-<token>).')
param namePrefix string

@description('Suffix of the apps\' display names, e.g. the azd environment.')
param displayNameSuffix string

@description('Principal (object) id of the Task API\'s user-assigned managed identity: the subject its federated credential trusts.')
param taskApiIdentityPrincipalId string

@description('SPA redirect URIs (the SPA\'s origins).')
param spaRedirectUris array

@description('Object ids made owners of the app registrations (the deploying principal); may be empty.')
param ownerIds array = []

var tenantId = tenant().tenantId

var identifierUris = {
  taskApi: 'api://${tenantId}/${namePrefix}-task-api'
  notification: 'api://${tenantId}/${namePrefix}-notification'
  audit: 'api://${tenantId}/${namePrefix}-audit'
}

// Fixed ids of the scopes and app roles: an id, once published, must never
// change (clients and grants name it).
var permissionIds = {
  accessAsUser: guid('handoff', 'Task API', 'scope', 'access_as_user')
  admin: guid('handoff', 'Task API', 'role', 'Admin')
  editor: guid('handoff', 'Task API', 'role', 'Editor')
  reader: guid('handoff', 'Task API', 'role', 'Reader')
  outboxReplay: guid('handoff', 'Task API', 'role', 'Outbox.Replay')
  outboxReplayAll: guid('handoff', 'Task API', 'role', 'Outbox.Replay.All')
  notifySend: guid('handoff', 'Notification Service', 'scope', 'Notify.Send')
  notifyRead: guid('handoff', 'Notification Service', 'scope', 'Notify.Read')
  auditWrite: guid('handoff', 'Audit Service', 'role', 'AuditLog.Write')
  auditRead: guid('handoff', 'Audit Service', 'role', 'AuditLog.Read')
}

// The optional claim the APIs rely on to tell app-only tokens (idtyp=app).
var idtypClaim = {
  accessToken: [
    {
      name: 'idtyp'
      essential: false
    }
  ]
}

// The SPA, first without its permission on the Task API (which does not
// exist yet and names the SPA as its known client); entra-spa-access.bicep
// completes it.
resource spaApp 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${namePrefix}-spa'
  displayName: 'Handoff SPA (${displayNameSuffix})'
  signInAudience: 'AzureADMultipleOrgs'
  owners: {
    relationships: ownerIds
  }
  spa: {
    redirectUris: spaRedirectUris
  }
}

resource notificationApi 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${namePrefix}-notification'
  displayName: 'Notification Service (${displayNameSuffix})'
  signInAudience: 'AzureADMultipleOrgs'
  identifierUris: [
    identifierUris.notification
  ]
  owners: {
    relationships: ownerIds
  }
  api: {
    requestedAccessTokenVersion: 2
    oauth2PermissionScopes: [
      {
        id: permissionIds.notifySend
        value: 'Notify.Send'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Send notifications as the signed-in user'
        adminConsentDescription: 'Lets the app send notifications on behalf of the signed-in user.'
        userConsentDisplayName: 'Send notifications as you'
        userConsentDescription: 'Lets the app send notifications on your behalf.'
      }
      {
        id: permissionIds.notifyRead
        value: 'Notify.Read'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Read the signed-in user\'s notifications'
        adminConsentDescription: 'Lets the app read the notifications of the signed-in user.'
        userConsentDisplayName: 'Read your notifications'
        userConsentDescription: 'Lets the app read your notifications.'
      }
    ]
  }
  optionalClaims: idtypClaim
}

resource auditApi 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${namePrefix}-audit'
  displayName: 'Audit Service (${displayNameSuffix})'
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUris.audit
  ]
  owners: {
    relationships: ownerIds
  }
  api: {
    requestedAccessTokenVersion: 2
  }
  appRoles: [
    {
      id: permissionIds.auditWrite
      value: 'AuditLog.Write'
      displayName: 'Write the audit log'
      description: 'Apps with this permission can append entries to the audit log.'
      allowedMemberTypes: [
        'Application'
      ]
      isEnabled: true
    }
    {
      id: permissionIds.auditRead
      value: 'AuditLog.Read'
      displayName: 'Read the audit log'
      description: 'Apps with this permission can read every tenant\'s audit entries.'
      allowedMemberTypes: [
        'Application'
      ]
      isEnabled: true
    }
  ]
  optionalClaims: idtypClaim
}

resource taskApi 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${namePrefix}-task-api'
  displayName: 'Task API (${displayNameSuffix})'
  signInAudience: 'AzureADMultipleOrgs'
  identifierUris: [
    identifierUris.taskApi
  ]
  owners: {
    relationships: ownerIds
  }
  api: {
    requestedAccessTokenVersion: 2
    // Consent to the SPA is consent to the Task API too, in any tenant.
    knownClientApplications: [
      spaApp.appId
    ]
    oauth2PermissionScopes: [
      {
        id: permissionIds.accessAsUser
        value: 'access_as_user'
        type: 'User'
        isEnabled: true
        adminConsentDisplayName: 'Use the Task API as the signed-in user'
        adminConsentDescription: 'Lets the app read and change the signed-in user\'s tasks, as the user\'s role allows.'
        userConsentDisplayName: 'Use the Task API as you'
        userConsentDescription: 'Lets the app read and change your tasks, as your role allows.'
      }
    ]
  }
  appRoles: [
    {
      id: permissionIds.admin
      value: 'Admin'
      displayName: 'Admin'
      description: 'Read, create, change and delete tasks; read undelivered audit events.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
    {
      id: permissionIds.editor
      value: 'Editor'
      displayName: 'Editor'
      description: 'Read, create and change tasks.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
    {
      id: permissionIds.reader
      value: 'Reader'
      displayName: 'Reader'
      description: 'Read tasks.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
    // The operators' roles: a person replays dead letters (the audit
    // record names them), so users only, not apps.
    {
      id: permissionIds.outboxReplay
      value: 'Outbox.Replay'
      displayName: 'Outbox operator'
      description: 'See this tenant\'s undelivered audit events and replay its dead letters.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
    {
      id: permissionIds.outboxReplayAll
      value: 'Outbox.Replay.All'
      displayName: 'Outbox operator, all tenants'
      description: 'See any tenant\'s undelivered audit events and replay its dead letters.'
      allowedMemberTypes: [
        'User'
      ]
      isEnabled: true
    }
  ]
  optionalClaims: idtypClaim
  // Multi-tenant resources only. Consent to the Task API in another tenant
  // (an admin's, or a user's combined consent through the SPA) provisions
  // every resource listed here in that tenant: the multi-tenant Notification
  // Service can be, and must be, since the Task API calls it On-Behalf-Of
  // that tenant's users. The single-tenant Audit Service cannot be
  // (AADSTS650052), and needs no entry: the Task API's AuditLog.Write is an
  // app role assignment in the home tenant (the postprovision hook).
  requiredResourceAccess: [
    {
      resourceAppId: notificationApi.appId
      resourceAccess: [
        {
          id: permissionIds.notifySend
          type: 'Scope'
        }
        {
          id: permissionIds.notifyRead
          type: 'Scope'
        }
      ]
    }
  ]

  // The Task API's credential: a token of its managed identity for
  // api://AzureADTokenExchange is its client assertion.
  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${taskApi.uniqueName}/task-api-managed-identity'
    description: 'The Task API Function App\'s user-assigned managed identity.'
    issuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
    subject: taskApiIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource taskApiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: taskApi.appId
}

resource notificationApiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: notificationApi.appId
}

// Only assigned apps get tokens for the Audit Service.
resource auditApiSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: auditApi.appId
  appRoleAssignmentRequired: true
}

resource spaSp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: spaApp.appId
}

// Admin consent in the home tenant: the Task API calls the Notification
// Service On-Behalf-Of every user, and the SPA signs every user in to the
// Task API.
resource taskApiToNotification 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: taskApiSp.id
  resourceId: notificationApiSp.id
  consentType: 'AllPrincipals'
  scope: 'Notify.Send Notify.Read'
}

resource spaToTaskApi 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: spaSp.id
  resourceId: taskApiSp.id
  consentType: 'AllPrincipals'
  scope: 'access_as_user'
}

// The application permission of client credentials (the Task API writes
// the audit log as itself) is not declared here: a second deployment of an
// existing Microsoft.Graph/appRoleAssignedTo fails with "EntitlementGrant
// entry already exists" (microsoftgraph/msgraph-bicep-types#161, open), and
// re-provisioning is the normal path. The postprovision hook
// (hooks/app-role-assignment.sh) makes it when it does not exist yet, from
// the appRoleAssignment output below.

// The SPA's permission on the Task API, now that the Task API exists.
module spaAccess 'entra-spa-access.bicep' = {
  name: 'entra-spa-access'
  params: {
    uniqueName: spaApp.uniqueName
    displayName: spaApp.displayName
    redirectUris: spaRedirectUris
    ownerIds: ownerIds
    taskApiAppId: taskApi.appId
    accessAsUserScopeId: permissionIds.accessAsUser
  }
}

@description('The Task API\'s application (client) id.')
output taskApiAppId string = taskApi.appId

@description('The Notification Service\'s application (client) id.')
output notificationAppId string = notificationApi.appId

@description('The Audit Service\'s application (client) id.')
output auditAppId string = auditApi.appId

@description('The SPA\'s application (client) id.')
output spaAppId string = spaApp.appId

@description('The Task API\'s identifier URI.')
output taskApiIdentifierUri string = identifierUris.taskApi

@description('The Notification Service\'s identifier URI.')
output notificationIdentifierUri string = identifierUris.notification

@description('The Audit Service\'s identifier URI.')
output auditIdentifierUri string = identifierUris.audit

@description('The Task API\'s AuditLog.Write on the Audit Service, for the postprovision hook to assign: principalId (the Task API\'s service principal), resourceId (the Audit Service\'s) and appRoleId.')
output appRoleAssignment object = {
  principalId: taskApiSp.id
  resourceId: auditApiSp.id
  appRoleId: permissionIds.auditWrite
}

@description('Id of the Task API\'s Outbox.Replay.All app role, which the postprovision hook assigns to TASK_API_OPERATORS.')
output outboxReplayAllRoleId string = permissionIds.outboxReplayAll

@description('The scope a client asks for to call the Task API as the user.')
output taskApiScope string = '${identifierUris.taskApi}/access_as_user'
