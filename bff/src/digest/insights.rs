//! The three insights of a digest: the prompt and answer schema of the
//! model, the check that every number of a model's insight is one of the
//! figures it cites, and the deterministic insights (the largest movements
//! against the previous period or the target, worded from templates in
//! the tenant's language) that replace an insight failing the check, or
//! all three without a model.
//!
//! The figures are the numeric leaves of `digest_aggregates`, by path:
//! `revenue_invoiced_mtd` (under `figures`), `top_customers.1.invoiced_mtd`
//! (lists numbered from 1), `kpi.2.attainment_pct`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::llm::{Message, Role};

/// Insights of a digest.
pub const COUNT: usize = 3;
/// Longest insight text kept from a model.
const MAX_TEXT: usize = 600;

/// The language of the tenant's texts (`tenants.locale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Id,
    En,
}

impl Locale {
    pub fn parse(code: &str) -> Locale {
        if code == "en" {
            Locale::En
        } else {
            Locale::Id
        }
    }
}

/// One insight as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Insight {
    pub text: String,
    pub figures: Vec<String>,
    pub from_model: bool,
}

impl Insight {
    pub fn to_json(&self) -> Value {
        json!({
            "text": self.text,
            "figures": self.figures,
            "source": if self.from_model { "model" } else { "fallback" },
        })
    }
}

/// The numeric figures of the aggregates by path.
pub fn figures(aggregates: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(map) = aggregates.get("figures").and_then(Value::as_object) {
        for (k, v) in map {
            if let Some(n) = v.as_f64() {
                out.insert(k.clone(), n);
            }
        }
    }
    for list in ["top_customers", "largest_overdue", "kpi"] {
        for (n, item) in numbered(aggregates, list) {
            for (k, v) in item.as_object().into_iter().flatten() {
                if let Some(v) = v.as_f64() {
                    out.insert(format!("{list}.{n}.{k}"), v);
                }
            }
        }
    }
    out
}

/// The items of the aggregates' list `list` (none when it is missing)
/// with their numbers from 1, as figure paths name them
/// (`top_customers.1.invoiced_mtd`).
fn numbered<'a>(aggregates: &'a Value, list: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    let items = aggregates.get(list).and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| (i + 1, item))
}

/// The numbers of the dates of the aggregates (day, month, year of `day`,
/// `prev_day`, ...): an insight may name the day it speaks of.
fn date_numbers(aggregates: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    for key in [
        "day",
        "prev_day",
        "month_start",
        "prev_month_start",
        "prev_month_end",
    ] {
        if let Some(d) = aggregates.get(key).and_then(Value::as_str) {
            out.extend(d.split('-').filter_map(|p| p.parse::<f64>().ok()));
        }
    }
    out
}

