//! Prometheus text (format 0.0.4) for the node's `/metrics` and the gateway client's
//! figures: one naming rule for both, a family is a counter when its name ends in `_total`
//! and a gauge otherwise.

use std::fmt::Write as _;

/// Writes the `# HELP` and `# TYPE` lines of family `name`.
pub(crate) fn family(out: &mut String, name: &str, help: &str) {
    let kind = if name.ends_with("_total") {
        "counter"
    } else {
        "gauge"
    };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes family `name` with its one unlabelled sample `value`.
pub(crate) fn sample(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, help);
    let _ = writeln!(out, "{name} {value}");
}
