//! The plan as a person reads it, in Terraform's symbols.

use super::{FileAction, FileChange, JsAction, JsChange, Plan, ServerAction};

fn symbol(a: FileAction) -> &'static str {
    match a {
        FileAction::Create => "+",
        FileAction::Update => "~",
        FileAction::Delete => "-",
    }
}

/// The files to create, change and delete, with their diffs when asked (secrets as the plan
/// shows them: by presence, or masked).
pub fn files_section(files: &[FileChange], show_diffs: bool) -> String {
    if files.is_empty() {
        return String::new();
    }
    let mut out = "\nFiles:\n".to_string();
    for f in files {
        let secret = if f.secret { "  (holds a secret: 0600)" } else { "" };
        out += &format!("  {} {}{secret}\n", symbol(f.action), f.path.display());
        if show_diffs && f.action == FileAction::Update {
            for line in f.diff.lines() {
                out += &format!("      {line}\n");
            }
        }
    }
    out
}

pub fn render_human(plan: &Plan, show_diffs: bool) -> String {
    let mut out = format!("Plan for topology `{}` on target {}:\n", plan.topology, plan.target);
    if !plan.has_changes() {
        out += "\nNo changes. The servers and JetStream objects match the topology.\n";
        out += &unmanaged(plan);
        return out;
    }
    if !plan.keys.is_empty() {
        out += "\nKeys:\n";
        for k in &plan.keys {
            out += &format!("  {} {:<28} {}\n", symbol(k.action), k.key, k.description);
        }
    }
    out += &files_section(&plan.files, show_diffs);
    if !plan.servers.is_empty() {
        out += "\nServers:\n";
        for s in &plan.servers {
            let (sym, word) = match s.action {
                ServerAction::Start => ("+", "start"),
                ServerAction::Reload => ("~", "reload"),
                ServerAction::Restart => ("-/+", "restart"),
                ServerAction::Stop => ("-", "stop"),
            };
            out += &format!("  {sym:<3} {word:<7} {:<20} {}\n", s.server, s.reason);
        }
    }
    if !plan.cluster.is_empty() {
        out += "\nCluster:\n";
        for c in &plan.cluster {
            out += &format!("  ~   {}\n", c.describe());
        }
    }
    if plan.jetstream_work().next().is_some() {
        out += "\nJetStream:\n";
        for c in plan.jetstream_work() {
            out += &js_change(c);
        }
    }
    out += &unmanaged(plan);
    let count = |a: ServerAction| plan.servers.iter().filter(|s| s.action == a).count();
    let files = |a: FileAction| plan.files.iter().filter(|f| f.action == a).count();
    out += &format!(
        "\nPlan: {} key(s) to generate; {} file(s) to create, {} to change, {} to delete; {} server(s) to start, {} to reload, {} to restart, {} to stop; {} cluster step(s).\n",
        plan.keys.len(),
        files(FileAction::Create),
        files(FileAction::Update),
        files(FileAction::Delete),
        count(ServerAction::Start),
        count(ServerAction::Reload),
        count(ServerAction::Restart),
        count(ServerAction::Stop),
        plan.cluster.len(),
    );
    if !plan.jetstream.is_empty() {
        let js = |a: JsAction| plan.jetstream.iter().filter(|c| c.action == a).count();
        out += &format!(
            "      JetStream: {} to create, {} to update, {} to replace, {} to delete, {} unmanaged.\n",
            js(JsAction::Create),
            js(JsAction::Update),
            js(JsAction::Replace),
            js(JsAction::Delete),
            js(JsAction::Unmanaged),
        );
    }
    out
}

fn js_change(c: &JsChange) -> String {
    let mut out = format!("  {:<3} {}\n", c.action.symbol(), c.label());
    for f in &c.fields {
        out += &format!("        {}: {} -> {}\n", f.field, shown(&f.field, &f.from), shown(&f.field, &f.to));
        if let Some(reason) = &f.replace_reason {
            out += &format!(
                "          (forces replacement: {reason}; apply needs --allow-replace and loses {})\n",
                c.kind.replacement_loss()
            );
        }
    }
    out
}

/// A config value as the topology writes it: durations (nanoseconds in the API) in human form.
fn shown(field: &str, v: &serde_json::Value) -> String {
    let nanos_field = matches!(field, "max_age" | "duplicate_window" | "ack_wait" | "idle_heartbeat" | "backoff");
    let human = |v: &serde_json::Value| {
        v.as_u64()
            .map(|n| crate::units::format_duration_days(std::time::Duration::from_nanos(n)))
    };
    match v {
        serde_json::Value::Array(items) if nanos_field => {
            let parts: Vec<String> = items.iter().map(|i| human(i).unwrap_or_else(|| i.to_string())).collect();
            format!("[{}]", parts.join(", "))
        }
        _ if nanos_field => human(v).unwrap_or_else(|| v.to_string()),
        _ => v.to_string(),
    }
}

fn unmanaged(plan: &Plan) -> String {
    let list: Vec<String> = plan
        .jetstream
        .iter()
        .filter(|c| c.action == JsAction::Unmanaged)
        .map(|c| format!("  ?   {}\n", c.label()))
        .collect();
    if list.is_empty() {
        return String::new();
    }
    format!(
        "\nUnmanaged (on the servers, not in the topology; deleted only with --prune):\n{}",
        list.concat()
    )
}
