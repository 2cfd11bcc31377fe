//! What kind of fact a question asks for, and whether a sentence states
//! one (issue 49, item 3): the expected answer type of question answering
//! (Li and Roth's classes, coarsely: a number, a quantity in some unit, a
//! person or body, a time), read from the question's wh-phrase.
//!
//! A near miss holds most of the question's words and is close to it in
//! meaning, yet lacks what is asked: "What was the mass of each free-flight
//! model?" against "Five free-flight models were flown to measure the
//! zero-lift drag". BM25 and the cosine see the topic; the missing fact is
//! one word of the question. A sentence that answers "what was the mass"
//! holds a number with a unit of mass, one that answers "who" names
//! somebody, one that answers "how many" holds a number the question does
//! not. [`Expected::held_by`] checks only that; a sentence passing it must
//! still carry the question's words ([`super::grounding`]).
//!
//! The rules refuse only what they can read: a question they cannot
//! classify ("which method", "where", yes or no) expects [`Expected::Any`],
//! and a sentence's number counts whatever its form ("500degree", "0.22-in",
//! "Rp50.000.000", "enam", "twelve").

use super::grounding::Language;

/// The kind of fact a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Anything: yes or no, "which method", "where", "how" (manner).
    Any,
    /// A number the question does not hold: "how many", "what ratio",
    /// "berapa".
    Number,
    /// A number with a unit of one of these dimensions: "what was the
    /// mass", "how long did it take".
    Quantity(&'static [Dimension]),
    /// Somebody: a person, a body or a role ("who", "which company",
    /// "siapa").
    Agent,
    /// A point or a span in time: "when", "in which year", "kapan".
    Time,
    /// How often: "how often", "seberapa sering", "berapa kali".
    Frequency,
}

/// What a quantity measures, by its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Mass,
    Length,
    Pressure,
    Temperature,
    Speed,
    Duration,
    Money,
}

use Dimension::*;

const MASS: &[Dimension] = &[Mass];
const LENGTH: &[Dimension] = &[Length];
const PRESSURE: &[Dimension] = &[Pressure];
const TEMPERATURE: &[Dimension] = &[Temperature];
const SPEED: &[Dimension] = &[Speed];
const DURATION: &[Dimension] = &[Duration];
const MONEY: &[Dimension] = &[Money];
const LENGTH_OR_DURATION: &[Dimension] = &[Length, Duration];

/// A word or a number of a text, lower case. A number is a run of digits
/// with `.` or `,` between digits; letters glued to it are a word of their
/// own ("500degree" is 500 and "degree", "rp50.000" is "rp" and 50.000).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Number(String),
}

impl Token {
    fn word(&self) -> Option<&str> {
        match self {
            Token::Word(w) => Some(w),
            Token::Number(_) => None,
        }
    }
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(Token::Number(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Word(word.to_lowercase()));
        } else {
            if matches!(c, '°' | '$' | '%') {
                out.push(Token::Word(c.to_string()));
            }
            i += 1;
        }
    }
    out
}

/// Numbers written as words, English and Indonesian.
#[rustfmt::skip]
const NUMBER_WORDS: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
    "thousand", "million", "billion", "dozen", "half", "twice", "single", "double", "triple",
    "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan", "sepuluh",
    "sebelas", "belas", "puluh", "seratus", "ratus", "seribu", "ribu", "sejuta", "juta", "miliar",
    "setengah", "separuh",
];

