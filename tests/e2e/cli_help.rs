//! The CLI teaches: help with examples for every command, completions, a man page.

use crate::harness::*;

#[test]
fn every_subcommand_has_examples_in_its_help() {
    let sim = Sim::without_azure();
    for sub in [
        "list",
        "test",
        "plan",
        "apply",
        "backout",
        "runs",
        "log",
        "completions",
        "man",
    ] {
        let out = sim.azbook().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Examples:"),
            "`azbook {sub} --help` has no examples:\n{text}"
        );
        assert!(
            text.contains(&format!("azbook {sub}")),
            "{sub}: the examples use the command"
        );
    }
}

#[test]
fn completions_for_each_shell() {
    let sim = Sim::without_azure();
    for (shell, marker) in [
        ("bash", "_azbook()"),
        ("zsh", "#compdef azbook"),
        ("fish", "complete -c azbook"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = sim.azbook().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell} completion lacks {marker}");
        assert!(
            text.contains("backout") && text.contains("max-changes"),
            "{shell} completes subcommands and flags"
        );
    }
    assert_eq!(
        sim.azbook()
            .args(["completions", "tcsh"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn man_page_comes_from_the_same_definitions() {
    let sim = Sim::without_azure();
    let out = sim.azbook().arg("man").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(".ie") || text.contains(".TH azbook 1"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains(".TH azbook 1"));
    assert!(text.contains("backout"));
}

#[test]
fn a_misspelt_flag_suggests_the_right_one() {
    let sim = Sim::without_azure();
    let out = sim
        .azbook()
        .args(["test", "--resource-grup", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--resource-group"), "{stderr}");
}
