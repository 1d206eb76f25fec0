//! A small typed reader over TOML with positions, so that `check-config` can report every
//! error at once with file:line:column, the key, and what was expected. serde stops at the first
//! error; this walks the whole document and keeps going.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::any;
use super::layers::Document;

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
        // Line 0: about the whole file (it cannot be read), no position to give.
        match self.line {
            0 => write!(f, "{}", self.file)?,
            line => write!(f, "{}:{line}:{}", self.file, self.column)?,
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors reported at most: a file of garbage gets a readable answer, quickly.
const MAX_ERRORS: usize = 100;

/// What reading the document found: its errors, and every setting with its origin (for
/// `check-config --effective`).
pub struct Errors<'d> {
    doc: &'d Document,
    pub list: Vec<ConfigError>,
    pub settings: Vec<Setting>,
}

/// One key of the effective configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// Dotted path, e.g. `server.rate_limit.burst` or `source[0].kind`.
    pub key: String,
    /// As TOML, or `None` when an optional key is not set.
    pub value: Option<String>,
    /// `file:line` where it was set; `None` for a built-in default.
    pub origin: Option<String>,
}

impl<'d> Errors<'d> {
    pub fn new(doc: &'d Document) -> Self {
        Errors {
            doc,
            list: Vec::new(),
            settings: Vec::new(),
        }
    }