/// Units a number is read in, by dimension. Speed's "ft" and "m" are
/// lengths unless a time follows ("ft/sec", "m per s"); see [`unit_after`].
#[rustfmt::skip]
fn units(d: Dimension) -> &'static [&'static str] {
    match d {
        Mass => &[
            "kg", "kilogram", "kilograms", "g", "gram", "grams", "gm", "mg", "lb", "lbs", "pound",
            "pounds", "ton", "tons", "tonne", "tonnes", "oz", "ounce", "ounces", "slug", "slugs",
            "kilo", "kilos",
        ],
        Length => &[
            "m", "mm", "cm", "km", "meter", "meters", "metre", "metres", "in", "inch", "inches",
            "ft", "feet", "foot", "mi", "mile", "miles", "micron", "microns", "yd", "yard", "yards",
            "chord", "chords", "diameter", "diameters", "caliber", "calibers", "calibre",
            "calibres", "sentimeter", "milimeter", "kilometer",
        ],
        Pressure => &[
            "atm", "atmosphere", "atmospheres", "psi", "psia", "psig", "psf", "bar", "bars", "mb",
            "mbar", "millibar", "millibars", "pa", "kpa", "mpa", "torr", "hg",
        ],
        Temperature => &[
            "degree", "degrees", "deg", "°", "k", "kelvin", "f", "fahrenheit", "c", "celsius",
            "centigrade", "r", "rankine", "derajat",
        ],
        Speed => &["fps", "mph", "knot", "knots", "kmh", "kph", "kts"],
        Duration => &[
            "s", "sec", "secs", "second", "seconds", "ms", "msec", "millisecond", "milliseconds",
            "microsecond", "microseconds", "min", "mins", "minute", "minutes", "h", "hr", "hrs",
            "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
            "detik", "menit", "jam", "hari", "minggu", "bulan", "tahun",
        ],
        Money => &[
            "rupiah", "idr", "usd", "dollar", "dollars", "cent", "cents", "euro", "euros", "juta",
            "ribu", "miliar", "million", "billion", "thousand",
        ],
    }
}

/// Words that name somebody: a role, a body, an organisation.
#[rustfmt::skip]
const AGENT_WORDS: &[&str] = &[
    // English
    "company", "companies", "corporation", "firm", "manufacturer", "manufacturers", "laboratory",
    "laboratories", "lab", "institute", "university", "agency", "administration", "committee",
    "council", "board", "department", "division", "team", "staff", "manager", "managers",
    "director", "officer", "engineer", "engineers", "author", "authors", "government", "navy",
    "army", "nasa", "naca", "supplier", "suppliers", "vendor", "contractor", "customer",
    "customers", "employee", "employees", "supervisor", "head", "president", "chief", "owner", "al",
    // "et al.",
    // Indonesian
    "atasan", "manajer", "direktur", "direksi", "kepala", "bagian", "divisi", "departemen", "tim",
    "karyawan", "pegawai", "staf", "petugas", "pemasok", "pelanggan", "komite", "panitia",
    "pimpinan", "hrd", "sdm", "pemilik", "penanggung", "admin", "administrator", "perusahaan",
    "pejabat", "pemohon", "pengguna", "pihak", "manajemen", "sekretaris", "bendahara", "auditor",
    "kontraktor", "konsultan", "mitra", "atasannya",
];

/// Words that place a fact in time.
#[rustfmt::skip]
const TIME_WORDS: &[&str] = &[
    "january", "february", "march", "april", "june", "july", "august", "september",
    "october", "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday", "sunday", "before", "after", "within", "during", "until", "since", "ago", "daily",
    "weekly", "monthly", "annually", "yearly", "januari", "februari", "maret", "mei", "juni",
    "juli", "agustus", "oktober", "desember", "senin", "selasa", "rabu", "kamis", "jumat", "sabtu",
    "sebelum", "setelah", "sesudah", "selambat", "lambat", "hingga", "sampai", "sejak", "setiap",
    "tiap", "pukul", "awal", "akhir", "tanggal", "harian", "mingguan", "bulanan", "tahunan",
];

/// Words that say how often.
#[rustfmt::skip]
const FREQUENCY_WORDS: &[&str] = &[
    "every", "each", "daily", "weekly", "monthly", "annually", "yearly", "hourly", "once", "twice",
    "per", "setiap", "tiap", "sekali", "kali", "harian", "mingguan", "bulanan", "tahunan",
];

/// Words of an English question before its subject: a yes-or-no question.
#[rustfmt::skip]
const AUXILIARIES: &[&str] = &[
    "did", "does", "do", "is", "are", "was", "were", "can", "could", "has", "have", "had", "will",
    "would", "should", "may", "might", "must", "shall",
];

/// Where the wh-phrase of "what ..." / "which ..." ends.
#[rustfmt::skip]
const PHRASE_END: &[&str] = &[
    "of", "in", "on", "at", "for", "by", "with", "to", "from", "per", "did", "does", "do", "was",
    "were", "is", "are", "can", "could", "has", "have", "had", "will", "would", "should", "that",
    "which", "when", "where", "used", "and", "or",
];

