//! Folding a sweep's per-variant stages into one list: a stage that is the
//! same in every variant, and whose dependencies are all shared, appears once;
//! any other appears once per variant, as `pipeline/stage@VARIANT`.
//!
//! A per-variant built-in stage with the default output folder gets its own
//! folder, `build/PIPELINE/STAGE@VARIANT`. A shell stage that differs across
//! variants must put `${xp.variant}` (or a swept parameter) in its output
//! paths, or the DAG rejects the variants' outputs as duplicates.

use std::collections::HashMap;
use std::sync::Arc;

use super::sweep::Variant;
use super::{Located, Stage};

/// Merges `per_variant[v]`, the stages resolved with `variants[v]`'s values.
pub fn merge(pipeline: &str, variants: &[Variant], per_variant: Vec<Vec<Stage>>) -> Vec<Stage> {
    let names: Vec<String> = per_variant[0].iter().map(|s| s.name.clone()).collect();
    let shared = shared_stages(pipeline, &names, &per_variant);
    let mut merged = Vec::new();
    for (index, name) in names.iter().enumerate() {
        if shared[name] {
            merged.push(per_variant[0][index].clone());
            continue;
        }
        for (variant, stages) in variants.iter().zip(&per_variant) {
            let mut stage = stages[index].clone();
            let default_output = format!("build/{pipeline}/{name}");
            if stage.kind != "shell" {
                for output in &mut stage.outputs {
                    if output.value == default_output {
                        output.value = format!("{default_output}@{}", variant.id);
                    }
                }
            }
            stage.id = format!("{pipeline}/{name}@{}", variant.id);
            for need in &mut stage.needs {
                let local = need.value.strip_prefix(&format!("{pipeline}/")).map(str::to_string);
                if let Some(target) = local.filter(|t| shared.get(t) == Some(&false)) {
                    need.value = format!("{pipeline}/{target}@{}", variant.id);
                }
            }
            stage.variant = Some(Arc::new(variant.clone()));
            merged.push(stage);
        }
    }
    merged
}

/// Decides which stages are shared: the same definition in every variant and
/// no dependency that is per-variant. Iterates to a fixed point because a
/// stage may need one declared after it.
fn shared_stages(pipeline: &str, names: &[String], per_variant: &[Vec<Stage>]) -> HashMap<String, bool> {
    let mut shared: HashMap<String, bool> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), per_variant.iter().all(|v| same_definition(&v[i], &per_variant[0][i]))))
        .collect();
    loop {
        let mut changed = false;
        for (index, name) in names.iter().enumerate() {
            if !shared[name] {
                continue;
            }
            let stage = &per_variant[0][index];
            let local_needs = stage.needs.iter().filter_map(|n| n.value.strip_prefix(&format!("{pipeline}/")));
            let input_producers = names.iter().enumerate().filter(|(j, _)| {
                per_variant[0][*j].outputs.iter().any(|o| stage.inputs.iter().any(|i| i.value == o.value))
            });
            let depends_on_variant = local_needs.into_iter().any(|n| shared.get(n) == Some(&false))
                || input_producers.into_iter().any(|(_, producer)| shared.get(producer) == Some(&false));
            if depends_on_variant {
                shared.insert(name.clone(), false);
                changed = true;
            }
        }
        if !changed {
            return shared;
        }
    }
}

fn values(items: &[Located<String>]) -> Vec<&str> {
    items.iter().map(|item| item.value.as_str()).collect()
}

fn same_definition(a: &Stage, b: &Stage) -> bool {
    a.kind == b.kind
        && a.command == b.command
        && a.params == b.params
        && a.env == b.env
        && a.threads == b.threads
        && a.memory_mib == b.memory_mib
        && values(&a.needs) == values(&b.needs)
        && values(&a.inputs) == values(&b.inputs)
        && values(&a.outputs) == values(&b.outputs)
}
