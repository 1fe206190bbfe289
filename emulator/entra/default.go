package entra

// Fixed ids of the default directory, so docs, configuration and tests can
// name them. Every id is a valid GUID; the patterns only make them readable:
// tenants 10…/20…/30…, apps a0…, users b0…, managed identities e0…/e1….
const (
	HomeTenantID   = "10000000-0000-4000-8000-000000000001"
	SecondTenantID = "20000000-0000-4000-8000-000000000002"
	ThirdTenantID  = "30000000-0000-4000-8000-000000000003"

	TaskAPIClientID      = "a0000000-0000-4000-8000-000000000001"
	NotificationClientID = "a0000000-0000-4000-8000-000000000002"
	AuditClientID        = "a0000000-0000-4000-8000-000000000003"
	SPAClientID          = "a0000000-0000-4000-8000-000000000004"
	DevClientID          = "a0000000-0000-4000-8000-000000000005"
	OperatorClientID     = "a0000000-0000-4000-8000-000000000006"

	// Microsoft's own apps, with their real app ids.
	KeyVaultAppID      = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
	KeyVaultResource   = "https://vault.azure.net"
	TokenExchangeAppID = "fb60f99c-7a34-4190-8149-302f77469936"
	TokenExchangeURI   = "api://AzureADTokenExchange"

	AliceOID = "b0000000-0000-4000-8000-000000000001"
	BobOID   = "b0000000-0000-4000-8000-000000000002"
	CarolOID = "b0000000-0000-4000-8000-000000000003"
	DaveOID  = "b0000000-0000-4000-8000-000000000004"
	ErinOID  = "b0000000-0000-4000-8000-000000000005"
	FrankOID = "b0000000-0000-4000-8000-000000000006"
	// OliviaOID is the deployment's operator: Admin of the home tenant and
	// Outbox.Replay.All (any tenant's dead letters).
	OliviaOID = "b0000000-0000-4000-8000-000000000007"
	// OwenOID is a tenant's operator: Reader and Outbox.Replay in Fabrikam.
	OwenOID = "b0000000-0000-4000-8000-000000000008"

	// TaskAPIIdentityClientID is the Task API's managed identity, trusted by
	// the Task API app as a federated credential.
	TaskAPIIdentityClientID = "e0000000-0000-4000-8000-000000000001"
	TaskAPIIdentityObjectID = "e1000000-0000-4000-8000-000000000001"

	// Development-only secrets: fixed so examples work; never real.
	TaskAPISecret       = "dev-task-api-secret-not-for-production"
	OperatorSecret      = "dev-operator-secret-not-for-production"
	DevIdentityHeader   = "dev-identity-header-not-for-production"
	DefaultUserPassword = "Passw0rd!"
)

// Scope and role values the default directory defines.
const (
	ScopeAccessAsUser = "access_as_user"
	ScopeNotifySend   = "Notify.Send"
	ScopeNotifyRead   = "Notify.Read"
	RoleAdmin         = "Admin"
	RoleEditor        = "Editor"
	RoleReader        = "Reader"
	// The Task API's operator roles: replay one's own tenant's dead
	// letters, or any tenant's.
	RoleOutboxReplay    = "Outbox.Replay"
	RoleOutboxReplayAll = "Outbox.Replay.All"
	RoleAuditWrite      = "AuditLog.Write"
	RoleAuditRead       = "AuditLog.Read"
)

