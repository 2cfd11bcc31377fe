//! C1: business numbers `<PREFIX>-<YYYY>-<NNNNNN>` per tenant, kind and year
//! (see sql/ids.sql for the two modes).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode as Code};

use crate::before_row::BeforeRow;
use crate::error::{query_opt, raise, OrRaise};
use crate::privilege::{as_citus_user_of, as_extension_owner, as_extension_owner_role};

pgrx::extension_sql_file!(
    "../sql/ids.sql",
    name = "ids_schema",
    requires = ["schema_grants"]
);

/// Formats a business number; numbers beyond `width` digits simply grow.
pub fn format_id(prefix: &str, year: i32, n: i64, width: usize) -> String {
    format!("{prefix}-{year}-{n:0width$}")
}

type SeqKey = (pgrx::Uuid, String, i32);

/// Statements planned once per backend: the kind lookup of a Citus node
/// and the gapless upsert.
struct Statements {
    kind: OwnedPreparedStatement,
    gapless: OwnedPreparedStatement,
}

thread_local! {
    static STATEMENTS: RefCell<Option<std::rc::Rc<Statements>>> = const { RefCell::new(None) };
    /// Sequence of each (tenant, kind, year) seen by this backend. Entries
    /// are re-checked against the catalog before use (a sequence created in
    /// a rolled-back (sub)transaction disappears).
    static SEQUENCES: RefCell<HashMap<SeqKey, pg_sys::Oid>> = RefCell::new(HashMap::new());
}

fn statements() -> std::rc::Rc<Statements> {
    if let Some(s) = STATEMENTS.with(|s| s.borrow().clone()) {
        return s;
    }
    let stmts = Spi::connect(|client| {
        let keep = |sql: &str, args: &[PgOid]| {
            client
                .prepare_mut(sql, args)
                .or_raise("preparing next_id")
                .keep()
        };
        let (uuid, text, int4) = (
            PgOid::from(pg_sys::UUIDOID),
            PgOid::from(pg_sys::TEXTOID),
            PgOid::from(pg_sys::INT4OID),
        );
        Statements {
            kind: keep(
                "select k.prefix, k.mode, k.width from bizos.id_kinds k where k.kind = $1",
                &[text],
            ),
            gapless: keep(
                "insert into bizos.id_counters as c (tenant_id, kind, year, last_value)
                 values ($1, $2, $3, 1)
                 on conflict (tenant_id, kind, year) do update set last_value = c.last_value + 1
                 returning c.last_value",
                &[uuid, text, int4],
            ),
        }
    });
    let stmts = std::rc::Rc::new(stmts);
    STATEMENTS.with(|s| *s.borrow_mut() = Some(stmts.clone()));
    stmts
}

fn is_sequence(oid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup; returns '\0' for a missing relation.
    unsafe { pg_sys::get_rel_relkind(oid) as u8 == b'S' }
}

/// The tenant to number for: the explicit one, else the caller's claim. A
/// caller with claims may not number for another tenant.
fn resolve_tenant(explicit: Option<pgrx::Uuid>) -> pgrx::Uuid {
    let claimed = crate::claims::current_tenant();
    match (explicit, claimed) {
        (Some(t), Some(c)) if t != c => raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "next_id: the tenant differs from the caller's tenant",
            None,
        ),
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "next_id needs a tenant: the request has no tenant_id claim",
            Some("call bizos.next_id(kind, tenant_id) or run under the caller's claims"),
        ),
    }
}

/// The next business number of `kind` for the tenant (the caller's tenant
/// when `tenant` is NULL), e.g. `LEAD-2026-000123`. The year is that of the
/// transaction's start in the session time zone.
#[pg_extern(volatile, parallel_unsafe)]
fn next_id(kind: &str, tenant: default!(Option<pgrx::Uuid>, "NULL")) -> String {
    let tenant = resolve_tenant(tenant);
    next_id_for(tenant, kind)
}