/// The head noun of a "what"/"which" phrase and what it expects.
fn by_head_noun(head: &str) -> Expected {
    match head {
        "year" | "years" | "date" | "dates" | "month" | "day" => Expected::Time,
        "company" | "companies" | "organisation" | "organization" | "firm" | "manufacturer"
        | "laboratory" | "institution" | "university" | "agency" | "person" | "author"
        | "authors" | "engineer" | "engineers" => Expected::Agent,
        "mass" | "weight" => Expected::Quantity(MASS),
        "length" | "diameter" | "span" | "thickness" | "height" | "altitude" | "radius"
        | "width" | "depth" | "distance" | "wavelength" => Expected::Quantity(LENGTH),
        "pressure" | "pressures" => Expected::Quantity(PRESSURE),
        "temperature" | "temperatures" => Expected::Quantity(TEMPERATURE),
        "speed" | "speeds" | "velocity" | "velocities" => Expected::Quantity(SPEED),
        "duration" => Expected::Quantity(DURATION),
        "cost" | "price" | "fee" | "fees" | "salary" => Expected::Quantity(MONEY),
        "number" | "numbers" | "ratio" | "ratios" | "percentage" | "percent" | "fraction"
        | "value" | "values" | "coefficient" | "factor" | "figure" | "angle" | "angles"
        | "rate" | "rates" | "range" | "count" | "amount" | "frequency" | "proportion"
        | "efficiency" => Expected::Number,
        _ => Expected::Any,
    }
}

fn words(tokens: &[Token]) -> Vec<&str> {
    tokens.iter().filter_map(Token::word).collect()
}

fn english(q: &[&str]) -> Expected {
    let Some(first) = q.first() else {
        return Expected::Any;
    };
    if AUXILIARIES.contains(first) {
        return Expected::Any;
    }
    let Some(at) = q.iter().take(4).position(|w| {
        matches!(
            *w,
            "who" | "whom" | "whose" | "when" | "where" | "how" | "what" | "which"
        )
    }) else {
        return Expected::Any;
    };
    let has = |set: &[&str]| q.iter().any(|w| set.contains(w));
    match q[at] {
        "who" | "whom" | "whose" => Expected::Agent,
        "when" => Expected::Time,
        "where" => Expected::Any,
        "how" => match q.get(at + 1).copied().unwrap_or("") {
            "many" => Expected::Number,
            "often" => Expected::Frequency,
            "much" if has(&["weigh", "weighs", "weighed", "weight"]) => Expected::Quantity(MASS),
            "much" if has(&["cost", "costs", "paid", "pay", "price", "charge", "charged"]) => {
                Expected::Quantity(MONEY)
            }
            "much" | "large" | "big" | "old" => Expected::Number,
            "long" if has(&["take", "takes", "took", "taken", "last", "lasts", "lasted"]) => {
                Expected::Quantity(DURATION)
            }
            "long" => Expected::Quantity(LENGTH_OR_DURATION),
            "high" | "tall" | "far" | "wide" | "deep" | "thick" => Expected::Quantity(LENGTH),
            "heavy" => Expected::Quantity(MASS),
            "fast" => Expected::Quantity(SPEED),
            "hot" | "cold" | "warm" => Expected::Quantity(TEMPERATURE),
            _ => Expected::Any,
        },
        _ => {
            // what / which: the phrase's head noun, its last word before
            // a verb or a preposition ("the free stream mach number range"
            // -> range; "the mass of each model" -> mass; "company" of
            // "which company made the engine", a word before a determiner
            // being a verb). A phrase whose last word says nothing may
            // still begin with somebody or a time ("which company
            // manufactures paraplex").
            let rest: Vec<&str> = q[at + 1..]
                .iter()
                .copied()
                .skip_while(|w| matches!(*w, "is" | "was" | "are" | "were" | "the" | "a" | "an"))
                .collect();
            let mut phrase = Vec::new();
            for (i, w) in rest.iter().enumerate() {
                let before_determiner =
                    matches!(rest.get(i + 1), Some(&("the" | "a" | "an"))) && !phrase.is_empty();
                if PHRASE_END.contains(w) || before_determiner || phrase.len() == 5 {
                    break;
                }
                phrase.push(*w);
            }
            match (phrase.first(), phrase.last().map(|h| by_head_noun(h))) {
                (_, Some(e)) if e != Expected::Any => e,
                (Some(first), _) => match by_head_noun(first) {
                    e @ (Expected::Agent | Expected::Time) => e,
                    _ => Expected::Any,
                },
                (None, _) => Expected::Any,
            }
        }
    }
}

