//! One module per subcommand: its clap arguments (doc comments are the help text) and its `run`,
//! which turns them into a validated library configuration and calls the library.

pub mod bench;
pub mod biases;
pub mod data_args;
pub mod download;
pub mod eval;
pub mod fold_in;
pub mod folds;
pub mod info;
pub mod model_args;
pub mod plot;
pub mod predict;
pub mod recommend;
pub mod similar;
pub mod stats;
pub mod synth;
pub mod train;
