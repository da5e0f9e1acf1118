//! `xp report`, `xp show` and `xp compare`: reading results from the cache
//! without running anything.

use std::cmp::Ordering;

use anyhow::{bail, Result};

use super::{print_stdout, Outcome, Workspace};
use crate::cache::{Cache, WhenBusy};
use crate::cli::PipelineArgs;
use crate::report::{self, columns, Cell, Row};

type Columns = Vec<(String, Vec<Cell>)>;

fn rows(workspace: &Workspace, args: &PipelineArgs) -> Result<Vec<Row>> {
    let (project, dag) = workspace.load_project(args)?;
    let cache = Cache::open(&workspace.cache, WhenBusy::Wait)?;
    report::gather(&project, &dag, &cache, &workspace.root)
}

pub fn report(workspace: &Workspace, args: &PipelineArgs) -> Result<Outcome> {
    let (project, dag) = workspace.load_project(args)?;
    let cache = Cache::open(&workspace.cache, WhenBusy::Wait)?;
    let written = report::write(&project, &dag, &cache, &workspace.root, report::Scope::All)?;
    let mut text = String::new();
    for path in written {
        let shown = path.strip_prefix(&workspace.root).unwrap_or(&path);
        text.push_str(&format!("{}\n", shown.display()));
    }
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

pub fn show(
    workspace: &Workspace,
    args: &PipelineArgs,
    sort_by: Option<&str>,
    wanted: Option<&str>,
) -> Result<Outcome> {
    let rows = rows(workspace, args)?;
    let refs: Vec<&Row> = rows.iter().collect();
    let all = columns(&refs);
    let chosen: Vec<String> = match wanted {
        Some(list) => list.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
        None => default_columns(&refs, &all),
    };
    let selected: Columns = chosen
        .iter()
        .map(|name| find(&all, name).map(|cells| (name.clone(), cells.clone())))
        .collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..refs.len()).collect();
    if let Some(key) = sort_by {
        let cells = find(&all, key)?;
        order.sort_by(|&a, &b| compare_cells(&cells[a], &cells[b]));
        let higher = refs.iter().find_map(|r| r.main_metric.as_ref().filter(|(m, _)| m == key).map(|m| m.1));
        if higher == Some(true) {
            order.reverse();
        }
    }
    let width = console::Term::stdout().size_checked().map_or(100, |(_, columns)| columns as usize);
    print_stdout(&render(&selected, &order, width))?;
    Ok(Outcome::Success)
}

fn find<'a>(all: &'a Columns, name: &str) -> Result<&'a Vec<Cell>> {
    match all.iter().find(|(column, _)| column == name) {
        Some((_, cells)) => Ok(cells),
        None => {
            let known: Vec<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
            bail!("column `{name}` not found; the columns are: {}", known.join(", "))
        }
    }
}

/// Returns the default columns: the label, the pipeline when there are
/// several, the parameters that vary, and the metrics.
fn default_columns(rows: &[&Row], all: &Columns) -> Vec<String> {
    let mut names = vec!["label".to_string()];
    if rows.iter().any(|r| r.pipeline != rows[0].pipeline) {
        names.insert(0, "pipeline".to_string());
    }
    let varying = |cells: &Vec<Cell>| cells.iter().any(|c| *c != cells[0]);
    for (name, cells) in all {
        let param = name.starts_with("param.") && varying(cells);
        let metric = !name.starts_with("param.")
            && !name.starts_with("time.")
            && !name.starts_with("cached.")
            && !["pipeline", "variant", "label"].contains(&name.as_str())
            && !name.ends_with(".n_test");
        if param || metric {
            names.push(name.clone());
        }
    }
    names
}

fn compare_cells(a: &Cell, b: &Cell) -> Ordering {
    match (a, b) {
        (Cell::Number(x), Cell::Number(y)) => x.total_cmp(y),
        (Cell::Missing, Cell::Missing) => Ordering::Equal,
        (Cell::Missing, _) => Ordering::Greater,
        (_, Cell::Missing) => Ordering::Less,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Lays out the columns that fit in `width` characters and counts the rest.
fn render(columns: &Columns, order: &[usize], width: usize) -> String {
    let mut shown = Vec::new();
    let mut used = 0;
    for (name, cells) in columns {
        let column_width = cells.iter().map(|c| c.to_string().chars().count()).chain([name.chars().count()]).max().unwrap_or(0);
        if !shown.is_empty() && used + column_width + 2 > width {
            break;
        }
        used += column_width + 2;
        shown.push((name, cells, column_width));
    }
    let mut text = String::new();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&shown).map(|(c, (_, _, w))| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string() + "\n"
    };
    text.push_str(&line(shown.iter().map(|(n, _, _)| n.to_string()).collect()));
    for &row in order {
        text.push_str(&line(shown.iter().map(|(_, cells, _)| cells[row].to_string()).collect()));
    }
    if shown.len() < columns.len() {
        text.push_str(&format!("({} more columns do not fit; choose with --columns)\n", columns.len() - shown.len()));
    }
    text
}

pub fn compare(workspace: &Workspace, args: &PipelineArgs, first: &str, second: &str) -> Result<Outcome> {
    let rows = rows(workspace, args)?;
    let pick = |name: &str| -> Result<&Row> {
        let found: Vec<&Row> = rows.iter().filter(|r| r.variant == name || r.label == name).collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => bail!("variant `{name}` not found; give an id or a label from `xp show`"),
            _ => bail!("`{name}` names variants of several pipelines; give a variant id"),
        }
    };
    let (a, b) = (pick(first)?, pick(second)?);
    let mut text = format!("{:<28} {:>16} {:>16}\n", "", a.label, b.label);
    let names: std::collections::BTreeSet<&String> = a.params.keys().chain(b.params.keys()).collect();
    for name in names {
        let (x, y) = (a.params.get(name), b.params.get(name));
        if x != y {
            let show = |v: Option<&crate::spec::Value>| v.map(|v| v.to_string()).unwrap_or_default();
            text.push_str(&format!("{:<28} {:>16} {:>16}\n", format!("param.{name}"), show(x), show(y)));
        }
    }
    let metrics: std::collections::BTreeSet<&String> = a.metrics.keys().chain(b.metrics.keys()).collect();
    for name in metrics {
        let cell = |row: &Row| row.metrics.get(name).map_or(Cell::Missing, |v| Cell::Number(*v)).to_string();
        let change = match (a.metrics.get(name), b.metrics.get(name)) {
            (Some(x), Some(y)) => {
                let sign = if y >= x { "+" } else { "" };
                format!("{sign}{}", Cell::Number(y - x))
            }
            _ => String::new(),
        };
        text.push_str(&format!("{:<28} {:>16} {:>16} {change:>12}\n", name, cell(a), cell(b)));
    }
    print_stdout(&text)?;
    Ok(Outcome::Success)
}
