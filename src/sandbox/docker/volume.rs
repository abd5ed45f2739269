//! For an engine that does not share the operator's filesystem: the supervisor and the
//! workspace reach the container as Docker volumes, filled and read through the archive API
//! instead of bind mounts of host paths.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ListVolumesOptions, RemoveVolumeOptions,
    UploadToContainerOptions,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::spec::{LABEL_APP, LABEL_OWNER, UserId};
use super::{describe, remove};
use crate::owner::Owner;
use crate::sandbox::SandboxError;
use crate::sandbox::workspace_copy::{self, Applied, Incoming, Scope, SyncState};

/// Where a filling container has the volume: as `FILL_TOP` under the directory the archive
/// goes to, so the archive's top entry sets the owner and mode of the volume's root.
pub(super) const FILL_AT: &str = "/fill";
pub(super) const FILL_TOP: &str = "workspace";

/// Sends an archive spooled to a file into `path` in `container`.
pub(super) async fn upload(
    docker: &Docker,
    container: &str,
    path: &str,
    archive: File,
) -> Result<(), bollard::errors::Error> {
    let options = UploadToContainerOptions {
        path: path.to_string(),
        ..Default::default()
    };
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(archive));
    let body = bollard::body_try_stream(stream);
    docker
        .upload_to_container(container, Some(options), body)
        .await
}

pub(super) fn unavailable(what: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Unavailable(format!("cannot {what}: {err}"))
}

/// What marks a volume or container as this airlock process's, for the reaping of what a
/// process that is gone left behind.
fn owned_labels() -> std::collections::HashMap<String, String> {
    [
        (LABEL_APP.to_string(), "1".to_string()),
        (LABEL_OWNER.to_string(), Owner::current().to_string()),
    ]
    .into()
}

/// The name of this process's workspace volume for `session`.
pub(crate) fn workspace_name(session: &str) -> String {
    format!("airlock-workspace-{session}-{}", std::process::id())
}

/// A new volume for a session's workspace, filled with what `host` holds (the earlier
/// session's files on resume), owned by the code's user; with what both then hold.
pub(crate) async fn workspace(
    docker: &Docker,
    image: &str,
    name: &str,
    host: &Path,
    code: UserId,
) -> Result<SyncState, SandboxError> {
    create(docker, name, owned_labels()).await?;
    let root = host.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || {
        workspace_copy::pack(&root, FILL_TOP, (code.uid, code.gid))
    })
    .await
    .map_err(|err| unavailable("pack the workspace", err))
    .and_then(|packed| {
        packed.map_err(|err| unavailable(&format!("pack the workspace {}", host.display()), err))
    });
    let filled = match packed {
        Ok((archive, state)) => fill(docker, image, name, archive).await.map(|()| state),
        Err(err) => Err(err),
    };
    if filled.is_err() {
        remove_volume(docker, name).await;
    }
    filled
}

pub(super) async fn create(
    docker: &Docker,
    name: &str,
    labels: std::collections::HashMap<String, String>,
) -> Result<(), SandboxError> {
    let request = VolumeCreateRequest {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..Default::default()
    };
    docker
        .create_volume(request)
        .await
        .map(|_| ())
        .map_err(|err| unavailable(&format!("create volume {name}"), describe(&err)))
}

/// Extracts `archive` into the volume through a container that is created for it and never
/// started: the archive API reaches a volume only through a container that mounts it.
async fn fill(
    docker: &Docker,
    image: &str,
    volume: &str,
    archive: File,
) -> Result<(), SandboxError> {
    let filler = filler(docker, image, volume, None)
        .await?
        .ok_or_else(|| unavailable("create the container that fills a volume", "no id"))?;
    fill_through(docker, &filler, volume, archive).await
}

/// A container for filling `volume`, never started; `None` when `name` is taken (another
/// airlock fills it), which makes a named one a lock.
pub(super) async fn filler(
    docker: &Docker,
    image: &str,
    volume: &str,
    name: Option<&str>,
) -> Result<Option<String>, SandboxError> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["/nonexistent".to_string()]),
        labels: Some(owned_labels()),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:{FILL_AT}/{FILL_TOP}")]),
            network_mode: Some("none".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: name.map(str::to_string),
        ..Default::default()
    };
    let daemon = docker.clone();
    let created =
        super::in_flight::carried(
            async move { daemon.create_container(Some(options), body).await },
        )
        .await?;
    match created {
        Ok(created) => Ok(Some(created.id)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(None),
        Err(err) => Err(unavailable(
            "create the container that fills a volume",
            describe(&err),
        )),
    }
}

/// Uploads through `filler`, then removes it.
pub(super) async fn fill_through(
    docker: &Docker,
    filler: &str,
    volume: &str,
    archive: File,
) -> Result<(), SandboxError> {
    let uploaded = upload(docker, filler, FILL_AT, archive).await;
    remove(docker, filler).await;
    uploaded.map_err(|err| unavailable(&format!("fill volume {volume}"), describe(&err)))
}

/// Bringing the host copy up to date with `path` in the running container.
pub(crate) struct CopyBack<'a> {
    pub(crate) container: &'a str,
    pub(crate) path: &'a str,
    pub(crate) host: &'a Path,
    /// The bytes of archive taken at most, all downloads together.
    pub(crate) budget: u64,
}

