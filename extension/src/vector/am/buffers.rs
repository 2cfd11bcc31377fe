//! Buffer and WAL helpers: a locked buffer released on drop, generic WAL
//! records (full-page diffs that PostgreSQL replays without any redo code
//! of ours), and relation extension.

use pgrx::pg_sys;

/// A pinned and locked buffer, unlocked and released when dropped.
pub struct Locked {
    pub buf: pg_sys::Buffer,
}

impl Locked {
    /// Reads `block` of the main fork and locks it.
    ///
    /// # Safety
    /// `rel` is an open index relation and `block` exists.
    pub unsafe fn read(
        rel: pg_sys::Relation,
        block: pg_sys::BlockNumber,
        exclusive: bool,
    ) -> Locked {
        unsafe {
            Locked::read_with(
                rel,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                exclusive,
                std::ptr::null_mut(),
            )
        }
    }

    /// # Safety
    /// As [`Locked::read`]; `strategy` may be null.
    pub unsafe fn read_with(
        rel: pg_sys::Relation,
        fork: pg_sys::ForkNumber::Type,
        block: pg_sys::BlockNumber,
        exclusive: bool,
        strategy: pg_sys::BufferAccessStrategy,
    ) -> Locked {
        unsafe {
            let buf = pg_sys::ReadBufferExtended(
                rel,
                fork,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                strategy,
            );
            pg_sys::LockBuffer(buf, lock_mode(exclusive));
            Locked { buf }
        }
    }

    /// Extends the relation's `fork` by one page and locks it exclusively.
    ///
    /// # Safety
    /// `rel` is an open index relation.
    pub unsafe fn extend(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type) -> Locked {
        unsafe {
            pg_sys::LockRelationForExtension(rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            let buf = pg_sys::ReadBufferExtended(
                rel,
                fork,
                pg_sys::InvalidBlockNumber,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            );
            pg_sys::LockBuffer(buf, lock_mode(true));
            pg_sys::UnlockRelationForExtension(rel, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
            Locked { buf }
        }
    }

    pub fn page(&self) -> pg_sys::Page {
        unsafe { pg_sys::BufferGetPage(self.buf) }
    }

    pub fn block(&self) -> pg_sys::BlockNumber {
        unsafe { pg_sys::BufferGetBlockNumber(self.buf) }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        unsafe { pg_sys::UnlockReleaseBuffer(self.buf) }
    }
}

fn lock_mode(exclusive: bool) -> i32 {
    if exclusive {
        pg_sys::BUFFER_LOCK_EXCLUSIVE as i32
    } else {
        pg_sys::BUFFER_LOCK_SHARE as i32
    }
}

/// One generic WAL record over up to four exclusively locked buffers:
/// changes go to the page copies that [`Wal::page`] returns and reach the
/// buffers (and the WAL) atomically in [`Wal::finish`]; dropped unfinished
/// (an error in between), the changes are discarded.
pub struct Wal {
    state: *mut pg_sys::GenericXLogState,
}

impl Wal {
    /// # Safety
    /// `rel` is an open index relation.
    pub unsafe fn start(rel: pg_sys::Relation) -> Wal {
        Wal {
            state: unsafe { pg_sys::GenericXLogStart(rel) },
        }
    }

    /// The page copy to modify; `fresh` logs a full image (a new page).
    pub fn page(&mut self, buf: &Locked, fresh: bool) -> pg_sys::Page {
        let flags = if fresh {
            pg_sys::GENERIC_XLOG_FULL_IMAGE as i32
        } else {
            0
        };
        unsafe { pg_sys::GenericXLogRegisterBuffer(self.state, buf.buf, flags) }
    }

    pub fn finish(mut self) {
        let state = std::mem::replace(&mut self.state, std::ptr::null_mut());
        unsafe { pg_sys::GenericXLogFinish(state) };
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if !self.state.is_null() {
            unsafe { pg_sys::GenericXLogAbort(self.state) }
        }
    }
}

/// Blocks in the main fork of `rel`.
///
/// # Safety
/// `rel` is an open relation.
pub unsafe fn nblocks(rel: pg_sys::Relation) -> pg_sys::BlockNumber {
    unsafe { pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM) }
}
