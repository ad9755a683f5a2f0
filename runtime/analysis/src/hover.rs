//! Hover: what rust-analyzer shows for the thing at a position, turned from its Markdown into
//! plain text for terminals and HTML for Jupyter's inspector.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use ra_ap_ide::{Documentation, HoverConfig, HoverDocFormat, RaFixtureConfig, SubstTyLen};
use ra_ap_ide_db::rust_doc::format_docs;

use crate::raw_html;

/// What rust-analyzer shows on hover: the item's path and signature (or a value's type), then
/// its documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    /// Plain text: the signature's lines, a blank line, the docs without Markdown syntax.
    pub text: String,
    /// HTML: the signature in `<pre>`, the docs as paragraphs, lists and `<pre>` examples.
    pub html: String,
}

/// What rust-analyzer is asked for: Markdown (rendered here both ways), with doc links made into
/// docs.rs / doc.rust-lang.org URLs, and the same limits on listed fields and variants as editors
/// use by default.
pub(crate) fn config() -> HoverConfig<'static> {
    HoverConfig {
        links_in_hover: true,
        memory_layout: None,
        documentation: true,
        keywords: true,
        format: HoverDocFormat::Markdown,
        max_trait_assoc_items_count: None,
        max_fields_count: Some(5),
        max_enum_variants_count: Some(5),
        max_subst_ty_len: SubstTyLen::LimitTo(20),
        show_drop_glue: false,
        ra_fixture: RaFixtureConfig::default(),
    }
}

/// Renders rust-analyzer's hover `markdown`; `None` when it says nothing.
pub(crate) fn render(markdown: &str) -> Option<Hover> {
    // As rustdoc shows examples: without their hidden (`# `) lines, and Rust unless marked
    // otherwise.
    let markdown = format_docs(&Documentation::new_borrowed(markdown));
    let text = text(&markdown);
    if text.is_empty() {
        return None;
    }
    Some(Hover {
        text,
        html: html(&markdown),
    })
}

/// `markdown` as HTML. Only formatting tags of the docs' raw HTML are kept, and only http(s)
/// links stay links, so a crate's docs cannot inject markup or scripts into a notebook.
fn html(markdown: &str) -> String {
    let mut kept_links = Vec::new();
    let events = Parser::new(markdown).filter_map(|event| match event {
        Event::Html(raw) => Some(Event::Html(raw_html::sanitize(&raw).into())),
        Event::InlineHtml(raw) => Some(Event::InlineHtml(raw_html::sanitize(&raw).into())),
        Event::Start(Tag::Link { ref dest_url, .. }) => {
            let keep = dest_url.starts_with("https://") || dest_url.starts_with("http://");
            kept_links.push(keep);
            keep.then_some(event)
        }
        Event::End(TagEnd::Link) => kept_links.pop().unwrap_or(false).then_some(event),
        // An image's alt text remains, as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        // A doc's `# Examples` is a section of a tooltip, not the title of the page.
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: demoted(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(demoted(level)))),
        event => Some(event),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html.trim_end().to_string()
}

/// `level` three levels down (`#` becomes `<h4>`).
fn demoted(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H4,
        HeadingLevel::H2 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// `markdown` as plain text: blocks separated by blank lines (a signature's code blocks by a
/// line break only), list items marked with `-` or their number, other syntax dropped.
fn text(markdown: &str) -> String {
    let mut text = String::new();
    // Per open list, the next item's number (`None`: unordered).
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut after_code_block = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => {
                if after_code_block {
                    new_line(&mut text);
                } else {
                    new_block(&mut text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                let trimmed = text.trim_end_matches('\n').len();
                text.truncate(trimmed);
                after_code_block = true;
                continue;
            }
            Event::Start(Tag::Item) => {
                new_line(&mut text);
                let depth = lists.len().saturating_sub(1);
                text.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(number)) => {
                        text.push_str(&format!("{number}. "));
                        *number += 1;
                    }
                    _ => text.push_str("- "),
                }
            }
            Event::Start(Tag::List(first)) => {
                if lists.is_empty() {
                    new_block(&mut text);
                }
                lists.push(first);
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Paragraph | Tag::Heading { .. } | Tag::BlockQuote(_))
            | Event::Start(Tag::Table(_) | Tag::HtmlBlock)
                if lists.is_empty() =>
            {
                new_block(&mut text);
            }
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => text.push('\n'),
            Event::End(TagEnd::TableCell) => text.push_str("  "),
            Event::Text(content)
            | Event::Code(content)
            | Event::InlineMath(content)
            | Event::DisplayMath(content) => text.push_str(&content),
            Event::Html(raw) | Event::InlineHtml(raw) => text.push_str(&raw_html::text(&raw)),
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            Event::FootnoteReference(name) => text.push_str(&format!("[{name}]")),
            Event::TaskListMarker(done) => text.push_str(if done { "[x] " } else { "[ ] " }),
            // Where rust-analyzer separates the signature from the docs: the blank line of the
            // next block is separation enough.
            Event::Rule => {}
            _ => {}
        }
        // Only a code block ending right before another starts keeps them on adjacent lines.
        after_code_block = false;
    }
    text.trim().to_string()
}