/// The next number of `kind` for `tenant`. The common case (a sequence-mode
/// kind whose sequence this backend has used before) runs no SQL
/// statement: the kind is read through its primary key index
/// ([`kind_row`]; by a query on Citus), the year from the transaction's start, and the number
/// from `nextval` as the extension owner. Statements (the gapless upsert,
/// the first use of a sequence) run as the extension owner with the pinned
/// search path; on Citus as the current user when it holds the rights
/// itself ([`as_citus_user_of`]: Citus allows one user a shard a
/// transaction).
pub(crate) fn next_id_for(tenant: pgrx::Uuid, kind: &str) -> String {
    let citus = crate::citus::on_citus();
    let row = if citus {
        as_citus_user_of(c"id_kinds", pg_sys::ACL_SELECT, || {
            kind_row_by_query(&statements(), kind)
        })
    } else {
        cached_kind_row(kind)
    };
    let row = row.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_RAISE_EXCEPTION,
            format!("unknown business number kind \"{kind}\""),
            Some("define it in bizos.id_kinds"),
        )
    });
    let year = transaction_year();
    // On Citus every kind counts in bizos.id_counters: its rows move with
    // their tenant's shards, while a sequence stays on the node that made
    // it (and its oid means nothing on the node the tenant moves to).
    let n = if citus {
        let mode = pg_sys::ACL_SELECT | pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE;
        as_citus_user_of(c"id_counters", mode, || {
            next_gapless(&statements(), tenant, kind, year)
        })
    } else if row.mode == "gapless" {
        as_extension_owner(|| next_gapless(&statements(), tenant, kind, year))
    } else {
        next_from_sequence(tenant, kind, year)
    };
    format_id(
        &row.prefix,
        year,
        n,
        usize::try_from(row.width).unwrap_or(6),
    )
}

/// A row of `bizos.id_kinds`.
#[derive(Clone)]
struct KindRow {
    prefix: String,
    mode: String,
    width: i32,
}

/// The row of `kind` in `bizos.id_kinds` by a query: on a Citus node the
/// table is a reference table, whose rows are in a shard placement that
/// only a query reaches (the table itself is an empty shell there).
fn kind_row_by_query(stmts: &Statements, kind: &str) -> Option<KindRow> {
    Spi::connect(|client| {
        let rows = client
            .select(&stmts.kind, Some(1), &[kind.into()])
            .or_raise("reading bizos.id_kinds");
        if rows.is_empty() {
            return None;
        }
        let row = rows.first();
        Some(KindRow {
            prefix: row
                .get::<String>(1)
                .or_raise("id kind prefix")
                .unwrap_or_default(),
            mode: row
                .get::<String>(2)
                .or_raise("id kind mode")
                .unwrap_or_default(),
            width: row.get::<i32>(3).or_raise("id kind width").unwrap_or(6),
        })
    })
}

/// The kinds of `bizos.id_kinds` by name.
type Kinds = HashMap<String, KindRow>;

thread_local! {
    /// This backend's copy of `bizos.id_kinds` (see `cache.rs`).
    static KINDS: crate::cache::TableCopy<Kinds> = const { crate::cache::TableCopy::new() };
}

/// The row of `kind` from this backend's copy of `bizos.id_kinds`; read
/// through the table where it cannot be copied.
fn cached_kind_row(kind: &str) -> Option<KindRow> {
    let relid = || crate::rows::extension_relation(c"id_kinds");
    match KINDS.with(|k| k.get(relid, read_kinds)) {
        Some(kinds) => kinds.get(kind).cloned(),
        None => {
            let index = crate::rows::extension_relation(c"id_kinds_pkey");
            // SAFETY: the active snapshot of the statement.
            kind_row(relid(), index, kind, unsafe { pg_sys::GetActiveSnapshot() })
        }
    }
}

/// The whole of `bizos.id_kinds` under `snapshot`.
fn read_kinds(relid: pg_sys::Oid, snapshot: pg_sys::Snapshot) -> Kinds {
    let cols = KindCols::of(relid);
    let mut kinds = Kinds::new();
    // SAFETY: the caller's snapshot outlives the scan.
    unsafe {
        crate::rows::scan(relid, snapshot, |tuple, desc| {
            let (kind, row) = cols.read(tuple, desc);
            if let Some(kind) = kind {
                kinds.insert(kind, row);
            }
        });
    }
    kinds
}

