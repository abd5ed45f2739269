//! The one recipe for the offline sandbox image: mmdebstrap makes a minimal Debian root
//! filesystem as a tarball on its stdout, and the daemon imports that stream as an image.
//! No registry is involved, so it works where none answers; the tarball never touches the
//! disk, and it works the same for a daemon on another machine.

use std::process::Stdio;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptions, RemoveImageOptions, TagImageOptions};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use crate::output::sanitize::neutralize;
use tokio::process::{Child, Command};

use crate::sandbox::{Notices, SandboxError};

/// The Debian release the image is made from.
pub(crate) const SUITE: &str = "bookworm";
/// An interpreter, the shells, the tools blocks expect (coreutils, procps), numpy and
/// matplotlib so that a block can compute and draw a chart into /workspace, and pip for
/// blocks that install packages. matplotlib's own dependencies bring the DejaVu fonts its
/// Agg backend draws text with.
pub(crate) const PACKAGES: &[&str] = &[
    "python3",
    "python3-pip",
    "bash",
    "coreutils",
    "procps",
    "ca-certificates",
    "python3-numpy",
    "python3-matplotlib",
    // fontTools (a dependency of matplotlib) needs `python3-scipy | python3-munkres`; apt
    // takes the first unless the second is asked for, and scipy drags in a C++ compiler and
    // Boost (the image grows from 515 MB to 1.1 GB).
    "python3-munkres",
];
/// The image's label holding [`recipe`], what identifies what an image holds.
pub(crate) const LABEL_RECIPE: &str = "airlock.recipe";
pub(crate) const LABEL_SOURCE: &str = "airlock.built-from";
/// The packages asked for, for a person reading the image's labels.
const LABEL_PACKAGES: &str = "airlock.packages";
const TOOL: &str = "mmdebstrap";
/// How long the import request may take, the whole build included.
const IMPORT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// The environment mmdebstrap and apt get: the paths, the locale and a proxy if one is set.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// What a build reports as it goes, each step once. (Frontends add the time it has taken.)
struct Steps {
    image: String,
    progress: Notices,
    last: std::sync::Mutex<&'static str>,
}

impl Steps {
    fn report(&self, step: &'static str) {
        if let Ok(mut last) = self.last.lock() {
            if *last == step {
                return;
            }
            *last = step;
        }
        (self.progress)(format!("building {} · {step}", self.image));
    }
}

