//! The value types of request bodies. Each one parses a JSON value the way
//! the database's payload readers (`payload_text`, `payload_uuid`,
//! `payload_numeric`, … in V2) read it, refuses what they would refuse for
//! a reason the BFF can see (a wrong type, a NUL character, a string over
//! its limit, a value outside a closed set), and documents itself in the
//! OpenAPI document with the same limits: one definition for parsing and
//! the document. The database still checks everything.
//!
//! Conventions of the database that the types mirror:
//! - strings are trimmed of spaces and a blank string is absent (NULL);
//!   lengths count characters after trimming;
//! - numbers are JSON numbers or numeric strings, with a fixed number of
//!   decimals and less than 10^15;
//! - closed sets are compared after the case folding the function applies.
//!
//! Request bodies re-serialize to exactly what the client meant, so the
//! database reads the same values (strings unchanged, numbers as sent).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// The database trims spaces only (`btrim` without characters).
fn trim(s: &str) -> &str {
    s.trim_matches(' ')
}

fn no_nul<E: de::Error>(s: &str) -> Result<(), E> {
    if s.contains('\0') {
        return Err(E::custom(
            "must not contain a NUL character (\\u0000), which the database cannot store",
        ));
    }
    Ok(())
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

// ------------------------------------------------------------------ text

/// A string of at most `MAX` characters after trimming; may be blank
/// (the database stores a blank string as NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(pub String);

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_text<E: de::Error>(s: &str, max: usize) -> Result<(), E> {
    no_nul(s)?;
    let n = trim(s).chars().count();
    if n > max {
        return Err(E::custom(format!(
            "at most {max} characters (this one has {n})"
        )));
    }
    Ok(())
}

struct TextVisitor<const MAX: usize, const REQUIRED: bool>;

impl<const MAX: usize, const REQUIRED: bool> Visitor<'_> for TextVisitor<MAX, REQUIRED> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string of at most {MAX} characters")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        check_text(s, MAX)?;
        if REQUIRED && trim(s).is_empty() {
            return Err(E::custom("is required (not blank)"));
        }
        Ok(s.to_owned())
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor::<MAX, false>).map(Text)
    }
}

impl<const MAX: usize> Serialize for Text<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<const MAX: usize> PartialSchema for Text<MAX> {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .max_length(Some(MAX))
            .description(Some(format!(
                "Text of at most {MAX} characters (spaces around it are trimmed; blank means none); no NUL characters."
            )))
            .into()
    }
}

impl<const MAX: usize> ToSchema for Text<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Text{MAX}"))
    }
}

/// A required string: at most `MAX` characters after trimming, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonBlank<const MAX: usize>(pub String);

impl<const MAX: usize> NonBlank<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for NonBlank<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor::<MAX, true>).map(NonBlank)
    }
}

impl<const MAX: usize> Serialize for NonBlank<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<const MAX: usize> PartialSchema for NonBlank<MAX> {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .min_length(Some(1))
            .max_length(Some(MAX))
            .pattern(Some("[^ ]"))
            .description(Some(format!(
                "Required text of at most {MAX} characters (spaces around it are trimmed; not blank); no NUL characters."
            )))
            .into()
    }
}

impl<const MAX: usize> ToSchema for NonBlank<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("NonBlank{MAX}"))
    }
}

// ------------------------------------------------------------------ ids, dates

/// A UUID as a string (`payload_uuid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub uuid::Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a UUID string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
                no_nul(s)?;
                let t = trim(s);
                if t.is_empty() {
                    return Err(E::custom("is required"));
                }
                uuid::Uuid::parse_str(t)
                    .map(Id)
                    .map_err(|_| E::custom("must be a UUID"))
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into()
    }
}

impl ToSchema for Id {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Id")
    }
}

/// A calendar date `YYYY-MM-DD` (`payload_date`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Date(pub chrono::NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Date;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date YYYY-MM-DD")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Date, E> {
                no_nul(s)?;
                let t = trim(s);
                let shape = t.len() == 10
                    && t.bytes().enumerate().all(|(i, b)| match i {
                        4 | 7 => b == b'-',
                        _ => b.is_ascii_digit(),
                    });
                if !shape {
                    return Err(E::custom("must be a date YYYY-MM-DD"));
                }
                chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                    .ok()
                    .filter(|d| chrono::Datelike::year(d) >= 1)
                    .map(Date)
                    .ok_or_else(|| E::custom("is not a valid date"))
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%Y-%m-%d").to_string())
    }
}

impl PartialSchema for Date {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .into()
    }
}

impl ToSchema for Date {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Date")
    }
}

