//! The Fréchet distance between two sets of feature vectors, each summarised
//! by its mean and covariance as a Gaussian (the FID of Heusel et al., 2017,
//! here in the feature space of the pipeline's own classifier):
//!
//! d² = |μ₁ - μ₂|² + tr(Σ₁ + Σ₂ - 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
//!
//! Everything is computed in double precision. Both square roots are of
//! symmetric positive semi-definite matrices, so they come from symmetric
//! eigen-decompositions, with the tiny negative eigenvalues that rounding
//! leaves set to zero. `Σ₁^½ Σ₂ Σ₁^½` has the same eigenvalues as `Σ₁ Σ₂`,
//! whose root the usual formula writes, but unlike it stays symmetric.

use tch::{Kind, Tensor};

/// Mean [d] and unbiased covariance [d, d] of feature vectors, in f64.
pub struct Statistics {
    pub mean: Tensor,
    pub covariance: Tensor,
}

impl Statistics {
    /// Summarises `features` [N, d]; N must be at least 2.
    pub fn of(features: &Tensor) -> Statistics {
        let x = features.to_kind(Kind::Double);
        let count = x.size()[0];
        let mean = x.mean_dim(0, false, Kind::Double);
        let centred = &x - &mean;
        let covariance = centred.transpose(0, 1).mm(&centred) / (count - 1).max(1) as f64;
        Statistics { mean, covariance }
    }
}

/// Computes the squared Fréchet distance between the Gaussians `a` and `b`.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> f64 {
    let means = (&a.mean - &b.mean)
        .square()
        .sum(Kind::Double)
        .double_value(&[]);
    let root_a = psd_sqrt(&a.covariance);
    let product = root_a.mm(&b.covariance).mm(&root_a);
    let symmetric = (&product + product.transpose(0, 1)) / 2.0;
    let cross = symmetric
        .linalg_eigvalsh("L")
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double)
        .double_value(&[]);
    let traces = a.covariance.trace().double_value(&[]) + b.covariance.trace().double_value(&[]);
    means + traces - 2.0 * cross
}

/// Computes the square root of a symmetric positive semi-definite matrix.
fn psd_sqrt(matrix: &Tensor) -> Tensor {
    let (values, vectors) = matrix.to_kind(Kind::Double).linalg_eigh("L");
    let roots = values.clamp_min(0.0).sqrt();
    (&vectors * roots.unsqueeze(0)).mm(&vectors.transpose(0, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: &[[f64; 2]; 2]) -> Tensor {
        Tensor::from_slice(&rows.concat()).view([2, 2])
    }

    fn gaussian(mean: [f64; 2], covariance: [[f64; 2]; 2]) -> Statistics {
        Statistics {
            mean: Tensor::from_slice(&mean),
            covariance: matrix(&covariance),
        }
    }

    #[test]
    fn diagonal_gaussians_match_hand_computation() {
        // |(1, 2)|² = 5; per axis, var₁ + var₂ - 2 sqrt(var₁ var₂):
        // 1 + 4 - 2·2 = 1 and 4 + 9 - 2·6 = 1; total 7.
        let a = gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 4.0]]);
        let b = gaussian([1.0, 2.0], [[4.0, 0.0], [0.0, 9.0]]);
        assert!((frechet_distance(&a, &b) - 7.0).abs() < 1e-10);
        assert!((frechet_distance(&b, &a) - 7.0).abs() < 1e-10);
        assert!(frechet_distance(&a, &a).abs() < 1e-10);
    }

    #[test]
    fn correlated_covariance_matches_hand_computation() {
        // Σ₁ = I and Σ₂ = [[2, 1], [1, 2]] with eigenvalues 3 and 1:
        // tr(I + Σ₂ - 2 Σ₂^½) = 2 + 4 - 2 (√3 + 1) = 4 - 2√3.
        let a = gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]);
        let b = gaussian([0.0, 0.0], [[2.0, 1.0], [1.0, 2.0]]);
        let expected = 4.0 - 2.0 * 3f64.sqrt();
        assert!((frechet_distance(&a, &b) - expected).abs() < 1e-10);
        // Two rotated, non-commuting covariances against the closed form for
        // 2x2 matrices: tr (Σ₁Σ₂)^½ = sqrt(tr Σ₁Σ₂ + 2 sqrt(det Σ₁Σ₂)), where
        // Σ₁Σ₂ = [[7, 5], [3, 3]] has trace 10 and determinant 2·3 = 6.
        let c = gaussian([0.5, -1.0], [[3.0, 1.0], [1.0, 1.0]]);
        let (t, d) = (10.0, 6.0);
        let expected = 1.25 + 4.0 + 4.0 - 2.0 * (t + 2.0 * f64::sqrt(d)).sqrt();
        assert!(
            (frechet_distance(&c, &b) - expected).abs() < 1e-10,
            "{}",
            frechet_distance(&c, &b)
        );
    }

    #[test]
    fn statistics_of_samples() {
        let features = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 9.0]).view([3, 2]);
        let stats = Statistics::of(&features);
        assert_eq!(Vec::<f64>::try_from(&stats.mean).unwrap(), vec![3.0, 5.0]);
        // Columns (1, 3, 5) and (2, 4, 9): variances 4 and 13, covariance 7.
        let covariance = Vec::<f64>::try_from(&stats.covariance.flatten(0, -1)).unwrap();
        assert_eq!(covariance, vec![4.0, 7.0, 7.0, 13.0]);
    }
}
