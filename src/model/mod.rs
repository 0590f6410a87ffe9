//! What a run produces, as data and nothing else: test results with their evidence, changes
//! with their steps and statuses, summaries, and what a report says about its run. The engine
//! (discover, evaluate, plan, apply, backout) fills these in; the renderers in `crate::report`
//! read them. Neither side imports the other.

mod changes;
mod context;
mod merge;
mod results;

pub use changes::{
    Change, ChangeReport, ChangeStatus, ChangeSummary, FieldDifference, PlannedStep, StepKind,
};
pub use context::{PlaybookDoc, PlaybookInfo, ReportContext, RunCommand, playbook_ids};
pub use merge::merge_test_reports;
pub use results::{Evidence, Status, Summary, TestContext, TestReport, TestResult};
