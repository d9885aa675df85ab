//! Where one run's config and cache are: each precedence decided here, once, for both
//! binaries (the front on a hit, `pullcred-mint` for everything else), so they never disagree.

use std::path::{Path, PathBuf};

use crate::args::LowArgs;
use crate::env::Env;

/// Names the config file when `--config` does not.
pub const CONFIG_VAR: &str = "PULLCRED_CONFIG";
/// Names the cache dir when `--cache-dir` does not.
pub const CACHE_DIR_VAR: &str = "PULLCRED_CACHE_DIR";

/// What one run's arguments and environment decide before any config is read.
#[derive(Debug)]
pub struct Settings {
    /// See [`config_path`].
    pub config: Option<PathBuf>,
    /// `--cache-dir`, if given (see [`Settings::cache_dir`]).
    cache_dir: Option<PathBuf>,
    pub verbose: u8,
}

impl Settings {
    pub fn resolve(low: &LowArgs, env: &Env) -> Self {
        Settings {
            config: config_path(low.config.clone(), env),
            cache_dir: low.cache_dir.clone(),
            verbose: low.verbose,
        }
    }

    /// The cache dir, given the config's `[cache] dir` (see [`cache_dir`]).
    pub fn cache_dir(&self, configured: Option<&Path>, env: &Env) -> Option<PathBuf> {
        cache_dir(self.cache_dir.clone(), configured, env)
    }
}

/// The config file named for this run: `--config`, else [`CONFIG_VAR`]. `None`: the default
/// file if there is one, else the built-in rules (`Config::load` decides).
fn config_path(flag: Option<PathBuf>, env: &Env) -> Option<PathBuf> {
    flag.or_else(|| env.var(CONFIG_VAR).map(PathBuf::from))
}

/// The cache dir: `--cache-dir`, else [`CACHE_DIR_VAR`], else the config's `[cache] dir`
/// (`configured`), else the caller's default (`Env::default_cache_dir`).
fn cache_dir(flag: Option<PathBuf>, configured: Option<&Path>, env: &Env) -> Option<PathBuf> {
    flag.or_else(|| env.var(CACHE_DIR_VAR).map(PathBuf::from))
        .or_else(|| configured.map(Path::to_path_buf))
        .or_else(|| env.default_cache_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_variable_then_the_config_then_the_default() {
        let env = Env::from_vars(
            [
                (CONFIG_VAR, "/v.toml"),
                (CACHE_DIR_VAR, "/v"),
                ("HOME", "/h"),
            ],
            1000,
        );
        let none = Env::from_vars([("HOME", "/h")], 1000);
        let flag = || Some(PathBuf::from("/f"));
        assert_eq!(config_path(flag(), &env), flag());
        assert_eq!(config_path(None, &env), Some("/v.toml".into()));
        assert_eq!(config_path(None, &none), None);
        let conf = Some(Path::new("/c"));
        assert_eq!(cache_dir(flag(), conf, &env), flag());
        assert_eq!(cache_dir(None, conf, &env), Some("/v".into()));
        assert_eq!(cache_dir(None, conf, &none), Some("/c".into()));
        assert_eq!(cache_dir(None, None, &none), none.default_cache_dir());
    }
}
