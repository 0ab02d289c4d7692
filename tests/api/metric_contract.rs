//! The metric families are a public API: the page, the table in
//! `src/expose/families.rs` and the metrics reference (`docs/metrics.md`)
//! must name the same ones (the flags' tables: `flag_tables.rs`).
use crate::helpers::spawn_app_showing_every_family;
use css_push_exporter::expose::families;
use std::collections::BTreeSet;

/// Family names a page declares in its `# TYPE` lines.
fn declared(page: &str) -> Vec<String> {
    page.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap().to_owned()).collect()
}

/// Metric names in the first column of the metrics reference's tables.
fn documented() -> BTreeSet<String> {
    include_str!("../../docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `css_push_"))
        .map(|rest| format!("css_push_{}", &rest[..rest.find('`').unwrap()]))
        .collect()
}

#[actix_web::test]
async fn every_family_is_shown_once_in_the_table_and_documented() {
    let (app, _state_dir) = spawn_app_showing_every_family().await;
    let page = app.metrics().await.text;

    let declared = declared(&page);
    let ours: Vec<&String> = declared.iter().filter(|n| !n.starts_with(families::PROCESS_PREFIX)).collect();
    let unique: BTreeSet<&String> = ours.iter().copied().collect();
    assert_eq!(unique.len(), ours.len(), "a family is declared twice: {ours:?}");
    let table: BTreeSet<String> = families::ALL.iter().map(|f| f.name.to_owned()).collect();
    let shown: BTreeSet<String> = unique.into_iter().cloned().collect();
    assert_eq!(shown, table, "page vs src/expose/families.rs");
    for f in families::ALL {
        assert!(page.contains(&format!("# TYPE {} {}\n", f.name, f.kind.as_str())), "{} as {:?}", f.name, f.kind);
    }
    assert_eq!(documented(), table, "docs/metrics.md vs src/expose/families.rs");
    app.stop().await;
}
