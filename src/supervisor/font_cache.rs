//! matplotlib's font cache, made when the offline image was built, copied afresh into each
//! block's HOME before the block starts: the first plot of a block does not rebuild it (0.15
//! to 0.3 s), and since HOME is emptied after every block, nothing one block writes into its
//! copy reaches the next. Images without the cache (python:3.12-slim, busybox) get nothing.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{CWD, Mode, OFlags};

/// Where an image keeps the cache: root's and read-only (the offline recipe makes it).
pub(crate) const IN_IMAGE: &str = "/usr/local/share/airlock/matplotlib";
/// More than this many files or bytes there is not a font cache: nothing is copied, so no
/// image makes every block pay for a large copy. The offline image's cache is one file of
/// about 30 kB.
const MOST_FILES: usize = 4;
const MOST_BYTES: u64 = 1 << 20;

/// The cache's files, read once when the supervisor starts (the image's root is read-only).
#[derive(Debug, Clone, Default)]
pub(crate) struct FontCache {
    files: Vec<(OsString, Vec<u8>)>,
}

impl FontCache {
    /// The cache `dir` holds; empty when there is none or it is not one (no copy is made).
    pub(crate) fn load(dir: &Path) -> Self {
        Self::read(dir).unwrap_or_default()
    }

    fn read(dir: &Path) -> std::io::Result<Self> {
        let opened = rustix::fs::openat(CWD, dir, dir_flags(), Mode::empty())?;
        let mut files = Vec::new();
        let mut total = 0;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            // Regular files only, never through a link, and few of them.
            if !entry.file_type()?.is_file() || files.len() == MOST_FILES {
                return Ok(Self::default());
            }
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let file =
                rustix::fs::openat(&opened, entry.file_name().as_os_str(), flags, Mode::empty())?;
            let mut bytes = Vec::new();
            std::fs::File::from(file)
                .take(MOST_BYTES + 1 - total)
                .read_to_end(&mut bytes)?;
            total += bytes.len() as u64;
            if total > MOST_BYTES {
                return Ok(Self::default());
            }
            files.push((entry.file_name(), bytes));
        }
        Ok(Self { files })
    }

    /// Copies the cache into `HOME/.cache/matplotlib`, owned by the code's uid so matplotlib
    /// may write there, when the block's environment leaves matplotlib looking there (no
    /// MPLCONFIGDIR, no XDG_CACHE_HOME). Nothing is copied when `.cache` is there already:
    /// whatever made it, it is left as it is. A copy that cannot be made is no error: the
    /// block then builds its cache as it would have without one.
    pub(crate) fn place(&self, env: &[(String, String)], uid: u32, gid: u32) -> Result<(), String> {
        if self.files.is_empty() {
            return Ok(());
        }
        let var = |name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        if var("MPLCONFIGDIR").is_some() || var("XDG_CACHE_HOME").is_some() {
            return Ok(());
        }
        let Some(home) = var("HOME").filter(|home| home.starts_with('/')) else {
            return Ok(());
        };
        self.write_into(Path::new(home), uid, gid)
            .map_err(|err| format!("cannot copy matplotlib's font cache into {home}: {err}"))
    }

    fn write_into(&self, home: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        let home = rustix::fs::openat(CWD, home, dir_flags(), Mode::empty())?;
        let cache = new_dir(&home, ".cache")?;
        let matplotlib = new_dir(&cache, "matplotlib")?;
        for (name, bytes) in &self.files {
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
            let file = rustix::fs::openat(
                &matplotlib,
                name.as_os_str(),
                flags | OFlags::CLOEXEC,
                Mode::RUSR | Mode::WUSR,
            )?;
            let mut file = std::fs::File::from(file);
            file.write_all(bytes)?;
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        // Handed over last, so the supervisor never needs to write into a directory of the
        // code's uid.
        std::os::unix::fs::fchown(&matplotlib, Some(uid), Some(gid))?;
        std::os::unix::fs::fchown(&cache, Some(uid), Some(gid))?;
        Ok(())
    }

    /// The total size of the files copied per block.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.files.iter().map(|(_, bytes)| bytes.len()).sum()
    }
}

