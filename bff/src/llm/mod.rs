//! The LLM gateway (AI-4, AI-5, AI-6, OPS-15). Nothing in bizos
//! calls a language model except through [`Gateway`]: it masks every outbound text,
//! meters and limits every call in the database, caches answers per
//! tenant, rotates keys, retries, breaks circuits, falls through the
//! feature's route, and ends in the feature's deterministic fallback when
//! no model answers.
//!
//! - [`provider`]: the providers' wire formats behind one interface;
//!   [`schema`]: validation of structured output;
//! - [`privacy`]: masking with stable placeholders, and re-insertion;
//! - [`crypto`]: envelope encryption of tenant keys;
//! - [`keys`]: the key ring; [`breaker`]: circuit breakers; [`retry`]:
//!   backoff; [`cache_key`]: the cache key; [`features`]: the fallbacks;
//! - [`gateway`]: the orchestration; [`config`]: its settings; [`admin`]:
//!   `bizos llm …`.

pub mod admin;
pub mod breaker;
pub mod cache_key;
pub mod config;
pub mod crypto;
pub mod features;
pub mod gateway;
pub mod keys;
pub mod privacy;
pub mod provider;
pub mod retry;
pub mod rewrap;
pub mod schema;
pub mod tenant_db;

pub use config::{LlmArgs, LlmSettings};
pub use gateway::{
    Answer, Availability, CallContext, Gateway, GatewayError, GatewayRequest, Login, Source,
    Unavailable,
};
pub use provider::{Message, Role};
