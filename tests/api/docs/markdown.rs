//! What the checks read in a Markdown file, as GitHub renders it: code
//! (lines of fenced blocks, inline code spans), link destinations outside
//! code, and the anchors its headings get.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A line of a fenced block (backslash continuations joined), or an inline
/// code span, which may run over lines (read as spaces); `line` is where it
/// starts, from 1.
#[derive(Debug, PartialEq)]
pub struct Code {
    pub line: usize,
    pub text: String,
}

/// A link or image destination as written (`path#anchor`, a URL, ...).
#[derive(Debug, PartialEq)]
pub struct Link {
    pub line: usize,
    pub target: String,
}

#[derive(Default)]
pub struct Markdown {
    pub code: Vec<Code>,
    pub links: Vec<Link>,
    /// `#fragment`s that land in this file: its headings' slugs (the way
    /// GitHub numbers repeats) and explicit `<a id>`/`<a name>` anchors.
    pub anchors: Vec<String>,
}

/// Every file under `root` whose name `wanted` takes, skipping build
/// output and hidden directories (`.git`, `.ci/venv`).
pub fn files(root: &Path, wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    dirs.push(path);
                }
            } else if wanted(&name) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

impl Markdown {
    pub fn parse(text: &str) -> Self {
        let mut md = Self::default();
        let mut fence: Option<String> = None;
        // Consecutive lines of one paragraph (or one heading), from `start`.
        let mut block: Vec<&str> = Vec::new();
        let mut start = 1;
        let mut continued: Option<Code> = None;
        let mut occurrences = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let trimmed = line.trim_start();
            if let Some(open) = &fence {
                // Closed by a run of the same character, at least as long.
                let closes = trimmed.starts_with(open.as_str());
                if closes && trimmed.trim_start_matches(open.chars().next().unwrap()).trim().is_empty() {
                    fence = None;
                    continue;
                }
                let code = continued.get_or_insert(Code { line: number, text: String::new() });
                match line.strip_suffix('\\') {
                    Some(head) => code.text.push_str(head),
                    None => {
                        code.text.push_str(line);
                        md.code.extend(continued.take());
                    }
                }
                continue;
            }
            let opens = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f));
            if opens.is_some() || trimmed.is_empty() || heading(line).is_some() {
                md.block(&block.join("\n"), start);
                block.clear();
            }
            if let Some(f) = opens {
                let run = trimmed.len() - trimmed.trim_start_matches(f.chars().next().unwrap()).len();
                fence = Some(f[..1].repeat(run));
            } else if let Some(title) = heading(line) {
                md.block(title, number);
                md.anchors.push(numbered(&mut occurrences, slug(&rendered(title))));
            } else if !trimmed.is_empty() {
                if block.is_empty() {
                    start = number;
                }
                block.push(line);
            }
        }
        md.block(&block.join("\n"), start);
        md
    }

    /// A paragraph (or a heading's text) starting on line `start`: its code
    /// spans, then links and HTML anchors in what is left.
    fn block(&mut self, text: &str, start: usize) {
        let (spans, prose) = code_spans(text);
        let line_of = |at: usize| start + text[..at].matches('\n').count();
        for span in spans {
            let words: Vec<&str> = span.content.split_whitespace().collect();
            self.code.push(Code { line: line_of(span.start), text: words.join(" ") });
        }
        for (at, target) in link_targets(&prose) {
            self.links.push(Link { line: line_of(at), target });
        }
        for attribute in ["id=\"", "name=\""] {
            let mut rest = prose.as_str();
            while let Some(at) = rest.find("<a ") {
                let tag = &rest[at..rest[at..].find('>').map_or(rest.len(), |end| at + end)];
                if let Some(value) = tag.split(attribute).nth(1).and_then(|v| v.split('"').next()) {
                    self.anchors.push(value.to_owned());
                }
                rest = &rest[at + 3..];
            }
        }
    }
}

/// A repeated slug numbered as GitHub does (github-slugger): `x`, `x-1`,
/// `x-2`, skipping any a heading took already.
fn numbered(occurrences: &mut HashMap<String, usize>, base: String) -> String {
    let mut slug = base.clone();
    while occurrences.contains_key(&slug) {
        let n = occurrences.get_mut(&base).unwrap();
        *n += 1;
        slug = format!("{base}-{n}");
    }
    occurrences.insert(slug.clone(), 0);
    slug
}

