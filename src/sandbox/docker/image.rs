//! Making sure the sandbox image is here: use it, pull it with visible progress, or fall
//! back to the offline image and say so.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use super::build;
use crate::config::{PullPolicy, SandboxConfig};
use crate::sandbox::{Notices, SandboxError};

/// The image a session runs, pinned to what was actually there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) digest: Option<String>,
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "{} ({digest})", self.name),
            None => write!(f, "{} ({})", self.name, self.id),
        }
    }
}

impl ImageRef {
    /// The name and the first 12 hex digits of the digest or id, for a status line.
    pub(crate) fn short(&self) -> String {
        let full = self.digest.as_deref().unwrap_or(&self.id);
        let hex = full.rsplit(':').next().unwrap_or(full);
        format!("{} ({})", self.name, &hex[..hex.len().min(12)])
    }
}

pub(crate) async fn inspect(docker: &Docker, name: &str) -> Option<ImageRef> {
    let image = docker.inspect_image(name).await.ok()?;
    let digest = repo_digest(&image);
    Some(ImageRef {
        name: name.to_string(),
        id: image.id.unwrap_or_default(),
        digest,
    })
}

/// The digest a registry gave the image, when it came from one.
fn repo_digest(image: &bollard::models::ImageInspect) -> Option<String> {
    image.repo_digests.as_ref()?.first().cloned()
}

/// What `airlock image status` says of one image that is present.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ImageFacts {
    pub(crate) id: String,
    pub(crate) digest: Option<String>,
    pub(crate) created: Option<String>,
    pub(crate) size_bytes: Option<i64>,
    /// Where it came from, in words.
    pub(crate) source: String,
    /// Built by another version of airlock from another recipe (other packages or settings):
    /// a session that would use it as the offline image builds it again first.
    pub(crate) outdated: bool,
}

/// The image's labels, when it is here.
async fn labels(docker: &Docker, name: &str) -> Option<HashMap<String, String>> {
    let image = docker.inspect_image(name).await.ok()?;
    Some(
        image
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default(),
    )
}

/// Labels of an image built by airlock, but from a recipe other than this airlock's. An
/// image airlock did not build is never called outdated: it is someone's own.
fn outdated_labels(labels: &HashMap<String, String>) -> bool {
    labels.contains_key(build::LABEL_SOURCE)
        && labels.get(build::LABEL_RECIPE) != Some(&build::recipe())
}

/// Whether `name` is here and was built by another version of airlock, from another recipe.
pub(crate) async fn outdated(docker: &Docker, name: &str) -> bool {
    labels(docker, name)
        .await
        .is_some_and(|labels| outdated_labels(&labels))
}

pub(crate) async fn facts(docker: &Docker, name: &str) -> Option<ImageFacts> {
    let image = docker.inspect_image(name).await.ok()?;
    let digest = repo_digest(&image);
    let labels = image
        .config
        .and_then(|config| config.labels)
        .unwrap_or_default();
    let outdated = outdated_labels(&labels);
    let source = match labels.get(build::LABEL_SOURCE) {
        Some(from) if outdated => format!(
            "built by airlock from Debian packages ({from}) with another recipe ({}, now {}): \
             sessions build it again before they use it, `airlock image build` does it now",
            labels
                .get(build::LABEL_RECIPE)
                .map_or("none", String::as_str),
            build::recipe()
        ),
        Some(from) => format!("built by airlock from Debian packages ({from})"),
        None if digest.is_some() => "pulled from a registry".to_string(),
        None => "made on this daemon (built, imported or loaded)".to_string(),
    };
    Some(ImageFacts {
        id: image.id.unwrap_or_default(),
        digest,
        created: image.created.map(|created| created.to_string()),
        size_bytes: image.size,
        source,
        outdated,
    })
}

/// Whether the offline image can be built on this machine (its build tool is installed).
pub(crate) fn can_build_offline() -> bool {
    build::tool_available()
}

