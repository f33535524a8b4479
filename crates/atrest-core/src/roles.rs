//! Who may do what: organization and project roles, and the one table of operation → requirement.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ObjectId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrgRole {
    OrgOwner,
    OrgGroupCreator,
    OrgMember,
    OrgReadOnly,
    OrgBillingAdmin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectRole {
    GroupOwner,
    GroupClusterManager,
    GroupReadOnly,
    GroupDataAccessAdmin,
    GroupDataAccessReadWrite,
    GroupDataAccessReadOnly,
}

impl OrgRole {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::OrgOwner => "ORG_OWNER",
            OrgRole::OrgGroupCreator => "ORG_GROUP_CREATOR",
            OrgRole::OrgMember => "ORG_MEMBER",
            OrgRole::OrgReadOnly => "ORG_READ_ONLY",
            OrgRole::OrgBillingAdmin => "ORG_BILLING_ADMIN",
        }
    }
}

impl ProjectRole {
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::GroupOwner => "GROUP_OWNER",
            ProjectRole::GroupClusterManager => "GROUP_CLUSTER_MANAGER",
            ProjectRole::GroupReadOnly => "GROUP_READ_ONLY",
            ProjectRole::GroupDataAccessAdmin => "GROUP_DATA_ACCESS_ADMIN",
            ProjectRole::GroupDataAccessReadWrite => "GROUP_DATA_ACCESS_READ_WRITE",
            ProjectRole::GroupDataAccessReadOnly => "GROUP_DATA_ACCESS_READ_ONLY",
        }
    }
}

/// What an operation needs. Project levels are ordered: read < cluster manager < owner; data
/// access is its own ladder, which a project owner also holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    OrgMember,
    OrgReader,
    OrgOwner,
    ProjectCreator,
    ProjectRead,
    ProjectClusterManager,
    ProjectOwner,
    DataRead,
    DataWrite,
}

/// Every operation the API offers. Adding a route means adding its line to `requirement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListOrgs,
    ReadOrg,
    ListApiKeys,
    CreateApiKey,
    ReadApiKey,
    DeleteApiKey,
    AssignProjectRoles,
    ListServiceAccounts,
    ManageServiceAccounts,
    ListProjects,
    CreateProject,
    ReadProject,
    DeleteProject,
    UpdateProject,
    ListCloudProviderAccess,
    CreateCloudProviderAccess,
    AuthorizeCloudProviderAccess,
    DeauthorizeCloudProviderAccess,
    ReadEncryptionAtRest,
    UpdateEncryptionAtRest,
    ListEvents,
    ManagePrivateEndpoints,
    ListClusters,
    CreateCluster,
    UpdateCluster,
    DeleteCluster,
    /// Turning customer key management on or off for a cluster.
    ChangeClusterEncryption,
    ReadData,
    WriteData,
    /// Reading the API's own OpenAPI document.
    ReadApiDocument,
}

pub fn requirement(op: Operation) -> Requirement {
    use Operation::*;
    match op {
        ListOrgs | ReadOrg | ListProjects | ReadApiDocument => Requirement::OrgMember,
        ListApiKeys | ReadApiKey | ListServiceAccounts => Requirement::OrgReader,
        CreateApiKey | DeleteApiKey | ManageServiceAccounts => Requirement::OrgOwner,
        AssignProjectRoles => Requirement::ProjectOwner,
        CreateProject => Requirement::ProjectCreator,
        ReadProject | ListCloudProviderAccess | ReadEncryptionAtRest | ListEvents | ListClusters => {
            Requirement::ProjectRead
        }
        CreateCluster | UpdateCluster | DeleteCluster => Requirement::ProjectClusterManager,
        ReadData => Requirement::DataRead,
        WriteData => Requirement::DataWrite,
        DeleteProject
        | UpdateProject
        | CreateCloudProviderAccess
        | AuthorizeCloudProviderAccess
        | DeauthorizeCloudProviderAccess
        | UpdateEncryptionAtRest
        | ManagePrivateEndpoints
        | ChangeClusterEncryption => Requirement::ProjectOwner,
    }
}

