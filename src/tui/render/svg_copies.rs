//! How many elements an SVG becomes when it is drawn. The renderer replaces every `<use>`
//! with a copy of what it points to, and draws a marker's content again at every vertex of
//! a shape that names it: nested copies multiply, so a few hundred bytes can become billions
//! of elements (the "billion laughs" of entities, without entities). The count is an upper
//! bound, made before anything is drawn.

use std::collections::HashMap;

use resvg::usvg::roxmltree::{Document, Node};

/// Elements a drawing may become.
pub(crate) const MAX_ELEMENTS: u64 = 250_000;

/// Shapes the renderer draws markers on.
const SHAPES: &[&str] = &["path", "line", "polyline", "polygon"];

/// What one element becomes, with everything it holds and copies.
#[derive(Clone, Copy, Default)]
struct Count {
    elements: u64,
    /// Places markers are drawn at (up to three a vertex: start, middle, end).
    marker_places: u64,
}

/// Why `document` is not drawn, in words, or nothing when it stays within [`MAX_ELEMENTS`].
pub(crate) fn check(document: &Document) -> Result<(), String> {
    let counted = count(document)?;
    let root = counted[index(document.root_element())];
    let mut largest_marker = 0;
    for marker in document
        .descendants()
        .filter(|node| node.tag_name().name() == "marker")
    {
        let inside = counted[index(marker)];
        if inside.marker_places > 0 {
            return Err("it has markers inside markers, which multiply".into());
        }
        largest_marker = largest_marker.max(inside.elements);
    }
    let drawn = root
        .elements
        .saturating_add(root.marker_places.saturating_mul(largest_marker));
    if drawn > MAX_ELEMENTS {
        return Err(format!(
            "drawn, it would have more than {MAX_ELEMENTS} elements (copies of <use> \
             elements and markers multiply, as in \"billion laughs\")"
        ));
    }
    Ok(())
}

fn index(node: Node) -> usize {
    node.id().get() as usize
}

/// Every element's [`Count`], depth first without recursion (a deep document cannot
/// overflow the stack); a `<use>` that copies an element holding it is refused.
fn count(document: &Document) -> Result<Vec<Count>, String> {
    let ids: HashMap<&str, Node> = document
        .descendants()
        .filter_map(|node| Some((node.attribute("id")?, node)))
        .collect();
    let styled_markers = document.descendants().any(|node| {
        node.tag_name().name() == "style" && node.text().is_some_and(|css| css.contains("marker"))
    });
    let copied = |node: Node| {
        if node.tag_name().name() != "use" {
            return None;
        }
        let href = node.attributes().find(|a| a.name() == "href")?.value();
        ids.get(href.strip_prefix('#')?).copied()
    };
    let size = document.descendants().count() + 1;
    let mut counted: Vec<Option<Count>> = vec![None; size];
    let mut entered = vec![false; size];
    let mut steps = vec![(document.root_element(), false)];
    while let Some((node, leaving)) = steps.pop() {
        let parts = || node.children().filter(Node::is_element).chain(copied(node));
        if !leaving {
            if !entered[index(node)] {
                entered[index(node)] = true;
                steps.push((node, true));
                steps.extend(parts().map(|part| (part, false)));
            }
            continue;
        }
        let mut total = Count {
            elements: 1,
            marker_places: marker_places(node, styled_markers),
        };
        for part in parts() {
            // Entered and not yet counted: it holds this element.
            let Some(inside) = counted[index(part)] else {
                return Err("its <use> elements copy each other in a loop".into());
            };
            total.elements = total.elements.saturating_add(inside.elements);
            total.marker_places = total.marker_places.saturating_add(inside.marker_places);
        }
        if total.elements > MAX_ELEMENTS {
            return Err(format!(
                "its <use> elements copy more than {MAX_ELEMENTS} elements (nested copies \
                 multiply, as in \"billion laughs\")"
            ));
        }
        counted[index(node)] = Some(total);
    }
    Ok(counted.into_iter().map(Option::unwrap_or_default).collect())
}

