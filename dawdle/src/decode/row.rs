use serde_json::{Map, Value};

use super::error::shorten;
use super::{decode_value, Decode, DecodeError, ValueError};
use crate::table::Table;

/// One captured row, as the JSON object a trigger wrote: what
/// [`Watched::decode`](crate::Watched::decode) reads fields from.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'static Table,
    values: &'a Map<String, Value>,
}

impl<'a> Row<'a> {
    /// Wraps the JSON of a row of `table`.
    pub fn new(table: &'static Table, value: &'a Value) -> Result<Row<'a>, DecodeError> {
        match value {
            Value::Object(values) => Ok(Row { table, values }),
            other => Err(DecodeError::not_an_object(table, other)),
        }
    }

    /// The table the row belongs to.
    pub fn table(&self) -> &'static Table {
        self.table
    }

    /// The raw JSON of `column`, if present.
    pub fn raw(&self, column: &str) -> Option<&'a Value> {
        self.values.get(column)
    }

    /// Decodes `column` with its [`Decode`] implementation.
    pub fn get<T: Decode>(
        &self,
        column: &'static str,
        rust_type: &'static str,
    ) -> Result<T, DecodeError> {
        let value = self.present(column)?;
        decode_value::<T>(value).map_err(|reason| self.error::<T>(column, rust_type, value, reason))
    }

    /// Decodes `column` with `T`'s `serde::Deserialize` (`#[dawdle(serde)]`).
    pub fn get_serde<T: serde::de::DeserializeOwned>(
        &self,
        column: &'static str,
        rust_type: &'static str,
    ) -> Result<T, DecodeError> {
        let value = self.present(column)?;
        T::deserialize(value).map_err(|e| DecodeError::Value {
            table: self.table.qualified_name().to_string(),
            column,
            sql_type: "json (via serde)".to_owned(),
            rust_type,
            value: shorten(value),
            reason: ValueError::new(e),
        })
    }

    fn present(&self, column: &'static str) -> Result<&'a Value, DecodeError> {
        self.values
            .get(column)
            .ok_or_else(|| DecodeError::MissingColumn {
                table: self.table.qualified_name().to_string(),
                rust_type: self.table.type_name,
                column,
            })
    }

    fn error<T: Decode>(
        &self,
        column: &'static str,
        rust_type: &'static str,
        value: &Value,
        reason: ValueError,
    ) -> DecodeError {
        DecodeError::Value {
            table: self.table.qualified_name().to_string(),
            column,
            sql_type: T::sql_type().into_owned(),
            rust_type,
            value: shorten(value),
            reason,
        }
    }
}
