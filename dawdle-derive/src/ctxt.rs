//! Collects the errors of one macro invocation, so that all of them are
//! reported together instead of one per compile.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use quote::ToTokens;

/// The errors found so far.
///
/// They must be taken out with [`check`](Ctxt::check) or
/// [`finish`](Ctxt::finish): dropping a `Ctxt` without doing so panics, so
/// that no path through a macro can lose an error. Shared references can
/// record errors, so that parsers holding one can still report.
pub(crate) struct Ctxt {
    /// `None` once taken out.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub(crate) fn new() -> Ctxt {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records an error and carries on.
    pub(crate) fn push(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            // Taking the errors out consumes the `Ctxt`: no one is left to push.
            .expect("errors are taken out only when the Ctxt is consumed")
            .push(error);
    }

    /// Records an error spanned on `tokens`.
    pub(crate) fn error_spanned_by(&self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Every error recorded, combined into one, if there are any.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self
            .errors
            .borrow_mut()
            .take()
            .expect("errors are taken out only when the Ctxt is consumed");
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }

    /// `value` if nothing went wrong, else every error recorded.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        self.check().map(|()| value)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("forgot to check for errors");
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;

    use super::Ctxt;

    #[test]
    fn reports_every_error_in_order() {
        let cx = Ctxt::new();
        cx.push(syn::Error::new(Span::call_site(), "first"));
        cx.push(syn::Error::new(Span::call_site(), "second"));
        let messages: Vec<String> = cx
            .finish(())
            .unwrap_err()
            .into_iter()
            .map(|error| error.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "forgot to check for errors")]
    fn errors_cannot_be_dropped() {
        let cx = Ctxt::new();
        cx.push(syn::Error::new(Span::call_site(), "lost"));
    }
}
