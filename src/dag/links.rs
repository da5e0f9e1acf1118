//! The check, before anything runs, that no declared output leads out of the
//! workspace through a symbolic link already on disk.

use std::path::Path;

use super::Dag;
use crate::cache::check_inside;
use crate::spec::SpecError;

/// Rejects the first output of `dag` that an existing symbolic link in the
/// workspace at `root` leads outside it. xp removes outputs before a stage
/// runs, so such an output could delete or overwrite files elsewhere.
pub fn check_output_links(dag: &Dag, root: &Path) -> Result<(), SpecError> {
    for stage in &dag.stages {
        for output in &stage.outputs {
            if let Err(err) = check_inside(root, &output.value) {
                return Err(SpecError::at(
                    &output.location,
                    format!(
                        "output `{}` of stage `{}` leads outside the workspace through the symbolic link `{}` (to `{}`)",
                        output.value, stage.id, err.link, err.target
                    ),
                )
                .with_help("outputs must stay inside the workspace; remove the link or choose another path"));
            }
        }
    }
    Ok(())
}
