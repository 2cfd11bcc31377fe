//! NPWP (Nomor Pokok Wajib Pajak), the Indonesian tax number.
//!
//! Three forms are in circulation and all map to one canonical key of 16
//! plain digits:
//!
//! * the old 15-digit NPWP `01.234.567.8-901.000` (2 digits taxpayer type,
//!   6 digits serial, 1 check digit, 3 digits tax office, 3 digits branch),
//!   written with or without dots, dashes and spaces → `"0"` + the 15 digits;
//! * the 16-digit NPWP that DJP introduced in 2024 for companies and
//!   non-resident persons: `"0"` + the old 15 digits → kept as is;
//! * the NIK of a resident person used as NPWP (also 2024): 16 digits that
//!   never start with 0 → kept as is when the NIK layout is possible.
//!
//! So the same taxpayer written in the old and the new format gets one key.

use super::{is_dash, trim};

/// Length of the canonical form.
const LEN: usize = 16;

/// Lowest and highest province code a NIK can start with. 11 is Aceh; 96 is
/// Papua Barat Daya, the newest province (2022; 95 is Papua Pegunungan).
const PROVINCES: std::ops::RangeInclusive<u8> = 11..=96;

/// Normalises an NPWP to 16 plain digits, or `None` when it is not one.
///
/// Accepted: 15 or 16 ASCII digits, optionally separated by dots, dashes
/// (also typographic dashes) and whitespace anywhere, with whitespace and
/// invisible characters around the value. A 15-digit value gets a leading
/// `0` (the 2024 DJP format); a 16-digit value starting with `0` is kept; a
/// 16-digit value starting with 1–9 is a NIK-based NPWP and is kept when its
/// layout is possible (see below).
///
/// Rejected: any other length, letters or other characters among the digits
/// (`"NPWP: 01…"` too), all zeros, and NIK-based values whose layout is
/// impossible. The NIK layout is `PP RR DD DDMMYY SSSS`: province 11–96,
/// regency, district, birth date (women add 40 to the day, so the day is
/// 1–31 or 41–71; month 1–12; the day is not checked against the month)
/// and a serial that is not `0000`.
///
/// The check digit is not verified here (see [`npwp_valid`]): a dedup key
/// must still match a mistyped number that was stored the same way.
pub fn norm_npwp(input: &str) -> Option<String> {
    let digits = parse(input)?;
    Some(digits.iter().map(|&d| char::from(b'0' + d)).collect())
}

/// Whether an NPWP has a correct check digit.
///
/// Accepts the same forms as [`norm_npwp`] (anything it rejects is not
/// valid). In the 15-digit layout the 9th digit is a Luhn check digit over
/// the first 8 digits; for the `"0"` + 15 form the inner 15 digits are
/// checked. A NIK-based NPWP has no check digit, so it is valid when its
/// layout is possible.
pub fn npwp_valid(input: &str) -> bool {
    match parse(input) {
        Some(d) if d[0] == 0 => luhn_check_digit(&d[1..9]) == d[9],
        Some(_) => true,
        None => false,
    }
}

/// The digits (0–9) of the canonical 16-digit form, or `None`.
fn parse(input: &str) -> Option<[u8; LEN]> {
    let mut d = [0u8; LEN];
    let mut n = 0;
    for c in trim(input).chars() {
        if c.is_ascii_digit() {
            // More than 16 digits: stop early, also on megabyte inputs.
            *d.get_mut(n)? = c as u8 - b'0';
            n += 1;
        } else if !(c == '.' || c.is_whitespace() || is_dash(c)) {
            return None;
        }
    }
    match n {
        15 => {
            d.copy_within(0..15, 1);
            d[0] = 0;
        }
        LEN => {}
        _ => return None,
    }
    let possible = if d[0] == 0 {
        d.iter().any(|&x| x != 0)
    } else {
        nik_possible(&d)
    };
    possible.then_some(d)
}

