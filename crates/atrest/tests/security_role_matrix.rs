//! Every operation × role: which API keys get 403 `ACCESS_FORBIDDEN` and which get through.
//! The table below mirrors `atrest_core::roles::requirement` (and is checked against it), and
//! covers every authenticated route of `atrest_api::route_table()`.

mod common;

use std::collections::BTreeSet;

use atrest_core::roles::{requirement, Operation, Requirement};
use common::{Client, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    OrgOwner,
    OrgReadOnly,
    GroupOwner,
    GroupClusterManager,
    GroupReadOnly,
    GroupDataReadOnly,
}

const ROLES: &[Role] = &[
    Role::OrgOwner,
    Role::OrgReadOnly,
    Role::GroupOwner,
    Role::GroupClusterManager,
    Role::GroupReadOnly,
    Role::GroupDataReadOnly,
];

impl Role {
    /// (organization role, project role on the test project)
    fn grants(self) -> (&'static str, Option<&'static str>) {
        match self {
            Role::OrgOwner => ("ORG_OWNER", None),
            Role::OrgReadOnly => ("ORG_READ_ONLY", None),
            Role::GroupOwner => ("ORG_MEMBER", Some("GROUP_OWNER")),
            Role::GroupClusterManager => ("ORG_MEMBER", Some("GROUP_CLUSTER_MANAGER")),
            Role::GroupReadOnly => ("ORG_MEMBER", Some("GROUP_READ_ONLY")),
            Role::GroupDataReadOnly => ("ORG_MEMBER", Some("GROUP_DATA_ACCESS_READ_ONLY")),
        }
    }
}

/// Who meets a requirement on the test project, written out independently of the server's code.
fn allowed(req: Requirement, role: Role) -> bool {
    use Role::*;
    match req {
        Requirement::OrgMember => true,
        Requirement::OrgReader => matches!(role, OrgOwner | OrgReadOnly),
        Requirement::OrgOwner | Requirement::ProjectCreator => role == OrgOwner,
        // Every project role, data access included, reads its project; org read-only reads all.
        Requirement::ProjectRead => true,
        Requirement::ProjectClusterManager => matches!(role, OrgOwner | GroupOwner | GroupClusterManager),
        Requirement::ProjectOwner => matches!(role, OrgOwner | GroupOwner),
        Requirement::DataRead => matches!(role, OrgOwner | GroupOwner | GroupDataReadOnly),
        Requirement::DataWrite => matches!(role, OrgOwner | GroupOwner),
    }
}

struct Row {
    method: Method,
    /// Route template, relative to its prefix.
    template: &'static str,
    /// Path with ids filled in.
    path: String,
    body: Option<Value>,
    op: Operation,
    need: Requirement,
}

fn cluster_body(name: &str, provider: &str) -> Value {
    json!({
        "name": name,
        "clusterType": "REPLICASET",
        "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
            "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}],
        "encryptionAtRestProvider": provider,
    })
}

