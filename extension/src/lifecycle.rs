//! C7: `bizos.lifecycle_guard(entity, status_column [, 'STATE=column' ...])`,
//! a BEFORE INSERT OR UPDATE row trigger. It allows only the transitions
//! declared in `bizos.transitions` and stamps the time a row enters a state
//! into `<state>_at` (lowercase) when the table has such a timestamptz
//! column; `'STATE=column'` arguments name another column, `'STATE='` none.
//! A NULL status is not guarded (tables with one status column per type).

use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode as Code};

use crate::error::{raise, OrRaise};
use crate::privilege::as_extension_owner;

pgrx::extension_sql_file!(
    "../sql/lifecycle.sql",
    name = "lifecycle_schema",
    requires = ["schema_grants"]
);

/// Allowed transitions by (entity, from state): the states reachable, in
/// the database's order of text.
type Transitions = HashMap<(String, Option<String>), Vec<String>>;

thread_local! {
    /// The transitions query, prepared once per backend.
    static NEXT_STATES: std::cell::OnceCell<pgrx::spi::OwnedPreparedStatement> =
        const { std::cell::OnceCell::new() };
    /// This backend's copy of `bizos.transitions` (see `cache.rs`).
    static COPY: crate::cache::TableCopy<Transitions> = const { crate::cache::TableCopy::new() };
}

/// States reachable from `from` (`None`: the initial states): from this
/// backend's copy of `bizos.transitions`, read again after the table
/// changed; by a query where the table cannot be copied.
fn next_states(entity: &str, from: Option<&str>) -> Vec<String> {
    let copy = COPY.with(|c| {
        c.get(
            || crate::rows::extension_relation(c"transitions"),
            read_transitions,
        )
    });
    match copy {
        Some(t) => t
            .get(&(entity.to_owned(), from.map(str::to_owned)))
            .cloned()
            .unwrap_or_default(),
        None => query_next_states(entity, from),
    }
}

/// The whole table under `snapshot`. Reachable states are sorted as
/// `order by to_status` sorts them.
fn read_transitions(relid: pg_sys::Oid, snapshot: pg_sys::Snapshot) -> Transitions {
    use crate::rows::attnum;
    let (entity_col, from_col, to_col) = (
        attnum(relid, c"entity"),
        attnum(relid, c"from_status"),
        attnum(relid, c"to_status"),
    );
    let mut all = Transitions::new();
    // SAFETY: the caller's snapshot outlives the scan; the columns are
    // text columns of the scanned table.
    unsafe {
        crate::rows::scan(relid, snapshot, |tuple, desc| {
            let text = |col: pg_sys::AttrNumber| {
                let mut null = false;
                let d = pg_sys::heap_getattr(tuple, col.into(), desc, &mut null);
                String::from_datum(d, null)
            };
            if let (Some(entity), Some(to)) = (text(entity_col), text(to_col)) {
                all.entry((entity, text(from_col))).or_default().push(to);
            }
        });
    }
    for states in all.values_mut() {
        states.sort_by(|a, b| collated_cmp(a, b));
    }
    all
}

/// `a` against `b` under the database's default collation.
fn collated_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    // SAFETY: two byte strings with their lengths; varstr_cmp copies them
    // as it needs (they need no NUL terminator).
    let c = unsafe {
        pg_sys::varstr_cmp(
            a.as_ptr().cast(),
            a.len() as i32,
            b.as_ptr().cast(),
            b.len() as i32,
            pg_sys::DEFAULT_COLLATION_OID,
        )
    };
    c.cmp(&0)
}

/// States reachable from `from` by a query, as the extension owner: the
/// table is the extension's, not readable by PUBLIC. The statement is
/// planned once per backend; it runs under the search path it was planned
/// with, so the plan cache keeps it.
fn query_next_states(entity: &str, from: Option<&str>) -> Vec<String> {
    as_extension_owner(|| {
        NEXT_STATES.with(|stmt| {
            let stmt = stmt.get_or_init(|| {
                Spi::connect(|c| {
                    let text = pgrx::PgOid::from(pg_sys::TEXTOID);
                    c.prepare(
                        "select to_status from bizos.transitions
                          where entity = $1 and from_status is not distinct from $2
                          order by to_status",
                        &[text, text],
                    )
                    .or_raise("preparing the transitions query")
                    .keep()
                })
            });
            Spi::connect(|c| {
                c.select(stmt, None, &[entity.into(), from.into()])
                    .or_raise("reading bizos.transitions")
                    .filter_map(|r| r.get::<String>(1).ok().flatten())
                    .collect()
            })
        })
    })
}

/// The column stamped when a row enters `state`, if any.
fn stamp_column(
    state: &str,
    overrides: &[String],
    tuple: &PgHeapTuple<'_, impl WhoAllocated>,
) -> Option<String> {
    let prefix = format!("{state}=");
    let column = match overrides.iter().find_map(|o| o.strip_prefix(&prefix)) {
        Some("") => return None,
        Some(c) => c.to_owned(),
        None => format!("{}_at", state.to_lowercase()),
    };
    let (_, att) = tuple.get_attribute_by_name(&column)?;
    (att.type_oid().value() == pg_sys::TIMESTAMPTZOID).then_some(column)
}

