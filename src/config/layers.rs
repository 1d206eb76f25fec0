//! Configuration files layered one over another, and the receiver profiles, as one document.
//!
//! `pitime run --config A --config B` reads B over A: tables merge key by key, a key set in a
//! later file wins, and an array (including the `[[source]]` blocks) is replaced as a whole. The
//! image uses this to lay the boot partition's file over the shipped defaults, so that a minimal
//! file cannot silently lose them.
//!
//! Every text is kept in one string and each parsed tree's positions are moved to where its text
//! sits in that string, so a position names its file, line and column, and a relative path its
//! file's directory, wherever the value ended up in the merged tree.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One text of the document: a configuration file or a profile.
struct Layer {
    /// How errors and `--effective` name it: the file's path, or `profile NAME`.
    name: String,
    range: Range<usize>,
    /// Where its relative paths start; `None` for profiles, which name no relative paths.
    dir: Option<PathBuf>,
}

/// A named text, before it is parsed.
pub struct Text {
    pub name: String,
    pub text: String,
    pub dir: Option<PathBuf>,
}

impl Text {
    /// A configuration file's text; its relative paths resolve against its directory.
    pub fn file(path: &Path, text: String) -> Text {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Text {
            name: path.display().to_string(),
            text,
            dir: Some(if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            }),
        }
    }
}

/// The texts, concatenated; `Layered` and `Errors` borrow it.
pub struct Document {
    all: String,
    /// Where each line of `all` starts, so that a position is found without rescanning.
    line_starts: Vec<usize>,
    layers: Vec<Layer>,
    /// How many layers are configuration files (the rest are profiles).
    files: usize,
}

/// A position in one layer, 1-based.
pub struct Position<'d> {
    pub file: &'d str,
    pub line: usize,
    pub column: usize,
}

impl Document {
    /// The configuration files, lowest first, then the profiles.
    pub fn new<'p>(
        files: Vec<Text>,
        profiles: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) -> Document {
        let count = files.len();
        let profiles = profiles.into_iter().map(|(name, text)| Text {
            name: format!("profile {name}"),
            text: text.to_string(),
            dir: None,
        });
        let mut all = String::new();
        let mut layers = Vec::new();
        for t in files.into_iter().chain(profiles) {
            let start = all.len();
            all.push_str(&t.text);
            layers.push(Layer {
                name: t.name,
                range: start..all.len(),
                dir: t.dir,
            });
            all.push('\n');
        }
        let line_starts = std::iter::once(0)
            .chain(all.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Document {
            all,
            line_starts,
            layers,
            files: count,
        }
    }

    /// The names of the configuration files, lowest first.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.layers[..self.files].iter().map(|l| l.name.as_str())
    }

    fn layer(&self, offset: usize) -> Option<&Layer> {
        self.layers
            .iter()
            .find(|l| l.range.start <= offset && offset <= l.range.end)
    }

    /// The file, line and column of a position.
    pub fn position(&self, offset: usize) -> Position<'_> {
        let Some(layer) = self.layer(offset).or(self.layers.first()) else {
            return Position {
                file: "",
                line: 0,
                column: 0,
            };
        };
        let offset = offset.clamp(layer.range.start, layer.range.end);
        let offset = (0..=offset)
            .rev()
            .find(|&i| self.all.is_char_boundary(i))
            .unwrap_or(0);
        let line_of = |at: usize| self.line_starts.partition_point(|&start| start <= at) - 1;
        let (line, first) = (line_of(offset), line_of(layer.range.start));
        let line_start = self.line_starts[line];
        Position {
            file: &layer.name,
            line: line - first + 1,
            column: self.all[line_start..offset].chars().count() + 1,
        }
    }

    /// The directory that relative paths written at `offset` start from.
    pub fn dir_at(&self, offset: usize) -> &Path {
        self.layer(offset)
            .and_then(|l| l.dir.as_deref())
            .unwrap_or(Path::new("."))
    }

    /// The text of a span, as written.
    pub fn text(&self, span: Range<usize>) -> &str {
        self.all.get(span).unwrap_or("")
    }

    /// Parses every layer: the configuration files merged into one tree, and each profile's
    /// table by name. Syntax errors are returned with their position in `all`.
    pub fn parse(&self) -> Layered<'_> {
        let mut root = DeTable::new();
        let mut profiles = Vec::new();
        let mut errors = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (table, errs) = DeTable::parse_recoverable(&self.all[layer.range.clone()]);
            let at = layer.range.start;
            errors.extend(errs.into_iter().map(|e| {
                let span = e.span().unwrap_or(0..0);
                (span.start + at..span.end + at, e.message().to_string())
            }));
            let table = shift_table(table.into_inner(), at);
            if i < self.files {
                merge(&mut root, table);
            } else {
                let name = layer.name.trim_start_matches("profile ").to_string();
                profiles.push((name, table));
            }
        }
        Layered {
            root,
            profiles,
            errors,
        }
    }
}

