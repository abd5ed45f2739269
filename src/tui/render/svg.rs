//! SVG drawings from the workspace, which block code wrote: parsed with no XML entity
//! declared (a few hundred KiB of nested ones, "billion laughs", expand to gigabytes, and an
//! external one names a host file), within a node limit, and refused when its `<use>`
//! elements copy each other into too many (the same attack without entities); a compressed
//! one (`.svgz`) decompressed only up to [`MAX_SVG_BYTES`]; drawn at the size it is shown,
//! reading no file and no font.

use std::io::Read;

use ratatui::layout::Size;
use resvg::usvg::roxmltree;

use crate::files::human_size;

/// An SVG, a compressed one once decompressed, is drawn up to this size.
pub(crate) const MAX_SVG_BYTES: usize = 4 << 20;
/// XML nodes an SVG may have: a drawing of a few MiB has far fewer.
const MAX_NODES: u32 = 1_000_000;

/// Why an SVG is not drawn.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Undrawn {
    /// Refused for what it would do (expand entities, decompress without end): nothing of it
    /// is shown, and the pane's title says why.
    Refused(String),
    /// It cannot be drawn (not well-formed, nothing to draw): its source is shown instead.
    Broken(String),
}

/// An SVG drawn at the size of its room, and the size it says it has.
pub(crate) struct DrawnSvg {
    pub(crate) drawn: image::RgbImage,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// Whether `bytes` begin as a gzip stream does.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Whether a file of this name holding gzip data is a compressed SVG.
pub(crate) fn is_svgz_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [".svgz", ".svg.gz", ".svg"]
        .iter()
        .any(|end| name.ends_with(end))
}

/// The SVG in a gzip stream, decompressed no further than [`MAX_SVG_BYTES`]: a few hundred
/// KiB can hold gigabytes, so what would be more is refused unread.
pub(crate) fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_SVG_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|err| format!("not a readable gzip-compressed SVG: {err}"))?;
    if text.len() > MAX_SVG_BYTES {
        return Err(format!(
            "it decompresses to more than {}, the most an SVG preview reads (a decompression \
             bomb, or too large a drawing)",
            human_size(MAX_SVG_BYTES as u64)
        ));
    }
    Ok(text)
}

/// The XML of `text`, refused when it declares an entity. A DOCTYPE without one is read
/// (old drawing programs write it; no external DTD is ever loaded).
fn parse(text: &str) -> Result<roxmltree::Document<'_>, Undrawn> {
    if text.contains("<!ENTITY") {
        return Err(Undrawn::Refused(
            "it declares XML entities (<!ENTITY>), which can expand to gigabytes (\"billion \
             laughs\") or name files on the host; an SVG with entities is not drawn"
                .into(),
        ));
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let document =
        roxmltree::Document::parse_with_options(text, options).map_err(|err| match err {
            roxmltree::Error::NodesLimitReached => Undrawn::Refused(format!(
                "it has more than {MAX_NODES} XML nodes, more than a preview draws"
            )),
            other => Undrawn::Broken(format!("cannot draw the SVG: {other}")),
        })?;
    crate::tui::render::svg_copies::check(&document).map_err(Undrawn::Refused)?;
    Ok(document)
}

