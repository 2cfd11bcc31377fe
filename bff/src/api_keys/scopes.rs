//! Which scope an API key needs for a route: `<resource>:read` for GET,
//! `<resource>:write` for the other methods, the resource following from
//! the route's OpenAPI tag; a write scope includes the read scope of its
//! resource ([`grants`]), as the database's `api_scope_permissions` give
//! `leads:write` the permissions of `leads:read`. A route whose tag has no resource, or whose
//! write scope does not exist (the `api_scopes` vocabulary), is not
//! available to keys. The table is built once from the document, which
//! also lists each operation's scope (its `api_key` security requirement),
//! so the documentation and the check are one definition.
//!
//! The database enforces the same scopes as permissions (has_permission,
//! migration V35); this check gives the clear 403 first.

use std::collections::HashMap;

use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::OpenApi as Document;

use crate::vocabulary::Vocabulary;

/// The resource of each tag's routes (tags without one: not for keys).
const TAG_RESOURCES: &[(&str, &str)] = &[
    ("leads", "leads"),
    ("customers", "leads"),
    ("prospects", "leads"),
    ("activities", "leads"),
    ("tickets", "tickets"),
    ("sla", "tickets"),
    ("receivables", "invoices"),
    ("kpi", "kpi"),
    ("usage", "usage"),
];

/// Method (upper case) and path template → the scope a key needs (None:
/// not available to keys).
#[derive(Debug, Default, Clone)]
pub struct RouteScopes(HashMap<(String, String), Option<String>>);

/// Whether a key's scopes allow a route that needs `needed`: the scope
/// itself, or for `<resource>:read` also `<resource>:write` (every write
/// scope's permissions include its read scope's: a client that writes
/// leads reads what it wrote).
pub fn grants(held: &[String], needed: &str) -> bool {
    let write = needed
        .strip_suffix(":read")
        .map(|resource| format!("{resource}:write"));
    held.iter()
        .any(|s| s == needed || write.as_deref() == Some(s.as_str()))
}

/// What a key may do on a route.
#[derive(Debug, PartialEq, Eq)]
pub enum Access<'a> {
    Needs(&'a str),
    NotForKeys,
}

impl RouteScopes {
    /// Reads every operation of the document; adds each operation's scope
    /// to it as an `api_key` security requirement (beside the user token's
    /// `bearer`).
    pub fn apply(doc: &mut Document, vocabulary: &Vocabulary) -> RouteScopes {
        let known = vocabulary.terms("api_scopes");
        let mut table = HashMap::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("PATCH", item.patch.as_mut()),
                ("DELETE", item.delete.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let resource = op.tags.iter().flatten().find_map(|t| {
                    TAG_RESOURCES
                        .iter()
                        .find(|(tag, _)| tag == t)
                        .map(|(_, r)| *r)
                });
                let access = if method == "GET" { "read" } else { "write" };
                let scope = resource
                    .map(|r| format!("{r}:{access}"))
                    .filter(|s| known.iter().any(|k| k == s));
                let public = op
                    .security
                    .as_ref()
                    .is_some_and(|s| serde_json::to_value(s).ok() == Some(serde_json::json!([{}])));
                if let (Some(scope), false) = (&scope, public) {
                    let mut security = op.security.take().unwrap_or_else(|| {
                        vec![SecurityRequirement::new("bearer", Vec::<String>::new())]
                    });
                    security.push(SecurityRequirement::new("api_key", [scope.as_str()]));
                    // Requirements are alternatives: the write scope reads too.
                    let write = scope.replace(":read", ":write");
                    if write != *scope && known.iter().any(|k| *k == write) {
                        security.push(SecurityRequirement::new("api_key", [write.as_str()]));
                    }
                    op.security = Some(security);
                }
                table.insert((method.to_owned(), path.clone()), scope);
            }
        }
        RouteScopes(table)
    }

    /// The access a key has on the route with this method and template.
    pub fn access(&self, method: &str, template: &str) -> Access<'_> {
        match self.0.get(&(method.to_owned(), template.to_owned())) {
            Some(Some(scope)) => Access::Needs(scope),
            _ => Access::NotForKeys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::grants;

    #[test]
    fn a_write_scope_includes_the_read_scope_of_its_resource() {
        let held = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(grants(&held(&["leads:read"]), "leads:read"));
        assert!(grants(&held(&["leads:write"]), "leads:read"));
        assert!(grants(&held(&["leads:write"]), "leads:write"));
        assert!(!grants(&held(&["leads:read"]), "leads:write"));
        assert!(!grants(&held(&["tickets:write"]), "leads:read"));
        assert!(!grants(&held(&["leads:write"]), "tickets:read"));
        assert!(!grants(&held(&[]), "leads:read"));
    }
}
