//! `ambuild` and `ambuildempty`: sample the table, train the lists with
//! k-means, then write every vector into the page chain of its nearest
//! list.
//!
//! Pages are written through shared buffers without WAL and logged in one
//! go at the end with `log_newpage_range` (as PostgreSQL's own index builds
//! do): a crash during the build leaves an index that was never committed,
//! a crash after it replays full page images.

use std::borrow::Cow;
use std::ffi::c_void;

use bizos_core::vector::kmeans::{self, KMeans};
use bizos_core::vector::rabitq::{self, Rotation};
use bizos_core::vector::rng::Rng;
use bizos_core::vector::{normalize, Metric};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as Code;

use super::buffers::{nblocks, Locked};
use super::index::{check_dims, metric_of, name, typmod_dims};
use super::options::{default_lists, lists_option};
use super::page::{self, CentroidHead, CodeHead, ListHead, Meta, BLCKSZ};
use crate::error::raise;
use crate::vector::types::elements;

/// Sample rows per list for k-means (as pgvector: enough for stable
/// centroids, little enough to train quickly).
const SAMPLE_PER_LIST: usize = 50;
/// Upper bound of the sample's memory.
const SAMPLE_MAX_BYTES: usize = 512 << 20;
const KMEANS_ITERATIONS: usize = 10;

/// The form in which an index stores and compares vectors of `metric`:
/// unit length for cosine, as given otherwise.
pub fn prepare(metric: Metric, v: &[f32]) -> Cow<'_, [f32]> {
    if metric == Metric::Cosine {
        let mut owned = v.to_vec();
        normalize(&mut owned);
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(v)
    }
}

/// A private page image, aligned like a buffer.
#[repr(C, align(8))]
struct PageImage([u8; BLCKSZ]);

impl PageImage {
    fn new(kind: u16) -> Box<PageImage> {
        let mut p = Box::new(PageImage([0; BLCKSZ]));
        unsafe { page::init(p.ptr(), kind) };
        p
    }

    fn ptr(&mut self) -> pg_sys::Page {
        self.0.as_mut_ptr().cast()
    }
}

struct Sampler {
    metric: Metric,
    dims: Option<usize>,
    cap: usize,
    sample: Vec<f32>,
    seen: u64,
    rng: Rng,
    tmp: pg_sys::MemoryContext,
}

/// A page chain being written: its first page, and its last page as a
/// private image (written out when full, or at the end).
struct Chain {
    kind: u16,
    first: pg_sys::BlockNumber,
    block: pg_sys::BlockNumber,
    image: Box<PageImage>,
}

impl Chain {
    unsafe fn new(rel: pg_sys::Relation, fork: pg_sys::ForkNumber::Type, kind: u16) -> Chain {
        let block = unsafe { new_page(rel, fork, kind) };
        Chain {
            kind,
            first: block,
            block,
            image: PageImage::new(kind),
        }
    }

    /// Appends `item`: where it went.
    unsafe fn push(
        &mut self,
        rel: pg_sys::Relation,
        fork: pg_sys::ForkNumber::Type,
        item: &[u8],
    ) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
        unsafe {
            if let Some(off) = page::add_item(self.image.ptr(), item) {
                return (self.block, off);
            }
            let next = new_page(rel, fork, self.kind);
            (*page::special(self.image.ptr())).next = next;
            write_image(rel, fork, self.block, &mut self.image);
            self.image = PageImage::new(self.kind);
            self.block = next;
            match page::add_item(self.image.ptr(), item) {
                Some(off) => (next, off),
                None => raise(
                    Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                    "a vector does not fit in an index page",
                    None,
                ),
            }
        }
    }
}

struct ListBuild {
    vectors: Chain,
    /// None for an index without codes (no dimension).
    codes: Option<Chain>,
}