/// The parsed document.
pub struct Layered<'d> {
    pub root: DeTable<'d>,
    pub profiles: Vec<(String, DeTable<'d>)>,
    /// Syntax errors: span and message.
    pub errors: Vec<(Range<usize>, String)>,
}

/// Lays `over` on `base`: tables merge, anything else (arrays included) is replaced.
fn merge<'d>(base: &mut DeTable<'d>, over: DeTable<'d>) {
    for (key, value) in over {
        let name = key.get_ref().to_string();
        if let (Some(DeValue::Table(below)), DeValue::Table(_)) = (
            base.get_mut(name.as_str()).map(Spanned::get_mut),
            value.get_ref(),
        ) {
            let DeValue::Table(above) = value.into_inner() else {
                unreachable!("matched as a table above")
            };
            merge(below, above);
        } else {
            // Removed first, so that the key's own position is the later file's.
            base.remove(name.as_str());
            base.insert(key, value);
        }
    }
}

fn shifted(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

fn shift_table(table: DeTable<'_>, by: usize) -> DeTable<'_> {
    let mut out = DeTable::new();
    for (key, value) in table {
        let key = Spanned::new(shifted(key.span(), by), key.into_inner());
        out.insert(key, shift(value, by));
    }
    out
}

fn shift(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = shifted(value.span(), by);
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(shift_table(t, by)),
        DeValue::Array(mut items) => {
            // In place, so that the array keeps whether it was written as [[tables]].
            for item in items.iter_mut() {
                let old = std::mem::replace(item, Spanned::new(0..0, DeValue::Boolean(false)));
                *item = shift(old, by);
            }
            DeValue::Array(items)
        }
        other => other,
    };
    Spanned::new(span, inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(files: &[(&str, &str)]) -> Document {
        let texts = files
            .iter()
            .map(|(name, text)| Text::file(Path::new(name), text.to_string()))
            .collect();
        Document::new(texts, [("p", "a = 1\nb = 2\n")])
    }

    #[test]
    fn later_files_win_key_by_key_and_replace_arrays() {
        let d = doc(&[
            ("/etc/a.toml", "[x]\nkeep = 1\nset = 1\nlist = [1, 2]\n"),
            ("/run/b.toml", "[x]\nset = 2\nlist = [3]\n"),
        ]);
        let parsed = d.parse();
        assert!(parsed.errors.is_empty());
        let DeValue::Table(x) = parsed.root["x"].get_ref() else {
            panic!("x is a table")
        };
        let text = |key: &str| d.text(x[key].span()).to_string();
        assert_eq!(
            (text("keep"), text("set"), text("list")),
            ("1".into(), "2".into(), "[3]".into())
        );
        let at = d.position(x["set"].span().start);
        assert_eq!((at.file, at.line, at.column), ("/run/b.toml", 2, 7));
        assert_eq!(d.dir_at(x["keep"].span().start), Path::new("/etc"));
        assert_eq!(d.dir_at(x["set"].span().start), Path::new("/run"));
    }

    #[test]
    fn profiles_are_kept_apart_and_positions_name_them() {
        let d = doc(&[("c.toml", "")]);
        let parsed = d.parse();
        assert!(parsed.root.is_empty());
        let (name, table) = &parsed.profiles[0];
        assert_eq!(name, "p");
        let at = d.position(table["b"].span().start);
        assert_eq!((at.file, at.line), ("profile p", 2));
        assert_eq!(d.dir_at(0), Path::new("."));
    }

    #[test]
    fn syntax_errors_are_placed_in_their_file() {
        let d = doc(&[("a.toml", "x = 1\n"), ("b.toml", "\n\ny = = 2\n")]);
        let parsed = d.parse();
        let (span, _) = &parsed.errors[0];
        let at = d.position(span.start);
        assert_eq!((at.file, at.line), ("b.toml", 3));
    }
}