/// The messages asking a model for the insights.
pub fn prompt(aggregates: &Value, locale: Locale) -> Vec<Message> {
    let language = match locale {
        Locale::Id => "Bahasa Indonesia",
        Locale::En => "English",
    };
    let system = format!(
        "You are a business analyst writing for the CEO. From the figures given, write exactly \
         three strategic insights, in {language}, one or two sentences each. Every insight \
         cites, in `figures`, the paths of the figures it uses (e.g. revenue_invoiced_mtd, \
         top_customers.1.invoiced_mtd). Use only numbers that appear among the cited figures, \
         written in full or rounded (e.g. 12.5 juta for 12,512,345); compute no new numbers; \
         write no dates. Amounts are in rupiah (IDR)."
    );
    let figures: BTreeMap<String, f64> = figures(aggregates);
    let mut user = format!(
        "Business day {} (compared with {}); month to date from {}.\nFigures (path = value):\n",
        aggregates["day"].as_str().unwrap_or("?"),
        aggregates["prev_day"].as_str().unwrap_or("?"),
        aggregates["month_start"].as_str().unwrap_or("?"),
    );
    for (path, value) in &figures {
        user.push_str(&format!("{path} = {}\n", plain(*value)));
    }
    for (list, field) in [
        ("top_customers", "company_name"),
        ("largest_overdue", "company_name"),
        ("kpi", "name"),
    ] {
        for (n, item) in numbered(aggregates, list) {
            if let Some(name) = item.get(field).and_then(Value::as_str) {
                user.push_str(&format!("{list}.{n}.{field} = {name}\n"));
            }
        }
    }
    vec![
        Message {
            role: Role::System,
            content: system,
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

/// The JSON schema of the model's answer.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "insights": {
                "type": "array",
                "minItems": COUNT,
                "maxItems": COUNT,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "figures": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["text", "figures"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["insights"],
        "additionalProperties": false
    })
}

/// A number as the prompt shows it (no exponent, no trailing zeros).
fn plain(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A number written in a text: the values it may mean (a lone `.` or `,`
/// before three digits is a thousands separator in Indonesian and a
/// decimal point in English) with the decimals written, times its scale
/// word.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    readings: Vec<(f64, u32)>,
    scale: f64,
}

/// Scale words after a number (lower case). A bare "m" is a million (as
/// in English; Indonesian writes juta/jt and miliar).
fn scale_of(word: &str) -> Option<f64> {
    Some(match word {
        "ribu" | "rb" | "thousand" | "k" => 1e3,
        "juta" | "jt" | "million" | "mn" | "m" => 1e6,
        "miliar" | "milyar" | "billion" | "bn" | "b" => 1e9,
        "triliun" | "trillion" | "t" => 1e12,
        _ => return None,
    })
}

/// Reads a run of digits and separators ("12.345.678", "12,5", "1,234").
fn readings(run: &str) -> Vec<(f64, u32)> {
    let seps: Vec<(usize, char)> = run
        .char_indices()
        .filter(|(_, c)| *c == '.' || *c == ',')
        .collect();
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let number = |int: &str, frac: &str| -> Option<(f64, u32)> {
        let text = if frac.is_empty() {
            digits(int)
        } else {
            format!("{}.{}", digits(int), frac)
        };
        text.parse::<f64>().ok().map(|v| (v, frac.len() as u32))
    };
    let groups_ok = |s: &str, sep: char| {
        let parts: Vec<&str> = s.split(sep).collect();
        parts.len() > 1
            && !parts[0].is_empty()
            && parts[0].len() <= 3
            && parts[1..].iter().all(|p| p.len() == 3)
    };
    let mut out = Vec::new();
    match seps.as_slice() {
        [] => out.extend(number(run, "")),
        [(i, _)] => {
            let (int, frac) = (&run[..*i], &run[i + 1..]);
            // A decimal point either way…
            out.extend(number(int, frac));
            // …or a thousands separator.
            if frac.len() == 3 {
                out.extend(number(run, ""));
            }
        }
        many => {
            let first = many[0].1;
            if many.iter().all(|(_, c)| *c == first) {
                if groups_ok(run, first) {
                    out.extend(number(run, ""));
                }
            } else {
                // Both kinds: the last is the decimal separator.
                let (last_i, last_c) = *many.last().unwrap();
                let int = &run[..last_i];
                let thousands = if last_c == '.' { ',' } else { '.' };
                if groups_ok(int, thousands) || !int.contains(thousands) {
                    out.extend(number(int, &run[last_i + 1..]));
                }
            }
        }
    }
    out
}

/// The numbers written in `text`.
fn numbers(text: &str) -> Vec<Written> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || ((chars[i] == '.' || chars[i] == ',')
                    && i + 1 < chars.len()
                    && chars[i + 1].is_ascii_digit()))
        {
            i += 1;
        }
        let run: String = chars[start..i].iter().collect();
        // A scale word right after (optionally one space).
        let mut j = i;
        if j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let word: String = chars[j..]
            .iter()
            .take_while(|c| c.is_alphabetic() || **c == '.')
            .collect::<String>()
            .to_lowercase();
        let word = word.trim_end_matches('.');
        let scale = scale_of(word).unwrap_or(1.0);
        out.push(Written {
            readings: readings(&run),
            scale,
        });
    }
    out
}

