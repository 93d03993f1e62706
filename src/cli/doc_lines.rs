//! The docs cannot rot: every `tweedie …` command line in a fenced block of README.md and
//! docs/**/*.md is parsed by the real command-line parser (flags, values, subcommands), so a
//! renamed flag or a mistyped value fails the tests. Lines with `...` (an elided part) are
//! checked up to it only for their subcommand. And every relative link of those pages (to
//! other pages, figures, files of the repository) resolves, so a moved page or a renamed figure
//! fails here rather than in a reader's browser.

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use clap::Parser;
    use std::path::{Path, PathBuf};

    /// The markdown files of the repository's documentation.
    fn documents() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = vec![root.join("README.md")];
        let mut stack = vec![root.join("docs")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "md") {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The command lines of fenced blocks: `tweedie …` (also after `cargo run --release --`
    /// and `&&`), continuation lines joined, trailing comments dropped.
    pub(super) fn command_lines(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut fenced = false;
        let mut pending: Option<String> = None;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                pending = None;
                continue;
            }
            if !fenced {
                continue;
            }
            let code = match line.find(" #") {
                Some(i) if !line[..i].contains('\'') => &line[..i],
                _ => line,
            };
            let code = code.trim();
            let joined = match pending.take() {
                Some(p) => format!("{p} {code}"),
                None if code.starts_with("tweedie ") => code.to_string(),
                None => match code.find("cargo run --release -- ") {
                    Some(i) => format!("tweedie {}", &code[i + 23..]),
                    None => continue,
                },
            };
            match joined.strip_suffix('\\') {
                Some(rest) => pending = Some(rest.trim_end().to_string()),
                None => out.push(joined),
            }
        }
        out
    }

    /// Splits a shell line into words (single and double quotes; no expansions in the docs).
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => quote = Some(c),
                (None, c) if c.is_whitespace() => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                (None, c) => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    #[test]
    fn every_documented_command_line_parses() {
        let mut checked = 0;
        let mut failures = Vec::new();
        for doc in documents() {
            let text = std::fs::read_to_string(&doc).unwrap();
            for line in command_lines(&text) {
                // a shell pipeline or redirection ends the command
                let line = line
                    .split(['|', '>', ';'])
                    .next()
                    .unwrap_or_default()
                    .split(" && ")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let mut args = words(&line);
                if let Some(i) = args.iter().position(|w| w == "..." || w == "…") {
                    // an elided line: only what precedes the ellipsis is meaningful; check that
                    // its subcommand and named flags exist by asking for help after them
                    args.truncate(i);
                    args.retain(|a| !a.starts_with('-'));
                    args.truncate(3);
                    args.push("--help".into());
                }
                checked += 1;
                match Cli::try_parse_from(&args) {
                    Ok(_) => {}
                    Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(e) => failures.push(format!(
                        "{}: `{line}`: {}",
                        doc.display(),
                        e.to_string().lines().next().unwrap_or_default()
                    )),
                }
            }
        }
        eprintln!("{checked} documented command lines parsed");
        assert!(checked > 20, "only {checked} command lines found");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn command_lines_are_found_joined_and_stripped() {
        let text = "```sh\n# a comment\ntweedie train --data x \\\n    --steps 10   # why\nsudo apt-get install -y a && cargo run --release -- demo --out demo\necho tweedie nope\n```\ntweedie outside\n";
        assert_eq!(
            command_lines(text),
            [
                "tweedie train --data x --steps 10",
                "tweedie demo --out demo"
            ]
        );
    }

    /// The targets of `[text](target)` and `![alt](target)` in `text`, anchors removed.
    fn links(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let end = rest.find(')').unwrap_or(rest.len());
            let target = rest[..end].split('#').next().unwrap_or_default().trim();
            if !target.is_empty() && !target.contains("://") && !target.contains(' ') {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
        out
    }

    #[test]
    fn every_relative_link_resolves() {
        let mut broken = Vec::new();
        for page in documents() {
            let text = std::fs::read_to_string(&page).unwrap();
            for target in links(&text) {
                if !page.parent().unwrap().join(&target).exists() {
                    broken.push(format!("{}: {target}", page.display()));
                }
            }
        }
        assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    }

    #[test]
    fn links_are_found_with_anchors_removed() {
        let found = links("see [a](docs/a.md#part), ![f](figures/f.png) and [w](https://x.org/)");
        assert_eq!(found, vec!["docs/a.md", "figures/f.png"]);
    }
}
