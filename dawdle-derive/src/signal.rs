//! `#[derive(Signal)]`: the wire name of an application event type, and its
//! registration. Small enough for one module: the attribute is parsed and
//! checked in one pass, then expanded.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr, Path};

use crate::ctxt::Ctxt;
use crate::meta::{crate_path, string, Slot};

const KIND: &str = "dawdle attribute";

/// The checked input.
struct Signal<'a> {
    ident: &'a syn::Ident,
    name: Option<LitStr>,
    krate: Path,
}

pub(crate) fn derive(node: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let signal = parse(node, &cx);
    // A generic type has no one impl to write.
    let expanded = if node.generics.params.is_empty() {
        expand(&signal)
    } else {
        TokenStream::new()
    };
    match cx.check() {
        Ok(()) => expanded,
        // The impl too, so that uses of the type report nothing more.
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #expanded)
        }
    }
}

fn parse<'a>(node: &'a DeriveInput, cx: &Ctxt) -> Signal<'a> {
    let mut name = Slot::new(KIND, "name");
    let mut krate = Slot::new(KIND, "crate");
    for attr in node.attrs.iter().filter(|a| a.path().is_ident("dawdle")) {
        let result = attr.parse_nested_meta(|meta| {
            let path = &meta.path;
            if path.is_ident("name") {
                if let Some(lit) = string(&meta, "name", cx)? {
                    if lit.value().is_empty() {
                        cx.error_spanned_by(&lit, "a signal's name cannot be empty");
                    }
                    name.set(cx, path, lit);
                }
            } else if path.is_ident("crate") {
                if let Some(parsed) = string(&meta, "crate", cx)?.and_then(|lit| crate_path(&lit, cx)) {
                    krate.set(cx, path, parsed);
                }
            } else {
                return Err(meta.error(
                    "unknown dawdle attribute of a Signal type; expected `name = \"...\"` or `crate = \"...\"`",
                ));
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    if !node.generics.params.is_empty() {
        cx.error_spanned_by(
            &node.generics,
            "a Signal type cannot be generic: its one wire name would stand for every instance",
        );
    }
    Signal {
        ident: &node.ident,
        name: name.get(),
        krate: krate.get().unwrap_or_else(|| syn::parse_quote!(::dawdle)),
    }
}

fn expand(signal: &Signal<'_>) -> TokenStream {
    let Signal { ident, name, krate } = signal;
    let type_name = format!("::{ident}");
    let type_name = quote!(::core::concat!(::core::module_path!(), #type_name));
    let name = match name {
        Some(name) => quote!(#name),
        None => type_name.clone(),
    };
    quote! {
        const _: () = {
            impl #krate::Signal for #ident {
                const NAME: &'static str = #name;
                const SIGNAL: &'static #krate::__private::SignalType = &#krate::__private::SignalType {
                    name: #name,
                    type_name: #type_name,
                };
            }
            #krate::__private::inventory::submit! {
                #krate::__private::SignalRegistration {
                    signal: <#ident as #krate::Signal>::SIGNAL,
                }
            }
        };
    }
}
