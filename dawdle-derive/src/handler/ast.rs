//! Parsing: the function and the options, read but not yet checked. The
//! one mistake that stops the macro here is an item that is not a function:
//! there is no signature to check.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Item, ItemFn};

use super::attr::Options;
use crate::ctxt::Ctxt;

/// `#[dawdle::handler(options)] fn ...`.
pub(crate) struct Input {
    pub(crate) options: Options,
    pub(crate) function: ItemFn,
}

impl Input {
    /// Option errors go to `cx`, to be reported with those of the signature.
    pub(crate) fn parse(args: TokenStream, item: TokenStream, cx: &Ctxt) -> syn::Result<Input> {
        let options = Options::parse(args, cx);
        let function = match syn::parse2::<Item>(item)? {
            Item::Fn(function) => function,
            other => {
                return Err(syn::Error::new(
                    keyword(&other),
                    "`#[dawdle::handler]` goes on an `async fn` that takes an event, such as \
                     `async fn welcome(event: Insert<User>)`",
                ))
            }
        };
        Ok(Input { options, function })
    }
}

/// The keyword that says what the item is, for an error that does not
/// cover the whole item.
fn keyword(item: &Item) -> Span {
    match item {
        Item::Const(item) => item.const_token.span,
        Item::Enum(item) => item.enum_token.span,
        Item::ExternCrate(item) => item.extern_token.span,
        Item::ForeignMod(item) => item.abi.extern_token.span,
        Item::Impl(item) => item.impl_token.span,
        Item::Macro(item) => item.mac.path.span(),
        Item::Mod(item) => item.mod_token.span,
        Item::Static(item) => item.static_token.span,
        Item::Struct(item) => item.struct_token.span,
        Item::Trait(item) => item.trait_token.span,
        Item::TraitAlias(item) => item.trait_token.span,
        Item::Type(item) => item.type_token.span,
        Item::Union(item) => item.union_token.span,
        Item::Use(item) => item.use_token.span,
        _ => item.span(),
    }
}
