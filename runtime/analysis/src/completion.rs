//! Completions: rust-analyzer's items at a position, reduced to what a REPL or a Jupyter client
//! shows (the name to insert, a kind, a detail) over one range of the source.

use std::collections::HashSet;

use ra_ap_hir::PrefixKind;
use ra_ap_ide::{
    CompletionConfig, CompletionFieldsToResolve, CompletionItem, CompletionItemKind,
    RaFixtureConfig, SymbolKind,
};
use ra_ap_ide_db::imports::insert_use::{ImportGranularity, InsertUseConfig};

/// The completions at one position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completions {
    /// Byte offset where the text the completions replace starts (the part of the name already
    /// typed).
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
    /// The candidates, most relevant first.
    pub items: Vec<Completion>,
}

/// One candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// What to insert: the bare name (`push`, `vec!`), without arguments or snippet syntax.
    pub name: String,
    /// What it is, as a lowercase word: function, method, variable, field, module, struct,
    /// enum, trait, macro, keyword, ...
    pub kind: &'static str,
    /// The type or signature rust-analyzer gives, if any (`pub fn len(&self) -> usize`).
    pub detail: Option<String>,
}

/// What rust-analyzer is asked for. Everything that would insert more than a name is off:
/// snippets (argument placeholders, `vec![$0]`), postfix templates and automatic `.into_iter()`
/// or `.await` rewrite text away from the cursor, and imports on the fly edit elsewhere in the
/// file.
pub(crate) fn config() -> CompletionConfig<'static> {
    CompletionConfig {
        enable_postfix_completions: false,
        enable_imports_on_the_fly: false,
        enable_self_on_the_fly: false,
        enable_auto_iter: false,
        enable_auto_await: false,
        enable_private_editable: true,
        enable_term_search: false,
        term_search_fuel: 0,
        full_function_signatures: true,
        callable: None,
        add_colons_to_module: false,
        add_semicolon_to_unit: false,
        snippet_cap: None,
        insert_use: InsertUseConfig {
            granularity: ImportGranularity::Crate,
            enforce_granularity: false,
            prefix_kind: PrefixKind::Plain,
            group: true,
            skip_glob_imports: true,
        },
        prefer_no_std: false,
        prefer_prelude: true,
        prefer_absolute: false,
        snippets: Vec::new(),
        limit: None,
        // Nothing deferred: details are wanted for every item, and there is no second request.
        fields_to_resolve: CompletionFieldsToResolve::empty(),
        exclude_flyimport: Vec::new(),
        exclude_traits: &[],
        ra_fixture: RaFixtureConfig::default(),
    }
}

/// Reduces rust-analyzer's `items` for the cursor at `offset` of `source`.
pub(crate) fn collect(source: &str, offset: usize, items: Vec<CompletionItem>) -> Completions {
    // Every item is for the same identifier (the one at the cursor), so any item's range is it.
    let Some(range) = items.first().map(|item| item.source_range) else {
        return Completions {
            start: offset,
            end: offset,
            items: Vec::new(),
        };
    };
    let mut candidates: Vec<(u32, Completion)> = Vec::new();
    for item in items {
        // One edit replacing that identifier; anything else inserts more than a name.
        let mut edits = item.text_edit.iter();
        let (Some(edit), None) = (edits.next(), edits.next()) else {
            continue;
        };
        if edit.delete != range {
            continue;
        }
        candidates.push((
            item.relevance.score(),
            Completion {
                name: edit.insert.clone(),
                kind: kind_word(item.kind),
                detail: item.detail,
            },
        ));
    }
    let (start, end) = (usize::from(range.start()), usize::from(range.end()));
    // rust-analyzer returns everything that fuzzily matches and leaves filtering to the editor;
    // a REPL shows the list as is, so keep what starts with the text typed so far.
    let typed = source
        .get(start..offset.clamp(start, end))
        .unwrap_or_default()
        .to_lowercase();
    candidates.retain(|(_, item)| item.name.to_lowercase().starts_with(&typed));
    candidates.sort_by(|(score_a, a), (score_b, b)| {
        score_b.cmp(score_a).then_with(|| a.name.cmp(&b.name))
    });
    // The same name can come twice (an inherent method and a trait's, a macro in two preludes);
    // the first is the most relevant.
    let mut seen = HashSet::new();
    let items = candidates
        .into_iter()
        .map(|(_, item)| item)
        .filter(|item| seen.insert(item.name.clone()))
        .collect();
    Completions { start, end, items }
}

/// `kind` as one lowercase word.
fn kind_word(kind: CompletionItemKind) -> &'static str {
    match kind {
        CompletionItemKind::SymbolKind(symbol) => match symbol {
            SymbolKind::Attribute | SymbolKind::BuiltinAttr | SymbolKind::DeriveHelper => {
                "attribute"
            }
            SymbolKind::Const => "constant",
            SymbolKind::ConstParam => "constant",
            SymbolKind::CrateRoot | SymbolKind::Module | SymbolKind::ToolModule => "module",
            SymbolKind::Derive => "derive",
            SymbolKind::Enum => "enum",
            SymbolKind::Field => "field",
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Impl => "impl",
            SymbolKind::InlineAsmRegOrRegClass => "register",
            SymbolKind::Label => "label",
            SymbolKind::LifetimeParam => "lifetime",
            SymbolKind::Local | SymbolKind::ValueParam | SymbolKind::SelfParam => "variable",
            SymbolKind::Macro | SymbolKind::ProcMacro => "macro",
            SymbolKind::SelfType | SymbolKind::TypeAlias | SymbolKind::TypeParam => "type",
            SymbolKind::Static => "static",
            SymbolKind::Struct => "struct",
            SymbolKind::Trait => "trait",
            SymbolKind::Union => "union",
            SymbolKind::Variant => "variant",
        },
        CompletionItemKind::Binding => "variable",
        CompletionItemKind::BuiltinType | CompletionItemKind::InferredType => "type",
        CompletionItemKind::Keyword => "keyword",
        CompletionItemKind::Snippet => "snippet",
        CompletionItemKind::UnresolvedReference => "unresolved",
        CompletionItemKind::Expression => "expression",
    }
}
