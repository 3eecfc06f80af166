//! Subcommands of the `wgpt` binary.

pub mod bench;
pub mod chat;
pub mod progress;
pub mod text;
pub mod web;
