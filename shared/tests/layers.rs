//! The layering rules of `shared/src/lib.rs`, checked on the source text:
//! in `shared` and in every function crate, each module names only modules
//! declared before it in `lib.rs` (so there are no import circles and the
//! declaration order is the dependency order), and a domain folder's
//! `mod.rs` names neither the AWS SDK, axum nor the `db` layer.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Infrastructure folders of `shared/src`; every other folder is a domain.
const INFRASTRUCTURE: &[&str] = &["db", "s3", "http", "download"];
/// What a domain's rules must not name.
const NOT_IN_RULES: &[&str] = &[
    "aws_sdk",
    "axum",
    "lambda_http",
    "crate::db",
    "AttributeValue",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The source without comments and without its `#[cfg(test)]` module (tests
/// may reach anywhere).
fn code_of(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules of the crate that `code` names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first segment of each entry at depth 0.
            let mut depth = 0;
            let mut entry_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => entry_start = true,
                    c if entry_start && (c.is_alphanumeric() || c == '_') => {
                        named.insert(identifier_at(&group[i..]));
                        entry_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            named.insert(identifier_at(rest));
        }
    }
    named
}

fn identifier_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `mod` declarations of a crate root, in order.
fn declared_modules(lib: &Path) -> Vec<String> {
    fs::read_to_string(lib)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect()
}

/// Every `.rs` file of a module: `name.rs`, or `name/` with all it holds.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut folders = vec![src.join(module)];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no source for module {module} in {src:?}"
    );
    files
}

/// Each module names only itself and modules declared before it.
fn layering_violations(src: &Path) -> Vec<String> {
    let order = declared_modules(&src.join("lib.rs"));
    let mut violations = Vec::new();
    for (position, module) in order.iter().enumerate() {
        for file in files_of(src, module) {
            for named in named_modules(&code_of(&file)) {
                let earlier = order[..position].contains(&named);
                if !earlier && &named != module {
                    violations.push(format!(
                        "{}: names `crate::{named}`, which is not declared before `{module}`",
                        relative(&file)
                    ));
                }
            }
        }
    }
    violations
}

fn relative(path: &Path) -> String {
    let path = path.strip_prefix(workspace()).unwrap_or(path);
    path.display().to_string()
}

fn crate_sources() -> Vec<PathBuf> {
    let mut sources = vec![workspace().join("shared/src")];
    let mut functions: Vec<_> = fs::read_dir(workspace().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|src| src.join("lib.rs").exists())
        .collect();
    functions.sort();
    sources.extend(functions);
    sources
}

#[test]
fn modules_name_only_modules_declared_before_them() {
    let sources = crate_sources();
    assert!(sources.len() > 5, "{sources:?}");
    let violations: Vec<_> = sources
        .iter()
        .flat_map(|s| layering_violations(s))
        .collect();
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn domain_rules_name_no_sdk_no_axum_no_db() {
    let src = workspace().join("shared/src");
    let mut domains = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && !INFRASTRUCTURE.contains(&name.as_str()) {
            domains.push(name);
        }
    }
    assert!(domains.len() >= 5, "{domains:?}");
    let mut violations = Vec::new();
    for domain in &domains {
        let rules = src.join(domain).join("mod.rs");
        let code = code_of(&rules);
        for word in NOT_IN_RULES {
            if code.contains(word) {
                violations.push(format!("{}: names `{word}`", relative(&rules)));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checks_see_what_they_look_for() {
    let code = "use crate::db::{Table, keys};\nuse crate::{clock, uploads::flow::UploadEnv};\nlet x = crate::media::sniff(b);";
    let named: Vec<_> = named_modules(code).into_iter().collect();
    assert_eq!(named, ["clock", "db", "media", "uploads"]);
    let declared = declared_modules(&workspace().join("shared/src/lib.rs"));
    assert!(declared.starts_with(&["clock".to_owned()]), "{declared:?}");
    assert!(declared.contains(&"ingestion".to_owned()), "{declared:?}");
}
