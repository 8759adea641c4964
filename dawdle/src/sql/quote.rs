//! Quoting and checking what goes into generated SQL.

use std::fmt::Write;

use super::catalog::BODY_QUOTE;
use super::error::SqlError;
use crate::fnv::fnv;

/// PostgreSQL truncates identifiers past this many bytes (NAMEDATALEN - 1).
pub(crate) const MAX_IDENT_BYTES: usize = 63;

/// `"name"`, with inner quotes doubled. Always quoted: case and spaces survive.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A string literal that means the same whatever `standard_conforming_strings` says.
pub(crate) fn literal(value: &str) -> String {
    let doubled = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", doubled.replace('\\', "\\\\"))
    } else {
        format!("'{doubled}'")
    }
}

/// Checks a schema, table or column name: PostgreSQL would otherwise
/// truncate it silently or refuse it.
pub(crate) fn check_ident(what: &'static str, name: &str) -> Result<(), SqlError> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else if name.len() > MAX_IDENT_BYTES {
        "is longer than PostgreSQL's 63-byte limit"
    } else {
        return Ok(());
    };
    Err(SqlError::InvalidIdentifier {
        what,
        name: name.to_owned(),
        problem,
    })
}

/// A name for a generated object, unique for `parts` and at most 63 bytes:
/// readable when it fits, cut and suffixed with a hash of the whole when not.
pub(crate) fn object_name(prefix: &str, parts: &[&str]) -> String {
    let full = format!("{prefix}{}", parts.join("."));
    if full.len() <= MAX_IDENT_BYTES {
        return full;
    }
    let hash = fnv(crate::fnv::OFFSET_BASIS, parts.join("\0").as_bytes());
    let suffix = format!("~{hash:016x}");
    let mut cut = MAX_IDENT_BYTES - suffix.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &full[..cut])
}

/// Substitutes `column` for `$1` in a column override, after checking that
/// the override is one self-contained expression: balanced parentheses, no
/// `;`, no comments, no other parameters, and nothing that could end the
/// trigger function's body. `$1` inside string literals is left alone.
pub(crate) fn expand_override(expr: &str, column: &str) -> Result<String, &'static str> {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + column.len());
    let mut depth: usize = 0;
    let mut uses = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' => {
                // E'...' strings honour backslash escapes; plain ones do not.
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                let end = skip_quoted(bytes, i, b'\'', escapes)
                    .ok_or("has an unterminated string literal")?;
                out.push_str(&expr[i..end]);
                i = end;
                continue;
            }
            b'"' => {
                let end = skip_quoted(bytes, i, b'"', false)
                    .ok_or("has an unterminated quoted identifier")?;
                out.push_str(&expr[i..end]);
                i = end;
                continue;
            }
            b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    if &expr[i + 1..i + 1 + digits] != "1" {
                        return Err("uses a parameter other than $1");
                    }
                    out.push_str(column);
                    uses += 1;
                    i += 2;
                    continue;
                }
                if i > 0 && is_ident_byte(bytes[i - 1]) {
                    // `$` inside an identifier, e.g. `a$b`.
                    out.push('$');
                    i += 1;
                    continue;
                }
                // A dollar-quoted string: $tag$ ... $tag$.
                let tag_len = bytes[i + 1..]
                    .iter()
                    .take_while(|b| is_ident_byte(**b))
                    .count();
                if bytes.get(i + 1 + tag_len) != Some(&b'$') {
                    return Err("has a stray `$`");
                }
                let tag = &expr[i..i + tag_len + 2];
                if tag.eq_ignore_ascii_case(BODY_QUOTE) {
                    return Err("uses the dollar quote reserved for dawdle's trigger body");
                }
                let body_start = i + tag.len();
                let close = expr[body_start..]
                    .find(tag)
                    .ok_or("has an unterminated dollar-quoted string")?;
                let end = body_start + close + tag.len();
                out.push_str(&expr[i..end]);
                i = end;
                continue;
            }
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1).ok_or("has an unbalanced `)`")?,
            b';' => return Err("contains `;`: it must be a single expression"),
            b'-' if bytes.get(i + 1) == Some(&b'-') => return Err("contains an SQL comment"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => return Err("contains an SQL comment"),
            _ => {}
        }
        // Copy one whole character.
        let len = expr[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&expr[i..i + len]);
        i += len;
    }
    if depth != 0 {
        return Err("has an unbalanced `(`");
    }
    if uses == 0 {
        return Err("does not use `$1`, the column's value");
    }
    Ok(out)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The index just past the closing `quote` of the quoted run starting at `start`.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Appends `items` separated by `sep`, each produced by `f`.
pub(crate) fn join<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    sep: &str,
    mut f: impl FnMut(&mut String, T),
) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        f(out, item);
    }
}

/// `write!` into a String cannot fail.
pub(crate) fn push_fmt(out: &mut String, args: std::fmt::Arguments<'_>) {
    out.write_fmt(args)
        .expect("writing to a String cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers_and_literals() {
        assert_eq!(ident(r#"we"ird Name"#), r#""we""ird Name""#);
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b'"), r"E'a\\b'''");
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash() {
        let long = "x".repeat(70);
        let a = object_name("capture:", &["public", &long]);
        let b = object_name("capture:", &["public2", &long]);
        assert_eq!(a.len(), 63);
        // A new hash would rename every installed trigger function.
        assert!(a.ends_with("~58bb8826f4e4dcb0"), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, object_name("capture:", &["public", &long]));
        assert_eq!(
            object_name("capture:", &["public", "users"]),
            "capture:public.users"
        );
    }

    #[test]
    fn overrides_substitute_only_the_parameter() {
        assert_eq!(
            expand_override("ST_AsGeoJSON($1, 20, 2)", "NEW.\"loc\"").unwrap(),
            "ST_AsGeoJSON(NEW.\"loc\", 20, 2)"
        );
        assert_eq!(
            expand_override("format('$1 %s', $1)", "NEW.x").unwrap(),
            "format('$1 %s', NEW.x)"
        );
        assert_eq!(
            expand_override("$q$;$1$q$ || $1", "c").unwrap(),
            "$q$;$1$q$ || c"
        );
        assert_eq!(expand_override("E'\\'' || $1", "c").unwrap(), "E'\\'' || c");
    }

    #[test]
    fn overrides_cannot_escape_their_expression() {
        for (expr, why) in [
            ("upper(x)", "does not use `$1`"),
            ("$1); DROP TABLE users; --", "unbalanced `)`"),
            ("$1; DROP TABLE users", "contains `;`"),
            ("$1 -- comment", "comment"),
            ("$1 /* c */", "comment"),
            ("$2", "other than $1"),
            ("$1 || $dawdle$", "reserved"),
            ("'$1", "unterminated string"),
            ("($1", "unbalanced `(`"),
        ] {
            let err = expand_override(expr, "c").unwrap_err();
            assert!(err.contains(why), "{expr}: {err}");
        }
    }
}
