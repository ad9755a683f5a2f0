//! The source of the crate compiled for one cell, and where each of its bytes came from.
//!
//! Every cell is a crate of its own, always named `ctx` and built with the same `-C metadata`,
//! so that a type a cell defines (and every earlier cell defined again, as each crate repeats
//! the session's items) has the same `TypeId` in every cell: variables of it can move from
//! one cell to the next. The crate has the session's crate attributes, `use`s and items, a
//! small support module (the C ABI the child process calls, and how results are shown), and
//! one exported function that takes the earlier variables the cell mentions out of the
//! child's store, runs the cell's statements inside `catch_unwind`, shows its last
//! expression and puts its variables back.
//!
//! Variables taken from the store are declared outside the closure that runs the cell, which
//! borrows them: a panic leaves them in place. Those the cell moves (`let y = x;`) are moved
//! into the closure, so putting them back does not compile; the engine then leaves them out
//! and compiles again.

use crate::cell_parts::CellParts;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// The name of the function the child calls.
pub const ENTRY: &str = "__tessera_cell_main";

/// What a line of generated code does, for the errors that point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineRole {
    /// Takes an earlier variable out of the store.
    Take(String),
    /// Puts a variable into the store.
    Put(String),
    /// Asks rustc for a variable's type (type-probe builds only).
    Probe(String),
}

/// Generated source and its map back to the cell.
pub struct CrateSource {
    /// The crate's `lib.rs`.
    pub text: String,
    /// `(start in text, length, start in the cell)` of each run of the cell's own code.
    segments: Vec<(usize, usize, usize)>,
    /// Generated lines (1-based) with a role.
    roles: BTreeMap<usize, LineRole>,
}

impl CrateSource {
    /// The cell's byte range for bytes `range` of the generated text, when they are the
    /// cell's own code.
    pub fn cell_range(&self, range: Range<usize>) -> Option<Range<usize>> {
        let index = self
            .segments
            .partition_point(|(start, _, _)| *start <= range.start)
            .checked_sub(1)?;
        let (start, length, cell_start) = self.segments[index];
        if range.start > start + length {
            return None;
        }
        let end = range.end.min(start + length);
        Some(cell_start + range.start - start..cell_start + end.max(range.start) - start)
    }

    /// What generated line `line` (1-based) does, if it has a role.
    pub fn role(&self, line: usize) -> Option<&LineRole> {
        self.roles.get(&line)
    }
}

/// How the crate is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// To run: the result is shown and variables are stored.
    Run,
    /// To learn the types of these variables from rustc's errors (`let _: () = (&x,);`).
    Probe(Vec<String>),
}

/// Everything the crate for a cell is made of.
pub struct CratePlan<'a> {
    /// The cell as typed.
    pub code: &'a str,
    /// The cell, split.
    pub parts: &'a CellParts,
    /// Crate attributes of the session.
    pub crate_attributes: &'a [String],
    /// `use`s and items of earlier cells that this cell does not replace, `use`s first.
    pub earlier_items: &'a [&'a str],
    /// Earlier variables the cell mentions, and their types.
    pub takes: &'a [(String, String)],
    /// Variables the cell binds that are to be stored.
    pub new_variables: &'a [String],
    /// Earlier variables to put back after the cell (taken, not bound again, not moved).
    pub put_back: &'a [String],
    /// The trait results are shown with first (`fn mime_bundle(&self) -> Vec<(String,
    /// String)>`), if any; `Debug` next.
    pub rich_display_trait: Option<&'a str>,
    /// Run or probe.
    pub purpose: Purpose,
}

struct Builder<'a> {
    code: &'a str,
    source: CrateSource,
    line: usize,
}

impl Builder<'_> {
    fn generated(&mut self, text: &str) {
        self.source.text.push_str(text);
        self.source.text.push('\n');
        self.line += text.matches('\n').count() + 1;
    }

    fn with_role(&mut self, text: &str, role: LineRole) {
        self.source.roles.insert(self.line, role);
        self.generated(text);
    }

    /// The cell's own code at `range`, wrapped in `before` and `after` on the same lines.
    fn push_cell(&mut self, before: &str, range: Range<usize>, after: &str) {
        self.source.text.push_str(before);
        let start = self.source.text.len();
        let text = &self.code[range.clone()];
        self.source.text.push_str(text);
        self.source.segments.push((start, text.len(), range.start));
        self.source.text.push_str(after);
        self.source.text.push('\n');
        self.line += before.matches('\n').count()
            + text.matches('\n').count()
            + after.matches('\n').count()
            + 1;
    }
}

