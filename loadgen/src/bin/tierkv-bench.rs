//! `tierkv-bench`: run a YCSB-style benchmark and print the report (text, or JSON with
//! `--json`) on stdout. See `tierkv-bench --help`.

use clap::Parser;
use std::io::Write as _;
use std::process::ExitCode;
use tierkv_loadgen::BenchOptions;

fn main() -> ExitCode {
    let opts = BenchOptions::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tierkv-bench: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(tierkv_loadgen::run(&opts)) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "tierkv-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    let out = if opts.json {
        match serde_json::to_string(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "tierkv-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        report.to_text()
    };
    if std::io::stdout().lock().write_all(out.as_bytes()).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
