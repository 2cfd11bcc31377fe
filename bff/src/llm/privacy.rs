//! The privacy layer (AI-4): nothing leaves for a provider before the PII
//! detector of the extension (`bizos_core::pii::detect`, the same code as
//! `bizos.pii_mask`, here in-process) has replaced every NIK, NPWP, phone
//! number, e-mail address, card and bank account with a placeholder.
//!
//! Placeholders are stable within one call, so a model can still reason
//! about "the same number": one [`Masker`] masks every message of a call
//! (system prompt, context, history, the question), and the same value —
//! compared in its normalised form, so `0812-3456-7890` and
//! `+62 812 3456 7890` are one phone — gets the same placeholder wherever
//! it appears (`[PHONE_1]`, `[PHONE_2]`, `[EMAIL_1]`; numbered per kind in
//! order of appearance).
//!
//! [`Masker::reinsert`] puts the originals back into an answer; the gateway
//! calls it only when the feature allows it and the caller may see them.
//!
//! Err towards masking: a masked text is scanned again, and anything still
//! detected (a value the replacement made detectable) is masked too; a text
//! still not clean after a few passes is redacted whole.

use std::collections::HashMap;

use bizos_core::normalize::{norm_email, norm_npwp, norm_phone};
use bizos_core::pii::{self, Kind};

/// Passes of detection over a masked text before giving up and redacting it.
const MAX_PASSES: usize = 3;

/// What a text that cannot be made clean is replaced with.
pub const REDACTED_TEXT: &str = "[REDACTED_TEXT]";

/// The placeholders of one call and the originals behind them.
#[derive(Default)]
pub struct Masker {
    /// (kind, normalised value) → placeholder.
    by_value: HashMap<(Kind, String), String>,
    /// placeholder → the value as first written.
    originals: HashMap<String, String>,
    /// Per kind: the placeholders handed out so far.
    counts: [u32; Kind::ALL.len()],
}

