//! The layering of docs/architecture.md, checked: the library's top-level modules import one
//! another (`crate::…` in code outside comments and test modules) without a cycle, and each
//! only from the layers below it as the page lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, bottom up, as docs/architecture.md states them.
const LAYERS: &[&[&str]] = &[
    &[
        "config",
        "fourier",
        "interrupt",
        "io",
        "lock",
        "progress",
        "resources",
        "rng",
        "similarity",
    ],
    &["data", "device"],
    &["nn"],
    &["denoise"],
    &["analysis", "sampling"],
    &["train"],
    &["experiments"],
    &["report"],
];

/// Top-level module → the top-level modules its code names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap();
            let first = rel.iter().next().unwrap().to_string_lossy().to_string();
            let top = first.trim_end_matches(".rs").to_string();
            if ["lib", "main", "cli"].contains(&top.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for line in text.lines() {
                let line = line.trim();
                // the test module closes each file: what it imports is not the library's
                if line.starts_with("#[cfg(test)]") {
                    break;
                }
                let code = line.split("//").next().unwrap_or_default();
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != top {
                        out.entry(top.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn modules_import_only_from_the_layers_below() {
    let layer_of = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let graph = imports();
    assert!(graph.len() >= 8, "found only {graph:?}");
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some(own) = layer_of(module) else {
            wrong.push(format!("{module} is in no layer of docs/architecture.md"));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(l) if l < own => {}
                Some(_) => wrong.push(format!("{module} imports {dep}, not from a layer below")),
                None => wrong.push(format!("{dep} (imported by {module}) is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
