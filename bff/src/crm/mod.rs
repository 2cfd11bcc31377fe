//! Customer relationship work outside requests.

pub mod lookalikes;
