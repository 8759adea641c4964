//! Implementation detail of the `dawdle` crate: use the macros through it.

use proc_macro::TokenStream;

/// See `dawdle::Watched`.
#[proc_macro_derive(Watched, attributes(dawdle))]
pub fn derive_watched(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
