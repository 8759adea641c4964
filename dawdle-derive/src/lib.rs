//! Implementation detail of the `dawdle` crate: use the macros through it.
//!
//! Each macro lives in its own module and runs the same pipeline: parse the
//! input into a typed description (`ast`), check it and resolve defaults
//! (`check`, yielding a `model`), then expand the model into code (`expand`).
//! Errors are collected along the way (`ctxt`); when there are any, they are
//! emitted next to a stub (`Watched`) or the untouched function (`handler`)
//! so that one mistake shows one error.

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod ctxt;
mod handler;
mod meta;
mod signal;
mod watched;

/// See `dawdle::Watched`.
#[proc_macro_derive(Watched, attributes(dawdle))]
pub fn derive_watched(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    watched::derive(&input).into()
}

/// See `dawdle::Signal`.
#[proc_macro_derive(Signal, attributes(dawdle))]
pub fn derive_signal(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    signal::derive(&input).into()
}

/// See `dawdle::handler`.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::attribute(args.into(), item.into()).into()
}
