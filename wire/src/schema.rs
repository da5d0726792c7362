//! What the manager knows of a window's fields and of a source's format:
//! ESP's field types (esp-protocol.md §5.1), a window's schema, and the fs
//! formats (`fstype`). The config reads them (`config::project`,
//! `config::fs`); the decoders and the encoder of this crate use them.

use std::fmt;

use crate::clip;

/// ESP field types (esp-protocol.md §5.1), with their accepted spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Int32,
    Int64,
    Double,
    Money,
    String,
    Rstring,
    Date,
    Stamp,
    Blob,
    ArrayDbl,
    ArrayI32,
    ArrayI64,
}

impl FieldType {
    /// Every spelling we accept, for parsing and for error messages.
    pub const SPELLINGS: &'static [(&'static str, FieldType)] = &[
        ("int32", FieldType::Int32),
        ("int64", FieldType::Int64),
        ("double", FieldType::Double),
        ("money", FieldType::Money),
        ("string", FieldType::String),
        ("rstring", FieldType::Rstring),
        ("date", FieldType::Date),
        ("stamp", FieldType::Stamp),
        ("blob", FieldType::Blob),
        ("array(dbl)", FieldType::ArrayDbl),
        ("array(double)", FieldType::ArrayDbl),
        ("array(i32)", FieldType::ArrayI32),
        ("array(int32)", FieldType::ArrayI32),
        ("array(i64)", FieldType::ArrayI64),
        ("array(int64)", FieldType::ArrayI64),
    ];

    pub fn parse(s: &str) -> Option<FieldType> {
        let s = s.trim();
        Self::SPELLINGS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, t)| *t)
    }

    /// The canonical ESP name.
    pub fn name(self) -> &'static str {
        Self::SPELLINGS
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every FieldType has a spelling")
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub key: bool,
}

/// The fields of a window, in schema order (the order of CSV columns).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    pub fn keys(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.key)
    }

    /// Parses the compact form `id*:int64,symbol:string` (`*` marks a key).
    pub fn parse_compact(s: &str) -> Result<Schema, String> {
        let mut fields: Vec<Field> = Vec::new();
        for (i, part) in s.split(',').enumerate() {
            let part = part.trim();
            let Some((name, ty)) = part.split_once(':') else {
                return Err(format!(
                    "schema-string entry {} {:?} is not name:type (e.g. id*:int64)",
                    i + 1,
                    clip(part)
                ));
            };
            let (name, key) = match name.trim().strip_suffix('*') {
                Some(n) => (n.trim(), true),
                None => (name.trim(), false),
            };
            let Some(ty) = FieldType::parse(ty) else {
                return Err(unknown_type(ty.trim(), name));
            };
            if name.is_empty() {
                return Err(format!(
                    "schema-string entry {} has an empty field name",
                    i + 1
                ));
            }
            if fields.iter().any(|f| f.name == name) {
                return Err(format!("field '{name}' appears twice in the schema"));
            }
            fields.push(Field {
                name: name.to_string(),
                ty,
                key,
            });
        }
        Ok(Schema { fields })
    }
}

/// The message for a type no spelling names, listing the accepted ones.
pub fn unknown_type(ty: &str, field: &str) -> String {
    let accepted: Vec<&str> = FieldType::SPELLINGS.iter().map(|(n, _)| *n).collect();
    format!(
        "field '{field}' has unknown type {ty:?}; accepted: {}",
        accepted.join(", ")
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Csv,
    Json,
    Xml,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Csv => "csv",
            FsType::Json => "json",
            FsType::Xml => "xml",
        }
    }
}
