//! Answers from the knowledge base (AI-3): what the model is asked, what of
//! its answer is kept, and the answer without a model.
//!
//! - Before any model is asked, the sentences of the retrieved chunks are
//!   scored against the question ([`super::grounding`]); with no sentence
//!   that supports an answer, the answer is "not in the documents" and no
//!   model is asked.
//! - The sources ([`sources`]) are the retrieved chunks close enough to the
//!   question by their vectors ([`MAX_DISTANCE`]) or holding a supporting
//!   sentence, in the order of retrieval.
//! - The model gets the sources numbered `[1]`..`[n]` and must answer in
//!   JSON: sentences, each with the numbers of the sources it rests on, or
//!   `not_in_documents`. A sentence without a source, or citing a number
//!   that is not one of the sources, is dropped ([`checked`]); an answer
//!   left with no sentence is replaced by the extractive one.
//! - Without a model (the gateway's fallback, or nothing usable from the
//!   model) the answer is extractive ([`extractive`]): the best supporting
//!   sentences, each citing its source.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::grounding::Supported;
use crate::llm::{Message, Role};

/// A chunk whose cosine distance to the question is at most this is about
/// it, and a source for the model (all-MiniLM-L6-v2: unrelated texts score
/// a cosine of about 0–0.2, a passage that answers a question 0.4 and
/// more). Whether the documents answer at all is decided by their
/// sentences ([`super::grounding`]).
pub const MAX_DISTANCE: f64 = 0.72;
/// Sentences of an extractive answer.
const EXTRACTIVE_SENTENCES: usize = 3;
/// Characters of a source given to the model.
const SOURCE_CHARS: usize = 2400;

/// What the answer says when the documents do not answer the question.
pub const NOT_IN_DOCUMENTS: &str = "The documents you can read do not answer this question.";

/// A retrieved chunk (a row of `kb_search`).
#[derive(Debug, Clone, Deserialize)]
pub struct Hit {
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    pub heading_path: String,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
    pub text: String,
    pub vector_distance: Option<f64>,
    pub lexical_rank: Option<i32>,
}

/// A source of an answer, as cited: `n` is the number the sentences use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Citation {
    pub n: usize,
    pub chunk_id: Uuid,
    pub document_id: Uuid,
    pub title: String,
    /// The section: headings from the outermost, joined with " > ".
    pub heading_path: String,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
}

/// One sentence of an answer and the sources it rests on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Sentence {
    pub text: String,
    /// Numbers of `citations`.
    pub cites: Vec<usize>,
}

/// Is the chunk close to the question by its vector?
pub fn close(hit: &Hit) -> bool {
    hit.vector_distance.is_some_and(|d| d <= MAX_DISTANCE)
}

/// The sources of an answer, in the order of retrieval: the hits close to
/// the question and those holding a supporting sentence. `support`'s
/// `hit` indexes become indexes of the sources.
pub fn sources(hits: Vec<Hit>, support: &mut [Supported]) -> Vec<Hit> {
    let mut number = vec![None; hits.len()];
    let mut out = Vec::new();
    for (i, h) in hits.into_iter().enumerate() {
        if close(&h) || support.iter().any(|s| s.hit == i) {
            number[i] = Some(out.len());
            out.push(h);
        }
    }
    for s in support.iter_mut() {
        if let Some(Some(n)) = number.get(s.hit) {
            s.hit = *n;
        }
    }
    out
}

pub fn citations(sources: &[Hit]) -> Vec<Citation> {
    sources
        .iter()
        .enumerate()
        .map(|(i, h)| Citation {
            n: i + 1,
            chunk_id: h.chunk_id,
            document_id: h.document_id,
            title: h.title.clone(),
            heading_path: h.heading_path.clone(),
            page_start: h.page_start,
            page_end: h.page_end,
        })
        .collect()
}

