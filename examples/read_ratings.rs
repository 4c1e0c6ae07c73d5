//! The Rust side of the reading benchmark (BENCHMARKS.md, "Reading data"): loads `--data`-style
//! input with `collabgpu::data::load` and prints rows, users, items and seconds.
//!
//!     cargo run --release --example read_ratings -- PATH/ratings.csv

use std::time::Instant;

use collabgpu::data::{LoadOptions, load};

fn main() {
    let Some(data) = std::env::args().nth(1) else {
        eprintln!("usage: read_ratings PATH (a ratings file or MovieLens directory)");
        std::process::exit(2);
    };
    let start = Instant::now();
    match load(&data, &LoadOptions::default()) {
        Ok(dataset) => println!(
            "rows {} users {} items {} load {:.2} s",
            dataset.ratings.len(),
            dataset.users.len(),
            dataset.items.len(),
            start.elapsed().as_secs_f64()
        ),
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(1);
        }
    }
}
