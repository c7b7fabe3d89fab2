//! Import circles between the modules of one crate: `cargo xtask lint`
//! fails on any. Cargo keeps the crates pointing one way; this keeps the
//! modules inside each crate doing the same, so a module can be read (and
//! changed) knowing only the ones it names.
//!
//! A module names another by a path in its source — `crate::a::b`,
//! `super::x`, `self::y`, `use` trees included — resolved to the longest
//! module that path reaches. References between a module and its own
//! ancestors or descendants are not edges: a parent declares and re-exports
//! its children, and a child uses its parent's items, by design. Comments
//! and string literals are skipped. What a macro expands to is not seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path inside its crate (`[]` for the crate root).
type Module = Vec<String>;

/// The circles in the crate whose sources are under `src`, each as the
/// modules in it (sorted), e.g. `["cli::datastore", "cli::hydrate"]`.
pub fn circles_in(src: &Path) -> std::io::Result<Vec<Vec<String>>> {
    let mut files = BTreeMap::new();
    collect(src, src, &mut files)?;
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path)?;
        for reference in references(&code_only(&text)) {
            let Some(full) = resolve(module, &reference) else {
                continue;
            };
            let Some(target) = longest_module(&modules, &full) else {
                continue;
            };
            if !related(module, &target) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    Ok(strongly_connected(&modules, &edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| component.iter().map(label).collect())
        .collect())
}

fn label(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Every module file under `dir`, by module path (`src/bin` and files of
/// other targets are not modules of the library).
fn collect(src: &Path, dir: &Path, out: &mut BTreeMap<Module, PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if path != src.join("bin") {
                collect(src, &path, out)?;
            }
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let relative = path.strip_prefix(src).expect("below src");
        let mut module: Module = relative
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        let file = module.pop().expect("a file name");
        match file.as_str() {
            "lib.rs" | "main.rs" if module.is_empty() => {}
            "mod.rs" => {}
            _ => module.push(file.trim_end_matches(".rs").to_owned()),
        }
        out.insert(module, path);
    }
    Ok(())
}

/// `text` without comments, string and character literals (each replaced
/// by a space), so that only code is searched for paths.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
            out.push(' ');
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|b| *b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 1 + hashes + 1;
            i += body
                + rest[body..]
                    .find(&close)
                    .map_or(rest.len() - body, |end| end + close.len());
            out.push(' ');
        } else if rest.starts_with('"') {
            let mut j = 1;
            while j < rest.len() {
                match rest.as_bytes()[j] {
                    b'\\' => j += 2,
                    b'"' => break,
                    _ => j += 1,
                }
            }
            i += (j + 1).min(rest.len());
            out.push(' ');
        } else if rest.starts_with('\'') && is_char_literal(rest) {
            let end = if rest.as_bytes().get(1) == Some(&b'\\') {
                rest[2..].find('\'').map_or(rest.len(), |e| e + 3)
            } else {
                rest[1..].find('\'').map_or(rest.len(), |e| e + 2)
            };
            i += end;
            out.push(' ');
        } else {
            let ch = rest.chars().next().expect("not empty");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// True when `rest` (starting at `'`) is a character literal, not a
/// lifetime: `'a'`, `'\n'`, `'\u{1b}'`.
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    matches!(
        (chars.next(), chars.next()),
        (Some('\\'), _) | (Some(_), Some('\''))
    )
}

/// A path as written: where it starts and its segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    /// `crate`, `self`, or how many `super`s.
    base: Base,
    segments: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    Crate,
    This,
    Super(usize),
}