/// An instant: an RFC 3339 date and time with its offset
/// (`2026-05-04T09:30:00+07:00`, `2026-05-04T02:30:00.5Z`;
/// `payload_timestamptz`). Kept as sent, so the database reads the
/// client's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instant(pub String);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Instant;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date and time with its offset (RFC 3339)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Instant, E> {
                no_nul(s)?;
                if parse_instant(trim(s)).is_none() {
                    return Err(E::custom(
                        "must be a date and time with its offset, e.g. 2026-05-04T09:30:00+07:00",
                    ));
                }
                Ok(Instant(s.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}

/// RFC 3339 as `payload_timestamptz` takes it: `T`, `t` or a space between
/// date and time, seconds required, `Z` or `±HH:MM`.
fn parse_instant(t: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    let b = t.as_bytes();
    let shape = b.len() >= 20
        && b.iter().take(19).enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => matches!(c, b'T' | b't' | b' '),
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset_ok = matches!(rest, "Z" | "z")
        || (rest.len() == 6
            && rest.bytes().enumerate().all(|(i, c)| match i {
                0 => c == b'+' || c == b'-',
                3 => c == b':',
                _ => c.is_ascii_digit(),
            }));
    if !offset_ok {
        return None;
    }
    let normal = format!("{}T{}", &t[..10], &t[11..]).replace('z', "Z");
    chrono::DateTime::parse_from_rfc3339(&normal).ok()
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl ToSchema for Instant {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Instant")
    }
}

/// A string matching a fixed shape, folded the way the database folds it
/// (`period_month`, `currency`, `dept_target`).
pub trait Shape {
    const NAME: &'static str;
    /// The JSON Schema pattern of the folded value (anchored).
    const PATTERN: &'static str;
    const DESCRIPTION: &'static str;
    fn fold(s: &str) -> String;
    fn matches(folded: &str) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped<S: Shape>(pub String, PhantomData<S>);

impl<'de, S: Shape> Deserialize<'de> for Shaped<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        no_nul::<D::Error>(&s)?;
        let folded = S::fold(trim(&s));
        if !S::matches(&folded) {
            return Err(de::Error::custom(format!("must be {}", S::DESCRIPTION)));
        }
        Ok(Shaped(s, PhantomData))
    }
}

impl<S: Shape> Serialize for Shaped<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        s.serialize_str(&self.0)
    }
}

impl<S: Shape> PartialSchema for Shaped<S> {
    fn schema() -> RefOr<Schema> {
        string_schema()
            .pattern(Some(S::PATTERN))
            .description(Some(S::DESCRIPTION))
            .into()
    }
}

impl<S: Shape> ToSchema for Shaped<S> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(S::NAME)
    }
}

/// `dept_target`: a department code, upper-cased by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeptShape;
impl Shape for DeptShape {
    const NAME: &'static str = "DeptCode";
    const PATTERN: &'static str = "^ *[A-Za-z][A-Za-z0-9_-]{0,31} *$";
    const DESCRIPTION: &'static str =
        "a department code such as OPS-JKT or FIN (letters, digits, _ and -, up to 32; case-insensitive)";
    fn fold(s: &str) -> String {
        s.to_uppercase()
    }
    fn matches(f: &str) -> bool {
        let b = f.as_bytes();
        !b.is_empty()
            && b.len() <= 32
            && b[0].is_ascii_uppercase()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    }
}
pub type DeptCode = Shaped<DeptShape>;

/// `currency`: an ISO 4217 code, upper-cased by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyShape;
impl Shape for CurrencyShape {
    const NAME: &'static str = "Currency";
    const PATTERN: &'static str = "^ *[A-Za-z]{3} *$";
    const DESCRIPTION: &'static str = "an ISO 4217 currency code such as IDR (case-insensitive)";
    fn fold(s: &str) -> String {
        s.to_uppercase()
    }
    fn matches(f: &str) -> bool {
        f.len() == 3 && f.bytes().all(|c| c.is_ascii_uppercase())
    }
}
pub type Currency = Shaped<CurrencyShape>;

