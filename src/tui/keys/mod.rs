//! Keys as data: every action, the bindings of each context with their descriptions, the
//! defaults, and the user's own from the configuration.

pub(crate) mod keymap;
