//! The report's measurements (`peak_memory`, `fuel_consumed`, `cached`), on
//! the threads and processes executors.

use crate::util::{EngineRun, guest, task};

/// Six 20 ms SDK tasks in family `nap[*]` requesting 512 MiB, three echoes
/// (each its own cache key), and a command task that prints a line and exits 3.
fn pipeline() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"[pipeline]
name = "h"

[plugins]
sleep_ms = "{}"
echo = "{}"
probe = "{}"

[tasks.nap]
plugin = "sleep_ms"
foreach = {{ i = {{ range = [0, 6] }} }}
params = {{ ms = 20 }}
resources = {{ memory = "512MiB" }}

[tasks.say]
plugin = "echo"
foreach = {{ i = {{ range = [0, 3] }} }}
params = {{ text = "{{i}}" }}

[tasks.bad]
plugin = "probe"
args = ["write", "/out/x", "hi", "exit", "3"]
"#,
        guest("sleep_ms").display(),
        guest("echo").display(),
        guest("cmd_probe").display()
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
    dir
}

#[test]
fn the_report_has_peak_memory_fuel_and_cached_per_task() {
    for executor in ["threads", "processes"] {
        let dir = pipeline();
        let first = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(first.code, 1, "{executor}: {}", first.stderr);
        let r = first.report();
        let nap = task(&r, "nap[0]");
        assert_eq!(nap["cached"], false);
        assert_eq!(nap["requested_memory"], 512u64 << 20);
        assert!(nap["start_us"].as_u64().is_some());
        let say = task(&r, "say[1]");
        assert_eq!(say["requested_memory"], 256u64 << 20);
        let peak = say["peak_memory"].as_u64().expect("peak_memory");
        assert!(peak > 0 && peak % 65536 == 0, "{executor}: {peak}");
        let fuel = say["fuel_consumed"].as_u64().expect("fuel_consumed");
        assert!(fuel > 0, "{executor}");
        assert!(task(&r, "bad")["fuel_consumed"].as_u64().is_some());
        assert!(task(&r, "bad").get("earlier_attempts").is_none());

        // Again: the echoes come from the cache, with what was measured when they ran.
        let second = EngineRun::new(dir.path()).executor(executor).run();
        assert_eq!(second.code, 1, "{executor}: {}", second.stderr);
        let r = second.report();
        let say = task(&r, "say[1]");
        assert_eq!(say["cached"], true);
        assert_eq!(say["attempts"], 0);
        assert_eq!(say["peak_memory"], peak);
        assert_eq!(say["fuel_consumed"], fuel);
        assert!(say.get("start_us").is_none() && say.get("duration_us").is_none());
    }
}
