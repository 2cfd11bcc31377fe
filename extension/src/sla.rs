//! C4: SLA events by trigger. The business schema attaches them with
//! `key=value` arguments naming its tables and columns:
//!
//! * `bizos.sla_ticket_events(...)` on the ticket table, BEFORE UPDATE and
//!   AFTER UPDATE: every status change → `STATUS_CHANGE {from, to, column}`;
//!   entering a resolved state → `RESOLVED`, a closed state → `CLOSED`;
//!   BEFORE stamps `resolved_at` on resolution and clears it on reopening.
//!   Arguments: `status_columns` (default `status`), `key` (ticket id column,
//!   default `id`), `events` (default `sla_events`), `resolved` (default
//!   `RESOLVED`), `closed` (default `CLOSED`), `resolved_at`.
//! * `bizos.sla_message_events(...)` on the message table, AFTER INSERT: the
//!   first message by someone other than the ticket's creator stamps
//!   `first_response_at` and records `FIRST_RESPONSE`. Arguments: `tickets`,
//!   `events`, `ticket` (the id column in both tables, default `ticket_id`),
//!   `author` (default `author_user_id`), `creator` (default `created_by`),
//!   `first_response_at`.
//!
//! The events table has columns (tenant_id, <ticket id column>, event_type,
//! metadata jsonb, actor_user_id, occurred_at). Writes run as the owner of
//! the table the trigger fires on, and only into tables of that same owner,
//! so a trigger can never write where its table's owner could not. Those
//! statements qualify their operators (`operator(pg_catalog.=)`), so an
//! operator of the caller's search path never runs with the owner's rights.

use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::{pg_sys, PgSqlErrorCode as Code};

use crate::error::{query_opt, raise, OrRaise};
use crate::privilege::as_role;

struct Args(HashMap<String, String>);

impl Args {
    fn parse(trigger: &pgrx::PgTrigger<'_>, known: &[&str]) -> Args {
        let mut map = HashMap::new();
        for a in trigger.extra_args().or_raise("reading trigger arguments") {
            let Some((k, v)) = a.split_once('=') else {
                raise(
                    Code::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("SLA trigger argument {a:?} is not key=value"),
                    None,
                )
            };
            if !known.contains(&k) {
                raise(
                    Code::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("unknown SLA trigger argument {k:?}"),
                    Some(&format!("known: {}", known.join(", "))),
                );
            }
            map.insert(k.to_owned(), v.trim().to_owned());
        }
        Args(map)
    }

    fn get<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.0.get(key).map_or(default, String::as_str)
    }

    fn list(&self, key: &str, default: &str) -> Vec<String> {
        self.get(key, default)
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

struct Context {
    schema: String,
    owner: pg_sys::Oid,
}

impl Context {
    fn of(trigger: &pgrx::PgTrigger<'_>) -> Context {
        let data = trigger.trigger_data();
        // SAFETY: the trigger's relation is open and valid.
        let owner = unsafe { (*(*data.tg_relation).rd_rel).relowner };
        Context {
            schema: trigger.table_schema().unwrap_or_default(),
            owner,
        }
    }

    /// A table named in an argument, qualified with the trigger table's
    /// schema unless already qualified, and owned by the same role.
    fn table(&self, name: &str) -> String {
        let qualified = if name.contains('.') {
            name.to_owned()
        } else {
            format!(
                "{}.{}",
                quote_identifier(&self.schema),
                quote_identifier(name)
            )
        };
        let owner = query_opt::<pg_sys::Oid>(
            "select c.relowner from pg_catalog.pg_class c
              where c.oid operator(pg_catalog.=) pg_catalog.to_regclass($1)",
            &[qualified.as_str().into()],
            "resolving an SLA table",
        )
        .unwrap_or_else(|| {
            raise(
                Code::ERRCODE_UNDEFINED_TABLE,
                format!("SLA table {qualified} does not exist"),
                None,
            )
        });
        if owner != self.owner {
            raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "SLA table {qualified} must have the same owner as the table of the trigger"
                ),
                None,
            );
        }
        qualified
    }
}

fn insert_event(
    events: &str,
    ticket_col: &str,
    tenant: pgrx::Uuid,
    ticket: pgrx::Uuid,
    event_type: &str,
    metadata: serde_json::Value,
) {
    let sql = format!(
        "insert into {events} (tenant_id, {col}, event_type, metadata, actor_user_id, occurred_at)
         values ($1, $2, $3, $4, bizos.uid(), pg_catalog.now())",
        col = quote_identifier(ticket_col)
    );
    Spi::run_with_args(
        &sql,
        &[
            tenant.into(),
            ticket.into(),
            event_type.into(),
            pgrx::JsonB(metadata).into(),
        ],
    )
    .or_raise("recording an SLA event");
}

