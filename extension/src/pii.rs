//! C5: PII detection and masking as immutable SQL functions over the pure
//! detector in `bizos_core::pii`. Positions are character offsets (as
//! `substr`/`position` count), 0-based, end exclusive.

use bizos_core::pii;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};

/// The PII spans of `text` as a jsonb array of
/// `{"type","start","end","score"}`, sorted by start, non-overlapping.
#[pg_extern(immutable, strict, parallel_safe)]
fn pii_detect(text: &str) -> JsonB {
    let spans = pii::detect(text);
    let spans = pii::to_char_offsets(text, &spans);
    JsonB(Value::Array(
        spans
            .iter()
            .map(|s| {
                json!({
                    "type": s.kind.name(),
                    "start": s.start,
                    "end": s.end,
                    // Two decimals: the score is a heuristic, not a measurement.
                    "score": (f64::from(s.score) * 100.0).round() / 100.0,
                })
            })
            .collect(),
    ))
}

/// `text` with every PII span replaced by `[REDACTED_<TYPE>]`.
#[pg_extern(immutable, strict, parallel_safe)]
fn pii_mask(text: &str) -> String {
    pii::mask(text).into_owned()
}

/// `budi@gmail.com` → `b***@gmail.com`.
#[pg_extern(immutable, strict, parallel_safe)]
fn mask_email(value: &str) -> String {
    pii::partial::mask_email(value)
}

/// `0812-3456-7890` → `+62 8**-****-**90`.
#[pg_extern(immutable, strict, parallel_safe)]
fn mask_phone(value: &str) -> String {
    pii::partial::mask_phone(value)
}

/// `3174011203900001` → `3174************`.
#[pg_extern(immutable, strict, parallel_safe)]
fn mask_nik(value: &str) -> String {
    pii::partial::mask_nik(value)
}

/// `Budi Santoso` → `B*** S***`.
#[pg_extern(immutable, strict, parallel_safe)]
fn mask_name(value: &str) -> String {
    pii::partial::mask_name(value)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    #[pg_test]
    fn detect_reports_character_offsets() {
        let got = one(
            "select string_agg(format('%s:%s', s->>'type',
                      substr(t, (s->>'start')::int + 1, (s->>'end')::int - (s->>'start')::int)), ',')
               from (select 'Pak Ádám — HP 0812-3456-7890, ✓ e-mail budi@maju.co.id'::text as t) x,
                    jsonb_array_elements(bizos.pii_detect(t)) s",
        );
        assert_eq!(
            got.as_deref(),
            Some("PHONE:0812-3456-7890,EMAIL:budi@maju.co.id")
        );
    }

    #[pg_test]
    fn mask_and_partial_maskers() {
        assert_eq!(
            one("select bizos.pii_mask('NIK 3174011203900001, WA +62 812 3456 7890')").as_deref(),
            Some("NIK [REDACTED_NIK], WA [REDACTED_PHONE]")
        );
        assert_eq!(
            one("select bizos.mask_email('budi@gmail.com')").as_deref(),
            Some("b***@gmail.com")
        );
        assert_eq!(
            one("select bizos.mask_phone('+6281234567890')").as_deref(),
            Some("+62 8**-****-**90")
        );
        assert_eq!(
            one("select bizos.mask_nik('3174011203900001')").as_deref(),
            Some("3174************")
        );
        assert_eq!(
            one("select bizos.mask_name('Budi Santoso')").as_deref(),
            Some("B*** S***")
        );
        assert_eq!(one("select bizos.pii_mask(null)"), None);
        assert_eq!(
            one("select bizos.pii_detect('Total Rp 1.500.000')::text").as_deref(),
            Some("[]")
        );
    }

    #[pg_test]
    fn pii_functions_are_immutable_and_parallel_safe() {
        let bad: i64 = Spi::get_one(
            "select count(*) from pg_proc
              where pronamespace = 'bizos'::regnamespace
                and proname in ('pii_detect','pii_mask','mask_email','mask_phone','mask_nik','mask_name')
                and not (provolatile = 'i' and proparallel = 's' and proisstrict)",
        )
        .unwrap()
        .unwrap();
        assert_eq!(bad, 0);
        let n: i64 = Spi::get_one(
            "select count(*) from pg_proc
              where pronamespace = 'bizos'::regnamespace
                and proname in ('pii_detect','pii_mask','mask_email','mask_phone','mask_nik','mask_name')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 6);
    }
}