// DefaultDirectory is the system the project runs: the Task API, Notification
// and Audit services, a SPA, a dev client for scripts and an operator app, in
// a home tenant (alice Admin, bob Editor, carol Reader, dave no role, olivia
// Admin and the cross-tenant operator), a second allowed tenant (erin Editor,
// owen Reader and the tenant's operator) and a third tenant on no allow-list
// (frank).
// Each call returns a fresh copy.
func DefaultDirectory() *Directory {
	user := func(oid, name, username string) *User {
		return &User{ObjectID: oid, Name: name, PreferredUsername: username, Password: DefaultUserPassword}
	}
	userRole := func(oid, role string) *AppRoleAssignment {
		return &AppRoleAssignment{PrincipalType: PrincipalUser, PrincipalID: oid, ResourceAppID: TaskAPIClientID, Role: role}
	}
	sps := func(appIDs ...string) []*ServicePrincipal {
		var out []*ServicePrincipal
		for _, id := range appIDs {
			out = append(out, &ServicePrincipal{AppID: id})
		}
		return out
	}
	// Clients that sign users in to the Task API, admin-consented wherever provisioned.
	userFacing := func() []*ConsentGrant {
		return []*ConsentGrant{
			{ClientAppID: SPAClientID, ResourceAppID: TaskAPIClientID, Scopes: []string{ScopeAccessAsUser}, Principal: AllPrincipals},
			{ClientAppID: DevClientID, ResourceAppID: TaskAPIClientID, Scopes: []string{ScopeAccessAsUser}, Principal: AllPrincipals},
		}
	}
	notifyConsent := &ConsentGrant{ClientAppID: TaskAPIClientID, ResourceAppID: NotificationClientID, Scopes: []string{ScopeNotifySend, ScopeNotifyRead}, Principal: AllPrincipals}
	// The Notification Service's own notifications page, for a user reading theirs.
	devNotify := &ConsentGrant{ClientAppID: DevClientID, ResourceAppID: NotificationClientID, Scopes: []string{ScopeNotifyRead}, Principal: AllPrincipals}

	home := &Tenant{
		ID: HomeTenantID, DisplayName: "Handoff Home", Domain: "home.handoff.test",
		Users: []*User{
			user(AliceOID, "Alice Admin", "alice@home.handoff.test"),
			user(BobOID, "Bob Editor", "bob@home.handoff.test"),
			user(CarolOID, "Carol Reader", "carol@home.handoff.test"),
			user(DaveOID, "Dave NoRole", "dave@home.handoff.test"),
			user(OliviaOID, "Olivia Operator", "olivia@home.handoff.test"),
		},
		ServicePrincipals: append(sps(TaskAPIClientID, NotificationClientID, SPAClientID, DevClientID, OperatorClientID),
			&ServicePrincipal{AppID: AuditClientID, AppRoleAssignmentRequired: true}),
		AppRoleAssignments: []*AppRoleAssignment{
			userRole(AliceOID, RoleAdmin),
			userRole(BobOID, RoleEditor),
			userRole(CarolOID, RoleReader),
			userRole(OliviaOID, RoleAdmin),
			userRole(OliviaOID, RoleOutboxReplayAll),
			{PrincipalType: PrincipalServicePrincipal, PrincipalID: TaskAPIClientID, ResourceAppID: AuditClientID, Role: RoleAuditWrite},
			{PrincipalType: PrincipalServicePrincipal, PrincipalID: OperatorClientID, ResourceAppID: AuditClientID, Role: RoleAuditRead},
		},
		ConsentGrants: append(userFacing(), notifyConsent, devNotify),
	}
	second := &Tenant{
		ID: SecondTenantID, DisplayName: "Fabrikam", Domain: "fabrikam.handoff.test",
		Users: []*User{
			user(ErinOID, "Erin Editor", "erin@fabrikam.handoff.test"),
			user(OwenOID, "Owen Operator", "owen@fabrikam.handoff.test"),
		},
		ServicePrincipals: sps(TaskAPIClientID, NotificationClientID, SPAClientID, DevClientID),
		AppRoleAssignments: []*AppRoleAssignment{
			userRole(ErinOID, RoleEditor),
			userRole(OwenOID, RoleReader),
			userRole(OwenOID, RoleOutboxReplay),
		},
		ConsentGrants: append(userFacing(), notifyConsent, devNotify),
	}
	// Northwind can sign in to the Task API, which refuses it: it is on no allow-list.
	third := &Tenant{
		ID: ThirdTenantID, DisplayName: "Northwind", Domain: "northwind.handoff.test",
		Users:             []*User{user(FrankOID, "Frank Outsider", "frank@northwind.handoff.test")},
		ServicePrincipals: sps(TaskAPIClientID, SPAClientID, DevClientID),
		ConsentGrants:     userFacing(),
	}

	v2 := 2
	idtyp := []string{"idtyp"}
	apps := []*Application{
		{
			ClientID: TaskAPIClientID, DisplayName: "Task API", HomeTenant: HomeTenantID, SignInAudience: MultiTenant,
			Secrets: []Secret{{ID: "dev", Value: TaskAPISecret}},
			FederatedCredentials: []FederatedCredential{{
				Name: "task-api-managed-identity", Issuer: "{base}/" + HomeTenantID + "/v2.0",
				Subject: TaskAPIIdentityObjectID, Audiences: []string{TokenExchangeURI},
			}},
			Scopes: []Scope{{ID: "f0000000-0000-4000-8000-000000000001", Value: ScopeAccessAsUser}},
			AppRoles: []AppRole{
				{ID: "f1000000-0000-4000-8000-000000000001", Value: RoleAdmin, AllowedMemberTypes: []string{"User"}},
				{ID: "f1000000-0000-4000-8000-000000000002", Value: RoleEditor, AllowedMemberTypes: []string{"User"}},
				{ID: "f1000000-0000-4000-8000-000000000003", Value: RoleReader, AllowedMemberTypes: []string{"User"}},
				{ID: "f1000000-0000-4000-8000-000000000006", Value: RoleOutboxReplay, AllowedMemberTypes: []string{"User"}},
				{ID: "f1000000-0000-4000-8000-000000000007", Value: RoleOutboxReplayAll, AllowedMemberTypes: []string{"User"}},
			},
			// Only multi-tenant resources: consent to the Task API in another
			// tenant provisions each one there, and the single-tenant Audit
			// Service cannot be (AADSTS650052). Its AuditLog.Write is the home
			// tenant's app role assignment below, which needs no entry here.
			RequiredAccess: []RequiredAccess{
				{ResourceAppID: NotificationClientID, Scopes: []string{ScopeNotifySend, ScopeNotifyRead}},
			},
			KnownClientApps:    []string{SPAClientID, DevClientID},
			AccessTokenVersion: v2, OptionalClaims: idtyp,
		},
		{
			ClientID: NotificationClientID, DisplayName: "Notification Service", HomeTenant: HomeTenantID, SignInAudience: MultiTenant,
			Scopes: []Scope{
				{ID: "f0000000-0000-4000-8000-000000000002", Value: ScopeNotifySend},
				{ID: "f0000000-0000-4000-8000-000000000003", Value: ScopeNotifyRead},
			},
			AccessTokenVersion: v2, OptionalClaims: idtyp,
		},
		{
			ClientID: AuditClientID, DisplayName: "Audit Service", HomeTenant: HomeTenantID, SignInAudience: SingleTenant,
			AppRoles: []AppRole{
				{ID: "f1000000-0000-4000-8000-000000000004", Value: RoleAuditWrite, AllowedMemberTypes: []string{"Application"}},
				{ID: "f1000000-0000-4000-8000-000000000005", Value: RoleAuditRead, AllowedMemberTypes: []string{"Application"}},
			},
			AccessTokenVersion: v2, OptionalClaims: idtyp,
		},
		{
			ClientID: SPAClientID, DisplayName: "Handoff SPA", HomeTenant: HomeTenantID, SignInAudience: MultiTenant,
			SPARedirectURIs: []string{"http://localhost:3000", "http://localhost:3000/"},
			RequiredAccess:  []RequiredAccess{{ResourceAppID: TaskAPIClientID, Scopes: []string{ScopeAccessAsUser}}},
		},
		{
			ClientID: DevClientID, DisplayName: "Handoff Dev Client", HomeTenant: HomeTenantID, SignInAudience: MultiTenant,
			PublicRedirectURIs: []string{"http://localhost"},
			PublicClient:       true,
			RequiredAccess: []RequiredAccess{
				{ResourceAppID: TaskAPIClientID, Scopes: []string{ScopeAccessAsUser}},
				{ResourceAppID: NotificationClientID, Scopes: []string{ScopeNotifyRead}},
			},
		},
		{
			ClientID: OperatorClientID, DisplayName: "Handoff Operator", HomeTenant: HomeTenantID, SignInAudience: SingleTenant,
			Secrets:        []Secret{{ID: "dev", Value: OperatorSecret}},
			RequiredAccess: []RequiredAccess{{ResourceAppID: AuditClientID, Roles: []string{RoleAuditRead}}},
		},
		{
			ClientID: KeyVaultAppID, DisplayName: "Azure Key Vault", FirstParty: true,
			IdentifierURIs: []string{KeyVaultResource},
		},
		{
			ClientID: graphAppID, DisplayName: "Microsoft Graph (sign-in only)", FirstParty: true,
			IdentifierURIs: []string{"https://graph.microsoft.com"},
			Scopes:         []Scope{{ID: "e1bfa6d4-0000-4000-8000-000000000001", Value: "User.Read"}},
		},
		{
			ClientID: TokenExchangeAppID, DisplayName: "AAD Token Exchange", FirstParty: true,
			IdentifierURIs: []string{TokenExchangeURI}, AccessTokenVersion: v2,
		},
	}
	return &Directory{
		Tenants:      []*Tenant{home, second, third},
		Applications: apps,
		ManagedIdentities: []*ManagedIdentity{{
			Name: "task-api-identity", ClientID: TaskAPIIdentityClientID, ObjectID: TaskAPIIdentityObjectID,
			Tenant: HomeTenantID, Default: true,
		}},
		IdentityHeader: DevIdentityHeader,
	}
}
