//! Text and pictures as the panes draw them: markdown, syntax highlighting, wrapping, a
//! program's colours (SGR), pictures in half blocks or the terminal's graphics, SVG.

pub mod highlight;
pub(crate) mod markdown;
pub(crate) mod picture;
pub(crate) mod sgr;
pub(crate) mod svg;
pub(crate) mod svg_copies;
pub(crate) mod text;
