//! The `rust-version` in Cargo.toml is the real minimum: the highest `rust-version` that any
//! package in Cargo.lock declares. (clippy's `incompatible_msrv` then checks our own code's
//! use of the standard library against it.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// "1.89" or "1.89.0" as (1, 89, 0).
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|part| {
        part.parse::<u32>()
            .unwrap_or_else(|_| panic!("not a rust-version: {text}"))
    });
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn the_declared_rust_version_is_the_highest_any_dependency_needs() {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let root = metadata["resolve"]["root"]
        .as_str()
        .expect("a root package");
    let in_lock: Vec<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .filter_map(|node| node["id"].as_str())
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let rust_version_of = |package: &Value| package["rust_version"].as_str().map(version);
    let declared = packages
        .iter()
        .find(|package| package["id"] == root)
        .and_then(rust_version_of)
        .expect("Cargo.toml states a rust-version");
    let (needed, by) = packages
        .iter()
        .filter(|package| {
            package["id"] != root && in_lock.contains(&package["id"].as_str().unwrap_or(""))
        })
        .filter_map(|package| Some((rust_version_of(package)?, package["name"].to_string())))
        .max()
        .expect("dependencies state their rust-version");
    assert_eq!(
        declared, needed,
        "Cargo.toml's rust-version should be the highest a dependency needs ({by} needs {needed:?})"
    );
}