#[pg_trigger]
fn lifecycle_guard<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    let args = trigger.extra_args().or_raise("reading trigger arguments");
    let (entity, column, overrides) = match args.as_slice() {
        [e, c, rest @ ..] => (e.as_str(), c.as_str(), rest),
        _ => raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "lifecycle_guard takes an entity, a status column and optional 'STATE=column' stamps",
            None,
        ),
    };
    let mut new = trigger
        .new()
        .unwrap_or_else(|| {
            raise(
                Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
                "lifecycle_guard must be a row-level BEFORE INSERT OR UPDATE trigger",
                None,
            )
        })
        .into_owned();
    let status: Option<String> = new.get_by_name(column)?;
    let previous: Option<String> = match trigger.old() {
        Some(old) => old.get_by_name(column)?,
        None => None,
    };
    let is_insert = trigger.old().is_none();
    let Some(status) = status else {
        return Ok(Some(new));
    };
    if !is_insert && previous.as_deref() == Some(status.as_str()) {
        return Ok(Some(new));
    }
    let allowed = next_states(entity, previous.as_deref());
    if !allowed.contains(&status) {
        let (message, hint) = match previous.as_deref() {
            Some(p) => (
                format!("{entity} cannot move from \"{p}\" to \"{status}\""),
                if allowed.is_empty() {
                    format!("\"{p}\" is a final state")
                } else {
                    format!("from \"{p}\" it can move to {}", allowed.join(", "))
                },
            ),
            None => (
                format!("{entity} cannot start in \"{status}\""),
                format!("it can start in {}", allowed.join(", ")),
            ),
        };
        raise(Code::ERRCODE_RAISE_EXCEPTION, message, Some(&hint));
    }
    if let Some(stamp) = stamp_column(&status, overrides, &new) {
        // SAFETY: reads the transaction start time (now()).
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
        let ts = pgrx::datum::TimestampWithTimeZone::try_from(now).unwrap_or_else(|_| {
            raise(
                Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "invalid current time",
                None,
            )
        });
        new.set_by_name(&stamp, ts)?;
    }
    Ok(Some(new))
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup() {
        Spi::run(
            "insert into bizos.transitions (entity, from_status, to_status) values
               ('t_task', null, 'OPEN'),
               ('t_task', 'OPEN', 'IN_PROGRESS'), ('t_task', 'IN_PROGRESS', 'DONE'),
               ('t_task', 'OPEN', 'CANCELLED'), ('t_task', 'DONE', 'OPEN');
             create table t_tasks (id int primary key, status text not null default 'OPEN',
                                   open_at timestamptz, done_at timestamptz, cancelled_on timestamptz,
                                   in_progress_at text);
             create trigger t_tasks_lifecycle before insert or update on t_tasks for each row
               execute function bizos.lifecycle_guard('t_task', 'status', 'CANCELLED=cancelled_on');",
        )
        .unwrap();
    }

    #[pg_test]
    fn allowed_transitions_stamp_times() {
        setup();
        Spi::run("insert into t_tasks (id) values (1)").unwrap();
        assert!(
            Spi::get_one::<bool>("select open_at is not null from t_tasks")
                .unwrap()
                .unwrap()
        );
        Spi::run("update t_tasks set status = 'IN_PROGRESS'; update t_tasks set status = 'DONE'")
            .unwrap();
        let (done, text_col) =
            Spi::get_two::<bool, String>("select done_at is not null, in_progress_at from t_tasks")
                .unwrap();
        assert_eq!(done, Some(true));
        assert_eq!(text_col, None, "a non-timestamptz column is never stamped");
        Spi::run("insert into t_tasks (id) values (2); update t_tasks set status = 'CANCELLED' where id = 2").unwrap();
        assert!(
            Spi::get_one::<bool>("select cancelled_on is not null from t_tasks where id = 2")
                .unwrap()
                .unwrap()
        );
        // An update that leaves the status alone is not a transition.
        Spi::run("update t_tasks set id = 3 where id = 2").unwrap();
    }

    #[pg_test(error = "t_task cannot move from \"OPEN\" to \"DONE\"")]
    fn forbidden_transitions_name_both_states() {
        setup();
        Spi::run("insert into t_tasks (id) values (1); update t_tasks set status = 'DONE'")
            .unwrap();
    }

    #[pg_test(error = "t_task cannot start in \"DONE\"")]
    fn rows_start_in_an_initial_state() {
        setup();
        Spi::run("insert into t_tasks (id, status) values (1, 'DONE')").unwrap();
    }

    #[pg_test(error = "t_task cannot move from \"CANCELLED\" to \"OPEN\"")]
    fn final_states_are_final() {
        setup();
        Spi::run(
            "insert into t_tasks (id) values (1); update t_tasks set status = 'CANCELLED';
                  update t_tasks set status = 'OPEN'",
        )
        .unwrap();
    }
}
