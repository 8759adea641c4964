//! On error: the errors, next to a stub `impl Watched` so that code using
//! the type does not add errors of its own (thiserror's `fallback.rs`).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{parse_quote, DeriveInput};

use super::attr::{self, CratePath};
use crate::ctxt::Ctxt;

pub(crate) fn expand(node: &DeriveInput, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    // The stub needs the path to dawdle, and `Watched: 'static` rules out a
    // stub for a struct with generics or lifetimes: they get the error alone.
    let cx = Ctxt::new();
    let krate = attr::Struct::parse(&node.attrs, &cx).krate;
    // The attributes' errors, if any, are in `error` already: this second
    // reading is only for the path.
    let _ = cx.check();
    let krate: syn::Path = match krate {
        CratePath::Default => parse_quote!(::dawdle),
        CratePath::Given(path) => path,
        CratePath::Invalid => return error,
    };
    if !node.generics.params.is_empty() {
        return error;
    }
    let ident = &node.ident;
    quote! {
        #error

        const _: () = {
            #[automatically_derived]
            impl #krate::Watched for #ident
            where
                // Work around trivial bounds being unstable: the type may not
                // be `Send + Sync`, and that is not the error to show.
                // https://github.com/rust-lang/rust/issues/48214
                for<'workaround> #ident: ::core::marker::Send + ::core::marker::Sync,
            {
                const TABLE: &'static #krate::Table = ::core::unreachable!();

                fn decode(
                    _: #krate::decode::Row<'_>,
                ) -> ::core::result::Result<Self, #krate::DecodeError> {
                    ::core::unreachable!()
                }
            }
        };
    }
}
