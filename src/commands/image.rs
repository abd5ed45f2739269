//! `airlock image build|status`: the sandbox image, prepared ahead of time and described.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::config::{Config, PullPolicy, SandboxConfig};
use crate::output::sanitize::for_person;
use crate::sandbox::docker::{self, image};

/// `airlock image build [--force]`: builds the offline image from Debian packages.
pub async fn build(config: &Config, force: bool) -> anyhow::Result<ExitCode> {
    let client = docker::connect(&config.sandbox).await?.into_client();
    let tag = &config.sandbox.offline_image;
    if !force && let Some(present) = image::inspect(&client, tag).await {
        if !image::outdated(&client, tag).await {
            println!(
                "{} is already there; `airlock image build --force` builds it again",
                present.short()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{} was built by another version of airlock, with other packages or settings; building it again",
            present.short()
        );
    }
    let built = image::build_offline(&client, tag, &super::stderr_progress()).await?;
    println!("built {built}");
    Ok(ExitCode::SUCCESS)
}

/// One image as `status` reports it.
#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    present: bool,
    #[serde(flatten)]
    facts: Option<image::ImageFacts>,
}

#[derive(Debug, Serialize)]
struct Status {
    image: Entry,
    offline_image: Entry,
    /// What a session would do to get its image, in words.
    plan: String,
    /// An image is here, so a session needs no build (it may still try a pull first).
    ready: bool,
    /// mmdebstrap is on the PATH, so the offline image can be built here.
    can_build: bool,
}

/// `airlock image status [--json]`: which image a session would use, where it comes from,
/// its digest. Contacts no registry and changes nothing.
pub async fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let client = docker::connect(&config.sandbox).await?.into_client();
    let sandbox = &config.sandbox;
    let entry = |facts: Option<image::ImageFacts>, name: &str| Entry {
        name: name.to_string(),
        present: facts.is_some(),
        facts,
    };
    let configured = entry(image::facts(&client, &sandbox.image).await, &sandbox.image);
    let offline = entry(
        image::facts(&client, &sandbox.offline_image).await,
        &sandbox.offline_image,
    );
    let can_build = image::can_build_offline();
    let offline_outdated = offline.facts.as_ref().is_some_and(|facts| facts.outdated);
    let status = Status {
        plan: plan(
            sandbox,
            configured.present,
            offline.present,
            offline_outdated,
            can_build,
        ),
        ready: configured.present || offline.present,
        image: configured,
        offline_image: offline,
        can_build,
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        // Labels and names of a pulled image are anybody's text.
        write!(stdout, "{}", for_person(&describe(&status)))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `ensure` would do, in the same order.
fn plan(
    sandbox: &SandboxConfig,
    present: bool,
    offline_present: bool,
    offline_outdated: bool,
    can_build: bool,
) -> String {
    let (image, offline) = (&sandbox.image, &sandbox.offline_image);
    // An offline image from another version's recipe is built again before it is used.
    let renewal = if !offline_outdated {
        ""
    } else if sandbox.build_offline && can_build {
        " (built again first: another version of airlock built it, with other packages or settings)"
    } else {
        " (built by another version of airlock, with other packages or settings, and used as it \
         is: it cannot be built again here)"
    };
    if present {
        let renewal = if image == offline { renewal } else { "" };
        return format!("sessions use {image}, which is here{renewal}");
    }
    let fallback = if offline_present {
        format!("{offline}, which is here{renewal}")
    } else if !sandbox.build_offline {
        format!("nothing: {offline} is missing and sandbox.build_offline = false")
    } else if can_build {
        format!("{offline}, built from Debian packages first (about a minute, once)")
    } else {
        format!(
            "nothing: {offline} is missing and cannot be built here until mmdebstrap is installed"
        )
    };
    match sandbox.pull {
        PullPolicy::Missing => format!("sessions pull {image} first; if that fails, {fallback}"),
        PullPolicy::Never => {
            format!("{image} is missing and never pulled, so sessions use {fallback}")
        }
    }
}

fn describe(status: &Status) -> String {
    let mut text = String::new();
    for (label, entry) in [("image", &status.image), ("offline", &status.offline_image)] {
        let line = match &entry.facts {
            Some(facts) => format!(
                "{label:<8} {} · {} · {}{}{}\n",
                entry.name,
                facts.source,
                facts.digest.as_deref().unwrap_or(&facts.id),
                facts
                    .size_bytes
                    .map(|bytes| format!(" · {:.0} MB", bytes as f64 / 1e6))
                    .unwrap_or_default(),
                facts
                    .created
                    .as_deref()
                    .map(|created| format!(" · created {created}"))
                    .unwrap_or_default(),
            ),
            None => format!("{label:<8} {} · not here\n", entry.name),
        };
        text.push_str(&line);
    }
    text.push_str(&format!("{:<8} {}\n", "plan", status.plan));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_order_a_session_tries() {
        let mut sandbox = SandboxConfig::default();
        assert!(plan(&sandbox, true, false, false, false).contains("which is here"));
        let pull_then_build = plan(&sandbox, false, false, false, true);
        assert!(pull_then_build.starts_with("sessions pull python:3.12-slim first"));
        assert!(pull_then_build.contains("built from Debian packages first"));
        assert!(
            plan(&sandbox, false, false, false, false).contains("until mmdebstrap is installed")
        );
        let renewed = plan(&sandbox, false, true, true, true);
        assert!(
            renewed.ends_with("which is here (built again first: another version of airlock built it, with other packages or settings)"),
            "{renewed}"
        );
        let as_it_is = plan(&sandbox, false, true, true, false);
        assert!(as_it_is.contains("used as it is"), "{as_it_is}");
        sandbox.image = sandbox.offline_image.clone();
        assert!(plan(&sandbox, true, true, true, true).contains("built again first"));
        sandbox.image = SandboxConfig::default().image;
        sandbox.pull = PullPolicy::Never;
        sandbox.build_offline = false;
        let nothing = plan(&sandbox, false, false, false, true);
        assert!(nothing.contains("never pulled"), "{nothing}");
        assert!(
            nothing.contains("sandbox.build_offline = false"),
            "{nothing}"
        );
    }
}