    pub fn push(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let at = self.doc.position(span.start);
        self.list.push(ConfigError {
            file: at.file.to_string(),
            line: at.line,
            column: at.column,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// Records a key's effective value (`None`: not set) and where it was written (`None`: a
    /// built-in default).
    fn record(&mut self, key: String, value: Option<String>, written: Option<Range<usize>>) {
        let origin = written.map(|span| {
            let at = self.doc.position(span.start);
            format!("{}:{}", at.file, at.line)
        });
        self.settings.push(Setting { key, value, origin });
    }

    /// Records a key's value as written at `span`.
    fn record_written(&mut self, key: String, span: Range<usize>) {
        let text = self.doc.text(span.clone()).to_string();
        self.record(key, Some(text), Some(span));
    }

    /// The errors in file order, at most `MAX_ERRORS` of them and a count of the rest.
    pub fn into_sorted(mut self) -> (Vec<ConfigError>, Vec<Setting>) {
        self.list.sort_by_key(|e| (e.line, e.column));
        if self.list.len() > MAX_ERRORS {
            let rest = self.list.len() - MAX_ERRORS;
            self.list.truncate(MAX_ERRORS);
            let last = &self.list[MAX_ERRORS - 1];
            self.list.push(ConfigError {
                message: format!("and {rest} more errors"),
                key: String::new(),
                ..last.clone()
            });
        }
        (self.list, self.settings)
    }
}

/// A value that can be read from a TOML value, with a description of what is expected.
pub trait FromToml: Sized {
    const EXPECTED: &'static str;
    fn from_toml(value: &DeValue<'_>) -> Option<Self>;
    /// The value written as TOML, for `check-config --effective`.
    fn to_toml(&self) -> String;
}

impl FromToml for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        value.as_bool()
    }
    fn to_toml(&self) -> String {
        self.to_string()
    }
}

impl FromToml for String {
    const EXPECTED: &'static str = "a string";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
    fn to_toml(&self) -> String {
        // A JSON string is a TOML basic string.
        serde_json::Value::from(self.as_str()).to_string()
    }
}

impl FromToml for i64 {
    const EXPECTED: &'static str = "an integer";
    fn from_toml(value: &DeValue<'_>) -> Option<Self> {
        let int = value.as_integer()?;
        i64::from_str_radix(&int.as_str().replace('_', ""), int.radix()).ok()
    }
    fn to_toml(&self) -> String {
        self.to_string()
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
    fn to_toml(&self) -> String {
        // Debug keeps a decimal point (1.0) and writes exponents TOML reads (2e-6).
        format!("{self:?}")
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
    fn to_toml(&self) -> String {
        format!("[{}, {}]", self.0.to_toml(), self.1.to_toml())
    }
}

/// One TOML table being read: hands out its keys and reports the ones nobody asked for.
/// An absent table reads as empty, so every key takes its default.
pub struct Section<'t, 'i> {
    table: Option<&'t DeTable<'i>>,
    /// A receiver profile's keys, read where the table does not set them.
    profile: Option<&'t DeTable<'i>>,
    path: String,
    /// Every key asked for, present or not: the keys this table knows.
    asked: Vec<String>,
    /// Keys no longer read, reported with what replaced them.
    replaced: Vec<String>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub fn new(table: Option<&'t DeTable<'i>>, path: impl Into<String>) -> Self {
        Section {
            table,
            profile: None,
            path: path.into(),
            asked: Vec::new(),
            replaced: Vec::new(),
        }
    }

    /// Reads the keys this table does not set from the profile `name`. A profile describes one
    /// kind of receiver: a `kind` set here must be the profile's.
    pub fn with_profile(mut self, errs: &mut Errors, name: &str, profile: &'t DeTable<'i>) -> Self {
        let kind = |t: &DeTable| {
            t.get("kind")
                .map(|k| k.get_ref().as_str().map(str::to_string))
        };
        if let (Some(own), Some(Some(theirs))) =
            (self.table.and_then(|t| t.get("kind")), kind(profile))
        {
            if own.get_ref().as_str() != Some(&theirs) {
                let why = format!("the profile `{name}` is for a `{theirs}` source");
                errs.push(own.span(), &self.key_path("kind"), why);
            }
        }
        self.profile = Some(profile);
        self
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value set here or by the profile.
    fn written(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table
            .and_then(|t| t.get(key))
            .or_else(|| self.profile?.get(key))
    }

    fn raw(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.asked.push(key.to_string());
        self.written(key)
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
        let written = self.has(key);
        if let Some((x, span)) = self.read(errs, key, check) {
            errs.record_written(self.key_path(key), span);
            return x;
        }
        if !written {
            errs.record(self.key_path(key), Some(default.to_toml()), None);
        }
        default
    }

    /// Reads an optional value (no default).
    pub fn optional<T: FromToml>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> Option<T> {
        if !self.has(key) {
            errs.record(self.key_path(key), None, None);
        }
        let (x, span) = self.read(errs, key, check)?;
        errs.record_written(self.key_path(key), span);
        Some(x)
    }

    /// A present value, typed and checked, with where it is written.
    fn read<T: FromToml>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        check: impl FnOnce(&T) -> Result<(), String>,
    ) -> Option<(T, Range<usize>)> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        let Some(x) = T::from_toml(v.get_ref()) else {
            let found = v.get_ref().type_str();
            let why = match T::EXPECTED.ends_with(found) {
                // The right type, but not representable (a 30-digit integer).
                true => format!("expected {}, and this one is out of range", T::EXPECTED),
                false => format!("expected {}, found {found}", T::EXPECTED),
            };
            errs.push(v.span(), &path, why);
            return None;
        };
        match check(&x) {
            Ok(()) => Some((x, v.span())),
            Err(why) => {
                errs.push(v.span(), &path, why);
                None
            }
        }
    }

    /// Reads a path, relative to the directory of the file that names it; `None` when absent
    /// or empty. `check` sees the resolved path.
    pub fn path(
        &mut self,
        errs: &mut Errors,
        key: &str,
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Option<PathBuf> {
        if !self.has(key) {
            errs.record(self.key_path(key), None, None);
        }
        let (written, span): (String, _) = self.read(errs, key, any)?;
        if written.is_empty() {
            errs.record_written(self.key_path(key), span);
            return None;
        }
        let path = errs.doc.dir_at(span.start).join(written);
        if let Err(why) = check(&path) {
            errs.push(span, &self.key_path(key), why);
            return None;
        }
        // The effective value is the resolved path.
        let resolved = String::to_toml(&path.display().to_string());
        errs.record(self.key_path(key), Some(resolved), Some(span));
        Some(path)
    }

    /// Where `key`'s value is written, if it is.
    pub fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.written(key).map(Spanned::span)
    }

    /// Whether `key` is set, here or by the profile (without marking it read).
    pub fn has(&self, key: &str) -> bool {
        self.written(key).is_some()
    }

    /// Reads an array whose elements each parse with `parse` (which explains what it expects);
    /// `None` when absent or not an array (reported).
    pub fn array<T>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        parse: impl Fn(&DeValue<'_>) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let path = self.key_path(key);
        let Some(v) = self.raw(key) else {
            errs.record(path, None, None);
            return None;
        };
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
        errs.record_written(path, v.span());
        Some(out)
    }

    /// An array with a default, given as TOML and parsed like a written value.
    pub fn array_or<T>(
        &mut self,
        errs: &mut Errors,
        key: &str,
        default: &str,
        parse: impl Fn(&DeValue<'_>) -> Result<T, String>,
    ) -> Vec<T> {
        if !self.has(key) {
            self.asked.push(key.to_string());
            errs.record(self.key_path(key), Some(default.to_string()), None);
            return parse_default(default, parse);
        }
        self.array(errs, key, &parse)
            .unwrap_or_else(|| parse_default(default, parse))
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

    /// A key that is no longer read: an error saying what replaced it, rather than the
    /// unknown key's list of what is.
    pub fn replaced(&mut self, errs: &mut Errors, key: &str, by: &str) {
        self.replaced.push(key.to_string());
        if let Some(v) = self.written(key) {
            let why = format!("no longer read: replaced by {by} (see docs/configuration.md)");
            errs.push(v.span(), &self.key_path(key), why);
        }
    }

    /// Reports every key that was not read: unknown keys are errors, not silently ignored.
    pub fn finish(self, errs: &mut Errors) {
        for (k, _) in self.table.into_iter().flat_map(|t| t.iter()) {
            let name: &str = k.get_ref().as_ref();
            if !self.asked.iter().chain(&self.replaced).any(|a| a == name) {
                let why = format!("unknown key, expected one of: {}", self.asked.join(", "));
                errs.push(k.span(), &self.key_path(name), why);
            }
        }
    }
}

/// A built-in default array, written as TOML.
pub fn parse_default<T>(
    default: &str,
    parse: impl Fn(&DeValue<'_>) -> Result<T, String>,
) -> Vec<T> {
    let parsed = DeValue::parse(default).expect("built-in defaults are valid TOML");
    let items = parsed.get_ref().as_array().expect("an array default");
    items
        .iter()
        .map(|item| parse(item.get_ref()).expect("built-in defaults are valid"))
        .collect()
}
