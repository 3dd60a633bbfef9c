//! The layout's rules, checked on every run: no arrow runs back up.
//!
//! `routes/` sits on top (HTTP), `service/` below it (transactions, audit, read models), and below
//! both the rooms that know nothing of HTTP or of each other's jobs: `domain/` (value types,
//! calendars), `engine/` (pure benefit and claim rules), `formats/` (bytes in and out) and
//! `integrations/` (the outside world). A path that reaches from a lower room into a higher one —
//! or into actix, or an I/O crate where no I/O belongs — fails this test with the file, the line
//! and the rule, so the arrow is named where it was written.
//!
//! Paths are read from the code with comments and string literals removed, and `super::`/`self::`
//! are resolved against the file's own module, so `use super::super::routes` is caught as surely
//! as `use crate::routes`.

use std::path::{Path, PathBuf};

/// A rule: files under `room` may not name any path starting with one of `forbidden`.
struct Rule {
    room: &'static str,
    why: &'static str,
    forbidden: &'static [&'static str],
}

/// Above every lower room: the HTTP layer, the process's wiring, and the HTTP error type.
const HTTP: &[&str] = &[
    "crate::routes",
    "crate::startup",
    "crate::openapi",
    "crate::cli",
    "crate::demo",
    "crate::error",
    "crate::auth::Principal",
    "crate::auth::MaybePrincipal",
    "crate::auth::principal",
    "actix_web",
    "actix_multipart",
    "actix_web_prom",
    "tracing_actix_web",
    "utoipa_actix_web",
];

/// What does I/O or reads the clock: no pure room may name it.
const IO: &[&str] = &[
    "crate::service",
    "crate::integrations",
    "crate::state",
    "crate::settings",
    "crate::db",
    "crate::telemetry",
    "entity",
    "sea_orm",
    "reqwest",
    "opendal",
    "redis",
    "tokio",
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "Utc::now",
    "Local::now",
    "SystemTime::now",
    "chrono::Utc::now",
    "chrono::Local::now",
];

const RULES: &[Rule] = &[
    Rule {
        room: "service",
        why: "services own transactions and read models; they know no HTTP type",
        forbidden: HTTP,
    },
    Rule {
        room: "integrations",
        why: "clients of the outside world know no HTTP type of ours",
        forbidden: HTTP,
    },
    Rule {
        room: "integrations",
        why: "clients of the outside world know no entity, transaction or service",
        forbidden: &[
            "entity",
            "sea_orm",
            "crate::service",
            "crate::state",
            "crate::db",
            "crate::formats",
            "crate::engine",
        ],
    },
    Rule {
        room: "domain",
        why: "value types know no HTTP type",
        forbidden: HTTP,
    },
    Rule {
        room: "domain",
        why: "value types do no I/O and read no clock",
        forbidden: IO,
    },
    Rule {
        room: "domain",
        why: "value types are the bottom: the rules and formats use them, not the other way",
        forbidden: &["crate::engine", "crate::formats"],
    },
    Rule {
        room: "engine",
        why: "the engine knows no HTTP type",
        forbidden: HTTP,
    },
    Rule {
        room: "engine",
        why: "the engine is pure: no database, clock or I/O",
        forbidden: IO,
    },
    Rule {
        room: "engine",
        why: "the engine judges values, not files",
        forbidden: &["crate::formats"],
    },
    Rule {
        room: "formats",
        why: "formats know no HTTP type",
        forbidden: HTTP,
    },
    Rule {
        room: "formats",
        why: "formats turn bytes into values and back: no database, clock or I/O",
        forbidden: IO,
    },
];

/// One arrow that breaks a rule.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    path: String,
    why: &'static str,
}

