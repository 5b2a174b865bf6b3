//! The plan as a person reads it, in Terraform's symbols.

use super::{FileAction, Plan, ServerAction};

fn symbol(a: FileAction) -> &'static str {
    match a {
        FileAction::Create => "+",
        FileAction::Update => "~",
        FileAction::Delete => "-",
    }
}

pub fn render_human(plan: &Plan, show_diffs: bool) -> String {
    let mut out = format!("Plan for topology `{}` on target {}:\n", plan.topology, plan.target);
    if !plan.has_changes() {
        out += "\nNo changes. The servers match the topology.\n";
        return out;
    }
    if !plan.keys.is_empty() {
        out += "\nKeys:\n";
        for k in &plan.keys {
            out += &format!("  {} {:<28} {} (generated, stored 0600)\n", symbol(k.action), k.key, k.description);
        }
    }
    if !plan.files.is_empty() {
        out += "\nFiles:\n";
        for f in &plan.files {
            let secret = if f.secret { "  (holds a secret: 0600)" } else { "" };
            out += &format!("  {} {}{secret}\n", symbol(f.action), f.path.display());
            if show_diffs && f.action == FileAction::Update {
                for line in f.diff.lines() {
                    out += &format!("      {line}\n");
                }
            }
        }
    }
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
    let count = |a: ServerAction| plan.servers.iter().filter(|s| s.action == a).count();
    let files = |a: FileAction| plan.files.iter().filter(|f| f.action == a).count();
    out += &format!(
        "\nPlan: {} key(s) to generate; {} file(s) to create, {} to change, {} to delete; {} server(s) to start, {} to reload, {} to restart, {} to stop.\n",
        plan.keys.len(),
        files(FileAction::Create),
        files(FileAction::Update),
        files(FileAction::Delete),
        count(ServerAction::Start),
        count(ServerAction::Reload),
        count(ServerAction::Restart),
        count(ServerAction::Stop),
    );
    out
}