/// The crate for `plan`.
pub fn generate(plan: &CratePlan<'_>) -> CrateSource {
    let mut b = Builder {
        code: plan.code,
        source: CrateSource {
            text: String::new(),
            segments: Vec::new(),
            roles: BTreeMap::new(),
        },
        line: 1,
    };
    b.generated(
        "#![allow(unused_imports, unused_variables, unused_mut, unused_parens, unused_braces, \
         unused_must_use, unreachable_code, dead_code, non_snake_case, non_camel_case_types, \
         non_upper_case_globals, redundant_semicolons, clippy::all)]",
    );
    for attribute in plan.crate_attributes {
        b.generated(attribute);
    }
    for attribute in &plan.parts.crate_attributes {
        b.generated(attribute);
    }
    for item in plan.earlier_items {
        b.generated(item);
    }
    let (uses, others): (Vec<_>, Vec<_>) = plan.parts.items.iter().partition(|i| i.is_use);
    for item in uses.into_iter().chain(others) {
        b.push_cell("", item.range.clone(), "");
    }
    b.generated(&support_module(plan.rich_display_trait));
    b.generated("#[unsafe(no_mangle)]");
    b.generated(&format!(
        "pub extern \"C\" fn {ENTRY}(abi: *const __tessera_cell::Abi) -> i32 {{"
    ));
    b.generated("__tessera_cell::enter(abi, |__cell| {");
    for (name, ty) in plan.takes {
        b.with_role(
            &format!("let mut {name}: {ty} = __cell.take::<{ty}>({name:?});"),
            LineRole::Take(name.clone()),
        );
    }
    b.generated(
        "let __outcome = ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| -> \
         ::std::result::Result<(), __tessera_cell::QuestionError> {",
    );
    for statement in &plan.parts.statements {
        b.push_cell("", statement.clone(), "");
    }
    match (&plan.purpose, &plan.parts.tail) {
        (Purpose::Run, Some(tail)) => {
            b.push_cell("{ let __tessera_value = &(", tail.clone(), ");");
            b.generated(
                "use __tessera_cell::{ViaRich as _, ViaDebug as _, ViaNothing as _};\n\
                 __cell.show((&&&__tessera_cell::Show(__tessera_value)).tessera_bundle()); }",
            );
        }
        (Purpose::Probe(_), Some(tail)) => b.push_cell("let _ = &(", tail.clone(), ");"),
        (_, None) => {}
    }
    match &plan.purpose {
        Purpose::Run => {
            for name in plan.new_variables {
                b.with_role(
                    &format!("__cell.put({name:?}, {name});"),
                    LineRole::Put(name.clone()),
                );
            }
        }
        Purpose::Probe(names) => {
            for name in names {
                // A tuple of a reference, so that rustc adds a note with the type's full path
                // (for a plain struct it gives only its short name) and nothing is moved.
                b.with_role(
                    &format!("let _: () = (&{name},);"),
                    LineRole::Probe(name.clone()),
                );
            }
        }
    }
    b.generated("::std::result::Result::Ok(())");
    b.generated("}));");
    if plan.purpose == Purpose::Run {
        for name in plan.put_back {
            b.with_role(
                &format!("__cell.put({name:?}, {name});"),
                LineRole::Put(name.clone()),
            );
        }
    }
    b.generated("__outcome");
    b.generated("})");
    b.generated("}");
    b.source
}

