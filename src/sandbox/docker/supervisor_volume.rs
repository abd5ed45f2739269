//! The supervisor for an engine that cannot see this binary: a volume named by the binary's
//! digest, filled once per build of airlock and reused by every later session.
//!
//! Sessions may start at once on a fresh engine, and a half-filled volume must never be run.
//! So the filling container has a fixed name, which only one airlock can create (a lock the
//! engine keeps), and a second, empty volume says the first is whole: it is made only after
//! the upload finished.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RemoveVolumeOptions;
use sha2::{Digest, Sha256};

use super::describe;
use super::spec::{LABEL_APP, LABEL_OWNER};
use super::volume::{FILL_AT, FILL_TOP, create, filler, labelled, unavailable, upload};
use crate::owner::Owner;
use crate::sandbox::SandboxError;

/// Labels both volumes with the digest of the binary.
const LABEL_SUPERVISOR: &str = "airlock.supervisor.sha256";
/// How old another build's supervisor must be before it is removed.
const SETTLED: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
/// How long a session waits for another airlock to finish the upload.
const FILL_WAIT: Duration = Duration::from_secs(300);

/// The volume holding this supervisor binary, ready to mount.
pub(crate) async fn supervisor(
    docker: &Docker,
    image: &str,
    binary: &Path,
) -> Result<String, SandboxError> {
    let path = binary.to_path_buf();
    let digest = tokio::task::spawn_blocking(move || sha256_of(&path))
        .await
        .map_err(|err| unavailable("read the supervisor", err))?
        .map_err(|err| unavailable(&format!("read {}", binary.display()), err))?;
    let name = format!("airlock-supervisor-{}", &digest[..16]);
    let whole = format!("{name}-whole");
    let lock = format!("airlock-fill-{}", &digest[..16]);
    let deadline = tokio::time::Instant::now() + FILL_WAIT;
    loop {
        if docker.inspect_volume(&whole).await.is_ok() {
            return Ok(name);
        }
        create(docker, &name, labels(&digest)).await?;
        if let Some(filler) = filler(docker, image, &name, Some(&lock)).await? {
            // Another airlock may have finished and let go just before: then its upload
            // stands, and a second one would replace a binary a container may be starting.
            let filled = if docker.inspect_volume(&whole).await.is_ok() {
                Ok(())
            } else {
                fill_and_mark(docker, &filler, binary, &name, &digest).await
            };
            // The lock is held until the mark is made, and let go whatever happened.
            super::remove(docker, &filler).await;
            return filled.map(|()| name);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SandboxError::Unavailable(format!(
                "another airlock has been copying its supervisor to the engine for {} s \
                 (container {lock}); remove that container if no airlock is starting",
                FILL_WAIT.as_secs()
            )));
        }
        clear_abandoned_lock(docker, &lock).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Uploads the binary through `filler` and then marks the volume whole.
async fn fill_and_mark(
    docker: &Docker,
    filler: &str,
    binary: &Path,
    name: &str,
    digest: &str,
) -> Result<(), SandboxError> {
    remove_other_supervisors(docker, digest).await;
    let path = binary.to_path_buf();
    let archive = tokio::task::spawn_blocking(move || pack_supervisor(&path))
        .await
        .map_err(|err| unavailable("pack the supervisor", err))?
        .map_err(|err| unavailable("pack the supervisor", err))?;
    upload(docker, filler, FILL_AT, archive)
        .await
        .map_err(|err| unavailable(&format!("fill volume {name}"), describe(&err)))?;
    create(docker, &format!("{name}-whole"), labels(digest)).await
}

fn labels(digest: &str) -> std::collections::HashMap<String, String> {
    [
        (LABEL_APP.to_string(), "1".to_string()),
        (LABEL_SUPERVISOR.to_string(), digest.to_string()),
    ]
    .into()
}

/// The filling container of an airlock process that is gone: it will never finish.
async fn clear_abandoned_lock(docker: &Docker, lock: &str) {
    let Ok(inspected) = docker.inspect_container(lock, None).await else {
        return;
    };
    let labels = inspected.config.and_then(|config| config.labels);
    let owner = labels
        .as_ref()
        .and_then(|labels| labels.get(LABEL_OWNER))
        .and_then(|label| Owner::parse(label));
    if owner.is_some_and(|owner| owner.is_dead()) {
        super::remove(docker, lock).await;
    }
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The binary as `airlock`, root's and read-only: no block may change what supervises the
/// next one.
fn pack_supervisor(binary: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::File::open(binary)?;
    let mut archive = tar::Builder::new(tempfile::tempfile()?);
    let mut top = tar::Header::new_gnu();
    top.set_entry_type(tar::EntryType::Directory);
    top.set_size(0);
    top.set_mode(0o755);
    top.set_uid(0);
    top.set_gid(0);
    archive.append_data(&mut top, FILL_TOP, std::io::empty())?;
    let mut header = tar::Header::new_gnu();
    header.set_size(file.metadata()?.len());
    header.set_mode(0o555);
    header.set_uid(0);
    header.set_gid(0);
    archive.append_data(&mut header, format!("{FILL_TOP}/airlock"), file)?;
    let mut spooled = archive.into_inner()?;
    std::io::Seek::seek(&mut spooled, std::io::SeekFrom::Start(0))?;
    Ok(spooled)
}

/// Supervisors of other builds of airlock: one is left behind by every upgrade. The engine
/// keeps one a container still uses, and then its mark of being whole stays too.
async fn remove_other_supervisors(docker: &Docker, digest: &str) {
    // Only those made an hour ago or more: a session of that build may have just found its
    // volume whole and be about to create its container on it, which the engine would then
    // do on a new, empty volume of the same name.
    let settled = |volume: &bollard::models::Volume| {
        let made = volume
            .created_at
            .as_deref()
            .map(str::parse::<jiff::Timestamp>);
        made.and_then(Result::ok)
            .is_some_and(|made| jiff::Timestamp::now().duration_since(made) >= SETTLED)
    };
    let mut others: Vec<String> = labelled(docker, LABEL_SUPERVISOR)
        .await
        .into_iter()
        .filter(|v| v.labels.get(LABEL_SUPERVISOR).map(String::as_str) != Some(digest))
        .filter(settled)
        .map(|volume| volume.name)
        .collect();
    // The binaries first: a mark goes only with its binary.
    others.sort_by_key(|name| name.ends_with("-whole"));
    for name in others {
        let binary = name.strip_suffix("-whole");
        let binary_gone = match binary {
            Some(binary) => docker.inspect_volume(binary).await.is_err(),
            None => true,
        };
        if binary_gone {
            let options = RemoveVolumeOptions { force: false };
            let _ = docker.remove_volume(&name, Some(options)).await;
        }
    }
}
