//! The options of `#[dawdle::handler(...)]`, as written: syntax is checked
//! here, meaning in `check`.

use proc_macro2::TokenStream;
use syn::meta;
use syn::parse::Parser;
use syn::{LitStr, Path};

use crate::ctxt::Ctxt;
use crate::meta::string;

const KEYS: &[&str] = &["name", "crate"];

/// `#[dawdle::handler(name = "...", crate = "...")]`.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    /// `None` when not given, or given but not a path (reported).
    pub(crate) krate: Option<Path>,
}

impl Options {
    pub(crate) fn parse(args: TokenStream, cx: &mut Ctxt) -> Options {
        let mut options = Options::default();
        let mut seen_name = false;
        let mut seen_crate = false;
        let parser = meta::parser(|meta| {
            let path = &meta.path;
            if path.is_ident("name") {
                let lit = string(&meta, "name", cx)?;
                if once(&mut seen_name, cx, path, "name") {
                    options.name = lit;
                }
            } else if path.is_ident("crate") {
                let lit = string(&meta, "crate", cx)?;
                if once(&mut seen_crate, cx, path, "crate") {
                    options.krate = lit.and_then(|lit| match lit.parse::<Path>() {
                        Ok(path) => Some(path),
                        Err(_) => {
                            cx.error_spanned_by(
                                lit,
                                "expected a path to the dawdle crate, such as `crate = \"::dawdle\"`",
                            );
                            None
                        }
                    });
                }
            } else {
                let name = quote::quote!(#path).to_string().replace(' ', "");
                return Err(syn::Error::new_spanned(
                    path,
                    format_args!(
                        "unknown handler option `{name}`; expected {}",
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
        options
    }
}

/// Whether this is the first occurrence of option `key`; reports the others.
fn once(seen: &mut bool, cx: &mut Ctxt, path: &Path, key: &str) -> bool {
    if *seen {
        cx.error_spanned_by(path, format_args!("duplicate handler option `{key}`"));
        false
    } else {
        *seen = true;
        true
    }
}