/// The columns of `bizos.id_kinds`.
struct KindCols {
    kind: pg_sys::AttrNumber,
    prefix: pg_sys::AttrNumber,
    mode: pg_sys::AttrNumber,
    width: pg_sys::AttrNumber,
}

impl KindCols {
    fn of(relid: pg_sys::Oid) -> Self {
        use crate::rows::attnum;
        KindCols {
            kind: attnum(relid, c"kind"),
            prefix: attnum(relid, c"prefix"),
            mode: attnum(relid, c"mode"),
            width: attnum(relid, c"width"),
        }
    }

    /// The kind's name and row.
    ///
    /// # Safety
    /// `tuple` is a row of `bizos.id_kinds`, described by `desc`.
    unsafe fn read(
        &self,
        tuple: pg_sys::HeapTuple,
        desc: pg_sys::TupleDesc,
    ) -> (Option<String>, KindRow) {
        let get = |col: pg_sys::AttrNumber| {
            let mut null = false;
            let datum = pg_sys::heap_getattr(tuple, col.into(), desc, &mut null);
            (datum, null)
        };
        let text_of = |col| {
            let (d, null) = get(col);
            String::from_datum(d, null)
        };
        let (width, null) = get(self.width);
        (
            text_of(self.kind),
            KindRow {
                prefix: text_of(self.prefix).unwrap_or_default(),
                mode: text_of(self.mode).unwrap_or_default(),
                width: i32::from_datum(width, null).unwrap_or(6),
            },
        )
    }
}

/// The row of `kind` in `bizos.id_kinds`, read through its primary key
/// index under `snapshot` (no executor, no plan): what the SQL lookup gave,
/// at a fraction of its cost per call. The extension reads its own table
/// here, so no privilege of the caller is involved.
fn kind_row(
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    kind: &str,
    snapshot: pg_sys::Snapshot,
) -> Option<KindRow> {
    use crate::rows::{lookup, Eq};
    let cols = KindCols::of(relid);
    let key = Eq {
        attnum: cols.kind,
        procedure: pg_sys::F_TEXTEQ,
        value: kind
            .into_datum()
            .unwrap_or_else(|| raise(Code::ERRCODE_INTERNAL_ERROR, "kind as text", None)),
    };
    // SAFETY: the caller's snapshot outlives the scan; the key is a text
    // datum for the text column; the tuple is read while the scan is open.
    unsafe {
        lookup(relid, index, &[key], snapshot, |tuple, desc| {
            cols.read(tuple, desc).1
        })
    }
}

/// The year of the transaction's start in the session time zone, as
/// `extract(year from now())` gives it.
fn transaction_year() -> i32 {
    // SAFETY: timestamp2tm fills the zeroed pg_tm from a valid timestamp;
    // a NULL zone means the session time zone.
    unsafe {
        let ts = pg_sys::GetCurrentTransactionStartTimestamp();
        let mut tm: pg_sys::pg_tm = std::mem::zeroed();
        let mut fsec: pg_sys::fsec_t = 0;
        let mut tz: std::ffi::c_int = 0;
        if pg_sys::timestamp2tm(
            ts,
            &mut tz,
            &mut tm,
            &mut fsec,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) != 0
        {
            raise(
                Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "the transaction's start is out of range",
                None,
            );
        }
        tm.tm_year
    }
}

fn next_gapless(stmts: &Statements, tenant: pgrx::Uuid, kind: &str, year: i32) -> i64 {
    Spi::connect_mut(|c| {
        c.update(
            &stmts.gapless,
            Some(1),
            &[tenant.into(), kind.into(), year.into()],
        )
        .or_raise("advancing a gapless counter")
        .first()
        .get_one::<i64>()
        .or_raise("reading a gapless counter")
    })
    .unwrap_or_else(|| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "gapless counter returned no row",
            None,
        )
    })
}

