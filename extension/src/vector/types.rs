//! The `bizos.vector(n)` type: a varlena holding a small header and `n`
//! `f32`s, with text I/O `[1,2,3]`, binary send/recv, a typmod that fixes
//! the dimension, and casts from and to arrays.
//!
//! Layout (4-byte aligned, typalign `int4`):
//! `vl_len (4) | dims u16 | reserved u16 | f32 × dims`.

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as Code;

use super::fmgr::{arg, arg_i32, finfo_v1};
use crate::error::raise;

/// Most dimensions a vector may have (the header stores them in a u16; the
/// index additionally needs one vector to fit in a page, see `am`).
pub const MAX_DIMS: usize = 16_000;
const HEADER: usize = 8;

/// Bytes of a vector of `dims` elements, header included.
pub fn size_of(dims: usize) -> usize {
    HEADER + 4 * dims
}

/// The elements of a vector datum, detoasted (in the current memory
/// context) when it was toasted or stored with a short header.
///
/// A datum with a plain 4-byte header (neither compressed, external nor
/// short), as every vector of more than 30 dimensions read from a table
/// is, is used in place without calling `pg_detoast_datum`, which would
/// return it unchanged: a sequential scan computing a distance per row
/// saves two calls across the FFI boundary per row.
///
/// # Safety
/// `datum` is a non-null `bizos.vector` datum.
pub unsafe fn elements<'a>(datum: pg_sys::Datum) -> &'a [f32] {
    unsafe {
        let raw = datum.cast_mut_ptr::<pg_sys::varlena>();
        let v = if pgrx::varlena::varatt_is_4b_u(raw) {
            raw
        } else {
            pg_sys::pg_detoast_datum(raw)
        };
        let bytes = pgrx::varlena::varsize_any(v);
        let dims = *(v as *const u8).add(4).cast::<u16>() as usize;
        if bytes < size_of(dims) {
            raise(
                Code::ERRCODE_DATA_CORRUPTED,
                format!("bizos.vector datum of {bytes} bytes is too short for {dims} dimensions"),
                None,
            );
        }
        std::slice::from_raw_parts((v as *const u8).add(HEADER).cast::<f32>(), dims)
    }
}

/// A new vector datum (palloc'd in the current memory context).
pub fn new_datum(values: &[f32]) -> pg_sys::Datum {
    check_dims(values.len());
    unsafe {
        let size = size_of(values.len());
        let p = pg_sys::palloc0(size) as *mut u8;
        pgrx::varlena::set_varsize_4b(p.cast(), size as i32);
        *p.add(4).cast::<u16>() = values.len() as u16;
        std::ptr::copy_nonoverlapping(values.as_ptr(), p.add(HEADER).cast::<f32>(), values.len());
        pg_sys::Datum::from(p)
    }
}

fn check_dims(dims: usize) {
    if dims == 0 {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            "a bizos.vector must have at least 1 dimension",
            None,
        );
    }
    if dims > MAX_DIMS {
        raise(
            Code::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("a bizos.vector may have at most {MAX_DIMS} dimensions, not {dims}"),
            None,
        );
    }
}

fn check_finite(values: &[f32]) {
    if let Some(i) = values.iter().position(|x| !x.is_finite()) {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!(
                "bizos.vector element {} is {} (NaN and infinity are not allowed)",
                i + 1,
                values[i]
            ),
            None,
        );
    }
}

/// Raises unless a vector of `actual` dimensions fits typmod `typmod`
/// (`-1`: any dimension).
pub fn check_typmod(typmod: i32, actual: usize) {
    if typmod >= 0 && actual != typmod as usize {
        raise(
            Code::ERRCODE_DATA_EXCEPTION,
            format!("expected {typmod} dimensions, not {actual}"),
            Some("the column is declared bizos.vector(n) with a fixed dimension n"),
        );
    }
}