impl CopyBack<'_> {
    /// Only the paths a run touched when they are known, else the whole tree. Every archive
    /// is downloaded and read through before anything is written: an error means the host
    /// copy is as it was. `state` is what both sides held after the last copy.
    pub(crate) async fn run(
        &self,
        docker: &Docker,
        touched: Option<&[String]>,
        state: &mut SyncState,
    ) -> Result<Applied, String> {
        let mut budget = self.budget;
        let mut archives = Vec::new();
        match touched {
            None => {
                let archive = self.download(docker, self.path, &mut budget).await?;
                let archive =
                    archive.ok_or_else(|| format!("{} is not in the container", self.path))?;
                archives.push((Some(archive), Scope::Tree));
            }
            Some(touched) => {
                for relative in touched {
                    let inside = format!("{}/{relative}", self.path);
                    let archive = self.download(docker, &inside, &mut budget).await?;
                    archives.push((archive, Scope::Path(PathBuf::from(relative))));
                }
            }
        }
        let root = self.host.to_path_buf();
        let mut held = std::mem::take(state);
        let applied = tokio::task::spawn_blocking(move || {
            let applied = apply_all(&root, archives, &mut held);
            (applied, held)
        })
        .await;
        let (applied, held) = applied.map_err(|err| err.to_string())?;
        *state = held;
        applied.map_err(|err| err.to_string())
    }

    /// The archive of `path` in the container, spooled to a temporary file; `None` when the
    /// container has nothing there. Past the budget it is dropped: a sparse file of any
    /// size costs /workspace nothing, but comes out of the archive API in full.
    async fn download(
        &self,
        docker: &Docker,
        path: &str,
        budget: &mut u64,
    ) -> Result<Option<File>, String> {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = docker.download_from_container(self.container, Some(options));
        let spool = tempfile::tempfile().map_err(|err| err.to_string())?;
        let mut file = tokio::fs::File::from_std(spool);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(None),
                Err(err) => return Err(describe(&err)),
            };
            *budget = budget.checked_sub(chunk.len() as u64).ok_or_else(|| {
                "its archive is larger than sandbox.workspace_limit (sparse files count at \
                 their full size)"
                    .to_string()
            })?;
            file.write_all(&chunk)
                .await
                .map_err(|err| err.to_string())?;
        }
        file.flush().await.map_err(|err| err.to_string())?;
        let mut spool = file.into_std().await;
        spool.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok(Some(spool))
    }
}

/// Reads every archive through, then applies them in turn; an error means nothing was
/// written.
fn apply_all(
    root: &Path,
    archives: Vec<(Option<File>, Scope)>,
    state: &mut SyncState,
) -> std::io::Result<Applied> {
    let incoming = archives
        .into_iter()
        .map(|(archive, scope)| Incoming::read(archive, scope))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut applied = Applied::default();
    let mut listed = Vec::new();
    for one in incoming {
        listed.push(one.listed(root)?);
    }
    for (one, host) in listed {
        applied.add(one.apply(root, host, state));
    }
    Ok(applied)
}

/// Sends what the operator changed or made in `host` since the last copy into `path` in
/// the running container (their edits between runs, and during the last one): files are
/// added and replaced, none removed; one held apart after a conflict stays out.
pub(crate) async fn copy_in(
    docker: &Docker,
    container: &str,
    path: &str,
    host: &Path,
    code: UserId,
    state: &mut SyncState,
) -> Result<(), SandboxError> {
    let root = host.to_path_buf();
    let known = std::mem::take(state);
    let packed = tokio::task::spawn_blocking(move || {
        let packed = workspace_copy::pack_changes(&root, (code.uid, code.gid), &known);
        (packed, known)
    })
    .await
    .map_err(|err| unavailable("pack the workspace", err))?;
    let (packed, known) = packed;
    *state = known;
    let packed = packed
        .map_err(|err| unavailable(&format!("pack the workspace {}", host.display()), err))?;
    let Some((archive, marks)) = packed else {
        return Ok(());
    };
    // Into the volume itself: the archive API writes nowhere else on a read-only root.
    upload(docker, container, path, archive)
        .await
        .map_err(|err| unavailable("copy the workspace in", describe(&err)))?;
    state.extend(marks);
    Ok(())
}

/// Removes a volume, waiting a little for a container that is still being removed (Docker
/// removes an auto-removed container in the background) to let go of it.
pub(crate) async fn remove_volume(docker: &Docker, name: &str) -> bool {
    for _ in 0..50 {
        let options = RemoveVolumeOptions { force: true };
        match docker.remove_volume(name, Some(options)).await {
            Ok(()) => return true,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(_) => return false,
        }
    }
    false
}

pub(super) async fn labelled(docker: &Docker, label: &str) -> Vec<bollard::models::Volume> {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let options = ListVolumesOptions {
        filters: Some(filters),
    };
    match docker.list_volumes(Some(options)).await {
        Ok(listed) => listed.volumes.unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Workspace volumes whose airlock process is gone.
pub(crate) async fn reap_stale(docker: &Docker) -> usize {
    let mut removed = 0;
    for volume in labelled(docker, LABEL_OWNER).await {
        let dead = volume
            .labels
            .get(LABEL_OWNER)
            .and_then(|label| Owner::parse(label))
            .is_some_and(|owner| owner.is_dead());
        if dead && remove_volume(docker, &volume.name).await {
            removed += 1;
        }
    }
    removed
}