/// The matrix. Requests that pass authorization are made harmless: unknown ids (404), bodies the
/// domain refuses (400/409), a project that cannot be deleted because it has a cluster.
fn rows(org: &str, g: &str, cluster: &str) -> Vec<Row> {
    use Operation as O;
    use Requirement as R;
    let none = "5f0a1b2c3d4e5f6a7b8c9d0e";
    let a = "/api/atlas/v2";
    let x = "/api/atrest/v1";
    let d = "/data/v1";
    let row = |method: Method, template: &'static str, path: String, body: Option<Value>, op, need| Row {
        method,
        template,
        path,
        body,
        op,
        need,
    };
    let find = json!({"database": "d", "collection": "c", "filter": {}});
    let insert = json!({"database": "d", "collection": "c", "document": {"a": 1}});
    vec![
        row(Method::GET, "/orgs", format!("{a}/orgs"), None, O::ListOrgs, R::OrgMember),
        row(Method::GET, "/orgs/{orgId}", format!("{a}/orgs/{org}"), None, O::ReadOrg, R::OrgMember),
        row(Method::GET, "/openapi.json", format!("{a}/openapi.json"), None, O::ReadApiDocument, R::OrgMember),
        row(
            Method::GET,
            "/orgs/{orgId}/apiKeys",
            format!("{a}/orgs/{org}/apiKeys"),
            None,
            O::ListApiKeys,
            R::OrgReader,
        ),
        row(
            Method::POST,
            "/orgs/{orgId}/apiKeys",
            format!("{a}/orgs/{org}/apiKeys"),
            Some(json!({"desc": "matrix", "roles": ["ORG_MEMBER"]})),
            O::CreateApiKey,
            R::OrgOwner,
        ),
        row(
            Method::GET,
            "/orgs/{orgId}/apiKeys/{apiUserId}",
            format!("{a}/orgs/{org}/apiKeys/{none}"),
            None,
            O::ReadApiKey,
            R::OrgReader,
        ),
        row(
            Method::DELETE,
            "/orgs/{orgId}/apiKeys/{apiUserId}",
            format!("{a}/orgs/{org}/apiKeys/{none}"),
            None,
            O::DeleteApiKey,
            R::OrgOwner,
        ),
        row(
            Method::PATCH,
            "/groups/{groupId}/apiKeys/{apiUserId}",
            format!("{a}/groups/{g}/apiKeys/{none}"),
            Some(json!({"roles": ["GROUP_READ_ONLY"]})),
            O::AssignProjectRoles,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/orgs/{orgId}/serviceAccounts",
            format!("{a}/orgs/{org}/serviceAccounts"),
            None,
            O::ListServiceAccounts,
            R::OrgReader,
        ),
        row(
            Method::POST,
            "/orgs/{orgId}/serviceAccounts",
            format!("{a}/orgs/{org}/serviceAccounts"),
            Some(json!({"name": "m", "description": "m", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 1})),
            O::ManageServiceAccounts,
            R::OrgOwner,
        ),
        row(
            Method::GET,
            "/orgs/{orgId}/serviceAccounts/{clientId}",
            format!("{a}/orgs/{org}/serviceAccounts/mdb_sa_id_{none}"),
            None,
            O::ListServiceAccounts,
            R::OrgReader,
        ),
        row(
            Method::PATCH,
            "/orgs/{orgId}/serviceAccounts/{clientId}",
            format!("{a}/orgs/{org}/serviceAccounts/mdb_sa_id_{none}"),
            Some(json!({"name": "m"})),
            O::ManageServiceAccounts,
            R::OrgOwner,
        ),
        row(
            Method::DELETE,
            "/orgs/{orgId}/serviceAccounts/{clientId}",
            format!("{a}/orgs/{org}/serviceAccounts/mdb_sa_id_{none}"),
            None,
            O::ManageServiceAccounts,
            R::OrgOwner,
        ),
        row(
            Method::POST,
            "/orgs/{orgId}/serviceAccounts/{clientId}/secrets",
            format!("{a}/orgs/{org}/serviceAccounts/mdb_sa_id_{none}/secrets"),
            Some(json!({"secretExpiresAfterHours": 24})),
            O::ManageServiceAccounts,
            R::OrgOwner,
        ),
        row(
            Method::DELETE,
            "/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}",
            format!("{a}/orgs/{org}/serviceAccounts/mdb_sa_id_{none}/secrets/{none}"),
            None,
            O::ManageServiceAccounts,
            R::OrgOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/serviceAccounts",
            format!("{a}/groups/{g}/serviceAccounts"),
            None,
            O::ReadProject,
            R::ProjectRead,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/serviceAccounts/{clientIdAndVerb}",
            format!("{a}/groups/{g}/serviceAccounts/mdb_sa_id_{none}:invite"),
            Some(json!({"roles": ["GROUP_READ_ONLY"]})),
            O::AssignProjectRoles,
            R::ProjectOwner,
        ),
        row(Method::GET, "/groups", format!("{a}/groups"), None, O::ListProjects, R::OrgMember),
        row(
            Method::POST,
            "/groups",
            format!("{a}/groups"),
            Some(json!({"name": "matrix-new", "orgId": org})),
            O::CreateProject,
            R::ProjectCreator,
        ),
        row(Method::GET, "/groups/{groupId}", format!("{a}/groups/{g}"), None, O::ReadProject, R::ProjectRead),
        // A body that fails validation after authorization: nothing changes.
        row(
            Method::PATCH,
            "/groups/{groupId}",
            format!("{a}/groups/{g}"),
            Some(json!({"tags": "not-a-list"})),
            O::UpdateProject,
            R::ProjectOwner,
        ),
        // The project has a cluster, so an allowed delete is refused with 409.
        row(Method::DELETE, "/groups/{groupId}", format!("{a}/groups/{g}"), None, O::DeleteProject, R::ProjectOwner),
        row(
            Method::GET,
            "/groups/byName/{groupName}",
            format!("{a}/groups/byName/matrix"),
            None,
            O::ListProjects,
            R::OrgMember,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/cloudProviderAccess",
            format!("{a}/groups/{g}/cloudProviderAccess"),
            None,
            O::ListCloudProviderAccess,
            R::ProjectRead,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/cloudProviderAccess",
            format!("{a}/groups/{g}/cloudProviderAccess"),
            Some(json!({"providerName": "AWS"})),
            O::CreateCloudProviderAccess,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/cloudProviderAccess/{roleId}",
            format!("{a}/groups/{g}/cloudProviderAccess/{none}"),
            None,
            O::ListCloudProviderAccess,
            R::ProjectRead,
        ),
        row(
            Method::PATCH,
            "/groups/{groupId}/cloudProviderAccess/{roleId}",
            format!("{a}/groups/{g}/cloudProviderAccess/{none}"),
            Some(json!({"providerName": "AWS", "iamAssumedRoleArn": "arn:aws:iam::123456789012:role/matrix"})),
            O::AuthorizeCloudProviderAccess,
            R::ProjectOwner,
        ),
        row(
            Method::DELETE,
            "/groups/{groupId}/cloudProviderAccess/{cloudProvider}/{roleId}",
            format!("{a}/groups/{g}/cloudProviderAccess/AWS/{none}"),
            None,
            O::DeauthorizeCloudProviderAccess,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/encryptionAtRest",
            format!("{a}/groups/{g}/encryptionAtRest"),
            None,
            O::ReadEncryptionAtRest,
            R::ProjectRead,
        ),
        row(
            Method::PATCH,
            "/groups/{groupId}/encryptionAtRest",
            format!("{a}/groups/{g}/encryptionAtRest"),
            Some(json!({"awsKms": {"enabled": false}})),
            O::UpdateEncryptionAtRest,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/events",
            format!("{a}/groups/{g}/events"),
            None,
            O::ListEvents,
            R::ProjectRead,
        ),
        // Private endpoints need Project Owner even to read.
        row(
            Method::GET,
            "/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints",
            format!("{a}/groups/{g}/encryptionAtRest/AWS/privateEndpoints"),
            None,
            O::ManagePrivateEndpoints,
            R::ProjectOwner,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints",
            format!("{a}/groups/{g}/encryptionAtRest/AWS/privateEndpoints"),
            Some(json!({"regionName": "US_EAST_1"})),
            O::ManagePrivateEndpoints,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}",
            format!("{a}/groups/{g}/encryptionAtRest/AWS/privateEndpoints/{none}"),
            None,
            O::ManagePrivateEndpoints,
            R::ProjectOwner,
        ),
        row(
            Method::DELETE,
            "/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}",
            format!("{a}/groups/{g}/encryptionAtRest/AWS/privateEndpoints/{none}"),
            None,
            O::ManagePrivateEndpoints,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/clusters",
            format!("{a}/groups/{g}/clusters"),
            None,
            O::ListClusters,
            R::ProjectRead,
        ),
        // An invalid cluster is refused with 400 after authorization.
        row(
            Method::POST,
            "/groups/{groupId}/clusters",
            format!("{a}/groups/{g}/clusters"),
            Some(json!({"name": "x", "diskIOPS": 3})),
            O::CreateCluster,
            R::ProjectClusterManager,
        ),
        // A cluster with customer keys needs Project Owner (and is refused: none are enabled).
        row(
            Method::POST,
            "/groups/{groupId}/clusters",
            format!("{a}/groups/{g}/clusters"),
            Some(cluster_body("with-keys", "AWS")),
            O::ChangeClusterEncryption,
            R::ProjectOwner,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/clusters/{clusterName}",
            format!("{a}/groups/{g}/clusters/{cluster}"),
            None,
            O::ListClusters,
            R::ProjectRead,
        ),
        row(
            Method::PATCH,
            "/groups/{groupId}/clusters/{clusterName}",
            format!("{a}/groups/{g}/clusters/{cluster}"),
            Some(json!({"diskIOPS": 3})),
            O::UpdateCluster,
            R::ProjectClusterManager,
        ),
        row(
            Method::PATCH,
            "/groups/{groupId}/clusters/{clusterName}",
            format!("{a}/groups/{g}/clusters/{cluster}"),
            Some(json!({"encryptionAtRestProvider": "AWS"})),
            O::ChangeClusterEncryption,
            R::ProjectOwner,
        ),
        row(
            Method::DELETE,
            "/groups/{groupId}/clusters/{clusterName}",
            format!("{a}/groups/{g}/clusters/no-such-cluster"),
            None,
            O::DeleteCluster,
            R::ProjectClusterManager,
        ),
        row(
            Method::GET,
            "/groups/{groupId}/clusters/{clusterName}/encryption",
            format!("{x}/groups/{g}/clusters/{cluster}/encryption"),
            None,
            O::ListClusters,
            R::ProjectRead,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/clusters/{clusterName}/rotateMasterKey",
            format!("{x}/groups/{g}/clusters/no-such-cluster/rotateMasterKey"),
            None,
            O::ChangeClusterEncryption,
            R::ProjectOwner,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/clusters/{clusterName}/action/{action}",
            format!("{d}/groups/{g}/clusters/no-such-cluster/action/find"),
            Some(find.clone()),
            O::ReadData,
            R::DataRead,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/clusters/{clusterName}/action/{action}",
            format!("{d}/groups/{g}/clusters/no-such-cluster/action/findOne"),
            Some(find),
            O::ReadData,
            R::DataRead,
        ),
        row(
            Method::POST,
            "/groups/{groupId}/clusters/{clusterName}/action/{action}",
            format!("{d}/groups/{g}/clusters/no-such-cluster/action/insertOne"),
            Some(insert),
            O::WriteData,
            R::DataWrite,
        ),
    ]
}

