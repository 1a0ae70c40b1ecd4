//! `lbprobe serve`: probes on request, in the manner of Prometheus' blackbox_exporter. A
//! scrape of `/probe?module=NAME&target=URL` runs the module's scenario against the target,
//! through the same pipeline as `lbprobe run` ([`crate::run`]), and answers with metrics.
//!
//! [`config`] loads and checks the config (modules, allow-list, caps); [`allow`] is the
//! allow-list; [`limits`] the caps on probes at once and per target; [`http`] the handlers;
//! [`stats`] the server's own counters.

pub mod allow;
pub mod config;
mod http;
pub mod limits;
pub mod stats;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::{ConfigError, ServeConfig};

use crate::report;

/// The config in use, and the probe slots it allows.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub config: ServeConfig,
    pub slots: Arc<Semaphore>,
}

impl Loaded {
    fn new(config: ServeConfig) -> Arc<Loaded> {
        let slots = Arc::new(Semaphore::new(config.caps.concurrent_probes));
        Arc::new(Loaded { config, slots })
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct State {
    loaded: RwLock<Arc<Loaded>>,
    /// The file reloads read.
    path: PathBuf,
    pub locks: limits::TargetLocks,
    pub stats: stats::Stats,
}

impl State {
    pub fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Read the config file again; keep the one in use when the new one does not load, and
    /// say why in the log and in `lbprobe_serve_config_last_reload_error`.
    pub fn reload(&self) -> Result<usize, ConfigError> {
        match ServeConfig::load(&self.path) {
            Ok(config) => {
                let modules = config.modules.len();
                *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded::new(config);
                self.stats.loaded(modules, true);
                report::warn(&format!(
                    "reloaded {}: {modules} modules",
                    self.path.display()
                ));
                Ok(modules)
            }
            Err(e) => {
                let why = e.to_string();
                self.stats.reload_failed(&why);
                report::warn(&format!("reload failed, keeping the config in use: {why}"));
                Err(e)
            }
        }
    }
}

/// Serve on `listener` until `shutdown` resolves; SIGHUP reloads the config.
pub async fn run(listener: TcpListener, config: ServeConfig, shutdown: impl Future<Output = ()>) {
    let state = Arc::new(State {
        path: config.path.clone(),
        locks: limits::TargetLocks::default(),
        stats: stats::Stats::new(),
        loaded: RwLock::new(Loaded::new(config)),
    });
    state
        .stats
        .loaded(state.current().config.modules.len(), false);
    let hangups = watch_hangups(state.clone());
    if let Ok(addr) = listener.local_addr() {
        report::warn(&format!(
            "serving on http://{addr}/ (probes: /probe?module=NAME&target=URL)"
        ));
    }
    http::accept(listener, state, shutdown).await;
    if let Some(task) = hangups {
        task.abort();
    }
}

/// SIGHUP reloads the config, as Prometheus does.
fn watch_hangups(state: Arc<State>) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup()).ok()?;
        Some(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let _ = state.reload();
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = state;
        None
    }
}
