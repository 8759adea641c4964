//! Implementation detail of the `dawdle` crate: use the macros through it.
//!
//! Each macro lives in its own module and runs the same pipeline: parse the
//! input into a typed description (`ast`), check it and resolve defaults
//! (`check`, yielding a `model`), then expand the model into code (`expand`).
//! Errors are collected along the way (`ctxt`); when there are any, `fallback`
//! emits them next to a stub so that one mistake shows one error.

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod ctxt;
mod watched;

/// See `dawdle::Watched`.
#[proc_macro_derive(Watched, attributes(dawdle))]
pub fn derive_watched(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    watched::derive(&input).into()
}