/// A template without its surface prefix; the v1.0 surface mirrors v2.
fn strip_prefix(path: &str) -> Option<&str> {
    ["/api/atlas/v2", "/api/atlas/v1.0", "/api/atrest/v1", "/data/v1"].iter().find_map(|p| path.strip_prefix(p))
}

async fn key_with(owner: &Client, s: &Server, g: &str, role: Role) -> Client {
    let org = s.org_id();
    let (org_role, project_role) = role.grants();
    let r = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": format!("{role:?}"), "roles": [org_role]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let key = r.json();
    if let Some(pr) = project_role {
        let id = key["id"].as_str().unwrap();
        let r = owner.patch(&format!("/api/atlas/v2/groups/{g}/apiKeys/{id}"), &json!({"roles": [pr]})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    Client::new(&s.url, key["publicKey"].as_str().unwrap(), key["privateKey"].as_str().unwrap())
}

#[tokio::test]
async fn every_operation_by_every_role() {
    let s = Server::start();
    let owner = s.client();
    let org = s.org_id();
    let g = owner.post("/api/atlas/v2/groups", &json!({"name": "matrix", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = owner.post("/api/atlas/v2/groups", &json!({"name": "elsewhere", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cluster = "matrix-cluster";
    let r = owner.post(&format!("/api/atlas/v2/groups/{g}/clusters"), &cluster_body(cluster, "NONE")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let rows = rows(&org, &g, cluster);

    // The table mirrors the server's requirement table ...
    for r in &rows {
        assert_eq!(requirement(r.op), r.need, "{} {}: {:?}", r.method, r.template, r.op);
    }
    // ... and covers every authenticated route.
    let covered: BTreeSet<(String, String)> =
        rows.iter().map(|r| (r.method.to_string(), r.template.to_owned())).collect();
    for (method, path) in atrest_api::route_table() {
        if atrest_api::auth::is_public(&path) {
            continue;
        }
        let template = strip_prefix(&path).unwrap_or_else(|| panic!("route {path} outside the known surfaces"));
        assert!(
            covered.contains(&(method.to_owned(), template.to_owned())),
            "{method} {path} is not in the role matrix"
        );
    }

    let mut keys = Vec::new();
    for role in ROLES {
        keys.push((*role, key_with(&owner, &s, &g, *role).await));
    }

    let mut failures = Vec::new();
    for row in &rows {
        for (role, client) in &keys {
            // Service accounts exist from version 2024-08-05 on.
            let r = if row.template.contains("/serviceAccounts") {
                client.clone().with_accept("application/vnd.atlas.2024-08-05+json")
            } else {
                client.clone()
            }
            .request(row.method.clone(), &row.path, row.body.as_ref())
            .await;
            assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{:?} {} {}: {}", role, row.method, row.path, r.text);
            let forbidden = r.status == StatusCode::FORBIDDEN;
            if forbidden {
                assert_eq!(r.error_code(), "ACCESS_FORBIDDEN", "{}", r.text);
            }
            let expect_allowed = allowed(row.need, *role);
            if forbidden == expect_allowed {
                failures.push(format!(
                    "{role:?} {} {} ({:?}, needs {:?}): got {} {}",
                    row.method, row.path, row.op, row.need, r.status, r.text
                ));
            }
        }
    }

    // A project role says nothing about other projects; organization roles cover them all.
    for (role, client) in &keys {
        let r = client.get(&format!("/api/atlas/v2/groups/{other}")).await;
        let expect_allowed = matches!(role, Role::OrgOwner | Role::OrgReadOnly);
        if (r.status == StatusCode::FORBIDDEN) == expect_allowed {
            failures.push(format!("{role:?} GET other project: got {} {}", r.status, r.text));
        }
        let r = client.get(&format!("/api/atlas/v2/groups/{other}/encryptionAtRest/AWS/privateEndpoints")).await;
        let expect_allowed = *role == Role::OrgOwner;
        if (r.status == StatusCode::FORBIDDEN) == expect_allowed {
            failures.push(format!("{role:?} GET other project's private endpoints: got {} {}", r.status, r.text));
        }
    }
    // The same decisions on the v1.0 surface.
    for (role, client) in &keys {
        let r = client
            .request(
                Method::PATCH,
                &format!("/api/atlas/v1.0/groups/{g}/encryptionAtRest"),
                Some(&json!({"awsKms": {"enabled": false}})),
            )
            .await;
        if (r.status == StatusCode::FORBIDDEN) == allowed(Requirement::ProjectOwner, *role) {
            failures.push(format!("{role:?} PATCH v1.0 encryptionAtRest: got {} {}", r.status, r.text));
        }
    }
    assert!(failures.is_empty(), "{} authorization mismatches:\n{}", failures.len(), failures.join("\n"));

    // The project survived the matrix.
    assert_eq!(owner.get(&format!("/api/atlas/v2/groups/{g}")).await.status, StatusCode::OK);
}