/// Builds `tag` from Debian packages (`airlock image build`), replacing an image of that name.
pub(crate) async fn build_offline(
    docker: &Docker,
    tag: &str,
    progress: &Notices,
) -> Result<ImageRef, SandboxError> {
    build::build(docker, tag, progress).await?;
    inspect(docker, tag).await.ok_or_else(|| {
        SandboxError::Unavailable(format!("{tag} was built but Docker does not list it"))
    })
}

/// The configured image, else a pull of it, else the offline image, else the offline image
/// built from Debian packages (when `sandbox.build_offline` allows). Progress of a pull or a
/// build goes to `progress`, decisions worth knowing to `notices`.
pub(crate) async fn ensure(
    docker: &Docker,
    config: &SandboxConfig,
    notices: &Notices,
    progress: &Notices,
) -> Result<ImageRef, SandboxError> {
    if let Some(image) = inspect(docker, &config.image).await {
        return renewed(docker, config, image, notices, progress).await;
    }
    let failure = match config.pull {
        PullPolicy::Never => "it is not present and sandbox.pull = \"never\"".to_string(),
        PullPolicy::Missing => match pull(docker, &config.image, progress).await {
            Ok(()) => match inspect(docker, &config.image).await {
                Some(image) => {
                    notices(format!("pulled image {}", config.image));
                    return Ok(image);
                }
                None => "the pull finished but the image is still not there".to_string(),
            },
            Err(why) => format!("pulling it failed: {why}"),
        },
    };
    let offline = &config.offline_image;
    if offline != &config.image
        && let Some(image) = inspect(docker, offline).await
    {
        notices(format!(
            "cannot use image {}: {failure}; using {offline} instead",
            config.image
        ));
        return renewed(docker, config, image, notices, progress).await;
    }
    let cannot = format!("cannot use image {}: {failure}", config.image);
    if !config.build_offline {
        return Err(SandboxError::Unavailable(format!(
            "{cannot}, and {offline} is not there either (sandbox.build_offline = false). \
             Make a registry reachable (or `docker pull {}` by hand), or build the offline \
             image with `airlock image build`",
            config.image
        )));
    }
    notices(format!(
        "{cannot}; building {offline} from Debian packages instead (about a minute, once; \
         `airlock image build` does it ahead of time)"
    ));
    if let Err(why) = build::build(docker, offline, progress).await {
        // What to do comes first; how airlock got here after it.
        return Err(SandboxError::Unavailable(format!(
            "cannot build {offline} from Debian packages: {why}. (It was needed because {cannot}.)"
        )));
    }
    let image = inspect(docker, offline).await.ok_or_else(|| {
        SandboxError::Unavailable(format!(
            "{cannot}, and {offline} was built but Docker does not list it"
        ))
    })?;
    notices(format!("built {}; using it", image.short()));
    Ok(image)
}

/// `image` itself, unless it is the offline image as another version of airlock built it,
/// from another recipe (other packages or settings): then it is built again first. When that cannot be done here, or
/// fails, the older build still serves, and the notice says why.
async fn renewed(
    docker: &Docker,
    config: &SandboxConfig,
    image: ImageRef,
    notices: &Notices,
    progress: &Notices,
) -> Result<ImageRef, SandboxError> {
    if image.name != config.offline_image || !outdated(docker, &image.name).await {
        return Ok(image);
    }
    let older = format!(
        "{} was built by another version of airlock, with other packages or settings",
        image.name
    );
    if !config.build_offline {
        notices(format!(
            "{older}; using it as it is (sandbox.build_offline = false; `airlock image build` renews it)"
        ));
        return Ok(image);
    }
    if !build::tool_available() {
        notices(format!(
            "{older}; using it as it is: {}",
            build::tool_missing()
        ));
        return Ok(image);
    }
    notices(format!(
        "{older}; building it again from Debian packages (about a minute, once; \
         `airlock image build` does it ahead of time)"
    ));
    if let Err(why) = build::build(docker, &image.name, progress).await {
        notices(format!(
            "building {} again failed, so the older build is used: {why}",
            image.name
        ));
        return Ok(image);
    }
    let built = inspect(docker, &image.name).await.ok_or_else(|| {
        SandboxError::Unavailable(format!(
            "{} was built again but Docker does not list it",
            image.name
        ))
    })?;
    notices(format!("built {}; using it", built.short()));
    Ok(built)
}

