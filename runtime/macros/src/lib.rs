//! `capture!`: writes a closure whose captured variables travel to executors.
//!
//! ```ignore
//! let stop = vec!["a".to_string()];
//! let threshold = 0.5;
//! rdd.filter(capture!(move |w: &(String, f64)| !stop.contains(&w.0) && w.1 > threshold))
//! ```
//!
//! expands to a block that checks every captured variable is serializable (a compile error that
//! names the variable otherwise), moves them into one `tessera::__private::Env`, and returns a
//! closure that captures only that `Env` and rebinds the variables inside its body: `Copy` ones
//! by value, others by reference — as a `Fn` closure would see them.
//!
//! Captured variables are found as the body's free, lower-case, single-segment paths that are
//! not bound inside the closure and not called as functions. When that guess is wrong (say a
//! variable is only used inside a macro), list them: `capture!([stop, threshold] move |w| ..)`.
//! A closure without `move` gets clones of the variables, leaving the originals usable.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote, quote_spanned};
use std::collections::BTreeSet;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{Expr, ExprClosure, Ident, Pat, Token, bracketed};

struct CaptureInput {
    explicit: Option<Vec<Ident>>,
    closure: ExprClosure,
}

impl Parse for CaptureInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let explicit = if input.peek(syn::token::Bracket) {
            let content;
            bracketed!(content in input);
            let names: Punctuated<Ident, Token![,]> = content.parse_terminated(Ident::parse, Token![,])?;
            Some(names.into_iter().collect())
        } else {
            None
        };
        let closure: ExprClosure = input.parse()?;
        Ok(CaptureInput { explicit, closure })
    }
}

#[proc_macro]
pub fn capture(input: TokenStream) -> TokenStream {
    let CaptureInput { explicit, closure } = syn::parse_macro_input!(input as CaptureInput);
    let captured = explicit.unwrap_or_else(|| free_variables(&closure));
    expand(closure, captured).into()
}

fn expand(closure: ExprClosure, captured: Vec<Ident>) -> proc_macro2::TokenStream {
    let is_move = closure.capture.is_some();
    let checks = captured.iter().map(|var| {
        let check = format_ident!("captured_variable_{}_must_be_serializable", var.to_string().trim_start_matches("r#"));
        quote_spanned! {var.span()=>
            fn #check<T: ::tessera::Capturable>(_: &T) {}
            #check(&#var);
        }
    });
    let values = captured.iter().map(|var| {
        if is_move { quote! { #var } } else { quote! { ::core::clone::Clone::clone(&#var) } }
    });
    let binds = captured.iter().enumerate().map(|(i, var)| {
        let index = syn::Index::from(i);
        quote! {
            #[allow(unused_variables)]
            let #var = (&::tessera::__private::Bind(&__tessera_env.value().#index)).bind();
        }
    });
    let inputs = &closure.inputs;
    let output = &closure.output;
    let body = &closure.body;
    let attrs = &closure.attrs;
    quote! {{
        #[allow(unused_imports)]
        use ::tessera::__private::{BindByRef as _, BindByValue as _};
        #(#checks)*
        let __tessera_env = ::tessera::__private::Env::new((#(#values,)*));
        #(#attrs)*
        move |#inputs| #output {
            #(#binds)*
            #body
        }
    }}
}

/// The variables the closure's body uses but does not bind.
fn free_variables(closure: &ExprClosure) -> Vec<Ident> {
    let mut finder = FreeVariables::default();
    for input in &closure.inputs {
        finder.bind_pattern(input);
    }
    finder.visit_expr(&closure.body);
    finder.used.retain(|name| !finder.bound.contains(name));
    finder.used.into_iter().map(|name| Ident::new(&name, Span::call_site())).collect()
}

#[derive(Default)]
struct FreeVariables {
    used: BTreeSet<String>,
    bound: BTreeSet<String>,
}

impl FreeVariables {
    fn bind_pattern(&mut self, pat: &Pat) {
        struct Binder<'a>(&'a mut BTreeSet<String>);
        impl<'ast> Visit<'ast> for Binder<'_> {
            fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
                self.0.insert(p.ident.to_string());
                syn::visit::visit_pat_ident(self, p);
            }
        }
        Binder(&mut self.bound).visit_pat(pat);
    }

    fn use_name(&mut self, ident: &Ident) {
        let name = ident.to_string();
        let first = name.trim_start_matches("r#").chars().next().unwrap_or('A');
        // Upper-case names are types, constants and enum variants, never local variables.
        if (first.is_lowercase() || first == '_') && name != "self" {
            self.used.insert(name);
        }
    }

    /// Expressions inside macro calls (`println!`, `vec!`, `format!`...), and inline format
    /// arguments such as `{name}`.
    fn visit_macro_tokens(&mut self, tokens: &proc_macro2::TokenStream) {
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(args) = syn::parse::Parser::parse2(parser, tokens.clone()) {
            for arg in &args {
                if let Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = arg {
                    self.use_inline_format_args(&s.value());
                }
                self.visit_expr(arg);
            }
        }
    }

    fn use_inline_format_args(&mut self, format: &str) {
        for piece in format.split('{').skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && !name.chars().next().unwrap().is_ascii_digit() {
                self.use_name(&Ident::new(&name, Span::call_site()));
            }
        }
    }
}

impl<'ast> Visit<'ast> for FreeVariables {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if p.qself.is_none() && p.path.leading_colon.is_none() && p.path.segments.len() == 1 {
            let segment = &p.path.segments[0];
            if segment.arguments.is_none() {
                self.use_name(&segment.ident);
            }
        }
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        // `f(x)`: `f` is a function, not a captured variable.
        if !matches!(&*call.func, Expr::Path(_)) {
            self.visit_expr(&call.func);
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }

    fn visit_pat(&mut self, pat: &'ast Pat) {
        self.bind_pattern(pat);
    }

    fn visit_expr_closure(&mut self, closure: &'ast ExprClosure) {
        for input in &closure.inputs {
            self.bind_pattern(input);
        }
        self.visit_expr(&closure.body);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_macro_tokens(&mac.tokens);
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {
        // Items inside the body (fns, structs) cannot capture.
    }
}
