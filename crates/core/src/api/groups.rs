//! Groups of people (`/v1/groups`): what `group:<name>` addresses reach.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;
use crate::address::check_name;

/// Most members of one group.
pub const MAX_GROUP_MEMBERS: usize = 1000;
/// Most characters of a group's description.
pub const MAX_GROUP_DESCRIPTION: usize = 1000;

/// A group of the tenant's users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// 1 to 64 letters, digits or `-_.`, starting with a letter or digit.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The members' user ids, sorted.
    pub members: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// `PUT /v1/groups/{name}`: creates the group or replaces its description and members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    /// User ids of the tenant (0 to 1000; repeats count once).
    #[schema(max_items = 1000)]
    pub members: Vec<String>,
}

/// `GET /v1/groups`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupList {
    pub groups: Vec<Group>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Checks a group's name (a path parameter).
pub fn check_group_name(name: &str) -> Result<(), FieldError> {
    check_name("group", name).map_err(|e| FieldError { path: "name".into(), message: e.to_string() })
}

/// Checks a `PUT /v1/groups/{name}` body; answers its members sorted, each once.
pub fn check_put_group(req: &PutGroup) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if req.description.as_ref().is_some_and(|d| d.chars().count() > MAX_GROUP_DESCRIPTION) {
        errors.push(FieldError {
            path: "description".into(),
            message: format!("write at most {MAX_GROUP_DESCRIPTION} characters"),
        });
    }
    if req.members.len() > MAX_GROUP_MEMBERS {
        errors.push(FieldError { path: "members".into(), message: format!("list at most {MAX_GROUP_MEMBERS} users") });
    }
    for (i, m) in req.members.iter().enumerate() {
        if let Err(e) = check_name("user", m) {
            errors.push(FieldError { path: format!("members[{i}]"), message: e.to_string() });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut members = req.members.clone();
    members.sort();
    members.dedup();
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_sorted_once_and_bad_ones_are_named() {
        let ok = PutGroup { description: None, members: vec!["b".into(), "a".into(), "b".into()] };
        assert_eq!(check_put_group(&ok).unwrap(), ["a", "b"]);
        let bad = PutGroup { description: Some("x".repeat(1001)), members: vec!["a".into(), "no space".into()] };
        let e = check_put_group(&bad).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["description", "members[1]"]);
        assert!(check_group_name("ops").is_ok());
        assert_eq!(check_group_name("a/b").unwrap_err().path, "name");
    }
}
