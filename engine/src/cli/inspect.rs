//! `engine inspect`.
use super::{EXIT_INTERNAL, InspectArgs};

pub fn inspect(_a: &InspectArgs) -> i32 {
    eprintln!("error: not implemented yet");
    EXIT_INTERNAL
}