fn indonesian(q: &[&str]) -> Expected {
    let has = |w: &str| q.contains(&w);
    let followed = |a: &str, b: &str| q.windows(2).any(|p| p[0] == a && p[1] == b);
    if q.first() == Some(&"apakah") {
        Expected::Any
    } else if has("siapa") {
        Expected::Agent
    } else if has("kapan")
        || ["tahun", "tanggal", "pukul", "jam", "bulan"]
            .iter()
            .any(|w| followed(w, "berapa"))
    {
        Expected::Time
    } else if followed("seberapa", "sering") || followed("berapa", "kali") {
        Expected::Frequency
    } else if has("berapa") || has("seberapa") {
        Expected::Number
    } else {
        Expected::Any
    }
}

impl Expected {
    /// The answer type of a question read in `language`.
    pub fn of(question: &str, language: Language) -> Expected {
        let t = tokens(question);
        let q = words(&t);
        match language {
            Language::English => english(&q),
            Language::Indonesian => indonesian(&q),
        }
    }

    /// Does the sentence state a fact of this type that the question does
    /// not already hold?
    pub fn held_by(self, sentence: &str, question: &str) -> bool {
        let q = tokens(question);
        let s = tokens(sentence);
        let new = |t: &Token| !q.contains(t);
        let number_at = |i: usize| {
            s.get(i).is_some_and(|t| {
                new(t)
                    && match t {
                        Token::Number(_) => true,
                        Token::Word(w) => NUMBER_WORDS.contains(&w.as_str()),
                    }
            })
        };
        let word_at = |i: usize, set: &[&str]| {
            s.get(i)
                .and_then(Token::word)
                .is_some_and(|w| set.contains(&w))
        };
        let numbers = || (0..s.len()).filter(|&i| number_at(i));
        match self {
            Expected::Any => true,
            Expected::Number => {
                numbers().next().is_some() || s.iter().any(|t| t.word() == Some("%"))
            }
            Expected::Quantity(dims) => numbers().any(|i| {
                dims.iter()
                    .any(|&d| unit_after(&s, i, d) || unit_before(&s, i, d))
            }),
            Expected::Agent => {
                s.iter()
                    .filter(|t| new(t))
                    .filter_map(Token::word)
                    .any(|w| AGENT_WORDS.contains(&w))
                    || capitalised_name(sentence, question)
                    || by_someone(&s, &q)
                    || initialled_name(sentence)
                    || possessive(sentence, question)
            }
            Expected::Time => {
                numbers().any(|i| {
                    unit_after(&s, i, Duration)
                        || matches!(&s[i], Token::Number(n)
                            if n.len() == 4 && (n.starts_with("1") || n.starts_with("20")))
                }) || (0..s.len()).any(|i| word_at(i, TIME_WORDS) && new(&s[i]))
            }
            Expected::Frequency => {
                numbers().next().is_some()
                    || (0..s.len()).any(|i| word_at(i, FREQUENCY_WORDS) && new(&s[i]))
            }
        }
    }
}

/// A unit of `d` right after the number at `i` ("8640 kg", "0.22-in",
/// "15 ms", "2 lb sq.ft.", "300 ft/sec", "tiga hari").
fn unit_after(s: &[Token], i: usize, d: Dimension) -> bool {
    let w = |k: usize| s.get(k).and_then(Token::word).unwrap_or("");
    let (next, then) = (w(i + 1), w(i + 2));
    let per_time = |x: &str| matches!(x, "sec" | "s" | "second" | "per" | "h" | "hr" | "hour");
    match d {
        Speed => {
            units(Speed).contains(&next)
                || (matches!(next, "ft" | "m" | "km" | "mi" | "miles" | "feet") && per_time(then))
        }
        Pressure => {
            units(Pressure).contains(&next)
                || (next == "lb" && matches!(then, "sq" | "per" | "in" | "ft"))
                || (next == "mm" && then == "hg")
        }
        Length => units(Length).contains(&next) && !(matches!(next, "ft" | "m") && per_time(then)),
        _ => units(d).contains(&next),
    }
}

