//! A toy `KernelBackend` for exercising the kernel's protocol layer without the Tessera
//! session: it understands just enough Rust-looking input to produce every kind of
//! output (streams, results, rich displays with live updates, errors, panics, and a
//! cell that runs until interrupted). Statements are separated by `;`:
//!
//! * `println!("text")`, `eprintln!("text")`: a stream.
//! * integer arithmetic with `+ - *` and parentheses, e.g. `40 + 2`: the value, if it
//!   is the last statement and the cell does not end in `;`.
//! * an unknown name: a "cannot find value" error.
//! * `progress(N)`: a display with id, updated N times.
//! * `html("…")`: a `text/html` display.
//! * `sleep(MS)`, `wait` (until interrupted), `panic`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tessera_kernel::{
    Completion, ExecuteError, ExecuteOutput, Interrupter, IsComplete, KernelBackend, LanguageInfo,
    MimeBundle, OutputSink,
};

const WORDS: &[&str] = &[
    "eprintln!",
    "html",
    "panic",
    "println!",
    "progress",
    "sleep",
    "wait",
];

#[derive(Default)]
pub struct ToyBackend {
    interrupted: Arc<AtomicBool>,
    displays: usize,
}

impl ToyBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl KernelBackend for ToyBackend {
    fn execute(
        &mut self,
        code: &str,
        sink: &mut dyn OutputSink,
    ) -> Result<ExecuteOutput, ExecuteError> {
        let statements = split_statements(code);
        let ends_with_semicolon = code.trim_end().ends_with(';');
        let mut value = None;
        for (index, statement) in statements.iter().enumerate() {
            let statement = statement.trim();
            let last = index + 1 == statements.len();
            value = None;
            if let Some(text) = macro_arg(statement, "println!") {
                sink.stdout(&format!("{text}\n"));
            } else if let Some(text) = macro_arg(statement, "eprintln!") {
                sink.stderr(&format!("{text}\n"));
            } else if let Some(html) = macro_arg(statement, "html") {
                sink.display(
                    MimeBundle::plain(html.clone()).with("text/html", html),
                    None,
                    false,
                );
            } else if let Some(n) = call_arg(statement, "progress") {
                self.displays += 1;
                let id = format!("progress-{}", self.displays);
                sink.display(MimeBundle::plain(format!("0/{n}")), Some(&id), false);
                for i in 1..=n {
                    sink.display(MimeBundle::plain(format!("{i}/{n}")), Some(&id), true);
                }
            } else if let Some(ms) = call_arg(statement, "sleep") {
                std::thread::sleep(Duration::from_millis(ms as u64));
            } else if statement == "wait" {
                sink.stdout("waiting\n");
                while !self.interrupted.swap(false, Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Err(ExecuteError::new("Interrupted", "the cell was interrupted"));
            } else if statement == "panic" {
                panic!("toy backend panicked on purpose");
            } else if !statement.is_empty() {
                let number = eval(statement)?;
                if last && !ends_with_semicolon {
                    value = Some(number);
                }
            }
        }
        Ok(match value {
            Some(number) => ExecuteOutput::plain(number.to_string()),
            None => ExecuteOutput::none(),
        })
    }

    fn complete(&mut self, code: &str, cursor_pos: usize) -> Completion {
        let start = code[..cursor_pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'))
            .map(|i| i + code[i..].chars().next().unwrap().len_utf8())
            .unwrap_or(0);
        let prefix = &code[start..cursor_pos];
        Completion {
            matches: WORDS
                .iter()
                .filter(|w| !prefix.is_empty() && w.starts_with(prefix))
                .map(|w| w.to_string())
                .collect(),
            cursor_start: start,
            cursor_end: cursor_pos,
            types: Vec::new(),
        }
    }

    fn inspect(&mut self, code: &str, cursor_pos: usize) -> Option<MimeBundle> {
        let start = code[..cursor_pos]
            .rfind(|c: char| !c.is_alphanumeric())
            .map(|i| i + 1)
            .unwrap_or(0);
        let end = code[cursor_pos..]
            .find(|c: char| !c.is_alphanumeric())
            .map(|i| cursor_pos + i)
            .unwrap_or(code.len());
        match &code[start..end] {
            "println" => Some(MimeBundle::plain(
                "println!: prints to the standard output, with a newline",
            )),
            _ => None,
        }
    }

    fn is_complete(&mut self, code: &str) -> IsComplete {
        let depth: i64 = code
            .chars()
            .map(|c| match c {
                '(' | '{' | '[' => 1,
                ')' | '}' | ']' => -1,
                _ => 0,
            })
            .sum();
        match depth {
            0 => IsComplete::Complete,
            d if d > 0 => IsComplete::Incomplete {
                indent: "    ".into(),
            },
            _ => IsComplete::Invalid,
        }
    }

    fn interrupter(&self) -> Interrupter {
        let flag = self.interrupted.clone();
        Box::new(move || flag.store(true, Ordering::SeqCst))
    }

    fn language_info(&self) -> LanguageInfo {
        LanguageInfo::rust("1.88.0")
    }

    fn banner(&self) -> String {
        "Tessera toy backend (protocol tests only)".into()
    }
}

/// Splits on `;` outside string literals.
fn split_statements(code: &str) -> Vec<String> {
    let mut statements = vec![String::new()];
    let mut in_string = false;
    for c in code.chars() {
        match c {
            '"' => in_string = !in_string,
            ';' if !in_string => {
                statements.push(String::new());
                continue;
            }
            _ => {}
        }
        statements.last_mut().unwrap().push(c);
    }
    statements
}

/// `name("text")` or `name!("text")` → `text`.
fn macro_arg(statement: &str, name: &str) -> Option<String> {
    let inner = statement
        .strip_prefix(name)?
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    Some(
        inner
            .trim()
            .strip_prefix('"')?
            .strip_suffix('"')?
            .to_owned(),
    )
}

/// `name(123)` → 123.
fn call_arg(statement: &str, name: &str) -> Option<i64> {
    let inner = statement
        .strip_prefix(name)?
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    inner.trim().parse().ok()
}

/// Integer arithmetic: `+ - *` with the usual precedence, and parentheses.
fn eval(expression: &str) -> Result<i64, ExecuteError> {
    let tokens = tokenize(expression)?;
    let mut pos = 0;
    let value = sum(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(ExecuteError::new(
            "SyntaxError",
            format!("cannot parse `{expression}`"),
        ));
    }
    Ok(value)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Num(i64),
    Op(char),
}

fn tokenize(expression: &str) -> Result<Vec<Token>, ExecuteError> {
    let mut tokens = Vec::new();
    let mut chars = expression.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_digit() {
            let mut n = 0i64;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as i64);
                chars.next();
            }
            tokens.push(Token::Num(n));
        } else if "+-*()".contains(c) {
            tokens.push(Token::Op(c));
            chars.next();
        } else if c.is_alphabetic() || c == '_' {
            let mut name = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                name.push(c);
                chars.next();
            }
            let mut error =
                ExecuteError::new("E0425", format!("cannot find value `{name}` in this scope"));
            error.traceback = vec![
                format!("error[E0425]: cannot find value `{name}` in this scope"),
                format!("  not found in this scope: {name}"),
            ];
            return Err(error);
        } else {
            return Err(ExecuteError::new(
                "SyntaxError",
                format!("unexpected `{c}`"),
            ));
        }
    }
    Ok(tokens)
}

