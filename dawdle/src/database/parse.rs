//! Takes `sslmode` and `sslrootcert` out of a connection string:
//! tokio-postgres refuses `allow`, `verify-ca` and `verify-full`, and knows
//! no `sslrootcert`. What remains is left byte for byte as it was, for
//! tokio-postgres to read, so that everything else (passwords with
//! special characters above all) means what it meant.

use percent_encoding::percent_decode_str;

/// A connection string without its TLS parameters, and their values.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Split {
    pub rest: String,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
}

impl Split {
    /// Keeps the value of `key` when it is one of ours.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            _ => return false,
        }
        true
    }
}

/// `s` as a URL when it starts as one (tokio-postgres's test), else as
/// `key=value` pairs.
pub(super) fn split(s: &str) -> Split {
    let body = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix).map(|_| prefix.len()));
    match body {
        Some(body) => split_url(s, body),
        // Malformed: tokio-postgres says what is wrong with it.
        None => split_pairs(s).unwrap_or_else(|| Split {
            rest: s.to_owned(),
            ..Split::default()
        }),
    }
}

fn split_url(url: &str, body: usize) -> Split {
    // tokio-postgres takes everything up to the first `@` as the
    // credentials, and the query from the first `?` after them.
    let after_credentials = url[body..].find('@').map_or(body, |at| body + at + 1);
    let Some(question) = url[after_credentials..]
        .find('?')
        .map(|at| after_credentials + at)
    else {
        return Split {
            rest: url.to_owned(),
            ..Split::default()
        };
    };
    let mut split = Split::default();
    let mut kept = Vec::new();
    for pair in url[question + 1..].split('&') {
        let taken = pair.split_once('=').is_some_and(|(key, value)| {
            let key = percent_decode_str(key).decode_utf8_lossy();
            let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
            split.take(&key, value)
        });
        if !taken {
            kept.push(pair);
        }
    }
    split.rest = url[..question].to_owned();
    if !kept.is_empty() {
        split.rest.push('?');
        split.rest.push_str(&kept.join("&"));
    }
    split
}

/// `key = value` pairs as tokio-postgres reads them (whitespace between,
/// values quoted with `'`, `\` escaping the next character); `None` when
/// they do not read.
fn split_pairs(s: &str) -> Option<Split> {
    let mut split = Split::default();
    let mut kept: Vec<&str> = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_whitespace = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_whitespace(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = start;
        while let Some((at, c)) = chars.next_if(|&(_, c)| !c.is_whitespace() && c != '=') {
            key_end = at + c.len_utf8();
        }
        if key_end == start {
            // tokio-postgres stops reading here: so does what it gets.
            kept.push(&s[start..]);
            break;
        }
        skip_whitespace(&mut chars);
        chars.next_if(|&(_, c)| c == '=')?;
        skip_whitespace(&mut chars);
        let mut value = String::new();
        let quoted = chars.next_if(|&(_, c)| c == '\'').is_some();
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\'' if quoted => {
                    end = Some(at + 1);
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = Some(at);
                    break;
                }
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return None,
            None => s.len(),
        };
        if !quoted && value.is_empty() {
            return None;
        }
        if !split.take(&s[start..key_end], value) {
            kept.push(&s[start..end]);
        }
    }
    split.rest = kept.join(" ");
    Some(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(rest: &str, sslmode: Option<&str>, sslrootcert: Option<&str>) -> Split {
        Split {
            rest: rest.to_owned(),
            sslmode: sslmode.map(str::to_owned),
            sslrootcert: sslrootcert.map(str::to_owned),
        }
    }

    #[test]
    fn url_query_parameters_are_taken_out_and_the_rest_kept() {
        assert_eq!(
            split("postgres://u:p@h:5/db?sslmode=verify-full&application_name=a&sslrootcert=%2Fca.pem"),
            expect(
                "postgres://u:p@h:5/db?application_name=a",
                Some("verify-full"),
                Some("/ca.pem")
            )
        );
        assert_eq!(
            split("postgresql://h/db?sslmode=require"),
            expect("postgresql://h/db", Some("require"), None)
        );
        assert_eq!(
            split("postgres://h/db"),
            expect("postgres://h/db", None, None)
        );
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        assert_eq!(
            split("postgres://u:pa?ss=1&x@h/db?sslmode=verify-ca"),
            expect("postgres://u:pa?ss=1&x@h/db", Some("verify-ca"), None)
        );
    }

    #[test]
    fn pairs_are_taken_out_with_quotes_and_escapes() {
        assert_eq!(
            split(
                r"host=h password='a b\'c' sslmode = verify-full sslrootcert='/my certs/ca.pem' user=u\ v"
            ),
            expect(
                r"host=h password='a b\'c' user=u\ v",
                Some("verify-full"),
                Some("/my certs/ca.pem")
            )
        );
    }

    #[test]
    fn malformed_pairs_are_left_for_tokio_postgres_to_refuse() {
        for s in ["host", "host='unterminated", "host= "] {
            assert_eq!(split(s), expect(s, None, None));
        }
    }
}