/// A unit of `d` written before the number at `i`: money ("rp 50.000",
/// "$12") and speed as a Mach number ("mach 5.8", "a mach number of 3").
fn unit_before(s: &[Token], i: usize, d: Dimension) -> bool {
    let w = |k: usize| s.get(k).and_then(Token::word).unwrap_or("");
    match d {
        Money => i > 0 && matches!(w(i - 1), "rp" | "$" | "usd" | "idr"),
        Speed => (1..=3).any(|back| i >= back && w(i - back) == "mach"),
        _ => false,
    }
}

/// Words after "by" / "oleh" that do not name the doer ("by means of",
/// "by the", "by varying").
#[rustfmt::skip]
const BY_NOT_AGENT: &[&str] = &[
    "the", "a", "an", "means", "use", "way", "far", "this", "that", "these", "those", "its",
    "their", "his", "her", "which", "what", "each", "some", "all", "any", "comparison", "contrast",
    "itself", "themselves", "virtue", "definition", "analogy", "assumption", "karena", "itu", "ini",
    "para",
];

/// "solved by haag", "disetujui oleh direktur": the word after "by" or
/// "oleh", unless it is a function word, a gerund ("by varying") or a
/// word of the question. (Cranfield's abstracts are lower case, so a name
/// there has no capital.)
fn by_someone(s: &[Token], q: &[Token]) -> bool {
    s.windows(2).any(|p| {
        matches!(p[0].word(), Some("by" | "oleh"))
            && p[1].word().is_some_and(|w| {
                w.len() > 2
                    && !BY_NOT_AGENT.contains(&w)
                    && !w.ends_with("ing")
                    && !q.contains(&p[1])
            })
    })
}

/// A name with initials: "o. reynolds", "g. i. taylor" (one letter and a
/// full stop before a word; not the "g." of "e.g.").
fn initialled_name(sentence: &str) -> bool {
    let c: Vec<char> = sentence.chars().collect();
    (0..c.len()).any(|i| {
        c[i].is_alphabetic()
            && (i == 0 || c[i - 1] == ' ')
            && c.get(i + 1) == Some(&'.')
            && c.get(i + 2) == Some(&' ')
            && c[i + 3..].iter().take_while(|x| x.is_alphabetic()).count() >= 3
    })
}