struct Writer {
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    metric: Metric,
    dims: usize,
    centroids: Vec<f32>,
    build_id: u64,
    /// The codes' rotation and each centroid rotated by it.
    rotation: Option<Rotation>,
    rotated: Vec<Vec<f32>>,
    lists: Vec<ListBuild>,
    tuples: f64,
    /// Rows per list, and the rows the lists were trained on (the meta
    /// page records both for `bizos.ivf_index_state`).
    sizes: Vec<u32>,
    trained_rows: u64,
    tmp: pg_sys::MemoryContext,
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    unsafe {
        if nblocks(index) != 0 {
            raise(
                Code::ERRCODE_INTERNAL_ERROR,
                format!("index \"{}\" already contains data", name(index)),
                None,
            );
        }
        let metric = metric_of(index);
        let given = lists_option(index);
        // The sample's size before the rows are counted: from the given
        // lists, or from the planner's estimate of the rows.
        let expected = given.unwrap_or_else(|| default_lists(estimated_rows(heap)));
        let declared = typmod_dims(index);
        if let Some(d) = declared {
            check_index_dims(d);
        }
        let tmp = temp_context(c"bizos_ivf build tuple");

        let mut sampler = Sampler {
            metric,
            dims: declared,
            cap: expected * SAMPLE_PER_LIST,
            sample: Vec::new(),
            seen: 0,
            rng: Rng::new(0x5eed),
            tmp,
        };
        pg_sys::table_index_build_scan(
            heap,
            index,
            info,
            true,
            true,
            Some(sample_one),
            (&mut sampler as *mut Sampler).cast(),
            std::ptr::null_mut(),
        );
        let dims = sampler.dims.unwrap_or(0);
        let trained_rows = sampler.seen;
        let wanted = given.unwrap_or_else(|| default_lists(sampler.seen as f64));
        let centroids = if sampler.sample.is_empty() {
            vec![0.0; dims]
        } else {
            kmeans::train(
                &sampler.sample,
                dims,
                KMeans {
                    k: wanted,
                    max_iterations: KMEANS_ITERATIONS,
                    spherical: metric == Metric::Cosine,
                    seed: 42,
                },
            )
        };
        drop(sampler);

        let mut writer = Writer::start(
            index,
            pg_sys::ForkNumber::MAIN_FORKNUM,
            metric,
            dims,
            centroids,
        );
        writer.tmp = tmp;
        let heap_tuples = pg_sys::table_index_build_scan(
            heap,
            index,
            info,
            true,
            true,
            Some(add_one),
            (&mut writer as *mut Writer).cast(),
            std::ptr::null_mut(),
        );
        let index_tuples = writer.tuples;
        writer.trained_rows = trained_rows;
        writer.finish();
        pg_sys::MemoryContextDelete(tmp);

        let result = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBuildResult>())
            .cast::<pg_sys::IndexBuildResult>();
        (*result).heap_tuples = heap_tuples;
        (*result).index_tuples = index_tuples;
        result
    }
}

/// The planner's estimate of `heap`'s rows (also for a table never
/// analyzed: from its pages and row width).
unsafe fn estimated_rows(heap: pg_sys::Relation) -> f64 {
    let mut pages: pg_sys::BlockNumber = 0;
    let mut tuples = 0.0f64;
    let mut allvisfrac = 0.0f64;
    unsafe {
        pg_sys::estimate_rel_size(
            heap,
            std::ptr::null_mut(),
            &mut pages,
            &mut tuples,
            &mut allvisfrac,
        );
    }
    tuples
}

/// The init fork of an unlogged index: one empty list.
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    unsafe {
        let metric = metric_of(index);
        let dims = typmod_dims(index).unwrap_or(0);
        check_index_dims(dims);
        let tmp = temp_context(c"bizos_ivf buildempty");
        let mut writer = Writer::start(
            index,
            pg_sys::ForkNumber::INIT_FORKNUM,
            metric,
            dims,
            vec![0.0; dims],
        );
        writer.tmp = tmp;
        writer.finish();
        pg_sys::MemoryContextDelete(tmp);
    }
}

fn check_index_dims(dims: usize) {
    if dims > page::INDEX_MAX_DIMS {
        raise(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "bizos_ivf indexes vectors of at most {} dimensions, not {dims}",
                page::INDEX_MAX_DIMS
            ),
            None,
        );
    }
}

