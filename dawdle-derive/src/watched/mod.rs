//! `#[derive(Watched)]`: parse (`ast`, `attr`) → check (`check`, yielding a
//! `model`) → expand (`expand`), or `fallback` on error.

mod ast;
mod attr;
mod check;
mod expand;
mod fallback;
mod model;

use proc_macro2::TokenStream;
use syn::DeriveInput;

/// The whole derive, on `proc_macro2` tokens so that tests can call it.
pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    match ast::Input::from_syn(node).and_then(|input| check::check(&input)) {
        Ok(table) => expand::expand(&table),
        Err(error) => fallback::expand(node, &error),
    }
}
