//! The internal knowledge base (issue 16, AI-3): documents of a tenant,
//! their text, chunks and search.

pub mod answer;
pub mod embed;
pub mod extract;
pub mod ingest;
