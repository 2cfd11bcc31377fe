//! `bizos.payload_problem(payload, spec, prefix)`: the shape check of an
//! RPC's JSON payload (`bizos_core::payload`), for `payload_check` in
//! sql/api/payloads.sql, which raises the house error naming the field.
//! Every RPC that takes a JSON object runs it first; as PL/pgSQL it was a
//! sorted query and a dozen expressions per field, 11 µs a call against 6
//! µs here (docs/benchmarks/crm-and-write-path.md, step ten).

use bizos_core::payload::problem;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

use crate::error::raise;

/// `{field, problem}` of the first problem of `payload` against `spec`,
/// or NULL when it fits. A NULL payload is a problem (`payload`, or the
/// prefix without its dot); a spec naming no known type is a bug of the
/// RPC (XX000).
#[pg_extern(immutable, parallel_safe)]
fn payload_problem(
    payload: Option<pgrx::JsonB>,
    spec: Option<pgrx::JsonB>,
    prefix: default!(Option<&str>, "''"),
) -> Option<Vec<String>> {
    let Some(spec) = spec else {
        raise(Code::ERRCODE_INTERNAL_ERROR, "payload_check: no spec", None)
    };
    match problem(
        payload.as_ref().map(|p| &p.0),
        &spec.0,
        prefix.unwrap_or(""),
    ) {
        Ok(found) => found.map(|p| vec![p.field, p.problem]),
        Err(bad) => raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!("payload_check: unknown type {} for {}", bad.kind, bad.field),
            None,
        ),
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn names_the_field_or_returns_null() {
        let spec = r#"'{"origin": "text", "lines": [{"qty": "number"}]}'::jsonb"#;
        let got = Spi::get_one::<Vec<String>>(&format!(
            r#"select bizos.payload_problem('{{"lines": [{{"qty": true}}]}}', {spec}, 'rfq.')"#
        ))
        .unwrap();
        assert_eq!(
            got,
            Some(vec![
                "rfq.lines[0].qty".to_owned(),
                "must be a number".to_owned()
            ])
        );
        let none = Spi::get_one::<Vec<String>>(&format!(
            r#"select bizos.payload_problem('{{"origin": "JKT"}}', {spec})"#
        ))
        .unwrap();
        assert_eq!(none, None);
        let null =
            Spi::get_one::<Vec<String>>(&format!("select bizos.payload_problem(null, {spec})"))
                .unwrap();
        assert_eq!(
            null,
            Some(vec![
                "payload".to_owned(),
                "must be a JSON object".to_owned()
            ])
        );
    }

    #[pg_test(error = "payload_check: unknown type datetime for when")]
    fn a_spec_without_a_known_type_is_an_internal_error() {
        Spi::run(r#"select bizos.payload_problem('{"when": "x"}', '{"when": "datetime"}')"#)
            .unwrap();
    }
}
