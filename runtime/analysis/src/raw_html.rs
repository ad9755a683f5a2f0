//! Raw HTML inside doc comments (`<code>`, `<sup>`, `<div class="warning">`, ...), made safe to
//! put into a notebook: plain formatting tags pass without their attributes, every other tag is
//! dropped (its text stays), and text is escaped. Docs come from any crate a cell depends on, so
//! none of their markup may carry handlers, styles or links into the page.

/// Tags that only format text, passed through (without attributes).
const FORMATTING: &[&str] = &[
    "b", "br", "code", "del", "em", "i", "ins", "kbd", "mark", "s", "samp", "small", "strong",
    "sub", "sup", "u", "var",
];

/// `raw` as safe HTML.
pub(crate) fn sanitize(raw: &str) -> String {
    let mut html = String::with_capacity(raw.len());
    for piece in pieces(raw) {
        match piece {
            Piece::Text(text) => escape_into(text, &mut html),
            Piece::Tag(tag) => {
                if let Some((name, closing)) = formatting_tag(tag) {
                    html.push('<');
                    if closing {
                        html.push('/');
                    }
                    html.push_str(&name);
                    html.push('>');
                }
            }
        }
    }
    html
}

/// `raw` as plain text: tags dropped, the common entities decoded.
pub(crate) fn text(raw: &str) -> String {
    let mut text = String::with_capacity(raw.len());
    for piece in pieces(raw) {
        if let Piece::Text(piece) = piece {
            text.push_str(piece);
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Escapes `text` for HTML.
pub(crate) fn escape_into(text: &str, html: &mut String) {
    for character in text.chars() {
        match character {
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            character => html.push(character),
        }
    }
}

/// A stretch of raw HTML.
enum Piece<'a> {
    /// Text between tags, as written (entities not decoded).
    Text(&'a str),
    /// Everything between a tag's `<` and `>` (also comments and doctypes).
    Tag(&'a str),
}

/// Splits `raw` into text and tags. A `<` that opens no tag (`a < b`) is text.
fn pieces(raw: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let opens_tag =
            after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match after.find('>') {
            Some(close) if opens_tag => {
                if open > 0 {
                    pieces.push(Piece::Text(&rest[..open]));
                }
                pieces.push(Piece::Tag(&after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                pieces.push(Piece::Text(&rest[..open + 1]));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// The name of `tag` (lowercase) and whether it closes, when it is a formatting tag (`em`,
/// `/em`, `br/`, `em class="x"`).
fn formatting_tag(tag: &str) -> Option<(String, bool)> {
    let (closing, tag) = match tag.strip_prefix('/') {
        Some(tag) => (true, tag),
        None => (false, tag),
    };
    let name = tag
        .split(|c: char| c.is_whitespace() || c == '/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    FORMATTING
        .contains(&name.as_str())
        .then_some((name, closing))
}

#[cfg(test)]
mod tests {
    use super::{sanitize, text};

    #[test]
    fn formatting_passes_and_everything_else_is_dropped_or_escaped() {
        assert_eq!(sanitize("<code>a</code><br/>"), "<code>a</code><br>");
        assert_eq!(
            sanitize("<div class=\"warning\">careful</div>"),
            "careful",
            "attributes and non-formatting tags are dropped"
        );
        assert_eq!(sanitize("<em onclick=\"x()\">hi</em>"), "<em>hi</em>");
        assert_eq!(sanitize("<script>alert(1)</script>"), "alert(1)");
        assert_eq!(sanitize("<!-- note -->"), "");
        assert_eq!(
            sanitize("a < b && c > \"d\""),
            "a &lt; b &amp;&amp; c &gt; &quot;d&quot;"
        );
    }

    #[test]
    fn text_drops_tags_and_decodes_entities() {
        assert_eq!(text("<sup>2</sup> &lt; x &amp;&amp; y"), "2 < x && y");
        assert_eq!(text("a < b"), "a < b");
    }
}
