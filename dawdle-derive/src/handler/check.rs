//! Checking: the signature has the shape of a handler. Every problem is
//! reported, each on the token that causes it. What only the compiler can
//! tell (is the argument an event type, is the future `Send`) is left to
//! the assertions `expand` writes.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{parse_quote, FnArg, ReturnType, Signature, Type};

use super::ast::Input;
use super::model::Handler;
use crate::ctxt::Ctxt;

const EVENTS: &str =
    "`Insert<T>`, `Update<T>`, `Delete<T>`, `Change<T>`, `Truncate<T>` or `Snapshot<T>` \
     of a `Watched` type `T`, or `Signaled<T>` of a `Signal` type `T`";

pub(crate) fn check(input: &Input, cx: Ctxt) -> syn::Result<Handler<'_>> {
    let options = &input.options;
    if let Some(name) = &options.name {
        if name.value().is_empty() {
            cx.error_spanned_by(
                name,
                "`name` cannot be empty; leave it out to name the handler by its module path and function name",
            );
        }
    }

    let sig = &input.function.sig;
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            "a handler must be an `async fn`; add `async` before `fn`",
        );
    }
    if let Some(unsafety) = sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "a handler cannot be an `unsafe fn`: dawdle calls it, and cannot uphold its safety contract",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a handler cannot have an `extern` ABI; remove it");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "a handler cannot be generic: the type of its argument chooses the table and the events it receives",
        );
    }
    let event = event(&cx, sig);
    let output = output(&sig.output);

    cx.finish(Handler {
        ident: &sig.ident,
        cfgs: input
            .function
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("cfg"))
            .collect(),
        krate: options
            .krate
            .clone()
            .unwrap_or_else(|| parse_quote!(::dawdle)),
        name: options.name.as_ref(),
        event,
        output,
    })
}

/// The type of the one argument, or `()` after an error (a placeholder:
/// nothing is expanded then).
fn event(cx: &Ctxt, sig: &Signature) -> Type {
    let mut inputs = sig.inputs.iter();
    let Some(first) = inputs.next() else {
        cx.push(syn::Error::new(
            sig.paren_token.span.join(),
            format_args!(
                "a handler takes one argument, the event: {EVENTS}, such as `event: Insert<User>`"
            ),
        ));
        return parse_quote!(());
    };
    let ty = match first {
        FnArg::Receiver(receiver) => {
            cx.error_spanned_by(
                receiver,
                "a handler cannot take `self`: write it as a free function whose argument is the event",
            );
            return parse_quote!(());
        }
        FnArg::Typed(arg) => &*arg.ty,
    };
    if let Type::Reference(reference) = ungroup(ty) {
        cx.error_spanned_by(
            reference,
            "a handler takes the event by value, such as `event: Insert<User>`; remove the `&`",
        );
    } else if mentions_impl(ty) {
        cx.error_spanned_by(
            ty,
            format_args!(
                "a handler's argument is a concrete event type ({EVENTS}), not `impl Trait`"
            ),
        );
    }
    let extra: TokenStream = inputs.map(ToTokens::into_token_stream).collect();
    if !extra.is_empty() {
        cx.error_spanned_by(
            extra,
            format_args!("a handler takes one argument, the event ({EVENTS}); remove the others"),
        );
    }
    ty.clone()
}

/// The return type, `None` for `()`. Whether it is a `HandlerResult` is
/// for the compiler to say.
fn output(output: &ReturnType) -> Option<&Type> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

/// Types passed through `macro_rules!` arrive wrapped in invisible groups.
fn ungroup(mut ty: &Type) -> &Type {
    while let Type::Group(group) = ty {
        ty = &group.elem;
    }
    ty
}

/// Whether the type is or contains `impl Trait`: in argument position, a
/// type parameter in disguise.
fn mentions_impl(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => scan(group.stream()),
            TokenTree::Punct(_) | TokenTree::Literal(_) => false,
        })
    }
    scan(ty.to_token_stream())
}