/// The module every cell crate has: the C ABI shared with the child process
/// ([`crate::runner::Abi`] is the same struct on the other side), the store's typed access,
/// and the choice of how a result is shown (the rich trait, else `Debug`, else nothing: autoref
/// specialisation, decided at compile time in one build).
fn support_module(rich_display_trait: Option<&str>) -> String {
    let mut module = String::from(
        r#"mod __tessera_cell {
use std::ffi::c_void;
#[repr(C)]
pub struct Abi {
    pub version: u32,
    pub store: *mut c_void,
    pub take: extern "C" fn(*mut c_void, *const u8, usize, u64) -> *mut c_void,
    pub put: extern "C" fn(*mut c_void, *const u8, usize, *mut c_void, u64, *const u8, usize, unsafe extern "C" fn(*mut c_void)),
    pub report: extern "C" fn(*mut c_void, u32, *const u8, usize),
}
pub struct Cell<'a> { abi: &'a Abi }
struct Fnv(u64);
impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 { self.0 }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes { self.0 = (self.0 ^ *byte as u64).wrapping_mul(0x100000001b3); }
    }
}
fn type_hash<T: 'static>() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = Fnv(0xcbf29ce484222325);
    std::any::TypeId::of::<T>().hash(&mut hasher);
    hasher.finish()
}
unsafe extern "C" fn drop_box<T>(value: *mut c_void) {
    drop(unsafe { Box::from_raw(value as *mut T) });
}
impl Cell<'_> {
    pub fn take<T: 'static>(&self, name: &str) -> T {
        let value = (self.abi.take)(self.abi.store, name.as_ptr(), name.len(), type_hash::<T>());
        if value.is_null() {
            panic!("the session lost variable `{name}` or its type changed; define it again");
        }
        *unsafe { Box::from_raw(value as *mut T) }
    }
    pub fn put<T: 'static>(&self, name: &str, value: T) {
        let type_name = std::any::type_name::<T>();
        let value = Box::into_raw(Box::new(value)) as *mut c_void;
        (self.abi.put)(self.abi.store, name.as_ptr(), name.len(), value, type_hash::<T>(),
            type_name.as_ptr(), type_name.len(), drop_box::<T>);
    }
    pub fn show(&self, bundle: Vec<(String, String)>) {
        for (mime, content) in bundle {
            let part = format!("{mime}\0{content}");
            (self.abi.report)(self.abi.store, 0, part.as_ptr(), part.len());
        }
    }
    fn report(&self, kind: u32, text: &str) {
        (self.abi.report)(self.abi.store, kind, text.as_ptr(), text.len());
    }
}
pub struct QuestionError(String);
impl<E: std::fmt::Display> From<E> for QuestionError {
    fn from(error: E) -> QuestionError { QuestionError(error.to_string()) }
}
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload.downcast_ref::<&str>().map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
pub fn enter(abi: *const Abi, body: impl FnOnce(&Cell) -> std::thread::Result<Result<(), QuestionError>>) -> i32 {
    let cell = Cell { abi: unsafe { &*abi } };
    let status = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&cell))) {
        Ok(Ok(Ok(()))) => 0,
        Ok(Ok(Err(QuestionError(message)))) => { cell.report(2, &message); 2 }
        Ok(Err(payload)) | Err(payload) => { cell.report(1, &panic_message(&*payload)); 1 }
    };
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    status
}
pub struct Show<'a, T: ?Sized>(pub &'a T);
pub trait ViaRich { fn tessera_bundle(&self) -> Vec<(String, String)>; }
pub trait ViaDebug { fn tessera_bundle(&self) -> Vec<(String, String)>; }
impl<T: std::fmt::Debug + ?Sized> ViaDebug for &Show<'_, T> {
    fn tessera_bundle(&self) -> Vec<(String, String)> {
        vec![("text/plain".to_string(), format!("{:?}", self.0))]
    }
}
pub trait ViaNothing { fn tessera_bundle(&self) -> Vec<(String, String)>; }
impl<T: ?Sized> ViaNothing for Show<'_, T> {
    fn tessera_bundle(&self) -> Vec<(String, String)> { Vec::new() }
}
"#,
    );
    if let Some(rich) = rich_display_trait {
        let _ = write!(
            module,
            "impl<T: {rich} + ?Sized> ViaRich for &&Show<'_, T> {{\n    \
             fn tessera_bundle(&self) -> Vec<(String, String)> {{ {rich}::mime_bundle(self.0) }}\n}}\n"
        );
    }
    module.push('}');
    module
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell_parts::split;

    #[test]
    fn the_cells_code_maps_back_to_the_cell() {
        let code = "let y = x + 1;\ny * 2";
        let parts = split(code);
        let takes = [("x".to_string(), "u64".to_string())];
        let source = generate(&CratePlan {
            code,
            parts: &parts,
            crate_attributes: &[],
            earlier_items: &["fn f() {}"],
            takes: &takes,
            new_variables: &["y".to_string()],
            put_back: &["x".to_string()],
            rich_display_trait: None,
            purpose: Purpose::Run,
        });
        let at = source.text.find("y * 2").unwrap();
        assert_eq!(source.cell_range(at..at + 5), Some(15..20));
        let at = source.text.find("let y = x + 1;").unwrap();
        assert_eq!(source.cell_range(at + 4..at + 5), Some(4..5));
        assert_eq!(source.cell_range(0..5), None);
        let line_of = |needle: &str| {
            source.text[..source.text.find(needle).unwrap()]
                .matches('\n')
                .count()
                + 1
        };
        assert_eq!(
            source.role(line_of("let mut x: u64")),
            Some(&LineRole::Take("x".into()))
        );
        assert_eq!(
            source.role(line_of("__cell.put(\"y\"")),
            Some(&LineRole::Put("y".into()))
        );
        assert_eq!(
            source.role(line_of("__cell.put(\"x\"")),
            Some(&LineRole::Put("x".into()))
        );
    }
}