/// Whether 16 digits can be a NIK: province, birth day and month in range,
/// serial not zero.
fn nik_possible(d: &[u8; LEN]) -> bool {
    let two = |i: usize| d[i] * 10 + d[i + 1];
    PROVINCES.contains(&two(0))
        && matches!(two(6), 1..=31 | 41..=71)
        && (1..=12).contains(&two(8))
        && d[12..].iter().any(|&x| x != 0)
}

/// The Luhn check digit for `payload` (digits 0–9): starting with the
/// rightmost payload digit, every second digit is doubled (minus 9 when that
/// exceeds 9); the check digit brings the sum to a multiple of 10.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                return d;
            }
            let twice = 2 * d;
            if twice > 9 {
                twice - 9
            } else {
                twice
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::super::gen::Lcg;
    use super::*;

    /// Luhn validity of a whole number, written from the textbook definition
    /// independently of `luhn_check_digit`: from the right, digits in even
    /// positions are replaced through the doubling table, and the sum must be
    /// a multiple of 10.
    fn luhn_ok(digits: &str) -> bool {
        const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
        let sum: u32 = digits
            .bytes()
            .rev()
            .zip([false, true].into_iter().cycle())
            .map(|(b, double)| {
                let d = u32::from(b - b'0');
                if double {
                    DOUBLED[d as usize]
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// A valid 15-digit NPWP: the check digit is found by trying all ten.
    fn make_npwp(first8: &str, last6: &str) -> String {
        let check = (0..10)
            .find(|c| luhn_ok(&format!("{first8}{c}")))
            .expect("one of ten digits completes a Luhn number");
        format!("{first8}{check}{last6}")
    }

    /// `012345678901234` → `01.234.567.8-901.234`.
    fn dotted(d: &str) -> String {
        format!(
            "{}.{}.{}.{}-{}.{}",
            &d[0..2],
            &d[2..5],
            &d[5..8],
            &d[8..9],
            &d[9..12],
            &d[12..15]
        )
    }

    /// The same number with digit `i` replaced by a different digit.
    fn flip(d: &str, i: usize, by: u8) -> String {
        let mut b = d.as_bytes().to_vec();
        b[i] = b'0' + (b[i] - b'0' + by) % 10;
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn luhn_vectors_agree_with_the_textbook_definition() {
        // The classic Luhn example 7992739871 + check digit 3.
        assert_eq!(luhn_check_digit(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
        assert!(luhn_ok("79927398713"));
        let mut rng = Lcg::new(15);
        for _ in 0..2_000 {
            let payload = rng.digits(8);
            let digits: Vec<u8> = payload.bytes().map(|b| b - b'0').collect();
            let check = luhn_check_digit(&digits);
            assert!(luhn_ok(&format!("{payload}{check}")), "{payload}");
        }
    }

    #[test]
    fn norm_npwp_table() {
        let cases: &[(&str, Option<&str>)] = &[
            // 15 digits, punctuated and not
            ("01.000.013.1-093.000", Some("0010000131093000")),
            ("010000131093000", Some("0010000131093000")),
            ("01 000 013 1 093 000", Some("0010000131093000")),
            ("01-000-013-1-093-000", Some("0010000131093000")),
            ("01.000.013.1.093.000", Some("0010000131093000")),
            ("  01.000.013.1-093.000\n", Some("0010000131093000")),
            ("\u{FEFF}01.000.013.1-093.000", Some("0010000131093000")),
            ("01.000.013.1\u{2013}093.000", Some("0010000131093000")),
            ("01.000.013.1-093.000\u{A0}", Some("0010000131093000")),
            // 16 digits, "0" + 15 (DJP 2024)
            ("0010000131093000", Some("0010000131093000")),
            ("0010 0001 3109 3000", Some("0010000131093000")),
            // check digit is not the normaliser's business
            ("01.234.567.8-901.000", Some("0012345678901000")),
            // NIK-based (woman born 12 Jan 1990 → day 52)
            ("3171015201900001", Some("3171015201900001")),
            ("3171 0112 0190 0001", Some("3171011201900001")),
            ("96.01.01.010100.0001", Some("9601010101000001")),
            // rejected
            ("", None),
            ("01.000.013.1-093.00", None),
            ("1.000.013.1-093.000", None),
            ("01000013109300000", None),
            ("01.000.O13.1-093.000", None),
            ("NPWP 01.000.013.1-093.000", None),
            ("01/000/013/1/093/000", None),
            ("000000000000000", None),
            ("0000000000000000", None),
            ("00.000.000.0-000.000", None),
            ("٠١٠٠٠٠١٣١٠٩٣٠٠٠", None),
            // NIK layouts that cannot exist
            ("1071011201900001", None), // province 10
            ("9771011201900001", None), // province 97
            ("3171010001900001", None), // day 00
            ("3171013201900001", None), // day 32
            ("3171014001900001", None), // day 40
            ("3171017201900001", None), // day 72
            ("3171011200900001", None), // month 00
            ("3171011213900001", None), // month 13
            ("3171011201900000", None), // serial 0000
        ];
        for &(input, want) in cases {
            assert_eq!(norm_npwp(input).as_deref(), want, "norm_npwp({input:?})");
        }
    }

    #[test]
    fn npwp_valid_table() {
        let cases: &[(&str, bool)] = &[
            ("01.000.013.1-093.000", true),
            ("01.001.608.7-093.000", true),
            ("01.681.742.1-093.000", true),
            ("0016817421093000", true),
            ("016817421093000", true),
            ("01.234.567.4-901.000", true),
            ("01.234.567.8-901.000", false),
            ("01.000.013.2-093.000", false),
            ("0016817420093000", false),
            ("3171015201900001", true),
            ("3171015201900000", false),
            ("", false),
            ("abc", false),
            ("000000000000000", false),
        ];
        for &(input, want) in cases {
            assert_eq!(npwp_valid(input), want, "npwp_valid({input:?})");
        }
        // The vectors above agree with the independent definition.
        assert!(luhn_ok("010000131"));
        assert!(luhn_ok("012345674"));
        assert!(!luhn_ok("012345678"));
    }

    #[test]
    fn generated_numbers_in_every_form() {
        let mut rng = Lcg::new(0x4E50_5750);
        for _ in 0..2_000 {
            let d = make_npwp(&rng.digits(8), &rng.digits(6));
            if d.bytes().all(|b| b == b'0') {
                continue;
            }
            let canonical = format!("0{d}");
            for form in [
                d.clone(),
                dotted(&d),
                canonical.clone(),
                format!("0{}", dotted(&d)),
            ] {
                assert_eq!(
                    norm_npwp(&form).as_deref(),
                    Some(canonical.as_str()),
                    "{form}"
                );
                assert!(npwp_valid(&form), "{form}");
            }
            // Luhn catches every single-digit error in the first 9 digits.
            for i in 0..9 {
                for by in 1..10 {
                    let wrong = flip(&d, i, by);
                    assert!(!npwp_valid(&wrong), "{wrong} from {d}");
                    assert!(!npwp_valid(&dotted(&wrong)), "{wrong} from {d}");
                }
            }
            // The tax office and branch digits are not covered by the check.
            assert!(npwp_valid(&flip(&d, 12, 3)));
        }
    }

    #[test]
    fn generated_niks() {
        let mut rng = Lcg::new(0x004E_494B);
        for _ in 0..2_000 {
            let province = 11 + rng.below(86);
            let day = 1 + rng.below(31) + 40 * rng.below(2);
            let month = 1 + rng.below(12);
            let serial = 1 + rng.below(9_999);
            let nik = format!(
                "{province:02}{}{day:02}{month:02}{}{serial:04}",
                rng.digits(4),
                rng.digits(2)
            );
            assert_eq!(norm_npwp(&nik).as_deref(), Some(nik.as_str()));
            assert!(npwp_valid(&nik));
            let spaced = format!("{} {} {}", &nik[..6], &nik[6..12], &nik[12..]);
            assert_eq!(norm_npwp(&spaced).as_deref(), Some(nik.as_str()));
        }
    }
}
