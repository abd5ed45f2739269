//! The bundled demo session as the end-to-end check of an engine: every engine must run it
//! to its end, bring its files back and leave nothing behind.

use std::process::Output;

use serde_json::Value;

use super::{Home, containers_labelled, docker, json_events, of_type, run_with_stdin};

/// `airlock run --json --approve all` through the bundled demo: five blocks, one failing
/// and fixed, the last drawing chart.png.
pub fn demo(home: &Home, engine: &[(&str, String)], args: &[String]) -> (Vec<Value>, Output) {
    let mut command = home.airlock();
    for (name, value) in engine {
        command.env(name, value);
    }
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.toml");
    command
        .args(args)
        .args(["run", "--json", "--scripted", demo, "--approve", "all"])
        .args(["--prompt", "count words"]);
    let output = run_with_stdin(command, "");
    (json_events(&output), output)
}

/// What every engine must give: the demo ran to its end, its files reached the host copy
/// and the history, and no container or workspace volume is left.
pub fn assert_demo_ran(home: &Home, events: &[Value], output: &Output, engine: Option<&str>) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    let ready = of_type(events, "sandbox_ready");
    let description = ready[0]["description"].as_str().unwrap_or("");
    if let Some(engine) = engine {
        assert!(
            description.contains(&format!("engine {engine}")),
            "{description}"
        );
    }
    let exits: Vec<Value> = of_type(events, "exec_finished")
        .iter()
        .map(|e| e["exit_code"].clone())
        .collect();
    assert_eq!(exits, [0, 1, 0, 0, 0].map(Value::from), "{stderr}");
    let session = events[0]["session"].as_str().unwrap();
    let workspace = home.data_dir().join("workspaces").join(session);
    let chart = std::fs::read(workspace.join("chart.png")).expect("chart.png copied back");
    assert!(chart.starts_with(b"\x89PNG"), "chart.png is a PNG");
    let last = of_type(events, "exec_finished").pop().unwrap().clone();
    let files: Vec<&str> = last["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(files, ["chart.png"], "{last}");
    let history = home
        .airlock()
        .args(["history", "show", session])
        .output()
        .expect("history");
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("chart.png"),
        "{}",
        String::from_utf8_lossy(&history.stdout)
    );
    assert_nothing_left(session);
}

/// No container of the session is left, and neither is its workspace volume.
fn assert_nothing_left(session: &str) {
    let containers = containers_labelled(&format!("airlock.session={session}"));
    assert!(containers.is_empty(), "containers left: {containers:?}");
    let name = format!("name=airlock-workspace-{session}");
    let volumes = docker(&["volume", "ls", "-q", "--filter", &name]);
    assert!(
        volumes.trim().is_empty(),
        "workspace volumes left: {volumes}"
    );
}
