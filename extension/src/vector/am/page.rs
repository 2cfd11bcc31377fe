//! On-disk layout of the IVF index, in standard PostgreSQL pages.
//!
//! - block 0, the meta page: [`Meta`] in the page contents (below `pd_lower`,
//!   so generic WAL and full-page images keep it);
//! - blocks `1..=centroid_pages`: one item per list, [`CentroidHead`]
//!   followed by the centroid's `dims` floats, lists numbered in item order;
//! - every other block: a list page, items [`ListHead`] (the heap TID)
//!   followed by the vector (normalised for cosine indexes); the pages of a
//!   list form a chain through [`Special::next`], and the centroid item
//!   points at the chain's first and last page (inserts append to the last);
//! - since version 2, each list also has a chain of code pages: per vector
//!   a [`CodeHead`] (the heap TID, where the vector item is, the factors of
//!   its estimate) followed by its one-bit code (`bizos_core::vector::
//!   rabitq`). A scan reads the codes and only the vector items it
//!   re-ranks. Vector items therefore never move: vacuum deletes them
//!   without compacting the line pointers, and a re-ranked vector item
//!   counts only when its heap TID is the code's.
//!
//! Version 1 indexes (built before the codes) are still read and written:
//! their centroid items lack the code chain and their lists are scanned
//! whole, as then.
//!
//! Every page has [`Special`] at its end, whose `kind` tells them apart
//! (vacuum walks all blocks and only touches list and code pages).

use bizos_core::vector::rabitq::{self, Factors};
use pgrx::pg_sys;

pub const META_BLOCK: pg_sys::BlockNumber = 0;
pub const MAGIC: u32 = 0x4269_5646; // "BiVF"
/// The version new builds write; [`VERSION_FLAT`] indexes are read too.
pub const VERSION: u32 = 2;
pub const VERSION_FLAT: u32 = 1;

pub const KIND_META: u16 = 1;
pub const KIND_CENTROIDS: u16 = 2;
pub const KIND_LIST: u16 = 3;
pub const KIND_CODES: u16 = 4;

pub const BLCKSZ: usize = pg_sys::BLCKSZ as usize;

/// Most dimensions an indexed vector may have: one centroid item plus its
/// line pointer must fit in a page.
pub const INDEX_MAX_DIMS: usize = 2000;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub magic: u32,
    pub version: u32,
    /// Dimension of every vector; 0 when the index was built empty on a
    /// column without typmod (then any dimension is accepted, one list).
    pub dims: u32,
    pub lists: u32,
    /// `Metric::code()` of the operator class.
    pub metric: i32,
    pub centroid_pages: u32,
    /// Differs between any two builds (time and pid): backends cache the
    /// centroids of an index under it (see `index::load`).
    pub build_id: u64,
    /// Rows of the table when the lists were trained (the build's rows);
    /// 0 for an index built on an empty table and for indexes built before
    /// this field (their meta page is zero past `build_id`), which is read
    /// as "never trained".
    pub trained_rows: u64,
    /// Rows of the longest list at the build (0 when unknown, as above).
    pub trained_longest: u32,
    pub reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Special {
    pub next: pg_sys::BlockNumber,
    pub kind: u16,
    pub reserved: u16,
}

/// The head of a centroid item: the list's vector chain and (version 2)
/// its code chain, each as first and last page. A version 1 item has only
/// the first two fields; [`split_centroid_item`] reads it with no code
/// chain.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CentroidHead {
    pub first: pg_sys::BlockNumber,
    pub last: pg_sys::BlockNumber,
    pub code_first: pg_sys::BlockNumber,
    pub code_last: pg_sys::BlockNumber,
}

impl CentroidHead {
    pub fn has_codes(&self) -> bool {
        self.code_first != pg_sys::InvalidBlockNumber
    }
}

/// The head of a code item, followed by `rabitq::code_bytes(dims)` bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CodeHead {
    pub tid: ListHead,
    /// Where the vector item is (a list page of the same list).
    pub vector_block: u32,
    pub vector_offset: u16,
    pub reserved: u16,
    pub factors: Factors,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ListHead {
    pub block: u32,
    pub offset: u16,
    pub reserved: u16,
}

pub fn centroid_item_size(dims: usize) -> usize {
    std::mem::size_of::<CentroidHead>() + 4 * dims
}

pub fn code_item_size(dims: usize) -> usize {
    std::mem::size_of::<CodeHead>() + rabitq::code_bytes(dims)
}

pub fn list_item_size(dims: usize) -> usize {
    std::mem::size_of::<ListHead>() + 4 * dims
}

impl ListHead {
    pub fn from_tid(tid: &pg_sys::ItemPointerData) -> ListHead {
        let block = (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo);
        ListHead {
            block,
            offset: tid.ip_posid,
            reserved: 0,
        }
    }

    pub fn tid(&self) -> pg_sys::ItemPointerData {
        pg_sys::ItemPointerData {
            ip_blkid: pg_sys::BlockIdData {
                bi_hi: (self.block >> 16) as u16,
                bi_lo: self.block as u16,
            },
            ip_posid: self.offset,
        }
    }
}

/// Initialises `page` (a buffer's page or a private copy) as an empty page
/// of `kind`.
///
/// # Safety
/// `page` points at `BLCKSZ` writable bytes.
pub unsafe fn init(page: pg_sys::Page, kind: u16) {
    unsafe {
        pg_sys::PageInit(page, BLCKSZ, std::mem::size_of::<Special>());
        *special(page) = Special {
            next: pg_sys::InvalidBlockNumber,
            kind,
            reserved: 0,
        };
    }
}

