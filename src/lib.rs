//! lbprobe finds out why an HTTP load balancer answers 400, 405, 408, 414, 499, 500, 502, 503
//! or 504: scenario → probes → classifier → report.

pub mod app;
pub mod bytes;
pub mod catalogue;
pub mod classify;
pub mod cli;
pub mod demo;
pub mod early;
pub mod exit;
pub mod host;
pub mod lab;
pub mod logs;
pub mod plural;
pub mod probe;
pub mod profile;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scenario_job;
pub mod serve;
pub mod target;
pub mod transport;
mod yaml;
