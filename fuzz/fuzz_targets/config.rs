//! Any config file and any `-c` override: each is parsed and validated, or refused with an
//! error; never a panic.
#![no_main]

use airlock::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (file, spec) = input;
    let mut config = Config::from_toml(file).unwrap_or_default();
    let _ = config.apply_override(spec);
    let _ = config.validate();
});
