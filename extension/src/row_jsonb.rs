//! A table row (or some of its columns) as a jsonb object, built directly
//! with PostgreSQL's jsonb builder (`pushJsonbValue`): no JSON text is
//! written and parsed again. Values by type category: booleans as JSON
//! booleans, finite numbers as JSON numbers, json and jsonb as they are,
//! NULL as null, everything else as the string its output function gives.
//! That is what the audit log has always stored (it used to build the JSON
//! text and run it through `jsonb_in`), so old and new entries read alike.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr};

use pgrx::pg_sys;
use pgrx::pg_sys::{jbvType, JsonbIteratorToken as Tok};

thread_local! {
    /// Output function per type.
    static OUTPUT_FNS: RefCell<HashMap<pg_sys::Oid, pg_sys::Oid>> = RefCell::new(HashMap::new());
}

fn output_fn(typoid: pg_sys::Oid) -> pg_sys::Oid {
    if let Some(f) = OUTPUT_FNS.with(|m| m.borrow().get(&typoid).copied()) {
        return f;
    }
    let mut func = pg_sys::Oid::INVALID;
    let mut varlena = false;
    // SAFETY: syscache lookup of an existing type.
    unsafe { pg_sys::getTypeOutputInfo(typoid, &mut func, &mut varlena) };
    OUTPUT_FNS.with(|m| m.borrow_mut().insert(typoid, func));
    func
}

/// A jsonb string value of the NUL-terminated `s` (which must live until
/// the object is finished).
unsafe fn string(s: *const c_char) -> pg_sys::JsonbValue {
    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
    v.type_ = jbvType::jbvString;
    v.val.string.len = CStr::from_ptr(s).to_bytes().len() as i32;
    v.val.string.val = s.cast_mut();
    v
}

unsafe fn numeric(n: pg_sys::Datum) -> pg_sys::JsonbValue {
    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
    v.type_ = jbvType::jbvNumeric;
    v.val.numeric = n.cast_mut_ptr();
    v
}

/// A jsonb value (`datum` of type jsonb) to push whole.
unsafe fn binary(datum: pg_sys::Datum) -> pg_sys::JsonbValue {
    let jsonb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<pg_sys::Jsonb>();
    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
    pg_sys::JsonbToJsonbValue(jsonb, &mut v);
    v
}

/// One attribute value as a jsonb value.
///
/// # Safety
/// `datum` must be a valid non-null value of `typoid`.
unsafe fn value(typoid: pg_sys::Oid, datum: pg_sys::Datum) -> pg_sys::JsonbValue {
    use pg_sys::{
        BOOLOID, FLOAT4OID, FLOAT8OID, INT2OID, INT4OID, INT8OID, JSONBOID, JSONOID, NUMERICOID,
    };
    let call = |f, arg| fmgr(f, &[Some(arg)], "a conversion");
    match typoid {
        BOOLOID => {
            let mut v: pg_sys::JsonbValue = std::mem::zeroed();
            v.type_ = jbvType::jbvBool;
            v.val.boolean = datum.value() != 0;
            v
        }
        INT2OID => numeric(call(pg_sys::int2_numeric, datum)),
        INT4OID => numeric(call(pg_sys::int4_numeric, datum)),
        INT8OID => numeric(call(pg_sys::int8_numeric, datum)),
        NUMERICOID => {
            let n = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()).cast::<pg_sys::NumericData>();
            if pg_sys::numeric_is_nan(n) || pg_sys::numeric_is_inf(n) {
                string(output(typoid, datum))
            } else {
                numeric(pg_sys::Datum::from(n))
            }
        }
        JSONBOID => binary(datum),
        FLOAT4OID | FLOAT8OID | JSONOID => {
            let text = output(typoid, datum);
            match (typoid, CStr::from_ptr(text).to_bytes()) {
                (JSONOID, _) => binary(call(pg_sys::jsonb_in, pg_sys::Datum::from(text))),
                (_, b"NaN" | b"Infinity" | b"-Infinity") => string(text),
                _ => numeric(fmgr(
                    pg_sys::numeric_in,
                    &[
                        Some(pg_sys::Datum::from(text)),
                        Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
                        Some(pg_sys::Datum::from(-1i32)),
                    ],
                    "numeric_in",
                )),
            }
        }
        _ => string(output(typoid, datum)),
    }
}

/// A strict fmgr function called directly; NULL from it is a bug.
///
/// # Safety
/// `args` must be valid arguments of `f`.
unsafe fn fmgr(
    f: unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum,
    args: &[Option<pg_sys::Datum>],
    what: &str,
) -> pg_sys::Datum {
    pgrx::direct_function_call_as_datum(f, args).unwrap_or_else(|| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("{what} returned NULL"),
            None,
        )
    })
}

/// The output function's text of a value (palloc'd, NUL-terminated).
unsafe fn output(typoid: pg_sys::Oid, datum: pg_sys::Datum) -> *const c_char {
    pg_sys::OidOutputFunctionCall(output_fn(typoid), datum)
}

/// A row (or the columns in `only`) as a jsonb object datum.
///
/// # Safety
/// `tuple` and `desc` must describe a valid heap tuple.
pub(crate) unsafe fn row_jsonb(
    tuple: *mut pg_sys::HeapTupleData,
    desc: pg_sys::TupleDesc,
    only: Option<&[usize]>,
) -> pg_sys::Datum {
    let natts = (*desc).natts as usize;
    let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
    pg_sys::pushJsonbValue(&mut state, Tok::WJB_BEGIN_OBJECT, std::ptr::null_mut());
    for i in 0..natts {
        if only.is_some_and(|cols| !cols.contains(&i)) {
            continue;
        }
        let att = &(*desc).attrs.as_slice(natts)[i];
        if att.attisdropped {
            continue;
        }
        let mut key = string(att.attname.data.as_ptr());
        pg_sys::pushJsonbValue(&mut state, Tok::WJB_KEY, &mut key);
        let mut isnull = false;
        let d = pg_sys::heap_getattr(tuple, (i + 1) as i32, desc, &mut isnull);
        let mut v = if isnull {
            let mut v: pg_sys::JsonbValue = std::mem::zeroed();
            v.type_ = jbvType::jbvNull;
            v
        } else {
            value(att.atttypid, d)
        };
        pg_sys::pushJsonbValue(&mut state, Tok::WJB_VALUE, &mut v);
    }
    let object = pg_sys::pushJsonbValue(&mut state, Tok::WJB_END_OBJECT, std::ptr::null_mut());
    pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(object))
}

/// The canonical text of a jsonb datum (`jsonb_out`): what the audit
/// chain hashes, and what `::text` gives when the chain is verified.
pub(crate) fn canonical_text(jsonb: pg_sys::Datum) -> String {
    // SAFETY: jsonb_out of a valid jsonb datum returns a palloc'd C string.
    unsafe {
        let ptr = fmgr(pg_sys::jsonb_out, &[Some(jsonb)], "jsonb_out").cast_mut_ptr::<c_char>();
        let text = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        pg_sys::pfree(ptr.cast());
        text
    }
}
