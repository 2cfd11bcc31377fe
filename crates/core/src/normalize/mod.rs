//! Normalisers for the dedup keys of feature C2 (NPWP, phone, e-mail, company
//! name).
//!
//! The extension wraps each function as an `immutable strict parallel safe`
//! SQL function, so every function here is pure, total and never panics:
//! `None` means "invalid or not normalisable" and becomes SQL `NULL`. Every
//! normaliser is idempotent: feeding its output back in returns the same
//! output, so a stored key can be re-normalised safely.
//!
//! ```
//! use bizos_core::normalize::*;
//!
//! assert_eq!(norm_npwp("01.000.013.1-093.000").as_deref(), Some("0010000131093000"));
//! assert!(npwp_valid("01.000.013.1-093.000"));
//! assert_eq!(norm_phone("(021) 555-1234").as_deref(), Some("+62215551234"));
//! assert_eq!(norm_email(" Budi+promo@Example.CO.ID ").as_deref(), Some("budi@example.co.id"));
//! assert_eq!(norm_company("P.T. Bank Rakyat Indonesia (Persero) Tbk.").as_deref(), Some("bank rakyat indonesia"));
//! ```

mod company;
mod email;
mod npwp;
mod phone;

pub use company::norm_company;
pub use email::norm_email;
pub use npwp::{norm_npwp, npwp_valid};
pub use phone::norm_phone;

/// Trims whitespace and the invisible characters that copy-paste and CSV
/// exports leave at the ends of a cell (zero-width space/joiners, word joiner,
/// byte-order mark), which `str::trim` keeps.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || is_invisible(c))
}

/// Zero-width characters that render as nothing.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Hyphen and dash look-alikes that word processors substitute for `-`.
pub(crate) fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// Combining marks (the common blocks). They belong to the letter before
/// them: a decomposed "é" is `e` + U+0301, and lowercasing "İ" yields `i` +
/// U+0307, so they must survive for the normalisers to stay idempotent.
pub(crate) fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// Input generators for the property-style tests (no extra crates).
#[cfg(test)]
pub(crate) mod gen {
    /// A 64-bit linear congruential generator (Knuth's MMIX constants):
    /// deterministic, so a failing case is reproducible from its seed.
    pub(crate) struct Lcg(u64);

    impl Lcg {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub(crate) fn next_u32(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        /// Uniform-enough number in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.next_u32() as usize % n
        }

        pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        /// A random ASCII digit string of `len` digits.
        pub(crate) fn digits(&mut self, len: usize) -> String {
            (0..len)
                .map(|_| char::from(b'0' + self.below(10) as u8))
                .collect()
        }
    }

    /// Calls `f` with every string over `alphabet` of length `0..=max_len`.
    pub(crate) fn for_each_string(alphabet: &[char], max_len: usize, mut f: impl FnMut(&str)) {
        let mut buf = String::new();
        f(&buf);
        for len in 1..=max_len {
            let mut idx = vec![0usize; len];
            'strings: loop {
                buf.clear();
                buf.extend(idx.iter().map(|&i| alphabet[i]));
                f(&buf);
                // Odometer increment; done when every position wrapped.
                for slot in idx.iter_mut() {
                    *slot += 1;
                    if *slot < alphabet.len() {
                        continue 'strings;
                    }
                    *slot = 0;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gen::{for_each_string, Lcg};
    use super::*;

    type Normaliser = fn(&str) -> Option<String>;

    const NORMALISERS: [(&str, Normaliser); 4] = [
        ("norm_npwp", norm_npwp),
        ("norm_phone", norm_phone),
        ("norm_email", norm_email),
        ("norm_company", norm_company),
    ];

    /// Runs every function on `s` and checks idempotence and the link
    /// between `npwp_valid` and `norm_npwp`. Returns how many normalisers
    /// accepted `s`.
    fn check(s: &str) -> usize {
        let mut accepted = 0;
        for (name, f) in NORMALISERS {
            if let Some(out) = f(s) {
                accepted += 1;
                assert_eq!(f(&out).as_deref(), Some(out.as_str()), "{name}({s:?})");
            }
        }
        let valid = npwp_valid(s);
        match norm_npwp(s) {
            Some(n) => assert_eq!(npwp_valid(&n), valid, "npwp_valid({s:?})"),
            None => assert!(!valid, "npwp_valid({s:?}) without norm_npwp"),
        }
        accepted
    }

    /// Every string over `alphabet` up to `max_len` chars; returns how many
    /// normaliser calls accepted one, to guard against a generator that
    /// silently produces nothing useful.
    fn check_all(alphabet: &[char], max_len: usize) -> usize {
        let mut accepted = 0;
        for_each_string(alphabet, max_len, |s| accepted += check(s));
        accepted
    }

    #[test]
    fn short_email_and_company_shapes() {
        // a Turkish dotted capital, whose lowercase grows a combining mark
        assert!(check_all(&['a', 'B', '@', '.', '+', '-', 'İ'], 6) > 10_000);
        assert!(check_all(&['P', 'T', '.', ' ', '&', '(', 'É', 'Σ'], 5) > 10_000);
    }

    #[test]
    fn short_phone_control_and_multibyte_shapes() {
        check_all(&['0', '8', '6', '2', '+', '(', ')', ' ', 'x'], 5);
        // controls, invisible and odd whitespace
        check_all(
            &['\0', '\u{7f}', '\u{200B}', '\u{A0}', '1', '@', '.', 'ß'],
            5,
        );
        // multi-byte boundaries
        assert!(check_all(&['€', '𝔘', 'e', '\u{301}', '.', '@', 'ǅ'], 5) > 100);
    }

    #[test]
    fn long_random_strings_never_panic_and_are_idempotent() {
        let palette = [
            '0', '1', '5', '8', '9', '6', '2', ' ', '.', '-', '+', '(', ')', '@', 'a', 'Z', 'x',
            'P', 'T', '&', '\'', '\t', '\n', '\0', '\u{A0}', '\u{FEFF}', 'é', 'ß', 'İ', 'Σ', '中',
            '😀', '\u{301}', '–',
        ];
        let mut rng = Lcg::new(0x00C2_5EED);
        for _ in 0..300 {
            let len = rng.below(2_000);
            let s: String = (0..len).map(|_| *rng.pick(&palette)).collect();
            check(&s);
        }
    }

    #[test]
    fn huge_inputs_are_rejected_or_handled() {
        let digits = "8".repeat(1 << 20);
        assert_eq!(norm_npwp(&digits), None);
        assert_eq!(norm_phone(&digits), None);
        assert_eq!(norm_email(&format!("{digits}@example.com")), None);
        let name = format!("PT {} Tbk", "Maju ".repeat(100_000));
        assert_eq!(norm_company(&name).map(|n| n.len()), Some(100_000 * 5 - 1));
    }

    #[test]
    fn empty_and_blank_inputs_are_null() {
        for s in ["", " ", "\t\n", "\u{FEFF}", "\u{200B} \u{A0}"] {
            for (name, f) in NORMALISERS {
                assert_eq!(f(s), None, "{name}({s:?})");
            }
            assert!(!npwp_valid(s));
        }
    }

    #[test]
    fn trim_removes_invisible_edges_only() {
        assert_eq!(trim("\u{FEFF} a\u{200B}b \u{2060}"), "a\u{200B}b");
        assert_eq!(trim(""), "");
    }
}
