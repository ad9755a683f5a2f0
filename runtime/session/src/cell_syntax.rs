//! Just enough Rust syntax to handle a cell before evcxr sees it: whether the cell is
//! complete (the REPL reads another line and Jupyter consoles add one when it is not), and
//! the `;` a trailing `let` needs.
//!
//! A small hand-written lexer knows comments (line, and nested block comments), string,
//! byte-string, C-string and raw-string literals, char literals as opposed to lifetimes and
//! labels, and brackets. It does not parse Rust's grammar beyond that: the compiler reports
//! everything else, with better messages than a guess here could give.
//!
//! Like evcxr, the lexer skips the lines a cell starts with that are evcxr commands (`:dep …`)
//! or shell commands (`!ls`): they are not Rust.

use std::borrow::Cow;

/// Whether a cell is ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// Every bracket, string and comment is closed: run it.
    Complete,
    /// A bracket, string, raw string or block comment is still open at the end: the user
    /// will type more.
    Incomplete,
    /// No amount of typing can fix it (a closing bracket that closes nothing, or the wrong
    /// kind); the message says what is wrong and where, for a person.
    Invalid(String),
}

/// Whether `code` (one cell, possibly starting with evcxr command lines) is complete,
/// needs more lines, or has a bracket that can never match.
///
/// The first closing bracket that does not fit makes the cell
/// [`Invalid`](Completeness::Invalid), even if something after it is unclosed.
pub fn completeness(code: &str) -> Completeness {
    let lexed = lex(code);
    let mut open: Vec<&Token> = Vec::new();
    for token in &lexed.tokens {
        match token.kind {
            Kind::Open(_) => open.push(token),
            Kind::Close(close) => match open.pop() {
                Some(opener) if matches!(opener.kind, Kind::Open(o) if closer_of(o) == close) => {}
                Some(opener) => {
                    let Kind::Open(o) = opener.kind else {
                        unreachable!("only opening brackets are pushed")
                    };
                    return Completeness::Invalid(format!(
                        "`{close}` on line {} does not match `{o}` opened on line {}",
                        token.line, opener.line
                    ));
                }
                None => {
                    return Completeness::Invalid(format!(
                        "`{close}` on line {} closes nothing: no bracket is open there",
                        token.line
                    ));
                }
            },
            _ => {}
        }
    }
    if lexed.unterminated || !open.is_empty() {
        Completeness::Incomplete
    } else {
        Completeness::Complete
    }
}

/// `code` with a `;` after its last statement when that statement is a `let` without one, so
/// `let x = 1` typed at a REPL runs (evcxr rejects a `let` without `;`); otherwise `code`
/// unchanged.
///
/// The last statement starts at the start of the cell's Rust code, after the last `;` outside
/// brackets, or at a `let` right after a top-level `}` (`fn f() {} let x = 1`) or attribute
/// (`#[allow(unused)] let x = 1`). A `let` in `if let` / `while let` starts no statement. The
/// `;` goes right after the statement's last token, so a trailing `// comment` stays a comment.
/// Cells that are not [`Complete`](Completeness::Complete) are returned unchanged: the REPL
/// reads more, and the compiler reports invalid ones as they were typed.
pub fn terminate_trailing_let(code: &str) -> Cow<'_, str> {
    let lexed = lex(code);
    if lexed.unterminated {
        return Cow::Borrowed(code);
    }
    let tokens = &lexed.tokens;
    // For each open bracket: whether it opens an attribute (`#[…]`, `#![…]`) and its kind.
    let mut open: Vec<(char, bool)> = Vec::new();
    let mut statement_may_start = true;
    let mut trailing_let = None;
    for (index, token) in tokens.iter().enumerate() {
        let top_level = open.is_empty();
        if top_level && statement_may_start && token.text(code) == "let" {
            trailing_let = Some(index);
        }
        statement_may_start = match token.kind {
            Kind::Semicolon if top_level => {
                trailing_let = None;
                true
            }
            Kind::Open(o) => {
                let before = |back: usize| index.checked_sub(back).map(|i| tokens[i].text(code));
                let attribute = o == '['
                    && (before(1) == Some("#") || before(1) == Some("!") && before(2) == Some("#"));
                open.push((o, attribute));
                false
            }
            Kind::Close(close) => match open.pop() {
                Some((o, attribute)) if closer_of(o) == close => {
                    open.is_empty() && (close == '}' || attribute)
                }
                _ => return Cow::Borrowed(code),
            },
            _ => false,
        };
    }
    match (trailing_let, tokens.last()) {
        (Some(index), Some(last)) if open.is_empty() && index + 1 < tokens.len() => {
            let mut terminated = String::with_capacity(code.len() + 1);
            terminated.push_str(&code[..last.end]);
            terminated.push(';');
            terminated.push_str(&code[last.end..]);
            Cow::Owned(terminated)
        }
        _ => Cow::Borrowed(code),
    }
}