/// The source with comments and the insides of string and char literals blanked (newlines
/// kept, so line numbers stay true).
fn code_only(source: &str) -> String {
    let bytes: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i] == '/' && bytes.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if bytes[i] == '*' && bytes.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(bytes[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string_at(&bytes, i) {
            // r"…" or r#"…"#: find the hashes, then the closing quote with as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while bytes.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            for _ in i..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < bytes.len() {
                if bytes[i] == '"' && (1..=hashes).all(|k| bytes.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(bytes[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < bytes.len() && bytes[i] != '"' {
                if bytes[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < bytes.len() {
                    out.push(blank(bytes[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && char_literal_len(&bytes, i).is_some() {
            let len = char_literal_len(&bytes, i).unwrap_or(1);
            for _ in 0..len {
                out.push(' ');
            }
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether `r` at `i` opens a raw string (and is not the end of an identifier like `for`).
fn raw_string_at(chars: &[char], i: usize) -> bool {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// The length of a char literal starting at `i` (`'a'`, `'\n'`, `'\u{1F600}'`), or `None` for a
/// lifetime (`'a`).
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' && j - i < 12 {
                j += 1;
            }
            (chars.get(j) == Some(&'\'')).then_some(j - i + 1)
        }
        _ => (chars.get(i + 2) == Some(&'\'')).then_some(3),
    }
}

/// The module path of a file under `src/` (`service/claim/mod.rs` → `crate::service::claim`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = vec!["crate".into()];
    let components: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for (n, part) in components.iter().enumerate() {
        let last = n + 1 == components.len();
        if last {
            let stem = part.trim_end_matches(".rs");
            if stem != "mod" && stem != "lib" && stem != "main" {
                parts.push(stem.to_owned());
            }
        } else {
            parts.push(part.clone());
        }
    }
    parts
}

/// Every path the code names, made absolute, with the line it stands on. Grouped imports
/// (`use crate::{a, b::c}`) are opened one level deep.
fn paths_in(code: &str, module: &[String]) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if !is_ident(chars[i]) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        // Read `a::b::c` (possibly ending in `::{`).
        let start_line = line;
        let mut segments = Vec::new();
        let mut j = i;
        loop {
            let s = j;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            segments.push(chars[s..j].iter().collect::<String>());
            let mut k = j;
            while k < chars.len() && chars[k].is_whitespace() {
                k += 1;
            }
            if chars.get(k) == Some(&':') && chars.get(k + 1) == Some(&':') {
                k += 2;
                while k < chars.len() && chars[k].is_whitespace() {
                    if chars[k] == '\n' {
                        line += 1;
                    }
                    k += 1;
                }
                if k < chars.len() && is_ident(chars[k]) {
                    j = k;
                    continue;
                }
                if chars.get(k) == Some(&'{') {
                    // A group: take its top-level names.
                    let mut depth = 0;
                    let mut item = String::new();
                    let mut m = k;
                    while m < chars.len() {
                        let c = chars[m];
                        if c == '\n' {
                            line += 1;
                        }
                        match c {
                            '{' => {
                                depth += 1;
                                if depth > 1 {
                                    item.push(c);
                                }
                            }
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    push_group_item(
                                        &mut found, start_line, &segments, &item, module,
                                    );
                                    break;
                                }
                                item.push(c);
                            }
                            ',' if depth == 1 => {
                                push_group_item(&mut found, start_line, &segments, &item, module);
                                item.clear();
                            }
                            _ => item.push(c),
                        }
                        m += 1;
                    }
                    j = m + 1;
                    break;
                }
            }
            if segments.len() > 1 || matches!(segments[0].as_str(), "actix_web" | "actix_multipart")
            {
                found.push((start_line, absolute(&segments, module)));
            }
            break;
        }
        i = j.max(i + 1);
    }
    found
}

fn push_group_item(
    found: &mut Vec<(usize, String)>,
    line: usize,
    prefix: &[String],
    item: &str,
    module: &[String],
) {
    let name: String = item
        .split(['{', ' ', '\n', '\t'])
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .trim_end_matches("::")
        .to_owned();
    if name.is_empty() || name == "self" {
        found.push((line, absolute(prefix, module)));
        return;
    }
    let mut segments = prefix.to_vec();
    segments.extend(name.split("::").map(str::to_owned));
    found.push((line, absolute(&segments, module)));
}

/// `super::x` and `self::x` resolved against the file's module; `crate::…` and outside crates
/// as written.
fn absolute(segments: &[String], module: &[String]) -> String {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("self") => rest = &segments[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                if base.len() > 1 {
                    base.pop();
                }
                rest = &rest[1..];
            }
        }
        _ => return segments.join("::"),
    }
    base.extend(rest.iter().cloned());
    base.join("::")
}

/// Whether `path` is `prefix` or lies under it (`crate::routes::claims` under `crate::routes`;
/// `tokio::task` under `tokio`; a path ending in `Utc::now` matches `Utc::now`).
fn reaches(path: &str, prefix: &str) -> bool {
    let under = |p: &str| p == prefix || p.starts_with(&format!("{prefix}::"));
    under(path) || (prefix.contains("::now") && path.ends_with(prefix))
}

/// The violations in one file, `relative` to `src/`.
fn check_file(relative: &Path, source: &str) -> Vec<Violation> {
    let room = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let rules: Vec<&Rule> = RULES.iter().filter(|r| r.room == room).collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let module = module_of(relative);
    let code = code_only(strip_test_modules(source).as_str());
    let mut out = Vec::new();
    for (line, path) in paths_in(&code, &module) {
        for rule in &rules {
            if rule.forbidden.iter().any(|f| reaches(&path, f)) {
                out.push(Violation {
                    file: relative.display().to_string(),
                    line,
                    path: path.clone(),
                    why: rule.why,
                });
            }
        }
    }
    out
}

/// Unit tests beside the code may use what they like (a test reads fixtures, builds a runtime);
/// their `#[cfg(test)] mod … { … }` blocks are blanked, newlines kept.
fn strip_test_modules(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        // Blank up to and including the item that follows: a `mod x { … }` block or a `mod x;`.
        let mut depth = 0usize;
        let mut end = after.len();
        for (n, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = n + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = n + 1;
                    break;
                }
                _ => {}
            }
        }
        out.extend(
            after[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_arrow_runs_back_up_from_a_lower_room() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let source = std::fs::read_to_string(file).unwrap_or_default();
        violations.extend(check_file(relative, &source));
    }
    assert!(
        files.len() > 50,
        "the source tree was not found at {}",
        src.display()
    );
    let listed: Vec<String> = violations
        .iter()
        .map(|v| format!("{}:{}: {} ({})", v.file, v.line, v.path, v.why))
        .collect();
    assert!(
        violations.is_empty(),
        "arrows running back up:\n{}",
        listed.join("\n")
    );
}

#[test]
fn every_room_named_in_the_rules_exists() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for rule in RULES {
        assert!(
            src.join(rule.room).join("mod.rs").is_file(),
            "src/{}/mod.rs is missing: the layout rule for it checks nothing",
            rule.room
        );
    }
}

#[test]
fn a_planted_back_edge_is_found_in_each_form() {
    let planted = [
        (
            "service/claim/view.rs",
            "use crate::routes::claims::ClaimResponse;\n",
        ),
        (
            "service/claim/view.rs",
            "use super::super::super::routes::claims;\n",
        ),
        (
            "service/page.rs",
            "use crate::{error::ApiError, domain::Money};\n",
        ),
        (
            "service/x.rs",
            "fn f() { let _ = actix_web::rt::task::spawn_blocking(|| ()); }\n",
        ),
        (
            "integrations/sms/mod.rs",
            "fn f() { crate::startup::install(); }\n",
        ),
        ("integrations/wechat.rs", "use entity::member;\n"),
        (
            "engine/judge.rs",
            "fn f() { let _ = chrono::Utc::now(); }\n",
        ),
        ("engine/judge.rs", "use sea_orm::DbErr;\n"),
        (
            "formats/photos.rs",
            "fn f() { let _ = std::fs::read(\"x\"); }\n",
        ),
        ("domain/role.rs", "use crate::auth::Principal;\n"),
        ("domain/money.rs", "use crate::engine::judge;\n"),
    ];
    for (file, source) in planted {
        let found = check_file(Path::new(file), source);
        assert_eq!(found.len(), 1, "{file}: {source:?} gave {found:?}");
        assert_eq!(found[0].line, 1);
    }
}

#[test]
fn comments_strings_tests_and_higher_rooms_are_not_arrows() {
    let quiet = [
        ("service/x.rs", "// see crate::routes::claims\nfn f() {}\n"),
        ("service/x.rs", "/* crate::routes */ fn f() {}\n"),
        (
            "service/x.rs",
            "const S: &str = \"crate::routes::claims\";\n",
        ),
        (
            "service/x.rs",
            "const S: &str = r#\"use actix_web::web;\"#;\n",
        ),
        ("service/x.rs", "fn f<'a>(x: &'a str) -> char { 'a' }\n"),
        (
            "engine/judge.rs",
            "#[cfg(test)]\nmod tests {\n    use std::fs;\n    fn t() { let _ = fs::read(\"f\"); }\n}\n",
        ),
        (
            "routes/claims.rs",
            "use crate::service::claim;\nuse actix_web::web;\n",
        ),
        ("startup.rs", "use crate::routes;\n"),
        (
            "service/claim/mod.rs",
            "use crate::domain::Role;\nuse super::super::scope::Scope;\n",
        ),
    ];
    for (file, source) in quiet {
        let found = check_file(Path::new(file), source);
        assert!(found.is_empty(), "{file}: {source:?} gave {found:?}");
    }
}

#[test]
fn a_violation_names_its_line() {
    let source = "use crate::domain::Money;\n\nfn f() {\n    crate::routes::x();\n}\n";
    let found = check_file(Path::new("service/y.rs"), source);
    assert_eq!(
        found,
        vec![Violation {
            file: "service/y.rs".into(),
            line: 4,
            path: "crate::routes::x".into(),
            why: RULES[0].why,
        }]
    );
}
