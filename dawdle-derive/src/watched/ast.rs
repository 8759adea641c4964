//! Parsing: the struct as dawdle sees it, with its attributes read but not
//! yet checked. Anything here that fails stops the derive before `check`, so
//! a mistake in the syntax is never reported a second time as a mistake in
//! the meaning.

use syn::{Data, DeriveInput, Fields, GenericParam, Ident, Type};

use super::attr;
use crate::ctxt::Ctxt;

/// A struct with named fields and no generics.
pub(crate) struct Input<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: attr::Struct,
    pub(crate) fields: Vec<Field<'a>>,
}

/// One named field.
pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: attr::Field,
}

impl<'a> Input<'a> {
    pub(crate) fn from_syn(node: &'a DeriveInput) -> syn::Result<Input<'a>> {
        let cx = Ctxt::new();
        let attrs = attr::Struct::parse(&node.attrs, &cx);

        let fields = match &node.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named
                    .named
                    .iter()
                    .filter_map(|field| {
                        Some(Field {
                            ident: field.ident.as_ref()?,
                            ty: &field.ty,
                            attrs: attr::Field::parse(&field.attrs, &cx),
                        })
                    })
                    .collect(),
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        "expected named fields, one per column; `Watched` cannot be derived for a tuple struct",
                    );
                    Vec::new()
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &node.ident,
                        "expected named fields, one per column; `Watched` cannot be derived for a unit struct",
                    );
                    Vec::new()
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "expected a struct with named fields, one per column; `Watched` cannot be derived \
                     for an enum (to capture a PostgreSQL enum column, use the enum as the type of a \
                     field marked `#[dawdle(serde)]`)",
                );
                Vec::new()
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "expected a struct with named fields, one per column; `Watched` cannot be derived for a union",
                );
                Vec::new()
            }
        };

        let generics = &node.generics;
        if !generics.params.is_empty() {
            let only_lifetimes = generics
                .params
                .iter()
                .all(|param| matches!(param, GenericParam::Lifetime(_)));
            cx.error_spanned_by(
                generics,
                if only_lifetimes {
                    "`Watched` cannot be derived for a struct with lifetime parameters: a decoded row \
                     owns its data (use `String`, not `&str`)"
                } else {
                    "`Watched` cannot be derived for a generic struct: each watched type describes one table"
                },
            );
        }

        cx.finish(Input {
            ident: &node.ident,
            attrs,
            fields,
        })
    }
}
