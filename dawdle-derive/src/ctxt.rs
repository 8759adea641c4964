//! Collects the errors of one macro invocation, so that all of them are
//! reported together instead of one per compile.

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Ctxt {
    error: Option<syn::Error>,
}

impl Ctxt {
    pub(crate) fn new() -> Ctxt {
        Ctxt::default()
    }

    /// Records an error and carries on.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.error {
            Some(errors) => errors.combine(error),
            None => self.error = Some(error),
        }
    }

    /// Records an error spanned on `tokens`.
    pub(crate) fn error_spanned_by(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `value` if nothing went wrong, else every error recorded.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}
