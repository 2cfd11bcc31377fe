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
    // A wrong check digit (a typo) is still an NPWP, with a lower score.
    assert_eq!(
        found("01.000.013.2-093.000"),
        [("NPWP", "01.000.013.2-093.000")]
    );
    let verified = detect("01.000.013.1-093.000")[0].score;
    let typo = detect("01.000.013.2-093.000")[0].score;
    assert!(verified > typo, "{verified} > {typo}");
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

#[test]
fn npwp_as_people_type_it() {
    // Every layout, with a valid and with a wrong check digit, keyword or
    // not for the distinctive ones; always one span.
    for text in [
        "01.000.013.1-093.000",
        "09.254.330.1-407.000",
        "08.123.456.7-890.000",
        "01.000.013.1.093.000",
        "01-000-013-1-093-000",
        "01 000 013 1 093 000",
        "01.000.013.1 - 093.000",
        "01.000.013.1\u{2013}093.000",
        "01.000.013.1\u{2014}093.000",
        "01.000.013.1-093000",
        "01000013.1-093.000",
    ] {
        assert_eq!(found(text), [("NPWP", text)], "{text}");
        let with = format!("NPWP: {text}.");
        assert_eq!(found(&with), [("NPWP", text)], "{with}");
    }
    // Fewer boundaries, plain and 16-digit forms: with the keyword, check
    // digit or not.
    for v in [
        "015234567-407000",
        "027318840407000",
        "027318850407000",
        "0012534567123000",
        "0012534597123000",
    ] {
        let text = format!("NPWP {v} PT Maju");
        assert_eq!(found(&text), [("NPWP", v)], "{text}");
    }
    assert!(found("kode 027318850407000").is_empty());
    assert!(found("ref 015234567-407000").is_empty());
}

#[test]
fn a_formatted_npwp_is_never_half_masked_as_a_phone() {
    // 15 digits starting like a mobile number: `08.123.456.7` is no phone.
    let text = "NPWP 08.123.456.7-890.000 a.n. PT X";
    assert_eq!(found(text), [("NPWP", "08.123.456.7-890.000")]);
    assert_eq!(mask(text), "NPWP [REDACTED_NPWP] a.n. PT X");
    // A landline-like start followed by more dotted digits: the whole
    // tax invoice number is no PII, and no part of it is masked.
    assert!(found("faktur pajak 010.000-26.00012345").is_empty());
    assert!(found("faktur 021.123-24.00000001 tgl 15-01-2026").is_empty());
    // A confident phone that runs on with `-digits` is masked whole.
    assert_eq!(
        found("HP 0812-3456-7890-12"),
        [("PHONE", "0812-3456-7890-12")]
    );
}

#[test]
fn phones_in_every_grouping() {
    for number in [
        "0814 9768 74",
        "0814976874",
        "0812-345-6789",
        "0812 3456 7890",
        "0812 3456 78901",
        "0812 34 56 78 90",
        "0812 3456 78 90",
        "+62 812-3456-7890",
        "+62 812 3456 7890",
        "+62-812-3456-7890",
        "+6281234567890",
        "62 812 3456 7890",
        "62 0812 3456 7890",
        "(0812) 3456-7890",
        "(+62) 812 3456 7890",
        "+62 (0)812 3456 7890",
        "0812.3456.7890",
        "081.234.567.890",
        "0812\u{2013}3456\u{2013}7890",
        "0812\u{a0}3456\u{a0}7890",
        "0812\u{202f}3456\u{202f}7890",
        "081-2345-6789-0",
        "+62 21 5795 1234",
        "(021) 2922 3456",
        "+62-22-7201-5566",
        "021 8370 1122",
    ] {
        for kw in ["", "HP ", "WA: ", "HP/WA ", "Telp. ", "No. HP ", "Cell: "] {
            let text = format!("{kw}{number} ya");
            assert_eq!(found(&text), [("PHONE", number)], "{text}");
        }
    }
}

#[test]
fn phones_that_need_their_keyword() {
    // No trunk 0 (a spreadsheet dropped it), a mistyped prefix, `62` and a
    // landline without `+`: phones after HP/WA/Telp, nothing without.
    for number in [
        "812 3456 7890",
        "81234567890",
        "0841 2345 6789",
        "62 21 555 1234",
    ] {
        let text = format!("HP/WA {number}");
        assert_eq!(found(&text), [("PHONE", number)], "{text}");
        let text = format!("nomor {number}");
        assert!(found(&text).is_empty(), "{text}: {:?}", found(&text));
    }
}

