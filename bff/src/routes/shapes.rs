//! What the documented response types of every route (each beside its
//! handlers, in the route's file) share. Handlers send what the database
//! gives; those types only document it: the jsonb the SQL functions return
//! and the rows of the list/detail views, with `deny_unknown_fields` so the
//! document says "exactly these keys" and the conformance test
//! (`tests/tests/suite/http/contract.rs`) fails on any drift between the
//! database and them.
//!
//! Conventions: timestamps are RFC 3339 strings, dates `YYYY-MM-DD`,
//! numeric columns JSON numbers with their exact digits ([`Numeric`]). A
//! nullable column is an `Option` (present as null); a key the function
//! strips when null is an `Option` too. Each type is `#[allow(dead_code)]`:
//! its fields are only ever read by the document.

use serde::Deserialize;
use utoipa::ToSchema;

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
