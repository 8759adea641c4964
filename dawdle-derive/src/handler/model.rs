//! What `check` hands to `expand`: a handler known to have the right shape,
//! with every default resolved. Its types are checked by the compiler, on
//! the code `expand` writes.

use syn::{Attribute, Ident, LitStr, Path, Type};

pub(crate) struct Handler<'a> {
    /// The function.
    pub(crate) ident: &'a Ident,
    /// Its `#[cfg(...)]` attributes: the registration exists when it does.
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// Path to the dawdle crate in generated code.
    pub(crate) krate: Path,
    /// `name = "..."`, or `None` for the module path and function name.
    pub(crate) name: Option<&'a LitStr>,
    /// The one argument's type: the event type.
    pub(crate) event: Type,
    /// The return type, or `None` for `()`.
    pub(crate) output: Option<&'a Type>,
}
