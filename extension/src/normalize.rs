//! C2: normalisers for dedup keys, as immutable SQL functions over the pure
//! implementations in `bizos_core::normalize`. Invalid input gives NULL so
//! unique indexes over the normalised value simply do not apply to it.

use bizos_core::normalize as n;
use pgrx::prelude::*;

/// NPWP (15 digits, "0"+15, or a NIK-based 16-digit NPWP) as 16 plain digits.
#[pg_extern(immutable, strict, parallel_safe)]
fn norm_npwp(value: &str) -> Option<String> {
    n::norm_npwp(value)
}

/// True when the NPWP's check digit is right (NIK-based NPWPs: structure only).
#[pg_extern(immutable, strict, parallel_safe)]
fn npwp_valid(value: &str) -> bool {
    n::npwp_valid(value)
}

/// An Indonesian phone number in E.164 (+62…), or NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn norm_phone(value: &str) -> Option<String> {
    n::norm_phone(value)
}

/// A trimmed, lowercased e-mail address without +tag, or NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn norm_email(value: &str) -> Option<String> {
    n::norm_email(value)
}

/// A company name without legal forms (PT, CV, UD, Tbk, Persero) and
/// punctuation, lowercased, for fuzzy matching; or NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn norm_company(value: &str) -> Option<String> {
    n::norm_company(value)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    #[pg_test]
    fn normalisers_are_sql_functions() {
        assert_eq!(
            one("select bizos.norm_npwp('01.234.567.8-901.000')").as_deref(),
            Some("0012345678901000")
        );
        assert_eq!(
            one("select bizos.norm_phone('0812-3456-7890')").as_deref(),
            Some("+6281234567890")
        );
        assert_eq!(
            one("select bizos.norm_email('  Budi+promo@Example.CO.ID ')").as_deref(),
            Some("budi@example.co.id")
        );
        assert_eq!(
            one("select bizos.norm_company('PT. Maju Jaya Tbk')").as_deref(),
            Some("maju jaya")
        );
        assert_eq!(one("select bizos.norm_npwp('abc')"), None);
        assert_eq!(one("select bizos.norm_phone(null)"), None);
    }

    #[pg_test]
    fn normalisers_are_immutable_and_parallel_safe() {
        let bad: i64 = Spi::get_one(
            "select count(*) from pg_proc
              where pronamespace = 'bizos'::regnamespace
                and proname in ('norm_npwp','npwp_valid','norm_phone','norm_email','norm_company')
                and not (provolatile = 'i' and proparallel = 's' and proisstrict)",
        )
        .unwrap()
        .unwrap();
        assert_eq!(bad, 0);
        // Usable in a unique index expression.
        Spi::run(
            "create temp table t (npwp text); create unique index on t (bizos.norm_npwp(npwp))",
        )
        .unwrap();
    }
}