fn next_from_sequence(tenant: pgrx::Uuid, kind: &str, year: i32) -> i64 {
    let key = (tenant, kind.to_owned(), year);
    let cached = SEQUENCES
        .with(|m| m.borrow().get(&key).copied())
        .filter(|oid| is_sequence(*oid));
    let seq = match cached {
        Some(oid) => oid,
        None => {
            let oid = as_extension_owner(|| find_or_create_sequence(tenant, kind, year));
            SEQUENCES.with(|m| m.borrow_mut().insert(key, oid));
            oid
        }
    };
    // SAFETY: nextval_oid is a plain fmgr function taking a regclass; the
    // sequence belongs to the extension owner, whose rights it needs.
    as_extension_owner_role(|| unsafe {
        pgrx::direct_function_call::<i64>(pg_sys::nextval_oid, &[seq.into_datum()])
    })
    .unwrap_or_else(|| raise(Code::ERRCODE_INTERNAL_ERROR, "nextval returned NULL", None))
}

fn lookup_sequence(tenant: pgrx::Uuid, kind: &str, year: i32) -> Option<pg_sys::Oid> {
    query_opt::<pg_sys::Oid>(
        "select seq::oid from bizos.id_sequences where tenant_id = $1 and kind = $2 and year = $3",
        &[tenant.into(), kind.into(), year.into()],
        "reading bizos.id_sequences",
    )
}

/// First use of a (tenant, kind, year): create its sequence. An advisory
/// lock on the key makes concurrent first uses wait for one creator.
fn find_or_create_sequence(tenant: pgrx::Uuid, kind: &str, year: i32) -> pg_sys::Oid {
    if let Some(oid) = lookup_sequence(tenant, kind, year) {
        return oid;
    }
    let args = [tenant.into(), kind.into(), year.into()];
    Spi::run_with_args(
        "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended($1::text || '/' || $2 || '/' || $3::text, 7))",
        &args,
    )
    .or_raise("locking a new id sequence");
    if let Some(oid) = lookup_sequence(tenant, kind, year) {
        return oid;
    }
    let name = Spi::get_one_with_args::<String>(
        "select 'idseq_' || pg_catalog.md5($1::text || '/' || $2 || '/' || $3::text)",
        &[tenant.into(), kind.into(), year.into()],
    )
    .or_raise("naming a new id sequence")
    .unwrap_or_default();
    let qualified = format!("bizos.{}", pgrx::spi::quote_identifier(&name));
    Spi::run(&format!(
        "create sequence if not exists {qualified} as bigint"
    ))
    .or_raise("creating an id sequence");
    Spi::get_one_with_args::<pg_sys::Oid>(
        "insert into bizos.id_sequences (tenant_id, kind, year, seq)
         values ($1, $2, $3, $4::regclass) returning seq::oid",
        &[
            tenant.into(),
            kind.into(),
            year.into(),
            qualified.as_str().into(),
        ],
    )
    .or_raise("recording an id sequence")
    .unwrap_or_else(|| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "id sequence was not recorded",
            None,
        )
    })
}

/// BEFORE INSERT OR UPDATE trigger: `bizos.assign_business_id(kind, column)`.
/// On INSERT it fills `column` from `next_id(kind, NEW.tenant_id)` and
/// rejects a client-supplied value; on UPDATE the number cannot change.
/// Reads and replaces the one column in the trigger's tuple directly (no
/// copy of the row, no conversion of the other columns).
#[pg_trigger]
fn assign_business_id<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let row = BeforeRow::of(trigger, "assign_business_id");
    let data = trigger.trigger_data();
    // SAFETY: the arguments of the trigger that is running.
    let args: Vec<&str> = unsafe {
        let t = &*data.tg_trigger;
        (0..t.tgnargs as usize)
            .map(|i| {
                CStr::from_ptr(*t.tgargs.add(i))
                    .to_str()
                    .unwrap_or_default()
            })
            .collect()
    };
    let [kind, column] = args.as_slice() else {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "assign_business_id takes two arguments: kind and column",
            None,
        )
    };
    let col = row.column(column);
    let text = |tuple, col| {
        let (d, null) = row.get(tuple, col);
        // SAFETY: a datum of the text column `col`.
        unsafe { String::from_datum(d, null) }
    };

    if let Some(old) = row.old {
        if text(row.new, col) != text(old, col) {
            raise(
                Code::ERRCODE_RAISE_EXCEPTION,
                format!(
                    "{}.{column} is assigned by the database and cannot be changed",
                    row.table()
                ),
                None,
            );
        }
        return Ok(Some(row.unchanged()));
    }
    if !row.get(row.new, col).1 {
        raise(
            Code::ERRCODE_RAISE_EXCEPTION,
            format!(
                "{}.{column} is assigned by the database; do not send it",
                row.table()
            ),
            None,
        );
    }
    let tenant = row
        .find("tenant_id")
        .and_then(|t| {
            let (d, null) = row.get(row.new, t);
            // SAFETY: a datum of the uuid column tenant_id.
            unsafe { pgrx::Uuid::from_datum(d, null) }
        })
        .unwrap_or_else(|| {
            raise(
                Code::ERRCODE_NOT_NULL_VIOLATION,
                format!("{}.tenant_id is required to assign {column}", row.table()),
                None,
            )
        });
    let id = next_id_for(tenant, kind);
    let value = id.as_str().into_datum().unwrap_or_else(|| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "a business number as text",
            None,
        )
    });
    Ok(Some(row.replaced(vec![col], vec![value], vec![false])))
}