/// Draws `text` into `room` cells of `cell_pixels` (width, height) each, over white (most
/// drawings assume a page). Every `href` to a file or embedded picture is refused, and text
/// is left out (no fonts are read).
pub(crate) fn render(text: &str, cell_pixels: (u32, u32), room: Size) -> Result<DrawnSvg, Undrawn> {
    let document = parse(text)?;
    let options = resvg::usvg::Options {
        resources_dir: None,
        image_href_resolver: resvg::usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..resvg::usvg::Options::default()
    };
    let tree = resvg::usvg::Tree::from_xmltree(&document, &options)
        .map_err(|err| Undrawn::Broken(format!("cannot draw the SVG: {err}")))?;
    drop(document);
    let size = tree.size();
    let (cell_width, cell_height) = cell_pixels;
    let room_width = (u32::from(room.width.max(1)) * cell_width) as f32;
    let room_height = (u32::from(room.height.max(1)) * cell_height) as f32;
    let scale = (room_width / size.width()).min(room_height / size.height());
    let width = (size.width() * scale).round().clamp(1.0, room_width) as u32;
    let height = (size.height() * scale).round().clamp(1.0, room_height) as u32;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| Undrawn::Broken(format!("cannot draw the SVG at {width}×{height}")))?;
    let transform = resvg::tiny_skia::Transform::from_scale(scale, scale);
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    // Premultiplied RGBA over white: each channel plus what the alpha leaves of white.
    let drawn = image::RgbImage::from_fn(width, height, |x, y| {
        let at = ((y * width + x) * 4) as usize;
        let pixel = &pixmap.data()[at..at + 4];
        let white = 255 - pixel[3];
        image::Rgb([pixel[0] + white, pixel[1] + white, pixel[2] + white])
    });
    Ok(DrawnSvg {
        drawn,
        width: size.width().round() as u32,
        height: size.height().round() as u32,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A half block's pixels: one wide, two high.
    const HALF_BLOCK: (u32, u32) = (1, 2);
    use crate::tui::render::picture::tests::squares_png;

    /// Entities that expand to about 25 GB from some 300 KiB: one of a kilobyte, one of 250
    /// of those (as many as a parser lets one reference resolve), and a hundred thousand
    /// references to that.
    pub(crate) fn billion_laughs() -> String {
        let laugh = "ha".repeat(500);
        let many = "&a;".repeat(250);
        let body = "&b;".repeat(100_000);
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n  <!ENTITY a \"{laugh}\">\n  \
             <!ENTITY b \"{many}\">\n]>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             width=\"10\" height=\"10\"><desc>{body}</desc></svg>\n"
        )
    }

    /// An SVG whose entity names a host file.
    pub(crate) fn external_entity(path: &std::path::Path) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [ <!ENTITY secret SYSTEM \"file://{}\"> ]>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">\
             <desc>&secret;</desc></svg>\n",
            path.display()
        )
    }

    /// A gzip stream of 128 MiB (an SVG's start, then spaces) in a few hundred KiB.
    pub(crate) fn gzip_bomb() -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder
            .write_all(b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\">")
            .expect("compresses");
        let spaces = vec![b' '; 1 << 20];
        for _ in 0..128 {
            encoder.write_all(&spaces).expect("compresses");
        }
        encoder.finish().expect("compresses")
    }

    #[test]
    fn an_svg_is_drawn_over_white_and_reads_no_file() {
        // A picture the SVG points to, outside anything it may reach.
        let dir = tempfile::tempdir().expect("temp dir");
        let elsewhere = dir.path().join("elsewhere.png");
        std::fs::write(&elsewhere, squares_png(8)).expect("writes");
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100">
                 <rect x="0" y="0" width="100" height="100" fill="rgb(220,30,30)"/>
                 <image href="{}" x="100" y="0" width="100" height="100"/>
               </svg>"#,
            elsewhere.display()
        );
        let image = render(&svg, HALF_BLOCK, Size::new(40, 10)).expect("draws");
        assert_eq!((image.width, image.height), (200, 100));
        assert_eq!(image.drawn.get_pixel(5, 5), &image::Rgb([220, 30, 30]));
        // Where the linked picture would be, the page stays white: it was never read.
        assert_eq!(image.drawn.get_pixel(30, 10), &image::Rgb([255, 255, 255]));
        let broken = render("<svg", HALF_BLOCK, Size::new(4, 4)).err();
        assert!(matches!(broken, Some(Undrawn::Broken(why)) if why.starts_with("cannot draw")));
        // A DOCTYPE alone, as old drawing programs write it, is read.
        let doctype = format!(
            "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \
             \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n{svg}"
        );
        assert!(render(&doctype, HALF_BLOCK, Size::new(40, 10)).is_ok());
    }

    #[test]
    fn entities_and_bombs_are_refused_before_they_expand() {
        let started = std::time::Instant::now();
        let laughs = billion_laughs();
        assert!(laughs.len() < 400 << 10, "{} bytes", laughs.len());
        let why = render(&laughs, HALF_BLOCK, Size::new(4, 4)).err();
        assert!(
            matches!(&why, Some(Undrawn::Refused(why)) if why.contains("XML entities")),
            "{why:?}"
        );
        let external = external_entity(std::path::Path::new("/etc/hostname"));
        let why = render(&external, HALF_BLOCK, Size::new(4, 4)).err();
        assert!(matches!(why, Some(Undrawn::Refused(_))), "{why:?}");
        let bomb = gzip_bomb();
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        let why = decompress(&bomb).expect_err("refused");
        assert!(why.contains("more than 4.0 MiB"), "{why}");
        // The same multiplication with <use>: ten levels of ten copies.
        let mut copies = String::from(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"><defs>\
             <rect id=\"l0\" width=\"1\" height=\"1\"/>",
        );
        for level in 1..=10 {
            let uses = format!("<use href=\"#l{}\"/>", level - 1).repeat(10);
            copies.push_str(&format!("<g id=\"l{level}\">{uses}</g>"));
        }
        copies.push_str("</defs><use href=\"#l10\"/></svg>");
        let why = render(&copies, HALF_BLOCK, Size::new(4, 4)).err();
        assert!(
            matches!(&why, Some(Undrawn::Refused(why)) if why.contains("copy more than")),
            "{why:?}"
        );
        let looped = r##"<svg xmlns="http://www.w3.org/2000/svg"><g id="a"><use href="#b"/><use href="#b"/></g><g id="b"><use href="#a"/><use href="#a"/></g></svg>"##;
        let why = render(looped, HALF_BLOCK, Size::new(4, 4)).err();
        assert!(
            matches!(&why, Some(Undrawn::Refused(why)) if why.contains("loop")),
            "{why:?}"
        );
        // A symbol used a few times is fine.
        let icons = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="9" height="9"><symbol id="dot"><rect width="1" height="1"/></symbol><use xlink:href="#dot"/><use xlink:href="#dot" x="3"/></svg>"##;
        assert!(render(icons, HALF_BLOCK, Size::new(4, 4)).is_ok());
        let small = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let small = {
            let mut small = small;
            small.write_all(b"<svg/>").expect("compresses");
            small.finish().expect("compresses")
        };
        assert_eq!(decompress(&small), Ok(b"<svg/>".to_vec()));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