/// Does the written number show `value` (rounded to the decimals written,
/// in its scale; the sign is in the words: "turun 12,5%")?
fn shows(w: &Written, value: f64) -> bool {
    let v = value.abs() / w.scale;
    w.readings.iter().any(|(x, decimals)| {
        let f = 10f64.powi(*decimals as i32);
        ((v * f).round() - x * f).abs() < 1e-6
    })
}

/// Why a model's insight is refused, or None when it passes: the text is
/// present, it cites figures that exist, and every number in it shows one
/// of the cited figures (or a date of the digest).
pub fn refusal(
    text: &str,
    cited: &[String],
    figures: &BTreeMap<String, f64>,
    dates: &[f64],
) -> Option<String> {
    if text.trim().is_empty() {
        return Some("empty text".into());
    }
    if text.chars().count() > MAX_TEXT {
        return Some(format!("longer than {MAX_TEXT} characters"));
    }
    if cited.is_empty() {
        return Some("cites no figure".into());
    }
    let mut values = Vec::new();
    for path in cited {
        match figures.get(path) {
            Some(v) => values.push(*v),
            None => return Some(format!("cites {path:?}, which is not a figure")),
        }
    }
    for w in numbers(text) {
        let is_date =
            w.scale == 1.0 && w.readings.iter().any(|(x, d)| *d == 0 && dates.contains(x));
        if !is_date && !values.iter().any(|v| shows(&w, *v)) {
            let shown = w.readings.first().map(|(x, _)| *x).unwrap_or_default();
            return Some(format!(
                "the number {} is none of the cited figures",
                plain(shown * w.scale)
            ));
        }
    }
    None
}

/// The model's insights that pass the check, in order, and how many were
/// refused (an answer that is not the schema's shape counts as three
/// refused).
pub fn checked(answer: &Value, aggregates: &Value) -> (Vec<Insight>, usize) {
    let figures = figures(aggregates);
    let dates = date_numbers(aggregates);
    let Some(items) = answer.get("insights").and_then(Value::as_array) else {
        return (Vec::new(), COUNT);
    };
    let mut kept = Vec::new();
    let mut refused = 0;
    for item in items.iter().take(COUNT) {
        let text = item.get("text").and_then(Value::as_str).unwrap_or("");
        let cited: Vec<String> = item
            .get("figures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        match refusal(text, &cited, &figures, &dates) {
            None => kept.push(Insight {
                text: text.trim().to_owned(),
                figures: cited,
                from_model: true,
            }),
            Some(why) => {
                tracing::info!(reason = %why, "a model's digest insight was replaced");
                refused += 1;
            }
        }
    }
    refused += COUNT.saturating_sub(items.len().min(COUNT));
    (kept, refused)
}

/// A rupiah amount in the tenant's language: "Rp 12.345.678" / "IDR 12,345,678".
pub fn money(v: f64, locale: Locale) -> String {
    let (prefix, sep) = match locale {
        Locale::Id => ("Rp ", '.'),
        Locale::En => ("IDR ", ','),
    };
    let n = v.round().abs() as u128;
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    let sign = if v.round() < 0.0 { "-" } else { "" };
    format!("{sign}{prefix}{grouped}")
}

/// A percentage with one decimal: "25,3%" / "25.3%" (no sign).
pub fn percent(v: f64, locale: Locale) -> String {
    // Half away from zero (format! alone rounds 12.25 to 12.2).
    let s = format!("{:.1}", (v.abs() * 10.0).round() / 10.0);
    match locale {
        Locale::Id => format!("{}%", s.replace('.', ",")),
        Locale::En => format!("{s}%"),
    }
}

/// A count.
fn count(v: f64) -> String {
    format!("{}", v.round() as i64)
}

/// How a figure is shown.
#[derive(Clone, Copy)]
enum Kind {
    Money,
    Count,
}

/// A movement the deterministic insights may report: a figure against its
/// comparison, with its weight (the size of the change).
struct Movement {
    weight: f64,
    figures: Vec<String>,
    text: String,
}

