//! `xp-torch`: the part of xp that links libtorch.
//!
//! `xp-torch info` prints libtorch's version, its thread count and CUDA
//! availability as `key: value` lines, for `xp doctor`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("info") => {
            println!("libtorch: {}", env!("XP_LIBTORCH_VERSION"));
            println!("torch threads: {}", tch::get_num_threads());
            let cuda = if tch::Cuda::is_available() {
                format!("available, {} device(s)", tch::Cuda::device_count())
            } else {
                "not available".to_string()
            };
            println!("cuda: {cuda}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: xp-torch info");
            ExitCode::from(2)
        }
    }
}
