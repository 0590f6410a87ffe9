//! JSON, the machine-readable form (schema in README.md). Written as it is serialized, never
//! whole in memory: a plan of thousands of changes is tens of megabytes.

use super::{ChangeRenderer, ChangeView, TestRenderer};
use crate::model::{ChangeReport, ReportContext, TestReport};
use std::io::{self, Write};

pub struct Json;

fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

impl TestRenderer for Json {
    fn render_test(
        &self,
        report: &TestReport,
        _: &ReportContext,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        write_json(out, report)
    }
}

impl ChangeRenderer for Json {
    fn render_changes(
        &self,
        report: &ChangeReport,
        _: &ReportContext,
        _: ChangeView,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        write_json(out, report)
    }
}