/// `period_month`: YYYY-MM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthShape;
impl Shape for MonthShape {
    const NAME: &'static str = "Month";
    const PATTERN: &'static str = "^ *[0-9]{4}-(0[1-9]|1[0-2]) *$";
    const DESCRIPTION: &'static str = "a month YYYY-MM such as 2026-03";
    fn fold(s: &str) -> String {
        s.to_owned()
    }
    fn matches(f: &str) -> bool {
        let b = f.as_bytes();
        b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && matches!((b[5], b[6]), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'))
    }
}
pub type Month = Shaped<MonthShape>;

// ------------------------------------------------------------------ numbers

/// A decimal read off its JSON text: value = 0.DIGITS × 10^exp.
struct Decimal {
    digits: String,
    exp: i64,
}

impl Decimal {
    /// `-12.50`, `1e-7`, `3E+2`, `.5`: the forms of JSON numbers and of the
    /// numeric strings the database accepts (no exponent there).
    fn parse(s: &str, allow_exponent: bool) -> Option<(bool, Decimal)> {
        let (negative, rest) = match s.as_bytes().first()? {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(i) if allow_exponent => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
            Some(_) => return None,
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all = format!("{int}{frac}");
        let lead = all.len() - all.trim_start_matches('0').len();
        let digits = all.trim_matches('0').to_owned();
        let exp = int.len() as i64 - lead as i64 + exponent;
        Some((negative && !digits.is_empty(), Decimal { digits, exp }))
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Digits after the decimal point, trailing zeros dropped.
    fn scale(&self) -> i64 {
        (self.digits.len() as i64 - self.exp).max(0)
    }

    /// |value| >= 10^15.
    fn too_large(&self) -> bool {
        !self.is_zero() && self.exp > 15
    }

    /// The integer value when it has no decimals and fits in an i128.
    fn to_i128(&self, negative: bool) -> Option<i128> {
        if self.scale() > 0 || self.exp > 38 {
            return None;
        }
        if self.is_zero() {
            return Some(0);
        }
        let int: String = self
            .digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(self.exp as usize)
            .collect();
        let n = int.parse::<i128>().ok()?;
        Some(if negative { -n } else { n })
    }
}

/// The sign a [`Number`] may have.
pub const ANY_SIGN: u8 = 0;
/// Greater than 0.
pub const POSITIVE: u8 = 1;
/// 0 or more.
pub const NON_NEGATIVE: u8 = 2;

/// Money: 2 decimals, greater than 0 (subtotals, payments).
pub type PositiveAmount = Number<2, POSITIVE>;
/// Money: 2 decimals, 0 or more (tax).
pub type NonNegativeAmount = Number<2, NON_NEGATIVE>;
/// Weights and volumes: 3 decimals, greater than 0.
pub type Quantity = Number<3, POSITIVE>;
/// KPI values: 4 decimals, any sign (the metric's unit decides).
pub type KpiValue = Number<4, ANY_SIGN>;
/// KPI targets: 4 decimals, 0 or more.
pub type KpiTarget = Number<4, NON_NEGATIVE>;
/// Percentages (discounts): 2 decimals, 0 or more (the database bounds them).
pub type Percent = Number<2, NON_NEGATIVE>;
/// GPS degrees (latitude -90..90, longitude -180..180, the database
/// bounds them): 7 decimals (about a centimetre).
pub type Degrees = Number<7, ANY_SIGN>;

/// A JSON number or numeric string with at most `SCALE` decimals and an
/// absolute value below 10^15 (`payload_numeric`); `SIGN` bounds its sign
/// ([`ANY_SIGN`], [`POSITIVE`], [`NON_NEGATIVE`]). Kept as sent, so the
/// database reads the client's own digits (serde_json's
/// `arbitrary_precision`: a JSON number is its decimal text, never an f64). Used through the aliases above
/// (utoipa documents a type alias as one schema).
#[derive(Debug, Clone, PartialEq)]
pub struct Number<const SCALE: u32, const SIGN: u8>(pub Value);

impl<const SCALE: u32, const SIGN: u8> Number<SCALE, SIGN> {
    fn check<E: de::Error>(text: &str, allow_exponent: bool) -> Result<(), E> {
        let (negative, d) =
            Decimal::parse(text, allow_exponent).ok_or_else(|| E::custom("must be a number"))?;
        if d.scale() > SCALE as i64 {
            return Err(E::custom(format!("at most {SCALE} decimals")));
        }
        if d.too_large() {
            return Err(E::custom("is too large"));
        }
        if SIGN == POSITIVE && (negative || d.is_zero()) {
            return Err(E::custom("must be greater than 0"));
        }
        if SIGN == NON_NEGATIVE && negative {
            return Err(E::custom("must be 0 or more"));
        }
        Ok(())
    }
}

impl<'de, const SCALE: u32, const SIGN: u8> Deserialize<'de> for Number<SCALE, SIGN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Number(n) => Self::check::<D::Error>(&n.to_string(), true)?,
            Value::String(s) => {
                no_nul::<D::Error>(s)?;
                Self::check::<D::Error>(trim(s), false)?
            }
            _ => return Err(de::Error::custom("must be a number")),
        }
        Ok(Number(v))
    }
}

impl<const SCALE: u32, const SIGN: u8> Serialize for Number<SCALE, SIGN> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<const SCALE: u32, const SIGN: u8> PartialSchema for Number<SCALE, SIGN> {
    fn schema() -> RefOr<Schema> {
        let sign = match SIGN {
            POSITIVE => ", greater than 0",
            NON_NEGATIVE => ", 0 or more",
            _ => "",
        };
        let mut number = ObjectBuilder::new().schema_type(Type::Number);
        if SIGN == POSITIVE {
            number = number.exclusive_minimum(Some(0.0));
        }
        if SIGN == NON_NEGATIVE {
            number = number.minimum(Some(0.0));
        }
        number = number.exclusive_maximum(Some(1e15));
        OneOfBuilder::new()
            .item(number)
            .item(string_schema().pattern(Some(r"^ *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+) *$")))
            .description(Some(format!(
                "A number (or a numeric string) with at most {SCALE} decimals, below 10^15 in absolute value{sign}. \
                 Exact: the digits sent are the digits stored (never rounded through a binary float); \
                 send a decimal's own text, e.g. 12345678901234.5678."
            )))
            .into()
    }
}

impl<const SCALE: u32, const SIGN: u8> ToSchema for Number<SCALE, SIGN> {
    fn name() -> Cow<'static, str> {
        let sign = match SIGN {
            POSITIVE => "Positive",
            NON_NEGATIVE => "NonNegative",
            _ => "",
        };
        Cow::Owned(format!("{sign}Decimal{SCALE}"))
    }
}