#[test]
fn whatsapp_links_and_chat_exports() {
    assert_eq!(
        found("chat aja https://wa.me/6281234567890 ya"),
        [("PHONE", "6281234567890")]
    );
    assert_eq!(
        found("12/02/26 14.03 - +62 812-3307-4411: Kak, ongkir 2 koli?"),
        [("PHONE", "+62 812-3307-4411")]
    );
    assert!(found("[15/01/26 09.15.22] Rina: Rp 1.250.000 ya").is_empty());
}

#[test]
fn a_phone_and_a_count_after_it() {
    assert_eq!(
        found("0812 3456 7890 2 unit"),
        [("PHONE", "0812 3456 7890")]
    );
    assert_eq!(found("081234567890 12 koli"), [("PHONE", "081234567890")]);
}

#[test]
fn nik_with_a_typo_after_its_keyword() {
    for (text, v) in [
        ("NIK: 3174 0135 1399 0002", "3174 0135 1399 0002"), // month 13
        ("No. KTP 3174013203900001", "3174013203900001"),    // day 32
        ("ktp 327301721091000 ya", "327301721091000"),       // a digit lost
        ("NIK 31740112039000012", "31740112039000012"),      // one too many
        ("No. Kartu Keluarga: 3175031506900011", "3175031506900011"),
    ] {
        assert_eq!(found(text), [("NIK", v)], "{text}");
    }
    // Without the keyword an impossible date is no NIK.
    assert!(found("ref 3174 0135 1399 0002").is_empty());
}

#[test]
fn card_with_a_typo_after_its_keyword() {
    for (text, v) in [
        ("kartu kredit 4111 1111 1111 1112", "4111 1111 1111 1112"),
        ("Nomor kartu: 5521 8834 0012 7765", "5521 8834 0012 7765"),
        ("CC 5412-7534-5678-9012 ok", "5412-7534-5678-9012"),
        ("Visa 4111111111111112", "4111111111111112"),
    ] {
        assert_eq!(found(text), [("CARD", v)], "{text}");
    }
    assert!(found("token 4111 1111 1111 1112").is_empty());
    assert!(found("kartu 1234 5678").is_empty());
}

