//! The row of a BEFORE INSERT OR UPDATE row trigger written in Rust, read
//! and changed in place: its columns by name, their datums, and the new row
//! with some of them replaced (`heap_modify_tuple_by_cols`: no copy of the
//! row into Rust values, no conversion of the other columns). The row
//! triggers that fill a column use it (`assign_business_id`, the row
//! stamps).

use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode as Code, PgTupleDesc};

use crate::error::raise;

/// The trigger's relation, its new row and, for an UPDATE, its old row.
pub(crate) struct BeforeRow {
    relation: pg_sys::Relation,
    desc: pg_sys::TupleDesc,
    pub old: Option<pg_sys::HeapTuple>,
    pub new: pg_sys::HeapTuple,
}

impl BeforeRow {
    /// The rows of `trigger`; an error naming `function` when it is not a
    /// row-level BEFORE INSERT OR UPDATE trigger.
    pub fn of(trigger: &pgrx::PgTrigger<'_>, function: &str) -> BeforeRow {
        let data = trigger.trigger_data();
        let before_row = data.tg_event & pg_sys::TRIGGER_EVENT_ROW != 0
            && data.tg_event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_BEFORE;
        let (old, new) = match data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT if before_row => (None, data.tg_trigtuple),
            pg_sys::TRIGGER_EVENT_UPDATE if before_row => {
                (Some(data.tg_trigtuple), data.tg_newtuple)
            }
            _ => raise(
                Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
                format!("{function} must be a row-level BEFORE INSERT OR UPDATE trigger"),
                None,
            ),
        };
        // SAFETY: the relation of a row trigger is open while it runs.
        let desc = unsafe { (*data.tg_relation).rd_att };
        BeforeRow {
            relation: data.tg_relation,
            desc,
            old,
            new,
        }
    }

    /// The table's name, for messages.
    pub fn table(&self) -> String {
        // SAFETY: the trigger's open relation.
        unsafe { pgrx::PgRelation::from_pg(self.relation) }
            .name()
            .to_owned()
    }

    /// The attribute number of the live column `column`, if there is one.
    pub fn find(&self, column: &str) -> Option<i32> {
        crate::rows::column_index(self.desc, column).map(|i| i as i32 + 1)
    }

    /// The attribute number of `column`, or an error naming the table.
    pub fn column(&self, column: &str) -> i32 {
        self.find(column).unwrap_or_else(|| {
            raise(
                Code::ERRCODE_UNDEFINED_COLUMN,
                format!("{} has no column {column}", self.table()),
                None,
            )
        })
    }

    /// The attribute number of `column`, which must be of type `type_oid`
    /// (`type_name` in the message).
    pub fn typed_column(&self, column: &str, type_oid: pg_sys::Oid, type_name: &str) -> i32 {
        let attnum = self.column(column);
        // SAFETY: `attnum` numbers one of the descriptor's attributes.
        let att = unsafe {
            (*self.desc).attrs.as_slice((*self.desc).natts as usize)[attnum as usize - 1]
        };
        if att.atttypid != type_oid {
            raise(
                Code::ERRCODE_DATATYPE_MISMATCH,
                format!("{}.{column} must be of type {type_name}", self.table()),
                None,
            );
        }
        attnum
    }

    /// The datum of attribute `attnum` of `tuple` (the old or the new row)
    /// and whether it is NULL.
    pub fn get(&self, tuple: pg_sys::HeapTuple, attnum: i32) -> (pg_sys::Datum, bool) {
        let mut null = false;
        // SAFETY: `tuple` is one of the trigger's rows, described by `desc`.
        let d = unsafe { pg_sys::heap_getattr(tuple, attnum, self.desc, &mut null) };
        (d, null)
    }

    /// The new row as it came.
    pub fn unchanged(self) -> PgHeapTuple<'static, AllocatedByPostgres> {
        // SAFETY: the trigger's new row, described by `desc`.
        unsafe { PgHeapTuple::from_heap_tuple(PgTupleDesc::from_pg_unchecked(self.desc), self.new) }
    }

    /// The new row with attributes `cols` replaced by `values` (NULL where
    /// `nulls`): a palloc'd copy in the trigger's memory context.
    pub fn replaced(
        self,
        mut cols: Vec<i32>,
        mut values: Vec<pg_sys::Datum>,
        mut nulls: Vec<bool>,
    ) -> PgHeapTuple<'static, AllocatedByPostgres> {
        // SAFETY: attribute numbers of `desc` with datums of their types.
        unsafe {
            let tuple = pg_sys::heap_modify_tuple_by_cols(
                self.new,
                self.desc,
                cols.len() as i32,
                cols.as_mut_ptr(),
                values.as_mut_ptr(),
                nulls.as_mut_ptr(),
            );
            PgHeapTuple::from_heap_tuple(PgTupleDesc::from_pg_unchecked(self.desc), tuple)
        }
    }
}
