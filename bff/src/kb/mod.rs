//! The internal knowledge base (AI-3): documents of a tenant,
//! their text, chunks and search.

pub mod answer;
pub mod answer_type;
pub mod embed;
pub mod extract;
pub mod grounding;
pub mod ingest;
