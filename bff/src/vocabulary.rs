//! The vocabularies of the database (migration V20: one lookup table per
//! closed set of terms, all of them in the `vocabulary` view), loaded once at
//! startup. Request fields that take a term ([`crate::payload`]'s closed
//! sets) are checked against it, and the OpenAPI document lists its terms as
//! the enums of those fields: the database is the one definition.
//!
//! Serde deserializers get no state, so the extractors ([`crate::extract`])
//! make the loaded vocabulary *current* on their thread for the duration of
//! one synchronous parse ([`Vocabulary::scope`]); the closed-set types read
//! it there. Parsing never awaits, so the scope cannot leak into another
//! request's parse, and several servers with different databases can live
//! in one process (as the tests run them). A parse outside any scope refuses
//! every term rather than accept one unchecked.
//!
//! `Vocabulary::load` is in [`crate::payload`], beside the closed sets it
//! checks the database against: this module is below the payloads and the
//! database access.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use utoipa::openapi::OpenApi as Document;

/// Every term of every vocabulary, in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// vocabulary (the lookup table's name) → (term, position), by position.
    sets: BTreeMap<String, Vec<(String, i32)>>,
}

impl Vocabulary {
    /// A vocabulary from `(vocabulary, term, position)` rows.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, i32)>) -> Self {
        let mut sets: BTreeMap<String, Vec<(String, i32)>> = BTreeMap::new();
        for (vocabulary, term, position) in rows {
            sets.entry(vocabulary).or_default().push((term, position));
        }
        for terms in sets.values_mut() {
            terms.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        }
        Vocabulary { sets }
    }

    /// The terms of one vocabulary in list order (empty when unknown).
    pub fn terms(&self, vocabulary: &str) -> Vec<&str> {
        self.sets
            .get(vocabulary)
            .map(|t| t.iter().map(|(term, _)| term.as_str()).collect())
            .unwrap_or_default()
    }

    /// The terms of several vocabularies, each once, by position (the two
    /// ticket status vocabularies share one scale of positions).
    pub fn union(&self, vocabularies: &[&str]) -> Vec<&str> {
        let mut all: Vec<(i32, &str)> = Vec::new();
        for name in vocabularies {
            for (term, position) in self.sets.get(*name).into_iter().flatten() {
                match all.iter_mut().find(|(_, t)| *t == term) {
                    Some(seen) => seen.0 = seen.0.min(*position),
                    None => all.push((*position, term)),
                }
            }
        }
        all.sort();
        all.into_iter().map(|(_, t)| t).collect()
    }

    /// Runs `f` (a synchronous parse) with this vocabulary current on the
    /// thread; the previous one is restored afterwards, also on panic.
    pub fn scope<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Vocabulary>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| *c.borrow_mut() = self.0.take());
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(self))));
        f()
    }

    /// The vocabulary of the innermost [`Vocabulary::scope`], if any.
    pub fn current() -> Option<Arc<Vocabulary>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Fills the enums of the document's closed sets: every schema marked
    /// `x-vocabulary` (see [`crate::payload`]) gets the terms as `enum`.
    pub fn fill_document(&self, doc: Document) -> Document {
        let mut value = serde_json::to_value(&doc).expect("the document serializes");
        self.fill(&mut value);
        serde_json::from_value(value).expect("the filled document deserializes")
    }

    fn fill(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(names)) = map.get(VOCABULARY_KEY) {
                    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
                    let terms: Vec<Value> = self
                        .union(&names)
                        .into_iter()
                        .map(|t| Value::String(t.to_owned()))
                        .collect();
                    map.insert("enum".into(), Value::Array(terms));
                }
                map.values_mut().for_each(|v| self.fill(v));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.fill(v)),
            _ => {}
        }
    }
}

/// The schema extension that names the lookup tables of a closed set.
pub const VOCABULARY_KEY: &str = "x-vocabulary";

thread_local! {
    static CURRENT: RefCell<Option<Arc<Vocabulary>>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Arc<Vocabulary> {
        Arc::new(Vocabulary::from_rows([
            ("ticket_statuses".into(), "RESOLVED".into(), 7),
            ("ticket_statuses".into(), "OPEN".into(), 1),
            ("inquiry_statuses".into(), "OPEN".into(), 1),
            ("inquiry_statuses".into(), "QUOTED".into(), 4),
        ]))
    }

    #[test]
    fn unions_keep_each_term_once_in_position_order() {
        let v = sample();
        assert_eq!(v.terms("ticket_statuses"), ["OPEN", "RESOLVED"]);
        assert_eq!(
            v.union(&["ticket_statuses", "inquiry_statuses"]),
            ["OPEN", "QUOTED", "RESOLVED"]
        );
        assert!(v.terms("nope").is_empty());
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert!(Vocabulary::current().is_none());
        let v = sample();
        let w = Arc::new(Vocabulary::default());
        v.scope(|| {
            assert_eq!(Vocabulary::current().as_deref(), Some(&*v));
            w.scope(|| assert_eq!(Vocabulary::current().as_deref(), Some(&*w)));
            assert_eq!(Vocabulary::current().as_deref(), Some(&*v));
        });
        assert!(Vocabulary::current().is_none());
    }
}
