//! Payment card numbers: 13–19 digits, a known issuer prefix (ISO/IEC 7812
//! IIN ranges of the networks in use in Indonesia) and a valid Luhn check
//! digit.

/// A plain run of digits that passes Luhn with a known prefix.
pub(super) const SCORE_PLAIN: f32 = 0.5;
/// Written in the groups cards are printed in (4-4-4-4, 4-6-5 for Amex).
pub(super) const SCORE_GROUPED: f32 = 0.75;

/// Whether `d` (values 0–9) starts with the IIN of a card network whose
/// numbers have this length: Visa 4 (13, 16, 19), Mastercard 51–55 and
/// 2221–2720 (16), Amex 34/37 (15), JCB 3528–3589 (16–19), Discover 6011,
/// 644–649, 65 (16–19), UnionPay 62 (16–19), GPN (Indonesia's domestic
/// network, issued on 16-digit numbers starting with 9360).
pub(super) fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| d[..k].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => (51..=55).contains(&p(2)) && n == 16,
        2 => (2221..=2720).contains(&p(4)) && n == 16,
        3 => match p(2) {
            34 | 37 => n == 15,
            35 => (3528..=3589).contains(&p(4)) && (16..=19).contains(&n),
            _ => false,
        },
        6 => {
            (p(4) == 6011 || (644..=649).contains(&p(3)) || p(2) == 65 || p(2) == 62)
                && (16..=19).contains(&n)
        }
        9 => p(4) == 9360 && n == 16,
        _ => false,
    }
}

/// The Luhn (mod 10) check over all digits, check digit last.
pub(super) fn luhn_ok(d: &[u8]) -> bool {
    const DOUBLED: [u8; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| u32::from(if i % 2 == 1 { DOUBLED[x as usize] } else { x }))
        .sum();
    sum.is_multiple_of(10)
}

/// Whether digit groups look like a printed card: 4-4-4-4(-3), 4-6-5 or
/// 4-6-4.
pub(super) fn printed_groups(groups: &[u8]) -> bool {
    match groups {
        [4, 6, 5] | [4, 6, 4] => true,
        [.., last] if groups.len() >= 3 => {
            groups[..groups.len() - 1].iter().all(|&g| g == 4) && (1..=4).contains(last)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn test_numbers_of_the_networks() {
        for ok in [
            "4111111111111111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "3530111333300000",
            "6011111111111117",
        ] {
            let d = digits(ok);
            assert!(issuer_ok(&d) && luhn_ok(&d), "{ok}");
        }
        assert!(!luhn_ok(&digits("4111111111111112")));
        assert!(!issuer_ok(&digits("1111111111111117")));
        assert!(!issuer_ok(&digits("411111111111111"))); // Visa with 15 digits
    }

    #[test]
    fn groups() {
        assert!(printed_groups(&[4, 4, 4, 4]));
        assert!(printed_groups(&[4, 6, 5]));
        assert!(!printed_groups(&[16]));
        assert!(!printed_groups(&[4, 12]));
    }
}
