//! Detector tests over whole sentences: what is found, what is not, and the
//! character-offset conversion.

use super::*;

/// `(type, matched text)` of every span.
fn found(text: &str) -> Vec<(&'static str, &str)> {
    detect(text)
        .iter()
        .map(|s| (s.kind.name(), &text[s.start..s.end]))
        .collect()
}

#[test]
fn nik_with_and_without_keyword() {
    assert_eq!(
        found("NIK: 3174011203900001"),
        [("NIK", "3174011203900001")]
    );
    assert_eq!(
        found("pemilik 3273 0152 0385 0123 hadir"),
        [("NIK", "3273 0152 0385 0123")]
    );
    let with = detect("No. KTP 3174011203900001")[0].score;
    let without = detect("nomor 3174011203900001")[0].score;
    assert!(with > without, "{with} > {without}");
}

#[test]
fn sixteen_digits_that_are_not_a_nik() {
    // Month 13, province 10, and a virtual account with an impossible day.
    assert!(found("ref 3174011213900001").is_empty());
    assert!(found("ref 1074011203900001").is_empty());
    assert!(found("VA 8808 1234 3456 7890").is_empty());
}

#[test]
fn npwp_forms() {
    assert_eq!(
        found("NPWP 01.000.013.1-093.000"),
        [("NPWP", "01.000.013.1-093.000")]
    );
    // The dotted layout is distinctive without a keyword.
    assert_eq!(
        found("PT Maju, 01.000.013.1-093.000."),
        [("NPWP", "01.000.013.1-093.000")]
    );
    // Wrong check digit.
    assert!(found("01.000.013.2-093.000").is_empty());
    // Plain 15 digits and "0"+15 need the keyword.
    assert_eq!(found("npwp 010000131093000"), [("NPWP", "010000131093000")]);
    assert!(found("kode 010000131093000").is_empty());
    assert_eq!(
        found("NPWP: 0010000131093000"),
        [("NPWP", "0010000131093000")]
    );
    // A NIK introduced as NPWP is an NPWP.
    assert_eq!(
        found("NPWP (NIK) 3174011203900001"),
        [("NIK", "3174011203900001")]
    );
    assert_eq!(
        found("NPWP 3174011203900001"),
        [("NPWP", "3174011203900001")]
    );
}

#[test]
fn phones_in_their_usual_forms() {
    for (text, number) in [
        ("HP 0812-3456-7890", "0812-3456-7890"),
        ("WA: +62 812 3456 7890.", "+62 812 3456 7890"),
        ("hub 6281234567890", "6281234567890"),
        ("Telp (021) 555-1234", "(021) 555-1234"),
        ("kantor 021-29123456", "021-29123456"),
        ("(0274) 512345 ext", "(0274) 512345"),
        ("+62 (0)21 5551234", "+62 (0)21 5551234"),
        ("HP.081234567890", "081234567890"),
    ] {
        assert_eq!(found(text), [("PHONE", number)], "{text}");
    }
}

#[test]
fn phone_followed_by_other_numbers() {
    assert_eq!(
        found("hubungi 0812-3456-7890 2 unit"),
        [("PHONE", "0812-3456-7890")]
    );
    assert_eq!(
        found("NIK 3174011203900001. 081234567890"),
        [("NIK", "3174011203900001"), ("PHONE", "081234567890")]
    );
}

#[test]
fn emails_and_digits_inside_them() {
    assert_eq!(
        found("email 081234567890@gmail.com ya"),
        [("EMAIL", "081234567890@gmail.com")]
    );
    assert_eq!(
        found("budi@maju.co.id / 0812 3456 7890"),
        [("EMAIL", "budi@maju.co.id"), ("PHONE", "0812 3456 7890")]
    );
}

#[test]
fn cards() {
    assert_eq!(
        found("kartu kredit 4111 1111 1111 1111"),
        [("CARD", "4111 1111 1111 1111")]
    );
    assert_eq!(
        found("5555-5555-5555-4444"),
        [("CARD", "5555-5555-5555-4444")]
    );
    assert_eq!(
        found("Amex 3782 822463 10005"),
        [("CARD", "3782 822463 10005")]
    );
    // Luhn fails.
    assert!(found("4111 1111 1111 1112").is_empty());
}

#[test]
fn bank_accounts_need_a_keyword() {
    assert_eq!(
        found("transfer ke No. Rek BCA 123-456-7890 a.n. PT Maju"),
        [("BANK_ACCOUNT", "123-456-7890")]
    );
    assert_eq!(
        found("rekening: 1234567890123"),
        [("BANK_ACCOUNT", "1234567890123")]
    );
    assert_eq!(
        found("Account No. 0123456789"),
        [("BANK_ACCOUNT", "0123456789")]
    );
    assert!(found("jumlah 1234567890").is_empty());
    assert!(found("Direktur 1234567890").is_empty());
}

#[test]
fn business_numbers_are_not_pii() {
    for text in [
        "Invoice INV-2026-000123 jatuh tempo 15-01-2026",
        "Total Rp 1.500.000 (PPN 11%)",
        "Total: Rp1.500.000.000",
        "harga 12.500.000 per unit",
        "IDR 25.000.000",
        "tanggal 2026-01-15 jam 08.30",
        "PO/2026/000017 dan SO-2026-00042",
        "Resi JNE JP1234567890123",
        "qty 1200 pcs, 3 palet, berat 1.250 kg",
        "tanggal 05-01-2026 10:00",
        "kode pos 12190",
        "id 02195519-b672-4df1-bf0c-f55a0d3e1c2b dan 02195519-6672-4df1-8f0c-155a0d3e1c2b",
        "ref 0219551/abc",
        "2026-10-28 00:41:03.122833+00",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn masking() {
    assert_eq!(
        mask("Hub Budi 0812-3456-7890 / budi@gmail.com"),
        "Hub Budi [REDACTED_PHONE] / [REDACTED_EMAIL]"
    );
    let clean = "Total Rp 1.500.000";
    assert!(matches!(mask(clean), Cow::Borrowed(s) if s == clean));
}

#[test]
fn character_offsets_after_multibyte_text() {
    let text = "Pak Ádám — Jl. Café 5 — HP 0812-3456-7890 ✓ andré@x.id";
    let spans = to_char_offsets(text, &detect(text));
    let chars: Vec<char> = text.chars().collect();
    let got: Vec<String> = spans
        .iter()
        .map(|s| chars[s.start..s.end].iter().collect())
        .collect();
    assert_eq!(got, ["0812-3456-7890", "andré@x.id"]);
    let text = "Ñame ✓ e: rina@maju.id";
    let spans = to_char_offsets(text, &detect(text));
    assert_eq!((spans[0].start, spans[0].end), (10, 22));
}

#[test]
fn spans_are_sorted_and_disjoint_on_noise() {
    // Deterministic noise made of the characters the scanner reacts to.
    let alphabet = b"0123456789 -.()+@abNIKRp\n/";
    let mut state: u64 = 7;
    let mut text = String::new();
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        text.push(char::from(
            alphabet[(state >> 33) as usize % alphabet.len()],
        ));
    }
    let spans = detect(&text);
    for w in spans.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    for s in &spans {
        assert!(s.start < s.end && s.end <= text.len());
        assert!((MIN_SCORE..=1.0).contains(&s.score));
    }
}
