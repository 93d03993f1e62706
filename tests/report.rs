//! The demo end to end (`--quick`), its pages checked in a real browser (headless Chromium:
//! every image loads, nothing is logged to the console), and `tweedie report` rebuilding the
//! same pages from the records alone.

mod common;

use common::{fails, ok, s};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("no Chromium found: install it (apt-get install chromium) to run the browser test");
}

/// Loads `page` in headless Chromium with a script that reports, in the title, how many images
/// the page has and which did not load; fails on a broken image or any console message.
fn check_in_browser(browser: &Path, page: &Path) -> usize {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = r#"<script>window.addEventListener("load",()=>{const bad=[...document.images].filter(i=>!i.complete||i.naturalWidth===0).map(i=>i.getAttribute("src"));document.title=(bad.length?"BROKEN ":"OK ")+document.images.length+" "+bad.join(" ");});</script>"#;
    assert!(html.contains("</body>"), "{}: no </body>", page.display());
    // beside the page, so its relative links resolve as they do for the page itself
    let copy = page.with_file_name(".browser-check.html");
    std::fs::write(&copy, html.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", copy.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    std::fs::remove_file(&copy).unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    assert!(
        title.starts_with("OK "),
        "{}: {title}\n{stderr}",
        page.display()
    );
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "{}: console says {console:?}",
        page.display()
    );
    title[3..].trim().parse().unwrap()
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            found.extend(pages(&p));
        } else if p.extension().is_some_and(|e| e == "html") {
            found.push(p);
        }
    }
    found
}

#[test]
fn the_demo_pages_render_in_a_browser_and_rebuild_from_records() {
    let browser = chromium();
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    let printed = ok(&["demo", "--quick", "--device", "cpu", "--out", s(&demo)]);
    assert!(printed.contains("index.html"), "{printed}");
    let index = demo.join("index.html");
    let text = std::fs::read_to_string(&index).unwrap();
    for needle in [
        "N = 5",
        "N = 100",
        "correlate",
        "Summary",
        "data fingerprint",
    ] {
        assert!(text.contains(needle), "index.html lacks {needle:?}");
    }

    // every page the demo wrote: all images load, no console output
    let all = pages(&demo);
    assert!(all.len() >= 8, "{all:?}");
    for page in &all {
        check_in_browser(&browser, page);
    }
    assert!(check_in_browser(&browser, &index) >= 6);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-index.png");
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,2400",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!(
            "file://{}",
            index.canonicalize().unwrap().display()
        ))
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // tweedie report rebuilds the same pages from the records alone
    let study_page = demo.join("study/report.html");
    let (before_index, before_study) = (
        std::fs::read(&index).unwrap(),
        std::fs::read(&study_page).unwrap(),
    );
    std::fs::remove_file(&index).unwrap();
    std::fs::remove_file(&study_page).unwrap();
    std::fs::remove_dir_all(demo.join("study/figures")).unwrap();
    ok(&["report", s(&demo.join("study"))]);
    assert_eq!(std::fs::read(&study_page).unwrap(), before_study);
    assert!(demo.join("study/figures/similarity_vs_n.png").exists());
    ok(&["report", s(&demo)]);
    assert_eq!(std::fs::read(&index).unwrap(), before_index);
    // a folder holding several record folders gets an index linking them
    let printed = ok(&["report", s(&demo.join("jacobian"))]);
    assert!(printed.contains("index.html"), "{printed}");
    check_in_browser(&browser, &demo.join("jacobian/index.html"));

    let err = fails(&["report", s(&tmp.path().join("nothing"))]);
    assert!(err.contains("no such folder"), "{err}");
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    let err = fails(&["report", s(&tmp.path().join("empty"))]);
    assert!(err.contains("holds no tweedie records"), "{err}");
}
