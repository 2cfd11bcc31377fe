//! Reading an IVF index's fixed parts: the meta page, the centroids, the
//! metric of its operator class and the dimension of its column.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bizos_core::vector::rabitq::{self, Rotation};
use bizos_core::vector::{dot, Metric};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as Code;

use super::buffers::Locked;
use super::page::{self, CentroidHead, Meta};
use crate::error::raise;

/// The lists of an index: centroid vectors, chain heads and where each
/// centroid item lives (for inserts that move the chain's last page).
pub struct Lists {
    pub meta: Meta,
    pub metric: Metric,
    /// `lists × dims` floats (nothing when `dims` is 0).
    pub centroids: Vec<f32>,
    /// Squared norm of each centroid.
    pub norms2: Vec<f32>,
    pub heads: Vec<CentroidHead>,
    pub places: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)>,
    /// The codes' rotation (version 2 with a dimension; else None).
    pub rotation: Option<Rotation>,
}

impl Lists {
    /// The centroid of list `i` (empty when the index has no dimension yet).
    pub fn centroid(&self, i: usize) -> &[f32] {
        let d = self.meta.dims as usize;
        &self.centroids[i * d..(i + 1) * d]
    }
}

/// The rotation of an index's codes (the same for every index).
fn rotation(meta: &Meta) -> Option<Rotation> {
    (meta.version == page::VERSION && meta.dims > 0)
        .then(|| Rotation::new(meta.dims as usize, rabitq::ROTATION_SEED))
}

/// # Safety
/// `rel` is an open IVF index.
pub unsafe fn read_meta(rel: pg_sys::Relation) -> Meta {
    unsafe {
        let buf = Locked::read(rel, page::META_BLOCK, false);
        let meta = page::read_meta(buf.page());
        if meta.magic != page::MAGIC
            || !(meta.version == page::VERSION || meta.version == page::VERSION_FLAT)
        {
            raise(
                Code::ERRCODE_INDEX_CORRUPTED,
                format!(
                    "\"{}\" is not a bizos_ivf index of version {}",
                    name(rel),
                    page::VERSION
                ),
                Some("REINDEX the index"),
            );
        }
        meta
    }
}

/// Centroids never change after a build (inserts move only a chain's last
/// page, which is read under lock from the page itself), so each backend
/// keeps them per index file and build, and a query or insert reads one
/// meta page instead of every centroid page.
const CACHE_ENTRIES: usize = 32;

thread_local! {
    static CACHE: RefCell<HashMap<(u32, u32, u32), Rc<Lists>>> = RefCell::new(HashMap::new());
}

/// The index's lists, from this backend's cache when the build matches.
///
/// # Safety
/// `rel` is an open IVF index.
pub unsafe fn load(rel: pg_sys::Relation) -> Rc<Lists> {
    unsafe {
        let meta = read_meta(rel);
        let node = (*rel).rd_node;
        let key = (
            node.spcNode.to_u32(),
            node.dbNode.to_u32(),
            node.relNode.to_u32(),
        );
        let cached = CACHE.with(|c| {
            c.borrow()
                .get(&key)
                .filter(|l| l.meta.build_id == meta.build_id)
                .cloned()
        });
        if let Some(lists) = cached {
            return lists;
        }
        let lists = Rc::new(read_lists(rel, meta));
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.len() >= CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, Rc::clone(&lists));
        });
        lists
    }
}

/// # Safety
/// `rel` is an open IVF index whose meta page is `meta`.
unsafe fn read_lists(rel: pg_sys::Relation, meta: Meta) -> Lists {
    unsafe {
        let metric = Metric::from_code(meta.metric).unwrap_or_else(|| {
            raise(
                Code::ERRCODE_INDEX_CORRUPTED,
                format!("\"{}\" has an unknown metric", name(rel)),
                None,
            )
        });
        let n = meta.lists as usize;
        let mut lists = Lists {
            meta,
            metric,
            centroids: Vec::with_capacity(n * meta.dims as usize),
            norms2: Vec::with_capacity(n),
            heads: Vec::with_capacity(n),
            places: Vec::with_capacity(n),
            rotation: rotation(&meta),
        };
        for block in 1..=meta.centroid_pages {
            let buf = Locked::read(rel, block, false);
            for (off, item) in page::items(buf.page()) {
                let (head, v) = page::split_centroid_item(meta.version, item);
                lists.norms2.push(dot(v, v));
                lists.heads.push(head);
                lists.places.push((block, off));
                lists.centroids.extend_from_slice(v);
            }
        }
        if lists.heads.len() != n {
            raise(
                Code::ERRCODE_INDEX_CORRUPTED,
                format!(
                    "\"{}\" has {} of its {n} lists",
                    name(rel),
                    lists.heads.len()
                ),
                Some("REINDEX the index"),
            );
        }
        lists
    }
}

/// The metric of the index's operator class (its support function 1).
///
/// # Safety
/// `rel` is an open index of this access method.
pub unsafe fn metric_of(rel: pg_sys::Relation) -> Metric {
    unsafe {
        let proc_ = pg_sys::index_getprocid(rel, 1, 1);
        let code = pg_sys::OidFunctionCall1Coll(proc_, pg_sys::InvalidOid, pg_sys::Datum::from(0))
            .value() as i32;
        Metric::from_code(code).unwrap_or_else(|| {
            raise(
                Code::ERRCODE_INVALID_OBJECT_DEFINITION,
                format!("operator class of \"{}\" has no known metric", name(rel)),
                Some("use bizos.vector_l2_ops, bizos.vector_cosine_ops or bizos.vector_ip_ops"),
            )
        })
    }
}

/// The declared dimension of the indexed column, if it has a typmod.
///
/// # Safety
/// `rel` is an open index with one column.
pub unsafe fn typmod_dims(rel: pg_sys::Relation) -> Option<usize> {
    unsafe {
        let attr = (*(*rel).rd_att).attrs.as_ptr();
        let typmod = (*attr).atttypmod;
        (typmod > 0).then_some(typmod as usize)
    }
}

/// The index's name, for messages.
///
/// # Safety
/// `rel` is an open relation.
pub unsafe fn name(rel: pg_sys::Relation) -> String {
    unsafe {
        std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Raises unless a vector of `actual` dimensions fits an index of `dims`.
pub fn check_dims(dims: u32, actual: usize) {
    if dims != 0 && actual != dims as usize {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {dims} dimensions, not {actual}"),
            Some("every vector of an indexed column must have the index's dimension"),
        );
    }
}