/// Whether the build tool can be found on PATH.
pub(crate) fn tool_available() -> bool {
    which(TOOL).is_some()
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What to tell someone whose machine lacks the build tool.
pub(crate) fn tool_missing() -> String {
    format!(
        "{TOOL} is not installed, and airlock needs it to build the image from Debian packages: \
         install it (`apt-get install {TOOL}` as root; airlock never installs packages itself), \
         or run `scripts/airlock`, which installs it when it is needed"
    )
}

/// Builds `tag` from Debian packages, reporting each step through `progress`.
pub(crate) async fn build(
    docker: &Docker,
    tag: &str,
    progress: &Notices,
) -> Result<(), SandboxError> {
    if !tool_available() {
        return Err(SandboxError::Unavailable(tool_missing()));
    }
    let steps = Steps {
        image: tag.to_string(),
        progress: progress.clone(),
        last: std::sync::Mutex::new(""),
    };
    steps.report("starting mmdebstrap");
    let mut child = Stoppable(spawn_mmdebstrap()?);
    let (Some(tarball), Some(log)) = (child.0.stdout.take(), child.0.stderr.take()) else {
        return Err(SandboxError::Unavailable(
            "cannot read mmdebstrap's output".into(),
        ));
    };
    // Imported under a name of its own first: a build that fails half-way never stands
    // under `tag`, and never replaces a good image there.
    let staging = format!("{}-building-{}", tag, std::process::id());
    let (log_tail, imported) = tokio::join!(
        follow_log(log, &steps),
        import(docker, &staging, tarball, &steps)
    );
    let status =
        child.0.wait().await.map_err(|err| {
            SandboxError::Unavailable(format!("cannot wait for mmdebstrap: {err}"))
        })?;
    let outcome = match (status.success(), imported) {
        (true, Ok(())) => match configured(docker, &staging).await {
            Ok(()) => promote(docker, &staging, tag).await,
            Err(err) => Err(err),
        },
        (true, Err(err)) => Err(err),
        // When the import fails first, mmdebstrap's pipe breaks too: say both.
        (false, imported) => {
            let docker_said = imported
                .err()
                .map(|err| format!("; {err}"))
                .unwrap_or_default();
            Err(SandboxError::Unavailable(format!(
                "building the sandbox image failed: mmdebstrap exited with {status}: {}{docker_said}",
                log_tail.join(" | ")
            )))
        }
    };
    remove_image(docker, &staging).await;
    if outcome.is_ok() {
        steps.report("done");
    }
    outcome
}

/// Whether the daemon applied the image's configuration: its recipe label is the last of
/// the changes. Podman's import (4.3) takes the changes, which go as one parameter of
/// newline-separated instructions, for one instruction and drops the rest (PATH, the
/// labels), which would leave an image that never looks outdated.
async fn configured(docker: &Docker, staging: &str) -> Result<(), SandboxError> {
    let image = docker.inspect_image(staging).await.map_err(|err| {
        SandboxError::Unavailable(format!(
            "cannot inspect the imported image: {}",
            super::describe(&err)
        ))
    })?;
    let labels = image.config.and_then(|config| config.labels);
    if labels.is_some_and(|labels| labels.get(LABEL_RECIPE) == Some(&recipe())) {
        return Ok(());
    }
    Err(SandboxError::Unavailable(
        "the daemon imported the filesystem but not the image's configuration (its \
         environment and labels): Podman's import takes only one instruction from the changes \
         airlock sends. Build the image with Docker and copy it (`docker save \
         airlock-sandbox:offline | podman load`; scripts/podman-service does this)"
            .into(),
    ))
}

/// The staged image, once it is whole, under its real name.
async fn promote(docker: &Docker, staging: &str, tag: &str) -> Result<(), SandboxError> {
    let (repo, version) = split_tag(tag);
    let options = TagImageOptions {
        repo: Some(repo.to_string()),
        tag: Some(version.to_string()),
    };
    docker
        .tag_image(staging, Some(options))
        .await
        .map_err(|err| {
            SandboxError::Unavailable(format!(
                "cannot name the built image {tag}: {}",
                super::describe(&err)
            ))
        })
}

/// Removes the staging name (the image stays under its real name when it was promoted).
async fn remove_image(docker: &Docker, name: &str) {
    let options = RemoveImageOptions {
        noprune: false,
        ..Default::default()
    };
    let _ = docker.remove_image(name, Some(options), None).await;
}

/// `repo:tag` → (`repo`, `tag`); without a tag, `latest`.
fn split_tag(tag: &str) -> (&str, &str) {
    match tag.rsplit_once(':') {
        Some((repo, version)) if !version.contains('/') => (repo, version),
        _ => (tag, "latest"),
    }
}

/// mmdebstrap, stopped with SIGTERM when the build is abandoned (the session ended first):
/// unlike SIGKILL, that lets it remove its temporary root filesystem.
struct Stoppable(Child);

impl Drop for Stoppable {
    fn drop(&mut self) {
        let Some(pid) = self.0.id() else { return };
        let running = matches!(self.0.try_wait(), Ok(None));
        if let (true, Some(pid)) = (
            running,
            i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw),
        ) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

/// mmdebstrap's arguments (the tarball goes to stdout).
fn mmdebstrap_args() -> Vec<String> {
    [
        "--variant=minbase".to_string(),
        format!("--include={}", PACKAGES.join(",")),
        "--dpkgopt=path-exclude=/usr/share/doc/*".into(),
        "--dpkgopt=path-exclude=/usr/share/man/*".into(),
        "--dpkgopt=path-exclude=/usr/share/locale/*".into(),
        // A home for uid 1000 and a world-writable /workspace, as in the curated Dockerfile.
        r#"--customize-hook=chroot "$1" useradd --uid 1000 --create-home --shell /bin/bash sandbox"#.into(),
        r#"--customize-hook=mkdir -p "$1/workspace" && chmod 0777 "$1/workspace""#.into(),
        LEAN_START.into(),
        font_cache_hook(),
        SUITE.into(),
        "-".into(),
    ]
    .into()
}

/// What every Python start would pay for and no block needs, removed once the packages are
/// in: Debian's `sitecustomize` (it looks for apport's crash hook, which is not there);
/// matplotlib's `-nspkg.pth`, which imports `importlib.util` at every start to declare
/// `mpl_toolkits` a namespace package (without it and without `mpl_toolkits/__init__.py`,
/// which would import `pkg_resources` instead, `mpl_toolkits` is an implicit namespace
/// package, as matplotlib 3.7 made it, and `mpl_toolkits.mplot3d` imports as before); and
/// setuptools' `distutils-precedence.pth`, which imports its distutils shim at every start
/// (setuptools still puts the shim in place whenever it is imported, as pip does; a block
/// that imports `distutils` alone gets the standard library's).
const LEAN_START: &str = concat!(
    r#"--customize-hook=rm -f "$1"/etc/python3*/sitecustomize.py "$1"/usr/lib/python3*/sitecustomize.py"#,
    r#" "$1"/usr/lib/python3/dist-packages/distutils-precedence.pth"#,
    r#" "$1"/usr/lib/python3/dist-packages/matplotlib-*-nspkg.pth"#,
    r#" "$1"/usr/lib/python3/dist-packages/mpl_toolkits/__init__.py"#,
    r#" "$1"/usr/lib/python3/dist-packages/mpl_toolkits/__pycache__/__init__.*"#,
);

/// matplotlib's font cache, made in the image's own root (its paths are the image's) into a
/// directory only root writes: the supervisor copies it into each block's HOME, where
/// matplotlib can write (3.6 refuses a cache directory it cannot write). The build fails when
/// no cache file came out, rather than leave every plotting block to rebuild it.
fn font_cache_hook() -> String {
    let dir = crate::supervisor::font_cache::IN_IMAGE;
    format!(
        r#"--customize-hook=mkdir -p "$1{dir}" && chroot "$1" env -i PATH=/usr/bin:/bin MPLCONFIGDIR={dir} python3 -c "import matplotlib.font_manager" && ls "$1{dir}"/fontlist-*.json >/dev/null && chmod -R u=rwX,go=rX "$1{dir}""#
    )
}

/// The image's configuration, apart from its labels.
fn image_config() -> Vec<String> {
    [
        "WORKDIR /workspace",
        // An imported filesystem has no PATH of its own; without one Python cannot tell
        // where it is (`sys.executable` is empty), so a block cannot start Python again.
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8",
        r#"CMD ["python3"]"#,
    ]
    .map(String::from)
    .into()
}

/// What identifies the content of an image this recipe builds: a digest of everything that
/// decides it (the release, the packages, mmdebstrap's options and hooks, the image's
/// configuration). An image under the offline name whose label says otherwise was built by
/// another version of airlock, with other packages or settings, and is built again before a
/// session uses it; no version number has to be remembered and bumped by hand.
pub(crate) fn recipe() -> String {
    fingerprint(&recipe_parts())
}

/// Everything that decides what the image holds, in order.
fn recipe_parts() -> Vec<String> {
    mmdebstrap_args()
        .into_iter()
        .chain(image_config())
        .collect()
}

/// The first 16 hex digits of the SHA-256 of `parts`.
fn fingerprint(parts: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A byte no argument holds ends each part, so moving text between parts changes it.
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn spawn_mmdebstrap() -> Result<Child, SandboxError> {
    let mut command = Command::new(TOOL);
    command
        .args(mmdebstrap_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Only what apt needs: airlock's environment may hold the model's API key.
    command.env_clear();
    for name in KEPT_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .spawn()
        .map_err(|err| SandboxError::Unavailable(format!("cannot start {TOOL}: {err}")))
}

/// Turns mmdebstrap's `I:` lines into steps; keeps the last lines for an error message.
async fn follow_log(log: impl AsyncRead + Unpin, steps: &Steps) -> Vec<String> {
    const KEPT: usize = 6;
    const LONGEST: usize = 4096;
    let mut tail = Vec::new();
    let mut reader = BufReader::new(log);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        // Read to the end whatever it prints, so its pipe never fills or breaks.
        match reader.read_until(b'\n', &mut bytes).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        bytes.truncate(LONGEST);
        let line = String::from_utf8_lossy(&bytes);
        if let Some(step) = step_of(&line) {
            steps.report(step);
        }
        let line = neutralize(line.trim());
        if !line.is_empty() {
            if tail.len() == KEPT {
                tail.remove(0);
            }
            tail.push(line);
        }
    }
    tail
}

/// The step a line of mmdebstrap's log starts, in words a user follows.
fn step_of(line: &str) -> Option<&'static str> {
    let message = line.strip_prefix("I: ")?;
    const STEPS: &[(&str, &str)] = &[
        (
            "running apt-get update",
            "step 1 of 6: reading the package lists",
        ),
        ("downloading packages", "step 2 of 6: downloading packages"),
        ("extracting archives", "step 3 of 6: unpacking packages"),
        ("installing essential", "step 4 of 6: installing packages"),
        (
            "running --customize-hook",
            "step 5 of 6: adding the sandbox user and matplotlib's font cache",
        ),
        (
            "creating tarball",
            "step 6 of 6: importing the filesystem into Docker",
        ),
    ];
    STEPS
        .iter()
        .find(|(start, _)| message.starts_with(start))
        .map(|(_, step)| *step)
}

/// Streams the tarball into the daemon as the image `tag`.
async fn import(
    docker: &Docker,
    tag: &str,
    tarball: impl AsyncRead + Unpin + Send + 'static,
    steps: &Steps,
) -> Result<(), SandboxError> {
    // The whole name as `repo`, which "may include a tag" (Docker's API): Podman's import
    // (4.3) ignores the `tag` parameter and would name the image `repo:latest`.
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(tag.into()),
        changes: image_config()
            .into_iter()
            .chain([format!(
                "LABEL {LABEL_RECIPE}={} {LABEL_SOURCE}=debian:{SUITE} {LABEL_PACKAGES}={}",
                recipe(),
                PACKAGES.join(",")
            )])
            .collect(),
        ..Default::default()
    };
    let body = bollard::body_try_stream(chunks(tarball));
    // The daemon answers only once the whole tarball has arrived, that is once mmdebstrap has
    // finished, which takes longer than bollard's two-minute request timeout on a busy
    // machine; the build's own steps are bounded by apt's timeouts.
    let docker = docker.clone().with_timeout(IMPORT_DEADLINE);
    let mut answers = docker.create_image(Some(options), Some(body), None);
    while let Some(answer) = answers.next().await {
        if let Err(err) = answer {
            steps.report("the import failed");
            return Err(SandboxError::Unavailable(format!(
                "Docker could not import the image: {}",
                super::describe(&err)
            )));
        }
    }
    Ok(())
}

/// A reader as a stream of chunks, for a streamed request body.
fn chunks(
    reader: impl AsyncRead + Unpin + Send + 'static,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    const CHUNK: usize = 256 * 1024;
    futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0; CHUNK];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(bytes::Bytes::from(buffer)), reader))
            }
            Err(err) => Some((Err(err), reader)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmdebstraps_log_lines_become_numbered_steps() {
        assert_eq!(
            step_of("I: downloading packages with apt..."),
            Some("step 2 of 6: downloading packages")
        );
        assert_eq!(
            step_of("I: running --customize-hook in shell: sh -c 'x'"),
            Some("step 5 of 6: adding the sandbox user and matplotlib's font cache")
        );
        assert_eq!(step_of("I: chroot architecture amd64"), None);
        assert_eq!(step_of("E: something broke"), None);
    }

    #[test]
    fn the_recipe_changes_with_the_package_list() {
        let parts = recipe_parts();
        let include = parts
            .iter()
            .position(|part| part.starts_with("--include="))
            .expect("the packages are part of the recipe");
        assert!(parts[include].contains("procps"));
        let mut fewer = parts.clone();
        fewer[include] = fewer[include].replace(",procps", "");
        assert_ne!(fingerprint(&fewer), recipe());
        assert_eq!(recipe(), recipe());
        assert_eq!(recipe().len(), 16);
        assert!(recipe().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