/// "preston's method": a word in the possessive that the question does
/// not hold (it answers "whose").
fn possessive(sentence: &str, question: &str) -> bool {
    let q = question.to_lowercase();
    let lower = sentence.to_lowercase();
    lower.match_indices(['\'', '\u{2019}']).any(|(i, m)| {
        let after = &lower[i + m.len()..];
        let owner: String = lower[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        after.starts_with('s')
            && !after[1..].starts_with(char::is_alphabetic)
            && owner.chars().count() > 2
            && !q.split(|c: char| !c.is_alphabetic()).any(|w| w == owner)
    })
}

/// A name: a word in capitals that is not the sentence's first and not a
/// word of the question ("designed by Ferri", "Boeing built ...").
fn capitalised_name(sentence: &str, question: &str) -> bool {
    let q = question.to_lowercase();
    let asked: Vec<&str> = q.split(|c: char| !c.is_alphabetic()).collect();
    sentence
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .skip(1)
        .any(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars().skip(1).any(char::is_lowercase)
                && !asked.contains(&w.to_lowercase().as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en(q: &str) -> Expected {
        Expected::of(q, Language::English)
    }

    fn id(q: &str) -> Expected {
        Expected::of(q, Language::Indonesian)
    }

    #[test]
    fn numbers_and_glued_units_are_tokens_of_their_own() {
        use Token::*;
        assert_eq!(
            tokens("500degree to 15,000degree K, 0.22-in. Rp50.000.000 (3%)"),
            [
                Number("500".into()),
                Word("degree".into()),
                Word("to".into()),
                Number("15,000".into()),
                Word("degree".into()),
                Word("k".into()),
                Number("0.22".into()),
                Word("in".into()),
                Word("rp".into()),
                Number("50.000.000".into()),
                Number("3".into()),
                Word("%".into()),
            ]
        );
    }

    #[test]
    fn english_questions_by_their_wh_phrase() {
        assert_eq!(en("Did the model stall at Mach 2?"), Expected::Any);
        assert_eq!(en("Which method was the most successful?"), Expected::Any);
        assert_eq!(en("What material was used for the model?"), Expected::Any);
        assert_eq!(en("Where was the tunnel built?"), Expected::Any);
        assert_eq!(en("How was the flow made visible?"), Expected::Any);
        assert_eq!(en("Who designed the wing?"), Expected::Agent);
        assert_eq!(en("Which company made the engine?"), Expected::Agent);
        assert_eq!(en("Which company manufactures paraplex?"), Expected::Agent);
        assert_eq!(en("What pressure distribution was found?"), Expected::Any);
        assert_eq!(en("When were the tests made?"), Expected::Time);
        assert_eq!(en("In which year was it flown?"), Expected::Time);
        assert_eq!(en("How many blades has the rotor?"), Expected::Number);
        assert_eq!(en("How much higher was the drag?"), Expected::Number);
        assert_eq!(
            en("How often is the gauge calibrated?"),
            Expected::Frequency
        );
        assert_eq!(
            en("How much does the capsule weigh?"),
            Expected::Quantity(MASS)
        );
        assert_eq!(
            en("How much did the tunnel cost?"),
            Expected::Quantity(MONEY)
        );
        assert_eq!(en("How long did a run take?"), Expected::Quantity(DURATION));
        assert_eq!(
            en("How long is the fuselage?"),
            Expected::Quantity(LENGTH_OR_DURATION)
        );
        assert_eq!(en("How high did it fly?"), Expected::Quantity(LENGTH));
        assert_eq!(
            en("What was the mass of each model?"),
            Expected::Quantity(MASS)
        );
        assert_eq!(
            en("What driving pressure was used?"),
            Expected::Quantity(PRESSURE)
        );
        assert_eq!(
            en("Over which range of temperatures is it valid?"),
            Expected::Number
        );
        assert_eq!(
            en("What was the free stream Mach number range in the study?"),
            Expected::Number
        );
        assert_eq!(
            en("What aspect ratio did the wings have?"),
            Expected::Number
        );
        assert_eq!(en("What is the name of the method?"), Expected::Any);
    }

    #[test]
    fn indonesian_questions_by_their_question_word() {
        assert_eq!(id("Apakah karyawan mendapat bonus?"), Expected::Any);
        assert_eq!(id("Siapa yang menyetujui cuti?"), Expected::Agent);
        assert_eq!(id("Kapan laporan dikirim?"), Expected::Time);
        assert_eq!(id("Tahun berapa aturan ini berlaku?"), Expected::Time);
        assert_eq!(
            id("Seberapa sering pemasok dievaluasi?"),
            Expected::Frequency
        );
        assert_eq!(id("Berapa kali boleh terlambat?"), Expected::Frequency);
        assert_eq!(id("Berapa panjang minimal kata sandi?"), Expected::Number);
        assert_eq!(id("Bagaimana cara mengajukan cuti?"), Expected::Any);
    }

    #[test]
    fn a_quantity_needs_a_number_in_a_unit_of_its_dimension() {
        let q = "What was the mass of each free-flight model?";
        let e = en(q);
        assert!(e.held_by("The vehicle weighs 8640 kg.", q));
        assert!(e.held_by("Each model weighed 2.5 lbs at launch.", q));
        assert!(!e.held_by(
            "Five free-flight models were flown over a mach number range of 0.84 to 1.48.",
            q
        ));
        let p = "What driving pressure was used in the gun tunnel?";
        assert!(!en(p).held_by("Steady pressures were held for approximately 15 ms.", p));
        assert!(en(p).held_by("The driving pressure was 300 atm.", p));
        assert!(en(p).held_by("A limit of 2 lb sq.ft. is acceptable.", p));
        let d = "What was the diameter of the models?";
        assert!(en(d).held_by("Models, 0.22-in. in diameter, were fired.", d));
        assert!(!en(d).held_by("Models were fired at 10,000 ft/sec.", d));
        let t = "Over which range of temperatures are the properties tabulated?";
        assert!(en(t).held_by("From 500degree to 15,000degree k.", t));
    }

    #[test]
    fn a_number_the_question_holds_is_not_an_answer() {
        let q = "How many blades does the rotor tested at Mach 1.9 have?";
        assert!(!en(q).held_by("The rotor was tested at mach 1.9.", q));
        assert!(en(q).held_by("The rotor has 21 blades.", q));
        assert!(en(q).held_by("The rotor has twelve blades.", q));
        let s = "At what Mach number was the chord measured at Mach 1.9?";
        assert!(!en(s).held_by("The models were tested at a mach number of 1.9.", s));
    }

    #[test]
    fn speed_money_and_time() {
        let v = "What was the velocity of the projectiles?";
        assert!(en(v).held_by("They flew at 17,000 ft sec.", v));
        assert!(en(v).held_by("The flow reached mach 5.8.", v));
        assert!(!en(v).held_by("They were 0.22 in. in diameter.", v));
        let c = "How much did the tunnel cost?";
        assert!(en(c).held_by("It cost $2 million.", c));
        assert!(!en(c).held_by("It was built in 1958.", c));
        let w = "When was the tunnel built?";
        assert!(en(w).held_by("It was built in 1958.", w));
        assert!(!en(w).held_by("It was built by the navy.", w));
        let k = "Kapan laporan perjalanan diserahkan?";
        assert!(id(k).held_by(
            "Laporan diserahkan paling lambat lima hari kerja setelah kembali.",
            k
        ));
        let f = "Seberapa sering kinerja pemasok dievaluasi?";
        assert!(id(f).held_by("Kinerja pemasok dievaluasi setiap enam bulan.", f));
    }

    #[test]
    fn somebody_is_a_role_a_body_or_a_name() {
        let q = "Who built the Langley 11-inch hypersonic tunnel?";
        assert!(!en(q).held_by(
            "Tests have been made in the langley 11-inch hypersonic tunnel at a mach number of 6.",
            q
        ));
        assert!(en(q).held_by("The tunnel was built by the NACA laboratory.", q));
        assert!(en(q).held_by("The tunnel was designed by Ferri in 1947.", q));
        assert!(en(q).held_by("The method of scruton, woodgate et al was used.", q));
        assert!(en(q).held_by("The problem has been solved by haag.", q));
        let w = "Whose method of measuring skin friction was extended?";
        assert!(en(w).held_by(
            "preston's method for measuring skin friction was extended.",
            w
        ));
        assert!(!en(w).held_by("The method for measuring skin friction was extended.", w));
        assert!(en(q).held_by("It was o. reynolds who first expressed the stresses.", q));
        assert!(!en(q).held_by("The flow was found by means of e.g. a probe.", q));
        assert!(!en(q).held_by("It was found by varying the pressure.", q));
        let s = "Siapa yang menyetujui pembelian di atas Rp10.000.000?";
        assert!(id(s).held_by(
            "Pembelian di atas Rp10.000.000 disetujui oleh direktur keuangan.",
            s
        ));
        assert!(!id(s).held_by(
            "Pembelian di atas Rp10.000.000 memerlukan tiga penawaran.",
            s
        ));
    }

    #[test]
    fn what_cannot_be_classified_passes() {
        for q in [
            "Which photoelastic model material was described?",
            "Did it stall?",
        ] {
            assert!(en(q).held_by("Nothing of the kind.", q));
        }
        let b = "Berapa penawaran harga yang diperlukan untuk pembelian senilai Rp50.000.000?";
        assert!(id(b).held_by(
            "Pembelian di atas Rp25.000.000 memerlukan tiga penawaran harga.",
            b
        ));
        assert!(!id(b).held_by("Penawaran harga dikirim ke bagian pengadaan.", b));
    }
}