unsafe fn temp_context(label: &'static std::ffi::CStr) -> pg_sys::MemoryContext {
    unsafe {
        pg_sys::AllocSetContextCreateExtended(
            pg_sys::CurrentMemoryContext,
            label.as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    }
}

/// Runs `f` on the vector of a build-scan tuple inside `tmp` (detoasted
/// copies are freed per tuple).
unsafe fn with_vector(
    tmp: pg_sys::MemoryContext,
    values: *mut pg_sys::Datum,
    f: impl FnOnce(&[f32]),
) {
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo(tmp);
        f(elements(*values));
        pg_sys::MemoryContextSwitchTo(old);
        pg_sys::MemoryContextReset(tmp);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn sample_one(
    _index: pg_sys::Relation,
    _tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut c_void,
) {
    unsafe {
        if *isnull {
            return;
        }
        let s = &mut *state.cast::<Sampler>();
        let tmp = s.tmp;
        with_vector(tmp, values, |v| {
            let dims = *s.dims.get_or_insert_with(|| {
                check_index_dims(v.len());
                v.len()
            });
            check_dims(dims as u32, v.len());
            if s.sample.is_empty() {
                // Now that the dimension is known, bound the sample's memory.
                s.cap = s.cap.min(SAMPLE_MAX_BYTES / (4 * dims)).max(1);
                s.sample.reserve(s.cap.min(1 << 16) * dims);
            }
            s.seen += 1;
            let v = prepare(s.metric, v);
            let rows = s.sample.len() / dims;
            if rows < s.cap {
                s.sample.extend_from_slice(&v);
            } else {
                // Reservoir sampling: every row ends up in the sample with
                // the same probability.
                let j = s.rng.below(s.seen) as usize;
                if j < s.cap {
                    s.sample[j * dims..(j + 1) * dims].copy_from_slice(&v);
                }
            }
        });
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn add_one(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut c_void,
) {
    unsafe {
        if *isnull {
            return;
        }
        let w = &mut *state.cast::<Writer>();
        let tmp = w.tmp;
        let tid = *tid;
        with_vector(tmp, values, |v| w.add(&tid, v));
    }
}

impl Writer {
    /// Allocates the meta page, the centroid pages and the first pages of
    /// each list's chains.
    unsafe fn start(
        rel: pg_sys::Relation,
        fork: pg_sys::ForkNumber::Type,
        metric: Metric,
        dims: usize,
        centroids: Vec<f32>,
    ) -> Writer {
        unsafe {
            let nlists = centroids.len().checked_div(dims).unwrap_or(1);
            let meta = Locked::extend(rel, fork);
            assert_eq!(meta.block(), page::META_BLOCK, "the meta page is block 0");
            page::init(meta.page(), page::KIND_META);
            pg_sys::MarkBufferDirty(meta.buf);
            drop(meta);
            let per_page = centroids_per_page(dims);
            for _ in 0..nlists.div_ceil(per_page) {
                new_page(rel, fork, page::KIND_CENTROIDS);
            }
            let build_id =
                (pg_sys::GetCurrentTimestamp() as u64) ^ ((pg_sys::MyProcPid as u64) << 44);
            let rotation = (dims > 0).then(|| Rotation::new(dims, rabitq::ROTATION_SEED));
            let rotated = match &rotation {
                Some(r) => centroids.chunks_exact(dims).map(|c| r.apply(c)).collect(),
                None => Vec::new(),
            };
            let mut lists = Vec::with_capacity(nlists);
            for _ in 0..nlists {
                lists.push(ListBuild {
                    vectors: Chain::new(rel, fork, page::KIND_LIST),
                    codes: rotation
                        .is_some()
                        .then(|| Chain::new(rel, fork, page::KIND_CODES)),
                });
            }
            Writer {
                rel,
                fork,
                metric,
                dims,
                centroids,
                build_id,
                rotation,
                rotated,
                sizes: vec![0; lists.len()],
                lists,
                tuples: 0.0,
                trained_rows: 0,
                tmp: std::ptr::null_mut(),
            }
        }
    }

    fn add(&mut self, tid: &pg_sys::ItemPointerData, v: &[f32]) {
        check_dims(self.dims as u32, v.len());
        let v = prepare(self.metric, v);
        let i = if self.dims == 0 {
            0
        } else {
            kmeans::nearest(&self.centroids, self.dims, &v)
        };
        let head = ListHead::from_tid(tid);
        let item = page::make_item(head, &v);
        let (rel, fork) = (self.rel, self.fork);
        let list = &mut self.lists[i];
        self.sizes[i] += 1;
        let (block, off) = unsafe { list.vectors.push(rel, fork, &item) };
        if let (Some(codes), Some(rotation)) = (&mut list.codes, &self.rotation) {
            let d = self.dims;
            let code = code_item(
                self.metric,
                rotation,
                &self.centroids[i * d..(i + 1) * d],
                &self.rotated[i],
                &v,
                head,
                (block, off),
            );
            unsafe { codes.push(rel, fork, &code) };
        }
        self.tuples += 1.0;
    }

    /// Writes the lists' last pages, the centroids and the meta page, then
    /// WAL-logs the whole fork.
    unsafe fn finish(mut self) {
        unsafe {
            let (rel, fork) = (self.rel, self.fork);
            for list in &mut self.lists {
                for chain in std::iter::once(&mut list.vectors).chain(list.codes.as_mut()) {
                    write_image(rel, fork, chain.block, &mut chain.image);
                }
            }
            let per_page = centroids_per_page(self.dims);
            let nlists = self.lists.len();
            let mut centroid_pages = 0u32;
            for (p, chunk) in self.lists.chunks(per_page).enumerate() {
                let mut image = PageImage::new(page::KIND_CENTROIDS);
                for (j, list) in chunk.iter().enumerate() {
                    let i = p * per_page + j;
                    let c = &self.centroids[i * self.dims..(i + 1) * self.dims];
                    let none = pg_sys::InvalidBlockNumber;
                    let item = page::make_item(
                        CentroidHead {
                            first: list.vectors.first,
                            last: list.vectors.block,
                            code_first: list.codes.as_ref().map_or(none, |c| c.first),
                            code_last: list.codes.as_ref().map_or(none, |c| c.block),
                        },
                        c,
                    );
                    assert!(
                        page::add_item(image.ptr(), &item).is_some(),
                        "centroid item fits (per_page)"
                    );
                }
                centroid_pages += 1;
                write_image(rel, fork, centroid_pages, &mut image);
            }
            let mut image = PageImage::new(page::KIND_META);
            page::write_meta(
                image.ptr(),
                Meta {
                    magic: page::MAGIC,
                    version: page::VERSION,
                    dims: self.dims as u32,
                    lists: nlists as u32,
                    metric: self.metric.code(),
                    centroid_pages,
                    build_id: self.build_id,
                    trained_rows: self.trained_rows,
                    trained_longest: self.sizes.iter().copied().max().unwrap_or(0),
                    reserved: 0,
                },
            );
            write_image(rel, fork, page::META_BLOCK, &mut image);
            let permanent = (*(*rel).rd_rel).relpersistence
                == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char;
            if fork == pg_sys::ForkNumber::INIT_FORKNUM || permanent {
                let n = pg_sys::RelationGetNumberOfBlocksInFork(rel, fork);
                pg_sys::log_newpage_range(rel, fork, 0, n, true);
            }
        }
    }
}

/// Centroid items that fit in one page (each with its line pointer).
pub fn centroids_per_page(dims: usize) -> usize {
    let usable = BLCKSZ - 24 - std::mem::size_of::<page::Special>();
    let item = page::centroid_item_size(dims).div_ceil(8) * 8 + 4;
    (usable / item).max(1)
}

/// The code item of vector `v` (prepared) of the list of `centroid`, whose
/// vector item is at `place`.
pub fn code_item(
    metric: Metric,
    rotation: &Rotation,
    centroid: &[f32],
    rotated: &[f32],
    v: &[f32],
    tid: ListHead,
    place: (pg_sys::BlockNumber, pg_sys::OffsetNumber),
) -> Vec<u8> {
    let mut code = vec![0u8; rabitq::code_bytes(v.len())];
    let factors = rabitq::encode(metric, rotation, centroid, rotated, v, &mut code);
    page::make_code_item(
        CodeHead {
            tid,
            vector_block: place.0,
            vector_offset: place.1,
            reserved: 0,
            factors,
        },
        &code,
    )
}

unsafe fn new_page(
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    kind: u16,
) -> pg_sys::BlockNumber {
    unsafe {
        let b = Locked::extend(rel, fork);
        page::init(b.page(), kind);
        pg_sys::MarkBufferDirty(b.buf);
        b.block()
    }
}

unsafe fn write_image(
    rel: pg_sys::Relation,
    fork: pg_sys::ForkNumber::Type,
    block: pg_sys::BlockNumber,
    image: &mut PageImage,
) {
    unsafe {
        let b = Locked::read_with(rel, fork, block, true, std::ptr::null_mut());
        std::ptr::copy_nonoverlapping(image.0.as_ptr(), b.page().cast::<u8>(), BLCKSZ);
        pg_sys::MarkBufferDirty(b.buf);
    }
}
