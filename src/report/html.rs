//! A self-contained `report.html`: headings, key/value tables, data tables and figures (linked
//! PNGs next to the page), so a run can be read in a browser without any tooling.

use std::fmt::Write;
use std::path::Path;

/// A report being assembled, section by section.
#[derive(Default)]
pub struct Html {
    body: String,
    title: String,
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Html {
    /// A report titled `title`.
    pub fn new(title: &str) -> Self {
        let mut h = Self {
            body: String::new(),
            title: title.into(),
        };
        let _ = writeln!(h.body, "<h1>{}</h1>", esc(title));
        h
    }

    /// A section heading.
    pub fn heading(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<h2>{}</h2>", esc(text));
        self
    }

    /// A paragraph.
    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        let _ = writeln!(self.body, "<p>{}</p>", esc(text));
        self
    }

    /// A table with a header row.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> &mut Self {
        let _ = write!(self.body, "<table><tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        let _ = writeln!(self.body, "</tr>");
        for r in rows {
            let _ = write!(self.body, "<tr>");
            for c in r {
                let _ = write!(self.body, "<td>{}</td>", esc(c));
            }
            let _ = writeln!(self.body, "</tr>");
        }
        let _ = writeln!(self.body, "</table>");
        self
    }

    /// A list of links: rows of (label, path relative to the page).
    pub fn links(&mut self, rows: &[Vec<String>]) -> &mut Self {
        let _ = writeln!(self.body, "<ul>");
        for r in rows {
            if let [label, href] = &r[..] {
                let _ = writeln!(
                    self.body,
                    "<li><a href=\"{}\">{}</a> ({})</li>",
                    esc(href),
                    esc(label),
                    esc(href)
                );
            }
        }
        let _ = writeln!(self.body, "</ul>");
        self
    }

    /// A figure: an image path relative to the page, with a caption.
    pub fn figure(&mut self, src: &str, caption: &str) -> &mut Self {
        let _ = writeln!(
            self.body,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            esc(src),
            esc(caption),
            esc(caption)
        );
        self
    }

    /// Writes the page atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
img{{max-width:100%;image-rendering:pixelated}}figure{{margin:1em 0}}figcaption{{color:#555}}\
</style></head><body>\n{}</body></html>\n",
            esc(&self.title),
            self.body
        );
        crate::io::write_atomic(path, page.as_bytes())
    }
}