const SYSTEM: &str = "You answer questions of employees from their company's own documents. \
    Use only the numbered sources given with the question, never other knowledge. Answer in the \
    language of the question, in a few short sentences. Every sentence must give the numbers of \
    the sources it rests on in `sources`. If the sources do not answer the question, set \
    `not_in_documents` to true and give no sentences. Values in square brackets such as \
    [PHONE_n] stand for personal data hidden from you; keep them exactly as written.";

/// The conversation the model gets.
pub fn prompt(question: &str, sources: &[Hit]) -> Vec<Message> {
    let mut user = String::from("Sources:\n");
    for (i, h) in sources.iter().enumerate() {
        let text: String = h.text.chars().take(SOURCE_CHARS).collect();
        let place = place(&h.title, &h.heading_path, h.page_start, h.page_end);
        user.push_str(&format!("[{}] ({place})\n{text}\n\n", i + 1));
    }
    user.push_str("Question: ");
    user.push_str(question);
    vec![
        Message {
            role: Role::System,
            content: SYSTEM.to_owned(),
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

/// "Title, section, p. 3-4" as a reader would cite it.
fn place(title: &str, heading_path: &str, from: Option<i32>, to: Option<i32>) -> String {
    let mut out = title.to_owned();
    if !heading_path.is_empty() {
        out.push_str(", ");
        out.push_str(heading_path);
    }
    match (from, to) {
        (Some(a), Some(b)) if a != b => out.push_str(&format!(", p. {a}-{b}")),
        (Some(a), _) => out.push_str(&format!(", p. {a}")),
        _ => {}
    }
    out
}

/// The JSON schema of the model's answer.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["not_in_documents", "sentences"],
        "properties": {
            "not_in_documents": {"type": "boolean"},
            "sentences": {
                "type": "array",
                "maxItems": 12,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["text", "sources"],
                    "properties": {
                        "text": {"type": "string", "minLength": 1, "maxLength": 2000},
                        "sources": {"type": "array", "items": {"type": "integer"}}
                    }
                }
            }
        }
    })
}

/// What the model answered, kept only as far as it rests on the sources.
#[derive(Debug, PartialEq)]
pub enum Checked {
    NotInDocuments,
    Sentences {
        kept: Vec<Sentence>,
        /// Sentences dropped for citing nothing or what was not retrieved.
        rejected: usize,
    },
}

/// The model's JSON against `n` sources: `None` when it is not an answer
/// at all.
pub fn checked(answer: &Value, n: usize) -> Option<Checked> {
    if answer.get("not_in_documents").and_then(Value::as_bool) == Some(true) {
        return Some(Checked::NotInDocuments);
    }
    let sentences = answer.get("sentences")?.as_array()?;
    let mut kept = Vec::new();
    let mut rejected = 0;
    for s in sentences {
        let text = s
            .get("text")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        let cites: Option<Vec<usize>> = s.get("sources").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|c| {
                    c.as_u64()
                        .map(|c| c as usize)
                        .filter(|c| (1..=n).contains(c))
                })
                .collect::<Option<Vec<usize>>>()
                .unwrap_or_default()
        });
        match cites {
            Some(mut cites) if !cites.is_empty() && !text.is_empty() => {
                cites.sort_unstable();
                cites.dedup();
                kept.push(Sentence {
                    text: text.to_owned(),
                    cites,
                });
            }
            _ => rejected += 1,
        }
    }
    Some(Checked::Sentences { kept, rejected })
}

/// The answer without a model: the best [`EXTRACTIVE_SENTENCES`] of the
/// supporting sentences (`support`, best first, `hit` numbering the
/// sources), in the order of the sources and of their text, each citing
/// its source.
pub fn extractive(support: &[Supported]) -> Vec<Sentence> {
    let mut best: Vec<&Supported> = support.iter().take(EXTRACTIVE_SENTENCES).collect();
    best.sort_by_key(|s| (s.hit, s.position));
    best.into_iter()
        .map(|s| Sentence {
            text: s.text.clone(),
            cites: vec![s.hit + 1],
        })
        .collect()
}

