//! Weights as safetensors files, with tensors named by their `VarStore` path.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// Writes every variable of `vs`, sorted by name so equal weights give equal bytes.
pub fn save_weights(vs: &VarStore, path: &Path) -> Result<()> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&variables, path)
        .with_context(|| format!("failed to write `{}`", path.display()))
}

/// Copies weights from a safetensors file into the variables of `vs`; every
/// variable must be present with the same shape.
pub fn load_weights(vs: &mut VarStore, path: &Path) -> Result<()> {
    let stored = Tensor::read_safetensors(path)
        .with_context(|| format!("failed to read weights `{}`", path.display()))?;
    let stored: std::collections::HashMap<String, Tensor> = stored.into_iter().collect();
    let mut variables = vs.variables();
    for (name, variable) in variables.iter_mut() {
        let Some(value) = stored.get(name) else {
            bail!("weights `{}` have no tensor `{name}`", path.display());
        };
        if value.size() != variable.size() {
            bail!(
                "tensor `{name}` in `{}` has shape {:?}, the model expects {:?}",
                path.display(),
                value.size(),
                variable.size()
            );
        }
        tch::no_grad(|| variable.copy_(value));
    }
    Ok(())
}