/// Ends the text so far with a blank line, unless it is empty.
fn new_block(text: &mut String) {
    if text.is_empty() {
        return;
    }
    let trimmed = text.trim_end_matches([' ', '\n']).len();
    text.truncate(trimmed);
    text.push_str("\n\n");
}

/// Ends the text so far with a line break, unless it is empty or already does.
fn new_line(text: &mut String) {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    /// The shape of rust-analyzer's hover for a documented function.
    const FUNCTION: &str = "```rust\ndep\n```\n\n```rust\npub fn largest(values: Vec<u64>) -> \
         Option<u64>\n```\n\n---\n\nReturns the largest of `values`.\n\n- one\n- two\n\n# Examples\n\n\
         ```should_panic\n# use dep::largest;\n## not hidden\nassert_eq!(largest(vec![]), Some(1));\n```\n\n\
         See [Vec](https://doc.rust-lang.org/std/vec/struct.Vec.html), \
         [x](javascript:alert(1)) and <sup class=\"x\">2</sup> <script>alert(1)</script>";

    #[test]
    fn text_is_signature_then_docs_without_markdown() {
        let hover = render(FUNCTION).unwrap();
        assert_eq!(
            hover.text,
            "dep\npub fn largest(values: Vec<u64>) -> Option<u64>\n\n\
             Returns the largest of values.\n\n- one\n- two\n\nExamples\n\n\
             # not hidden\nassert_eq!(largest(vec![]), Some(1));\n\n\
             See Vec, x and 2 alert(1)"
        );
    }

    #[test]
    fn html_escapes_code_drops_foreign_markup_and_keeps_only_web_links() {
        let html = render(FUNCTION).unwrap().html;
        assert!(
            html.starts_with("<pre><code class=\"language-rust\">dep\n</code></pre>"),
            "{html}"
        );
        assert!(
            html.contains("pub fn largest(values: Vec&lt;u64&gt;) -&gt; Option&lt;u64&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<p>Returns the largest of <code>values</code>.</p>"),
            "{html}"
        );
        assert!(html.contains("<li>one</li>"), "{html}");
        assert!(html.contains("<h4>Examples</h4>"), "{html}");
        assert!(
            html.contains(
                "<pre><code class=\"language-rust\"># not hidden\nassert_eq!(largest(vec![]), \
                 Some(1));\n</code></pre>"
            ),
            "an example as rustdoc shows it: {html}"
        );
        assert!(
            html.contains("<a href=\"https://doc.rust-lang.org/std/vec/struct.Vec.html\">Vec</a>"),
            "{html}"
        );
        assert!(html.contains("<sup>2</sup>"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("class=\"x\""), "{html}");
    }

    #[test]
    fn nothing_renders_as_none() {
        assert_eq!(render(""), None);
        assert_eq!(render("\n\n"), None);
    }

    #[test]
    fn an_ordered_list_keeps_its_numbers() {
        let hover = render("Steps:\n\n3. three\n4. four").unwrap();
        assert_eq!(hover.text, "Steps:\n\n3. three\n4. four");
    }
}
