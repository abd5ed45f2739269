//! The offline image as the recipe makes it, end to end: Python starts without what every
//! start would pay for and imports what it did before, and matplotlib's font cache made when
//! the image was built is copied afresh into each block's HOME: no plotting block rebuilds
//! it, and what one block writes into its copy never reaches the next block.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Home, exec_json, json_events, of_type, run_with_stdin, stderr};
use serde_json::Value;

#[test]
fn python_starts_without_site_hooks_and_imports_what_it_did() {
    let home = Home::new();
    let code = r#"python3 -X importtime -c pass 2>&1
python3 -c "import importlib.util as u; print('sitecustomize found:', u.find_spec('sitecustomize') is not None)"
python3 -c "from mpl_toolkits.mplot3d import Axes3D; import sys; print('mplot3d imports; pkg_resources imported:', 'pkg_resources' in sys.modules)"
python3 -c "import matplotlib.pyplot, sys; print('pyplot imports; pkg_resources imported:', 'pkg_resources' in sys.modules)"
python3 -m pip --version
"#;
    let (result, output) = exec_json(&home, "sh", code, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = result["output"].as_str().unwrap();
    let imported: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("import time:"))
        .filter_map(|line| line.rsplit('|').next())
        .map(str::trim)
        .collect();
    assert!(imported.contains(&"site"), "{text}");
    // No module run from a `.pth` or a site hook at start: matplotlib's namespace `.pth`
    // imported importlib.util, Debian's sitecustomize looked for apport, setuptools' `.pth`
    // imported its distutils shim.
    for module in [
        "importlib.util",
        "apport_python_hook",
        "_distutils_hack",
        "pkg_resources",
    ] {
        assert!(!imported.contains(&module), "{module} at start:\n{text}");
    }
    assert!(text.contains("sitecustomize found: False"), "{text}");
    assert!(
        text.contains("mplot3d imports; pkg_resources imported: False"),
        "{text}"
    );
    assert!(
        text.contains("pyplot imports; pkg_resources imported: False"),
        "{text}"
    );
    assert!(text.contains("pip "), "{text}");
    assert_eq!(result["exit_code"], 0, "{text}");
}

/// Lines of the block that tell where matplotlib took its font list from.
const WATCH_FONTS: &str = r#"import logging, os, sys
cache = os.path.expanduser("~/.cache/matplotlib")
log = logging.getLogger("matplotlib.font_manager")
log.setLevel(logging.DEBUG)
handler = logging.StreamHandler(sys.stdout)
handler.addFilter(lambda record: not record.getMessage().startswith("findfont"))
log.addHandler(handler)
"#;

/// Reads the copy as it was when the block started, then plots.
const PLOT: &str = r#"names = sorted(os.listdir(cache))
print("names", names)
for name in names:
    mine = open(os.path.join(cache, name), "rb").read()
    built = open("/usr/local/share/airlock/matplotlib/" + name, "rb").read()
    print("as built:", name, mine == built)
print("owned:", all(os.stat(os.path.join(cache, name)).st_uid == os.getuid() for name in names))
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1, 2, 3])
plt.title("fonts")
plt.savefig("/tmp/chart.png")
print("plotted")
"#;

/// The attack: the block points every font of its copy at a file of its own and plants
/// another file beside it, for the next block to read.
const POISON: &str = r#"import glob, json
path = glob.glob(cache + "/fontlist-*.json")[0]
data = json.load(open(path))
for font in data["ttflist"]:
    font["fname"] = "/workspace/evil.ttf"
json.dump(data, open(path, "w"))
open(cache + "/planted", "w").write("from the poisoning block")
print("poisoned", len(data["ttflist"]), "fonts")
"#;

#[test]
fn each_block_plots_from_a_fresh_copy_of_the_font_cache_built_into_the_image() {
    let home = Home::new();
    let blocks = [
        format!("{WATCH_FONTS}{PLOT}"),
        format!("{WATCH_FONTS}{POISON}"),
        format!("{WATCH_FONTS}{PLOT}"),
    ];
    let content: String = blocks
        .iter()
        .map(|code| format!("```python\n{code}```\n\n"))
        .collect();
    let script = common::script(&home, &format!("[[reply]]\ncontent = '''\n{content}'''\n"));
    let mut command = home.airlock();
    command.args([
        "run",
        "--approve",
        "all",
        "--prompt",
        "go",
        "--json",
        "--scripted",
    ]);
    command.arg(&script);
    let output = run_with_stdin(command, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let events = json_events(&output);
    let finished = of_type(&events, "exec_finished");
    let outputs: Vec<&str> = finished
        .iter()
        .map(|event| event["output"].as_str().unwrap())
        .collect();
    assert_eq!(outputs.len(), 3, "{events:#?}");
    assert!(outputs[1].contains("poisoned"), "{}", outputs[1]);
    // The block after the poisoning one reads the cache as it was built, from its own HOME.
    for (index, text) in [(0, outputs[0]), (2, outputs[2])] {
        let uses = "Using fontManager instance from /tmp/.cache/matplotlib/fontlist-v";
        assert!(
            text.contains(uses),
            "block {index} did not use the copy:\n{text}"
        );
        assert!(
            text.contains("as built: fontlist-v"),
            "block {index}:\n{text}"
        );
        for wrong in [
            "generated new fontManager",
            "Matplotlib is building the font cache",
            "planted",
            "evil.ttf",
        ] {
            assert!(
                !text.contains(wrong),
                "block {index} shows {wrong:?}:\n{text}"
            );
        }
        assert!(!text.contains("False"), "block {index}:\n{text}");
        assert!(
            text.contains("owned: True") && text.ends_with("plotted\n"),
            "{text}"
        );
    }
    let durations: Vec<Value> = finished
        .iter()
        .map(|event| event["duration_ms"].clone())
        .collect();
    assert!(durations.iter().all(Value::is_u64), "{durations:?}");
}