/// An integer between `MIN` and `MAX` (`payload_integer` plus the
/// function's own range check); `12.0` and `"12"` count as integers.
#[derive(Debug, Clone, PartialEq)]
pub struct Int<const MIN: i64, const MAX: i64>(pub Value);

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = match &v {
            Value::Number(n) => Decimal::parse(&n.to_string(), true),
            Value::String(s) => {
                no_nul::<D::Error>(s)?;
                Decimal::parse(trim(s), false)
            }
            _ => None,
        };
        let (negative, dec) = parsed.ok_or_else(|| de::Error::custom("must be an integer"))?;
        if dec.scale() > 0 {
            return Err(de::Error::custom("must be an integer"));
        }
        match dec.to_i128(negative) {
            Some(n) if (MIN as i128..=MAX as i128).contains(&n) => {}
            _ => {
                return Err(de::Error::custom(format!(
                    "must be an integer from {MIN} to {MAX}"
                )))
            }
        }
        Ok(Int(v))
    }
}

impl<const MIN: i64, const MAX: i64> Serialize for Int<MIN, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Int<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(MIN as f64))
                    .maximum(Some(MAX as f64)),
            )
            .item(string_schema().pattern(Some(r"^ *[+-]?[0-9]+(\.0*)? *$")))
            .description(Some(format!("An integer from {MIN} to {MAX}.")))
            .into()
    }
}

impl<const MIN: i64, const MAX: i64> ToSchema for Int<MIN, MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Int{MIN}To{MAX}").replace('-', "Minus"))
    }
}

// ------------------------------------------------------------------ lists

/// A JSON array of at most `MAX` UUIDs.
#[derive(Debug, Clone, PartialEq)]
pub struct IdList<const MAX: usize>(pub Vec<Id>);

impl<'de, const MAX: usize> Deserialize<'de> for IdList<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<Id>::deserialize(d)?;
        if items.len() > MAX {
            return Err(de::Error::custom(format!("at most {MAX} items")));
        }
        Ok(IdList(items))
    }
}

impl<const MAX: usize> Serialize for IdList<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<const MAX: usize> PartialSchema for IdList<MAX> {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(Id::schema())
            .max_items(Some(MAX))
            .into()
    }
}

impl<const MAX: usize> ToSchema for IdList<MAX> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("IdList{MAX}"))
    }
}

/// A JSON array of at most `MAX` objects `T` (invoice lines): each element
/// must be an object (not an array of fields by position); errors keep
/// their path (`lines[2].quantity`). Document a field of this type with
/// `#[schema(value_type = Option<Vec<T>>, max_items = MAX)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objects<T, const MAX: usize>(pub Vec<T>);

struct Element<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Element<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor(PhantomData))?
            .map(Element)
            .ok_or_else(|| de::Error::custom("must be a JSON object"))
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Objects<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<Element<T>>::deserialize(d)?;
        if items.len() > MAX {
            return Err(de::Error::custom(format!("at most {MAX} items")));
        }
        Ok(Objects(items.into_iter().map(|e| e.0).collect()))
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Objects<T, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

// ------------------------------------------------------------------ closed sets

/// How a closed set folds the case of its input before comparing, as the
/// SQL functions fold it (`lower(...)`, `upper(...)` or not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Exact,
    Lower,
    Upper,
}

impl Fold {
    fn apply(self, s: &str) -> String {
        match self {
            Fold::Exact => s.to_owned(),
            Fold::Lower => s.to_lowercase(),
            Fold::Upper => s.to_uppercase(),
        }
    }
}

/// A closed set of the API: the terms of one or more vocabularies of the
/// database (lookup tables, migration V20), read at startup
/// ([`crate::vocabulary`]); no term is written here.
#[derive(Debug, Clone, Copy)]
pub struct ClosedSet {
    /// The schema's name in the OpenAPI document.
    pub name: &'static str,
    /// The lookup tables whose terms it takes (their union).
    pub vocabularies: &'static [&'static str],
    pub fold: Fold,
}

impl ClosedSet {
    /// Trims spaces, folds the case and checks the term against the
    /// current vocabulary (see [`crate::vocabulary::Vocabulary::scope`]).
    fn parse<E: de::Error>(&self, s: &str) -> Result<String, E> {
        let folded = self.fold.apply(trim(s));
        let Some(vocabulary) = crate::vocabulary::Vocabulary::current() else {
            return Err(E::custom(
                "cannot be checked: no vocabulary is loaded (a bug of the server)",
            ));
        };
        let terms = vocabulary.union(self.vocabularies);
        if terms.contains(&folded.as_str()) {
            Ok(folded)
        } else {
            Err(E::custom(format!("must be one of {}", terms.join(", "))))
        }
    }