/// Where markers may be drawn on `node`: three for each vertex of a shape that names a
/// marker (in an attribute, its style, or, when a style sheet mentions markers, any shape).
fn marker_places(node: Node, styled_markers: bool) -> u64 {
    if !SHAPES.contains(&node.tag_name().name()) {
        return 0;
    }
    let named = styled_markers
        || node.attributes().any(|attribute| {
            attribute.name().starts_with("marker")
                || (attribute.name() == "style" && attribute.value().contains("marker"))
        });
    if !named {
        return 0;
    }
    let numbers: u64 = ["d", "points", "x1", "y1", "x2", "y2"]
        .iter()
        .filter_map(|name| node.attribute(*name))
        .map(number_count)
        .sum();
    3 * (numbers / 2 + 2)
}

/// Numbers in path data, at most: each run of digits counts (so `1.5` counts two).
fn number_count(text: &str) -> u64 {
    let mut count = 0;
    let mut in_digits = false;
    for c in text.chars() {
        let digit = c.is_ascii_digit();
        if digit && !in_digits {
            count += 1;
        }
        in_digits = digit;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use resvg::usvg::roxmltree::Document;

    fn checked(svg: &str) -> Result<(), String> {
        check(&Document::parse(svg).expect("parses"))
    }

    #[test]
    fn copies_and_markers_that_multiply_are_refused() {
        // Ten levels of ten copies: ten billion rectangles.
        let mut copies = String::from(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><defs><rect id=\"l0\" width=\"1\"/>",
        );
        for level in 1..=10 {
            let uses = format!("<use href=\"#l{}\"/>", level - 1).repeat(10);
            copies.push_str(&format!("<g id=\"l{level}\">{uses}</g>"));
        }
        copies.push_str("</defs><use href=\"#l10\"/></svg>");
        let why = checked(&copies).expect_err("refused");
        assert!(why.contains("copy more than"), "{why}");
        // A marker of a thousand elements on a path of a thousand vertices.
        let dots = "<rect width=\"1\" height=\"1\"/>".repeat(1000);
        let points: String = (0..1000).map(|i| format!(" L{i} {i}")).collect();
        let markers = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\"><marker id=\"m\">{dots}</marker>\
             <path d=\"M0 0{points}\" marker-mid=\"url(#m)\"/></svg>"
        );
        let why = checked(&markers).expect_err("refused");
        assert!(why.contains("markers multiply"), "{why}");
        // The same through a style sheet.
        let styled = markers.replace(
            " marker-mid=\"url(#m)\"",
            "/><style>path { marker-mid: url(#m) }</style><path",
        );
        assert!(checked(&styled).is_err());
        let nested = "<svg xmlns=\"http://www.w3.org/2000/svg\"><marker id=\"a\">\
                      <path d=\"M0 0 L1 1\" marker-mid=\"url(#b)\"/></marker>\
                      <marker id=\"b\"><rect width=\"1\"/></marker></svg>";
        let why = checked(nested).expect_err("refused");
        assert!(why.contains("markers inside markers"), "{why}");
        let looped = "<svg xmlns=\"http://www.w3.org/2000/svg\"><g id=\"a\"><use href=\"#b\"/>\
                      </g><g id=\"b\"><use href=\"#a\"/></g></svg>";
        assert!(checked(looped).expect_err("refused").contains("loop"));
        // Arrowheads on a chart, and an icon used a few times, are drawn.
        let chart = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">\
             <marker id=\"arrow\"><path d=\"M0 0 L10 5 L0 10 z\"/></marker>\
             <symbol id=\"dot\"><circle r=\"1\"/></symbol>\
             <path d=\"M0 0{points}\" marker-end=\"url(#arrow)\"/>\
             <use xlink:href=\"#dot\"/><use xlink:href=\"#dot\" x=\"3\"/></svg>"
        );
        assert_eq!(checked(&chart), Ok(()));
        assert_eq!(number_count("M0,0 L1.5 2"), 5);
    }
}
