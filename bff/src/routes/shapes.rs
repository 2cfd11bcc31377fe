//! What the documented response types of every route (each beside its
//! handlers, in the route's file) share. Handlers send what the database
//! gives; those types only document it: the jsonb the SQL functions return
//! and the rows of the list/detail views, with `deny_unknown_fields` so the
//! document says "exactly these keys" and the conformance test
//! (`tests/tests/suite/http/contract/`) fails on any drift between the
//! database and them.
//!
//! Conventions: timestamps are RFC 3339 strings, dates `YYYY-MM-DD`,
//! numeric columns JSON numbers with their exact digits ([`Numeric`]). A
//! nullable column is an `Option` (present as null); a key the function
//! strips when null is an `Option` too. Each type is `#[allow(dead_code)]`:
//! its fields are only ever read by the document.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Declares documented response types: each struct is `Deserialize`
/// (with `deny_unknown_fields`) and `ToSchema`, and `allow(dead_code)`
/// since only the document reads its fields.
///
/// A block that starts with `columns { .. }` gives each of its structs
/// those fields first (the columns of a table or view that its list row and
/// its detail share).
macro_rules! shapes {
    (columns { $($columns:tt)* } $($structs:tt)*) => {
        $crate::routes::shapes::shapes!(@with { $($columns)* } $($structs)*);
    };
    (@with $columns:tt) => {};
    (
        @with { $($columns:tt)* }
        $(#[$m:meta])* pub struct $name:ident { $($fields:tt)* }
        $($rest:tt)*
    ) => {
        $crate::routes::shapes::shapes! {
            $(#[$m])* pub struct $name { $($columns)* $($fields)* }
        }
        $crate::routes::shapes::shapes!(@with { $($columns)* } $($rest)*);
    };
    ($($(#[$m:meta])* pub struct $name:ident { $($fields:tt)* })*) => {
        $(
            #[derive(serde::Deserialize, utoipa::ToSchema)]
            $(#[$m])*
            #[allow(dead_code)]
            #[serde(deny_unknown_fields)]
            pub struct $name { $($fields)* }
        )*
    };
}

pub(crate) use shapes;

/// A numeric column as the database stores it: an exact decimal, sent as a
/// JSON number with every digit (`12345678901234.5678`, `110.00`), never
/// rounded through a binary float on the way.
#[allow(dead_code)]
pub struct Numeric(serde_json::Number);

impl<'de> Deserialize<'de> for Numeric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Number::deserialize(d).map(Numeric)
    }
}

impl utoipa::PartialSchema for Numeric {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .description(Some(
                "An exact decimal (a numeric column): a JSON number with every digit as stored, \
                 e.g. 12345678901234.5678 or 110.00. Parse it into a decimal type: a binary \
                 float (f64, double) keeps only about 15-17 significant digits.",
            ))
            .into()
    }
}

impl ToSchema for Numeric {
    fn name() -> std::borrow::Cow<'static, str> {
        "Numeric".into()
    }
}

/// One failing check of an SOP rule.
#[derive(Deserialize, serde::Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct SopReason {
    /// The rule's name.
    rule: String,
    rule_id: Uuid,
    kind: crate::payload::SopRuleKind,
    /// The draft's field at fault (`tax`, `lines[0].discount_pct`).
    field: String,
    message: String,
    severity: crate::payload::SopSeverity,
}

/// Declares a struct with the columns of `customers` plus `extra` fields
/// (the list row and the detail share one list of columns).
macro_rules! customer_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $crate::routes::shapes::shapes! {
            $(#[$m])*
            pub struct $name {
                tenant_id: Uuid,
                customer_id: Uuid,
                company_name: String,
                npwp: Option<String>,
                email: Option<String>,
                phone: Option<String>,
                address: Option<String>,
                city: Option<String>,
                npwp_norm: Option<String>,
                email_norm: Option<String>,
                phone_norm: Option<String>,
                company_norm: Option<String>,
                created_by: Option<Uuid>,
                created_at: DateTime<Utc>,
                updated_at: DateTime<Utc>,
                /// Days from issue to due date agreed with the customer (null: none).
                payment_terms_days: Option<i32>,
                $($extra)*
            }
        }
    };
}

pub(crate) use customer_row;

customer_row!(
    /// A customer (a row of `customers`).
    Customer {}
);