fn sum(tokens: &[Token], pos: &mut usize) -> Result<i64, ExecuteError> {
    let mut value = product(tokens, pos)?;
    while let Some(Token::Op(op @ ('+' | '-'))) = tokens.get(*pos) {
        *pos += 1;
        let rhs = product(tokens, pos)?;
        value = if *op == '+' { value + rhs } else { value - rhs };
    }
    Ok(value)
}

fn product(tokens: &[Token], pos: &mut usize) -> Result<i64, ExecuteError> {
    let mut value = atom(tokens, pos)?;
    while let Some(Token::Op('*')) = tokens.get(*pos) {
        *pos += 1;
        value *= atom(tokens, pos)?;
    }
    Ok(value)
}

fn atom(tokens: &[Token], pos: &mut usize) -> Result<i64, ExecuteError> {
    let token = tokens.get(*pos).cloned();
    *pos += 1;
    match token {
        Some(Token::Num(n)) => Ok(n),
        Some(Token::Op('-')) => Ok(-atom(tokens, pos)?),
        Some(Token::Op('(')) => {
            let value = sum(tokens, pos)?;
            match tokens.get(*pos) {
                Some(Token::Op(')')) => {
                    *pos += 1;
                    Ok(value)
                }
                _ => Err(ExecuteError::new("SyntaxError", "missing `)`")),
            }
        }
        _ => Err(ExecuteError::new("SyntaxError", "expected a number")),
    }
}
