//! One module per subcommand: its clap arguments (doc comments are the help text) and its `run`,
//! which turns them into a validated library configuration and calls the library.

pub mod bench;
pub mod data_args;
pub mod download;
pub mod info;
pub mod stats;
pub mod synth;
pub mod train;
