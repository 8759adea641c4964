//! The options of `#[dawdle::handler(...)]`, as written: syntax is checked
//! here, meaning in `check`.

use proc_macro2::TokenStream;
use syn::meta;
use syn::parse::Parser;
use syn::{LitStr, Path};

use crate::ctxt::Ctxt;
use crate::meta::{crate_path, string, Slot};

/// What the keys are called in messages.
const KIND: &str = "handler option";
const KEYS: &[&str] = &["name", "crate"];

/// `#[dawdle::handler(name = "...", crate = "...")]`.
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    /// `None` when not given, or given but not a path (reported).
    pub(crate) krate: Option<Path>,
}

impl Options {
    pub(crate) fn parse(args: TokenStream, cx: &Ctxt) -> Options {
        // A value that is not a string still counts as the key's occurrence.
        let mut name = Slot::new(KIND, "name");
        let mut krate = Slot::new(KIND, "crate");
        let parser = meta::parser(|meta| {
            let path = &meta.path;
            if path.is_ident("name") {
                name.set(cx, path, string(&meta, "name", cx)?);
            } else if path.is_ident("crate") {
                let lit = string(&meta, "crate", cx)?;
                krate.set_with(cx, path, || lit.and_then(|lit| crate_path(&lit, cx)));
            } else {
                let unknown = quote::quote!(#path).to_string().replace(' ', "");
                return Err(syn::Error::new_spanned(
                    path,
                    format_args!(
                        "unknown handler option `{unknown}`; expected {}",
                        KEYS.iter()
                            .map(|key| format!("`{key}`"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ));
            }
            Ok(())
        });
        if let Err(error) = parser.parse2(args) {
            cx.push(error);
        }
        Options {
            name: name.get().flatten(),
            krate: krate.get().flatten(),
        }
    }
}
