//! Expansion: the checked model as code. The derive emits data (a const
//! `Table`) and a decoder; `dawdle::sql` turns the data into SQL.

use proc_macro2::{Delimiter, Ident, Spacing, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::Type;

use super::model::{Column, Decoder, Table};

pub(crate) fn expand(table: &Table<'_>) -> TokenStream {
    let krate = &table.krate;
    let ident = table.ident;
    let type_name = format!("::{}", ident.unraw());
    let schema = &table.schema;
    let name = &table.name;
    let columns = table.columns.iter().map(|column| describe(krate, column));
    let row = row();
    let fields = table.columns.iter().map(|column| decode(&row, column));
    let (insert, update, delete, truncate) = (
        table.events.insert,
        table.events.update,
        table.events.delete,
        table.events.truncate,
    );
    let capture_unchanged = table.capture_unchanged;
    let capture_replica = table.capture_replica;

    quote! {
        const _: () = {
            // The columns and the decoder share one body, so that a field type
            // without `Decode` is reported once, not once per use.
            const PARTS: (
                &[#krate::Column],
                fn(#krate::decode::Row<'_>) -> ::core::result::Result<#ident, #krate::DecodeError>,
            ) = (
                &[#(#columns),*],
                |#row| ::core::result::Result::Ok(#ident { #(#fields,)* }),
            );

            #[automatically_derived]
            impl #krate::Watched for #ident {
                const TABLE: &'static #krate::Table = &#krate::Table {
                    type_name: ::core::concat!(::core::module_path!(), #type_name),
                    schema: #schema,
                    name: #name,
                    columns: PARTS.0,
                    events: #krate::Events {
                        insert: #insert,
                        update: #update,
                        delete: #delete,
                        truncate: #truncate,
                    },
                    capture_unchanged: #capture_unchanged,
                    capture_replica: #capture_replica,
                };

                fn decode(
                    #row: #krate::decode::Row<'_>,
                ) -> ::core::result::Result<Self, #krate::DecodeError> {
                    (PARTS.1)(#row)
                }
            }

            #krate::__private::inventory::submit! {
                #krate::__private::WatchedType {
                    table: <#ident as #krate::Watched>::TABLE,
                }
            }
        };
    }
}

/// The `Column` of one field.
fn describe(krate: &syn::Path, column: &Column<'_>) -> TokenStream {
    let name = &column.name;
    let field = column.field.unraw().to_string();
    let primary_key = column.primary_key;
    let sql = match &column.sql {
        Some(sql) => quote!(::core::option::Option::Some(#sql)),
        None => quote!(::core::option::Option::None),
    };
    let ty = column.ty;
    // Spanned on the field's type, so that a type without `Decode` is
    // reported there.
    let (encoding, settings) = match column.decoder {
        Decoder::Decode => (
            quote_spanned!(ty.span()=> <#ty as #krate::Decode>::ENCODING),
            quote_spanned!(ty.span()=> <#ty as #krate::Decode>::SETTINGS),
        ),
        // Enums, json and jsonb: their JSON reads no session setting.
        Decoder::Serde => (
            quote!(#krate::Encoding::Json),
            quote!(#krate::SessionSettings::NONE),
        ),
    };
    // What an expression prints is unknown: fix every setting.
    let settings = match column.sql {
        Some(_) => quote!(#krate::SessionSettings::ALL),
        None => settings,
    };
    quote! {
        #krate::Column {
            name: #name,
            field: #field,
            primary_key: #primary_key,
            sql: #sql,
            encoding: #encoding,
            settings: #settings,
        }
    }
}

/// The decoder's argument. Unlikely to clash with the user's names, and
/// `mixed_site` so that no user variable can see it.
fn row() -> Ident {
    Ident::new("__row", Span::mixed_site())
}

/// `field: row.get::<Type>("column", "Type")?`
fn decode(row: &Ident, column: &Column<'_>) -> TokenStream {
    let field = column.field;
    let name = &column.name;
    let ty = column.ty;
    let rust_type = type_name(ty);
    let get = match column.decoder {
        Decoder::Decode => quote_spanned!(ty.span()=> get::<#ty>),
        Decoder::Serde => quote_spanned!(ty.span()=> get_serde::<#ty>),
    };
    quote! {
        #field: #row.#get(#name, #rust_type)?
    }
}

/// The type as a person would write it, for error messages:
/// `Option<Vec<u8>>`, not `Option < Vec < u8 > >`.
fn type_name(ty: &Type) -> String {
    let mut out = String::new();
    write_tokens(ty.to_token_stream(), &mut out);
    out
}

fn write_tokens(tokens: TokenStream, out: &mut String) {
    let mut space = false;
    for token in tokens {
        let word = matches!(token, TokenTree::Ident(_) | TokenTree::Literal(_));
        if word && out.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            space = true;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Punct(punct) => {
                let c = punct.as_char();
                match c {
                    ',' | ';' => {
                        out.push(c);
                        space = true;
                    }
                    '=' | '+' => {
                        if !out.ends_with(' ') {
                            out.push(' ');
                        }
                        out.push(c);
                        space = true;
                    }
                    '-' if punct.spacing() == Spacing::Joint => {
                        // `->` in a function pointer type.
                        if !out.ends_with(' ') {
                            out.push(' ');
                        }
                        out.push(c);
                    }
                    '>' if out.ends_with('-') => {
                        out.push(c);
                        space = true;
                    }
                    _ => out.push(c),
                }
            }
            TokenTree::Ident(ident) => out.push_str(&ident.to_string()),
            TokenTree::Literal(literal) => out.push_str(&literal.to_string()),
        }
    }
}