    /// A string schema whose `enum` the served document fills from the
    /// vocabulary (the `x-vocabulary` extension names the lookup tables).
    fn schema(&self, doc: &str) -> RefOr<Schema> {
        let case = match self.fold {
            Fold::Exact => String::new(),
            Fold::Lower | Fold::Upper => " (case-insensitive)".into(),
        };
        let extensions = utoipa::openapi::extensions::ExtensionsBuilder::new()
            .add(crate::vocabulary::VOCABULARY_KEY, self.vocabularies)
            .build();
        let doc: Vec<&str> = doc
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        string_schema()
            .description(Some(format!("{}{case}", doc.join(" "))))
            .extensions(Some(extensions))
            .into()
    }
}

/// Declares the closed sets: for each a type holding the folded term (it
/// parses the way the database compares, serializes as the term and
/// documents itself as a string schema whose enum comes from the
/// vocabulary), and [`CLOSED_SETS`], the list of them all.
macro_rules! closed_sets {
    ($($(#[doc = $doc:literal])+ $name:ident, fold = $fold:ident, vocabularies = [$($vocabulary:literal),+];)+) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, PartialEq, Eq)]
            pub struct $name(String);

            impl $name {
                pub const SET: ClosedSet = ClosedSet {
                    name: stringify!($name),
                    vocabularies: &[$($vocabulary),+],
                    fold: Fold::$fold,
                };
                pub fn as_str(&self) -> &str {
                    &self.0
                }
                pub fn into_string(self) -> String {
                    self.0
                }
            }

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let s = String::deserialize(d)?;
                    Self::SET.parse::<D::Error>(&s).map($name)
                }
            }

            impl Serialize for $name {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.serialize_str(&self.0)
                }
            }

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    Self::SET.schema(concat!($($doc, "\n"),+))
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )+

        /// Every closed set of the API.
        pub const CLOSED_SETS: &[ClosedSet] = &[$($name::SET),+];
    };
}

closed_sets! {
    /// Where a lead came from.
    Channel, fold = Lower, vocabularies = ["lead_channels"];
    /// A status a lead can be moved to with PATCH; the database refuses
    /// ASSIGNED there (that comes with POST /api/leads/{id}/assign) and
    /// checks the transition.
    LeadStatus, fold = Upper, vocabularies = ["lead_statuses"];
    /// Every status of a lead (lists filter by it).
    LeadState, fold = Upper, vocabularies = ["lead_statuses"];
    /// Every status of an invoice.
    InvoiceStatus, fold = Upper, vocabularies = ["invoice_statuses"];
    /// The type of a ticket (exact, lower case).
    TicketType, fold = Exact, vocabularies = ["ticket_types"];
    /// Ticket priority.
    Priority, fold = Lower, vocabularies = ["ticket_priorities"];
    /// Statuses of tickets (ticket_status) and inquiries (inquiry_status);
    /// which apply and which transitions are allowed is the database's.
    TicketStatus, fold = Upper, vocabularies = ["ticket_statuses", "inquiry_statuses"];
    /// The status of a new invoice: the database takes DRAFT or ISSUED.
    NewInvoiceStatus, fold = Upper, vocabularies = ["invoice_statuses"];
    /// How a payment was made.
    PaymentMethod, fold = Lower, vocabularies = ["payment_methods"];
    /// Where a KPI actual comes from (IMPORTED entries name their import row).
    EntrySource, fold = Upper, vocabularies = ["kpi_entry_sources"];
    /// An app role of a profile (what it may do is role_permissions).
    AppRole, fold = Lower, vocabularies = ["app_roles"];
    /// A scope of an API key (what it allows: api_scope_permissions).
    ApiScope, fold = Exact, vocabularies = ["api_scopes"];
    /// The kind of a background job (what its handler does).
    JobKind, fold = Exact, vocabularies = ["job_kinds"];
    /// The state of a background job.
    JobStatus, fold = Lower, vocabularies = ["job_statuses"];
    /// An AI feature of the LLM gateway (its route, limits and cache are
    /// data: llm_features, llm_routes, llm_limits).
    LlmFeature, fold = Exact, vocabularies = ["llm_features"];
    /// Who may read a knowledge-base document (and its chunks).
    KbVisibility, fold = Lower, vocabularies = ["kb_visibilities"];
    /// The format a knowledge-base document is read as.
    KbFormat, fold = Lower, vocabularies = ["kb_formats"];
    /// The state of a knowledge-base document's ingestion.
    KbStatus, fold = Lower, vocabularies = ["kb_statuses"];
    /// The kind of an SOP rule (what it checks; its parameters are
    /// sop_rule_kinds.parameters).
    SopRuleKind, fold = Lower, vocabularies = ["sop_rule_kinds"];
    /// What a failing SOP rule does: block refuses the draft, warn advises.
    SopSeverity, fold = Lower, vocabularies = ["sop_severities"];
    /// An RFM segment (its rule is data: rfm_segments).
    RfmSegment, fold = Lower, vocabularies = ["rfm_segments"];
    /// A channel segment content is written for.
    RfmChannel, fold = Lower, vocabularies = ["rfm_channels"];
    /// A permission a role may hold (what it allows is checked by the
    /// database's functions and policies; a tenant grants and revokes them
    /// per role).
    Permission, fold = Lower, vocabularies = ["permissions"];
    /// The kind of a sales activity; users log the manual ones (visit,
    /// call, meeting, ...), the database writes the others (stage
    /// changes, RFQs, lead assignments).
    ActivityType, fold = Lower, vocabularies = ["activity_types"];
    /// A webhook event type (what changed).
    WebhookEventType, fold = Lower, vocabularies = ["webhook_event_types"];
    /// The state of a webhook delivery.
    WebhookDeliveryStatus, fold = Lower, vocabularies = ["webhook_delivery_statuses"];
    /// The status of a tenant's subscription (its transitions are the
    /// database's lifecycle guard).
    SubscriptionStatus, fold = Lower, vocabularies = ["subscription_statuses"];
    /// How often a subscription's plan fee is billed.
    BillingInterval, fold = Lower, vocabularies = ["billing_intervals"];
    /// The status of an operator invoice to a tenant.
    BillingInvoiceStatus, fold = Lower, vocabularies = ["billing_invoice_statuses"];
    /// The kind of a line of an operator invoice.
    BillingLineKind, fold = Lower, vocabularies = ["billing_line_kinds"];
    /// How a payment of an operator invoice came.
    BillingPaymentMethod, fold = Lower, vocabularies = ["billing_payment_methods"];
    /// The status of a tenant's transfer proof.
    BillingTransferProofStatus, fold = Lower, vocabularies = ["billing_transfer_proof_statuses"];
}

