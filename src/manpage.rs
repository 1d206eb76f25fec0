//! The pitime(8) manual page, made from the command line's definitions so the two cannot
//! disagree. One page for all the commands, each in its own part under COMMANDS.

use std::io::{self, Write};

use clap_mangen::Man;

/// Renders the page (roff) for the built command line `cmd`.
pub fn render(mut cmd: clap::Command) -> io::Result<Vec<u8>> {
    // Building names the subcommands as they are typed (`pitime replay dcf77`).
    cmd.build();
    let mut out = Vec::new();
    let man = Man::new(cmd.clone()).section("8");
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command(sub, &mut out)?;
    }
    out.extend_from_slice(
        b".SH FILES\n.TP\n/etc/pitime/pitime.toml\nThe configuration (documented in \
          /usr/share/doc/pitime/configuration.md).\n.TP\n/var/lib/pitime/\nState: the drift \
          file.\n.SH SEE ALSO\n/usr/share/doc/pitime/, chronyc(1), ntpdig(1)\n",
    );
    Ok(out)
}

/// One command's part: its synopsis, description and options under its full name; a command
/// with subcommands gives each of those a part instead.
fn command(cmd: &clap::Command, out: &mut Vec<u8>) -> io::Result<()> {
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            command(sub, out)?;
        }
        return Ok(());
    }
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name());
    writeln!(out, ".SS \"{name}\"")?;
    let man = Man::new(cmd.clone());
    let mut part = Vec::new();
    man.render_synopsis_section(&mut part)?;
    man.render_description_section(&mut part)?;
    man.render_options_section(&mut part)?;
    // The sections' headings become paragraph breaks inside this command's part.
    for line in String::from_utf8_lossy(&part).lines() {
        match line.starts_with(".SH ") {
            true => out.extend_from_slice(b".PP\n"),
            false => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}
