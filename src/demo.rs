//! `lbprobe demo`: the embedded lab on loopback, and scenarios/demo.yaml run against it.

use crate::lab::{
    nginx_binary, BackendConfig, LabBackend, LabError, Nginx, NginxServer, NginxSpec,
};
use std::sync::Arc;

use crate::early::Announce;
use crate::probe::{Interrupt, ProgressFn};
use crate::report::Report;
use crate::scenario_job::{self, JobError};

/// The demo scenario, embedded so that `lbprobe demo` works from any directory.
pub const DEMO_SCENARIO: &str = include_str!("../scenarios/demo.yaml");

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo lab: {0}")]
    Lab(#[from] LabError),
    #[error("demo scenario: {0}")]
    Scenario(#[from] JobError),
    #[error("{0}")]
    Hostile(String),
}

/// The running lab: dropped at the end of the demo, which stops nginx and the backend.
pub struct Lab {
    pub backend: LabBackend,
    pub nginx: Option<Nginx>,
    /// Why nginx is not part of the lab, when it is not.
    pub skipped: Option<String>,
    /// The hostile kind the backend plays (`lab --hostile`), alone without nginx.
    pub hostile: Option<&'static crate::lab::hostile::HostileKind>,
}

/// The demo's backend answers 405 to DELETE, as an application that does not implement it,
/// and 414 to request targets above 4000 bytes: a tighter limit than nginx's, so long URIs pass
/// the listener and fail one hop further.
pub fn backend_config() -> BackendConfig {
    BackendConfig::default()
        .reject_method("DELETE")
        .max_uri_bytes(4000)
}

/// nginx's timeouts in the lab, short so that probes that wait for them finish quickly.
pub const NGINX_TIMEOUTS: &str = "client_header_timeout 3s; client_body_timeout 3s; \
     proxy_connect_timeout 2s; proxy_read_timeout 5s;";

/// Start the lab: the backend, and nginx with an HTTPS listener in front of it when nginx is
/// installed.
pub async fn start_lab() -> Result<Lab, LabError> {
    let backend = LabBackend::start(backend_config()).await?;
    if nginx_binary().is_none() {
        return Ok(Lab {
            backend,
            nginx: None,
            skipped: Some(
                "nginx is not installed (apt-get install nginx-light), so the listener half of the demo \
                 was skipped: only the backend was probed, and listener causes are not covered"
                    .into(),
            ),
            hostile: None,
        });
    }
    let spec = NginxSpec::one(
        // HTTP/2 offered, as listeners in front of browsers do: the method checks and limits
        // then show what h2 clients meet next to HTTP/1.1 ones.
        NginxServer::proxy(backend.url())
            .http2()
            .extra(NGINX_TIMEOUTS),
    );
    let nginx = Nginx::start(&spec)?;
    Ok(Lab {
        backend,
        nginx: Some(nginx),
        skipped: None,
        hostile: None,
    })
}

/// Start the lab backend alone as the hostile kind called `name` (`lbprobe lab --hostile`).
pub async fn start_hostile(name: &str) -> Result<Lab, DemoError> {
    let kind = crate::lab::hostile::kind(name)
        .ok_or_else(|| DemoError::Hostile(crate::lab::hostile::unknown(name)))?;
    Ok(Lab {
        backend: LabBackend::start(kind.config()).await?,
        nginx: None,
        skipped: None,
        hostile: Some(kind),
    })
}

/// The lab's addresses, for `lbprobe lab` (rendered for people by [`crate::report::lab`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LabInfo {
    pub backend: String,
    /// nginx's HTTPS listener in front of the backend, when nginx is installed.
    pub listener: Option<String>,
    pub skipped: Option<String>,
    /// The hostile kind the backend plays, and what it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub does: Option<String>,
}

impl LabInfo {
    pub fn of(lab: &Lab) -> LabInfo {
        LabInfo {
            backend: lab.backend.url(),
            listener: lab.nginx.as_ref().map(|n| n.url(0)),
            skipped: lab.skipped.clone(),
            hostile: lab.hostile.map(|k| k.name.to_string()),
            does: lab.hostile.map(|k| k.does.to_string()),
        }
    }
}

/// Run the demo; Ctrl-C (through `interrupt`) stops the probes and still yields the report.
/// `announce` hears of causes as they are confirmed (see [`crate::early`]).
pub async fn run(
    progress: ProgressFn,
    announce: Option<Arc<dyn Announce>>,
    interrupt: Interrupt,
) -> Result<Report, DemoError> {
    let lab = start_lab().await?;
    let listener = lab
        .nginx
        .as_ref()
        .map(|n| n.url(0))
        .unwrap_or_else(|| "https://127.0.0.1:1/".into());
    let backend = lab.backend.url();
    let vars = move |name: &str| match name {
        "LAB_LISTENER" => Some(listener.clone()),
        "LAB_BACKEND" => Some(backend.clone()),
        _ => None,
    };
    let mut job = scenario_job::from_text(DEMO_SCENARIO, "scenarios/demo.yaml", &vars)?;
    job.origin = "demo (embedded scenarios/demo.yaml)".into();
    if let Some(why) = &lab.skipped {
        job.plan.listener = None;
        job.expect.clear();
        job.notes.push(why.clone());
    }
    let report = crate::run::execute_watched(job, progress, interrupt, announce).await;
    drop(lab);
    Ok(report)
}