/// Every path starting with `crate::`, `self::` or `super::` in `code`,
/// `use` trees expanded.
fn references(code: &str) -> Vec<Reference> {
    let tokens = tokenize(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let preceded_by_path = i > 0 && (tokens[i - 1] == "::" || tokens[i - 1] == "$");
        if preceded_by_path {
            i += 1;
            continue;
        }
        let (base, next) = match tokens[i].as_str() {
            "crate" => (Base::Crate, i + 1),
            "self" => (Base::This, i + 1),
            "super" => {
                let mut j = i;
                let mut count = 0;
                while tokens.get(j).map(String::as_str) == Some("super") {
                    count += 1;
                    j += 1;
                    if tokens.get(j).map(String::as_str) == Some("::")
                        && tokens.get(j + 1).map(String::as_str) == Some("super")
                    {
                        j += 1;
                    }
                }
                (Base::Super(count), j)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        if tokens.get(next).map(String::as_str) != Some("::") {
            // `super` or `self` alone (`use super::{self}`), or a method's `self`.
            if base != Base::This {
                out.push(Reference {
                    base,
                    segments: Vec::new(),
                });
            }
            i = next;
            continue;
        }
        let mut j = next + 1;
        use_tree(&tokens, &mut j, base, &mut Vec::new(), &mut out);
        i = j;
    }
    out
}

/// Parses a path or `use` tree at `tokens[*at]` (after a `::`), adding one
/// reference per leaf.
fn use_tree(
    tokens: &[String],
    at: &mut usize,
    base: Base,
    prefix: &mut Vec<String>,
    out: &mut Vec<Reference>,
) {
    match tokens.get(*at).map(String::as_str) {
        Some("{") => {
            *at += 1;
            loop {
                match tokens.get(*at).map(String::as_str) {
                    None => return,
                    Some("}") => {
                        *at += 1;
                        return;
                    }
                    Some(",") => *at += 1,
                    _ => {
                        let mut inner = prefix.clone();
                        let before = *at;
                        use_tree(tokens, at, base, &mut inner, out);
                        if *at == before {
                            *at += 1;
                        }
                    }
                }
            }
        }
        Some(token) if is_ident(token) => {
            if token != "self" {
                prefix.push(token.to_owned());
            }
            *at += 1;
            if tokens.get(*at).map(String::as_str) == Some("::") {
                *at += 1;
                use_tree(tokens, at, base, prefix, out);
            } else {
                out.push(Reference {
                    base,
                    segments: prefix.clone(),
                });
            }
        }
        _ => out.push(Reference {
            base,
            segments: prefix.clone(),
        }),
    }
}

fn is_ident(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else {
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
            i += 1;
        }
    }
    tokens
}

/// The absolute path of `reference` written in `module`.
fn resolve(module: &Module, reference: &Reference) -> Option<Module> {
    let mut full = match reference.base {
        Base::Crate => Vec::new(),
        Base::This => module.clone(),
        Base::Super(n) => module.get(..module.len().checked_sub(n)?)?.to_vec(),
    };
    full.extend(reference.segments.iter().cloned());
    Some(full)
}

fn longest_module(modules: &BTreeSet<Module>, path: &Module) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

/// True when one is the other or contains it.
fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    nodes: &BTreeSet<Module>,
    edges: &BTreeMap<Module, BTreeSet<Module>>,
) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        next: usize,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Module) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.edges.get(node) {
            for target in targets {
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            component.sort();
            state.out.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_circle_through_use_trees_and_paths_is_found_and_parents_are_not_one() {
        let dir = std::env::temp_dir().join(format!("xtask-circles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(&dir, "lib.rs", "mod a;\nmod b;\nmod c;\nmod m;\n");
        write(&dir, "a.rs", "use crate::{b::{self, X}, c};\n");
        write(&dir, "b.rs", "fn f() { super::a::g(); }\n");
        // Named in a comment and a string only: no edge.
        write(
            &dir,
            "c.rs",
            "// crate::a::x\nconst S: &str = \"crate::a::y\";\n",
        );
        write(&dir, "m/mod.rs", "pub use self::inner::T;\nmod inner;\n");
        write(&dir, "m/inner.rs", "use super::super::m::T2;\n");
        let circles = circles_in(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(circles, vec![vec!["a".to_owned(), "b".to_owned()]]);
    }
}
