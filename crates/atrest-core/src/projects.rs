//! Projects ("groups" on the wire): naming rules and lifecycle state.

use serde::{Deserialize, Serialize};

use crate::{Error, ObjectId, Result};

/// A project's internal lifecycle; later features (private networking) require `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectState {
    Active,
}

impl ProjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Active => "ACTIVE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(ProjectState::Active),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceTag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ObjectId,
    pub org_id: ObjectId,
    pub name: String,
    pub state: ProjectState,
    pub created: time::OffsetDateTime,
    pub tags: Vec<ResourceTag>,
    pub with_default_alerts_settings: bool,
    pub cluster_count: u64,
}

pub struct NewProject {
    pub name: String,
    pub org_id: ObjectId,
    pub tags: Vec<ResourceTag>,
    pub with_default_alerts_settings: bool,
}

/// Atlas's `^[\p{L}\p{N}\-_.(),:&@+']{1,64}$`.
pub fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=64).contains(&count) && name.chars().all(|c| c.is_alphanumeric() || "-_.(),:&@+'".contains(c))
}

pub fn create(new: NewProject, now: time::OffsetDateTime) -> Result<Project> {
    if !valid_name(&new.name) {
        return Err(Error::InvalidGroupName { name: new.name });
    }
    for tag in &new.tags {
        for (field, value) in [("tags.key", &tag.key), ("tags.value", &tag.value)] {
            if !(1..=255).contains(&value.chars().count()) {
                return Err(Error::InvalidAttribute {
                    name: field.into(),
                    reason: "must be between 1 and 255 characters".into(),
                });
            }
        }
    }
    Ok(Project {
        id: ObjectId::new(),
        org_id: new.org_id,
        name: new.name,
        state: ProjectState::Active,
        created: now,
        tags: new.tags,
        with_default_alerts_settings: new.with_default_alerts_settings,
        cluster_count: 0,
    })
}

/// `PATCH /groups/{groupId}`: a new name and/or new tags, with the rules of creation.
pub fn update(mut project: Project, name: Option<String>, tags: Option<Vec<ResourceTag>>) -> Result<Project> {
    let checked = create(
        NewProject {
            name: name.unwrap_or_else(|| project.name.clone()),
            org_id: project.org_id,
            tags: tags.unwrap_or_else(|| project.tags.clone()),
            with_default_alerts_settings: project.with_default_alerts_settings,
        },
        project.created,
    )?;
    project.name = checked.name;
    project.tags = checked.tags;
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_atlas_pattern() {
        assert!(valid_name("prod-eu_1.(a),b:c&d@e+f'g"));
        assert!(valid_name("Ünïcödé名前"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("slash/name"));
        assert!(!valid_name(&"x".repeat(65)));
        assert!(valid_name(&"x".repeat(64)));
    }

    #[test]
    fn new_project_is_active() {
        let p = create(
            NewProject { name: "p".into(), org_id: ObjectId::new(), tags: vec![], with_default_alerts_settings: true },
            crate::time_fmt::now(),
        )
        .unwrap();
        assert_eq!(p.state, ProjectState::Active);
    }
}
