//! `engine run` and `engine worker`.
use super::{RunArgs, WorkerArgs, EXIT_INTERNAL};

pub fn run(_a: &RunArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}

pub fn worker(_a: &WorkerArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}