#[cfg(test)]
mod unit {
    #[test]
    fn formats_numbers() {
        assert_eq!(super::format_id("LEAD", 2026, 123, 6), "LEAD-2026-000123");
        assert_eq!(
            super::format_id("INV", 2026, 1_234_567, 6),
            "INV-2026-1234567"
        );
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const T1: &str = "'6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab'::uuid";
    const T2: &str = "'0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01'::uuid";

    fn setup() {
        Spi::run(
            "insert into bizos.id_kinds (kind, prefix, mode) values
               ('t_lead', 'LEAD', 'sequence'), ('t_inv', 'INV', 'gapless')",
        )
        .unwrap();
    }

    fn one(sql: &str) -> String {
        Spi::get_one::<String>(sql).unwrap().unwrap()
    }

    /// Code that runs as the extension owner resolves operators in
    /// pg_catalog, not in a schema the caller put first on its path.
    #[pg_test]
    fn owner_code_ignores_the_callers_search_path() {
        setup();
        Spi::run(
            "create schema evil;
             create function evil.concat(text, text) returns text language plpgsql
               as $$ begin raise exception 'evil operator ran as %', current_user; end $$;
             create operator evil.|| (leftarg = text, rightarg = text, function = evil.concat);
             set local search_path = evil, pg_catalog",
        )
        .unwrap();
        let shadowed = Spi::get_one::<bool>(
            "select pg_catalog.to_regoperator('||(text,text)')::oid
                    = (select o.oid from pg_catalog.pg_operator o
                        where o.oprname = '||' and o.oprnamespace = 'evil'::regnamespace)",
        )
        .unwrap();
        assert_eq!(shadowed, Some(true), "the caller's operator is in effect");
        assert!(one(&format!("select bizos.next_id('t_lead', {T1})")).starts_with("LEAD-"));
        assert!(one(&format!("select bizos.next_id('t_inv', {T1})")).starts_with("INV-"));
        let path = one("select current_setting('search_path')");
        assert_eq!(path, "evil, pg_catalog", "the caller's setting is restored");
    }

    #[pg_test]
    fn numbers_are_per_tenant_kind_and_year() {
        setup();
        let year: i32 = Spi::get_one("select extract(year from now())::int")
            .unwrap()
            .unwrap();
        assert_eq!(
            one(&format!("select bizos.next_id('t_lead', {T1})")),
            format!("LEAD-{year}-000001")
        );
        assert_eq!(
            one(&format!("select bizos.next_id('t_lead', {T1})")),
            format!("LEAD-{year}-000002")
        );
        assert_eq!(
            one(&format!("select bizos.next_id('t_lead', {T2})")),
            format!("LEAD-{year}-000001")
        );
        assert_eq!(
            one(&format!("select bizos.next_id('t_inv', {T1})")),
            format!("INV-{year}-000001")
        );
        assert_eq!(
            one(&format!("select bizos.next_id('t_inv', {T1})")),
            format!("INV-{year}-000002")
        );
    }

    #[pg_test]
    fn the_tenant_comes_from_the_claims() {
        setup();
        Spi::run(&format!(
            "select set_config('request.jwt.claims', json_build_object('tenant_id', {T2})::text, true)"
        ))
        .unwrap();
        assert!(one("select bizos.next_id('t_lead')").starts_with("LEAD-"));
    }

    #[pg_test(error = "next_id: the tenant differs from the caller's tenant")]
    fn another_tenant_is_refused_under_claims() {
        setup();
        Spi::run(&format!(
            "select set_config('request.jwt.claims', json_build_object('tenant_id', {T2})::text, true)"
        ))
        .unwrap();
        one(&format!("select bizos.next_id('t_lead', {T1})"));
    }

    #[pg_test(error = "next_id needs a tenant: the request has no tenant_id claim")]
    fn no_tenant_is_an_error() {
        setup();
        one("select bizos.next_id('t_lead')");
    }

    /// The kind is read through the primary key index, not by a query:
    /// every kind is found among neighbours whose order differs between
    /// the C collation and the database's, a change made earlier in the
    /// transaction is seen, and the year is that of `now()` in the session
    /// time zone.
    #[pg_test]
    fn kinds_are_read_as_a_query_reads_them() {
        let kinds = [
            "a_b", "ab", "a_c", "aa", "a1", "a_", "b", "ba_z", "baz", "b_az",
        ];
        for (i, kind) in kinds.iter().enumerate() {
            Spi::run(&format!(
                "insert into bizos.id_kinds (kind, prefix, width) values ('{kind}', 'K{i}', {})",
                3 + i
            ))
            .unwrap();
        }
        for (i, kind) in kinds.iter().enumerate() {
            let got = one(&format!("select bizos.next_id('{kind}', {T1})"));
            let (prefix, n) = got.rsplit_once('-').unwrap();
            assert!(prefix.starts_with(&format!("K{i}-")), "{kind}: {got}");
            assert_eq!(n.len(), 3 + i, "{kind}: {got}");
        }
        Spi::run("update bizos.id_kinds set prefix = 'RENAMED' where kind = 'ab'").unwrap();
        assert!(one(&format!("select bizos.next_id('ab', {T1})")).starts_with("RENAMED-"));
        for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Jakarta"] {
            Spi::run(&format!("set local time zone '{zone}'")).unwrap();
            let year = one("select extract(year from now())::text");
            let got = one(&format!("select bizos.next_id('b', {T1})"));
            assert!(got.starts_with(&format!("K6-{year}-")), "{zone}: {got}");
        }
    }