/// The figure pairs compared, with their labels and comparison wording.
const PAIRS: [(&str, &str, Kind, &str, &str, &str, &str); 8] = [
    (
        "revenue_invoiced_mtd",
        "revenue_invoiced_prev_mtd",
        Kind::Money,
        "Pendapatan yang ditagih bulan berjalan",
        "periode yang sama bulan lalu",
        "Revenue invoiced month to date",
        "the same period last month",
    ),
    (
        "revenue_collected_mtd",
        "revenue_collected_prev_mtd",
        Kind::Money,
        "Kas yang diterima bulan berjalan",
        "periode yang sama bulan lalu",
        "Cash collected month to date",
        "the same period last month",
    ),
    (
        "revenue_invoiced_day",
        "revenue_invoiced_prev_day",
        Kind::Money,
        "Pendapatan yang ditagih pada hari kerja terakhir",
        "hari kerja sebelumnya",
        "Revenue invoiced on the last business day",
        "the business day before",
    ),
    (
        "revenue_collected_day",
        "revenue_collected_prev_day",
        Kind::Money,
        "Kas yang diterima pada hari kerja terakhir",
        "hari kerja sebelumnya",
        "Cash collected on the last business day",
        "the business day before",
    ),
    (
        "leads_new_mtd",
        "leads_new_prev_mtd",
        Kind::Count,
        "Lead baru bulan berjalan",
        "periode yang sama bulan lalu",
        "New leads month to date",
        "the same period last month",
    ),
    (
        "leads_new_day",
        "leads_new_prev_day",
        Kind::Count,
        "Lead baru pada hari kerja terakhir",
        "hari kerja sebelumnya",
        "New leads on the last business day",
        "the business day before",
    ),
    (
        "sla_breaches_mtd",
        "sla_breaches_prev_mtd",
        Kind::Count,
        "Tiket yang melanggar SLA bulan berjalan",
        "periode yang sama bulan lalu",
        "Tickets that breached their SLA month to date",
        "the same period last month",
    ),
    (
        "ar_overdue",
        "ar_overdue_month_start",
        Kind::Money,
        "Piutang lewat jatuh tempo",
        "akhir bulan lalu",
        "Overdue receivables",
        "the end of last month",
    ),
];

fn show(v: f64, kind: Kind, locale: Locale) -> String {
    match kind {
        Kind::Money => money(v, locale),
        Kind::Count => count(v),
    }
}

/// The movements of the aggregates, largest first.
fn movements(aggregates: &Value, locale: Locale) -> Vec<Movement> {
    let f = figures(aggregates);
    let mut out = Vec::new();
    for (cur, prev, kind, label_id, against_id, label_en, against_en) in PAIRS {
        let (Some(c), Some(p)) = (f.get(cur), f.get(prev)) else {
            continue;
        };
        if *c == 0.0 && *p == 0.0 {
            continue;
        }
        let change_key = format!("{cur}_change_pct");
        let change = f.get(&change_key).copied();
        let (c_s, p_s) = (show(*c, kind, locale), show(*p, kind, locale));
        let text = match (locale, change) {
            (Locale::Id, Some(ch)) => format!(
                "{label_id} {c_s}, {} {} dibanding {against_id} ({p_s}).",
                if ch >= 0.0 { "naik" } else { "turun" },
                percent(ch, locale)
            ),
            (Locale::En, Some(ch)) => format!(
                "{label_en} is {c_s}, {} {} on {against_en} ({p_s}).",
                if ch >= 0.0 { "up" } else { "down" },
                percent(ch, locale)
            ),
            (Locale::Id, None) => {
                format!("{label_id} {c_s}, sedangkan {against_id} nihil.")
            }
            (Locale::En, None) => format!("{label_en} is {c_s}, against none in {against_en}."),
        };
        // From nothing to something: as large as a doubling.
        let weight = change.map_or(100.0, f64::abs);
        let mut cited = vec![cur.to_owned(), prev.to_owned()];
        if change.is_some() {
            cited.push(change_key);
        }
        out.push(Movement {
            weight,
            figures: cited,
            text,
        });
    }
    // Revenue against the month's target, against the share of the month gone.
    if let (Some(att), Some(elapsed), Some(target)) = (
        f.get("revenue_target_attainment_pct"),
        f.get("month_elapsed_pct"),
        f.get("revenue_target_month"),
    ) {
        let text = match locale {
            Locale::Id => format!(
                "Pendapatan bulan berjalan mencapai {} dari target bulan ini ({}), dengan {} bulan sudah berlalu.",
                percent(*att, locale),
                money(*target, locale),
                percent(*elapsed, locale)
            ),
            Locale::En => format!(
                "Revenue month to date is {} of the month's target ({}), with {} of the month gone.",
                percent(*att, locale),
                money(*target, locale),
                percent(*elapsed, locale)
            ),
        };
        out.push(Movement {
            weight: (att - elapsed).abs(),
            figures: vec![
                "revenue_target_attainment_pct".into(),
                "revenue_target_month".into(),
                "month_elapsed_pct".into(),
            ],
            text,
        });
    }
    // Largest first; ties in the order above (a stable sort).
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    out
}

