//! The tests of each `cargo test` target, read from its sources and named as
//! libtest names them (`module::path::function`), each with whether it is
//! `#[ignore]`d.
//!
//! Why the sources and not the test binaries' `--list`: a nested `cargo`
//! waits for the build-directory lock the outer `cargo test` holds, and the
//! binaries in `target/debug/deps` are whatever was built last: absent
//! after `cargo test --test api`, stale after an edit, several after a
//! change of flags. The sources are always there and current. The reader
//! is checked against libtest itself where that is sure to be current: this
//! very binary's `--list` (`docs::names_read_from_the_sources_are_the_ones_libtest_lists`).
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Test {
    pub name: String,
    pub ignored: bool,
}

/// The tests of the crate whose root file is `root`, following `mod`
/// declarations into their files.
pub fn tests_of(root: &Path) -> Vec<Test> {
    let mut out = Vec::new();
    read_module(root, true, &[], &mut out);
    out.sort();
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Punct(char),
    Str(String),
    /// A number, character or lifetime: nothing the reader looks at.
    Other,
}

/// Rust source as tokens, comments dropped.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if i >= chars.len() {
                    break;
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            let (text, end) = quoted(&chars, i + 1);
            out.push(Token::Str(text));
            i = end;
        } else if c == '\'' {
            // 'x' or '\n' is a character; 'a alone a lifetime.
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
            out.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let hashes = chars[i..].iter().take_while(|&&h| h == '#').count();
            match (word.as_str(), at(i)) {
                ("r" | "br" | "cr", '#' | '"') if at(i + hashes) == '"' => {
                    let open = i + hashes + 1;
                    let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                    let close = (open..chars.len()).find(|&j| chars[j..].starts_with(&closing)).unwrap_or(chars.len());
                    out.push(Token::Str(chars[open..close].iter().collect()));
                    i = close + closing.len();
                }
                ("r", '#') => {
                    // A raw identifier, r#name.
                    let start = i + 1;
                    i = start;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    out.push(Token::Ident(chars[start..i].iter().collect()));
                }
                ("b" | "c", '"') => {
                    let (text, end) = quoted(&chars, i + 1);
                    out.push(Token::Str(text));
                    i = end;
                }
                ("b", '\'') => {
                    i += if at(i + 1) == '\\' { 4 } else { 3 };
                    while i < chars.len() && chars[i - 1] != '\'' {
                        i += 1;
                    }
                    out.push(Token::Other);
                }
                _ => out.push(Token::Ident(word)),
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Other);
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// A string literal's text from `start` (after its `"`), and where it ends.
fn quoted(chars: &[char], start: usize) -> (String, usize) {
    let mut i = start;
    let mut text = String::new();
    while i < chars.len() && chars[i] != '"' {
        if chars[i] == '\\' {
            i += 1;
        }
        if let Some(&c) = chars.get(i) {
            text.push(c);
        }
        i += 1;
    }
    (text, i + 1)
}

/// Where the tokens of `[`...`]` opening at `open` close.
fn closing_bracket(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Punct('[') => depth += 1,
            Token::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// An attribute's path (`test`, `actix_web::test`, `path`, ...).
fn attribute_path(attribute: &[Token]) -> String {
    let mut path = String::new();
    for t in attribute {
        match t {
            Token::Ident(word) => path.push_str(word),
            Token::Punct(':') => path.push(':'),
            _ => break,
        }
    }
    path
}

/// Reads the module in `file` (named `module`), adding its tests to `out`.
/// A crate root or a `mod.rs` keeps its submodules beside it, `a.rs` in `a/`.
fn read_module(file: &Path, mod_rs: bool, module: &[String], out: &mut Vec<Test>) {
    let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let tokens = tokens(&source);
    let here = file.parent().unwrap().to_path_buf();
    let children = if mod_rs { here.clone() } else { here.join(file.file_stem().unwrap()) };
    // Inline modules open here: (brace depth inside them, name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut attributes: Vec<&[Token]> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Ident(w)) => Some(w.as_str()),
        _ => None,
    };
    while i < tokens.len() {
        match &tokens[i] {
            Token::Punct('#') => {
                let inner = tokens.get(i + 1) == Some(&Token::Punct('!'));
                let open = i + 1 + usize::from(inner);
                if tokens.get(open) == Some(&Token::Punct('[')) {
                    let close = closing_bracket(&tokens, open);
                    if !inner {
                        attributes.push(&tokens[open + 1..close]);
                    }
                    i = close + 1;
                    continue;
                }
            }
            Token::Ident(w) if w == "mod" && word(i + 1).is_some() => {
                let name = word(i + 1).unwrap().to_owned();
                let path: Vec<String> =
                    module.iter().cloned().chain(inline.iter().map(|(_, n)| n.clone())).chain([name.clone()]).collect();
                match tokens.get(i + 2) {
                    Some(Token::Punct(';')) => {
                        let dirs: PathBuf = inline.iter().map(|(_, n)| n.as_str()).collect();
                        let explicit = attributes.iter().find(|a| attribute_path(a) == "path").and_then(|a| {
                            a.iter().find_map(|t| match t {
                                Token::Str(p) => Some(p.clone()),
                                _ => None,
                            })
                        });
                        let (child, child_mod_rs) = match explicit {
                            Some(p) => {
                                let child = here.join(&dirs).join(&p);
                                let mod_rs = child.file_name().is_some_and(|n| n == "mod.rs");
                                (child, mod_rs)
                            }
                            None => {
                                let flat = children.join(&dirs).join(format!("{name}.rs"));
                                if flat.is_file() {
                                    (flat, false)
                                } else {
                                    (children.join(&dirs).join(&name).join("mod.rs"), true)
                                }
                            }
                        };
                        read_module(&child, child_mod_rs, &path, out);
                        attributes.clear();
                        i += 3;
                        continue;
                    }
                    Some(Token::Punct('{')) => {
                        depth += 1;
                        inline.push((depth, name));
                        attributes.clear();
                        i += 3;
                        continue;
                    }
                    _ => {}
                }
            }
            Token::Ident(w) if w == "fn" && word(i + 1).is_some() => {
                let paths: Vec<String> = attributes.iter().map(|a| attribute_path(a)).collect();
                if paths.iter().any(|p| p == "test" || p.ends_with("::test")) {
                    let function = word(i + 1).unwrap();
                    let name = module
                        .iter()
                        .map(String::as_str)
                        .chain(inline.iter().map(|(_, n)| n.as_str()))
                        .chain([function])
                        .collect::<Vec<_>>()
                        .join("::");
                    out.push(Test { name, ignored: paths.iter().any(|p| p == "ignore") });
                }
                attributes.clear();
            }
            Token::Punct('{') => {
                depth += 1;
                attributes.clear();
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(d, _)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
                attributes.clear();
            }
            Token::Punct(';') => attributes.clear(),
            _ => {}
        }
        i += 1;
    }
}