fn now() -> pgrx::datum::TimestampWithTimeZone {
    // SAFETY: reads the transaction start time (now()).
    let ts = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    pgrx::datum::TimestampWithTimeZone::try_from(ts).unwrap_or_else(|_| {
        raise(
            Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "invalid current time",
            None,
        )
    })
}

#[pg_trigger]
fn sla_ticket_events<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, pgrx::datum::TryFromDatumError> {
    let args = Args::parse(
        trigger,
        &[
            "status_columns",
            "key",
            "events",
            "resolved",
            "closed",
            "resolved_at",
        ],
    );
    let (Some(old), Some(new)) = (trigger.old(), trigger.new()) else {
        raise(
            Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
            "sla_ticket_events is a row-level UPDATE trigger",
            None,
        )
    };
    let resolved = args.list("resolved", "RESOLVED");
    let closed = args.list("closed", "CLOSED");
    let done = |s: &Option<String>| {
        s.as_ref()
            .is_some_and(|s| resolved.contains(s) || closed.contains(s))
    };
    let mut changes = Vec::new();
    for col in args.list("status_columns", "status") {
        let before: Option<String> = old.get_by_name(&col)?;
        let after: Option<String> = new.get_by_name(&col)?;
        if before != after {
            changes.push((col, before, after));
        }
    }
    let mut new = new.into_owned();
    let before_trigger = matches!(trigger.when(), Ok(pgrx::PgTriggerWhen::Before));
    if before_trigger {
        let stamp = args.get("resolved_at", "resolved_at");
        for (_, before, after) in &changes {
            if done(after) && !done(before) {
                let current: Option<pgrx::datum::TimestampWithTimeZone> = new.get_by_name(stamp)?;
                if current.is_none() {
                    new.set_by_name(stamp, now())?;
                }
            } else if done(before) && !done(after) {
                clear(&mut new, stamp)?;
            }
        }
        return Ok(Some(new));
    }
    if changes.is_empty() {
        return Ok(Some(new));
    }
    let key = args.get("key", "id");
    let tenant: pgrx::Uuid = new.get_by_name("tenant_id")?.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            "ticket has no tenant_id",
            None,
        )
    });
    let ticket: pgrx::Uuid = new.get_by_name(key)?.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("ticket has no {key}"),
            None,
        )
    });
    let ctx = Context::of(trigger);
    as_role(ctx.owner, || {
        let events = ctx.table(args.get("events", "sla_events"));
        for (col, before, after) in &changes {
            insert_event(
                &events,
                key,
                tenant,
                ticket,
                "STATUS_CHANGE",
                serde_json::json!({"column": col, "from": before, "to": after}),
            );
            let entered = |set: &[String]| {
                after.as_ref().is_some_and(|a| set.contains(a))
                    && !before.as_ref().is_some_and(|b| set.contains(b))
            };
            if entered(&resolved) {
                insert_event(
                    &events,
                    key,
                    tenant,
                    ticket,
                    "RESOLVED",
                    serde_json::json!({"column": col, "from": before}),
                );
            }
            if entered(&closed) {
                insert_event(
                    &events,
                    key,
                    tenant,
                    ticket,
                    "CLOSED",
                    serde_json::json!({"column": col, "from": before}),
                );
            }
        }
    });
    Ok(Some(new))
}

/// Sets a column to NULL.
fn clear(
    tuple: &mut PgHeapTuple<'_, AllocatedByRust>,
    column: &str,
) -> Result<(), pgrx::datum::TryFromDatumError> {
    tuple.set_by_name::<Option<pgrx::datum::TimestampWithTimeZone>>(column, None)
}

