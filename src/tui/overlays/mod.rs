//! The overlays, each a [`modal::Modal`] component that owns its state: help, the rules,
//! an opened run, the choices (scope, quit), and the text inputs; the topmost takes the keys.

pub(crate) mod choices;
pub(crate) mod help;
pub(crate) mod input;
pub(crate) mod modal;
pub(crate) mod popup;
pub(crate) mod rules;
pub(crate) mod run_view;
