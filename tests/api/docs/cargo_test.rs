//! A documented `cargo test` command as cargo and libtest read it: the
//! targets it runs (cargo's `--lib`, `--bins`, `--test NAME`, `--tests`,
//! `--doc`, or by default all of them) and, of their tests, those its
//! filters select (libtest: a test runs if its name contains any filter,
//! or equals one with `--exact`, and contains (equals) no `--skip`;
//! `#[ignore]`d ones only with `--ignored` or `--include-ignored`).
use super::test_names::{tests_of, Test};
use std::collections::BTreeMap;
use std::path::Path;

/// The package's test targets and their tests.
pub struct Targets {
    lib: Vec<Test>,
    bins: Vec<Test>,
    /// `[[test]]` targets by name.
    tests: BTreeMap<String, Vec<Test>>,
}

impl Targets {
    /// Read from `Cargo.toml` and the sources under `root`. Doc tests are
    /// not read: there are none, and `has_no_doc_tests` keeps it so.
    pub fn of_package(root: &Path) -> Self {
        let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
        let declared = manifest.get("test").and_then(|t| t.as_array()).cloned().unwrap_or_default();
        let tests = declared
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap().to_owned();
                let path = t["path"].as_str().unwrap();
                (name, tests_of(&root.join(path)))
            })
            .collect();
        Self { lib: tests_of(&root.join("src/lib.rs")), bins: tests_of(&root.join("src/main.rs")), tests }
    }

    pub fn test_target(&self, name: &str) -> Option<&[Test]> {
        self.tests.get(name).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Lib,
    Bins,
    Test(String),
    Tests,
    Doc,
}

#[derive(Debug, Default, PartialEq)]
enum Ignored {
    #[default]
    Skipped,
    Only,
    Included,
}

#[derive(Debug, Default)]
pub struct Command {
    /// Empty: cargo's default, every target.
    targets: Vec<Target>,
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    ignored: Ignored,
}

/// The words of a shell command line from `cargo test` on, up to its end:
/// a comment, `&&`, `;`, `|`, `&` or a redirection.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = line.chars().peekable();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => word.extend(chars.next()),
            (None, c) if c.is_whitespace() => {
                if in_word || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, '#') if word.is_empty() && !in_word => break,
            (None, ';' | '&' | '|' | '>' | '<') => break,
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word || !word.is_empty() {
        out.push(word);
    }
    out
}

impl Command {
    /// The `cargo test` command that starts at `line`'s "cargo test".
    pub fn parse(line: &str) -> Result<Self, String> {
        let words = words(&line[line.find("cargo test").ok_or("no `cargo test`")?..]);
        let mut command = Self::default();
        let (mut i, mut libtest, mut named) = (2, false, false);
        while i < words.len() {
            let arg = &words[i];
            i += 1;
            let (flag, mut inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || match inline.take() {
                Some(v) => Ok(v),
                None => {
                    i += 1;
                    words.get(i - 1).cloned().ok_or_else(|| format!("{flag} without its value"))
                }
            };
            match (libtest, flag) {
                (false, "--") => libtest = true,
                (false, "--test") => command.targets.push(Target::Test(value()?)),
                (false, "--lib") => command.targets.push(Target::Lib),
                (false, "--bins") => command.targets.push(Target::Bins),
                (false, "--tests") => command.targets.push(Target::Tests),
                (false, "--doc") => command.targets.push(Target::Doc),
                (false, "--locked" | "--frozen" | "--offline" | "--release" | "--no-fail-fast" | "-q" | "--quiet") => {}
                (false, "--profile" | "-j" | "--jobs" | "--features" | "-F" | "--color") => {
                    value()?;
                }
                (false, f) if !f.starts_with('-') && !named => {
                    named = true;
                    command.filters.push(f.to_owned());
                }
                (true, "--ignored") => command.ignored = Ignored::Only,
                (true, "--include-ignored") => command.ignored = Ignored::Included,
                (true, "--exact") => command.exact = true,
                (true, "--skip") => command.skip.push(value()?),
                (true, "--nocapture" | "--no-capture" | "--show-output" | "-q" | "--quiet") => {}
                (true, "--test-threads" | "--color" | "--format") => {
                    value()?;
                }
                (true, f) if !f.starts_with('-') => command.filters.push(f.to_owned()),
                (_, f) => return Err(format!("{f}: an argument this reader does not know; teach it (tests/api/docs)")),
            }
        }
        Ok(command)
    }

    fn selects(&self, test: &Test) -> bool {
        let matches =
            |filter: &String| if self.exact { test.name == *filter } else { test.name.contains(filter.as_str()) };
        let filtered = self.filters.is_empty() || self.filters.iter().any(matches);
        let runs = match self.ignored {
            Ignored::Skipped => !test.ignored,
            Ignored::Only => test.ignored,
            Ignored::Included => true,
        };
        filtered && !self.skip.iter().any(matches) && runs
    }

    /// The tests it runs, as `target: name`; an error for a target the
    /// package does not have.
    pub fn runs(&self, package: &Targets) -> Result<Vec<String>, String> {
        let everything = [Target::Lib, Target::Bins, Target::Tests, Target::Doc];
        let targets = if self.targets.is_empty() { &everything[..] } else { &self.targets[..] };
        let mut chosen: BTreeMap<&str, &[Test]> = BTreeMap::new();
        for target in targets {
            match target {
                Target::Lib => _ = chosen.insert("lib", &package.lib),
                Target::Bins => _ = chosen.insert("bin", &package.bins),
                Target::Doc => {}
                Target::Tests => {
                    chosen.extend([("lib", &package.lib[..]), ("bin", &package.bins[..])]);
                    chosen.extend(package.tests.iter().map(|(name, tests)| (name.as_str(), &tests[..])));
                }
                Target::Test(name) => {
                    let tests = package.test_target(name).ok_or_else(|| format!("no test target `{name}`"))?;
                    chosen.insert(name, tests);
                }
            }
        }
        Ok(chosen
            .into_iter()
            .flat_map(|(target, tests)| {
                tests.iter().filter(|t| self.selects(t)).map(move |t| format!("{target}: {}", t.name))
            })
            .collect())
    }
}
