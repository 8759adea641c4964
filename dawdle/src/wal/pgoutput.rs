//! The messages of `pgoutput` (protocol version 1) that carry changes:
//! relations, inserts, updates, deletes and truncates. Begin, commit and
//! logical messages are parsed by the replication client.

use std::fmt;

use bytes::Bytes;

/// A relation, as `pgoutput` describes it before its first change in a
/// session (and again after its definition changed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<RelationColumn>,
}

/// One column of a [`Relation`], in the table's column order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelationColumn {
    pub name: String,
    pub type_oid: u32,
}

/// One column's value in a tuple.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Datum {
    Null,
    /// A TOASTed value the change left as it was: not sent.
    Unchanged,
    /// The value's text output.
    Text(Bytes),
}

/// A change, or a message this reader passes over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Relation(Relation),
    Insert {
        relation: u32,
        new: Vec<Datum>,
    },
    Update {
        relation: u32,
        /// The whole old row with `REPLICA IDENTITY FULL`, its key only
        /// when the key changed, or nothing.
        old: Option<(OldKind, Vec<Datum>)>,
        new: Vec<Datum>,
    },
    Delete {
        relation: u32,
        old: (OldKind, Vec<Datum>),
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Begin, commit, origin, type, logical message: nothing to capture.
    Other(u8),
}

/// What an old tuple holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OldKind {
    /// The replica identity's key columns only (the others are NULL).
    Key,
    /// The whole row (`REPLICA IDENTITY FULL`).
    Full,
}

/// A message that is not `pgoutput`'s as expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed pgoutput message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads one message.
pub(crate) fn decode(data: &Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { data, at: 0 };
    let tag = r.u8()?;
    Ok(match tag {
        b'R' => {
            let id = r.u32()?;
            let schema = r.cstring()?;
            let name = r.cstring()?;
            let _identity = r.u8()?;
            let count = r.u16()?;
            let mut columns = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let _flags = r.u8()?;
                let name = r.cstring()?;
                let type_oid = r.u32()?;
                let _typmod = r.u32()?;
                columns.push(RelationColumn { name, type_oid });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            r.expect(b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let old = match r.u8()? {
                b'N' => None,
                kind => {
                    let kind = old_kind(kind)?;
                    let tuple = r.tuple()?;
                    r.expect(b'N')?;
                    Some((kind, tuple))
                }
            };
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32()?;
            let kind = old_kind(r.u8()?)?;
            Message::Delete {
                relation,
                old: (kind, r.tuple()?),
            }
        }
        b'T' => {
            let count = r.u32()?;
            let _options = r.u8()?;
            let relations = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        other => Message::Other(other),
    })
}

fn old_kind(tag: u8) -> Result<OldKind, DecodeError> {
    match tag {
        b'K' => Ok(OldKind::Key),
        b'O' => Ok(OldKind::Full),
        other => Err(DecodeError(format!(
            "an old tuple marked {:?}, not 'K' or 'O'",
            other as char
        ))),
    }
}

struct Reader<'a> {
    data: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.data.len());
        let end = end.ok_or_else(|| DecodeError(format!("ends {n} bytes early")))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn expect(&mut self, tag: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            t if t == tag => Ok(()),
            t => Err(DecodeError(format!(
                "{:?} where {:?} belongs",
                t as char, tag as char
            ))),
        }
    }

    fn cstring(&mut self) -> Result<String, DecodeError> {
        let rest = &self.data[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| DecodeError("a name without its terminating zero".into()))?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| DecodeError("a name that is not UTF-8".into()))?
            .to_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Vec<Datum>, DecodeError> {
        let count = self.u16()?;
        let mut datums = Vec::with_capacity(count as usize);
        for _ in 0..count {
            datums.push(match self.u8()? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    let start = self.at;
                    self.take(len)?;
                    Datum::Text(self.data.slice(start..start + len))
                }
                b'b' => return Err(DecodeError("a value in binary format".into())),
                other => {
                    return Err(DecodeError(format!(
                        "a column value marked {:?}",
                        other as char
                    )))
                }
            });
        }
        Ok(datums)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for value in values {
            match value {
                None => out.push(b'n'),
                Some(text) => {
                    out.push(b't');
                    out.extend((text.len() as u32).to_be_bytes());
                    out.extend(text.as_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn reads_a_relation_and_its_changes() {
        let mut relation = vec![b'R'];
        relation.extend(16384u32.to_be_bytes());
        relation.extend(b"public\0users\0f");
        relation.extend(2u16.to_be_bytes());
        relation.extend(b"\x01id\0");
        relation.extend(20u32.to_be_bytes());
        relation.extend((-1i32).to_be_bytes());
        relation.extend(b"\x00name\0");
        relation.extend(25u32.to_be_bytes());
        relation.extend((-1i32).to_be_bytes());
        let Message::Relation(r) = decode(&Bytes::from(relation)).unwrap() else {
            panic!("not a relation");
        };
        assert_eq!(
            (r.id, r.schema.as_str(), r.name.as_str()),
            (16384, "public", "users")
        );
        assert_eq!(r.columns[1].name, "name");
        assert_eq!(r.columns[1].type_oid, 25);

        let mut update = vec![b'U'];
        update.extend(16384u32.to_be_bytes());
        update.push(b'O');
        update.extend(tuple(&[Some("1"), Some("alice")]));
        update.push(b'N');
        update.extend(tuple(&[Some("1"), None]));
        let message = decode(&Bytes::from(update)).unwrap();
        let Message::Update {
            old: Some((OldKind::Full, old)),
            new,
            ..
        } = message
        else {
            panic!("not an update with its old row: {message:?}");
        };
        assert_eq!(old[1], Datum::Text(Bytes::from_static(b"alice")));
        assert_eq!(new[1], Datum::Null);

        let mut truncate = vec![b'T'];
        truncate.extend(2u32.to_be_bytes());
        truncate.push(0);
        truncate.extend(1u32.to_be_bytes());
        truncate.extend(2u32.to_be_bytes());
        assert_eq!(
            decode(&Bytes::from(truncate)).unwrap(),
            Message::Truncate {
                relations: vec![1, 2]
            }
        );
    }

    #[test]
    fn a_short_message_is_an_error_not_a_panic() {
        let mut insert = vec![b'I'];
        insert.extend(1u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(1u16.to_be_bytes());
        insert.push(b't');
        insert.extend(100u32.to_be_bytes());
        insert.extend(b"short");
        assert!(decode(&Bytes::from(insert)).is_err());
        assert!(decode(&Bytes::new()).is_err());
    }
}
