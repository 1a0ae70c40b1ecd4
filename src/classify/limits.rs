//! Rules on measured limits: URI length (414) and, with `header-limit`, the header block.

use super::{Context, Draft, View};

pub(crate) fn drafts(view: &View<'_>, ctx: &Context<'_>) -> Vec<Draft> {
    let _ = (view, ctx);
    Vec::new()
}
