//! One module per resource; each exposes `router()`.

pub mod health;
pub mod me;
