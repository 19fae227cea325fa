//! The source tree reads as the architecture: `src/` holds `lib.rs`, `error.rs` and one
//! folder per layer, and a folder never imports from a layer above it. Inside a layer,
//! files import each other freely: encapsulation there is the types' business (private
//! fields behind methods), not an import rule's.
//!
//! The check reads every `use` statement and every inline `crate::`/`super::` path in
//! `src/` (comments and `#[cfg(test)]` modules excluded: they are not the architecture)
//! and resolves it to the file that defines the item, following the re-exports of each
//! folder's `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers from the bottom up. A folder may import from its own layer's files and
/// from any folder of a lower rank; folders of equal rank do not import each other.
const LAYERS: &[(&str, u32)] = &[
    ("reactor", 0),
    ("time", 1),
    ("task", 1),
    ("stream", 2),
    ("net", 3),
    ("process", 3),
    ("testing", 7),
    ("http", 4),
    ("redis", 4),
    ("web", 5),
    ("websocket", 6),
];

/// Files at the top of `src/` besides the folders.
const ROOT_FILES: &[&str] = &["error.rs", "lib.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rank(folder: &str) -> Option<u32> {
    LAYERS.iter().find(|(f, _)| *f == folder).map(|&(_, r)| r)
}

/// `reactor/ioloop.rs` for `src/reactor/ioloop.rs`.
fn rel(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` modules.
fn architecture_code(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break; // unit tests come last in every file
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every path mentioned by a `use` statement (braces expanded) or inline as
/// `crate::a::b` / `super::a::b`, as segment lists starting with `crate`, `super` or
/// `self`.
fn mentioned_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    // `use` statements, possibly spanning lines and nesting braces.
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let after = &rest[at..];
        let end = after.find(';').expect("a use statement ends with ;");
        let statement = after["use ".len()..end]
            .split_whitespace()
            .collect::<String>();
        expand(&statement, &mut Vec::new(), &mut paths);
        rest = &after[end..];
    }
    // Inline paths.
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(anchor) {
            let start = from + at;
            from = start + anchor.len();
            let before = code[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let tail: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<String> = tail
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            paths.push(segments);
        }
    }
    paths
}

fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        let before = code[..start].chars().next_back();
        if before.is_none_or(|c| c.is_whitespace() || c == '{' || c == ';' || c == ')') {
            return Some(start);
        }
        from = start + 4;
    }
    None
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(statement: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut depth = 0;
    let mut part_start = 0;
    let mut parts = Vec::new();
    for (i, c) in statement.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&statement[part_start..i]);
                part_start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&statement[part_start..]);
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        match part.find('{') {
            Some(open) => {
                let head: Vec<String> = part[..open]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let len = prefix.len();
                prefix.extend(head);
                expand(&part[open + 1..part.len() - 1], prefix, out);
                prefix.truncate(len);
            }
            None => {
                let mut path = prefix.clone();
                let item = part.split(" as ").next().unwrap_or(part);
                path.extend(
                    item.split("::")
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                out.push(path);
            }
        }
    }
}

/// The file (relative to `src/`) a path names: `crate::reactor::ioloop::X` names
/// `reactor/ioloop.rs`; `crate::reactor::X` names `reactor/mod.rs`; `super::x::Y` in
/// `reactor/a.rs` names `reactor/x.rs`; `super::super::b::Z` in `http/server/c.rs` names
/// `http/b.rs`. Folders nest: `crate::http::server::X` names `http/server/mod.rs`. `None`
/// for paths outside the crate's files (`std`, dependencies) and for `self::` items of
/// an ordinary file; `lib.rs` for root items (reported separately).
fn resolve(from: &str, path: &[String], files: &BTreeSet<String>) -> Option<String> {
    // The module `from` defines, as a folder path ("" for the crate root), and whether
    // that module is a folder (`mod.rs`, `lib.rs`) or a file.
    let from_dir = Path::new(from)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_folder_module = from.ends_with("mod.rs") || from == "lib.rs";
    let parent = |dir: &str| -> String {
        Path::new(dir)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut segments = path.iter().map(String::as_str).peekable();
    let mut folder = match *segments.peek()? {
        "crate" => {
            segments.next();
            String::new()
        }
        "self" if is_folder_module => {
            segments.next();
            from_dir
        }
        "self" => return None,
        "super" => {
            segments.next();
            // `super` of a file is its folder; of a folder module, the folder above.
            let mut dir = if is_folder_module {
                parent(&from_dir)
            } else {
                from_dir
            };
            while segments.peek() == Some(&"super") {
                segments.next();
                dir = parent(&dir);
            }
            dir
        }
        _ => return None,
    };
    let join = |folder: &str, name: &str| {
        if folder.is_empty() {
            name.to_owned()
        } else {
            format!("{folder}/{name}")
        }
    };
    for segment in segments {
        if files.contains(&join(&join(&folder, segment), "mod.rs")) {
            folder = join(&folder, segment);
        } else if files.contains(&join(&folder, &format!("{segment}.rs"))) {
            return Some(join(&folder, &format!("{segment}.rs")));
        } else {
            break;
        }
    }
    Some(if folder.is_empty() {
        "lib.rs".to_owned()
    } else {
        join(&folder, "mod.rs")
    })
}

struct Tree {
    /// `from file -> files it imports`, with a sample path for each edge.
    edges: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_tree() -> Tree {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    let files: BTreeSet<String> = paths.iter().map(|p| rel(p)).collect();
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for path in &paths {
        let from = rel(path);
        let code = architecture_code(&fs::read_to_string(path).unwrap());
        let targets = edges.entry(from.clone()).or_default();
        for mentioned in mentioned_paths(&code) {
            if let Some(to) = resolve(&from, &mentioned, &files) {
                if to != from {
                    targets.entry(to).or_insert_with(|| mentioned.join("::"));
                }
            }
        }
    }
    Tree { edges }
}

fn folder_of(file: &str) -> Option<&str> {
    file.split_once('/').map(|(folder, _)| folder)
}

#[test]
fn src_holds_lib_error_and_one_folder_per_layer() {
    let mut entries: Vec<String> = fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    for entry in &entries {
        let is_root_file = ROOT_FILES.contains(&entry.as_str());
        let is_layer = src().join(entry).is_dir() && rank(entry).is_some();
        assert!(
            is_root_file || is_layer,
            "src/{entry} is neither lib.rs, error.rs nor a layer folder listed in LAYERS"
        );
    }
    for (folder, _) in LAYERS {
        let module = src().join(folder).join("mod.rs");
        let text = fs::read_to_string(&module)
            .unwrap_or_else(|_| panic!("src/{folder}/mod.rs is missing"));
        assert!(
            text.starts_with("//!"),
            "src/{folder}/mod.rs must open with a module doc saying what the layer is for"
        );
    }
}

#[test]
fn no_folder_imports_from_a_layer_above_it() {
    let tree = read_tree();
    let mut violations = Vec::new();
    for (from, targets) in &tree.edges {
        let Some(from_folder) = folder_of(from) else {
            continue; // lib.rs re-exports everything; error.rs imports nothing
        };
        for (to, sample) in targets {
            match folder_of(to) {
                None if to == "lib.rs" => violations.push(format!(
                    "{from} imports `{sample}` through the crate root: name its layer"
                )),
                None => {} // error.rs: shared by every layer
                Some(to_folder) if to_folder == from_folder => {}
                Some(to_folder) => {
                    let (a, b) = (rank(from_folder).unwrap(), rank(to_folder).unwrap());
                    if b >= a {
                        violations.push(format!(
                            "{from} (layer {from_folder}) imports `{sample}` from layer {to_folder}"
                        ));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_imports_through_braces_super_and_inline_paths() {
    let code = "use crate::reactor::{ioloop::IoLoop, queue::{Queued, TaskKey}};\n\
                use super::buffer::ReadBuffer;\n\
                fn f() { let _ = crate::time::sleep::sleep; }\n";
    let paths: Vec<String> = mentioned_paths(code)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    for expected in [
        "crate::reactor::ioloop::IoLoop",
        "crate::reactor::queue::Queued",
        "crate::reactor::queue::TaskKey",
        "super::buffer::ReadBuffer",
        "crate::time::sleep::sleep",
    ] {
        assert!(
            paths.contains(&expected.to_owned()),
            "{expected} in {paths:?}"
        );
    }
    let files: BTreeSet<String> = [
        "reactor/mod.rs",
        "reactor/ioloop.rs",
        "stream/mod.rs",
        "stream/buffer.rs",
    ]
    .map(str::to_owned)
    .into();
    let path = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        resolve(
            "stream/iostream.rs",
            &path("super::buffer::ReadBuffer"),
            &files
        ),
        Some("stream/buffer.rs".to_owned())
    );
    assert_eq!(
        resolve(
            "stream/iostream.rs",
            &path("crate::reactor::IoLoop"),
            &files
        ),
        Some("reactor/mod.rs".to_owned())
    );
    assert_eq!(
        resolve("stream/iostream.rs", &path("crate::IoLoop"), &files),
        Some("lib.rs".to_owned())
    );
    assert_eq!(
        resolve("stream/iostream.rs", &path("std::io::Read"), &files),
        None
    );
    // Nested folders: `super::super` climbs two levels, `crate::` paths descend.
    let files: BTreeSet<String> = [
        "http/mod.rs",
        "http/body.rs",
        "http/server/mod.rs",
        "http/server/options.rs",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(
        resolve(
            "http/server/conn.rs",
            &path("super::super::body::Framing"),
            &files
        ),
        Some("http/body.rs".to_owned())
    );
    assert_eq!(
        resolve("http/server/mod.rs", &path("super::body::Framing"), &files),
        Some("http/body.rs".to_owned())
    );
    assert_eq!(
        resolve(
            "http/body.rs",
            &path("crate::http::server::options::Options"),
            &files
        ),
        Some("http/server/options.rs".to_owned())
    );
    assert_eq!(
        resolve(
            "http/body.rs",
            &path("crate::http::server::HttpServer"),
            &files
        ),
        Some("http/server/mod.rs".to_owned())
    );
}
