//! The features that call a model, and what each answers when no model can
//! (OPS-15): every provider failure ends in the feature's deterministic
//! fallback — the same input gives the same answer, no model involved, no
//! error to the caller. The catalogue of features (cache time, limits,
//! re-insertion of PII) is data (`llm_features`); this file holds only what
//! code must decide: the fallbacks.

use serde_json::Value;

use super::provider::{Message, Role};

/// The features the product knows (rows of `llm_features`).
pub const CHAT: &str = "chat";
pub const DIGEST: &str = "digest";
pub const PRECHECK_NOTES: &str = "precheck_notes";
pub const RAG_ANSWER: &str = "rag_answer";
pub const SEGMENT_CONTENT: &str = "segment_content";
/// Every one of them.
pub const ALL: [&str; 5] = [CHAT, DIGEST, PRECHECK_NOTES, RAG_ANSWER, SEGMENT_CONTENT];

/// What the chat assistant says when no model answers.
pub const CHAT_UNAVAILABLE: &str = "The AI assistant is unavailable right now, so this \
    answer was not written by a model. Please try again in a few minutes; everything \
    else in bizos works as usual.";

/// The answer of the deterministic fallback.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallback {
    pub text: String,
    pub json: Option<Value>,
}

/// The caller's own words: the last user message (masked, as the model
/// would have seen it).
fn last_user(messages: &[Message]) -> &str {
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map_or("", |m| m.content.as_str())
}

/// The first `n` non-empty lines of `text`, each at most 200 characters.
fn first_lines(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(n)
        .map(|l| {
            let mut line: String = l.chars().take(200).collect();
            if l.chars().count() > 200 {
                line.push('…');
            }
            line
        })
        .collect()
}

/// The fallback of `feature` for a request with these (masked) messages.
/// An unknown feature gets a plain "unavailable" text.
pub fn fallback(feature: &str, messages: &[Message]) -> Fallback {
    let text = match feature {
        CHAT => CHAT_UNAVAILABLE.to_owned(),
        // A digest without a model: the first items of its input as they are.
        DIGEST => {
            let lines = first_lines(last_user(messages), 10);
            if lines.is_empty() {
                "No AI summary is available right now.".to_owned()
            } else {
                let mut out =
                    String::from("No AI summary is available right now; the first items:\n");
                for l in lines {
                    out.push_str("- ");
                    out.push_str(&l);
                    out.push('\n');
                }
                out
            }
        }
        PRECHECK_NOTES => "No automatic pre-check notes: the AI is unavailable right now. \
                           Check the request by hand."
            .to_owned(),
        RAG_ANSWER => "No AI answer is available right now; the matching documents are \
                       listed with the question."
            .to_owned(),
        SEGMENT_CONTENT => "AI-written content is unavailable right now; use the segment's \
                            saved template."
            .to_owned(),
        _ => "The AI feature is unavailable right now; please try again later.".to_owned(),
    };
    Fallback { text, json: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Vec<Message> {
        vec![
            Message {
                role: Role::System,
                content: "system".into(),
            },
            Message {
                role: Role::User,
                content: text.into(),
            },
        ]
    }

    #[test]
    fn every_feature_has_a_deterministic_fallback() {
        for f in [
            CHAT,
            DIGEST,
            PRECHECK_NOTES,
            RAG_ANSWER,
            SEGMENT_CONTENT,
            "new_feature",
        ] {
            let a = fallback(f, &user("line one\nline two"));
            assert_eq!(a, fallback(f, &user("line one\nline two")), "{f}");
            assert!(!a.text.is_empty(), "{f}");
        }
        assert!(fallback(CHAT, &user("hi")).text.contains("unavailable"));
    }

    #[test]
    fn the_digest_fallback_lists_its_input() {
        let text = fallback(DIGEST, &user("\n a \n\nb\n")).text;
        assert!(text.ends_with("- a\n- b\n"), "{text}");
        let long = "x".repeat(300);
        let text = fallback(DIGEST, &user(&long)).text;
        assert!(text.contains(&format!("{}…", "x".repeat(200))), "{text}");
        assert!(fallback(DIGEST, &user(""))
            .text
            .starts_with("No AI summary"));
    }
}
