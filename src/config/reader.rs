//! A small typed reader over TOML with positions, so that `check-config` can report every
//! error at once with file:line:column, the key, and what was expected. serde stops at the first
//! error; this walks the whole document and keeps going.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key, e.g. `server.rate_limit.burst` or `source[0].kind`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: `{}`: {}",
                self.file, self.line, self.column, self.key, self.message
            )
        }
    }
}

/// Collects errors against one source text.
pub struct Errors<'s> {
    file: &'s str,
    text: &'s str,
    pub list: Vec<ConfigError>,
}

impl<'s> Errors<'s> {
    pub fn new(file: &'s str, text: &'s str) -> Self {
        Errors {
            file,
            text,
            list: Vec::new(),
        }
    }

    pub fn push(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let offset = span.start.min(self.text.len());
        let offset = (0..=offset)
            .rev()
            .find(|&i| self.text.is_char_boundary(i))
            .unwrap_or(0);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.list.push(ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// The errors in file order.
    pub fn into_sorted(mut self) -> Vec<ConfigError> {
        self.list.sort_by_key(|e| (e.line, e.column));
        self.list
    }
}

/// A value that can be read from a TOML value, with a description of what is expected.
pub trait FromToml: Sized {
    const EXPECTED: &'static str;
    fn from_toml(value: &DeValue<'_>) -> Option<Self>;
}

impl FromToml for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        value.as_bool()
    }
}

impl FromToml for String {
    const EXPECTED: &'static str = "a string";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

impl FromToml for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        let int = value.as_integer()?;
        i64::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok()
    }
}

impl FromToml for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        match value {
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            DeValue::Integer(_) => i64::from_toml(value).map(|i| i as f64),
            _ => None,
        }
    }
}

/// A span of time `[start, end]` in seconds.
impl FromToml for (f64, f64) {
    const EXPECTED: &'static str = "[start, end] in seconds";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        let items: Vec<_> = value.as_array()?.iter().collect();
        match items[..] {
            [a, b] => Some((f64::from_toml(a.get_ref())?, f64::from_toml(b.get_ref())?)),
            _ => None,
        }
    }
}

/// One TOML table being read: hands out its keys and reports the ones nobody asked for.
/// An absent table reads as empty, so every key takes its default.
pub struct Section<'t, 'i> {
    table: Option<&'t DeTable<'i>>,
    path: String,
    /// Every key asked for, present or not: the keys this table knows.
    asked: Vec<String>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub fn new(table: Option<&'t DeTable<'i>>, path: impl Into<String>) -> Self {
        Section {
            table,
            path: path.into(),
            asked: Vec::new(),
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn raw(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.asked.push(key.to_string());
        self.table?.get(key)
    }

    /// Reads `key`, falling back to `default` when absent; a value of the wrong type or failing
    /// `check` is reported and replaced by the default so reading can go on.
    pub fn value<T: FromToml>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        default: T,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> T {
        self.optional(errs, key, check).unwrap_or(default)
    }

    /// Reads an optional value (no default).
    pub fn optional<T: FromToml>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Option<T> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        let Some(x) = T::from_toml(v.get_ref()) else {
            errs.push(
                v.span(),
                &path,
                format!("expected {}, found {}", T::EXPECTED, v.get_ref().type_str()),
            );
            return None;
        };
        match check(&x) {
            Ok(()) => Some(x),
            Err(why) => {
                errs.push(v.span(), &path, why);
                None
            }
        }
    }

    /// Whether `key` is present (without marking it read).
    pub fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|t| t.contains_key(key))
    }

    /// Reads an array whose elements each parse with `parse` (which explains what it expects);
    /// `None` when absent or not an array (reported).
    pub fn array<T>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        parse: impl Fn(&DeValue<'_>) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        let Some(items) = v.get_ref().as_array() else {
            errs.push(
                v.span(),
                &path,
                format!("expected an array, found {}", v.get_ref().type_str()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match parse(item.get_ref()) {
                Ok(x) => out.push(x),
                Err(why) => errs.push(item.span(), &format!("{path}[{i}]"), why),
            }
        }
        Some(out)
    }

    /// A sub-table (`[a.b]`); absent or mistyped gives an empty section.
    pub fn table(&mut self, errs: &mut Errors, key: &str) -> Section<'t, 'i> {
        let path = self.key_path(key);
        let table = self.raw(key).and_then(|v| match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                errs.push(
                    v.span(),
                    &path,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        });
        Section::new(table, path)
    }

    /// An array of tables (`[[key]]`), each with the span of its body.
    pub fn tables(&mut self, errs: &mut Errors, key: &str) -> Vec<(Section<'t, 'i>, Range<usize>)> {
        let path = self.key_path(key);
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let Some(items) = v.get_ref().as_array() else {
            errs.push(v.span(), &path, "expected an array of tables ([[...]])");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => {
                    out.push((Section::new(Some(t), format!("{path}[{i}]")), item.span()))
                }
                _ => errs.push(item.span(), &format!("{path}[{i}]"), "expected a table"),
            }
        }
        out
    }

    /// Reports every key that was not read: unknown keys are errors, not silently ignored.
    pub fn finish(self, errs: &mut Errors) {
        for (k, _) in self.table.into_iter().flat_map(|t| t.iter()) {
            let name: &str = k.get_ref().as_ref();
            if !self.asked.iter().any(|a| a == name) {
                let why = format!("unknown key, expected one of: {}", self.asked.join(", "));
                errs.push(k.span(), &self.key_path(name), why);
            }
        }
    }
}