/// A directory made afresh (never one that is there already) and opened without following
/// a link.
fn new_dir(parent: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    rustix::fs::mkdirat(parent, name, Mode::RWXU)?;
    Ok(rustix::fs::openat(
        parent,
        name,
        dir_flags(),
        Mode::empty(),
    )?)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    use super::*;

    const CACHE: &[u8] = br#"{"_version": 330, "ttflist": []}"#;

    fn me() -> (u32, u32) {
        (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }

    /// An image's cache directory holding `files`.
    fn image_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    fn home_env(home: &Path) -> Vec<(String, String)> {
        vec![("HOME".into(), home.to_str().unwrap().into())]
    }

    fn copy_in(home: &Path) -> PathBuf {
        home.join(".cache/matplotlib/fontlist-v330.json")
    }

    #[test]
    fn each_block_gets_a_fresh_copy_whatever_the_last_one_wrote_into_its_own() {
        let image = image_with(&[("fontlist-v330.json", CACHE)]);
        let cache = FontCache::load(image.path());
        assert_eq!(cache.bytes(), CACHE.len());
        let home = tempfile::tempdir().unwrap();
        let (uid, gid) = me();
        cache.place(&home_env(home.path()), uid, gid).unwrap();
        let copy = copy_in(home.path());
        assert_eq!(std::fs::read(&copy).unwrap(), CACHE);
        let meta = std::fs::metadata(&copy).unwrap();
        assert_eq!(
            (meta.uid(), meta.permissions().mode() & 0o777),
            (uid, 0o600)
        );
        let dir = std::fs::metadata(copy.parent().unwrap()).unwrap();
        assert_eq!((dir.uid(), dir.permissions().mode() & 0o777), (uid, 0o700));
        // The block poisons its copy and plants a file beside it; HOME is emptied after it.
        std::fs::write(
            &copy,
            b"{\"ttflist\": [{\"fname\": \"/workspace/evil.ttf\"}]}",
        )
        .unwrap();
        std::fs::write(home.path().join(".cache/matplotlib/planted"), b"x").unwrap();
        crate::supervisor::reap::empty_dir(home.path());
        cache.place(&home_env(home.path()), uid, gid).unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), CACHE);
        let names: Vec<_> = std::fs::read_dir(copy.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["fontlist-v330.json"]);
        assert_eq!(
            std::fs::read(image.path().join("fontlist-v330.json")).unwrap(),
            CACHE
        );
    }

    #[test]
    fn what_is_left_in_home_is_never_written_through_or_into() {
        let image = image_with(&[("fontlist-v330.json", CACHE)]);
        let cache = FontCache::load(image.path());
        let (uid, gid) = me();
        // A link where the copy would go, pointing at a directory the code must not fill.
        let victim = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(victim.path(), home.path().join(".cache")).unwrap();
        assert!(cache.place(&home_env(home.path()), uid, gid).is_err());
        assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
        // A link as HOME itself.
        let linked = home.path().join("linked-home");
        std::os::unix::fs::symlink(victim.path(), &linked).unwrap();
        assert!(cache.place(&home_env(&linked), uid, gid).is_err());
        assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0);
        // A cache someone else prepared stays as it was.
        let prepared = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(prepared.path().join(".cache/matplotlib")).unwrap();
        std::fs::write(copy_in(prepared.path()), b"theirs").unwrap();
        assert!(cache.place(&home_env(prepared.path()), uid, gid).is_err());
        assert_eq!(std::fs::read(copy_in(prepared.path())).unwrap(), b"theirs");
    }

    #[test]
    fn nothing_is_copied_where_matplotlib_would_not_look_or_from_an_image_without_one() {
        let image = image_with(&[("fontlist-v330.json", CACHE)]);
        let cache = FontCache::load(image.path());
        let (uid, gid) = me();
        let home = tempfile::tempdir().unwrap();
        let home_str = home.path().to_str().unwrap();
        let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        };
        let elsewhere = [
            pairs(&[("HOME", home_str), ("MPLCONFIGDIR", "/tmp/mpl")]),
            pairs(&[("HOME", home_str), ("XDG_CACHE_HOME", "/tmp/xdg")]),
            pairs(&[]),
            // The last HOME wins, as it does for the block's process.
            pairs(&[("HOME", home_str), ("HOME", "relative/home")]),
        ];
        for env in elsewhere {
            cache.place(&env, uid, gid).unwrap();
            assert_eq!(
                std::fs::read_dir(home.path()).unwrap().count(),
                0,
                "{env:?}"
            );
        }
        let missing = FontCache::load(&image.path().join("absent"));
        missing.place(&home_env(home.path()), uid, gid).unwrap();
        assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_that_is_not_a_small_cache_gives_nothing_to_copy() {
        let linked = image_with(&[]);
        std::os::unix::fs::symlink("/etc/passwd", linked.path().join("fontlist-v330.json"))
            .unwrap();
        let nested = image_with(&[("fontlist-v330.json", CACHE)]);
        std::fs::create_dir(nested.path().join("sub")).unwrap();
        let large = vec![b' '; (MOST_BYTES + 1) as usize];
        let big = image_with(&[("fontlist-v330.json", &large)]);
        let many = image_with(&[
            ("a", b"1"),
            ("b", b"2"),
            ("c", b"3"),
            ("d", b"4"),
            ("e", b"5"),
        ]);
        for dir in [&linked, &nested, &big, &many] {
            assert_eq!(FontCache::load(dir.path()).bytes(), 0);
        }
        assert_eq!(
            FontCache::load(image_with(&[("a", b"1")]).path()).bytes(),
            1
        );
    }
}
