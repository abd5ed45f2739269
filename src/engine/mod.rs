//! The session engine. No terminal, HTTP or Docker types live here: it works on plain data
//! and talks to the outside through the `protocol` types and the adapter traits.

pub(crate) mod approver;
pub(crate) mod budget;
mod bus;
mod conversation;
mod decisions;
mod events;
pub(crate) mod extract;
pub(crate) mod feedback;
mod gate;
mod inbox;
pub mod policy;
pub(crate) mod prompt;
pub(crate) mod sandbox;
mod serving;
pub(crate) mod session;
pub(crate) mod turn;
mod unoffered;

pub use crate::config::language::{Language, LanguageTable};
pub(crate) use bus::Overflow;
pub use bus::{Bus, Subscriber};
pub use events::Events;
pub(crate) use events::Journal;
pub use extract::extract_blocks;
pub(crate) use gate::Ended;
pub use session::Session;
pub(crate) use session::Settings;