/// Statements of the state of the business, for a day with too few
/// movements to fill three insights.
fn statements(aggregates: &Value, locale: Locale) -> Vec<Movement> {
    let f = figures(aggregates);
    let get = |k: &str| f.get(k).copied().unwrap_or(0.0);
    let (pending, overdue_tickets) = (get("tickets_pending"), get("tickets_pending_overdue"));
    let (ar, ar_over) = (get("ar_outstanding"), get("ar_overdue"));
    let (inv, col) = (get("revenue_invoiced_mtd"), get("revenue_collected_mtd"));
    let texts = match locale {
        Locale::Id => [
            format!(
                "Ada {} tiket yang belum selesai, {} di antaranya melewati batas waktu SLA.",
                count(pending),
                count(overdue_tickets)
            ),
            format!(
                "Piutang terbuka {}, dengan {} lewat jatuh tempo.",
                money(ar, locale),
                money(ar_over, locale)
            ),
            format!(
                "Bulan berjalan: pendapatan ditagih {} dan kas diterima {}.",
                money(inv, locale),
                money(col, locale)
            ),
        ],
        Locale::En => [
            format!(
                "{} tickets are pending, {} of them past an SLA due time.",
                count(pending),
                count(overdue_tickets)
            ),
            format!(
                "Open receivables are {}, of which {} are overdue.",
                money(ar, locale),
                money(ar_over, locale)
            ),
            format!(
                "Month to date: {} invoiced and {} collected.",
                money(inv, locale),
                money(col, locale)
            ),
        ],
    };
    let cited = [
        vec!["tickets_pending", "tickets_pending_overdue"],
        vec!["ar_outstanding", "ar_overdue"],
        vec!["revenue_invoiced_mtd", "revenue_collected_mtd"],
    ];
    texts
        .into_iter()
        .zip(cited)
        .map(|(text, figures)| Movement {
            weight: 0.0,
            figures: figures.into_iter().map(str::to_owned).collect(),
            text,
        })
        .collect()
}

/// The deterministic insights, best first: the largest movements, then
/// statements of the state of the business (always at least three).
pub fn deterministic(aggregates: &Value, locale: Locale) -> Vec<Insight> {
    movements(aggregates, locale)
        .into_iter()
        .chain(statements(aggregates, locale))
        .map(|m| Insight {
            text: m.text,
            figures: m.figures,
            from_model: false,
        })
        .collect()
}

