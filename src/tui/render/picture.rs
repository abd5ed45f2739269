//! Pictures from the workspace drawn in the terminal. A block can leave any bytes behind a
//! `.png`, so decoding is bounded three ways: the file is read only up to
//! [`MAX_PICTURE_BYTES`], its header's size is checked against [`MAX_PIXELS`] and
//! [`MAX_SIDE`] before anything is decoded (a decompression bomb says it is huge and is
//! refused with that), and the decoder's allocations are capped. Scaling and encoding for the
//! terminal happen with the decoding, off the event loop; a frame only copies cells.

use std::io::{Cursor, IsTerminal};
use std::time::Duration;

use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use ratatui_image::picker::cap_parser::QueryStdioOptions;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::{Image, Resize};

use crate::tui::render::svg::Undrawn;

/// A picture file is read up to this; a larger one is refused unread.
pub(crate) const MAX_PICTURE_BYTES: usize = 32 << 20;
/// Pixels a picture may have (40 megapixels: a 4000×4000 photo is 16).
pub(crate) const MAX_PIXELS: u64 = 40_000_000;
/// Pixels a side may have.
pub(crate) const MAX_SIDE: u32 = 16_384;
/// What the decoder may allocate at once: the RGBA of [`MAX_PIXELS`] and some room.
const MAX_DECODER_BYTES: u64 = 4 * MAX_PIXELS + (16 << 20);
/// How long the terminal has to answer which graphics it speaks.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

/// How pictures reach the terminal.
#[derive(Clone, Debug)]
pub(crate) enum Graphics {
    /// Coloured half blocks (`▀`): two pixels a cell, in any terminal, tmux included.
    HalfBlocks,
    /// The terminal's own protocol (kitty, sixel, iTerm2) as it answered the query, with its
    /// cell size in pixels.
    Terminal(Picker),
}

impl Graphics {
    /// Asks the terminal once, at start-up (raw mode on, before keys are read). Inside tmux
    /// or screen nothing is asked: half blocks work there, and the query would change the
    /// multiplexer's settings.
    pub(crate) fn detect() -> Self {
        if inside_multiplexer() || !std::io::stdout().is_terminal() {
            return Self::HalfBlocks;
        }
        let options = QueryStdioOptions {
            timeout: QUERY_TIMEOUT,
            ..QueryStdioOptions::default()
        };
        match Picker::from_query_stdio_with_options(options) {
            Ok(picker) if picker.protocol_type() != ProtocolType::Halfblocks => {
                Self::Terminal(picker)
            }
            _ => Self::HalfBlocks,
        }
    }

    /// `half blocks`, `kitty`, `sixel`, `iTerm2`: for the preview's title.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::HalfBlocks => "half blocks",
            Self::Terminal(picker) => match picker.protocol_type() {
                ProtocolType::Halfblocks => "half blocks",
                ProtocolType::Sixel => "sixel",
                ProtocolType::Kitty => "kitty",
                ProtocolType::Iterm2 => "iTerm2",
            },
        }
    }

    /// Pixels per cell: a half block is one wide and two high.
    pub(crate) fn cell_pixels(&self) -> (u32, u32) {
        match self {
            Self::HalfBlocks => (1, 2),
            Self::Terminal(picker) => {
                let font = picker.font_size();
                (u32::from(font.width.max(1)), u32::from(font.height.max(1)))
            }
        }
    }
}

/// tmux and screen pass no graphics by default; TMUX is set inside tmux, whatever TERM says.
fn inside_multiplexer() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    let term = std::env::var("TERM").unwrap_or_default();
    set("TMUX")
        || set("STY")
        || term.starts_with("tmux")
        || term.starts_with("screen")
        || std::env::var("TERM_PROGRAM").is_ok_and(|program| program == "tmux")
}

/// A picture scaled and encoded for the terminal, ready to draw.
pub(crate) struct Picture {
    protocol: Protocol,
    /// Cells it covers.
    pub(crate) cells: Size,
    /// Its own size in pixels, and its format.
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: &'static str,
    /// The room it was scaled for: another room means scaling again.
    pub(crate) room: Size,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}×{} in {}×{} cells",
            self.format, self.width, self.height, self.cells.width, self.cells.height
        )
    }
}

