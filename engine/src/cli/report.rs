//! `engine report RUN.json --html FILE`: render a saved JSON report as the
//! offline HTML page of [`crate::report::html`].

use super::{EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, ReportArgs};
use crate::report::html;

pub fn report(a: &ReportArgs) -> i32 {
    let bytes = match std::fs::read(&a.report) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read report {}: {e}", a.report.display());
            return EXIT_INVALID;
        }
    };
    let r: html::RunReport = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {} is not a run report: {e}", a.report.display());
            return EXIT_INVALID;
        }
    };
    let page = html::render(&r);
    if let Err(e) = crate::session::write_atomic_with(&a.html, |w| w.write_all(page.as_bytes())) {
        eprintln!("error: cannot write HTML report {}: {e}", a.html.display());
        return EXIT_INTERNAL;
    }
    EXIT_OK
}