#[pg_trigger]
fn sla_message_events<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let args = Args::parse(
        trigger,
        &[
            "tickets",
            "events",
            "ticket",
            "author",
            "creator",
            "first_response_at",
        ],
    );
    let Some(message) = trigger.new() else {
        raise(
            Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
            "sla_message_events is a row-level AFTER INSERT trigger",
            None,
        )
    };
    let ticket_col = args.get("ticket", "ticket_id");
    let tenant: pgrx::Uuid = message.get_by_name("tenant_id")?.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            "message has no tenant_id",
            None,
        )
    });
    let Some(ticket) = message.get_by_name::<pgrx::Uuid>(ticket_col)? else {
        return Ok(None);
    };
    let author: Option<pgrx::Uuid> = message.get_by_name(args.get("author", "author_user_id"))?;
    let ctx = Context::of(trigger);
    as_role(ctx.owner, || {
        let tickets = ctx.table(args.get("tickets", "tickets"));
        let events = ctx.table(args.get("events", "sla_events"));
        let stamp = quote_identifier(args.get("first_response_at", "first_response_at"));
        let creator = quote_identifier(args.get("creator", "created_by"));
        let key = quote_identifier(ticket_col);
        // Only the first qualifying message stamps: the row lock of the
        // update serialises concurrent replies.
        let stamped = query_opt::<bool>(
            &format!(
                "update {tickets} set {stamp} = pg_catalog.now()
                  where tenant_id operator(pg_catalog.=) $1 and {key} operator(pg_catalog.=) $2
                    and {stamp} is null and $3 is not null
                    and ({creator} is null or {creator} operator(pg_catalog.<>) $3)
                 returning true"
            ),
            &[tenant.into(), ticket.into(), author.into()],
            "stamping the first response",
        )
        .unwrap_or(false);
        if stamped {
            insert_event(
                &events,
                ticket_col,
                tenant,
                ticket,
                "FIRST_RESPONSE",
                serde_json::json!({"author": author.map(|a| a.to_string())}),
            );
        }
    });
    Ok(None)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const T: &str = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab";
    const CREATOR: &str = "0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01";
    const AGENT: &str = "11111111-2222-4333-8444-555555555555";
    const TICKET: &str = "99999999-8888-4777-8666-555555555555";

    fn setup() {
        Spi::run(
            "create table t_tickets (tenant_id uuid not null, ticket_id uuid not null, created_by uuid,
                                     inquiry_status text, ticket_status text,
                                     first_response_at timestamptz, resolved_at timestamptz,
                                     primary key (tenant_id, ticket_id));
             create table t_messages (tenant_id uuid not null, ticket_id uuid not null, author_user_id uuid, body text);
             create table t_events (tenant_id uuid not null, ticket_id uuid not null, event_type text not null,
                                    metadata jsonb, actor_user_id uuid, occurred_at timestamptz not null);
             create trigger t_tickets_sla_stamp before update on t_tickets for each row
               execute function bizos.sla_ticket_events('status_columns=inquiry_status,ticket_status',
                 'key=ticket_id', 'events=t_events');
             create trigger t_tickets_sla after update on t_tickets for each row
               execute function bizos.sla_ticket_events('status_columns=inquiry_status,ticket_status',
                 'key=ticket_id', 'events=t_events');
             create trigger t_messages_sla after insert on t_messages for each row
               execute function bizos.sla_message_events('tickets=t_tickets', 'events=t_events');",
        )
        .unwrap();
        Spi::run(&format!(
            "insert into t_tickets (tenant_id, ticket_id, created_by, ticket_status) values ('{T}', '{TICKET}', '{CREATOR}', 'OPEN')"
        ))
        .unwrap();
    }

    fn events() -> Vec<String> {
        Spi::connect(|c| {
            c.select(
                "select event_type from t_events order by occurred_at, event_type",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap())
            .collect()
        })
    }

    fn message(author: &str) {
        Spi::run(&format!(
            "insert into t_messages values ('{T}', '{TICKET}', '{author}', 'hi')"
        ))
        .unwrap();
    }

    #[pg_test]
    fn the_first_reply_by_someone_else_is_the_first_response() {
        setup();
        message(CREATOR);
        assert!(
            events().is_empty(),
            "the creator's own message is no response"
        );
        message(AGENT);
        message(AGENT);
        assert_eq!(events(), ["FIRST_RESPONSE"]);
        assert!(
            Spi::get_one::<bool>("select first_response_at is not null from t_tickets")
                .unwrap()
                .unwrap()
        );
    }

    #[pg_test]
    fn status_changes_resolution_and_closing_are_events() {
        setup();
        Spi::run("update t_tickets set ticket_status = 'IN_PROGRESS'").unwrap();
        Spi::run("update t_tickets set ticket_status = 'RESOLVED'").unwrap();
        assert!(
            Spi::get_one::<bool>("select resolved_at is not null from t_tickets")
                .unwrap()
                .unwrap()
        );
        Spi::run("update t_tickets set ticket_status = 'IN_PROGRESS'").unwrap();
        assert!(
            Spi::get_one::<bool>("select resolved_at is null from t_tickets")
                .unwrap()
                .unwrap(),
            "reopening clears"
        );
        Spi::run("update t_tickets set ticket_status = 'CLOSED'").unwrap();
        let mut got = events();
        got.sort();
        let mut want = vec![
            "CLOSED",
            "RESOLVED",
            "STATUS_CHANGE",
            "STATUS_CHANGE",
            "STATUS_CHANGE",
            "STATUS_CHANGE",
        ];
        want.sort();
        assert_eq!(got, want);
        let meta = Spi::get_one::<pgrx::JsonB>(
            "select metadata from t_events where event_type = 'STATUS_CHANGE' and metadata->>'to' = 'RESOLVED'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            meta.0,
            serde_json::json!({"column": "ticket_status", "from": "IN_PROGRESS", "to": "RESOLVED"})
        );
    }

    #[pg_test(error = "unknown SLA trigger argument \"evnts\"")]
    fn arguments_are_checked() {
        setup();
        Spi::run(
            "create trigger t_bad after update on t_tickets for each row
               execute function bizos.sla_ticket_events('evnts=t_events');
             update t_tickets set ticket_status = 'IN_PROGRESS'",
        )
        .unwrap();
    }
}
