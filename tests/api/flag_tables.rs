//! The flag tables in the docs are what clap parses: a row per flag, the
//! variable each reads, and its default as clap has it. A flag without a
//! row fails here, as does a row without a flag.
use clap::CommandFactory;
use css_push_exporter::simulate::SimulateArgs;
use css_push_exporter::Config;
use std::collections::BTreeMap;

/// The server's flags (`docs/configuration.md`) and `simulate`'s.
const SERVER: (&str, &str) = ("docs/configuration.md", include_str!("../../docs/configuration.md"));
const SIMULATE: (&str, &str) = ("docs/simulate.md", include_str!("../../docs/simulate.md"));

/// The rows of the table in the section `heading` of `doc` (its path and
/// text): each flag's other cells.
fn table((path, text): (&str, &str), heading: &str) -> BTreeMap<String, Vec<String>> {
    let section = &text[text.find(heading).unwrap_or_else(|| panic!("{path}: no {heading}"))..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    section
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|row| {
            let mut cells = row.trim_matches(['|', ' ']).split(" | ").map(str::to_owned);
            (cells.next().unwrap().trim_matches('`').to_owned(), cells.collect())
        })
        .collect()
}

/// What clap has of a flag: its variable and its default.
struct Flag {
    env: Option<String>,
    default: Option<String>,
}

fn flags(command: clap::Command) -> BTreeMap<String, Flag> {
    command
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !matches!(l, "help" | "version")))
        .map(|a| {
            let defaults: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().into()).collect();
            let flag = Flag {
                env: a.get_env().map(|e| e.to_string_lossy().into()),
                default: (!defaults.is_empty()).then(|| defaults.join(",")),
            };
            (format!("--{}", a.get_long().unwrap()), flag)
        })
        .collect()
}

/// A default cell shows clap's default as code, or, for a flag without
/// one, says in words what happens (`unset`, `off`, `one per CPU`): never
/// a value that is not the default, such as a variable's name.
fn wrong_default(cell: &str, flag: &Flag) -> Option<String> {
    match &flag.default {
        Some(d) if cell != format!("`{d}`") => Some(format!("default {cell}, clap's is `{d}`")),
        None if cell.contains('`') => Some(format!("default {cell}, but it has none")),
        _ => None,
    }
}

/// The table under `heading` in `doc` against clap's `command`: a row per
/// flag, and nothing `wrong` finds in a row (given its cells after the flag).
fn check(doc: (&str, &str), heading: &str, command: clap::Command, wrong: impl Fn(&[String], &Flag) -> Vec<String>) {
    let rows = table(doc, heading);
    let flags = flags(command);
    let path = doc.0;
    assert_eq!(rows.keys().collect::<Vec<_>>(), flags.keys().collect::<Vec<_>>(), "{path} {heading} vs the flags");
    let found: Vec<String> = rows
        .iter()
        .flat_map(|(name, cells)| wrong(cells, &flags[name]).into_iter().map(move |w| format!("{name}: {w}")))
        .collect();
    assert!(found.is_empty(), "{path} {heading}: {found:#?}");
}

#[test]
fn every_server_flag_has_its_row_with_its_variable_and_default() {
    check(SERVER, "## Flags", Config::command(), |cells, flag| {
        let env = flag.env.as_ref().map(|e| format!("`{e}`"));
        let variable = (Some(&cells[0]) != env.as_ref()).then(|| format!("variable {}, clap reads {env:?}", cells[0]));
        variable.into_iter().chain(wrong_default(&cells[1], flag)).collect()
    });
}

#[test]
fn every_simulate_flag_has_its_row_with_its_default() {
    check(SIMULATE, "## Flags", SimulateArgs::command(), |cells, flag| {
        // No variable column here: a flag that reads one says so.
        let untold = flag.env.as_ref().filter(|e| !cells[1].contains(&format!("`{e}`")));
        let variable = untold.map(|e| format!("reads {e}, and its row does not say so"));
        wrong_default(&cells[0], flag).into_iter().chain(variable).collect()
    });
}

#[test]
fn a_default_cell_is_clap_s_default_or_words() {
    let flag = |default: Option<&str>| Flag { env: None, default: default.map(str::to_owned) };
    assert_eq!(wrong_default("`5s`", &flag(Some("5s"))), None);
    assert_eq!(wrong_default("unset", &flag(None)), None);
    assert!(wrong_default("`CSS_PUSH_CALLBACK_KEY`", &flag(None)).is_some(), "a variable's name is no default");
    assert!(wrong_default("`10s`", &flag(Some("5s"))).is_some());
    assert!(wrong_default("unset", &flag(Some("5s"))).is_some());
}