/// The closing bracket for an opening one.
fn closer_of(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// What a token is, as far as this module cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open(char),
    Close(char),
    Semicolon,
    /// An identifier or keyword (including raw identifiers), or a number.
    Word,
    /// A string, char or byte literal.
    Literal,
    /// A lifetime or label (`'a`).
    Lifetime,
    /// Any other single punctuation character.
    Punct,
}

/// One token: its kind, byte range in the cell, and 1-based line.
#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    line: usize,
}

impl Token {
    fn text<'a>(&self, code: &'a str) -> &'a str {
        &code[self.start..self.end]
    }
}

/// The tokens of a cell (comments and whitespace dropped), and whether it ends inside a
/// string, raw string or block comment (which then is not a token).
struct Lexed {
    tokens: Vec<Token>,
    unterminated: bool,
}

/// Byte offset where a cell's Rust code starts: after the leading lines evcxr takes as
/// commands (` *:…`) or shell commands (`!…`), and the blank or `//` lines among them.
pub(crate) fn rust_start(code: &str) -> usize {
    let mut start = 0;
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        offset += line.len();
        if line.trim_start_matches(' ').starts_with(':') || line.starts_with('!') {
            start = offset;
        } else if !(line.starts_with("//") || line.trim().is_empty()) {
            break;
        }
    }
    start
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// A cursor over the cell's source.
struct Lexer<'a> {
    code: &'a str,
    pos: usize,
    line: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.code[self.pos..].chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.code[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    /// After the opening `"`: the rest of a string with escapes. False if it never closes.
    fn string(&mut self) -> bool {
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    self.bump();
                }
                '"' => return true,
                _ => {}
            }
        }
        false
    }

    /// At the `#`s or `"` after a raw string's `r`: the rest of it. False if it never closes.
    fn raw_string(&mut self) -> bool {
        let mut hashes = 0;
        while self.eat('#') {
            hashes += 1;
        }
        self.eat('"');
        while let Some(c) = self.bump() {
            if c == '"'
                && self.code[self.pos..]
                    .bytes()
                    .take_while(|&b| b == b'#')
                    .count()
                    >= hashes
            {
                self.pos += hashes;
                return true;
            }
        }
        false
    }

    /// Whether the text at the cursor (after a `r` prefix) starts a raw string: `#`s then `"`.
    fn at_raw_string(&self) -> bool {
        let rest = self.code[self.pos..].trim_start_matches('#');
        rest.starts_with('"')
    }

    /// At a `'`: a char literal (a quote, one char or an escape, a quote) or else a lifetime
    /// or label.
    fn quote(&mut self) -> Kind {
        self.bump();
        match (self.peek(), self.peek_nth(1)) {
            (Some('\\'), _) => {
                self.bump();
                if self.bump() == Some('u') && self.peek() == Some('{') {
                    self.eat_while(|c| c != '}' && c != '\'' && c != '\n');
                    self.eat('}');
                } else {
                    // `'\x7b'`: the hex digits.
                    self.eat_while(is_ident_continue);
                }
                self.eat('\'');
                Kind::Literal
            }
            (Some(_), Some('\'')) => {
                self.bump();
                self.bump();
                Kind::Literal
            }
            _ => {
                self.eat_while(is_ident_continue);
                Kind::Lifetime
            }
        }
    }

    /// After a whole identifier: whether it was a literal's prefix (`b"…"`, `r#"…"#`, `b'…'`,
    /// `c"…"`, `br"…"`, `cr"…"`) and if so the literal's kind, having lexed the literal.
    /// `Err(())` when the literal never closes.
    fn prefixed_literal(&mut self, prefix: &str) -> Result<Option<Kind>, ()> {
        let closed = match (prefix, self.peek()) {
            ("b" | "c", Some('"')) => {
                self.bump();
                self.string()
            }
            ("b", Some('\'')) => return Ok(Some(self.quote())),
            ("r" | "br" | "cr", Some('"' | '#')) if self.at_raw_string() => self.raw_string(),
            ("r", Some('#')) if self.peek_nth(1).is_some_and(is_ident_start) => {
                // A raw identifier, `r#type`.
                self.bump();
                self.eat_while(is_ident_continue);
                return Ok(Some(Kind::Word));
            }
            _ => return Ok(None),
        };
        if closed {
            Ok(Some(Kind::Literal))
        } else {
            Err(())
        }
    }
}