/// Reads the view as a request would (`bizos_authenticated`, the role
/// granted the lookup tables; the BFF's login has no grant of its own).
const LOAD_VOCABULARY: &str = "select vocabulary, term, position::integer
  from vocabulary order by vocabulary, position, term";

impl crate::vocabulary::Vocabulary {
    /// Loads the `vocabulary` view through the app pool. Fails when a
    /// closed set of the API names a vocabulary the database lacks or that
    /// is empty (an unmigrated database, or code ahead of its schema).
    pub async fn load(pool: &PgPool) -> anyhow::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("select set_config('role', $1, true)")
            .bind(crate::db::REQUEST_ROLE)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, String, i32)> = sqlx::query_as(LOAD_VOCABULARY)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot read the vocabulary (is the database migrated?): {e}")
            })?;
        tx.rollback().await?;
        let vocabulary = Self::from_rows(rows);
        for set in CLOSED_SETS {
            for name in set.vocabularies {
                if vocabulary.terms(name).is_empty() {
                    anyhow::bail!(
                        "the database has no terms of vocabulary {name} (closed set {}): \
                         is the database migrated?",
                        set.name
                    );
                }
            }
        }
        Ok(vocabulary)
    }
}

// ------------------------------------------------------------------ optional and PATCH fields

/// For `#[serde(default, deserialize_with = "blank_is_none")]` on optional
/// non-text fields: null and a blank string mean absent, as in the
/// database's payload readers.
pub fn blank_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if trim(&s).is_empty() => Ok(None),
        other => T::deserialize(other)
            .map(Some)
            .map_err(|e| de::Error::custom(strip_position(&e.to_string()))),
    }
}

/// Derived struct deserializers also take a JSON array (fields by
/// position); request bodies and nested objects must be JSON objects.
/// This visitor takes only an object (or null: `None`), and hands the
/// path-tracking map on, so errors inside keep their JSON path.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(NotANumber {
            inner: map,
            first: true,
        }))
        .map(Some)
    }
}

/// The one key under which serde_json's `arbitrary_precision` hands a
/// number to `deserialize_any`, as a map of its digits.
pub(crate) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A map that is really a number (see [`NUMBER_TOKEN`]) is refused like
/// any other non-object, instead of reaching `T` as an unknown key.
struct NotANumber<A> {
    inner: A,
    first: bool,
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for NotANumber<A> {
    type Error = A::Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if std::mem::take(&mut self.first) {
            self.inner.next_key_seed(FirstKey(seed))
        } else {
            self.inner.next_key_seed(seed)
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct FirstKey<K>(K);

impl<'de, K: de::DeserializeSeed<'de>> de::DeserializeSeed<'de> for FirstKey<K> {
    type Value = K::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        let key = String::deserialize(d)?;
        if key == NUMBER_TOKEN {
            return Err(de::Error::invalid_type(
                de::Unexpected::Other("a number"),
                &"a JSON object",
            ));
        }
        self.0
            .deserialize(de::IntoDeserializer::<D::Error>::into_deserializer(key))
    }
}

/// For `#[serde(default, deserialize_with = "object")]` on an optional
/// nested object (`rfq`): an object, null or absent.
pub fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(ObjectVisitor(PhantomData))
}

/// A request body: a JSON object parsed into `T`.
pub struct Body<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Body<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectVisitor(PhantomData))?
            .map(Body)
            .ok_or_else(|| de::Error::custom("must be a JSON object"))
    }
}

