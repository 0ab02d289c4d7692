//! The log as operators expect it: a `--log-level` that refuses words it
//! does not know (env_logger would read `warning` as a module name and
//! silence everything), and `--log-format json` for Loki or ELK, one object
//! per line. Secrets never reach a log line in the first place (callers
//! quote sender-controlled values short and never log keys or `sign`).
use std::io::Write;

/// The level words, with `warning` as the spelling people guess.
const LEVELS: [&str; 7] = ["off", "error", "warn", "warning", "info", "debug", "trace"];

/// Checks a `--log-level`: a level, or the long form of comma-separated
/// `level` and `module=level` directives. Returns it in env_logger syntax.
pub fn parse_filter(s: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for directive in s.split(',').map(str::trim) {
        let (module, level) = match directive.split_once('=') {
            Some((module, level)) if !module.trim().is_empty() => (Some(module.trim()), level.trim()),
            _ => (None, directive),
        };
        let level = level.to_ascii_lowercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!(
                "unknown log level {directive:?}: one of error, warn, info, debug, trace, off, \
                 or module filters such as info,actix_server=warn"
            ));
        }
        let level = if level == "warning" { "warn" } else { &level };
        out.push(module.map_or_else(|| level.to_owned(), |m| format!("{m}={level}")));
    }
    Ok(out.join(","))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// env_logger's text: `[time LEVEL target] message`.
    Text,
    /// One JSON object per line: `time`, `level`, `target`, `message`.
    Json,
}

/// Installs the global logger.
pub fn init(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter);
    if format == LogFormat::Json {
        builder.format(|out, record| {
            let line = json_line(
                std::time::SystemTime::now(),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
            );
            writeln!(out, "{line}")
        });
    }
    builder.init();
}

fn json_line(time: std::time::SystemTime, level: &str, target: &str, message: &str) -> String {
    serde_json::json!({
        "time": humantime::format_rfc3339_millis(time).to_string(),
        "level": level.to_ascii_lowercase(),
        "target": target,
        "message": message,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_module_filters_pass_unknown_words_do_not() {
        let table: &[(&str, Option<&str>)] = &[
            ("info", Some("info")),
            ("WARN", Some("warn")),
            ("warning", Some("warn")),
            ("off", Some("off")),
            ("info,actix_server=warn", Some("info,actix_server=warn")),
            ("css_push_exporter=debug", Some("css_push_exporter=debug")),
            ("warnin", None),
            ("css_push_exporter", None),
            ("info,actix_server", None),
            ("debug=loud", None),
            ("", None),
        ];
        for &(given, want) in table {
            assert_eq!(parse_filter(given).ok().as_deref(), want, "{given:?}");
        }
    }

    #[test]
    fn a_json_line_is_one_object() {
        let line = json_line(std::time::UNIX_EPOCH, "WARN", "css_push_exporter::observe::log", "a \"quoted\"\nline");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["target"], "css_push_exporter::observe::log");
        assert_eq!(v["message"], "a \"quoted\"\nline");
    }
}