/// # Safety
/// `page` is an initialised page of this index.
pub unsafe fn special(page: pg_sys::Page) -> *mut Special {
    unsafe { pg_sys::PageGetSpecialPointer(page).cast::<Special>() }
}

/// The kind of `page`, 0 for a new (all-zero) page.
///
/// # Safety
/// `page` points at a page of this index.
pub unsafe fn kind(page: pg_sys::Page) -> u16 {
    unsafe {
        if pg_sys::PageIsNew(page) {
            0
        } else {
            (*special(page)).kind
        }
    }
}

/// Writes the meta page contents and moves `pd_lower` past them.
///
/// # Safety
/// `page` is an initialised meta page.
pub unsafe fn write_meta(page: pg_sys::Page, meta: Meta) {
    unsafe {
        let contents = pg_sys::PageGetContents(page);
        contents.cast::<Meta>().write_unaligned(meta);
        let header = page.cast::<pg_sys::PageHeaderData>();
        (*header).pd_lower =
            (contents.add(std::mem::size_of::<Meta>()) as usize - page as usize) as u16;
    }
}

/// # Safety
/// `page` is this index's meta page.
pub unsafe fn read_meta(page: pg_sys::Page) -> Meta {
    unsafe {
        pg_sys::PageGetContents(page)
            .cast::<Meta>()
            .read_unaligned()
    }
}

/// Items of a page as (offset number, bytes).
///
/// # Safety
/// `page` is an initialised page, locked for as long as the slices live.
pub unsafe fn items<'a>(
    page: pg_sys::Page,
) -> impl Iterator<Item = (pg_sys::OffsetNumber, &'a [u8])> {
    unsafe {
        let max = pg_sys::PageGetMaxOffsetNumber(page);
        (1..=max).filter_map(move |off| item(page, off).map(|bytes| (off, bytes)))
    }
}

/// The item at `off` of `page`, if it is a live item.
///
/// # Safety
/// `page` is an initialised page, locked for as long as the slice lives.
pub unsafe fn item<'a>(page: pg_sys::Page, off: pg_sys::OffsetNumber) -> Option<&'a [u8]> {
    unsafe {
        if off == 0 || off > pg_sys::PageGetMaxOffsetNumber(page) {
            return None;
        }
        let id = pg_sys::PageGetItemId(page, off);
        if (*id).lp_flags() != pg_sys::LP_NORMAL {
            return None;
        }
        let ptr = pg_sys::PageGetItem(page, id) as *const u8;
        Some(std::slice::from_raw_parts(ptr, (*id).lp_len() as usize))
    }
}

/// Adds `item` to `page`: its offset, None when it does not fit.
///
/// # Safety
/// `page` is an initialised page, locked exclusively (or private).
pub unsafe fn add_item(page: pg_sys::Page, item: &[u8]) -> Option<pg_sys::OffsetNumber> {
    unsafe {
        let off = pg_sys::PageAddItemExtended(
            page,
            item.as_ptr() as pg_sys::Item,
            item.len(),
            pg_sys::InvalidOffsetNumber,
            0,
        );
        (off != pg_sys::InvalidOffsetNumber).then_some(off)
    }
}

/// The head of a list item and its vector.
pub fn split_list_item(item: &[u8]) -> (ListHead, &[f32]) {
    split(item)
}

/// The head of a centroid item of an index of `version` and its centroid.
pub fn split_centroid_item(version: u32, item: &[u8]) -> (CentroidHead, &[f32]) {
    if version == VERSION_FLAT {
        let (head, v) = split::<[pg_sys::BlockNumber; 2]>(item);
        let head = CentroidHead {
            first: head[0],
            last: head[1],
            code_first: pg_sys::InvalidBlockNumber,
            code_last: pg_sys::InvalidBlockNumber,
        };
        return (head, v);
    }
    split(item)
}

/// The head of a code item and its code.
pub fn split_code_item(item: &[u8]) -> (CodeHead, &[u8]) {
    split_head(item)
}

/// The head `H` at the start of an item, and the bytes after it.
fn split_head<H: Copy>(item: &[u8]) -> (H, &[u8]) {
    let h = std::mem::size_of::<H>();
    assert!(item.len() >= h, "malformed IVF index item");
    // SAFETY: the item has room for H.
    let head = unsafe { item.as_ptr().cast::<H>().read_unaligned() };
    (head, &item[h..])
}

fn split<H: Copy>(item: &[u8]) -> (H, &[f32]) {
    let (head, rest) = split_head::<H>(item);
    assert!(rest.len().is_multiple_of(4), "malformed IVF index item");
    // SAFETY: items start MAXALIGNed, so the floats after the 8- or 16-byte
    // head are 4-byte aligned.
    let floats = unsafe { std::slice::from_raw_parts(rest.as_ptr().cast::<f32>(), rest.len() / 4) };
    (head, floats)
}

/// Serialises a code head and its code into one item.
pub fn make_code_item(head: CodeHead, code: &[u8]) -> Vec<u8> {
    make_raw(head, code)
}

/// Serialises a head and a vector into one item.
pub fn make_item<H: Copy>(head: H, v: &[f32]) -> Vec<u8> {
    // SAFETY: any f32 is 4 plain bytes.
    let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 4 * v.len()) };
    make_raw(head, bytes)
}

fn make_raw<H: Copy>(head: H, payload: &[u8]) -> Vec<u8> {
    let h = std::mem::size_of::<H>();
    let mut out = vec![0u8; h + payload.len()];
    // SAFETY: `out` has room for H at its start.
    unsafe { out.as_mut_ptr().cast::<H>().write_unaligned(head) };
    out[h..].copy_from_slice(payload);
    out
}