impl Picture {
    /// Decodes `bytes` (all of the file, up to [`MAX_PICTURE_BYTES`]) and scales it into
    /// `room` cells; an error says in words why it is not drawn.
    pub(crate) fn load(bytes: &[u8], graphics: &Graphics, room: Size) -> Result<Self, String> {
        let (image, format) = decode(bytes)?;
        let (protocol, cells) = fit(&image, graphics, room)?;
        Ok(Self {
            protocol,
            cells,
            width: image.width(),
            height: image.height(),
            format,
            room,
        })
    }

    /// Draws an SVG (`crate::tui::render::svg` says what is refused) into `room` cells.
    pub(crate) fn load_svg(text: &str, graphics: &Graphics, room: Size) -> Result<Self, Undrawn> {
        let image = crate::tui::render::svg::render(text, graphics.cell_pixels(), room)?;
        let (protocol, cells) =
            fit(&DynamicImage::ImageRgb8(image.drawn), graphics, room).map_err(Undrawn::Broken)?;
        Ok(Self {
            protocol,
            cells,
            width: image.width,
            height: image.height,
            format: "SVG",
            room,
        })
    }

    /// Draws it in the middle of `area` (a frame copies cells; nothing is scaled here).
    pub(crate) fn render(&self, frame: &mut Frame, area: Rect) {
        let width = self.cells.width.min(area.width);
        let height = self.cells.height.min(area.height);
        let at = Rect {
            x: area.x + (area.width - width) / 2,
            y: area.y + (area.height - height) / 2,
            width,
            height,
        };
        frame.render_widget(Image::new(&self.protocol), at);
    }
}

/// The format's name, for the formats previews draw.
fn format_name(format: ImageFormat) -> Option<&'static str> {
    match format {
        ImageFormat::Png => Some("PNG"),
        ImageFormat::Jpeg => Some("JPEG"),
        ImageFormat::Gif => Some("GIF"),
        _ => None,
    }
}

/// The picture in `bytes` (its first frame), once its header has been checked.
pub(crate) fn decode(bytes: &[u8]) -> Result<(DynamicImage, &'static str), String> {
    let guessed = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|err| format!("cannot read the picture: {err}"))?;
    let Some((format, name)) = guessed
        .format()
        .and_then(|format| Some((format, format_name(format)?)))
    else {
        return Err("not a PNG, JPEG or GIF picture".into());
    };
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.limits(limits(None));
    let (width, height) = header
        .into_dimensions()
        .map_err(|err| format!("cannot read the {name}'s header: {err}"))?;
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(format!(
            "the {name} says it is {width}×{height} pixels ({} megapixels); pictures are \
             decoded up to {} megapixels and {MAX_SIDE} pixels a side, so it is not",
            pixels / 1_000_000,
            MAX_PIXELS / 1_000_000
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(Some(MAX_SIDE)));
    let image = reader
        .decode()
        .map_err(|err| format!("cannot decode the {name}: {err}"))?;
    Ok((image, name))
}

fn limits(side: Option<u32>) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = side;
    limits.max_image_height = side;
    limits.max_alloc = Some(MAX_DECODER_BYTES);
    limits
}

