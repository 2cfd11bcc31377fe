//! `bizos.uuid_v7()`: row keys ordered by time (the layout and the
//! ordering rule: `bizos_core::uuid7`). The default of the row keys that
//! the write path inserts most (migration V37).

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use bizos_core::uuid7::Uuid7Clock;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode as Code};

use crate::error::raise;

thread_local! {
    /// This backend's keys rise strictly; another backend's keys of the
    /// same millisecond interleave with them.
    static CLOCK: Cell<Uuid7Clock> = Cell::new(Uuid7Clock::default());
}

/// A new UUID of version 7: Unix milliseconds and their fraction, then 62
/// bits from PostgreSQL's strong random source (as `gen_random_uuid()`).
#[pg_extern(volatile, parallel_safe)]
fn uuid_v7() -> pgrx::Uuid {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut random = [0u8; 8];
    // SAFETY: writes `random.len()` bytes into the buffer.
    if !unsafe { pg_sys::pg_strong_random(random.as_mut_ptr().cast(), random.len()) } {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "could not generate random values",
            None,
        );
    }
    let id = CLOCK.with(|c| {
        let mut clock = c.get();
        let id = clock.next(micros, random);
        c.set(clock);
        id
    });
    pgrx::Uuid::from_bytes(id)
}
