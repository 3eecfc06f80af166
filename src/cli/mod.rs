//! Subcommands of the `wgpt` binary.

pub mod bench;
pub mod chat;
pub mod text;
pub mod web;