/// Scales `image` to fill `room` cells (keeping its shape) and encodes it for the terminal.
fn fit(image: &DynamicImage, graphics: &Graphics, room: Size) -> Result<(Protocol, Size), String> {
    let (cell_width, cell_height) = graphics.cell_pixels();
    let room_width = u32::from(room.width.max(1)) * cell_width;
    let room_height = u32::from(room.height.max(1)) * cell_height;
    let (width, height) = (image.width().max(1), image.height().max(1));
    // The larger of the two ratios that still fits, as a fraction, in integers.
    let (width, height) =
        if u64::from(room_width) * u64::from(height) <= u64::from(room_height) * u64::from(width) {
            (room_width, scale(height, room_width, width))
        } else {
            (scale(width, room_height, height), room_height)
        };
    let scaled = if width < image.width() {
        // Much smaller: sampling in boxes is fast and good enough for a preview.
        image.thumbnail_exact(width, height)
    } else {
        // Larger: pixel art stays sharp.
        image.resize_exact(width, height, FilterType::Nearest)
    };
    let cells = Size::new(
        width.div_ceil(cell_width).min(u32::from(room.width)) as u16,
        height.div_ceil(cell_height).min(u32::from(room.height)) as u16,
    );
    let protocol = match graphics {
        Graphics::HalfBlocks => Halfblocks::new(scaled, cells).map(Protocol::Halfblocks),
        Graphics::Terminal(picker) => picker.new_protocol(scaled, cells, Resize::Fit(None)),
    }
    .map_err(|err| format!("cannot draw the picture: {err}"))?;
    Ok((protocol, cells))
}

/// `value × numerator / denominator`, at least 1.
fn scale(value: u32, numerator: u32, denominator: u32) -> u32 {
    let scaled = u64::from(value) * u64::from(numerator) / u64::from(denominator.max(1));
    scaled.clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small picture: a red square on a blue one, as PNG bytes.
    pub(crate) fn squares_png(side: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(side, side, |x, y| {
            let inner =
                (side / 4..side * 3 / 4).contains(&x) && (side / 4..side * 3 / 4).contains(&y);
            if inner {
                image::Rgb([220, 30, 30])
            } else {
                image::Rgb([20, 40, 200])
            }
        });
        let mut bytes = Cursor::new(Vec::new());
        image
            .write_to(&mut bytes, ImageFormat::Png)
            .expect("encodes");
        bytes.into_inner()
    }

    /// A real PNG whose header says it is `width`×`height`: a few hundred bytes that would
    /// decode to gigabytes.
    pub(crate) fn bomb_png(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::new();
        header.extend(width.to_be_bytes());
        header.extend(height.to_be_bytes());
        header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace.
        chunk(&mut png, b"IHDR", &header);
        // A zlib stream of zeros: rows of black that compress a thousand to one.
        let zeros = [
            0x78, 0x9c, 0xed, 0xc1, 0x01, 0x0d, 0x00, 0x00, 0x00, 0xc2, 0xa0,
        ];
        chunk(&mut png, b"IDAT", &zeros);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend((data.len() as u32).to_be_bytes());
        let mut checked = kind.to_vec();
        checked.extend(data);
        png.extend(&checked);
        png.extend(crc32(&checked).to_be_bytes());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let bomb = bomb_png(100_000, 100_000);
        assert!(bomb.len() < 200, "{} bytes", bomb.len());
        let why =
            Picture::load(&bomb, &Graphics::HalfBlocks, Size::new(40, 20)).expect_err("refused");
        assert!(why.contains("100000×100000 pixels"), "{why}");
        assert!(why.contains("not"), "{why}");
        // Under the pixel limit but over a side's.
        let why = decode(&bomb_png(MAX_SIDE + 1, 10)).expect_err("refused");
        assert!(why.contains("a side"), "{why}");
    }

    #[test]
    fn a_picture_fills_its_room_and_keeps_its_shape() {
        let png = squares_png(64);
        let picture = Picture::load(&png, &Graphics::HalfBlocks, Size::new(40, 10)).expect("loads");
        assert_eq!(
            (picture.width, picture.height, picture.format),
            (64, 64, "PNG")
        );
        // Square: 20 cells of two pixels high, 20 of one wide.
        assert_eq!(picture.cells, Size::new(20, 10));
        let wide = Picture::load(&png, &Graphics::HalfBlocks, Size::new(10, 40)).expect("loads");
        assert_eq!(wide.cells, Size::new(10, 5));
        let junk = Picture::load(
            b"GIF89a but nothing else",
            &Graphics::HalfBlocks,
            Size::new(5, 5),
        );
        assert!(junk.expect_err("refused").contains("GIF"));
        let text = Picture::load(b"hello", &Graphics::HalfBlocks, Size::new(5, 5));
        assert_eq!(text.expect_err("refused"), "not a PNG, JPEG or GIF picture");
    }
}
