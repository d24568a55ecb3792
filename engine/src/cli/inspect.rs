//! `engine inspect`.
use super::{InspectArgs, EXIT_INTERNAL};

pub fn inspect(_a: &InspectArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}
