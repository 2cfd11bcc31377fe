//! A labelled corpus of Indonesian business text for the PII detector:
//! RFQ e-mails, WhatsApp messages, invoices, payment confirmations,
//! customer forms and shipment updates, with the PII spans each document
//! holds (character offsets, end exclusive) and plenty of numbers that are
//! not PII (invoice and PO numbers, Rp amounts, dates, times, quantities,
//! tracking numbers, virtual accounts, 16-digit numbers that fail the NIK
//! layout).
//!
//! Written independently of the detector (its own layout rules, its own
//! Luhn), deterministic for a seed (SplitMix64), no dependencies. Used by
//! `tests/tests/pii_corpus.rs` (precision/recall through SQL) and, with
//! `--ignored write_corpus`, to write the benchmark corpus as JSON lines.

use std::fmt::Write as _;

/// SplitMix64: tiny, fast, good enough for test data, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.range(0, items.len() as u64 - 1) as usize]
    }

    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.range(0, 9) as u8))
            .collect()
    }
}

/// A labelled span: type name (as `bizos.pii_detect` spells it) and
/// character offsets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub kind: &'static str,
    pub start: usize,
    pub end: usize,
}

/// One document and its labels.
#[derive(Clone, Debug, Default)]
pub struct Doc {
    pub text: String,
    pub labels: Vec<Label>,
    chars: usize,
}

impl Doc {
    fn say(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self.chars += s.chars().count();
        self
    }

    fn pii(&mut self, kind: &'static str, s: &str) -> &mut Self {
        let start = self.chars;
        self.say(s);
        self.labels.push(Label {
            kind,
            start,
            end: self.chars,
        });
        self
    }

    /// The document as one JSON line: `{"text": …, "spans": [{type, start,
    /// end}]}`.
    pub fn to_json_line(&self) -> String {
        let spans: Vec<serde_json::Value> = self
            .labels
            .iter()
            .map(|l| serde_json::json!({"type": l.kind, "start": l.start, "end": l.end}))
            .collect();
        serde_json::json!({"text": self.text, "spans": spans}).to_string()
    }
}

const FIRST: &[&str] = &[
    "Budi", "Siti", "Agus", "Dewi", "Rina", "Joko", "Andi", "Putri", "Wayan", "Made", "Nyoman",
    "Fitri", "Hendra", "Yusuf", "Rahmat", "Désy", "Indah", "Eko", "Sri", "Bambang", "Ayu", "Rizky",
];
const LAST: &[&str] = &[
    "Santoso",
    "Wijaya",
    "Nurhaliza",
    "Saputra",
    "Hartono",
    "Kusuma",
    "Pratama",
    "Lestari",
    "Gunawan",
    "Siregar",
    "Nasution",
    "Sihombing",
    "Wibowo",
    "Setiawan",
    "Hidayat",
    "Simanjuntak",
];
const COMPANIES: &[&str] = &[
    "PT Maju Jaya Logistik",
    "CV Sumber Rejeki",
    "PT Samudra Biru",
    "UD Berkah Abadi",
    "PT Nusantara Kargo",
    "PT Sinar Mas Tekstil",
    "CV Karya Mandiri",
    "PT Agro Lestari Tbk",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.co.id",
    "yahoo.com",
    "outlook.com",
    "majujaya.co.id",
    "samudrabiru.com",
    "nusantarakargo.id",
    "karyamandiri.co.id",
];
const CITIES: &[&str] = &[
    "Jakarta",
    "Surabaya",
    "Bandung",
    "Medan",
    "Semarang",
    "Makassar",
    "Denpasar",
    "Balikpapan",
];
const COMMODITIES: &[&str] = &[
    "tekstil",
    "elektronik",
    "furniture",
    "kopi",
    "suku cadang",
    "plastik",
    "kimia",
    "makanan ringan",
];
const BANKS: &[&str] = &["BCA", "Mandiri", "BNI", "BRI", "CIMB Niaga", "Permata"];
const MONTHS: &[&str] = &[
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

/// Kemendagri province codes (the generator's own copy).
const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65,
    71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96,
];

fn name(r: &mut Rng) -> String {
    format!("{} {}", r.pick(FIRST), r.pick(LAST))
}

