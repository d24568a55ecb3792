//! `spin`: a test guest that loops forever (for timeout and cancellation tests).

fn run(_ctx: &mut engine_sdk::Context) -> engine_sdk::Result<()> {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

engine_sdk::task!(
    name = "spin",
    version = "0.1.0",
    description = "loops forever (test guest)",
    inputs = [],
    outputs = [],
    params = [],
    run = run,
);
