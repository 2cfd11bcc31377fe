//! Distance functions behind the operators `<->` (L2), `<=>` (cosine
//! distance) and `<#>` (negative inner product), plus `vector_dims` and
//! `vector_norm`. The kernels are `bizos_core::vector`'s.

use bizos_core::vector::{self as kernels, Metric};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as Code;

use super::fmgr::{arg, finfo_v1};
use super::types::elements;
use crate::error::raise;

/// Both arguments, checked to have the same dimension.
///
/// # Safety
/// The first two arguments of `fcinfo` are non-null vectors.
unsafe fn pair<'a>(fcinfo: pg_sys::FunctionCallInfo) -> (&'a [f32], &'a [f32]) {
    unsafe {
        let (a, b) = (elements(arg(fcinfo, 0)), elements(arg(fcinfo, 1)));
        if a.len() != b.len() {
            raise(
                Code::ERRCODE_DATA_EXCEPTION,
                format!("different vector dimensions {} and {}", a.len(), b.len()),
                Some("both vectors of a distance must have the same dimension"),
            );
        }
        (a, b)
    }
}

fn float8(x: f64) -> pg_sys::Datum {
    pg_sys::Datum::from(x.to_bits())
}

finfo_v1!(
    pg_finfo_bizos_vector_l2_distance,
    pg_finfo_bizos_vector_cosine_distance,
    pg_finfo_bizos_vector_inner_product,
    pg_finfo_bizos_vector_negative_inner_product,
    pg_finfo_bizos_vector_dims,
    pg_finfo_bizos_vector_norm,
    pg_finfo_bizos_ivf_metric_l2,
    pg_finfo_bizos_ivf_metric_cosine,
    pg_finfo_bizos_ivf_metric_ip,
);

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_l2_distance(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (a, b) = unsafe { pair(fcinfo) };
    float8(f64::from(kernels::l2_squared(a, b)).sqrt())
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_cosine_distance(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (a, b) = unsafe { pair(fcinfo) };
    float8(f64::from(kernels::cosine_distance(a, b)))
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_inner_product(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (a, b) = unsafe { pair(fcinfo) };
    float8(f64::from(kernels::dot(a, b)))
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_negative_inner_product(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let (a, b) = unsafe { pair(fcinfo) };
    float8(-f64::from(kernels::dot(a, b)))
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_dims(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let v = unsafe { elements(arg(fcinfo, 0)) };
    pg_sys::Datum::from(v.len() as i32)
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_norm(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let v = unsafe { elements(arg(fcinfo, 0)) };
    float8(f64::from(kernels::norm(v)))
}

/// Support function 1 of the IVF operator classes: tells the index which
/// metric its class orders by (the argument is never read).
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_ivf_metric_l2(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::Datum::from(Metric::L2.code())
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_ivf_metric_cosine(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::Datum::from(Metric::Cosine.code())
}

#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_ivf_metric_ip(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::Datum::from(Metric::InnerProduct.code())
}