#[test]
fn real_world_business_numbers_stay() {
    for text in [
        "Total Rp1.500.000,- sisanya 1,5 jt",
        "Order #5587213 dan PO 4500012345 (SAP)",
        "INV/2026/02/000778 tgl 03-02-2026 14:22:05",
        "ID 5f0c2d1e-9a7b-4c3d-8e2f-1a2b3c4d5e6f jam 18.45",
        "Resi JNE 0103 2456 7812 3409, estimasi 18-01-2026",
        "token listrik 1234 5678 9012 3456 7890",
        "merchant ID 936008980123456789, RRN 602145523671",
        "kurs 16.250, harga USD 1,250.00",
        "Saldo rekening per 31-01-2026: Rp 1.234.567.890",
        "Jadwal 2026.03.14 jam 08.00\u{2013}17.00",
        "DP Rp6.070.000.000 dan Rp 7.081.234.567",
        "faktur pajak 047.086-25.51863220",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn a_dash_with_spaces_separates_two_numbers() {
    assert_eq!(
        found("atau +62 (0)856 9766 666 — 43.054.025.2-655.003 ya"),
        [
            ("PHONE", "+62 (0)856 9766 666"),
            ("NPWP", "43.054.025.2-655.003")
        ]
    );
    assert_eq!(
        found("HP 0811 332127 – NIK 3174011203900001"),
        [("PHONE", "0811 332127"), ("NIK", "3174011203900001")]
    );
}

#[test]
fn a_nik_keyword_outranks_a_card_look_alike() {
    // Day 00 (a typo) and a Luhn-valid Mastercard prefix: after `NIK` it
    // is the NIK.
    assert_eq!(
        found("nomor NIK 5208 0200 0754 0161."),
        [("NIK", "5208 0200 0754 0161")]
    );
}

#[test]
fn tables_pasted_as_text() {
    // The column header is the keyword; the `No. Rek` header does not make
    // the NIK beside it a bank account.
    let md = "No | Nama | NIK | No. Rek\n1 | Hendra | 1271 0212 0580 0003 | 1122334455\n";
    assert_eq!(
        found(md),
        [
            ("NIK", "1271 0212 0580 0003"),
            ("BANK_ACCOUNT", "1122334455")
        ]
    );
    // A spreadsheet dropped the trunk 0: the `no_hp` column says phone.
    let csv = "nama;no_hp;kota\nRina;81298765432;Depok\nYusuf;6285712340987;Bogor";
    assert_eq!(
        found(csv),
        [("PHONE", "81298765432"), ("PHONE", "6285712340987")]
    );
    // Without the header it is no phone.
    assert!(found("Rina;81298765432;Depok").is_empty());
    // Quoted CSV cells.
    let quoted = "\"id\",\"npwp\"\n\"C-1\",\"027318850407000\"";
    assert_eq!(found(quoted), [("NPWP", "027318850407000")]);
    // Prose lines with commas are no table.
    assert!(found("Halo kak, saya Budi, mau tanya\nOrder 1234567890, 2 koli, Depok").is_empty());
}

#[test]
fn digits_of_other_scripts() {
    // Full-width (an IME left on), with full-width separators too.
    assert_eq!(
        mask("WA ０８１２-３４５６-７８９０ ya"),
        "WA [REDACTED_PHONE] ya"
    );
    assert_eq!(
        mask("No HP: ＋６２　８１３　１１２２　３３４４"),
        "No HP: [REDACTED_PHONE]"
    );
    assert_eq!(
        mask("NIK: ３１７４０１１２０３９００００１\nNama: Liem"),
        "NIK: [REDACTED_NIK]\nNama: Liem"
    );
    assert_eq!(
        mask("NPWP ０１.０００.０１３.１-０９３.０００."),
        "NPWP [REDACTED_NPWP]."
    );
    assert_eq!(
        mask("kartu ４１１１ １１１１ １１１１ １１１１ exp １２/２８"),
        "kartu [REDACTED_CARD] exp １２/２８"
    );
    // Arabic-Indic, Persian, Devanagari, Thai, Javanese.
    assert_eq!(
        mask("رقم ٠٨٥٧ ١٢٣٤ ٩٨٧٦، KTP ٣٥٧٨٠٢٤٥٠٧٩٢٠٠٠٣"),
        "رقم [REDACTED_PHONE]، KTP [REDACTED_NIK]"
    );
    assert_eq!(mask("Wa ۰۸۱۱۹۸۷۶۵۴۳"), "Wa [REDACTED_PHONE]");
    assert_eq!(mask("संपर्क +६२ ८२१ ५५५० १२३४ —"), "संपर्क [REDACTED_PHONE] —");
    assert_eq!(mask("โทร ๐๘๙๖ ๗๗๘๘ ๑๑๒๒"), "โทร [REDACTED_PHONE]");
    assert_eq!(mask("hp ꧐꧘꧑꧓꧗꧗꧗꧗꧘꧘꧘꧘"), "hp [REDACTED_PHONE]");
    // Offsets are the original's, in characters for SQL.
    let text = "WA ０８１２-３４５６-７８９０ ya";
    let spans = to_char_offsets(text, &detect(text));
    assert_eq!((spans[0].start, spans[0].end), (3, 17));
}

#[test]
fn business_numbers_in_other_scripts_stay() {
    for text in [
        "Pesanan ＩＮＶ－２０２６－０００１２３ dibayar Rp １.２５０.０００ tanggal １５-０１-２０２６.",
        "Tanggal ٢٠٢٦-٠٣-٢١، total ١٢ karton، Rp ٧٥٠.٠٠٠",
        "Faktur pajak ０１０.０００-２６.０００１２３４５ tgl １５.０１.２０２６",
        "Resi ＪＰ１２３４５６７８９０",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn digits_typed_one_by_one() {
    assert_eq!(
        mask("no hp 0 8 1 2 3 4 5 6 7 8 9 0 malam aja"),
        "no hp [REDACTED_PHONE] malam aja"
    );
    assert_eq!(
        mask("KTP: 3 1 7 4 0 1 1 2 0 3 9 0 0 0 0 1"),
        "KTP: [REDACTED_NIK]"
    );
    assert_eq!(
        mask("wa 0-8-5-7-1-1-2-2-3-3-4-4 ya"),
        "wa [REDACTED_PHONE] ya"
    );
    assert_eq!(
        mask("HP 0 8 1 2 - 3 4 5 6 - 7 8 9 0"),
        "HP [REDACTED_PHONE]"
    );
    assert_eq!(
        mask("Rek BCA 1 2 3 4 5 6 7 8 9 0 a.n. Sari"),
        "Rek BCA [REDACTED_BANK_ACCOUNT] a.n. Sari"
    );
    assert_eq!(mask("+6 2 8 1 2 3 4 5 6 7 8 9 0"), "[REDACTED_PHONE]");
    // Counts and lists stay.
    let text = "Jumlah 1 2 3 4 buah, dikirim 2 kali, Rp 1 . 2 5 0";
    assert!(found(text).is_empty());
}

#[test]
fn numbers_wrapped_by_a_line_break() {
    assert_eq!(
        mask("NIK saya 3174011203\n900001 sudah?"),
        "NIK saya [REDACTED_NIK] sudah?"
    );
    assert_eq!(
        mask("NPWP: 01.000.013.1-\n093.000\nAlamat"),
        "NPWP: [REDACTED_NPWP]\nAlamat"
    );
    assert_eq!(mask("di 0812-3456-\r\n7890 ya"), "di [REDACTED_PHONE] ya");
    assert_eq!(mask("HP: +62 812\n3456 7890"), "HP: [REDACTED_PHONE]");
    assert_eq!(
        mask("NIK 3174 0112\n0390 0001, HP"),
        "NIK [REDACTED_NIK], HP"
    );
    // The first line a phone already, two more digits on the next.
    assert_eq!(mask("hub 0812345678\n90"), "hub [REDACTED_PHONE]");
    // Two numbers on two lines stay two; a table's next row is no tail.
    assert_eq!(
        mask("kontak:\n081298765432\n085711112222\n(ayah, ibu)"),
        "kontak:\n[REDACTED_PHONE]\n[REDACTED_PHONE]\n(ayah, ibu)"
    );
    assert_eq!(
        mask("no,hp\n1,081287651234\n2,081287651235"),
        "no,hp\n1,[REDACTED_PHONE]\n2,[REDACTED_PHONE]"
    );
    // A blank line ends a number; dates and amounts on their own lines stay.
    assert!(found("NIK 3174011203\n\n900001").is_empty());
    assert!(found("Tgl 15-01-2026\nTotal Rp 1.250.000\nINV-2026-000123\nqty 250").is_empty());
}

#[test]
fn invisible_characters_inside_a_number() {
    assert_eq!(
        mask("No WA: 0812\u{200B}3456\u{200B}7890."),
        "No WA: [REDACTED_PHONE]."
    );
    assert_eq!(
        mask("NIK 3174\u{00AD}0112\u{2060}0390\u{FEFF}0001"),
        "NIK [REDACTED_NIK]"
    );
    // A zero-width space after the number is not part of it.
    let text = "HP 081234567890\u{200B} ok";
    assert_eq!(found(text), [("PHONE", "081234567890")]);
}

#[test]
fn keywords_glued_to_the_number() {
    assert_eq!(mask("KTP-3273015203850123 Rina"), "KTP-[REDACTED_NIK] Rina");
    assert_eq!(
        mask("npwp01.234.567.8-901.000 untuk faktur"),
        "npwp[REDACTED_NPWP] untuk faktur"
    );
    assert_eq!(
        mask("HP081234567890 / WA089612345678"),
        "HP[REDACTED_PHONE] / WA[REDACTED_PHONE]"
    );
    assert_eq!(
        mask("NoHP:0813-9988-7766, NoKTP3578024507920003"),
        "NoHP:[REDACTED_PHONE], NoKTP[REDACTED_NIK]"
    );
    assert_eq!(
        mask("transfer ke norek0871234560 BNI"),
        "transfer ke norek[REDACTED_BANK_ACCOUNT] BNI"
    );
    assert_eq!(mask("NIK3174011203900001"), "NIK[REDACTED_NIK]");
    assert_eq!(mask("ＨＰ０８１２３４５６７８９０"), "ＨＰ[REDACTED_PHONE]");
    // Identifiers glued to words that are no keyword stay.
    for text in [
        "Printer HP 1020, resi JP1234567890, PO/2026/17, INV-2026-000123",
        "kode SKU-081234567890",
        "X1HP081234567890",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn slashes_between_digits() {
    assert_eq!(
        mask("kantor 021/5551234 atau (021) 555-1234"),
        "kantor [REDACTED_PHONE] atau [REDACTED_PHONE]"
    );
    for text in [
        "jatuh tempo 30/04/2026",
        "No. 081/SPK/2026",
        "[10/03/26 11.20.45]",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn spans_cover_whole_original_characters() {
    // Every span starts and ends on a character boundary of the original
    // and masks its characters whole, whatever was folded inside.
    for text in [
        "WA ０８１２\u{200B}３４５６-７８９０\u{200B}.",
        "HP 0 8 1 2 3 4 5 6 7 8 9 0\u{3000}ok",
        "NIK ٣١٧٤٠١١٢٠٣\n٩٠٠٠٠١ ✓",
    ] {
        for s in detect(text) {
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let inside = &text[s.start..s.end];
            assert_eq!(inside.trim(), inside, "{inside:?}");
            let masked = mask(text);
            assert!(
                !masked
                    .chars()
                    .any(|c| super::fold::digit_value(c).is_some()),
                "{masked}"
            );
        }
    }
}
