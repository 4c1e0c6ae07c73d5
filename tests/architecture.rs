//! The library's layering, checked on its source so that it stays as README.md draws it:
//!
//! - every top-level module imports only the layers below it: the foundations (`rng`,
//!   `prefetch`, `atomic_file`, then `shuffle`), then `model`, `data`, `train` (backend-neutral), the backends
//!   `cpu` and `gpu` (which never import each other), `files`, `inspect`, and `backends` (the one
//!   place that names both backends);
//! - no two source files import each other.
//!
//! Imports are read from `use` statements and `crate::`/`super::` paths outside comments and
//! outside `#[cfg(test)]` modules; a `pub use` in a module root (`mod.rs`, `lib.rs`) is the
//! module's surface, not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer; a module may import only from lower layers.
const LAYERS: &[&[&str]] = &[
    &["rng", "prefetch", "atomic_file"],
    &["shuffle"],
    &["model"],
    &["data"],
    &["train"],
    &["cpu", "gpu"],
    &["files"],
    &["inspect"],
    &["backends"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// A library source file and its module path (`src/gpu/device.rs` is `["gpu", "device"]`).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    is_root: bool,
}

fn library_files() -> Vec<SourceFile> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The binary's modules (`src/cli/`) are not the library.
                if path != src.join("cli") {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path == src.join("main.rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_root = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
            if is_root {
                module.pop();
            }
            files.push(SourceFile {
                path,
                module,
                is_root,
            });
        }
    }
    files
}

/// The source without comments and without the `#[cfg(test)]` module(s) at the end.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a `use` tree (`super::{a, b::{c, d}}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand_use(&format!("{prefix}{p}")))
        .collect()
}

/// Every path the code refers to that starts with `crate::` or `super::`.
fn referenced_paths(code: &str, is_root: bool) -> Vec<String> {
    let mut paths = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(at) = statement.find("use ") else {
            continue;
        };
        let (head, tree) = statement.split_at(at);
        if head.trim_end().ends_with("pub") && is_root {
            continue;
        }
        if head.trim().is_empty() || head.trim_end().ends_with("pub") {
            paths.extend(expand_use(&tree[4..]));
        }
    }
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let preceded = code[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(path);
        }
    }
    paths
}

/// The module a path refers to: the longest prefix that is a module of the library.
fn resolve(path: &str, file: &SourceFile, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first() {
        Some(&"crate") => Vec::new(),
        Some(&"super") => {
            let mut parent = file.module.clone();
            parent.pop();
            parent
        }
        _ => return None,
    };
    segments.remove(0);
    let mut resolved = base.clone();
    for segment in segments {
        base.push(segment.to_string());
        if modules.contains(&base) {
            resolved = base.clone();
        } else {
            break;
        }
    }
    Some(resolved)
}

/// `module -> modules it imports`, over every library file.
fn imports() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let files = library_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let code = code_of(&std::fs::read_to_string(&file.path).unwrap());
        let targets: BTreeSet<Vec<String>> = referenced_paths(&code, file.is_root)
            .iter()
            .filter_map(|path| resolve(path, file, &modules))
            .filter(|target| *target != file.module)
            .collect();
        graph.insert(file.module.clone(), targets);
    }
    graph
}

#[test]
fn every_top_level_module_imports_only_lower_layers() {
    let mut violations = Vec::new();
    for (module, targets) in imports() {
        let Some(top) = module.first() else { continue };
        let layer = layer_of(top).unwrap_or_else(|| {
            panic!("src/{top} is in no layer of tests/architecture.rs: add it where it belongs")
        });
        for target in targets {
            let Some(target_top) = target.first() else {
                continue;
            };
            if target_top == top {
                continue;
            }
            let target_layer = layer_of(target_top).expect("every module has a layer");
            if target_layer >= layer {
                violations.push(format!(
                    "{} imports {}",
                    module.join("::"),
                    target.join("::")
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let graph = imports();
    let mut cycles = Vec::new();
    for (module, targets) in &graph {
        for target in targets {
            if module < target && graph.get(target).is_some_and(|back| back.contains(module)) {
                cycles.push(format!("{} <-> {}", module.join("::"), target.join("::")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "files that import each other:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_checker_sees_braced_and_inline_imports() {
    let paths = expand_use("super::{device::Device, kernels::{Kernel, StepUniform}}");
    assert_eq!(
        paths,
        [
            "super::device::Device",
            "super::kernels::Kernel",
            "super::kernels::StepUniform"
        ]
    );
    let code = "fn f() { let x = crate::train::rng::seeded_rng(1); }";
    assert_eq!(
        referenced_paths(code, false),
        ["crate::train::rng::seeded_rng"]
    );
    let graph = imports();
    let trainer = graph.get(&vec!["train".to_string(), "trainer".to_string()]);
    assert!(
        trainer.is_some_and(|t| t.contains(&vec!["data".to_string()])),
        "train::trainer uses data::Ratings: {trainer:?}"
    );
}
