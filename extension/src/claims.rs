//! Request claims, the PostgREST convention: the BFF sets the verified JWT
//! claims as JSON in `request.jwt.claims` (transaction-local) and switches to
//! `bizos_authenticated`; policies read them through these helpers, written
//! as `(select bizos.uid())` so they are evaluated once per statement.
//!
//! Missing or malformed claims give NULL, never an error: an error message
//! could echo the setting, and NULL already matches no row.

use pgrx::prelude::*;
use serde_json::{Map, Value};

const CLAIMS_GUC: &std::ffi::CStr = c"request.jwt.claims";

/// The raw setting, if set and not empty.
fn raw_claims() -> Option<String> {
    // SAFETY: GetConfigOption with missing_ok = true returns NULL or a
    // NUL-terminated string owned by the GUC machinery, valid until the next
    // change of the setting; it is copied immediately.
    let ptr = unsafe { pg_sys::GetConfigOption(CLAIMS_GUC.as_ptr(), true, false) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated, see above.
    let text = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_str().ok()?;
    (!text.trim().is_empty()).then(|| text.to_owned())
}

/// Parses a claims document; anything but a JSON object is no claims.
pub fn parse_claims(raw: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A string claim as a UUID (any of the textual forms `uuid` accepts).
pub fn uuid_claim(claims: &Map<String, Value>, key: &str) -> Option<uuid::Uuid> {
    claims
        .get(key)?
        .as_str()
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
}

/// A non-empty string claim.
pub fn text_claim(claims: &Map<String, Value>, key: &str) -> Option<String> {
    claims
        .get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn current() -> Option<Map<String, Value>> {
    parse_claims(&raw_claims()?)
}

fn to_pg_uuid(u: uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}

/// The calling user from the request claims, for other modules.
pub(crate) fn current_uid() -> Option<pgrx::Uuid> {
    current()
        .and_then(|c| uuid_claim(&c, "sub"))
        .map(to_pg_uuid)
}

/// The caller's tenant from the request claims, for other modules.
pub(crate) fn current_tenant() -> Option<pgrx::Uuid> {
    current()
        .and_then(|c| uuid_claim(&c, "tenant_id"))
        .map(to_pg_uuid)
}

/// All claims of the current request as jsonb, or NULL.
#[pg_extern(stable, parallel_safe)]
fn claims() -> Option<pgrx::JsonB> {
    current().map(|m| pgrx::JsonB(Value::Object(m)))
}

/// The calling user (claim `sub`), or NULL.
#[pg_extern(stable, parallel_safe)]
fn uid() -> Option<pgrx::Uuid> {
    current()
        .and_then(|c| uuid_claim(&c, "sub"))
        .map(to_pg_uuid)
}

/// The caller's tenant (claim `tenant_id`), or NULL.
#[pg_extern(stable, parallel_safe)]
pub fn tenant_id() -> Option<pgrx::Uuid> {
    current()
        .and_then(|c| uuid_claim(&c, "tenant_id"))
        .map(to_pg_uuid)
}

/// The caller's application role (claim `app_role`), or NULL.
#[pg_extern(stable, parallel_safe)]
fn app_role() -> Option<String> {
    current().and_then(|c| text_claim(&c, "app_role"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_objects_only() {
        assert!(parse_claims(r#"{"sub":"x"}"#).is_some());
        for bad in ["", "null", "[]", "42", "\"s\"", "{", "{\"a\":}"] {
            assert!(parse_claims(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn typed_claims() {
        let c = parse_claims(
            r#"{"sub":"6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab","tenant_id":"not-a-uuid","app_role":" ops ","n":1}"#,
        )
        .unwrap();
        assert_eq!(
            uuid_claim(&c, "sub").unwrap().to_string(),
            "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab"
        );
        assert_eq!(uuid_claim(&c, "tenant_id"), None);
        assert_eq!(uuid_claim(&c, "n"), None);
        assert_eq!(uuid_claim(&c, "missing"), None);
        assert_eq!(text_claim(&c, "app_role").as_deref(), Some("ops"));
        assert_eq!(text_claim(&c, "n"), None);
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn set_claims(json: &str) {
        Spi::run(&format!(
            "select set_config('request.jwt.claims', {}, true)",
            pgrx::spi::quote_literal(json)
        ))
        .unwrap();
    }

    #[pg_test]
    fn claims_are_null_without_a_setting() {
        assert_eq!(
            Spi::get_one::<pgrx::Uuid>("select bizos.uid()").unwrap(),
            None
        );
        assert_eq!(
            Spi::get_one::<String>("select bizos.app_role()").unwrap(),
            None
        );
        assert_eq!(
            Spi::get_one::<pgrx::JsonB>("select bizos.claims()")
                .unwrap()
                .map(|j| j.0),
            None
        );
    }

    #[pg_test]
    fn claims_are_read_from_the_request() {
        set_claims(
            r#"{"sub":"6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab","tenant_id":"0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01","app_role":"finance"}"#,
        );
        assert_eq!(
            Spi::get_one::<String>("select bizos.uid()::text")
                .unwrap()
                .as_deref(),
            Some("6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab")
        );
        assert_eq!(
            Spi::get_one::<String>("select bizos.tenant_id()::text")
                .unwrap()
                .as_deref(),
            Some("0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01")
        );
        assert_eq!(
            Spi::get_one::<String>("select bizos.app_role()")
                .unwrap()
                .as_deref(),
            Some("finance")
        );
        assert_eq!(
            Spi::get_one::<String>("select bizos.claims()->>'app_role'")
                .unwrap()
                .as_deref(),
            Some("finance")
        );
    }

    #[pg_test]
    fn malformed_claims_are_null_not_errors() {
        for bad in ["not json", "[1,2]", r#"{"sub": 12, "tenant_id": "zzz"}"#] {
            set_claims(bad);
            assert_eq!(
                Spi::get_one::<pgrx::Uuid>("select bizos.uid()").unwrap(),
                None,
                "{bad}"
            );
            assert_eq!(
                Spi::get_one::<pgrx::Uuid>("select bizos.tenant_id()").unwrap(),
                None,
                "{bad}"
            );
        }
    }
}
