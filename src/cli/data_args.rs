//! The flags that say where ratings come from and how to read them, shared by every command that
//! reads data.

/// Where the ratings come from.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {}
