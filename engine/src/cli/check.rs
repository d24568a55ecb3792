//! `engine check` and `engine graph`.
use super::{CheckArgs, EXIT_INTERNAL, GraphArgs};

pub fn check(_a: &CheckArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}

pub fn graph(_a: &GraphArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}
