//! The LLM gateway (issue 15; AI-4, AI-5, AI-6, OPS-15). Nothing in bizos
//! calls a language model except through this module.

pub mod provider;
pub mod schema;
