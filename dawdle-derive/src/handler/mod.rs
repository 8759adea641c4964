//! `#[dawdle::handler]`: parse (`ast`, `attr`) → check (`check`, yielding a
//! `model`) → expand (`expand`). The function itself is always emitted as
//! written, with the registration beside it or, on error, the errors
//! (tokio's `entry.rs`): one mistake, one error.

mod ast;
mod attr;
mod check;
mod expand;
mod model;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// The whole attribute, on `proc_macro2` tokens so that tests can call it.
pub(crate) fn attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let registration = match ast::Input::parse(args, item.clone(), &cx) {
        Ok(input) => check::check(&input, cx).map(|handler| expand::expand(&handler)),
        Err(error) => {
            cx.push(error);
            cx.finish(TokenStream::new())
        }
    };
    let registration = registration.unwrap_or_else(syn::Error::into_compile_error);
    quote::quote! {
        #item
        #registration
    }
}