/// The roles one principal holds in its organization and its projects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub org_roles: Vec<OrgRole>,
    pub project_roles: BTreeMap<String, Vec<ProjectRole>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ProjectLevel {
    None,
    Read,
    ClusterManager,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DataLevel {
    None,
    Read,
    Write,
}

impl Grants {
    fn has_org(&self, role: OrgRole) -> bool {
        self.org_roles.contains(&role)
    }

    fn project_level(&self, group: &ObjectId) -> ProjectLevel {
        let mut level = if self.has_org(OrgRole::OrgOwner) {
            ProjectLevel::Owner
        } else if self.has_org(OrgRole::OrgReadOnly) {
            ProjectLevel::Read
        } else {
            ProjectLevel::None
        };
        for role in self.project_roles.get(&group.to_string()).into_iter().flatten() {
            let l = match role {
                ProjectRole::GroupOwner => ProjectLevel::Owner,
                ProjectRole::GroupClusterManager => ProjectLevel::ClusterManager,
                _ => ProjectLevel::Read,
            };
            level = level.max(l);
        }
        level
    }

    fn data_level(&self, group: &ObjectId) -> DataLevel {
        let mut level = if self.has_org(OrgRole::OrgOwner) { DataLevel::Write } else { DataLevel::None };
        for role in self.project_roles.get(&group.to_string()).into_iter().flatten() {
            let l = match role {
                ProjectRole::GroupOwner | ProjectRole::GroupDataAccessAdmin | ProjectRole::GroupDataAccessReadWrite => {
                    DataLevel::Write
                }
                ProjectRole::GroupDataAccessReadOnly => DataLevel::Read,
                _ => DataLevel::None,
            };
            level = level.max(l);
        }
        level
    }

    /// Whether these grants see every project of the organization, not only their own.
    pub fn sees_all_projects(&self) -> bool {
        self.has_org(OrgRole::OrgOwner) || self.has_org(OrgRole::OrgReadOnly)
    }

    pub fn projects(&self) -> impl Iterator<Item = &String> {
        self.project_roles.keys()
    }

    /// The one authorization decision. `group` is the project an operation targets, if any.
    pub fn allows(&self, op: Operation, group: Option<&ObjectId>) -> bool {
        let project = |min: ProjectLevel| group.is_some_and(|g| self.project_level(g) >= min);
        let data = |min: DataLevel| group.is_some_and(|g| self.data_level(g) >= min);
        match requirement(op) {
            Requirement::OrgMember => !self.org_roles.is_empty() || !self.project_roles.is_empty(),
            Requirement::OrgReader => self.has_org(OrgRole::OrgOwner) || self.has_org(OrgRole::OrgReadOnly),
            Requirement::OrgOwner => self.has_org(OrgRole::OrgOwner),
            Requirement::ProjectCreator => self.has_org(OrgRole::OrgOwner) || self.has_org(OrgRole::OrgGroupCreator),
            Requirement::ProjectRead => project(ProjectLevel::Read),
            Requirement::ProjectClusterManager => project(ProjectLevel::ClusterManager),
            Requirement::ProjectOwner => project(ProjectLevel::Owner),
            Requirement::DataRead => data(DataLevel::Read),
            Requirement::DataWrite => data(DataLevel::Write),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_grant(group: &ObjectId, role: ProjectRole) -> Grants {
        Grants {
            org_roles: vec![OrgRole::OrgMember],
            project_roles: [(group.to_string(), vec![role])].into_iter().collect(),
        }
    }

    #[test]
    fn read_only_cannot_write() {
        let g = ObjectId::new();
        let grants = project_grant(&g, ProjectRole::GroupReadOnly);
        assert!(grants.allows(Operation::ReadProject, Some(&g)));
        assert!(!grants.allows(Operation::DeleteProject, Some(&g)));
        assert!(!grants.allows(Operation::ReadProject, Some(&ObjectId::new())));
    }

    #[test]
    fn org_owner_owns_every_project() {
        let grants = Grants { org_roles: vec![OrgRole::OrgOwner], ..Default::default() };
        assert!(grants.allows(Operation::DeleteProject, Some(&ObjectId::new())));
        assert!(grants.allows(Operation::CreateProject, None));
    }

    #[test]
    fn member_cannot_create_projects() {
        let grants = Grants { org_roles: vec![OrgRole::OrgMember], ..Default::default() };
        assert!(!grants.allows(Operation::CreateProject, None));
        assert!(grants.allows(Operation::ListProjects, None));
    }
}
