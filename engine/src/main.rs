//! The `engine` binary: a thin shell over the library (see `engine::cli`).
fn main() {
    std::process::exit(engine::cli::main());
}
