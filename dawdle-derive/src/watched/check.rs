//! Checking: what the attributes mean, with defaults resolved. Every problem
//! is reported, each on the token that causes it.

use std::collections::HashMap;

use proc_macro2::Ident;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{parse_quote, LitStr};

use super::ast::{Field, Input};
use super::attr::{self, CratePath};
use super::model::{Column, Decoder, Events, Table};
use crate::ctxt::Ctxt;

/// PostgreSQL's `NAMEDATALEN - 1`: it truncates longer names.
const MAX_NAME_BYTES: usize = 63;

pub(crate) fn check<'a>(input: &Input<'a>) -> syn::Result<Table<'a>> {
    let cx = Ctxt::new();
    let attrs = &input.attrs;

    let name = if let Some(lit) = &attrs.table {
        checked_name(&cx, lit, "table")
    } else {
        cx.error_spanned_by(
            input.ident,
            format_args!(
                "missing `#[dawdle(table = \"...\")]`: name the table that `{}` captures",
                input.ident.unraw()
            ),
        );
        String::new()
    };
    let schema = attrs.schema.as_ref().map_or_else(
        || "public".to_owned(),
        |lit| checked_name(&cx, lit, "schema"),
    );

    let mut columns: Vec<Column<'a>> = Vec::with_capacity(input.fields.len());
    let mut owners: HashMap<String, &Ident> = HashMap::new();
    for field in &input.fields {
        let column = column(&cx, field);
        if let Some(owner) = owners.get(&column.name) {
            let culprit = field
                .attrs
                .rename
                .as_ref()
                .map_or_else(|| field.ident.to_token_stream(), ToTokens::to_token_stream);
            cx.error_spanned_by(
                culprit,
                format_args!(
                    "column `{}` is already captured by field `{}`; each column can be captured once",
                    column.name,
                    owner.unraw()
                ),
            );
        } else {
            owners.insert(column.name.clone(), field.ident);
        }
        columns.push(column);
    }
    default_primary_key(&cx, input.ident, &mut columns);

    cx.finish(Table {
        ident: input.ident,
        krate: match &attrs.krate {
            CratePath::Given(path) => path.clone(),
            // `Invalid` was reported while parsing and never gets here.
            CratePath::Default | CratePath::Invalid => parse_quote!(::dawdle),
        },
        schema,
        name,
        events: events(attrs.events.as_ref()),
        capture_unchanged: attrs.capture_unchanged,
        capture_replica: attrs.capture_replica,
        columns,
    })
}

fn column<'a>(cx: &Ctxt, field: &Field<'a>) -> Column<'a> {
    let name = if let Some(lit) = &field.attrs.rename {
        checked_name(cx, lit, "rename")
    } else {
        let name = field.ident.unraw().to_string();
        if name.len() > MAX_NAME_BYTES {
            cx.error_spanned_by(
                field.ident,
                format_args!(
                    "column name `{name}` is {} bytes long; PostgreSQL names are at most \
                     {MAX_NAME_BYTES} bytes (add `#[dawdle(rename = \"...\")]`)",
                    name.len()
                ),
            );
        }
        name
    };

    let sql = field.attrs.sql.as_ref().map(|lit| {
        let sql = lit.value();
        if !uses_parameter(&sql) {
            cx.error_spanned_by(
                lit,
                "`sql` must use `$1` for the column's value, as in `sql = \"ST_AsGeoJSON($1)\"`",
            );
        }
        sql
    });

    Column {
        field: field.ident,
        ty: field.ty,
        name,
        primary_key: field.attrs.primary_key,
        sql,
        decoder: if field.attrs.serde {
            Decoder::Serde
        } else {
            Decoder::Decode
        },
    }
}

/// Without `primary_key` anywhere, a field named `id` is the key.
fn default_primary_key(cx: &Ctxt, ident: &Ident, columns: &mut [Column<'_>]) {
    if columns.iter().any(|column| column.primary_key) {
        return;
    }
    if let Some(id) = columns
        .iter_mut()
        .find(|column| column.field.unraw() == "id")
    {
        id.primary_key = true;
    } else {
        cx.error_spanned_by(
            ident,
            format_args!(
                "`{}` has no primary key: mark its key fields with `#[dawdle(primary_key)]` \
                 (without it, a field named `id` is the key)",
                ident.unraw()
            ),
        );
    }
}

fn events(events: Option<&attr::Events>) -> Events {
    events.map_or(
        Events {
            insert: true,
            update: true,
            delete: true,
            truncate: true,
        },
        |events| Events {
            insert: events.insert,
            update: events.update,
            delete: events.delete,
            truncate: events.truncate,
        },
    )
}

/// The value of a schema, table or column name, reported unless PostgreSQL
/// keeps it as written.
fn checked_name(cx: &Ctxt, lit: &LitStr, key: &str) -> String {
    let name = lit.value();
    if name.is_empty() {
        cx.error_spanned_by(lit, format_args!("`{key}` cannot be empty"));
    } else if name.contains('\0') {
        cx.error_spanned_by(lit, format_args!("`{key}` cannot contain a NUL character"));
    } else if name.len() > MAX_NAME_BYTES {
        cx.error_spanned_by(
            lit,
            format_args!(
                "`{key}` is {} bytes long; PostgreSQL names are at most {MAX_NAME_BYTES} bytes",
                name.len()
            ),
        );
    }
    name
}

/// Whether `sql` mentions `$1` (and not merely `$10`). `dawdle::sql` checks
/// the rest of the expression when it renders the triggers.
fn uses_parameter(sql: &str) -> bool {
    sql.match_indices("$1")
        .any(|(i, _)| !sql[i + 2..].starts_with(|c: char| c.is_ascii_digit()))
}
