//! The row stamps every business table carries, as BEFORE INSERT OR UPDATE
//! row triggers:
//!
//! * `bizos.stamp_timestamps()`: `created_at` is the time of the inserting
//!   transaction (`now()`) and never changes; `updated_at` is the time of
//!   the transaction that wrote the row last;
//! * `bizos.keep_created_by()`: `created_by` is the request's user (the
//!   claims' `sub`; the row's own value when there is none, as for the
//!   owner's and the worker's writes) and never changes.
//!
//! They were PL/pgSQL functions of the business schema until migration V40
//! (which points every table's triggers here). Every write of a business
//! row runs them, a lead bundle seven times: as PL/pgSQL each call built
//! the row as a record and formed it again, and the pinned search path of
//! `stamp_timestamps` changed a setting on the way in and out
//! (docs/benchmarks/crm-and-write-path.md, step eleven). Here a call replaces two datums of the row.

use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode as Code};

use crate::before_row::BeforeRow;
use crate::error::raise;

/// `now()`: the start of the current transaction.
fn now() -> pg_sys::Datum {
    // SAFETY: reads the transaction's start time.
    pg_sys::Datum::from(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() })
}

/// `created_at` on insert (kept on update) and `updated_at` on every write.
#[pg_trigger]
fn stamp_timestamps<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let row = BeforeRow::of(trigger, "stamp_timestamps");
    let ts = pg_sys::TIMESTAMPTZOID;
    let created = row.typed_column("created_at", ts, "timestamptz");
    let updated = row.typed_column("updated_at", ts, "timestamptz");
    let (created_value, created_null) = match row.old {
        Some(old) => row.get(old, created),
        None => (now(), false),
    };
    Ok(Some(row.replaced(
        vec![created, updated],
        vec![created_value, now()],
        vec![created_null, false],
    )))
}

/// `created_by` on insert: the request's user, else the row's own value;
/// kept on update.
#[pg_trigger]
fn keep_created_by<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let row = BeforeRow::of(trigger, "keep_created_by");
    let col = row.typed_column("created_by", pg_sys::UUIDOID, "uuid");
    let (value, null) = match row.old {
        Some(old) => row.get(old, col),
        None => match crate::claims::current_uid() {
            Some(uid) => match uid.into_datum() {
                Some(d) => (d, false),
                None => raise(Code::ERRCODE_INTERNAL_ERROR, "a user id as a datum", None),
            },
            None => row.get(row.new, col),
        },
    };
    Ok(Some(row.replaced(vec![col], vec![value], vec![null])))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const USER: &str = "00000000-0000-4000-8000-000000000001";
    const OTHER: &str = "00000000-0000-4000-8000-000000000002";

    fn setup() {
        Spi::run(
            "create table t_rows (id int primary key, note text, created_by uuid,
                                  created_at timestamptz, updated_at timestamptz);
             create trigger t_rows_stamp before insert or update on t_rows
               for each row execute function bizos.stamp_timestamps();
             create trigger t_rows_created_by before insert or update on t_rows
               for each row execute function bizos.keep_created_by();",
        )
        .unwrap();
    }

    fn claims(sub: &str) {
        Spi::run(&format!(
            "select set_config('request.jwt.claims', '{{\"sub\": \"{sub}\"}}', true)"
        ))
        .unwrap();
    }

    fn text(sql: &str) -> Option<String> {
        Spi::get_one::<String>(sql).unwrap()
    }

    #[pg_test]
    fn inserts_stamp_the_transaction_time_and_the_user() {
        setup();
        claims(USER);
        Spi::run(&format!(
            "insert into t_rows (id, created_by, created_at, updated_at)
             values (1, '{OTHER}', '2001-01-01', '2001-01-01')"
        ))
        .unwrap();
        assert_eq!(
            text("select created_by::text from t_rows").as_deref(),
            Some(USER),
            "the request's user, not the value sent"
        );
        assert_eq!(
            Spi::get_one::<bool>("select created_at = now() and updated_at = now() from t_rows")
                .unwrap(),
            Some(true)
        );
    }

    #[pg_test]
    fn without_a_user_the_row_keeps_its_creator() {
        setup();
        Spi::run(&format!(
            "insert into t_rows (id, created_by) values (1, '{OTHER}'), (2, null)"
        ))
        .unwrap();
        assert_eq!(
            text("select string_agg(coalesce(created_by::text, '-'), ',' order by id) from t_rows")
                .as_deref(),
            Some(format!("{OTHER},-").as_str())
        );
    }

    #[pg_test]
    fn updates_keep_the_creation_and_stamp_the_update() {
        setup();
        claims(USER);
        Spi::run("insert into t_rows (id) values (1)").unwrap();
        // As if written by an earlier transaction.
        Spi::run("alter table t_rows disable trigger user").unwrap();
        Spi::run("update t_rows set created_at = '2001-01-01', updated_at = '2001-01-01'").unwrap();
        Spi::run("alter table t_rows enable trigger user").unwrap();
        claims(OTHER);
        Spi::run(&format!(
            "update t_rows set note = 'x', created_by = '{OTHER}', created_at = now(), updated_at = null"
        ))
        .unwrap();
        assert_eq!(
            text(
                "select created_by::text || ' ' || (created_at = '2001-01-01')::text || ' '
                        || (updated_at = now())::text from t_rows"
            )
            .as_deref(),
            Some(format!("{USER} true true").as_str())
        );
    }

    #[pg_test(error = "t_bad has no column updated_at")]
    fn a_table_without_the_columns_is_refused() {
        Spi::run(
            "create table t_bad (id int, created_at timestamptz);
             create trigger t_bad_stamp before insert on t_bad
               for each row execute function bizos.stamp_timestamps();
             insert into t_bad values (1)",
        )
        .unwrap();
    }

    #[pg_test(error = "t_bad.created_by must be of type uuid")]
    fn a_column_of_another_type_is_refused() {
        Spi::run(
            "create table t_bad (id int, created_by text);
             create trigger t_bad_created_by before insert on t_bad
               for each row execute function bizos.keep_created_by();
             insert into t_bad values (1)",
        )
        .unwrap();
    }

    #[pg_test(error = "stamp_timestamps must be a row-level BEFORE INSERT OR UPDATE trigger")]
    fn only_before_row_triggers() {
        Spi::run(
            "create table t_bad (id int, created_at timestamptz, updated_at timestamptz);
             create trigger t_bad_stamp after insert on t_bad
               for each row execute function bizos.stamp_timestamps();
             insert into t_bad values (1)",
        )
        .unwrap();
    }
}
