//! Attribute syntax shared by `#[derive(Watched)]`, `#[derive(Signal)]` and
//! `#[dawdle::handler]`.

use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, Lit, LitStr, Path, Token};

use crate::ctxt::Ctxt;

/// `key = "..."`. A value that is not a string is reported and skipped, so
/// that the keys after it are still read.
pub(crate) fn string(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    cx: &Ctxt,
) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format_args!("expected `{key} = \"...\"`")));
    }
    let mut expr: Expr = meta.value()?.parse()?;
    // Tokens passed through `macro_rules!` arrive wrapped in invisible groups.
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(Some(lit)),
        other => {
            cx.error_spanned_by(other, format_args!("expected a string: `{key} = \"...\"`"));
            Ok(None)
        }
    }
}

/// The path that `crate = "..."` gives to the dawdle crate; one that does
/// not parse is reported.
pub(crate) fn crate_path(lit: &LitStr, cx: &Ctxt) -> Option<Path> {
    match lit.parse::<Path>() {
        Ok(path) => Some(path),
        Err(_) => {
            cx.error_spanned_by(
                lit,
                "expected a path to the dawdle crate, such as `crate = \"::dawdle\"`",
            );
            None
        }
    }
}

/// One key, reporting a second occurrence: the first one counts.
pub(crate) struct Slot<T> {
    /// What the keys are called in messages: `dawdle attribute`, `handler option`.
    kind: &'static str,
    name: &'static str,
    value: Option<T>,
}

impl<T> Slot<T> {
    pub(crate) fn new(kind: &'static str, name: &'static str) -> Self {
        Slot {
            kind,
            name,
            value: None,
        }
    }

    /// Keeps `value` if this is the key's first occurrence, at `path`.
    pub(crate) fn set(&mut self, cx: &Ctxt, path: &Path, value: T) {
        self.set_with(cx, path, || value);
    }

    /// [`set`](Self::set) with a value that is only worked out (and its
    /// errors only reported) for the first occurrence.
    pub(crate) fn set_with(&mut self, cx: &Ctxt, path: &Path, value: impl FnOnce() -> T) {
        if self.value.is_some() {
            cx.error_spanned_by(
                path,
                format_args!("duplicate {} `{}`", self.kind, self.name),
            );
        } else {
            self.value = Some(value());
        }
    }

    /// The value of the first occurrence, if any.
    pub(crate) fn get(self) -> Option<T> {
        self.value
    }
}