    #[pg_test(error = "unknown business number kind \"nope\"")]
    fn unknown_kinds_are_an_error() {
        one(&format!("select bizos.next_id('nope', {T1})"));
    }

    #[pg_test]
    fn the_trigger_fills_and_protects_the_number() {
        setup();
        Spi::run(
            "create table t_leads (tenant_id uuid not null, lead_no text, note text);
             create trigger t_leads_no before insert or update on t_leads
               for each row execute function bizos.assign_business_id('t_lead', 'lead_no')",
        )
        .unwrap();
        let no = one(&format!(
            "insert into t_leads (tenant_id, note) values ({T1}, 'x') returning lead_no"
        ));
        assert!(no.starts_with("LEAD-") && no.ends_with("-000001"), "{no}");
        Spi::run("update t_leads set note = 'y'").unwrap();
        let rejected = PgTryBuilder::new(|| {
            Spi::run("update t_leads set lead_no = 'LEAD-1999-000001'")
                .map(|_| false)
                .unwrap_or(false)
        })
        .catch_others(|_| true)
        .execute();
        assert!(rejected, "changing the number must fail");
    }

    #[pg_test(error = "t_leads.lead_no is assigned by the database; do not send it")]
    fn client_supplied_numbers_are_rejected() {
        setup();
        Spi::run(
            "create table t_leads (tenant_id uuid not null, lead_no text);
             create trigger t_leads_no before insert or update on t_leads
               for each row execute function bizos.assign_business_id('t_lead', 'lead_no')",
        )
        .unwrap();
        Spi::run(&format!(
            "insert into t_leads values ({T1}, 'LEAD-2026-999999')"
        ))
        .unwrap();
    }
}
