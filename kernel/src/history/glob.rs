//! Glob patterns as SQLite's `GLOB` reads them, which IPython's history search uses.

/// One element of a glob pattern; each but `AnyRun` matches exactly one character.
#[derive(Debug, PartialEq, Eq)]
enum GlobPart {
    /// `*`: any run of characters, newlines included, or none.
    AnyRun,
    /// `?`: any one character.
    AnyOne,
    /// `[…]`: one character in (or, with `[^…]`, not in) the inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Literal(char),
}

impl GlobPart {
    fn matches(&self, c: char) -> bool {
        match self {
            GlobPart::AnyRun | GlobPart::AnyOne => true,
            GlobPart::Set { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
            GlobPart::Literal(literal) => *literal == c,
        }
    }
}

/// `pattern` as parts, or `None` if a `[` is never closed (such a pattern matches
/// nothing, as in SQLite).
fn parse_glob(pattern: &str) -> Option<Vec<GlobPart>> {
    let mut parts = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '*' => GlobPart::AnyRun,
            '?' => GlobPart::AnyOne,
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges: Vec<(char, char)> = Vec::new();
                // The last single member, which a following `-x` turns into a range.
                let mut prior: Option<char> = None;
                // A `]` right after `[` or `[^` is a member, not the end.
                if chars.next_if_eq(&']').is_some() {
                    ranges.push((']', ']'));
                    prior = Some(']');
                }
                loop {
                    match chars.next()? {
                        ']' => break,
                        '-' if prior.is_some() && chars.peek().is_some_and(|&c| c != ']') => {
                            let high = chars.next()?;
                            let low = prior.take().unwrap_or('-');
                            ranges.pop();
                            ranges.push((low, high));
                        }
                        member => {
                            ranges.push((member, member));
                            prior = Some(member);
                        }
                    }
                }
                GlobPart::Set { negated, ranges }
            }
            literal => GlobPart::Literal(literal),
        });
    }
    Some(parts)
}

/// Whether all of `text` matches the glob `pattern`, as SQLite's `GLOB` (which IPython's
/// history search uses) decides: `*` any run of characters, `?` one character, `[abc]`,
/// `[a-z]` and `[^…]` one character of a set; everything else, case included, stands for
/// itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let Some(parts) = parse_glob(pattern) else {
        return false;
    };
    let text: Vec<char> = text.chars().collect();
    // Greedy matching that backtracks to the last `*`: O(parts × text).
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(GlobPart::AnyRun) => {
                last_star = Some((p, t));
                p += 1;
            }
            Some(part) if part.matches(text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match last_star {
                Some((star, matched_up_to)) => {
                    p = star + 1;
                    t = matched_up_to + 1;
                    last_star = Some((star, t));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|part| *part == GlobPart::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_the_whole_text_as_sqlite_does() {
        assert!(glob_matches("a + 1", "a + 1"));
        assert!(!glob_matches("a", "a + 1"), "no implicit wildcards");
        assert!(glob_matches("a*", "a + 1"));
        assert!(glob_matches("*+*", "a + 1"));
        assert!(glob_matches("*1", "a + 1"));
        assert!(!glob_matches("*2", "a + 1"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("?", ""));
        assert!(glob_matches("a?+?1", "a + 1"));
        assert!(!glob_matches("a?1", "a + 1"));
        assert!(glob_matches("A*", "A"));
        assert!(!glob_matches("A*", "a"), "case-sensitive");
        assert!(glob_matches("*x*", "let y = 1;\nx"), "`*` crosses lines");
        assert!(glob_matches("?é?", "日é本"), "characters, not bytes");
        assert!(glob_matches("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_matches("*a*b*c*", "xxaxxcxxbxx"));
        assert!(glob_matches("**?", "z"));
    }

    #[test]
    fn glob_sets() {
        assert!(glob_matches("[abc]1", "b1"));
        assert!(!glob_matches("[abc]1", "d1"));
        assert!(glob_matches("x[0-9]", "x7"));
        assert!(!glob_matches("x[0-9]", "xa"));
        assert!(glob_matches("x[^0-9]", "xa"));
        assert!(!glob_matches("x[^0-9]", "x7"));
        assert!(glob_matches("v[[]0]", "v[0]"), "`[[]` is a literal `[`");
        assert!(glob_matches("[]]", "]"), "`]` first is a member");
        assert!(glob_matches("[a-]", "-"), "`-` last is a member");
        assert!(
            glob_matches("[a-c-e]", "-"),
            "`-` after a range is a member"
        );
        assert!(!glob_matches("[a-c-e]", "d"));
        assert!(glob_matches("*[*]*", "a * b"), "`[*]` is a literal `*`");
        assert!(
            !glob_matches("v[0", "v[0"),
            "an unclosed set matches nothing"
        );
    }
}
