//! Feature standardisation: each feature column is shifted by its mean and
//! divided by its standard deviation, both computed from the train part only
//! so that no information from the test part reaches training.

/// The mean and standard deviation of each feature column.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    pub mean: Vec<f64>,
    /// The population standard deviation (divisor n, as scikit-learn's
    /// `StandardScaler` uses), or 1 for a constant column so that it maps to 0.
    pub std: Vec<f64>,
}

impl FeatureStats {
    /// Computes the statistics of the row-major `values` with `columns`
    /// columns. Uses two passes in f64 for accuracy.
    pub fn fit(values: &[f32], columns: usize) -> FeatureStats {
        let rows = values.len() / columns.max(1);
        let mut mean = vec![0.0f64; columns];
        for row in values.chunks_exact(columns) {
            for (sum, &value) in mean.iter_mut().zip(row) {
                *sum += f64::from(value);
            }
        }
        mean.iter_mut().for_each(|sum| *sum /= rows.max(1) as f64);
        let mut variance = vec![0.0f64; columns];
        for row in values.chunks_exact(columns) {
            for ((sum, &value), mean) in variance.iter_mut().zip(row).zip(&mean) {
                *sum += (f64::from(value) - mean).powi(2);
            }
        }
        let std = variance
            .iter()
            .map(|sum| (sum / rows.max(1) as f64).sqrt())
            .map(|std| if std > 0.0 { std } else { 1.0 })
            .collect();
        FeatureStats { mean, std }
    }

    /// Standardises the row-major `values` in place.
    pub fn apply(&self, values: &mut [f32]) {
        for row in values.chunks_exact_mut(self.mean.len()) {
            for ((value, mean), std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *value = ((f64::from(*value) - mean) / std) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_population_std() {
        let stats = FeatureStats::fit(&[1.0, 10.0, 3.0, 10.0, 5.0, 10.0], 2);
        assert_eq!(stats.mean, vec![3.0, 10.0]);
        assert!((stats.std[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(stats.std[1], 1.0, "a constant column gets std 1");
    }

    #[test]
    fn applied_columns_centred_and_scaled() {
        let mut values = vec![2.0, -1.0, 4.0, 0.0, 6.0, 7.0, 8.0, 2.0];
        let stats = FeatureStats::fit(&values, 2);
        stats.apply(&mut values);
        for column in 0..2 {
            let items: Vec<f64> = values
                .iter()
                .skip(column)
                .step_by(2)
                .map(|&v| f64::from(v))
                .collect();
            let mean = items.iter().sum::<f64>() / 4.0;
            let variance = items.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            assert!(mean.abs() < 1e-6, "column {column} mean {mean}");
            assert!(
                (variance - 1.0).abs() < 1e-6,
                "column {column} variance {variance}"
            );
        }
    }

    #[test]
    fn empty_input_gives_zero_mean() {
        let stats = FeatureStats::fit(&[], 3);
        assert_eq!(stats.mean, vec![0.0; 3]);
        assert_eq!(stats.std, vec![1.0; 3]);
    }
}