/// Parses the text form `[1, 2.5, -3e-2]`.
pub fn parse(text: &str) -> Result<Vec<f32>, String> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| format!("invalid bizos.vector {text:?}: expected \"[x1,x2,...]\""))?;
    if inner.trim().is_empty() {
        return Err("a bizos.vector must have at least 1 dimension".into());
    }
    inner
        .split(',')
        .enumerate()
        .map(|(i, part)| {
            let part = part.trim();
            let x: f32 = part
                .parse()
                .map_err(|_| format!("invalid bizos.vector element {} {part:?}: not a number", i + 1))?;
            if !x.is_finite() {
                return Err(format!(
                    "bizos.vector element {} {part:?} is not finite (NaN, infinity and values beyond the real range are not allowed)",
                    i + 1
                ));
            }
            Ok(x)
        })
        .collect()
}

/// The text form; Rust's float formatting prints the shortest string that
/// reads back to the same `f32`.
pub fn format(values: &[f32]) -> String {
    let mut out = String::with_capacity(values.len() * 10 + 2);
    out.push('[');
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

finfo_v1!(
    pg_finfo_bizos_vector_in,
    pg_finfo_bizos_vector_out,
    pg_finfo_bizos_vector_typmod_in,
    pg_finfo_bizos_vector_recv,
    pg_finfo_bizos_vector_send,
    pg_finfo_bizos_vector_coerce,
    pg_finfo_bizos_array_to_vector,
    pg_finfo_bizos_vector_to_real_array,
);

/// `vector_in(cstring, oid, int4)`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_in(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let text = std::ffi::CStr::from_ptr(arg(fcinfo, 0).cast_mut_ptr::<std::ffi::c_char>());
        let typmod = arg_i32(fcinfo, 2);
        let text = text.to_str().unwrap_or_else(|_| {
            raise(
                Code::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                "bizos.vector input is not UTF-8",
                None,
            )
        });
        let values = parse(text)
            .unwrap_or_else(|m| raise(Code::ERRCODE_INVALID_TEXT_REPRESENTATION, m, None));
        check_dims(values.len());
        check_typmod(typmod, values.len());
        new_datum(&values)
    }
}

/// `vector_out(vector) → cstring`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_out(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let text = format(elements(arg(fcinfo, 0)));
        let c = std::ffi::CString::new(text).unwrap_or_default();
        pg_sys::Datum::from(pg_sys::pstrdup(c.as_ptr()))
    }
}

/// `vector_typmod_in(cstring[]) → int4`: `vector(384)`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_typmod_in(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let arr = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::ArrayType>();
        let mut n = 0;
        let mods = pg_sys::ArrayGetIntegerTypmods(arr, &mut n);
        if n != 1 {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                "bizos.vector takes one type modifier, its dimension: vector(384)",
                None,
            );
        }
        let dims = *mods;
        if dims < 1 || dims as usize > MAX_DIMS {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "the dimension of bizos.vector must be between 1 and {MAX_DIMS}, not {dims}"
                ),
                None,
            );
        }
        pg_sys::Datum::from(dims)
    }
}

/// `vector_recv(internal, oid, int4)`: u16 dims, u16 reserved, f32s (network order).
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_recv(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let buf = arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>();
        let typmod = arg_i32(fcinfo, 2);
        let dims = pg_sys::pq_getmsgint(buf, 2) as usize;
        let _reserved = pg_sys::pq_getmsgint(buf, 2);
        check_dims(dims);
        check_typmod(typmod, dims);
        let values: Vec<f32> = (0..dims).map(|_| pg_sys::pq_getmsgfloat4(buf)).collect();
        check_finite(&values);
        new_datum(&values)
    }
}

/// `vector_send(vector) → bytea`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_send(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let values = elements(arg(fcinfo, 0));
        let mut buf = pg_sys::StringInfoData::default();
        pg_sys::pq_begintypsend(&mut buf);
        pg_sys::pq_sendint16(&mut buf, values.len() as u16);
        pg_sys::pq_sendint16(&mut buf, 0);
        for &x in values {
            pg_sys::pq_sendfloat4(&mut buf, x);
        }
        pg_sys::Datum::from(pg_sys::pq_endtypsend(&mut buf))
    }
}

