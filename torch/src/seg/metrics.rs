//! The standard segmentation scores: a confusion matrix over labelled
//! pixels, per-class intersection over union, mean IoU and pixel accuracy.

use serde::Serialize;
use tch::{Kind, Tensor};

use super::{CLASSES, CLASS_COUNT, IGNORE};

/// Pixel counts, rows by true class and columns by predicted class; pixels
/// labelled 255 are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion(pub Vec<Vec<i64>>);

impl Confusion {
    pub fn new() -> Confusion {
        Confusion(vec![vec![0; CLASSES.len()]; CLASSES.len()])
    }

    /// Adds predicted train ids against true labels, both [N, H, W].
    pub fn add(&mut self, predicted: &Tensor, truth: &Tensor) {
        let truth = truth.to_kind(Kind::Int64).flatten(0, -1);
        let predicted = predicted.to_kind(Kind::Int64).flatten(0, -1);
        let labelled = truth.ne(IGNORE as i64);
        let cells = truth.masked_select(&labelled) * CLASS_COUNT
            + predicted.masked_select(&labelled).clamp(0, CLASS_COUNT - 1);
        let counts = cells.bincount::<Tensor>(None, CLASS_COUNT * CLASS_COUNT);
        let counts = Vec::<i64>::try_from(&counts).unwrap_or_default();
        for (cell, count) in counts.into_iter().enumerate() {
            self.0[cell / CLASSES.len()][cell % CLASSES.len()] += count;
        }
    }

    /// Returns the IoU of each class, `None` for classes absent from the
    /// ground truth.
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.0.len())
            .map(|c| {
                let true_pixels: i64 = self.0[c].iter().sum();
                let predicted_pixels: i64 = self.0.iter().map(|row| row[c]).sum();
                let hits = self.0[c][c];
                (true_pixels > 0)
                    .then(|| hits as f64 / (true_pixels + predicted_pixels - hits) as f64)
            })
            .collect()
    }

    /// Returns the mean IoU over the classes present in the ground truth.
    pub fn mean_iou(&self) -> f64 {
        let present: Vec<f64> = self.iou().into_iter().flatten().collect();
        present.iter().sum::<f64>() / present.len().max(1) as f64
    }

    /// Returns the fraction of labelled pixels predicted right.
    pub fn pixel_accuracy(&self) -> f64 {
        let hits: i64 = (0..self.0.len()).map(|c| self.0[c][c]).sum();
        let total: i64 = self.0.iter().flatten().sum();
        hits as f64 / total.max(1) as f64
    }
}

impl Default for Confusion {
    fn default() -> Confusion {
        Confusion::new()
    }
}