/// Three insights: the model's that passed (in order), then deterministic
/// ones, never one citing the same figures as an insight already taken.
pub fn complete(mut kept: Vec<Insight>, aggregates: &Value, locale: Locale) -> Vec<Insight> {
    kept.truncate(COUNT);
    let spare = deterministic(aggregates, locale);
    // First those about a figure no insight taken speaks of, then any.
    for fresh_only in [true, false] {
        for d in &spare {
            if kept.len() == COUNT {
                return kept;
            }
            let fresh = kept.iter().all(|k| !k.figures.contains(&d.figures[0]));
            if (fresh || !fresh_only) && !kept.contains(d) {
                kept.push(d.clone());
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregates() -> Value {
        json!({
            "day": "2026-12-01", "prev_day": "2026-11-30", "month_start": "2026-12-01",
            "prev_month_start": "2026-11-01", "prev_month_end": "2026-11-01",
            "figures": {
                "revenue_invoiced_day": 12512345, "revenue_invoiced_prev_day": 10000000,
                "revenue_invoiced_day_change_pct": 25.1,
                "revenue_invoiced_mtd": 12512345, "revenue_invoiced_prev_mtd": 0,
                "revenue_invoiced_mtd_change_pct": null,
                "revenue_collected_mtd": 5000000, "revenue_collected_prev_mtd": 8000000,
                "revenue_collected_mtd_change_pct": -37.5,
                "revenue_target_month": 300000000, "revenue_target_attainment_pct": 4.2,
                "month_elapsed_pct": 3.3,
                "leads_new_mtd": 4, "leads_new_prev_mtd": 4, "leads_new_mtd_change_pct": 0.0,
                "sla_breaches_mtd": 0, "sla_breaches_prev_mtd": 0,
                "tickets_pending": 7, "tickets_pending_overdue": 2,
                "ar_outstanding": 45000000, "ar_overdue": 15000000,
                "ar_overdue_month_start": 10000000, "ar_overdue_change_pct": 50.0
            },
            "top_customers": [{"customer_id": "c1", "company_name": "PT Satu", "invoiced_mtd": 7000000}],
            "largest_overdue": [],
            "kpi": [{"metric_key": "revenue", "name": "Revenue", "targets": 2, "attainment_pct": 61.5}]
        })
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn figures_are_flattened_by_path() {
        let f = figures(&aggregates());
        assert_eq!(f["revenue_invoiced_mtd"], 12512345.0);
        assert_eq!(f["top_customers.1.invoiced_mtd"], 7000000.0);
        assert_eq!(f["kpi.1.attainment_pct"], 61.5);
        assert!(
            !f.contains_key("revenue_invoiced_mtd_change_pct"),
            "null is no figure"
        );
    }

    #[test]
    fn numbers_are_read_in_both_languages() {
        let f = figures(&aggregates());
        let d = date_numbers(&aggregates());
        let ok = |t: &str, p: &[&str]| refusal(t, &paths(p), &f, &d);
        for (text, cited) in [
            (
                "Revenue reached Rp 12.512.345 this month.",
                &["revenue_invoiced_mtd"][..],
            ),
            ("Revenue reached IDR 12,512,345.", &["revenue_invoiced_mtd"]),
            (
                "Pendapatan Rp 12,5 juta bulan ini.",
                &["revenue_invoiced_mtd"],
            ),
            ("Revenue of 12.5 million.", &["revenue_invoiced_mtd"]),
            ("Revenue of 13 million.", &["revenue_invoiced_mtd"]),
            (
                "Kas turun 37,5% menjadi Rp 5 juta.",
                &["revenue_collected_mtd_change_pct", "revenue_collected_mtd"],
            ),
            (
                "PT Satu bought 7 juta, 61.5% KPI attainment.",
                &["top_customers.1.invoiced_mtd", "kpi.1.attainment_pct"],
            ),
            (
                "On 1 December 2026, 7 tickets were pending.",
                &["tickets_pending"],
            ),
        ] {
            assert_eq!(ok(text, cited), None, "{text}");
        }
        for (text, cited, why) in [
            (
                "Revenue reached Rp 12.600.000.",
                &["revenue_invoiced_mtd"][..],
                "12600000",
            ),
            (
                "Revenue of 12.6 million.",
                &["revenue_invoiced_mtd"],
                "12600000",
            ),
            (
                "Collections fell 40%.",
                &["revenue_collected_mtd_change_pct"],
                "40",
            ),
            ("7 tickets pending.", &["tickets_pending_overdue"], "7"),
            ("Revenue grew.", &[], "cites no figure"),
            ("Revenue grew 5%.", &["revenue_growth"], "not a figure"),
            ("   ", &["tickets_pending"], "empty"),
        ] {
            let r = ok(text, cited).unwrap_or_default();
            assert!(r.contains(why), "{text}: {r}");
        }
    }

    #[test]
    fn a_lone_separator_before_three_digits_reads_both_ways() {
        assert_eq!(readings("1.234"), vec![(1.234, 3), (1234.0, 0)]);
        assert_eq!(readings("12,5"), vec![(12.5, 1)]);
        assert_eq!(readings("1.234.567"), vec![(1234567.0, 0)]);
        assert_eq!(readings("1,234,567.89"), vec![(1234567.89, 2)]);
        assert_eq!(readings("1.234.567,89"), vec![(1234567.89, 2)]);
        assert!(readings("12.34.5").is_empty());
    }

    #[test]
    fn the_model_answer_is_checked_insight_by_insight() {
        let answer = json!({"insights": [
            {"text": "Revenue is Rp 12.512.345 month to date.", "figures": ["revenue_invoiced_mtd"]},
            {"text": "Revenue grew 99% on last month.", "figures": ["revenue_invoiced_mtd"]},
            {"text": "7 tickets are pending.", "figures": ["tickets_pending"]}
        ]});
        let (kept, refused) = checked(&answer, &aggregates());
        assert_eq!(refused, 1);
        assert_eq!(kept.len(), 2);
        assert!(kept.iter().all(|i| i.from_model));
        let all = complete(kept, &aggregates(), Locale::En);
        assert_eq!(all.len(), COUNT);
        assert!(!all[2].from_model);
        assert_eq!(
            checked(&json!({"text": "no"}), &aggregates()),
            (Vec::new(), COUNT)
        );
        let (kept, refused) = checked(&json!({"insights": [answer["insights"][0]]}), &aggregates());
        assert_eq!((kept.len(), refused), (1, 2));
    }

    #[test]
    fn deterministic_insights_are_the_largest_movements_and_pass_the_check() {
        let a = aggregates();
        let f = figures(&a);
        let d = date_numbers(&a);
        for locale in [Locale::Id, Locale::En] {
            let all = deterministic(&a, locale);
            assert!(all.len() >= COUNT);
            for i in &all {
                assert_eq!(refusal(&i.text, &i.figures, &f, &d), None, "{}", i.text);
            }
            // 0 -> 12.5M (weighted as a doubling), then AR +50%, then
            // collections -37.5%.
            assert_eq!(all[0].figures[0], "revenue_invoiced_mtd");
            assert_eq!(all[1].figures[0], "ar_overdue");
            assert_eq!(all[2].figures[0], "revenue_collected_mtd");
        }
        let id = deterministic(&a, Locale::Id);
        assert_eq!(
            id[1].text,
            "Piutang lewat jatuh tempo Rp 15.000.000, naik 50,0% dibanding akhir bulan lalu (Rp 10.000.000)."
        );
        let en = deterministic(&a, Locale::En);
        assert_eq!(
            en[2].text,
            "Cash collected month to date is IDR 5,000,000, down 37.5% on the same period last month (IDR 8,000,000)."
        );
    }

    #[test]
    fn a_quiet_day_still_gets_three_insights() {
        let a = json!({"day": "2026-12-01", "figures": {"tickets_pending": 0}});
        let all = complete(Vec::new(), &a, Locale::Id);
        assert_eq!(all.len(), COUNT);
        assert!(all[0].text.starts_with("Ada 0 tiket"));
    }

    #[test]
    fn money_and_percent_follow_the_locale() {
        assert_eq!(money(1234567.4, Locale::Id), "Rp 1.234.567");
        assert_eq!(money(1234567.5, Locale::En), "IDR 1,234,568");
        assert_eq!(money(999.0, Locale::Id), "Rp 999");
        assert_eq!(percent(-12.25, Locale::Id), "12,3%");
        assert_eq!(percent(4.0, Locale::En), "4.0%");
    }
}
