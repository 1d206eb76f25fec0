//! `check-config --effective`: the configuration the daemon would run with, as a TOML file with
//! every key, its value and where it was set, so that nobody has to guess which file or default
//! won.

use super::reader::Setting;

/// Renders the settings, grouped by table in the order they were read.
pub fn render<'a>(files: impl Iterator<Item = &'a str>, settings: &[Setting]) -> String {
    let files: Vec<&str> = files.collect();
    let mut out = format!(
        "# The effective configuration of {}: each key's value, and where it was set\n\
         # (file:line, a receiver profile, or pitime's built-in default).\n",
        files.join(" layered with ")
    );
    let mut tables: Vec<(&str, Vec<(&str, &Setting)>)> = Vec::new();
    for s in settings {
        let (table, key) = s.key.rsplit_once('.').unwrap_or(("", &s.key));
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, keys)) => keys.push((key, s)),
            None => tables.push((table, vec![(key, s)])),
        }
    }
    for (table, keys) in tables {
        if !table.is_empty() {
            out.push_str(&format!("\n{}\n", header(table)));
        }
        for (key, s) in keys {
            let origin = s.origin.as_deref().unwrap_or("default");
            match &s.value {
                Some(v) => out.push_str(&format!("{key} = {v}  # {origin}\n")),
                None => out.push_str(&format!("# {key}: not set\n")),
            }
        }
    }
    out
}

/// `source[0]` is a `[[source]]` block; `source[0].simulate` its `[source.simulate]`.
fn header(table: &str) -> String {
    let plain: String = table
        .split('.')
        .map(|part| part.split('[').next().unwrap_or(part))
        .collect::<Vec<_>>()
        .join(".");
    match table.ends_with(']') {
        true => format!("[[{plain}]]"),
        false => format!("[{plain}]"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::PathBuf;

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn names_each_value_s_origin_and_reads_back_as_the_same_configuration() {
        let dir = std::env::temp_dir().join(format!("pitime-effective-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = write(
            &dir,
            "base.toml",
            "[discipline]\nactuator = \"kernel\"\ndrift_file = \"drift\"\n",
        );
        let over = write(
            &dir,
            "over.toml",
            "[server]\nlisten = [\"127.0.0.1:11123\"]\n\n[[source]]\nprofile = \"pollin-dcf1\"\nline = 22\n\n[[source]]\nkind = \"local\"\n",
        );
        let paths = [base.clone(), over.clone()];
        let text = Config::effective(&paths).unwrap();
        let over_name = over.display().to_string();
        let base_name = base.display().to_string();
        for line in [
            format!("actuator = \"kernel\"  # {base_name}:2"),
            format!(
                "drift_file = \"{}\"  # {base_name}:3",
                dir.join("drift").display()
            ),
            format!("listen = [\"127.0.0.1:11123\"]  # {over_name}:2"),
            "level = \"info\"  # default".to_string(),
            format!("line = 22  # {over_name}:6"),
            "bias = \"disabled\"  # profile pollin-dcf1:6".to_string(),
            "# pon_line: not set".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert_eq!(text.matches("[[source]]").count(), 2, "{text}");
        // The printed file is itself a configuration, and the same one.
        let printed = write(&dir, "effective.toml", &text);
        assert_eq!(
            Config::load(&printed).unwrap(),
            Config::load_layers(&paths).unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
