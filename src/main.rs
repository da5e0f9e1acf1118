//! The `xp` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    xp::main()
}
