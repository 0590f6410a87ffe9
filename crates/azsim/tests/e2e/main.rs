//! azsim's end-to-end tests: the real binary run as `az` (`cli`) and as `azsim serve` (`serve`),
//! each test in a temp dir of its own (`harness`). One test binary, so Cargo links the test
//! dependencies once.

mod cli;
mod db_keys;
mod harness;
mod serve;