/// `vector(vector, int4, bool) → vector`: the length coercion that applies
/// a column's `vector(n)` to values assigned to it.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_coerce(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let datum = arg(fcinfo, 0);
        check_typmod(arg_i32(fcinfo, 1), elements(datum).len());
        datum
    }
}

/// `real[]`, `double precision[]` or `integer[]` → vector (casts; typmod
/// checked like input).
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_array_to_vector(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let arr =
            pg_sys::pg_detoast_datum(arg(fcinfo, 0).cast_mut_ptr()).cast::<pg_sys::ArrayType>();
        let typmod = arg_i32(fcinfo, 1);
        if (*arr).ndim > 1 {
            raise(
                Code::ERRCODE_DATA_EXCEPTION,
                "a bizos.vector is made from a one-dimensional array",
                None,
            );
        }
        let elemtype = (*arr).elemtype;
        // (length, by value, alignment) of the element types accepted.
        let (len, byval, align) = match elemtype {
            pg_sys::FLOAT4OID | pg_sys::INT4OID => (4, true, b'i'),
            pg_sys::FLOAT8OID => (8, true, b'd'),
            _ => raise(
                Code::ERRCODE_DATATYPE_MISMATCH,
                "a bizos.vector is made from real[], double precision[] or integer[]",
                None,
            ),
        };
        let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut n = 0;
        pg_sys::deconstruct_array(
            arr,
            elemtype,
            len,
            byval,
            align as std::ffi::c_char,
            &mut elems,
            &mut nulls,
            &mut n,
        );
        let n = n.max(0) as usize;
        let datums: &[pg_sys::Datum] = if n == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(elems, n)
        };
        if n > 0 && std::slice::from_raw_parts(nulls, n).iter().any(|&x| x) {
            raise(
                Code::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "a bizos.vector cannot contain NULL elements",
                None,
            );
        }
        let values: Vec<f32> = match elemtype {
            pg_sys::FLOAT4OID => datums
                .iter()
                .map(|d| f32::from_bits(d.value() as u32))
                .collect(),
            pg_sys::FLOAT8OID => datums
                .iter()
                .map(|d| f64::from_bits(d.value() as u64) as f32)
                .collect(),
            _ => datums.iter().map(|d| d.value() as i32 as f32).collect(),
        };
        check_dims(values.len());
        check_finite(&values);
        check_typmod(typmod, values.len());
        new_datum(&values)
    }
}

/// vector → `real[]`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_vector_to_real_array(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let values = elements(arg(fcinfo, 0));
        let mut datums: Vec<pg_sys::Datum> = values
            .iter()
            .map(|x| pg_sys::Datum::from(x.to_bits()))
            .collect();
        let arr = pg_sys::construct_array_builtin(
            datums.as_mut_ptr(),
            datums.len() as i32,
            pg_sys::FLOAT4OID,
        );
        pg_sys::Datum::from(arr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let v = parse(" [1, 2.5,-3e-2 ] ").unwrap();
        assert_eq!(v, vec![1.0, 2.5, -0.03]);
        assert_eq!(format(&v), "[1,2.5,-0.03]");
        assert_eq!(
            parse(&format(&[0.1, 1e-7, 3.4e38])).unwrap(),
            vec![0.1, 1e-7, 3.4e38]
        );
    }

    #[test]
    fn bad_text_names_the_problem() {
        assert!(parse("1,2").unwrap_err().contains("expected"));
        assert!(parse("[]").unwrap_err().contains("at least 1"));
        assert!(parse("[1,x]").unwrap_err().contains("element 2"));
        assert!(parse("[1,NaN]").unwrap_err().contains("not finite"));
        assert!(parse("[inf]").unwrap_err().contains("not finite"));
        assert!(parse("[1e39]").unwrap_err().contains("not finite"));
    }
}
