//! Attribute syntax shared by `#[derive(Watched)]` and `#[dawdle::handler]`.

use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, Lit, LitStr, Token};

use crate::ctxt::Ctxt;

/// `key = "..."`. A value that is not a string is reported and skipped, so
/// that the keys after it are still read.
pub(crate) fn string(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    cx: &mut Ctxt,
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