impl std::fmt::Debug for Masker {
    /// Counts only: the originals are PII.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("placeholders", &self.originals.len())
            .finish()
    }
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The form under which two spellings of one value are the same value.
/// Compared as the detector reads it (digits of any script as the digits
/// they are: `０８１２` is `0812`), so two different numbers typed in
/// full-width or Arabic-Indic digits never share a placeholder, and one
/// number typed both ways gets one.
fn normalised(kind: Kind, value: &str) -> String {
    let value = pii::folded(value);
    let value = value.as_ref();
    let digits = || {
        value
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    };
    match kind {
        Kind::Phone => norm_phone(value).unwrap_or_else(digits),
        Kind::Email => norm_email(value).unwrap_or_else(|| value.trim().to_lowercase()),
        Kind::Npwp => norm_npwp(value).unwrap_or_else(digits),
        Kind::Nik | Kind::Card | Kind::BankAccount => digits(),
    }
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// How many distinct values were masked.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// The placeholder of `value`, handing out the next one of its kind
    /// when the value is new.
    fn placeholder(&mut self, kind: Kind, value: &str) -> String {
        let key = (kind, normalised(kind, value));
        if let Some(p) = self.by_value.get(&key) {
            return p.clone();
        }
        let i = kind_index(kind);
        self.counts[i] += 1;
        let p = format!("[{}_{}]", kind.name(), self.counts[i]);
        self.by_value.insert(key, p.clone());
        self.originals.insert(p.clone(), value.to_owned());
        p
    }

    /// `text` with every detected value replaced by its placeholder.
    pub fn mask(&mut self, text: &str) -> String {
        let mut current = text.to_owned();
        for _ in 0..MAX_PASSES {
            let spans = pii::detect(&current);
            if spans.is_empty() {
                return current;
            }
            let mut out = String::with_capacity(current.len() + 8 * spans.len());
            let mut at = 0;
            for s in &spans {
                out.push_str(&current[at..s.start]);
                let p = self.placeholder(s.kind, &current[s.start..s.end]);
                out.push_str(&p);
                at = s.end;
            }
            out.push_str(&current[at..]);
            current = out;
        }
        if pii::detect(&current).is_empty() {
            current
        } else {
            REDACTED_TEXT.to_owned()
        }
    }

    /// `text` with every placeholder of this call replaced by its original.
    /// Text that is not a placeholder of this call is left as it is.
    pub fn reinsert(&self, text: &str) -> String {
        if self.originals.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let replaced = tail.find(']').and_then(|close| {
                let candidate = &tail[..=close];
                self.originals
                    .get(candidate)
                    .map(|original| (original, close + 1))
            });
            match replaced {
                Some((original, used)) => {
                    out.push_str(original);
                    rest = &tail[used..];
                }
                None => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// [`Masker::reinsert`] into every string of a JSON value.
    pub fn reinsert_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.reinsert(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.reinsert_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.reinsert_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_value_gets_the_same_placeholder() {
        let mut m = Masker::new();
        let a = m.mask("Hubungi Pak Budi di 0812-3456-7890 atau budi@contoh.co.id.");
        let b = m.mask("Nomor WA +62 812 3456 7890, email lain sari@contoh.co.id");
        assert_eq!(a, "Hubungi Pak Budi di [PHONE_1] atau [EMAIL_1].");
        assert_eq!(b, "Nomor WA [PHONE_1], email lain [EMAIL_2]");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn numbering_is_per_kind() {
        let mut m = Masker::new();
        let text = "NIK 3171012501900003, HP 081298765432, NIK 3273014402880001, HP 085711112222";
        let masked = m.mask(text);
        assert_eq!(
            masked,
            "NIK [NIK_1], HP [PHONE_1], NIK [NIK_2], HP [PHONE_2]"
        );
        assert!(pii::detect(&masked).is_empty());
    }

    #[test]
    fn every_kind_is_masked() {
        let mut m = Masker::new();
        let text = "NIK: 3171012501900003\nNPWP: 01.234.567.8-901.000\nTelp 021-5551234\n\
                    Email: ani.w@ptmaju.co.id\nKartu 4111 1111 1111 1111\nRekening BCA 1234567890";
        let masked = m.mask(text);
        for original in [
            "3171012501900003",
            "01.234.567.8-901.000",
            "021-5551234",
            "ani.w@ptmaju.co.id",
            "4111 1111 1111 1111",
            "1234567890",
        ] {
            assert!(!masked.contains(original), "{original} in {masked}");
        }
        for p in [
            "[NIK_1]",
            "[NPWP_1]",
            "[PHONE_1]",
            "[EMAIL_1]",
            "[CARD_1]",
            "[BANK_ACCOUNT_1]",
        ] {
            assert!(masked.contains(p), "{p} missing from {masked}");
        }
        assert_eq!(m.reinsert(&masked), text);
    }

    #[test]
    fn reinsertion_puts_back_only_this_calls_placeholders() {
        let mut m = Masker::new();
        m.mask("telepon 081234567890");
        let answer = "Saya akan menelepon [PHONE_1]; [PHONE_2] tidak dikenal, [x] tetap, [PHONE_1";
        assert_eq!(
            m.reinsert(answer),
            "Saya akan menelepon 081234567890; [PHONE_2] tidak dikenal, [x] tetap, [PHONE_1"
        );
        let json = serde_json::json!({"to": ["[PHONE_1]"], "n": 1, "note": {"x": "hi [PHONE_1]"}});
        assert_eq!(
            m.reinsert_json(&json),
            serde_json::json!({"to": ["081234567890"], "n": 1, "note": {"x": "hi 081234567890"}})
        );
    }

    #[test]
    fn text_without_pii_is_unchanged() {
        let mut m = Masker::new();
        let text = "Invoice INV-2026-000123 sebesar Rp 1.500.000 jatuh tempo 15-01-2026, ünïcode ✓";
        assert_eq!(m.mask(text), text);
        assert!(m.is_empty());
        assert_eq!(m.reinsert("[PHONE_1]"), "[PHONE_1]");
    }

    #[test]
    fn numbers_in_other_scripts_get_their_own_placeholders() {
        let mut m = Masker::new();
        let text = "WA ０８１２-３４５６-７８９０, istri ٠٨١٣ ١١١١ ٢٢٢٢, lagi 0812-3456-7890";
        let masked = m.mask(text);
        assert_eq!(masked, "WA [PHONE_1], istri [PHONE_2], lagi [PHONE_1]");
        assert_eq!(
            m.reinsert("[PHONE_1] / [PHONE_2]"),
            "０８１２-３４５６-７８９０ / ٠٨١٣ ١١١١ ٢٢٢٢"
        );
        let masked = m.mask("HP0 8 5 7 1 1 2 2 3 3 4 4 dan KTP-３１７４０１１２０３９００００１");
        assert_eq!(masked, "HP[PHONE_3] dan KTP-[NIK_1]");
    }

    #[test]
    fn debug_shows_no_originals() {
        let mut m = Masker::new();
        m.mask("HP 081234567890");
        assert!(!format!("{m:?}").contains("0812"));
    }
}
