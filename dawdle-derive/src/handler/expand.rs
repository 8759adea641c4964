//! Expansion: the registration, emitted beside the untouched function.
//!
//! The compiler checks the types, each at exactly one place, spanned on the
//! tokens it is about, so that one mistake is one error (axum's
//! `debug_handler`): `register` checks that the argument is an event type,
//! `call` that the return type is a `HandlerResult` and that the future is
//! `Send`. Every type is inferred from the function rather than written
//! again, so that a type that does not resolve is reported once, in the
//! function itself.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;

use super::model::Handler;

pub(crate) fn expand(handler: &Handler<'_>) -> TokenStream {
    let krate = &handler.krate;
    let ident = handler.ident;
    let cfgs = &handler.cfgs;
    let name = match handler.name {
        Some(name) => quote!(#name),
        None => {
            let suffix = format!("::{}", ident.unraw());
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    // The function, named three times with the spans of the errors that
    // each use reports.
    let for_event = spanned_over(ident, &handler.event);
    let for_send = ident;
    let for_output = match handler.output {
        Some(ty) => spanned_over(ident, ty),
        None => ident.to_token_stream(),
    };
    // `mixed_site`: no name of the user's can be shadowed by it.
    let arg = Ident::new("__arg", Span::mixed_site());
    // Items are not hygienic: the one item beside the function must not
    // take its name.
    let konst = if ident.unraw() == "HANDLER" {
        "HANDLER_"
    } else {
        "HANDLER"
    };
    let konst = Ident::new(konst, Span::call_site());

    quote! {
        #(#cfgs)*
        const _: () = {
            const #konst: #krate::__private::Handler = #krate::__private::register(
                #name,
                |#arg| #krate::__private::call(#arg, #for_send, #for_output),
                #for_event,
            );
            #krate::__private::inventory::submit! { #konst }
        };
    }
}

/// `ident::<>`, an expression naming the function whose span is that of
/// `tokens`: from the start of its first token to the end of its last.
fn spanned_over(ident: &Ident, tokens: impl ToTokens) -> TokenStream {
    let mut tokens = tokens.into_token_stream().into_iter();
    let first = tokens
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    let mut ident = ident.clone();
    ident.set_span(first);
    quote_spanned!(last=> #ident::<>)
}
