//! The session engine. No terminal, HTTP or Docker types live here: it works on plain data
//! and talks to the outside through the `protocol` types and the adapter traits.

pub mod approver;
pub mod extract;
pub mod feedback;
mod inbox;
pub mod language;
pub mod policy;
pub mod prompt;
pub mod session;
pub mod turn;
mod unoffered;

pub use extract::{ExtractedBlock, extract_blocks};
pub use language::{Language, LanguageTable};
pub use session::{Ended, Events, Journal, Session, Settings};
