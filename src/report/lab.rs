//! `lbprobe lab`'s banner: where the lab's backend and listener answer.

use crate::demo::LabInfo;

/// The lab's addresses for people (JSON is [`LabInfo`] itself).
pub fn banner(info: &LabInfo) -> String {
    let mut out = format!("backend  {}\n", info.backend);
    if let (Some(kind), Some(does)) = (&info.hostile, &info.does) {
        out.push_str(&format!(
            "hostile  {kind}: {does}\n         scan it as --backend or --listener, e.g. lbprobe scan --backend {}\n",
            info.backend
        ));
    }
    if let Some(l) = &info.listener {
        out.push_str(&format!(
            "listener {l}  (nginx, TLS with a self-signed certificate)\n"
        ));
    }
    if let Some(s) = &info.skipped {
        out.push_str(&format!("note: {s}\n"));
    }
    out
}

/// `lbprobe lab --hostile list`: every hostile kind and what it does.
pub fn hostile_kinds(json: bool) -> String {
    let kinds = crate::lab::hostile::KINDS;
    if json {
        let list: Vec<serde_json::Value> = kinds
            .iter()
            .map(|k| serde_json::json!({ "name": k.name, "does": k.does }))
            .collect();
        // An object, not a bare list, so that it can carry its schema_version.
        return super::schema::to_json(
            super::schema::Kind::HostileKinds,
            &serde_json::json!({ "kinds": list }),
        );
    }
    let width = kinds.iter().map(|k| k.name.len()).max().unwrap_or(0);
    kinds
        .iter()
        .map(|k| format!("{:width$}  {}\n", k.name, k.does))
        .collect()
}