/// Luhn check digit for a payload of ASCII digits.
fn luhn_digit(payload: &str) -> char {
    let mut sum = 0;
    for (i, b) in payload.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// Whether 16 digits have a possible NIK layout (the generator's own rule,
/// used to make sure "not a NIK" numbers really are not).
fn nik_layout(d: &str) -> bool {
    let n = |a: usize| d[a..a + 2].parse::<u32>().unwrap_or(0);
    d.len() == 16
        && PROVINCES.contains(&n(0))
        && n(2) > 0
        && n(4) > 0
        && matches!(n(6), 1..=31 | 41..=71)
        && (1..=12).contains(&n(8))
        && &d[12..] != "0000"
}

fn nik_digits(r: &mut Rng) -> String {
    let prov = PROVINCES[r.range(0, PROVINCES.len() as u64 - 1) as usize];
    let regency = if r.chance(0.8) {
        r.range(1, 30)
    } else {
        r.range(71, 79)
    };
    let day = r.range(1, 28) + if r.chance(0.5) { 40 } else { 0 };
    format!(
        "{prov:02}{regency:02}{:02}{day:02}{:02}{:02}{:04}",
        r.range(1, 40),
        r.range(1, 12),
        r.range(0, 99),
        r.range(1, 3000)
    )
}

fn nik(r: &mut Rng) -> String {
    let d = nik_digits(r);
    match r.range(0, 9) {
        0 => format!("{} {} {} {}", &d[..4], &d[4..8], &d[8..12], &d[12..]),
        1 => format!(
            "{}.{}.{}.{}.{}",
            &d[..2],
            &d[2..4],
            &d[4..6],
            &d[6..12],
            &d[12..]
        ),
        _ => d,
    }
}

/// A 15-digit NPWP with a valid check digit (Luhn over the first 9).
fn npwp15(r: &mut Rng) -> String {
    let first8 = format!("{:02}{}", r.range(1, 99), r.digits(6));
    let check = luhn_digit(&first8);
    format!("{first8}{check}{:03}{:03}", r.range(1, 999), r.range(0, 5))
}

fn dotted_npwp(d: &str) -> String {
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

/// An NPWP in one of its forms, with the label text that introduces it
/// (the plain and 16-digit forms are only NPWPs when a keyword says so).
fn npwp(r: &mut Rng) -> (String, String) {
    let d = npwp15(r);
    let kw = r.pick(&["NPWP", "NPWP:", "No. NPWP", "npwp"]).to_owned();
    match r.range(0, 9) {
        0..=5 => (kw, dotted_npwp(&d)),
        6 => (kw, d),
        7 => (kw, format!("0{d}")),
        _ => (kw, nik_digits(r)),
    }
}

const MOBILE_PREFIXES: &[&str] = &[
    "811", "812", "813", "821", "822", "852", "853", "814", "815", "816", "855", "856", "857",
    "858", "817", "818", "819", "859", "877", "878", "831", "838", "895", "896", "897", "898",
    "881", "882", "887",
];

fn phone(r: &mut Rng) -> String {
    if r.chance(0.8) {
        let p = r.pick(MOBILE_PREFIXES);
        let tail = r.range(3, 4) as usize;
        let (a, b) = (r.digits(4), r.digits(tail));
        match r.range(0, 6) {
            0 => format!("0{p}-{a}-{b}"),
            1 => format!("0{p}{a}{b}"),
            2 => format!("+62 {p} {a} {b}"),
            3 => format!("+62{p}{a}{b}"),
            4 => format!("62{p}{a}{b}"),
            5 => format!("0{p} {a} {b}"),
            _ => format!("+62 {p}-{a}-{b}"),
        }
    } else {
        let (area, len) = *r.pick(&[
            &("21", 8usize),
            &("21", 7),
            &("22", 7),
            &("31", 7),
            &("24", 7),
            &("274", 6),
            &("361", 6),
            &("411", 6),
            &("542", 6),
        ]);
        let sub = format!("{}{}", r.range(2, 9), r.digits(len - 1));
        match r.range(0, 3) {
            0 => format!("(0{area}) {sub}"),
            1 => format!("0{area}-{sub}"),
            2 => format!("+62 {area} {sub}"),
            _ => format!("(0{area}) {}-{}", &sub[..3], &sub[3..]),
        }
    }
}

fn email(r: &mut Rng) -> String {
    let first = r.pick(FIRST).to_lowercase().replace('é', "e");
    let last = r.pick(LAST).to_lowercase();
    let local = match r.range(0, 4) {
        0 => format!("{first}.{last}"),
        1 => format!("{first}{}", r.range(1, 99)),
        2 => format!("{first}_{last}"),
        3 => r
            .pick(&["sales", "info", "admin", "finance", "cs"])
            .to_owned(),
        _ => format!("{}{last}", &first[..1]),
    };
    format!("{local}@{}", r.pick(DOMAINS))
}

/// A card number of a real network with a valid Luhn digit, printed in
/// groups or plain.
fn card(r: &mut Rng) -> String {
    let (prefix, len) = *r.pick(&[
        &("4", 16usize),
        &("4", 16),
        &("51", 16),
        &("53", 16),
        &("55", 16),
        &("2221", 16),
        &("37", 15),
        &("3530", 16),
        &("6011", 16),
    ]);
    let payload = format!("{prefix}{}", r.digits(len - prefix.len() - 1));
    let d = format!("{payload}{}", luhn_digit(&payload));
    let sep = r.pick(&[" ", " ", "-"]);
    match (len, r.range(0, 2)) {
        (15, 0) => d,
        (15, _) => format!("{}{sep}{}{sep}{}", &d[..4], &d[4..10], &d[10..]),
        (_, 0) => d,
        _ => format!(
            "{}{sep}{}{sep}{}{sep}{}",
            &d[..4],
            &d[4..8],
            &d[8..12],
            &d[12..]
        ),
    }
}

fn bank_account(r: &mut Rng) -> String {
    let n = r.range(10, 15) as usize;
    let d = format!("{}{}", r.range(1, 9), r.digits(n - 1));
    if r.chance(0.3) && n == 10 {
        format!("{}-{}-{}", &d[..3], &d[3..6], &d[6..])
    } else {
        d
    }
}

fn amount(r: &mut Rng) -> String {
    let v = r.range(1, 999) * 10u64.pow(r.range(3, 7) as u32);
    let mut s = v.to_string();
    let mut out = String::new();
    while s.len() > 3 {
        let tail = s.split_off(s.len() - 3);
        out = format!(".{tail}{out}");
    }
    format!("{s}{out}")
}

fn date(r: &mut Rng) -> String {
    let (d, m, y) = (r.range(1, 28), r.range(1, 12), r.range(2024, 2026));
    match r.range(0, 4) {
        0 => format!("{d:02}-{m:02}-{y}"),
        1 => format!("{y}-{m:02}-{d:02}"),
        2 => format!("{d:02}/{m:02}/{y}"),
        3 => format!("{d} {} {y}", MONTHS[m as usize - 1]),
        _ => format!("{d:02}.{m:02}.{y}"),
    }
}

/// A 16-digit number that is not a NIK (virtual accounts, references).
fn not_nik16(r: &mut Rng) -> String {
    loop {
        let d = format!(
            "{}{}",
            r.pick(&["8808", "7001", "3901", "1234", "8277", "5102"]),
            r.digits(12)
        );
        if !nik_layout(&d) {
            return d;
        }
    }
}

fn invoice_no(r: &mut Rng) -> String {
    format!("INV-{}-{:06}", r.range(2024, 2026), r.range(1, 999_999))
}

/// Non-PII business noise: one sentence.
fn noise(r: &mut Rng, d: &mut Doc) {
    let s = match r.range(0, 11) {
        0 => format!(
            "Mohon dibayar sebelum {} untuk invoice {}. ",
            date(r),
            invoice_no(r)
        ),
        1 => format!("Total tagihan Rp {} (sudah termasuk PPN 11%). ", amount(r)),
        2 => format!(
            "Nomor PO/{}/{:05} sudah kami terima. ",
            r.range(2024, 2026),
            r.range(1, 99999)
        ),
        3 => format!("Resi JNE JP{} — estimasi tiba {}. ", r.digits(10), date(r)),
        4 => format!("Virtual Account {} berlaku 24 jam. ", not_nik16(r)),
        5 => format!(
            "Berat {} kg, {} koli, volume {},{} cbm. ",
            r.range(10, 5000),
            r.range(1, 40),
            r.range(1, 60),
            r.range(0, 9)
        ),
        6 => format!(
            "Jadwal muat jam {:02}.{:02} WIB tanggal {}. ",
            r.range(7, 20),
            r.range(0, 5) * 10,
            date(r)
        ),
        7 => format!("Referensi {} mohon dicek. ", not_nik16(r)),
        8 => format!("Harga IDR {} per kontainer 20ft. ", amount(r)),
        9 => format!(
            "Kode pos {} — gudang {}. ",
            r.range(10110, 99999),
            r.pick(CITIES)
        ),
        10 => format!(
            "Order SO-{}-{:05} • {} unit. ",
            r.range(2024, 2026),
            r.range(1, 99999),
            r.range(1, 500)
        ),
        _ => format!(
            "Terima kasih 🙏 atas kerja samanya, “{}”. ",
            r.pick(COMPANIES)
        ),
    };
    d.say(&s);
}

/// One piece of PII with its keyword, appended to `d`.
fn pii_item(r: &mut Rng, d: &mut Doc) {
    match r.range(0, 11) {
        0 | 1 => {
            let kw = r.pick(&["NIK", "NIK:", "No. KTP", "KTP", "nomor NIK", "NIK pemilik"]);
            d.say(&format!("{kw} ")).pii("NIK", &nik(r)).say(". ");
        }
        2 => {
            let (kw, v) = npwp(r);
            d.say(&format!("{kw} ")).pii("NPWP", &v).say(". ");
        }
        3..=5 => {
            let kw = r.pick(&[
                "HP",
                "No. HP",
                "WA",
                "WA:",
                "Telp",
                "Telp.",
                "hubungi",
                "kontak",
                "No. HP/WA",
            ]);
            d.say(&format!("{kw} ")).pii("PHONE", &phone(r)).say(". ");
        }
        6 | 7 => {
            let kw = r.pick(&["Email", "email:", "E-mail", "kirim ke", "cc"]);
            let kw = if kw == "cc" { "kirim juga ke" } else { kw };
            d.say(&format!("{kw} ")).pii("EMAIL", &email(r)).say(" ");
        }
        8 => {
            let kw = r.pick(&["kartu kredit", "Visa", "Kartu", "card no.", "CC"]);
            d.say(&format!("Pembayaran {kw} "))
                .pii("CARD", &card(r))
                .say(" sudah diproses. ");
        }
        9 => {
            let kw = r.pick(&["No. Rek", "rekening", "Account No.", "no rek", "Norek"]);
            let bank = r.pick(BANKS);
            let who = r.pick(COMPANIES);
            d.say(&format!("Transfer ke {kw} {bank} "))
                .pii("BANK_ACCOUNT", &bank_account(r))
                .say(&format!(" a.n. {who}. "));
        }
        10 => {
            // Without a keyword: the structure alone must carry it.
            match r.range(0, 3) {
                0 => d.say("atau ").pii("PHONE", &phone(r)).say(" "),
                1 => d.say("(").pii("EMAIL", &email(r)).say(") "),
                2 => d.say("pemilik ").pii("NIK", &nik(r)).say(" "),
                _ => {
                    let v = dotted_npwp(&npwp15(r));
                    d.say("— ").pii("NPWP", &v).say(" ")
                }
            };
        }
        _ => {
            d.say(&format!("{} di {}, ", name(r), r.pick(CITIES)))
                .pii("PHONE", &phone(r))
                .say(". ");
        }
    }
}

/// One document of a random kind.
pub fn document(r: &mut Rng) -> Doc {
    let mut d = Doc::default();
    match r.range(0, 5) {
        0 => {
            d.say(&format!(
                "Subject: RFQ pengiriman {} {} – {}\n\nDengan hormat,\nKami dari {} ingin meminta penawaran harga. ",
                r.pick(COMMODITIES),
                r.pick(CITIES),
                r.pick(CITIES),
                r.pick(COMPANIES)
            ));
        }
        1 => {
            d.say(&format!(
                "[{:02}.{:02}] {}: Halo kak 🙏 ",
                r.range(7, 22),
                r.range(0, 59),
                name(r)
            ));
        }
        2 => {
            let _ = write!(
                d.text,
                "INVOICE {}\nTanggal: {}\nKepada: {}\n",
                invoice_no(r),
                date(r),
                r.pick(COMPANIES)
            );
            d.chars = d.text.chars().count();
        }
        3 => {
            d.say(&format!(
                "Formulir pelanggan baru • Nama: {} • Kota: {}\n",
                name(r),
                r.pick(CITIES)
            ));
        }
        4 => {
            d.say(&format!(
                "Konfirmasi pembayaran untuk {} sebesar Rp {}. ",
                invoice_no(r),
                amount(r)
            ));
        }
        _ => {
            d.say(&format!(
                "Update pengiriman: barang {} dari {} sudah berangkat. ",
                r.pick(COMMODITIES),
                r.pick(CITIES)
            ));
        }
    }
    for _ in 0..r.range(2, 6) {
        if r.chance(0.55) {
            pii_item(r, &mut d);
        } else {
            noise(r, &mut d);
        }
        if r.chance(0.2) {
            d.say("\n");
        }
    }
    d.say(&format!("\nSalam,\n{}", name(r)));
    d
}

/// `n` documents from `seed`.
pub fn corpus(seed: u64, n: usize) -> Vec<Doc> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| document(&mut r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_point_at_their_text() {
        for d in corpus(1, 500) {
            let chars: Vec<char> = d.text.chars().collect();
            for l in &d.labels {
                let s: String = chars[l.start..l.end].iter().collect();
                assert!(!s.is_empty() && s.trim() == s, "{s:?} in {:?}", d.text);
            }
        }
    }

    #[test]
    fn generated_niks_have_the_layout_and_non_niks_do_not() {
        let mut r = Rng::new(3);
        for _ in 0..1000 {
            assert!(nik_layout(&nik_digits(&mut r)));
            assert!(!nik_layout(&not_nik16(&mut r)));
        }
    }
}