/// The sentences as one text, each followed by its citation marks.
pub fn text_of(sentences: &[Sentence]) -> String {
    sentences
        .iter()
        .map(|s| {
            let marks: String = s.cites.iter().map(|c| format!("[{c}]")).collect();
            format!("{} {marks}", s.text)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str, distance: f64) -> Hit {
        Hit {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            title: "SOP Refund".into(),
            heading_path: "Approvals".into(),
            page_start: Some(2),
            page_end: Some(3),
            text: text.into(),
            vector_distance: Some(distance),
            lexical_rank: None,
        }
    }

    fn support(hit: usize, position: usize, text: &str, fused: f64) -> Supported {
        Supported {
            hit,
            position,
            text: text.into(),
            lexical: fused,
            cosine: None,
            fused,
        }
    }

    #[test]
    fn sources_are_the_close_chunks_and_those_holding_support() {
        let mut sup = vec![support(1, 0, "b", 0.9), support(3, 2, "d", 0.8)];
        let kept = sources(
            vec![
                hit("a", 0.3),
                hit("b", 0.9),
                hit("c", 0.95),
                hit("d", 0.8),
                hit("e", MAX_DISTANCE),
            ],
            &mut sup,
        );
        assert_eq!(
            kept.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(),
            ["a", "b", "d", "e"]
        );
        assert_eq!(
            sup.iter().map(|s| s.hit).collect::<Vec<_>>(),
            [1, 2],
            "renumbered as sources"
        );
    }

    #[test]
    fn sentences_citing_what_was_not_retrieved_are_rejected() {
        let answer = json!({"not_in_documents": false, "sentences": [
            {"text": "Refunds need the finance manager.", "sources": [1]},
            {"text": "Made up.", "sources": [3]},
            {"text": "Uncited.", "sources": []},
            {"text": "Mixed.", "sources": [2, 7]},
            {"text": "Both.", "sources": [2, 1, 2]}
        ]});
        let Some(Checked::Sentences { kept, rejected }) = checked(&answer, 2) else {
            panic!("an answer")
        };
        assert_eq!(rejected, 3);
        assert_eq!(
            kept,
            vec![
                Sentence {
                    text: "Refunds need the finance manager.".into(),
                    cites: vec![1]
                },
                Sentence {
                    text: "Both.".into(),
                    cites: vec![1, 2]
                },
            ]
        );
        assert_eq!(
            checked(&json!({"not_in_documents": true, "sentences": []}), 2),
            Some(Checked::NotInDocuments)
        );
        assert_eq!(checked(&json!("text"), 2), None);
    }

    #[test]
    fn the_extractive_answer_quotes_the_best_support_in_source_order() {
        let sup = [
            support(1, 4, "Refund requests older than 30 days are refused.", 0.9),
            support(0, 1, "Refunds are approved by the finance manager.", 0.8),
            support(0, 0, "Refunds are handled by finance.", 0.7),
            support(2, 0, "Refunds are a subject.", 0.6),
        ];
        let got = extractive(&sup);
        assert_eq!(
            got,
            vec![
                Sentence {
                    text: "Refunds are handled by finance.".into(),
                    cites: vec![1]
                },
                Sentence {
                    text: "Refunds are approved by the finance manager.".into(),
                    cites: vec![1]
                },
                Sentence {
                    text: "Refund requests older than 30 days are refused.".into(),
                    cites: vec![2]
                },
            ]
        );
        assert!(text_of(&got).contains("finance manager. [1]"));
        assert!(extractive(&[]).is_empty());
    }

    #[test]
    fn the_prompt_numbers_the_sources_with_their_place() {
        let p = prompt("Siapa yang menyetujui refund?", &[hit("Refunds ...", 0.2)]);
        assert_eq!(p.len(), 2);
        assert!(
            p[1].content.contains("[1] (SOP Refund, Approvals, p. 2-3)"),
            "{}",
            p[1].content
        );
        assert!(p[1]
            .content
            .ends_with("Question: Siapa yang menyetujui refund?"));
    }
}