/// An ATX heading's text (`## Text ##` gives `Text`).
fn heading(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    let level = rest.len() - rest.trim_start_matches('#').len();
    if indent > 3 || !(1..=6).contains(&level) {
        return None;
    }
    let text = &rest[level..];
    if !(text.is_empty() || text.starts_with([' ', '\t'])) {
        return None;
    }
    let text = text.trim();
    let closing = text.trim_end_matches('#');
    Some(if closing.is_empty() || closing.ends_with([' ', '\t']) { closing.trim_end() } else { text })
}

/// An inline code span: `text[start..end]`, backticks included.
struct Span {
    start: usize,
    end: usize,
    content: String,
}

/// The code spans of `text`, and `text` with them blanked out (newlines
/// kept). A backtick run with no closing run of the same length is
/// literal text.
fn code_spans(text: &str) -> (Vec<Span>, String) {
    let run_at = |at: usize| text[at..].len() - text[at..].trim_start_matches('`').len();
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find('`') {
        let open = at + found;
        let run = run_at(open);
        let mut search = open + run;
        at = loop {
            let Some(next) = text[search..].find('`').map(|n| search + n) else { break open + run };
            let len = run_at(next);
            if len == run {
                let content = &text[open + run..next];
                // CommonMark: one space each side, around other text, is not content.
                let unpadded = content.strip_prefix(' ').and_then(|c| c.strip_suffix(' '));
                let content = unpadded.filter(|c| !c.trim().is_empty()).unwrap_or(content);
                spans.push(Span { start: open, end: next + len, content: content.to_owned() });
                break next + len;
            }
            search = next + len;
        };
    }
    let mut prose = text.to_owned();
    for span in &spans {
        // Byte for byte, so offsets in `prose` are offsets in `text`.
        let blank: String = text[span.start..span.end].bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }).collect();
        prose.replace_range(span.start..span.end, &blank);
    }
    (spans, prose)
}

/// Destinations of inline links and images (`[text](target "title")`),
/// reference definitions (`[label]: target`) and HTML `href`/`src`, with
/// their byte offsets.
fn link_targets(prose: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (marker, ends) in [("](", ")"), ("href=\"", "\""), ("src=\"", "\"")] {
        let mut from = 0;
        while let Some(found) = prose[from..].find(marker) {
            let start = from + found + marker.len();
            let rest = prose[start..].trim_start();
            let target = match rest.strip_prefix('<') {
                Some(bracketed) => bracketed.split('>').next().unwrap_or_default(),
                None => rest.split(|c: char| c.is_whitespace() || ends.contains(c)).next().unwrap_or_default(),
            };
            out.push((start, target.to_owned()));
            from = start;
        }
    }
    let mut offset = 0;
    for line in prose.split_inclusive('\n') {
        let definition = line.trim_start().strip_prefix('[').and_then(|l| l.split_once("]:"));
        if let Some((_, target)) = definition.filter(|(label, _)| !label.is_empty() && !label.starts_with('^')) {
            out.push((
                offset,
                target.split_whitespace().next().unwrap_or_default().trim_matches(['<', '>']).to_owned(),
            ));
        }
        offset += line.len();
    }
    out
}

/// A heading's text as rendered: code spans' content as written; links as
/// their text; emphasis, HTML tags and backslash escapes removed.
fn rendered(title: &str) -> String {
    let (spans, _) = code_spans(title);
    let mut out = String::new();
    let mut at = 0;
    for span in spans {
        out.push_str(&markup_removed(&title[at..span.start]));
        out.push_str(&span.content);
        at = span.end;
    }
    out.push_str(&markup_removed(&title[at..]));
    out
}

/// Inline markup outside code spans, as rendering removes it.
fn markup_removed(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let intraword =
            |j: usize| j > 0 && j + 1 < chars.len() && chars[j - 1].is_alphanumeric() && chars[j + 1].is_alphanumeric();
        match c {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 1;
            }
            '*' | '[' => {}
            '_' if !intraword(i) => {}
            '<' => {
                while i < chars.len() && chars[i] != '>' {
                    i += 1;
                }
            }
            // A link shows its text: `[text](target)` reads `text`.
            ']' => {
                if chars.get(i + 1) == Some(&'(') {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                }
            }
            '!' if chars.get(i + 1) == Some(&'[') => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// GitHub's anchor for a heading's rendered text: lower case, everything
/// but letters, digits, spaces, `-` and `_` removed, spaces made `-`.
pub fn slug(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}