/// `name` with an explicit tag: without one, the API would pull every tag of the repository.
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

async fn pull(docker: &Docker, name: &str, progress: &Notices) -> Result<(), String> {
    let options = CreateImageOptions {
        from_image: Some(with_tag(name)),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, None);
    let mut layers = PullProgress::new(name);
    progress(format!("pulling image {name} ..."));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|err| super::describe(&err))?;
        if let Some(error) = info.error_detail.and_then(|detail| detail.message) {
            return Err(error);
        }
        if let Some(line) = layers.update(info.id, info.status, info.progress_detail) {
            progress(line);
        }
    }
    Ok(())
}

/// Folds per-layer progress into one line, at most a few times a second.
struct PullProgress {
    name: String,
    layers: BTreeMap<String, (i64, i64)>,
    last: Option<Instant>,
}

impl PullProgress {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            layers: BTreeMap::new(),
            last: None,
        }
    }

    fn update(
        &mut self,
        id: Option<String>,
        status: Option<String>,
        detail: Option<bollard::models::ProgressDetail>,
    ) -> Option<String> {
        let id = id?;
        let status = status.unwrap_or_default();
        let entry = self.layers.entry(id).or_insert((0, 0));
        if let Some(detail) = detail
            && status.starts_with("Downloading")
        {
            *entry = (
                detail.current.unwrap_or(entry.0),
                detail.total.unwrap_or(entry.1),
            );
        }
        if status.starts_with("Download complete") || status.starts_with("Pull complete") {
            entry.0 = entry.1;
        }
        if self
            .last
            .is_some_and(|at| at.elapsed() < Duration::from_millis(500))
        {
            return None;
        }
        self.last = Some(Instant::now());
        let (done, total) = self
            .layers
            .values()
            .fold((0, 0), |acc, (d, t)| (acc.0 + d, acc.1 + t));
        Some(format!(
            "pulling {}: {} layers, {:.1} of {:.1} MB",
            self.name,
            self.layers.len(),
            done as f64 / 1e6,
            total as f64 / 1e6
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_name_a_tag() {
        assert_eq!(with_tag("python"), "python:latest");
        assert_eq!(with_tag("python:3.12-slim"), "python:3.12-slim");
        assert_eq!(
            with_tag("localhost:5000/sandbox"),
            "localhost:5000/sandbox:latest"
        );
        assert_eq!(
            with_tag("localhost:5000/sandbox:v1"),
            "localhost:5000/sandbox:v1"
        );
        assert_eq!(with_tag("repo@sha256:00"), "repo@sha256:00");
    }

    #[test]
    fn only_airlocks_own_builds_from_another_recipe_are_outdated() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        let source = (build::LABEL_SOURCE, "debian:bookworm");
        // Earlier builds were labelled with a version number instead of the digest.
        assert!(outdated_labels(&labels(&[
            source,
            (build::LABEL_RECIPE, "1")
        ])));
        assert!(outdated_labels(&labels(&[source])));
        let current = build::recipe();
        assert!(!outdated_labels(&labels(&[
            source,
            (build::LABEL_RECIPE, current.as_str())
        ])));
        // Someone's own image under that name is theirs: never rebuilt.
        assert!(!outdated_labels(&labels(&[(build::LABEL_RECIPE, "1")])));
        assert!(!outdated_labels(&labels(&[])));
    }

    #[test]
    fn the_image_shows_what_ran() {
        let image = ImageRef {
            name: "img:1".into(),
            id: "sha256:ab".into(),
            digest: None,
        };
        assert_eq!(image.to_string(), "img:1 (sha256:ab)");
    }
}
