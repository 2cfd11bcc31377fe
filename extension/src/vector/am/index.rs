//! Reading an IVF index's fixed parts: the meta page, the centroids, the
//! metric of its operator class and the dimension of its column.

use bizos_core::vector::Metric;
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
    pub heads: Vec<CentroidHead>,
    pub places: Vec<(pg_sys::BlockNumber, pg_sys::OffsetNumber)>,
}

impl Lists {
    /// The centroid of list `i` (empty when the index has no dimension yet).
    pub fn centroid(&self, i: usize) -> &[f32] {
        let d = self.meta.dims as usize;
        &self.centroids[i * d..(i + 1) * d]
    }
}

/// # Safety
/// `rel` is an open IVF index.
pub unsafe fn read_meta(rel: pg_sys::Relation) -> Meta {
    unsafe {
        let buf = Locked::read(rel, page::META_BLOCK, false);
        let meta = page::read_meta(buf.page());
        if meta.magic != page::MAGIC || meta.version != page::VERSION {
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

/// # Safety
/// `rel` is an open IVF index.
pub unsafe fn load(rel: pg_sys::Relation) -> Lists {
    unsafe {
        let meta = read_meta(rel);
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
            heads: Vec::with_capacity(n),
            places: Vec::with_capacity(n),
        };
        for block in 1..=meta.centroid_pages {
            let buf = Locked::read(rel, block, false);
            for (off, item) in page::items(buf.page()) {
                let (head, v) = page::split_centroid_item(item);
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
