//! The examples' command lines: `--help` is help, not a file name.

#[path = "../examples/tradeoff.rs"]
#[allow(dead_code, reason = "the example's own main is its entry point there, unused here")]
mod tradeoff;

use clap::Parser;
use clap::error::ErrorKind;

#[test]
fn the_tradeoff_example_takes_help_and_one_file() {
    let help = tradeoff::Args::try_parse_from(["tradeoff", "--help"]).expect_err("help is not a file name");
    assert_eq!(help.kind(), ErrorKind::DisplayHelp);
    assert!(help.to_string().contains("FILE"), "{help}");
    let args = tradeoff::Args::try_parse_from(["tradeoff"]).expect("no arguments");
    assert_eq!(args.out, std::path::Path::new("tradeoff.svg"));
    let args = tradeoff::Args::try_parse_from(["tradeoff", "docs/plots/t.svg"]).expect("a file");
    assert_eq!(args.out, std::path::Path::new("docs/plots/t.svg"));
    let bad = tradeoff::Args::try_parse_from(["tradeoff", "--out", "x"]).expect_err("no such flag");
    assert_eq!(bad.kind(), ErrorKind::UnknownArgument);
}
