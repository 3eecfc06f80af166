//! Subcommands of the `wgpt` binary.

pub mod text;
