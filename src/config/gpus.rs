//! `sandbox.gpus`: the forms Docker's `--gpus` takes that airlock passes on (every GPU, a
//! count, or devices by index or UUID), read at config load so that anything else is refused
//! by name instead of silently becoming one GPU.

/// What `sandbox.gpus` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gpus {
    All,
    /// This many GPUs, whichever the driver picks.
    Count(u32),
    /// These devices, by index (`0`) or UUID (`GPU-…`, `MIG-…`).
    Devices(Vec<String>),
}

const FORMS: &str = "\"all\", a count like \"2\", or \"device=0,1\" (indexes or GPU UUIDs)";

impl Gpus {
    /// Reads one value of `sandbox.gpus`; `Err` names the key and the forms it takes.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "sandbox.gpus = {text:?}: {why}; use {FORMS}, or leave it unset for no GPU"
            )
        };
        let value = text.trim();
        if value.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        if let Some(list) = value.strip_prefix("device=") {
            let ids: Vec<String> = list.split(',').map(|id| id.trim().to_string()).collect();
            if let Some(bad) = ids.iter().find(|id| !device_id(id)) {
                return Err(refuse(&format!("{bad:?} is not a GPU index or UUID")));
            }
            return Ok(Self::Devices(ids));
        }
        if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
            return match value.parse::<u32>() {
                Ok(0) => Err(refuse(
                    "a count of 0 asks for no GPU (device 0 is \"device=0\")",
                )),
                Ok(count) => Ok(Self::Count(count)),
                Err(_) => Err(refuse("the count is too large")),
            };
        }
        Err(refuse("not a form airlock passes to Docker"))
    }
}

/// A GPU index (`0`) or UUID (`GPU-5b…`, `MIG-GPU-…/1/0`): nothing that could carry another
/// option (`,`, `=`, quotes, spaces).
fn device_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:./".contains(&b))
}

pub(super) fn check(gpus: Option<&str>) -> anyhow::Result<()> {
    if let Some(text) = gpus {
        Gpus::parse(text)?;
    }
    Ok(())
}

/// `sandbox.gpus` as TOML wrote it: a string, or a bare count (`gpus = 2`, `-c sandbox.gpus=2`).
pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Count(i64),
    }
    let raw: Option<Raw> = serde::Deserialize::deserialize(deserializer)?;
    Ok(raw.map(|raw| match raw {
        Raw::Text(text) => text,
        Raw::Count(count) => count.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms_are_read_and_anything_else_is_refused_by_name() {
        assert_eq!(Gpus::parse("all").expect("all"), Gpus::All);
        assert_eq!(Gpus::parse("ALL").expect("all"), Gpus::All);
        assert_eq!(Gpus::parse("2").expect("count"), Gpus::Count(2));
        assert_eq!(
            Gpus::parse("device=0").expect("one"),
            Gpus::Devices(vec!["0".into()])
        );
        assert_eq!(
            Gpus::parse("device=0,1").expect("two"),
            Gpus::Devices(vec!["0".into(), "1".into()])
        );
        let uuid = "GPU-3a23c669-1f69-c64e-cf85-44e9b07e7a2a";
        assert_eq!(
            Gpus::parse(&format!("device={uuid}")).expect("uuid"),
            Gpus::Devices(vec![uuid.into()])
        );
        for bad in [
            "0,1",
            "device=",
            "device=0,",
            "device=0,,1",
            "devices=0",
            "0",
            "-1",
            "one",
            "99999999999",
            "device=0\"capabilities=compute",
            "",
        ] {
            let err = Gpus::parse(bad).expect_err(bad).to_string();
            assert!(
                err.contains("sandbox.gpus") && err.contains("device=0,1"),
                "{bad}: {err}"
            );
        }
    }
}