/// serde_json appends " at line L column C" to its messages; in a field's
/// error the field says where.
pub fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// A field of a PATCH body: absent (unchanged), null or a blank string
/// (cleared, as the database reads both) or a new value. Use with
/// `#[serde(default, skip_serializing_if = "Patch::is_absent")]` and
/// `#[schema(value_type = Option<T>)]` (absent and null documented).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match blank_is_none::<D, T>(d)? {
            None => Patch::Clear,
            Some(v) => Patch::Set(v),
        })
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Set(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

/// A PATCH field that can be changed but not cleared: absent or a value
/// (null is refused, as the database refuses it). Use with
/// `#[serde(default, skip_serializing_if = "Change::is_absent")]` and
/// `#[schema(value_type = T)]` (optional, not nullable).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Change<T> {
    #[default]
    Absent,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Change::Absent)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Err(de::Error::custom(
                "cannot be null (leave it out to keep it)",
            ));
        }
        T::deserialize(v)
            .map(Change::Set)
            .map_err(|e| de::Error::custom(strip_position(&e.to_string())))
    }
}

impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::Set(v) => v.serialize(s),
            Change::Absent => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse<T: DeserializeOwned>(v: Value) -> Result<T, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn text_counts_characters_after_trimming_and_refuses_nul() {
        assert!(parse::<Text<3>>(json!("  abc  ")).is_ok());
        assert!(parse::<Text<3>>(json!("é€😀")).is_ok());
        assert!(parse::<Text<3>>(json!("abcd"))
            .unwrap_err()
            .contains("at most 3"));
        assert!(parse::<Text<3>>(json!("a\u{0}"))
            .unwrap_err()
            .contains("NUL"));
        assert!(parse::<Text<3>>(json!("")).is_ok());
        assert!(parse::<NonBlank<3>>(json!("   "))
            .unwrap_err()
            .contains("required"));
        assert!(parse::<Text<3>>(json!({"x": 1})).is_err());
        assert!(parse::<Text<3>>(json!(12)).is_err());
    }

    #[test]
    fn instants_are_rfc_3339_with_an_offset() {
        for ok in [
            "2026-05-04T09:30:00+07:00",
            "2026-05-04T02:30:00.5Z",
            "2026-05-04 02:30:00z",
            "2026-05-04t02:30:00.123456789-03:30",
            " 2026-05-04T09:30:00+07:00 ",
        ] {
            assert_eq!(
                parse::<Instant>(json!(ok)).map(|i| i.0),
                Ok(ok.to_owned()),
                "{ok}"
            );
        }
        for bad in [
            "2026-05-04T09:30+07:00",
            "2026-05-04T09:30:00",
            "2026-05-04T09:30:00+0700",
            "2026-05-04T09:30:00.Z",
            "2026-02-30T09:30:00Z",
            "2026-05-04T25:30:00Z",
            "2026-05-04",
            "",
        ] {
            assert!(parse::<Instant>(json!(bad)).is_err(), "{bad}");
        }
        assert!(parse::<Instant>(json!(1_700_000_000)).is_err());
    }

    #[test]
    fn numbers_follow_payload_numeric() {
        type Money = Number<2, ANY_SIGN>;
        for ok in [
            json!(1),
            json!(-12.5),
            json!("12.50"),
            json!(" 7 "),
            json!(".5"),
            json!(999999999999999.9),
        ] {
            assert!(parse::<Money>(ok.clone()).is_ok(), "{ok}");
        }
        for bad in [
            json!(1.234),
            json!("1e3"),
            json!("abc"),
            json!(true),
            json!(1e15),
            json!("1000000000000000"),
            json!(""),
        ] {
            assert!(parse::<Money>(bad.clone()).is_err(), "{bad}");
        }
        assert!(parse::<PositiveAmount>(json!(0)).is_err());
        assert!(parse::<PositiveAmount>(json!("-1")).is_err());
        assert!(parse::<NonNegativeAmount>(json!(0)).is_ok());
        assert!(parse::<NonNegativeAmount>(json!(-0.01)).is_err());
        assert!(parse::<Quantity>(json!(1e-3)).is_ok());
        assert!(parse::<Quantity>(json!(1e-4)).is_err());
    }

    /// The digits of a number reach the database as sent: an f64 would
    /// make 12345678901234.5678 …568 (and 999999999999999.99 1e15).
    #[test]
    fn numbers_keep_their_digits() {
        #[derive(Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        struct Kpi {
            value: KpiValue,
            amount: PositiveAmount,
        }
        let body = br#"{"value": 12345678901234.5678, "amount": 999999999999999.99}"#;
        let kpi: Kpi = crate::extract::parse_body(body).unwrap();
        assert_eq!(
            serde_json::to_string(&kpi).unwrap(),
            r#"{"value":12345678901234.5678,"amount":999999999999999.99}"#
        );
        let value = serde_json::to_value(&kpi).unwrap();
        assert_eq!(value["value"].to_string(), "12345678901234.5678");
    }

    #[test]
    fn integers_and_ranges() {
        type Terms = Int<0, 365>;
        for ok in [
            json!(0),
            json!(365),
            json!("30"),
            json!(30.0),
            json!("30.00"),
        ] {
            assert!(parse::<Terms>(ok.clone()).is_ok(), "{ok}");
        }
        for bad in [json!(-1), json!(366), json!(1.5), json!("x"), json!(1e20)] {
            assert!(parse::<Terms>(bad.clone()).is_err(), "{bad}");
        }
        type Row = Int<1, 2147483647>;
        assert!(parse::<Row>(json!(0)).is_err());
        assert!(parse::<Row>(json!(1)).is_ok());
        assert!(parse::<Row>(json!(2147483648u64)).is_err());
    }

    /// A vocabulary as the database's `vocabulary` view gives it (these
    /// terms are test data; the server reads the real ones).
    fn vocabulary() -> std::sync::Arc<crate::vocabulary::Vocabulary> {
        let rows = [
            ("lead_channels", "website", 1),
            ("lead_channels", "walk_in", 2),
            ("lead_statuses", "NEW", 1),
            ("lead_statuses", "CONTACTED", 2),
            ("ticket_types", "complaint", 1),
            ("ticket_priorities", "normal", 1),
            ("ticket_priorities", "high", 2),
        ];
        std::sync::Arc::new(crate::vocabulary::Vocabulary::from_rows(
            rows.map(|(v, t, p)| (v.to_owned(), t.to_owned(), p)),
        ))
    }

    #[test]
    fn closed_sets_fold_like_the_database() {
        vocabulary().scope(|| {
            assert_eq!(
                parse::<Channel>(json!(" WebSite ")).unwrap().as_str(),
                "website"
            );
            assert_eq!(
                parse::<Channel>(json!("pigeon")).unwrap_err(),
                "must be one of website, walk_in"
            );
            assert!(parse::<TicketType>(json!("Complaint")).is_err());
            assert!(parse::<TicketType>(json!("complaint")).is_ok());
            let status = parse::<LeadStatus>(json!("contacted")).unwrap();
            assert_eq!(serde_json::to_value(status).unwrap(), json!("CONTACTED"));
        });
        // Outside a scope nothing passes unchecked.
        assert!(parse::<Channel>(json!("website"))
            .unwrap_err()
            .contains("no vocabulary"));
    }

    #[test]
    fn closed_sets_document_their_vocabularies() {
        let schema = serde_json::to_value(Priority::schema()).unwrap();
        assert_eq!(schema["x-vocabulary"], json!(["ticket_priorities"]));
        assert!(schema.get("enum").is_none(), "{schema}");
        let doc = utoipa::openapi::OpenApiBuilder::new()
            .components(Some(
                utoipa::openapi::ComponentsBuilder::new()
                    .schema("Priority", Priority::schema())
                    .build(),
            ))
            .build();
        let filled = serde_json::to_value(vocabulary().fill_document(doc)).unwrap();
        assert_eq!(
            filled["components"]["schemas"]["Priority"]["enum"],
            json!(["normal", "high"])
        );
    }

    #[test]
    fn shapes_dates_and_ids() {
        assert!(parse::<DeptCode>(json!("ops-jkt")).is_ok());
        assert!(parse::<DeptCode>(json!("1OPS")).is_err());
        assert!(parse::<Month>(json!("2026-13")).is_err());
        assert!(parse::<Month>(json!("2026-03")).is_ok());
        assert!(parse::<Currency>(json!("idr")).is_ok());
        assert!(parse::<Date>(json!("2026-02-30")).is_err());
        assert!(parse::<Date>(json!("2026-2-3")).is_err());
        assert!(parse::<Date>(json!(" 2026-02-28 ")).is_ok());
        assert!(parse::<Id>(json!("bob")).is_err());
        assert!(parse::<Id>(json!(uuid::Uuid::nil())).is_ok());
    }

    #[test]
    fn patch_fields_keep_absent_null_and_values_apart() {
        #[derive(Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            #[serde(default, skip_serializing_if = "Patch::is_absent")]
            a: Patch<Text<5>>,
            #[serde(default, skip_serializing_if = "Change::is_absent")]
            b: Change<Priority>,
        }
        vocabulary().scope(|| {
            for body in [
                json!({}),
                json!({"a": null}),
                json!({"a": "x", "b": "high"}),
            ] {
                let p: P = serde_json::from_value(body.clone()).unwrap();
                assert_eq!(serde_json::to_value(&p).unwrap(), body);
            }
            assert!(serde_json::from_value::<P>(json!({"b": null})).is_err());
            assert!(serde_json::from_value::<P>(json!({"b": "urgent"})).is_err());
            assert!(serde_json::from_value::<P>(json!({"c": 1})).is_err());
        });
    }

    #[test]
    fn blank_optional_values_are_absent() {
        #[derive(Deserialize)]
        struct O {
            #[serde(default, deserialize_with = "blank_is_none")]
            id: Option<Id>,
        }
        assert!(serde_json::from_value::<O>(json!({"id": " "}))
            .unwrap()
            .id
            .is_none());
        assert!(serde_json::from_value::<O>(json!({})).unwrap().id.is_none());
        assert!(serde_json::from_value::<O>(json!({"id": "x"})).is_err());
    }
}
