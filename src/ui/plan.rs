//! The plan as the operator reads it: the service and SPA tables, and the terraform
//! command (or why there is none). The `Display` of `model`'s [`Plan`], kept here
//! because tables and their colours are the ui's.

use std::fmt;

use crate::model::config;
use crate::model::plan::{Action, Mode, Plan, Roll};
use crate::ui::style::{Cell, Tone};
use crate::ui::table::write_table;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = match &self.head.branch {
            Some(branch) => format!("{} on {branch}", self.image_tag),
            None => format!("{} (detached HEAD)", self.image_tag),
        };
        match (&self.rollback_to, &self.promotion) {
            (_, Some(promotion)) => writeln!(
                f,
                "Plan: promotion from {} to {} by digest (nothing is built); HEAD is {}",
                promotion.from_workspace,
                self.terraform
                    .as_ref()
                    .map_or("?", |t| t.apply.workspace.as_str()),
                self.head.short_sha
            )?,
            (None, None) if self.undo.is_some() => writeln!(
                f,
                "Plan: undo of run {}: each service it changed back to its tag before it; HEAD is {}",
                self.undo.as_ref().map_or("", |u| u.run_id.as_str()),
                self.head.short_sha
            )?,
            (Some(target), None) => writeln!(
                f,
                "Plan: rollback to {} ({}); HEAD is {}",
                self.image_tag, target.sha, self.head.short_sha
            )?,
            (None, None) => writeln!(f, "Plan: {} of {at}", self.mode)?,
        }
        writeln!(f, "  repository  {}", self.repo.display())?;
        match &self.config {
            Some(path) => writeln!(f, "  config      {}", path.display())?,
            None => writeln!(f, "  config      defaults (no {})", config::CONFIG_FILE)?,
        }
        if let Some(promotion) = &self.promotion {
            let from = &promotion.from_registry;
            match &from.host {
                Some(host) => writeln!(f, "  from        {host} (from {})", from.source)?,
                None => writeln!(
                    f,
                    "  from        {} of {}",
                    from.source, promotion.from_workspace
                )?,
            }
        }
        match &self.registry.host {
            Some(host) => writeln!(f, "  registry    {host} (from {})", self.registry.source)?,
            None => writeln!(f, "  registry    {}", self.registry.source)?,
        }
        if let Some(step) = &self.terraform {
            writeln!(
                f,
                "  workspace   {} (from {})",
                step.apply.workspace,
                step.apply.var_file.display()
            )?;
        }
        if !self.uncommitted.is_empty() {
            writeln!(
                f,
                "  uncommitted {} path(s) — never part of an image tagged {}:",
                self.uncommitted.len(),
                self.image_tag
            )?;
            for path in self.uncommitted.iter().take(10) {
                writeln!(f, "                {path}")?;
            }
            if self.uncommitted.len() > 10 {
                writeln!(
                    f,
                    "                … and {} more",
                    self.uncommitted.len() - 10
                )?;
            }
        }
        writeln!(f)?;
        let rows: Vec<[Cell; 4]> = self
            .services
            .iter()
            .map(|s| {
                [
                    Cell::plain(&s.name),
                    action_cell(s.action),
                    Cell::plain(&s.image),
                    Cell::plain(&s.reason),
                ]
            })
            .collect();
        write_table(f, ["SERVICE", "ACTION", "IMAGE", "REASON"], &rows)?;
        if !self.spas.is_empty() {
            writeln!(f)?;
            let rows: Vec<[Cell; 4]> = self
                .spas
                .iter()
                .map(|s| {
                    let restores = matches!(self.mode, Mode::Rollback | Mode::Undo);
                    let upload = if s.action == Action::Skip {
                        Cell::new(&s.reason, Tone::Skipped)
                    } else if restores {
                        Cell::plain(&s.reason)
                    } else {
                        Cell::plain(format!(
                            "`{}` → {} → {}",
                            s.build,
                            s.output.display(),
                            s.bucket
                        ))
                    };
                    // In graph mode a deploying SPA says why, as services do.
                    let says_why = self.mode == Mode::Changed && s.action != Action::Skip;
                    let note = if s.dirty.is_empty() && !says_why {
                        String::new()
                    } else {
                        s.reason.clone()
                    };
                    [
                        Cell::plain(&s.name),
                        action_cell(s.action),
                        upload,
                        Cell::plain(note),
                    ]
                })
                .collect();
            write_table(f, ["SPA", "ACTION", "BUILD → UPLOAD", ""], &rows)?;
        }
        writeln!(f)?;
        let nothing_to_roll = matches!(
            self.terraform.as_ref().map(|t| &t.apply.roll),
            Some(Roll::Only { services, .. }) if services.is_empty()
        );
        match &self.terraform {
            Some(_) if nothing_to_roll => writeln!(f, "terraform: nothing to roll"),
            Some(step) => writeln!(f, "terraform: {}", step.command()),
            None => writeln!(f, "terraform: skipped (--skip-tf): no apply, no ECS roll"),
        }
    }
}

/// An action as a table cell: DEPLOY done, SKIP dimmed.
pub(crate) fn action_cell(action: Action) -> Cell {
    let tone = match action {
        Action::Deploy => Tone::Done,
        Action::Skip => Tone::Skipped,
        Action::Check => Tone::Plain,
    };
    Cell::new(action.to_string(), tone)
}