/// Splits a cell's Rust code into tokens.
fn lex(code: &str) -> Lexed {
    let start = rust_start(code);
    let mut lexer = Lexer {
        code,
        pos: start,
        line: 1 + code[..start].matches('\n').count(),
    };
    let mut tokens = Vec::new();
    let mut unterminated = false;
    while let Some(c) = lexer.peek() {
        let (start, line) = (lexer.pos, lexer.line);
        let kind = match c {
            c if c.is_whitespace() => {
                lexer.bump();
                continue;
            }
            '/' if lexer.peek_nth(1) == Some('/') => {
                lexer.eat_while(|c| c != '\n');
                continue;
            }
            '/' if lexer.peek_nth(1) == Some('*') => {
                lexer.pos += 2;
                let mut depth = 1;
                while depth > 0 {
                    match lexer.bump() {
                        None => break,
                        Some('/') if lexer.eat('*') => depth += 1,
                        Some('*') if lexer.eat('/') => depth -= 1,
                        Some(_) => {}
                    }
                }
                if depth > 0 {
                    unterminated = true;
                    break;
                }
                continue;
            }
            '"' => {
                lexer.bump();
                if !lexer.string() {
                    unterminated = true;
                    break;
                }
                Kind::Literal
            }
            '\'' => lexer.quote(),
            c if is_ident_start(c) || c.is_ascii_digit() => {
                lexer.eat_while(is_ident_continue);
                match lexer.prefixed_literal(&code[start..lexer.pos]) {
                    Ok(Some(kind)) => kind,
                    Ok(None) => Kind::Word,
                    Err(()) => {
                        unterminated = true;
                        break;
                    }
                }
            }
            '(' | '[' | '{' => {
                lexer.bump();
                Kind::Open(c)
            }
            ')' | ']' | '}' => {
                lexer.bump();
                Kind::Close(c)
            }
            ';' => {
                lexer.bump();
                Kind::Semicolon
            }
            _ => {
                lexer.bump();
                Kind::Punct
            }
        };
        tokens.push(Token {
            kind,
            start,
            end: lexer.pos,
            line,
        });
    }
    Lexed {
        tokens,
        unterminated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Completeness::{Complete, Incomplete};

    fn invalid(code: &str) -> String {
        match completeness(code) {
            Completeness::Invalid(message) => message,
            other => panic!("{code:?} is {other:?}, not invalid"),
        }
    }

    #[test]
    fn closed_brackets_are_complete_and_open_ones_incomplete() {
        assert_eq!(completeness(""), Complete);
        assert_eq!(completeness("x + 1"), Complete);
        assert_eq!(completeness("let v = vec![1, (2)];"), Complete);
        assert_eq!(completeness("let f = |x| {"), Incomplete);
        assert_eq!(completeness("foo(\n  1,\n"), Incomplete);
        assert_eq!(completeness("let v = [1, 2"), Incomplete);
    }

    #[test]
    fn a_closing_bracket_that_closes_nothing_is_invalid() {
        let message = invalid("let = 7q);");
        assert!(
            message.contains("`)`") && message.contains("line 1"),
            "{message}"
        );
        let message = invalid("let a = 1;\n}");
        assert!(
            message.contains("`}`") && message.contains("line 2"),
            "{message}"
        );
    }

    #[test]
    fn a_closing_bracket_of_the_wrong_kind_is_invalid() {
        let message = invalid("foo(]");
        assert!(
            message.contains("`]`") && message.contains("`(`") && message.contains("line 1"),
            "{message}"
        );
        assert!(invalid("(]").contains("`]`"));
        let message = invalid("fn f() {\n    g(1];\n}");
        assert!(message.contains("line 2"), "{message}");
        // The first problem wins over an unclosed bracket after it.
        assert!(invalid("a)\nb(").contains("`)`"));
    }

    #[test]
    fn comments_hide_brackets() {
        assert_eq!(completeness("let v = vec![1, 2]; // {"), Complete);
        assert_eq!(completeness("x // )"), Complete);
        assert_eq!(completeness("/* { */ x"), Complete);
        assert_eq!(completeness("/* outer /* inner */ still ( */ x"), Complete);
        assert_eq!(completeness("/// doc (\nfn f() {}"), Complete);
    }

    #[test]
    fn unclosed_block_comments_are_incomplete() {
        assert_eq!(completeness("/* unclosed"), Incomplete);
        assert_eq!(completeness("/* outer /* inner */ still open"), Incomplete);
        assert_eq!(completeness("x /*"), Incomplete);
    }

    #[test]
    fn strings_hide_brackets_and_escapes_hide_quotes() {
        assert_eq!(completeness("println!(\"{}\", \"}\")"), Complete);
        assert_eq!(completeness(r#"let s = "a \" ( b";"#), Complete);
        assert_eq!(completeness(r#"let s = "ends in \\";"#), Complete);
        assert_eq!(completeness(r#"let s = "// not a comment (";"#), Complete);
        assert_eq!(completeness("let s = \"/* not a comment\";"), Complete);
        assert_eq!(completeness("let s = \"abc"), Incomplete);
        assert_eq!(completeness(r#"let s = "abc\""#), Incomplete);
        assert_eq!(completeness("let s = \"line one\nline two"), Incomplete);
    }

    #[test]
    fn byte_and_c_strings() {
        assert_eq!(completeness(r#"let b = b"{(";"#), Complete);
        assert_eq!(completeness(r#"let c = c"]";"#), Complete);
        assert_eq!(completeness(r#"let b = b"unclosed"#), Incomplete);
        assert_eq!(completeness("let b = b'{';"), Complete);
        assert_eq!(completeness(r"let b = b'\'';"), Complete);
    }

    #[test]
    fn raw_strings() {
        assert_eq!(completeness(r##"r#"raw " still"#"##), Complete);
        assert_eq!(completeness(r#"let s = r"C:\path\";"#), Complete);
        assert_eq!(completeness(r###"let s = r##"a "# b ("##;"###), Complete);
        assert_eq!(completeness(r##"let s = br#"bytes " )"#;"##), Complete);
        assert_eq!(completeness(r##"let s = cr#"c " )"#;"##), Complete);
        assert_eq!(completeness(r##"r#"unclosed"##), Incomplete);
        assert_eq!(
            completeness(r###"r##"closed only by "# not enough"#"###),
            Incomplete
        );
        assert_eq!(completeness(r#"let s = r"unclosed"#), Incomplete);
        assert_eq!(completeness(r#"let s = br"unclosed"#), Incomplete);
    }

    #[test]
    fn raw_identifiers_and_identifiers_ending_in_r_are_not_raw_strings() {
        assert_eq!(completeness("let r#type = 1;"), Complete);
        assert_eq!(completeness("let r = 1; let br = r;"), Complete);
        assert_eq!(completeness("let bar = 1;"), Complete);
        assert_eq!(completeness("let number = 1u8;"), Complete);
    }

    #[test]
    fn char_literals_hide_brackets_and_quotes() {
        assert_eq!(completeness("let c = '{';"), Complete);
        assert_eq!(completeness("println!(\"{}\", '}')"), Complete);
        assert_eq!(completeness(r"let c = '\'';"), Complete);
        assert_eq!(completeness(r"let c = '\u{7b}';"), Complete);
        assert_eq!(completeness(r"let c = '\x28';"), Complete);
        assert_eq!(completeness(r"let c = '\\';"), Complete);
        assert_eq!(completeness("let c = '\"';"), Complete);
        assert_eq!(completeness("let c = 'é'; let d = '(';"), Complete);
        assert_eq!(
            completeness("match c { '(' => 1, ')' => 2, _ => 3 }"),
            Complete
        );
    }

    #[test]
    fn lifetimes_and_labels_are_not_char_literals() {
        assert_eq!(
            completeness("fn f<'a>(x: &'a str) -> &'a str { x }"),
            Complete
        );
        assert_eq!(completeness("'outer: loop { break 'outer; }"), Complete);
        assert_eq!(completeness("let s: &'static str = \"(\";"), Complete);
        assert_eq!(completeness("struct S<'a, 'b>(&'a u8, &'b u8);"), Complete);
        assert_eq!(completeness("fn f<'a>(x: &'a str) {"), Incomplete);
    }

    #[test]
    fn evcxr_command_lines_are_not_rust() {
        assert_eq!(completeness(":dep rand = \"0.8\"\nlet x = 1;"), Complete);
        assert_eq!(
            completeness("!echo \"unbalanced ( quote\nlet x = 1;"),
            Complete
        );
        assert_eq!(completeness(":vars"), Complete);
        assert_eq!(completeness("// note\n:dep regex\nfoo(\n"), Incomplete);
        let message = invalid(":dep regex\n\nfoo)");
        assert!(message.contains("line 3"), "{message}");
        // Only leading lines are commands: later ones are Rust.
        assert_eq!(completeness("let x = 1;\n:dep \"oops"), Incomplete);
    }

    #[test]
    fn a_trailing_let_gets_its_semicolon() {
        assert_eq!(terminate_trailing_let("let x = 1"), "let x = 1;");
        assert_eq!(
            terminate_trailing_let("let a = 1;\nlet b = 2"),
            "let a = 1;\nlet b = 2;"
        );
        assert_eq!(
            terminate_trailing_let("let s = \"a;b\""),
            "let s = \"a;b\";"
        );
        assert_eq!(
            terminate_trailing_let("let mut x = 1\n"),
            "let mut x = 1;\n"
        );
        assert_eq!(
            terminate_trailing_let("let (a, b) = (1, 2)"),
            "let (a, b) = (1, 2);"
        );
        assert_eq!(
            terminate_trailing_let("let [a, b] = [1, 2]"),
            "let [a, b] = [1, 2];"
        );
        assert_eq!(
            terminate_trailing_let("let v = vec![1, 2] // note"),
            "let v = vec![1, 2]; // note"
        );
        assert_eq!(
            terminate_trailing_let("let v = 1 /* a; b */\n"),
            "let v = 1; /* a; b */\n"
        );
    }

    #[test]
    fn a_trailing_let_ending_in_a_block_gets_its_semicolon() {
        assert_eq!(
            terminate_trailing_let("let x = if a { 1 } else { 2 }"),
            "let x = if a { 1 } else { 2 };"
        );
        assert_eq!(
            terminate_trailing_let("let f = |x| {\n    x + 1\n}"),
            "let f = |x| {\n    x + 1\n};"
        );
        assert_eq!(
            terminate_trailing_let("let Some(x) = y else { return }"),
            "let Some(x) = y else { return };"
        );
        assert_eq!(
            terminate_trailing_let("let x = { let y = 1; y }"),
            "let x = { let y = 1; y };"
        );
    }

    #[test]
    fn a_let_after_an_item_attribute_or_command_is_the_last_statement() {
        assert_eq!(
            terminate_trailing_let("fn f() -> i32 { 1 }\nlet x = f()"),
            "fn f() -> i32 { 1 }\nlet x = f();"
        );
        assert_eq!(
            terminate_trailing_let("#[allow(unused)]\nlet x = 1"),
            "#[allow(unused)]\nlet x = 1;"
        );
        assert_eq!(
            terminate_trailing_let(":dep rand = \"0.8\"\nlet x = 1"),
            ":dep rand = \"0.8\"\nlet x = 1;"
        );
    }

    #[test]
    fn other_cells_are_unchanged() {
        for code in [
            "let x = 1;",
            "let x = 1; // done",
            "let x = 1;\n\n",
            "x + 1",
            "let x = 1;\nx",
            "let x = 1;\nfn f() {}",
            "if let Some(x) = y { x } else { 0 }",
            "while let Some(x) = it.next() { println!(\"{x}\") }",
            "let x = 1;\nif a && let Some(b) = c { b }",
            "letter + 1",
            "let_x",
            "let",
            "",
            "// let x = 1",
            "/* let x = 1 */",
            "let s = \"unclosed",
            "let f = |x| {",
            "let x = 7);",
            ":vars",
        ] {
            let result = terminate_trailing_let(code);
            assert!(
                matches!(result, Cow::Borrowed(_)),
                "{code:?} became {result:?}"
            );
        }
    }

    #[test]
    fn the_terminated_cell_is_complete() {
        for code in ["let x = 1", "let x = if a { 1 } else { 2 }", "let c = '{'"] {
            assert_eq!(completeness(&terminate_trailing_let(code)), Complete);
        }
    }
}
