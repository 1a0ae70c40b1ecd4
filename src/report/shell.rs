//! What the command line says about itself: shell completion scripts and the man page, both
//! generated from the clap definitions so they never drift from the flags.

use clap::CommandFactory;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "lbprobe", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page in roff, with a section per subcommand.
pub fn man_page() -> std::io::Result<String> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // Each subcommand's own page, appended under a heading of its name: one file to
        // install, every flag in it.
        let name = format!("lbprobe-{}", sub.get_name());
        let sub = sub.clone().bin_name(format!("lbprobe {}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        let page = String::from_utf8_lossy(&page);
        // Drop the sub-page's own title line; keep its sections under a heading.
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        for line in page.lines().filter(|l| !l.starts_with(".TH ")) {
            let line = line
                .strip_prefix(".SH ")
                .map_or(line.to_string(), |h| format!(".SS {h}"));
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_the_subcommands_and_their_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let script = completions(shell);
            // Fish writes long flags as `-l listener`.
            for word in ["scan", "explain", "listener", "response-timeout"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_man_page_covers_every_subcommand() {
        let page = man_page().expect("renders");
        assert!(
            page.starts_with(".ie") || page.contains(".TH lbprobe"),
            "{}",
            &page[..200]
        );
        for sub in ["LBPROBE-SCAN", "LBPROBE-LOGS", "LBPROBE-EXPLAIN"] {
            assert!(page.contains(sub), "no section {sub}");
        }
        assert!(page.contains("response\\-timeout"), "flags are in it");
    }
}
