//! The `#[dawdle(...)]` attributes of a `Watched` struct and of its fields,
//! as written: syntax is checked here, meaning in `check`.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr, Path, Token};

use crate::ctxt::Ctxt;
use crate::meta::{crate_path, string, Slot};

/// What the keys are called in messages.
const KIND: &str = "dawdle attribute";
const STRUCT_KEYS: &[&str] = &[
    "table",
    "schema",
    "events",
    "capture_unchanged",
    "capture_replica",
    "crate",
];
const FIELD_KEYS: &[&str] = &["primary_key", "rename", "sql", "serde"];
const EVENTS: &[&str] = &["insert", "update", "delete", "truncate"];

/// `#[dawdle(...)]` on the struct.
pub(crate) struct Struct {
    pub(crate) table: Option<LitStr>,
    pub(crate) schema: Option<LitStr>,
    pub(crate) events: Option<Events>,
    pub(crate) capture_unchanged: bool,
    pub(crate) capture_replica: bool,
    pub(crate) krate: CratePath,
}

/// `crate = "..."`, kept apart from the other keys because the fallback needs
/// it even when the rest is wrong.
pub(crate) enum CratePath {
    /// Not given: `::dawdle`.
    Default,
    /// Given and a valid path.
    Given(Path),
    /// Given but not a path: generated code has nothing to name.
    Invalid,
}

/// `events(...)`.
#[derive(Default)]
pub(crate) struct Events {
    pub(crate) insert: bool,
    pub(crate) update: bool,
    pub(crate) delete: bool,
    pub(crate) truncate: bool,
}

/// `#[dawdle(...)]` on a field.
pub(crate) struct Field {
    pub(crate) primary_key: bool,
    pub(crate) rename: Option<LitStr>,
    pub(crate) sql: Option<LitStr>,
    pub(crate) serde: bool,
}

impl Struct {
    pub(crate) fn parse(attrs: &[Attribute], cx: &Ctxt) -> Struct {
        let mut table = Slot::new(KIND, "table");
        let mut schema = Slot::new(KIND, "schema");
        let mut events = Slot::new(KIND, "events");
        let mut capture_unchanged = Slot::new(KIND, "capture_unchanged");
        let mut capture_replica = Slot::new(KIND, "capture_replica");
        let mut krate = Slot::new(KIND, "crate");
        let mut krate_invalid = false;

        for attr in dawdle_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("table") {
                    if let Some(lit) = string(&meta, "table", cx)? {
                        table.set(cx, path, lit);
                    }
                } else if path.is_ident("schema") {
                    if let Some(lit) = string(&meta, "schema", cx)? {
                        schema.set(cx, path, lit);
                    }
                } else if path.is_ident("events") {
                    if let Some(list) = event_list(&meta, cx)? {
                        events.set(cx, path, list);
                    }
                } else if path.is_ident("capture_unchanged") {
                    flag(&meta, "capture_unchanged")?;
                    capture_unchanged.set(cx, path, ());
                } else if path.is_ident("capture_replica") {
                    flag(&meta, "capture_replica")?;
                    capture_replica.set(cx, path, ());
                } else if path.is_ident("crate") {
                    match string(&meta, "crate", cx)?.and_then(|lit| crate_path(&lit, cx)) {
                        Some(parsed) => krate.set(cx, path, parsed),
                        None => krate_invalid = true,
                    }
                } else {
                    return Err(unknown(
                        path,
                        STRUCT_KEYS,
                        FIELD_KEYS,
                        "the struct",
                        "a field",
                    ));
                }
                Ok(())
            });
            if let Err(error) = result {
                cx.push(error);
            }
        }

        Struct {
            table: table.get(),
            schema: schema.get(),
            events: events.get(),
            capture_unchanged: capture_unchanged.get().is_some(),
            capture_replica: capture_replica.get().is_some(),
            krate: match krate.get() {
                Some(path) => CratePath::Given(path),
                None if krate_invalid => CratePath::Invalid,
                None => CratePath::Default,
            },
        }
    }
}

impl Field {
    pub(crate) fn parse(attrs: &[Attribute], cx: &Ctxt) -> Field {
        let mut primary_key = Slot::new(KIND, "primary_key");
        let mut rename = Slot::new(KIND, "rename");
        let mut sql = Slot::new(KIND, "sql");
        let mut serde = Slot::new(KIND, "serde");

        for attr in dawdle_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("primary_key") {
                    flag(&meta, "primary_key")?;
                    primary_key.set(cx, path, ());
                } else if path.is_ident("rename") {
                    if let Some(lit) = string(&meta, "rename", cx)? {
                        rename.set(cx, path, lit);
                    }
                } else if path.is_ident("sql") {
                    if let Some(lit) = string(&meta, "sql", cx)? {
                        sql.set(cx, path, lit);
                    }
                } else if path.is_ident("serde") {
                    flag(&meta, "serde")?;
                    serde.set(cx, path, ());
                } else {
                    return Err(unknown(
                        path,
                        FIELD_KEYS,
                        STRUCT_KEYS,
                        "a field",
                        "the struct",
                    ));
                }
                Ok(())
            });
            if let Err(error) = result {
                cx.push(error);
            }
        }

        Field {
            primary_key: primary_key.get().is_some(),
            rename: rename.get(),
            sql: sql.get(),
            serde: serde.get().is_some(),
        }
    }
}

fn dawdle_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("dawdle"))
}

/// A key that takes no value.
fn flag(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        Err(meta.error(format_args!("`{key}` takes no value; write `{key}` alone")))
    }
}

/// `events(insert, update, delete, truncate)`, or a non-empty subset.
fn event_list(meta: &ParseNestedMeta<'_>, cx: &Ctxt) -> syn::Result<Option<Events>> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format_args!(
            "expected `events(...)` listing one or more of {}",
            list(EVENTS)
        )));
    }
    let group: proc_macro2::Group = meta.input.fork().parse()?;
    if group.stream().is_empty() {
        meta.input.parse::<proc_macro2::Group>()?;
        cx.push(syn::Error::new(
            group.span(),
            format_args!(
                "`events()` lists no event; expected one or more of {} (leave out `events` to capture them all)",
                list(EVENTS)
            ),
        ));
        return Ok(None);
    }
    let mut events = Events::default();
    meta.parse_nested_meta(|event| {
        let name = path_to_string(&event.path);
        flag(&event, &name)?;
        let slot = match name.as_str() {
            "insert" => &mut events.insert,
            "update" => &mut events.update,
            "delete" => &mut events.delete,
            "truncate" => &mut events.truncate,
            _ => {
                cx.error_spanned_by(
                    &event.path,
                    format_args!("unknown event `{name}`; expected one of {}", list(EVENTS)),
                );
                return Ok(());
            }
        };
        if *slot {
            cx.error_spanned_by(&event.path, format_args!("duplicate event `{name}`"));
        }
        *slot = true;
        Ok(())
    })?;
    Ok((events.insert || events.update || events.delete || events.truncate).then_some(events))
}

fn unknown(path: &Path, keys: &[&str], other_keys: &[&str], here: &str, there: &str) -> syn::Error {
    let name = path_to_string(path);
    let message = if other_keys.contains(&name.as_str()) {
        format!(
            "dawdle attribute `{name}` belongs on {there}; on {here}, expected one of {}",
            list(keys)
        )
    } else {
        format!(
            "unknown dawdle attribute `{name}`; expected one of {}",
            list(keys)
        )
    };
    syn::Error::new_spanned(path, message)
}

fn path_to_string(path: &Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

/// "`a`, `b`, `c`"
fn list(keys: &[&str]) -> String {
    keys.iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
