//! NIK (Nomor Induk Kependudukan), the 16-digit resident identity number of
//! the KTP: `PP RR SS DDMMYY NNNN` — province, regency/city, district, birth
//! date (women add 40 to the day) and a serial.

/// Province codes of Kemendagri (Permendagri 58/2021 and the 2022 Papua
/// provinces), the first two digits of every NIK: Sumatra 11–19 and 21,
/// Java 31–36, Bali and Nusa Tenggara 51–53, Kalimantan 61–65, Sulawesi
/// 71–76, Maluku 81–82, Papua 91 (Papua), 92 (Papua Barat), 93–96 (Papua
/// Selatan, Tengah, Pegunungan, Barat Daya, 2022).
pub(super) const PROVINCES: [u8; 38] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65,
    71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96,
];

/// Score of a number with a valid NIK layout and no keyword: 16 digits
/// with a valid layout are rare by chance (about 3% of random 16-digit
/// numbers) but other 16-digit identifiers exist (KK, virtual accounts).
pub(super) const SCORE: f32 = 0.6;

/// Whether 16 digits (values 0–9) have the NIK layout: a real province,
/// regency and district not `00`, day 1–31 or 41–71, month 1–12, serial
/// not `0000`. The day is not checked against the month.
pub(super) fn layout_ok(d: &[u8]) -> bool {
    if d.len() != 16 {
        return false;
    }
    let two = |i: usize| d[i] * 10 + d[i + 1];
    PROVINCES.contains(&two(0))
        && two(2) != 0
        && two(4) != 0
        && matches!(two(6), 1..=31 | 41..=71)
        && (1..=12).contains(&two(8))
        && d[12..].iter().any(|&x| x != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn layouts() {
        assert!(layout_ok(&digits("3174011203900001")));
        // Woman born on the 12th: day 52.
        assert!(layout_ok(&digits("3273015203850123")));
        for bad in [
            "1074011203900001", // province 10 does not exist
            "4174011203900001", // nor 41
            "3100011203900001", // regency 00
            "3174001203900001", // district 00
            "3174013203900001", // day 32
            "3174014003900001", // day 40
            "3174017203900001", // day 72
            "3174011213900001", // month 13
            "3174011200900001", // month 00
            "3174011203900000", // serial 0000
            "317401120390001",  // 15 digits
        ] {
            assert!(!layout_ok(&digits(bad)), "{bad}");
        }
    }
}
